package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

func testEnqueue(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	a := newPeople(t, s, "a")[0]

	task, plan := a.msg("Task", a.ref.TaskID, 2), a.msg("CarePlan", "cp-a", 1)
	ch := a.change(task, plan)
	ch.Resources = []*linkbridge.Resource{taskResource(ch.Referral, 2, ch.Referral.UpdatedAt)}
	mustUpdate(t, s, ch)
	a.ref, *a.clock = ch.Referral, ch.Referral.UpdatedAt

	if task.ID == 0 || plan.ID <= task.ID {
		t.Fatalf("outbox ids after UpdateReferral = %d, %d; want increasing, not 0", task.ID, plan.ID)
	}
	// The change and its messages are stored together.
	checkReferral(t, s, ch.Referral)
	checkResource(t, s, ch.Resources[0])
	for _, want := range []*linkbridge.OutboxMessage{task, plan} {
		got := getOutbox(t, s, want.ID)
		if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Fatalf("GetOutbox(%d) mismatch (-want +got):\n%s", want.ID, diff)
		}
	}
	got, err := s.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: a.ref.ID})
	if err != nil {
		t.Fatalf("ListOutbox returned unexpected error: %v", err)
	}
	if diff := cmp.Diff([]*linkbridge.OutboxMessage{plan, task}, got, cmpOpts...); diff != "" {
		t.Fatalf("ListOutbox mismatch (-want +got):\n%s", diff)
	}

	// A change without messages enqueues none.
	a.enqueue()
	if got, err := s.ListOutbox(ctx, linkbridge.OutboxFilter{}); err != nil || len(got) != 2 {
		t.Fatalf("ListOutbox after a change without messages = %d messages, %v; want 2", len(got), err)
	}

	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := s.GetOutbox(ctx, plan.ID+100)
		checkError(t, err, linkbridge.ENOTFOUND, "")
	})
}

func testEnqueueRollback(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	a := newPeople(t, s, "a")[0]
	first := a.one("Task", a.ref.TaskID, 2)

	for _, tc := range []struct {
		name string
		bad  func(ch *linkbridge.ReferralChange)
	}{
		{"StaleReferralVersion", func(ch *linkbridge.ReferralChange) { ch.Referral.Version-- }},
		{"StaleResourceVersion", func(ch *linkbridge.ReferralChange) {
			ch.Resources = []*linkbridge.Resource{taskResource(ch.Referral, 1, ch.Referral.UpdatedAt)}
		}},
	} {
		ch := a.change(a.msg("Task", a.ref.TaskID, 3), a.msg("CarePlan", "cp-a", 1))
		ch.MessageID = "msg-outbox"
		tc.bad(ch)
		err := s.UpdateReferral(ctx, ch)
		if linkbridge.ErrorCode(err) != linkbridge.EPRECONDITION {
			t.Fatalf("%s: UpdateReferral error %v, want code %q", tc.name, err, linkbridge.EPRECONDITION)
		}
		got, err := s.ListOutbox(ctx, linkbridge.OutboxFilter{})
		if err != nil {
			t.Fatalf("ListOutbox returned unexpected error: %v", err)
		}
		if diff := cmp.Diff([]int64{first}, idsOf(got), cmpOpts...); diff != "" {
			t.Fatalf("%s: outbox after a failed change mismatch (-want +got):\n%s", tc.name, diff)
		}
		st, err := s.OutboxStats(ctx)
		if err != nil {
			t.Fatalf("OutboxStats returned unexpected error: %v", err)
		}
		if st.Counts[linkbridge.OutboxPending] != 1 {
			t.Fatalf("%s: OutboxStats pending = %d after a failed change, want 1", tc.name, st.Counts[linkbridge.OutboxPending])
		}
	}
	// Only the first message is claimed, none of the failed changes'.
	checkClaim(t, s, 10, tClaim, first)

	// The change itself, valid, enqueues its messages.
	ch := a.change(a.msg("Task", a.ref.TaskID, 3), a.msg("CarePlan", "cp-a", 1))
	ch.MessageID = "msg-outbox"
	mustUpdate(t, s, ch)
	if got, err := s.ListOutbox(ctx, linkbridge.OutboxFilter{}); err != nil || len(got) != 3 {
		t.Fatalf("ListOutbox after the valid change = %d messages, %v; want 3", len(got), err)
	}
}

// testEnqueueErase checks that a message's Erase flag is stored with it and
// returned by every read: GetOutbox, ListOutbox and ClaimOutbox.
func testEnqueueErase(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	p := newPeople(t, s, "a", "b")
	a, b := p[0], p[1]
	erase := a.msg("Goal", "goal-a", 2)
	erase.Erase = true
	a.enqueue(erase)
	keep := b.msg("Goal", "goal-b", 2)
	b.enqueue(keep)
	want := map[int64]bool{erase.ID: true, keep.ID: false}

	check := func(t *testing.T, op string, msgs []*linkbridge.OutboxMessage) {
		t.Helper()
		if len(msgs) != len(want) {
			t.Fatalf("%s returned %d messages, want %d", op, len(msgs), len(want))
		}
		for _, m := range msgs {
			if m.Erase != want[m.ID] {
				t.Fatalf("%s: message %d Erase = %t, want %t", op, m.ID, m.Erase, want[m.ID])
			}
		}
	}
	t.Run("GetOutbox", func(t *testing.T) {
		for _, m := range []*linkbridge.OutboxMessage{erase, keep} {
			if diff := cmp.Diff(m, getOutbox(t, s, m.ID), cmpOpts...); diff != "" {
				t.Fatalf("GetOutbox(%d) mismatch (-want +got):\n%s", m.ID, diff)
			}
		}
	})
	t.Run("ListOutbox", func(t *testing.T) {
		got, err := s.ListOutbox(ctx, linkbridge.OutboxFilter{})
		if err != nil {
			t.Fatalf("ListOutbox returned unexpected error: %v", err)
		}
		check(t, "ListOutbox", got)
	})
	t.Run("ClaimOutbox", func(t *testing.T) {
		got, err := s.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "w1", 10, tClaim)
		if err != nil {
			t.Fatalf("ClaimOutbox returned unexpected error: %v", err)
		}
		check(t, "ClaimOutbox", got)
		// And still after the claim, inflight.
		check(t, "GetOutbox after the claim", []*linkbridge.OutboxMessage{getOutbox(t, s, erase.ID), getOutbox(t, s, keep.ID)})
	})
}
