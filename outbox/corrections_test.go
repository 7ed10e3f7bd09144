package outbox_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/outbox"
)

// TestWriteBackCorrections: a contact amended and one withdrawn, a measure
// amended and the baseline withdrawn, a goal withdrawn
// (docs/domain.md#corrections) reach the strict reference GP as new
// versions of the same copies — corrected, entered-in-error — and the GP
// record then matches the case's view (the model test's check).
func TestWriteBackCorrections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newModelEnv(t, "sqlite", modelGP{})
	id, nhs := e.receive(t, rand.New(rand.NewPCG(14, 4)))
	must := func(cr *linkbridge.CaseRecord, err error) *linkbridge.CaseRecord {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	// Everything is recorded six hours after the referral came in, when
	// it had happened.
	now := time.Now().UTC().Add(6 * time.Hour)
	e.svc.Now = func() time.Time { return now }
	e.relay.Now = e.svc.Now
	must(e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1", Name: "Sam"}}))
	must(e.svc.AddContact(ctx, id, 0, linkbridge.Contact{At: now.Add(-3 * time.Hour), Mode: linkbridge.ContactPhone, Minutes: 20, Attended: true}))
	must(e.svc.AddContact(ctx, id, 0, linkbridge.Contact{At: now.Add(-2 * time.Hour), Mode: linkbridge.ContactVideo, Minutes: 30, Attended: true}))
	must(e.svc.SetPlan(ctx, id, 0, linkbridge.Plan{Goals: []linkbridge.Goal{
		{Description: "Walk every week", Importance: 8, Confidence: 6, Status: linkbridge.GoalActive},
		{Description: "Someone else's goal", Importance: 5, Confidence: 5, Status: linkbridge.GoalActive}}}))
	must(e.svc.AddMeasure(ctx, id, 0, linkbridge.Measure{Instrument: linkbridge.ONS4, Timepoint: linkbridge.TimepointBaseline, Items: []int{4, 5, 4, 6}, TakenAt: now.Add(-3 * time.Hour)}))
	cr := must(e.svc.AddMeasure(ctx, id, 0, linkbridge.Measure{Instrument: linkbridge.ONS4, Timepoint: linkbridge.TimepointReview, Items: []int{6, 6, 5, 4}, TakenAt: now.Add(-time.Hour)}))
	e.drain(t)

	c1, c2 := cr.Contacts[0].ID, cr.Contacts[1].ID
	base, review := cr.Measures[0].ID, cr.Measures[1].ID
	goal := cr.Plan.Goals[1].ID
	w := linkbridge.Withdrawal{Reason: "recorded in error"}
	must(e.svc.AmendContact(ctx, id, c1, 0, linkbridge.Contact{At: now.Add(-4 * time.Hour), Mode: linkbridge.ContactHomeVisit, Minutes: 45, Attended: true}))
	must(e.svc.WithdrawContact(ctx, id, c2, 0, w))
	must(e.svc.AmendMeasure(ctx, id, review, 0, linkbridge.Measure{Instrument: linkbridge.ONS4, Timepoint: linkbridge.TimepointReview, Items: []int{7, 7, 6, 3}, TakenAt: now.Add(-time.Hour)}))
	must(e.svc.WithdrawMeasure(ctx, id, base, 0, w))
	must(e.svc.WithdrawGoal(ctx, id, goal, 0, w))
	r := e.relay // a relay starts once: the same one again
	e.relay = &outbox.Relay{Store: r.Store, Worker: r.Worker, Logger: r.Logger, Sender: r.Sender, PollInterval: r.PollInterval,
		Concurrency: r.Concurrency, Backoff: r.Backoff, Now: r.Now}
	e.drain(t)

	for _, tc := range []struct{ typ, id, field, want string }{
		{"Encounter", c1, "status", "finished"},
		{"Encounter", c2, "status", "entered-in-error"},
		{"Observation", review, "status", "corrected"},
		{"Observation", base, "status", "entered-in-error"},
		{"Goal", goal, "lifecycleStatus", "entered-in-error"},
	} {
		got, err := e.gpByKey(tc.typ, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0][tc.field] != tc.want {
			t.Errorf("GP copies of %s/%s = %v, want one with %s %s", tc.typ, tc.id, got, tc.field, tc.want)
		}
	}
	if diff := e.check(ctx, id, nhs); diff != "" {
		t.Errorf("the GP record differs from the case's view: %s", diff)
	}
}

// TestWriteBackReopened: an episode completed, then reopened by its link
// worker (docs/domain.md#one-open-referral), reaches the strict reference
// GP as a second episode beside the first: the new episode's Task,
// CarePlan and its own referral code (the person agreed again), the first
// episode's copies untouched; each GP record matches its case's view.
func TestWriteBackReopened(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newModelEnv(t, "sqlite", modelGP{})
	id, nhs := e.receive(t, rand.New(rand.NewPCG(14, 6)))
	must := func(cr *linkbridge.CaseRecord, err error) *linkbridge.CaseRecord {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	now := time.Now().UTC().Add(6 * time.Hour)
	e.svc.Now = func() time.Time { return now }
	e.in.Now, e.relay.Now = e.svc.Now, e.svc.Now
	lw := &linkbridge.LinkWorker{ID: "lw-1", Name: "Sam"}
	at := func(h int) *time.Time { t := now.Add(time.Duration(h) * time.Hour); return &t }
	must(e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: lw, At: at(-5)}))
	must(e.svc.AddContact(ctx, id, 0, linkbridge.Contact{At: *at(-4), Mode: linkbridge.ContactPhone, Minutes: 20, Attended: true}))
	first := must(e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met", At: at(-3)}))

	res, err := e.in.Reopen(ctx, first.Referral, *at(-2))
	if err != nil {
		t.Fatal(err)
	}
	again := res.Referral.ID
	must(e.svc.Act(ctx, again, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: lw, At: at(-2)}))
	cr := must(e.svc.AddContact(ctx, again, 0, linkbridge.Contact{At: *at(-1), Mode: linkbridge.ContactFaceToFace, Minutes: 40, Attended: true}))
	if cr.Referral.Link != (linkbridge.ReferralLink{ReferralID: id, Kind: linkbridge.LinkReopened}) || cr.Referral.AgreedAt.IsZero() {
		t.Fatalf("reopened episode = %+v, want linked to %s as reopened, the person agreed", cr.Referral, id)
	}
	e.drain(t)

	for ep, sibling := range map[string]string{id: again, again: id} {
		got, err := e.gpByKey("Procedure", fhirmap.AcceptanceID(ep))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Errorf("GP copies of the referral code of episode %s: %v, want one", ep, got)
		}
		if diff := e.check(ctx, ep, nhs, sibling); diff != "" {
			t.Errorf("episode %s: the GP record differs from the case's view: %s", ep, diff)
		}
	}
}
