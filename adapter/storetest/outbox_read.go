package storetest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

func testListOutbox(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	p := newPeople(t, s, "a", "b", "c")
	a, b, c := p[0], p[1], p[2]
	// Created a minute apart.
	a1 := a.one("Task", a.ref.TaskID, 2)
	b1 := b.one("Task", b.ref.TaskID, 2)
	a2 := a.one("CarePlan", "cp-a", 1)
	b2 := b.one("CarePlan", "cp-b", 1)
	checkClaim(t, s, 10, tClaim, a1, b1)
	mustComplete(t, s, b1, tClaim)
	createdB1 := getOutbox(t, s, b1).CreatedAt

	for _, tc := range []struct {
		name string
		f    linkbridge.OutboxFilter
		want []int64
	}{
		{"All", linkbridge.OutboxFilter{}, []int64{b2, a2, b1, a1}},
		{"OrderKey", linkbridge.OutboxFilter{OrderKey: a.key()}, []int64{a2, a1}},
		{"Referral", linkbridge.OutboxFilter{ReferralID: b.ref.ID}, []int64{b2, b1}},
		{"State", linkbridge.OutboxFilter{States: []linkbridge.OutboxState{linkbridge.OutboxPending}}, []int64{b2, a2}},
		{"States", linkbridge.OutboxFilter{States: []linkbridge.OutboxState{linkbridge.OutboxInflight, linkbridge.OutboxDelivered}}, []int64{b1, a1}},
		{"OlderThan", linkbridge.OutboxFilter{OlderThan: createdB1}, []int64{a1}},
		{"OlderThanOtherZone", linkbridge.OutboxFilter{OlderThan: createdB1.Add(time.Nanosecond).In(time.FixedZone("BST", 3600))}, []int64{b1, a1}},
		{"CreatedSince", linkbridge.OutboxFilter{CreatedSince: createdB1}, []int64{b2, a2, b1}},
		{"CreatedSinceOtherZone", linkbridge.OutboxFilter{CreatedSince: createdB1.Add(time.Microsecond).In(time.FixedZone("BST", 3600))}, []int64{b2, a2}},
		{"OlderThanAndCreatedSince", linkbridge.OutboxFilter{CreatedSince: createdB1, OlderThan: getOutbox(t, s, b2).CreatedAt}, []int64{a2, b1}},
		{"Combined", linkbridge.OutboxFilter{OrderKey: b.key(), States: []linkbridge.OutboxState{linkbridge.OutboxPending}}, []int64{b2}},
		{"Limit", linkbridge.OutboxFilter{Limit: 3}, []int64{b2, a2, b1}},
		{"None", linkbridge.OutboxFilter{OrderKey: "p-missing"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListOutbox(ctx, tc.f)
			if err != nil {
				t.Fatalf("ListOutbox(%+v) returned unexpected error: %v", tc.f, err)
			}
			if diff := cmp.Diff(tc.want, idsOf(got), cmpOpts...); diff != "" {
				t.Fatalf("ListOutbox(%+v) ids mismatch (-want +got):\n%s", tc.f, diff)
			}
			for _, m := range got {
				if diff := cmp.Diff(getOutbox(t, s, m.ID), m, cmpOpts...); diff != "" {
					t.Fatalf("listed message %d differs from GetOutbox (-get +list):\n%s", m.ID, diff)
				}
			}
		})
	}

	t.Run("DefaultLimit", func(t *testing.T) {
		msgs := make([]*linkbridge.OutboxMessage, 120)
		for i := range msgs {
			msgs[i] = c.msg("Goal", "goal-c-"+strconv.Itoa(i), 1)
		}
		c.enqueue(msgs...)
		for _, limit := range []int{0, -1} {
			got, err := s.ListOutbox(ctx, linkbridge.OutboxFilter{Limit: limit})
			if err != nil {
				t.Fatalf("ListOutbox(limit %d) returned unexpected error: %v", limit, err)
			}
			if len(got) != 100 || got[0].ID != msgs[len(msgs)-1].ID {
				t.Fatalf("ListOutbox(limit %d) = %d messages from %d; want the newest 100", limit, len(got), got[0].ID)
			}
		}
	})
}

func testOutboxStats(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	stats := func() *linkbridge.OutboxStats {
		t.Helper()
		st, err := s.OutboxStats(ctx)
		if err != nil {
			t.Fatalf("OutboxStats returned unexpected error: %v", err)
		}
		return st
	}
	counts := func(pending, inflight, delivered, dead, discarded, superseded int) map[linkbridge.OutboxState]int {
		return map[linkbridge.OutboxState]int{
			linkbridge.OutboxPending: pending, linkbridge.OutboxInflight: inflight, linkbridge.OutboxDelivered: delivered,
			linkbridge.OutboxDead: dead, linkbridge.OutboxDiscarded: discarded, linkbridge.OutboxSuperseded: superseded,
		}
	}
	// Counts may leave out states with no messages.
	checkCounts := func(want map[linkbridge.OutboxState]int, got *linkbridge.OutboxStats) {
		t.Helper()
		for st, n := range want {
			if got.Counts[st] != n {
				t.Fatalf("OutboxStats counts = %v, want %v", got.Counts, want)
			}
		}
	}

	st := stats()
	checkCounts(counts(0, 0, 0, 0, 0, 0), st)
	if !st.OldestPending.IsZero() {
		t.Fatalf("OutboxStats of an empty outbox: OldestPending = %s, want zero", st.OldestPending)
	}

	p := newPeople(t, s, "a", "b", "c", "d")
	a, b, c, d := p[0], p[1], p[2], p[3]
	a1 := a.one("Task", a.ref.TaskID, 2) // delivered: the oldest, but done
	b1 := b.one("Task", b.ref.TaskID, 2) // inflight: the oldest queued
	c1 := c.one("Task", c.ref.TaskID, 2) // dead
	d1 := d.one("Task", d.ref.TaskID, 2) // superseded by d2
	d2 := d.one("Task", d.ref.TaskID, 3) // pending (retried later)
	checkClaim(t, s, 1, tClaim, a1)
	mustComplete(t, s, a1, tClaim)
	checkClaim(t, s, 10, tClaim, b1, c1, d2)
	a2 := a.one("CarePlan", "cp-a", 1) // pending
	mustDeadLetter(t, s, c1)
	mustRetryLater(t, s, d2, tClaim.Add(time.Hour))
	checkStates(t, s, map[int64]linkbridge.OutboxState{d1: linkbridge.OutboxSuperseded, a2: linkbridge.OutboxPending})

	st = stats()
	checkCounts(counts(2, 1, 1, 1, 0, 1), st)
	if want := getOutbox(t, s, b1).CreatedAt; !st.OldestPending.Equal(want) {
		t.Fatalf("OutboxStats OldestPending = %s, want %s (message %d)", st.OldestPending, want, b1)
	}

	// A discarded message counts as such; the oldest queued is now d2.
	if err := s.DiscardOutbox(ctx, a2); err != nil {
		t.Fatalf("DiscardOutbox returned unexpected error: %v", err)
	}
	mustComplete(t, s, b1, tClaim)
	st = stats()
	checkCounts(counts(1, 0, 2, 1, 1, 1), st)
	if want := getOutbox(t, s, d2).CreatedAt; !st.OldestPending.Equal(want) {
		t.Fatalf("OutboxStats OldestPending = %s, want %s (message %d)", st.OldestPending, want, d2)
	}
}
