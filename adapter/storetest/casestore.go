package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// CaseStore is a store that also holds the link workers' case records.
type CaseStore interface {
	linkbridge.Store
	linkbridge.CaseStore
}

// RunCaseStore runs the case-record suite: the CaseStore methods and the
// case-record parts of ReferralChange (Plan, Contacts, Measures, Event). open
// must return a new, empty store and close it when the test ends. Subtests
// run in parallel, each on its own store. Run the Store suite (Run) too. A
// store that is a linkbridge.BatchStore has its WriteBatch checked against
// the same writes made one by one.
func RunCaseStore(t *testing.T, open func(t *testing.T) CaseStore) {
	t.Run("ReceivedEvent", func(t *testing.T) { t.Parallel(); testReceivedEvent(t, open) })
	t.Run("Plan", func(t *testing.T) { t.Parallel(); testPlan(t, open) })
	t.Run("ContactsAndMeasures", func(t *testing.T) { t.Parallel(); testContactsAndMeasures(t, open) })
	t.Run("FailedChangeStoresNothing", func(t *testing.T) { t.Parallel(); testFailedChange(t, open) })
	t.Run("Events", func(t *testing.T) { t.Parallel(); testEvents(t, open) })
	t.Run("ListReferrals", func(t *testing.T) { t.Parallel(); testListReferrals(t, open) })
	t.Run("CountContacts", func(t *testing.T) { t.Parallel(); testCountContacts(t, open) })
	t.Run("Corrections", func(t *testing.T) { t.Parallel(); testCorrections(t, open) })
	t.Run("WriteBatch", func(t *testing.T) { t.Parallel(); testWriteBatch(t, open) })
}

// mustCaseRecord reads a case record. Fatal on error.
func mustCaseRecord(t *testing.T, s CaseStore, referralID string) *linkbridge.CaseRecord {
	t.Helper()
	rec, err := s.GetCaseRecord(context.Background(), referralID)
	if err != nil {
		t.Fatalf("GetCaseRecord(%s) returned unexpected error: %v", referralID, err)
	}
	return rec
}

// receivedEvent is the event CreateReferral records for a referral.
func receivedEvent(r *linkbridge.Referral) *linkbridge.ReferralEvent {
	return &linkbridge.ReferralEvent{
		ReferralID: r.ID, Version: 1, At: r.ReceivedAt, Action: "received", Actor: "requester", Status: r.Status,
	}
}

// event builds the event of the change that produced r.
func event(r *linkbridge.Referral, action, actor string) *linkbridge.ReferralEvent {
	return &linkbridge.ReferralEvent{
		ReferralID: r.ID, Version: r.Version, At: r.UpdatedAt, Action: action, Actor: actor, Status: r.Status,
	}
}

// contact builds an attended (or not) contact of a referral.
func contact(id, referralID string, at time.Time, attended bool) *linkbridge.Contact {
	c := &linkbridge.Contact{
		ID: id, ReferralID: referralID, At: at, Mode: linkbridge.ContactPhone, Attended: attended,
		CreatedAt: at.Add(time.Minute),
	}
	if attended {
		c.Minutes, c.Notes = 30, "Talked about the walking group."
	}
	return c
}

// measure builds a scored SWEMWBS measure of a referral.
func measure(t *testing.T, id, referralID string, tp linkbridge.Timepoint, at time.Time, items ...int) *linkbridge.Measure {
	t.Helper()
	m := &linkbridge.Measure{
		ID: id, ReferralID: referralID, Instrument: linkbridge.SWEMWBS, Timepoint: tp, Items: items,
		TakenAt: at, CreatedAt: at.Add(time.Minute),
	}
	if err := m.Score(); err != nil {
		t.Fatalf("Score(%s) returned unexpected error: %v", id, err)
	}
	return m
}

// plan builds a plan with n goals.
func plan(whatMatters string, n int) *linkbridge.Plan {
	agreed := t0.Add(2 * time.Hour)
	p := &linkbridge.Plan{
		WhatMatters: whatMatters,
		Needs: []linkbridge.Need{
			{Code: &linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: "423521000000102", Display: "Loneliness"}},
			{Text: "Wants to get out more"},
		},
		Risks:      []string{"lives alone"},
		Actions:    []linkbridge.PlanAction{{ID: "a1", Description: "Call the walking group", Who: "person", Due: "2025-04-01", Status: "not-started"}},
		Signposts:  []linkbridge.Signpost{{ID: "s1", To: "Citizens Advice", At: t0.Add(time.Hour)}},
		ReviewDate: "2025-06-01",
		AgreedAt:   &agreed,
		OnwardReferrals: []linkbridge.OnwardReferral{
			{ID: "o1", Service: "Befriending service", Status: "sent", SentAt: t0.Add(3 * time.Hour)},
		},
	}
	for i := range n {
		p.Goals = append(p.Goals, linkbridge.Goal{
			ID: "g" + strconv.Itoa(i+1), Description: "Goal " + strconv.Itoa(i+1), Importance: 8, Confidence: 5, Status: linkbridge.GoalActive,
		})
	}
	return p
}

// createOne stores a new intake named name, for a person with the next NHS
// number of nhs, and returns it.
func createOne(t *testing.T, s CaseStore, nhs func() string, name string) *linkbridge.Intake {
	t.Helper()
	in := newIntake(name, nhs())
	mustCreate(t, s, in)
	return in
}

func testReceivedEvent(t *testing.T, open func(t *testing.T) CaseStore) {
	s := open(t)
	in := createOne(t, s, nhsNumbers(), "a")

	t.Run("OK", func(t *testing.T) {
		want := &linkbridge.CaseRecord{
			Referral: in.Referral,
			Person:   in.Person,
			Events:   []*linkbridge.ReferralEvent{receivedEvent(in.Referral)},
		}
		if diff := cmp.Diff(want, mustCaseRecord(t, s, in.Referral.ID), cmpOpts...); diff != "" {
			t.Fatalf("GetCaseRecord mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := s.GetCaseRecord(context.Background(), "sr-missing")
		checkError(t, err, linkbridge.ENOTFOUND, "")
	})
}

func testPlan(t *testing.T, open func(t *testing.T) CaseStore) {
	s := open(t)
	in := createOne(t, s, nhsNumbers(), "a")
	t1, t2, t3 := t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)

	first := plan("Getting out of the house", 3)
	ref2 := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.BusinessStatus = linkbridge.BusinessPlanAgreed })
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref2, Plan: first})
	if diff := cmp.Diff(*first, mustCaseRecord(t, s, in.Referral.ID).Plan, cmpOpts...); diff != "" {
		t.Fatalf("Plan after the first change mismatch (-want +got):\n%s", diff)
	}

	// A new plan replaces the old one as a whole: fewer goals, no signposts,
	// no agreed time.
	second := plan("Seeing friends", 1)
	second.Signposts, second.AgreedAt = nil, nil
	second.Goals[0].Status = linkbridge.GoalAchieved
	ref3 := nextVersion(ref2, t2, nil)
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref3, Plan: second})
	if diff := cmp.Diff(*second, mustCaseRecord(t, s, in.Referral.ID).Plan, cmpOpts...); diff != "" {
		t.Fatalf("Plan after the replacement mismatch (-want +got):\n%s", diff)
	}

	// A change without a plan keeps it.
	ref4 := nextVersion(ref3, t3, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskInProgress })
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref4})
	rec := mustCaseRecord(t, s, in.Referral.ID)
	if diff := cmp.Diff(*second, rec.Plan, cmpOpts...); diff != "" {
		t.Fatalf("Plan after a change without a plan mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ref4, rec.Referral, cmpOpts...); diff != "" {
		t.Fatalf("GetCaseRecord referral mismatch (-want +got):\n%s", diff)
	}
}

func testContactsAndMeasures(t *testing.T, open func(t *testing.T) CaseStore) {
	s := open(t)
	nhs := nhsNumbers()
	in := createOne(t, s, nhs, "a")
	id := in.Referral.ID
	t1, t2 := t0.Add(24*time.Hour), t0.Add(48*time.Hour)

	// Contacts and measures come in the same change as a version bump, and
	// out of order.
	c2 := contact("c2", id, t0.Add(3*time.Hour), true)
	c1 := contact("c1", id, t0.Add(time.Hour), false)
	base := measure(t, "m-base", id, linkbridge.TimepointBaseline, t0.Add(time.Hour), 2, 2, 3, 2, 3, 2, 2)
	ref2 := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskInProgress })
	task2 := taskResource(ref2, 2, t1)
	mustUpdate(t, s, &linkbridge.ReferralChange{
		Referral: ref2, Resources: []*linkbridge.Resource{task2},
		Contacts: []*linkbridge.Contact{c2, c1}, Measures: []*linkbridge.Measure{base},
		Event: event(ref2, "contact", "lw-1"),
	})
	checkReferral(t, s, ref2)
	checkResource(t, s, task2)

	// A later change adds more: a contact at the same time as c2 (the id
	// breaks the tie), one between, and a review measure taken before the
	// baseline was recorded.
	c3 := contact("c3", id, t0.Add(3*time.Hour), true)
	c0 := contact("c0", id, t0.Add(2*time.Hour), true)
	c0.Mode, c0.ReferralID = linkbridge.ContactFaceToFace, "" // the store fills in the referral
	review := measure(t, "m-review", id, linkbridge.TimepointReview, t0.Add(30*time.Minute), 4, 4, 4, 3, 4, 4, 4)
	ref3 := nextVersion(ref2, t2, nil)
	mustUpdate(t, s, &linkbridge.ReferralChange{
		Referral: ref3, Contacts: []*linkbridge.Contact{c3, c0}, Measures: []*linkbridge.Measure{review},
	})

	rec := mustCaseRecord(t, s, id)
	c0Stored := *c0
	c0Stored.ReferralID = id
	if diff := cmp.Diff([]*linkbridge.Contact{c1, &c0Stored, c2, c3}, rec.Contacts, cmpOpts...); diff != "" {
		t.Fatalf("Contacts mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]*linkbridge.Measure{review, base}, rec.Measures, cmpOpts...); diff != "" {
		t.Fatalf("Measures mismatch (-want +got):\n%s", diff)
	}
	if rec.Measures[1].Metric != base.Metric || base.Metric == 0 {
		t.Fatalf("SWEMWBS metric = %v, want %v", rec.Measures[1].Metric, base.Metric)
	}

	// Another referral's record is separate.
	other := createOne(t, s, nhs, "b")
	if rec := mustCaseRecord(t, s, other.Referral.ID); len(rec.Contacts) != 0 || len(rec.Measures) != 0 {
		t.Fatalf("GetCaseRecord(%s) = %d contacts, %d measures; want none", other.Referral.ID, len(rec.Contacts), len(rec.Measures))
	}
}

func testFailedChange(t *testing.T, open func(t *testing.T) CaseStore) {
	ctx := context.Background()
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)

	// setup stores a referral with a plan, one contact and one measure at
	// version 2, and returns the case record and a valid change to version
	// 3 that carries every kind of case-record entry.
	setup := func(t *testing.T) (CaseStore, *linkbridge.CaseRecord, *linkbridge.ReferralChange) {
		t.Helper()
		s := open(t)
		in := createOne(t, s, nhsNumbers(), "a")
		id := in.Referral.ID
		ref2 := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
		mustUpdate(t, s, &linkbridge.ReferralChange{
			Referral: ref2, Plan: plan("first", 1),
			Contacts: []*linkbridge.Contact{contact("c1", id, t1, true)},
			Measures: []*linkbridge.Measure{measure(t, "m1", id, linkbridge.TimepointBaseline, t1, 1, 2, 3, 4, 5, 4, 3)},
			Event:    event(ref2, "accept", "lw-1"),
		})
		before := mustCaseRecord(t, s, id)

		ref3 := nextVersion(ref2, t2, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskInProgress })
		ch := &linkbridge.ReferralChange{
			Referral: ref3, Resources: []*linkbridge.Resource{taskResource(ref3, 2, t2)},
			MessageID: "msg-change",
			Plan:      plan("second", 2),
			Contacts:  []*linkbridge.Contact{contact("c2", id, t2, true), contact("c3", id, t2.Add(time.Hour), true)},
			Measures:  []*linkbridge.Measure{measure(t, "m2", id, linkbridge.TimepointReview, t2, 5, 5, 5, 5, 5, 5, 5)},
			Event:     event(ref3, "start", "lw-1"),
		}
		return s, before, ch
	}

	for _, tc := range []struct {
		name string
		code string // "" when the suite does not fix the code
		bad  func(ch *linkbridge.ReferralChange)
	}{
		{"ErrStaleReferralVersion", linkbridge.EPRECONDITION, func(ch *linkbridge.ReferralChange) {
			ch.Referral.Version = 2
			ch.Event.Version = 2
		}},
		{"ErrStaleResourceVersion", linkbridge.EPRECONDITION, func(ch *linkbridge.ReferralChange) { ch.Resources[0].VersionID = 1 }},
		// The collision comes after the referral, resources and plan are
		// written: they must be undone too.
		{"ErrContactIDTaken", "", func(ch *linkbridge.ReferralChange) { ch.Contacts[1].ID = "c1" }},
		{"ErrMeasureIDTaken", "", func(ch *linkbridge.ReferralChange) { ch.Measures[0].ID = "m1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, before, ch := setup(t)
			bad := *ch
			badRef := *ch.Referral
			bad.Referral = &badRef
			badEvent := *ch.Event
			bad.Event = &badEvent
			bad.Resources = []*linkbridge.Resource{ptr(*ch.Resources[0])}
			bad.Contacts = []*linkbridge.Contact{ptr(*ch.Contacts[0]), ptr(*ch.Contacts[1])}
			bad.Measures = []*linkbridge.Measure{ptr(*ch.Measures[0])}
			tc.bad(&bad)

			err := s.UpdateReferral(ctx, &bad)
			if err == nil {
				t.Fatal("UpdateReferral returned no error")
			}
			if tc.code != "" {
				checkError(t, err, tc.code, "")
			}
			if diff := cmp.Diff(before, mustCaseRecord(t, s, ch.Referral.ID), cmpOpts...); diff != "" {
				t.Fatalf("case record after a failed change mismatch (-want +got):\n%s", diff)
			}
			if ok, err := s.MessageProcessed(ctx, ch.MessageID); err != nil || ok {
				t.Fatalf("MessageProcessed(%s) after a failed change = %v, %v; want false", ch.MessageID, ok, err)
			}

			// The valid change still applies, all of it.
			mustUpdate(t, s, ch)
			rec := mustCaseRecord(t, s, ch.Referral.ID)
			if diff := cmp.Diff(ch.Referral, rec.Referral, cmpOpts...); diff != "" {
				t.Fatalf("referral after the valid change mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(*ch.Plan, rec.Plan, cmpOpts...); diff != "" {
				t.Fatalf("plan after the valid change mismatch (-want +got):\n%s", diff)
			}
			if got, want := len(rec.Contacts), len(before.Contacts)+2; got != want {
				t.Fatalf("%d contacts after the valid change, want %d", got, want)
			}
			if got, want := len(rec.Measures), len(before.Measures)+1; got != want {
				t.Fatalf("%d measures after the valid change, want %d", got, want)
			}
			if diff := cmp.Diff(append(before.Events, ch.Event), rec.Events, cmpOpts...); diff != "" {
				t.Fatalf("events after the valid change mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

func testEvents(t *testing.T, open func(t *testing.T) CaseStore) {
	s := open(t)
	in := createOne(t, s, nhsNumbers(), "a")
	want := []*linkbridge.ReferralEvent{receivedEvent(in.Referral)}

	ref := in.Referral
	for i, step := range []struct {
		status        linkbridge.TaskStatus
		action, actor string
	}{
		{linkbridge.TaskAccepted, "accept", "lw-1"},
		{linkbridge.TaskInProgress, "contact", "lw-1"},
		{linkbridge.TaskInProgress, "plan", "lw-1"},
		{linkbridge.TaskCompleted, "complete", "lw-1"},
	} {
		ref = nextVersion(ref, t0.Add(time.Duration(i+1)*time.Hour), func(r *linkbridge.Referral) {
			r.Status = step.status
			if step.action == "contact" { // the episode's moments round-trip, and SDS user ids
				r.LinkWorker = linkbridge.LinkWorker{ID: "lw-1", Name: "Sam", SDSUserID: "555050304199"}
				r.AgreedAt, r.AgreedBy = t0.Add(90*time.Minute), r.LinkWorker
			}
		})
		ev := event(ref, step.action, step.actor)
		if step.action == "complete" { // recorded an hour after it happened
			ev.OccurredAt = ev.At.Add(-time.Hour)
		}
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref, Event: ev})
		want = append(want, ev)
	}
	checkReferral(t, s, ref)
	// A change without an event adds none.
	ref = nextVersion(ref, t0.Add(10*time.Hour), nil)
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref})

	rec := mustCaseRecord(t, s, in.Referral.ID)
	if diff := cmp.Diff(want, rec.Events, cmpOpts...); diff != "" {
		t.Fatalf("Events mismatch (-want +got):\n%s", diff)
	}
}

func testListReferrals(t *testing.T, open func(t *testing.T) CaseStore) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	lw1 := linkbridge.LinkWorker{ID: "lw-1", Name: "Sam"}
	lw2 := linkbridge.LinkWorker{ID: "lw-2", Name: "Alex"}

	// Six referrals received a minute apart, created out of order.
	refs := map[string]*linkbridge.Referral{}
	for _, r := range []struct {
		name, service, referrer string
		minute                  int
		status                  linkbridge.TaskStatus
		lw                      linkbridge.LinkWorker
	}{
		{"d", "RAT01", "Y05678", 3, linkbridge.TaskInProgress, lw2},
		{"a", "RAT01", "Y01234", 0, linkbridge.TaskRequested, linkbridge.LinkWorker{}},
		{"f", "RAT01", "Y01234", 5, linkbridge.TaskAccepted, lw1},
		{"c", "RAT02", "Y05678", 2, linkbridge.TaskRequested, linkbridge.LinkWorker{}},
		{"e", "RAT01", "Y01234", 4, linkbridge.TaskRejected, linkbridge.LinkWorker{}},
		{"b", "RAT01", "Y01234", 1, linkbridge.TaskAccepted, lw1},
	} {
		in := newIntake(r.name, nhs())
		at := t0.Add(time.Duration(r.minute) * time.Minute)
		in.Referral.ServiceODS, in.Referral.ReferrerODS = r.service, r.referrer
		in.Referral.ReceivedAt, in.Referral.UpdatedAt = at, at
		mustCreate(t, s, in)
		ref := in.Referral
		if r.status != ref.Status {
			ref = nextVersion(ref, at.Add(time.Hour), func(x *linkbridge.Referral) {
				x.Status, x.LinkWorker = r.status, r.lw
				if r.lw.ID != "" {
					x.AcceptedAt = at.Add(time.Hour)
				}
			})
			mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref})
		}
		refs[r.name] = ref
	}
	at := func(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }

	list := func(t *testing.T, f linkbridge.ReferralFilter) ([]string, int) {
		t.Helper()
		got, total, err := s.ListReferrals(ctx, f)
		if err != nil {
			t.Fatalf("ListReferrals(%+v) returned unexpected error: %v", f, err)
		}
		var names []string
		for _, r := range got {
			if diff := cmp.Diff(refs[r.ID[len("sr-"):]], r, cmpOpts...); diff != "" {
				t.Fatalf("ListReferrals(%+v) referral %s mismatch (-want +got):\n%s", f, r.ID, diff)
			}
			names = append(names, r.ID[len("sr-"):])
		}
		return names, total
	}

	for _, tc := range []struct {
		name string
		f    linkbridge.ReferralFilter
		want []string
	}{
		{"All", linkbridge.ReferralFilter{}, []string{"f", "e", "d", "c", "b", "a"}},
		{"Service", linkbridge.ReferralFilter{ServiceODS: "RAT01"}, []string{"f", "e", "d", "b", "a"}},
		{"OtherService", linkbridge.ReferralFilter{ServiceODS: "RAT02"}, []string{"c"}},
		{"UnknownService", linkbridge.ReferralFilter{ServiceODS: "RAT99"}, nil},
		{"Referrer", linkbridge.ReferralFilter{ReferrerODS: "Y05678"}, []string{"d", "c"}},
		{"Status", linkbridge.ReferralFilter{Statuses: []linkbridge.TaskStatus{linkbridge.TaskRequested}}, []string{"c", "a"}},
		{"Statuses", linkbridge.ReferralFilter{Statuses: []linkbridge.TaskStatus{linkbridge.TaskAccepted, linkbridge.TaskInProgress}}, []string{"f", "d", "b"}},
		{"LinkWorker", linkbridge.ReferralFilter{LinkWorkerID: "lw-1"}, []string{"f", "b"}},
		{"Person", linkbridge.ReferralFilter{PersonID: refs["d"].PersonID}, []string{"d"}},
		{"Combined", linkbridge.ReferralFilter{ServiceODS: "RAT01", Statuses: []linkbridge.TaskStatus{linkbridge.TaskAccepted}, LinkWorkerID: "lw-1", ReferrerODS: "Y01234"}, []string{"f", "b"}},
		{"ReceivedRange", linkbridge.ReferralFilter{ReceivedFrom: at(1), ReceivedTo: at(4)}, []string{"d", "c", "b"}},
		{"ReceivedFrom", linkbridge.ReferralFilter{ReceivedFrom: at(4)}, []string{"f", "e"}},
		{"ReceivedTo", linkbridge.ReferralFilter{ReceivedTo: at(1)}, []string{"a"}},
		{"ReceivedOtherZone", linkbridge.ReferralFilter{ReceivedFrom: at(4).In(time.FixedZone("BST", 3600))}, []string{"f", "e"}},
		{"ServiceAndRange", linkbridge.ReferralFilter{ServiceODS: "RAT01", ReceivedFrom: at(2), ReceivedTo: at(5)}, []string{"e", "d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			f.Limit = 100
			got, total := list(t, f)
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Fatalf("ListReferrals ids mismatch (-want +got):\n%s", diff)
			}
			if total != len(tc.want) {
				t.Fatalf("ListReferrals total = %d, want %d", total, len(tc.want))
			}
		})
	}

	t.Run("Paging", func(t *testing.T) {
		for _, tc := range []struct {
			offset int
			want   []string
		}{
			{0, []string{"f", "e"}},
			{2, []string{"d", "b"}},
			{4, []string{"a"}},
			{6, nil},
		} {
			got, total := list(t, linkbridge.ReferralFilter{ServiceODS: "RAT01", Limit: 2, Offset: tc.offset})
			if diff := cmp.Diff(tc.want, got, cmpOpts...); diff != "" {
				t.Fatalf("ListReferrals(offset %d) ids mismatch (-want +got):\n%s", tc.offset, diff)
			}
			if total != 5 {
				t.Fatalf("ListReferrals(offset %d) total = %d, want 5", tc.offset, total)
			}
		}
	})

	t.Run("ErrLimit", func(t *testing.T) {
		for _, limit := range []int{0, -1} {
			_, _, err := s.ListReferrals(ctx, linkbridge.ReferralFilter{Limit: limit})
			checkError(t, err, linkbridge.EINVALID, "")
		}
	})
}

func testCountContacts(t *testing.T, open func(t *testing.T) CaseStore) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	a, b, c := createOne(t, s, nhs, "a"), createOne(t, s, nhs, "b"), createOne(t, s, nhs, "c")
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)

	add := func(in *linkbridge.Intake, ver int, at time.Time, contacts ...*linkbridge.Contact) {
		t.Helper()
		ref := nextVersion(in.Referral, at, nil)
		ref.Version = ver
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: ref, Contacts: contacts})
	}
	// a: two attended and one missed, over two changes; b: only missed ones;
	// c: none.
	add(a, 2, t1, contact("a1", a.Referral.ID, t1, true), contact("a2", a.Referral.ID, t1.Add(time.Hour), false))
	add(a, 3, t2, contact("a3", a.Referral.ID, t2, true))
	add(b, 2, t1, contact("b1", b.Referral.ID, t1, false), contact("b2", b.Referral.ID, t2, false))

	got, err := s.CountContacts(ctx, []string{a.Referral.ID, b.Referral.ID, c.Referral.ID, "sr-missing"})
	if err != nil {
		t.Fatalf("CountContacts returned unexpected error: %v", err)
	}
	// Referrals without attended contacts may be absent or 0.
	want := map[string]int{a.Referral.ID: 2, b.Referral.ID: 0, c.Referral.ID: 0, "sr-missing": 0}
	for id, n := range want {
		if got[id] != n {
			t.Fatalf("CountContacts[%s] = %d, want %d (all: %v)", id, got[id], n, got)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Fatalf("CountContacts returned %s, which was not asked for (all: %v)", id, got)
		}
	}

	t.Run("Subset", func(t *testing.T) {
		got, err := s.CountContacts(ctx, []string{a.Referral.ID})
		if err != nil {
			t.Fatalf("CountContacts returned unexpected error: %v", err)
		}
		if len(got) != 1 || got[a.Referral.ID] != 2 {
			t.Fatalf("CountContacts(%s) = %v, want only %s: 2", a.Referral.ID, got, a.Referral.ID)
		}
	})

	t.Run("None", func(t *testing.T) {
		got, err := s.CountContacts(ctx, nil)
		if err != nil {
			t.Fatalf("CountContacts(nil) returned unexpected error: %v", err)
		}
		if len(got) != 0 {
			t.Fatalf("CountContacts(nil) = %v, want empty", got)
		}
	})
}
