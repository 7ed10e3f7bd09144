package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// sentToGP returns the body of the last write-back of typ/id: what the GP
// record holds once the relay has delivered it (the relay sends the stored
// body; outbox/corrections_test.go delivers corrections to the reference
// GP).
func sentToGP(t *testing.T, ts *testServer, referralID, typ, id string) jsonDoc {
	t.Helper()
	msgs, err := ts.Store.ListOutbox(context.Background(), linkbridge.OutboxFilter{ReferralID: referralID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var last *linkbridge.OutboxMessage
	for _, m := range msgs {
		if m.ResourceType == typ && m.ResourceID == id && (last == nil || m.ID > last.ID) {
			last = m
		}
	}
	if last == nil {
		t.Fatalf("%s/%s was never written back", typ, id)
	}
	return mustParseJSON(t, last.Body)
}

// TestJourneyCorrections drives every correction through /sp/v1 — a
// contact amended and one withdrawn, a measure amended and the baseline
// withdrawn, a goal withdrawn — and checks the case record, the FHIR view
// (/fhir reads) and the write-backs to the GP record
// (docs/domain.md#corrections).
func TestJourneyCorrections(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *httpapi.Server) { s.WriteBack = true })
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	ts.Clock.Set(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)) // after what it records
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-3", Name: "Ann"}})
	c.write(http.MethodPost, "/contacts", contactIn(journeyContacts[0]), http.StatusCreated)
	c.write(http.MethodPost, "/contacts", contactIn(journeyContacts[2]), http.StatusCreated)
	c.write(http.MethodPut, "/plan", journeyPlan(), http.StatusOK)
	c.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointBaseline, []int{2, 2, 3, 2, 2, 3, 2}, journeyContacts[0].At), http.StatusCreated)
	cv := c.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointReview, []int{3, 3, 3, 3, 3, 3, 3}, journeyContacts[2].At), http.StatusCreated)
	first, second := cv.Contacts[0], cv.Contacts[1]
	base, review := cv.Measures[0], cv.Measures[1]
	goal, wrongGoal := cv.Plan.Goals[0], cv.Plan.Goals[1]
	if review.ChangeFromBaseline == nil || review.ChangeFromBaseline.BaselineID != base.ID {
		t.Fatalf("review's change from baseline = %+v, want one from %s", review.ChangeFromBaseline, base.ID)
	}
	if got := str(sentToGP(t, ts, c.ID, "Encounter", second.ID), "status"); got != "finished" {
		t.Fatalf("GP copy of the second contact is %v before the corrections, want finished", got)
	}

	ts.Clock.Set(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	// A stale version is refused; the correction then goes through.
	stale := hdr{"If-Match": fmt.Sprintf(`W/"%d"`, c.Version-1)}
	wantSPError(t, ts.sp(http.MethodPut, "/referrals/"+c.ID+"/contacts/"+first.ID, contactIn(journeyContacts[0]), stale), http.StatusPreconditionFailed, linkbridge.EPRECONDITION)
	amended := journeyContacts[0]
	amended.At, amended.Mode, amended.Minutes = amended.At.Add(30*time.Minute), linkbridge.ContactHomeVisit, 40
	c.write(http.MethodPut, "/contacts/"+first.ID, contactIn(amended), http.StatusOK)
	c.write(http.MethodPost, "/contacts/"+second.ID+"/withdraw", linkbridge.Withdrawal{Reason: "Recorded on the wrong person's record"}, http.StatusOK)
	c.write(http.MethodPut, "/measures/"+review.ID, swemwbs(linkbridge.TimepointReview, []int{4, 4, 4, 4, 4, 4, 4}, journeyContacts[2].At), http.StatusOK)
	c.write(http.MethodPost, "/measures/"+base.ID+"/withdraw", linkbridge.Withdrawal{Reason: "Entered twice"}, http.StatusOK)
	cv = c.write(http.MethodPost, "/goals/"+wrongGoal.ID+"/withdraw", linkbridge.Withdrawal{Reason: "Another person's goal"}, http.StatusOK)

	// The case record: corrected entries, marked; one history event each.
	var actions []string
	for _, e := range cv.History[len(cv.History)-5:] {
		actions = append(actions, e.Action)
	}
	if want := []string{"contact-amended", "contact-withdrawn", "measure-amended", "measure-withdrawn", "goal-withdrawn"}; !slices.Equal(actions, want) {
		t.Errorf("history = %v, want %v", actions, want)
	}
	byID := func(id string) *linkbridge.Contact {
		for _, ct := range cv.Contacts {
			if ct.ID == id {
				return ct
			}
		}
		t.Fatalf("the case has no contact %s", id)
		return nil
	}
	if ct := byID(first.ID); !ct.At.Equal(amended.At) || ct.Mode != linkbridge.ContactHomeVisit || ct.AmendedAt.IsZero() || !ct.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("amended contact = %+v, want the new time and mode, amendedAt set, createdAt kept", ct)
	}
	if ct := byID(second.ID); !ct.Withdrawn() || ct.WithdrawnReason == "" {
		t.Errorf("withdrawn contact = %+v, want withdrawnAt and the reason", ct)
	}
	for _, m := range cv.Measures {
		switch m.ID {
		case base.ID:
			if !m.Withdrawn() {
				t.Errorf("baseline = %+v, want withdrawn", m.Measure)
			}
		case review.ID:
			if m.Total != 28 || m.AmendedAt.IsZero() || m.ChangeFromBaseline != nil {
				t.Errorf("review = %+v (change %+v), want rescored 28, amended, no change from a withdrawn baseline", m.Measure, m.ChangeFromBaseline)
			}
		}
	}
	if g := cv.Plan.Goals[1]; g.ID != wrongGoal.ID || g.Status != linkbridge.GoalEnteredInError || g.WithdrawnAt.IsZero() {
		t.Errorf("withdrawn goal = %+v, want entered-in-error", g)
	}

	// What may no longer change is refused.
	for _, tc := range []struct {
		method, sub string
		body        any
		status      int
		code        string
	}{
		{http.MethodPut, "/contacts/" + second.ID, contactIn(journeyContacts[2]), http.StatusConflict, linkbridge.ECONFLICT},
		{http.MethodPost, "/contacts/" + second.ID + "/withdraw", linkbridge.Withdrawal{Reason: "again"}, http.StatusConflict, linkbridge.ECONFLICT},
		{http.MethodPut, "/contacts/no-such-contact", contactIn(journeyContacts[2]), http.StatusNotFound, linkbridge.ENOTFOUND},
		{http.MethodPost, "/measures/" + review.ID + "/withdraw", linkbridge.Withdrawal{}, http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE},
		{http.MethodPut, "/measures/" + review.ID, swemwbs(linkbridge.TimepointReview, []int{4, 4, 4, 4, 4, 4, 4}, ts.Clock.Now().Add(time.Hour)), http.StatusUnprocessableEntity, linkbridge.EUNPROCESSABLE},
		{http.MethodPost, "/goals/" + wrongGoal.ID + "/withdraw", linkbridge.Withdrawal{Reason: "again"}, http.StatusConflict, linkbridge.ECONFLICT},
	} {
		wantSPError(t, ts.sp(tc.method, "/referrals/"+c.ID+tc.sub, tc.body, c.ifMatch()), tc.status, tc.code)
	}
	// With its baseline withdrawn, the episode may record another.
	cv = c.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointBaseline, []int{2, 2, 2, 2, 2, 2, 2}, journeyContacts[0].At.Add(time.Hour)), http.StatusCreated)
	var newBase *httpapi.MeasureView
	for _, m := range cv.Measures {
		if m.Timepoint == linkbridge.TimepointBaseline && !m.Withdrawn() {
			newBase = m
		}
	}
	if newBase == nil {
		t.Fatal("the new baseline is missing")
	}

	// The FHIR view: each correction is a new version of its resource.
	enc := ts.fhirDoc("/Encounter/" + first.ID)
	if str(enc, "meta", "versionId") != "2" || str(enc, "status") != "finished" || str(enc, "period", "start") != "2026-11-23T10:30:00Z" {
		t.Errorf("amended Encounter = v%s %s from %s, want v2 finished from 10:30", str(enc, "meta", "versionId"), str(enc, "status"), str(enc, "period", "start"))
	}
	if got := str(ts.fhirDoc("/Encounter/"+second.ID), "status"); got != "entered-in-error" {
		t.Errorf("withdrawn Encounter status = %q, want entered-in-error", got)
	}
	if got := str(ts.fhirDoc("/Observation/"+base.ID), "status"); got != "entered-in-error" {
		t.Errorf("withdrawn baseline Observation status = %q, want entered-in-error", got)
	}
	obs := ts.fhirDoc("/Observation/" + review.ID)
	if str(obs, "status") != "corrected" || num(obs, "valueQuantity", "value") != 25.03 || str(obs, "derivedFrom", 0, "reference") != "Observation/"+newBase.ID {
		t.Errorf("amended review Observation = %s %v from %s, want corrected, 25.03 (raw 28), derived from the new baseline %s",
			str(obs, "status"), at(obs, "valueQuantity", "value"), str(obs, "derivedFrom", 0, "reference"), newBase.ID)
	}
	if got := str(ts.fhirDoc("/Goal/"+wrongGoal.ID), "lifecycleStatus"); got != "entered-in-error" {
		t.Errorf("withdrawn Goal lifecycleStatus = %q, want entered-in-error", got)
	}
	if goals := refsOf(ts.fhirDoc("/CarePlan/"+fhirmap.CarePlanID(c.ID)), "goal"); !slices.Equal(goals, []string{"Goal/" + goal.ID}) {
		t.Errorf("CarePlan.goal = %v, want only Goal/%s", goals, goal.ID)
	}
	task := ts.fhirDoc("/Task/" + c.TaskID)
	outs, _ := at(task, "output").([]any)
	for i := range outs {
		if ref := str(task, "output", i, "valueReference", "reference"); ref == "Encounter/"+second.ID || ref == "Observation/"+base.ID {
			t.Errorf("Task.output names the withdrawn %s", ref)
		}
	}

	// Reports count no withdrawn entry: one attended contact (the amended
	// one), no DNA.
	var rep linkbridge.PeriodReport
	r := ts.sp(http.MethodGet, "/reports/period?from=2026-11&to=2026-12", nil, nil)
	wantSP(t, r, http.StatusOK)
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Contacts.Attended != 1 || rep.Contacts.DNA != 0 {
		t.Errorf("period contacts = %+v, want 1 attended, 0 DNA (the withdrawn contact not counted)", rep.Contacts)
	}

	// The GP copy follows.
	for _, tc := range []struct{ typ, id, field, want string }{
		{"Encounter", second.ID, "status", "entered-in-error"},
		{"Encounter", first.ID, "status", "finished"},
		{"Observation", base.ID, "status", "entered-in-error"},
		{"Observation", review.ID, "status", "corrected"},
		{"Goal", wrongGoal.ID, "lifecycleStatus", "entered-in-error"},
		{"Goal", goal.ID, "lifecycleStatus", "active"},
	} {
		if got := str(sentToGP(t, ts, c.ID, tc.typ, tc.id), tc.field); got != tc.want {
			t.Errorf("GP copy of %s/%s: %s = %v, want %s", tc.typ, tc.id, tc.field, got, tc.want)
		}
	}
	if got := str(sentToGP(t, ts, c.ID, "Encounter", first.ID), "period", "start"); got != "2026-11-23T10:30:00Z" {
		t.Errorf("GP copy of the amended Encounter starts %v, want 2026-11-23T10:30:00Z", got)
	}
}
