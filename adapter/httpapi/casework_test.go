package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// TestEveryReferralChangeIsOneBuilder: a referral changed by the GP over
// FHIR (PUT Task, PUT ServiceRequest revoking it, a BaRS cancellation)
// goes through the same builder as a link worker's change: the referral's
// version moves on, the history names the requester, the regenerated view
// and the Task are written back to the GP record, followed by a
// Provenance whose author is the referring organisation.
func TestEveryReferralChangeIsOneBuilder(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change func(t *testing.T, ts *testServer, c *spCase)
		action string
		status linkbridge.TaskStatus
	}{
		{"PutTaskCancel", func(t *testing.T, ts *testServer, c *spCase) {
			task := ts.fhirDoc("/Task/" + c.TaskID)
			wantStatus(t, ts.do(http.MethodPut, "/Task/"+c.TaskID, withStatus(t, task, "cancelled", "Moved away"), nil), http.StatusOK)
		}, "task-cancelled", linkbridge.TaskCancelled},
		{"PutServiceRequestRevoke", func(t *testing.T, ts *testServer, c *spCase) {
			sr := ts.fhirDoc("/ServiceRequest/" + c.ID)
			sr["status"] = "revoked"
			wantStatus(t, ts.do(http.MethodPut, "/ServiceRequest/"+c.ID, mustJSON(t, sr), nil), http.StatusOK)
		}, "revoke", linkbridge.TaskCancelled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, func(s *httpapi.Server) { s.WriteBack = true })
			c := ts.intake(t, mustRead(t, fixReferralTxn))
			lw := linkbridge.LinkWorker{ID: "lw-0042", Name: "Sam Okafor"}
			c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw})
			before, err := ts.Store.ListOutbox(context.Background(), linkbridge.OutboxFilter{ReferralID: c.ID, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}

			tc.change(t, ts, c)

			cv := c.get()
			if cv.Referral.Version != c.Version+1 || cv.Referral.Status != tc.status {
				t.Errorf("referral version/status = %d/%s, want %d/%s", cv.Referral.Version, cv.Referral.Status, c.Version+1, tc.status)
			}
			last := cv.History[len(cv.History)-1]
			if last.Action != tc.action || last.Actor != string(linkbridge.ActorRequester) || last.Version != cv.Referral.Version || last.Status != tc.status {
				t.Errorf("last history event = %+v, want %s by requester at version %d", last, tc.action, cv.Referral.Version)
			}
			after, err := ts.Store.ListOutbox(context.Background(), linkbridge.OutboxFilter{ReferralID: c.ID, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			written := map[string]bool{}
			var prov *linkbridge.OutboxMessage
			seen := map[int64]bool{}
			for _, m := range before {
				seen[m.ID] = true
			}
			for _, m := range after {
				if seen[m.ID] {
					continue
				}
				written[m.ResourceType] = true
				if m.ResourceType == "Provenance" {
					prov = m
				}
				if m.ResourceType == "ServiceRequest" && m.ResourceID == c.ID {
					t.Errorf("the referrer's own ServiceRequest was written back to it")
				}
			}
			// The Task changed status; the CarePlan follows it (revoked).
			if !written["Task"] || !written["CarePlan"] || prov == nil {
				t.Fatalf("write-backs of the change = %v, want the Task, the CarePlan and a Provenance", written)
			}
			doc := mustParseJSON(t, prov.Body)
			if str(doc, "agent", 0, "who", "identifier", "system") != linkbridge.ODSSystem || str(doc, "agent", 0, "who", "identifier", "value") != "A81001" {
				t.Errorf("Provenance author = %v, want the referring organisation A81001", at(doc, "agent", 0))
			}
			if prov.ResourceID != fhirmap.ProvenanceID(c.ID, cv.Referral.Version) {
				t.Errorf("Provenance id = %s, want %s", prov.ResourceID, fhirmap.ProvenanceID(c.ID, cv.Referral.Version))
			}
		})
	}
}

// TestPlanEditWithdrawsRemovedItems: a goal or onward referral removed
// from the plan is withdrawn on the GP copy — its Goal becomes cancelled,
// its ServiceRequest revoked — and written back, instead of staying active
// there; the items kept are untouched.
func TestPlanEditWithdrawsRemovedItems(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *httpapi.Server) { s.WriteBack = true })
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1"}})
	cv := c.write(http.MethodPut, "/plan", journeyPlan(), http.StatusOK)
	kept, removed, onward := cv.Plan.Goals[0], cv.Plan.Goals[1], cv.Plan.OnwardReferrals[0]

	p := cv.Plan
	p.Goals = p.Goals[:1]
	p.OnwardReferrals = nil
	c.write(http.MethodPut, "/plan", p, http.StatusOK)

	if got := str(ts.fhirDoc("/Goal/"+removed.ID), "lifecycleStatus"); got != "cancelled" {
		t.Errorf("removed Goal lifecycleStatus = %q, want cancelled", got)
	}
	if got := str(ts.fhirDoc("/Goal/"+kept.ID), "lifecycleStatus"); got != "active" {
		t.Errorf("kept Goal lifecycleStatus = %q, want active", got)
	}
	if got := str(ts.fhirDoc("/ServiceRequest/"+onward.ID), "status"); got != "revoked" {
		t.Errorf("removed onward referral status = %q, want revoked", got)
	}
	msgs, err := ts.Store.ListOutbox(context.Background(), linkbridge.OutboxFilter{ReferralID: c.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sent := map[string]int{}
	for _, m := range msgs {
		sent[m.ResourceType+"/"+m.ResourceID] = max(sent[m.ResourceType+"/"+m.ResourceID], m.Version)
	}
	if sent["Goal/"+removed.ID] != 2 || sent["ServiceRequest/"+onward.ID] != 2 || sent["Goal/"+kept.ID] != 1 {
		t.Errorf("written back versions = removed goal %d, onward referral %d, kept goal %d; want 2, 2, 1",
			sent["Goal/"+removed.ID], sent["ServiceRequest/"+onward.ID], sent["Goal/"+kept.ID])
	}
	// Consent withheld altogether is not a plan edit: nothing is withdrawn
	// (cancelled); every goal is withheld instead (its stored FHIR version
	// says entered-in-error and nothing else, and is erased on the GP
	// record), the removed one too.
	c.write(http.MethodPut, "/consent", httpapi.ConsentRequest{Consent: linkbridge.ConsentNone}, http.StatusOK)
	for _, g := range []string{kept.ID, removed.ID} {
		doc := ts.fhirDoc("/Goal/" + g)
		if got := str(doc, "lifecycleStatus"); got != "entered-in-error" || doc["achievementStatus"] != nil {
			t.Errorf("after consent none Goal %s is %q, want withheld (entered-in-error, no content)", g, got)
		}
	}
}

// TestDischargeClosesGoals: at discharge every open goal gets its outcome —
// the link worker's where given, else from the discharge reason — and the
// GP copy's Goals are completed with that achievement, written back with
// the change.
func TestDischargeClosesGoals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *httpapi.Server) { s.WriteBack = true })
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1"}})
	cv := c.write(http.MethodPut, "/plan", journeyPlan(), http.StatusOK)
	g1, g2 := cv.Plan.Goals[0].ID, cv.Plan.Goals[1].ID
	cv = c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met",
		GoalOutcomes: map[string]string{g2: linkbridge.GoalNotAchieved}})
	if cv.Plan.Goals[0].Status != linkbridge.GoalAchieved || cv.Plan.Goals[1].Status != linkbridge.GoalNotAchieved {
		t.Errorf("goals after discharge = %s, %s; want achieved (goals met), not-achieved (as recorded)", cv.Plan.Goals[0].Status, cv.Plan.Goals[1].Status)
	}
	for id, want := range map[string]string{g1: "achieved", g2: "not-achieved"} {
		d := ts.fhirDoc("/Goal/" + id)
		if str(d, "lifecycleStatus") != "completed" || str(d, "achievementStatus", "coding", 0, "code") != want {
			t.Errorf("Goal/%s = %s / %s, want completed / %s", id, str(d, "lifecycleStatus"), str(d, "achievementStatus", "coding", 0, "code"), want)
		}
	}
	msgs, err := ts.Store.ListOutbox(context.Background(), linkbridge.OutboxFilter{ReferralID: c.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	written := 0
	for _, m := range msgs {
		if m.ResourceType == "Goal" && m.Version == 2 {
			written++
		}
	}
	if written != 2 {
		t.Errorf("%d Goals written back at discharge, want 2", written)
	}
}
