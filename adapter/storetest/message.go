package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

func testMessageProcessed(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	ctx := context.Background()
	s := open(t)
	nhs := nhsNumbers()
	check := func(t *testing.T, id string, want bool) {
		t.Helper()
		got, err := s.MessageProcessed(ctx, id)
		if err != nil {
			t.Fatalf("MessageProcessed(%q) returned unexpected error: %v", id, err)
		}
		if got != want {
			t.Fatalf("MessageProcessed(%q) = %v, want %v", id, got, want)
		}
	}

	in := newIntake("a", nhs())
	check(t, in.MessageID, false)
	mustCreate(t, s, in)
	check(t, in.MessageID, true)

	t1 := t0.Add(time.Hour)
	ref := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
	ch := &linkbridge.ReferralChange{Referral: ref, Resources: []*linkbridge.Resource{taskResource(ref, 2, t1)}, MessageID: "msg-update"}
	check(t, ch.MessageID, false)
	mustUpdate(t, s, ch)
	check(t, ch.MessageID, true)

	t.Run("NotRecordedOnFailure", func(t *testing.T) {
		// A failed create and a failed update record nothing.
		dup := newIntake("b", nhs())
		dup.Referral.Identifier = in.Referral.Identifier
		dup.MessageID = "msg-failed-create"
		if err := s.CreateReferral(ctx, dup); err == nil {
			t.Fatal("CreateReferral with a stored identifier returned no error")
		}
		check(t, dup.MessageID, false)

		stale := *ch
		stale.MessageID = "msg-failed-update"
		if err := s.UpdateReferral(ctx, &stale); err == nil {
			t.Fatal("UpdateReferral at a stale version returned no error")
		}
		check(t, stale.MessageID, false)
	})

	t.Run("Unknown", func(t *testing.T) {
		check(t, "msg-never-sent", false)
		check(t, "", false)
	})
}

// testEpisodeFields checks that every Referral field round-trips: the link
// worker, consent, decline and discharge reasons, summary and episode times,
// on create and on update, and that unsetting them is stored too.
func testEpisodeFields(t *testing.T, open func(t *testing.T) linkbridge.Store) {
	t.Run("Create", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		r := in.Referral
		r.Status = linkbridge.TaskAccepted
		r.LinkWorker = linkbridge.LinkWorker{ID: "lw-1", Name: "Sam Linkworker"}
		r.Consent = linkbridge.ConsentCodesOnly
		r.AcceptedAt = t0.Add(time.Minute)
		mustCreate(t, s, in)
		checkReferral(t, s, r)
	})

	t.Run("Update", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		mustCreate(t, s, in)

		t1, t2, t3 := t0.Add(time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)
		accepted := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskAccepted
			r.LinkWorker = linkbridge.LinkWorker{ID: "lw-1", Name: "Sam Linkworker"}
			r.Consent = linkbridge.ConsentFull
			r.AcceptedAt = t1
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: accepted})
		checkReferral(t, s, accepted)

		completed := nextVersion(accepted, t2, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskCompleted
			r.DischargeReason = "goals-met"
			r.DischargeSummary = "Joined a walking group; feels less isolated."
			r.CompletedAt = t2
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: completed})
		checkReferral(t, s, completed)

		// Fields can be cleared again (entered-in-error, say).
		cleared := nextVersion(completed, t3, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskEnteredInError
			r.LinkWorker = linkbridge.LinkWorker{}
			r.Consent = ""
			r.DischargeReason, r.DischargeSummary = "", ""
			r.AcceptedAt, r.CompletedAt = time.Time{}, time.Time{}
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: cleared})
		checkReferral(t, s, cleared)
	})

	t.Run("Decline", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := newIntake("a", nhsNumbers()())
		mustCreate(t, s, in)
		t1 := t0.Add(time.Hour)
		declined := nextVersion(in.Referral, t1, func(r *linkbridge.Referral) {
			r.Status = linkbridge.TaskRejected
			r.DeclineReason = "out-of-area"
			r.StatusReason = "out of area"
		})
		mustUpdate(t, s, &linkbridge.ReferralChange{Referral: declined})
		checkReferral(t, s, declined)
	})
}
