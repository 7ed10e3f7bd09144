package storetest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

func testClaimOrder(t *testing.T, open func(t *testing.T) OutboxStore) {
	s := open(t)
	p := newPeople(t, s, "a", "b", "c")
	a, b, c := p[0], p[1], p[2]
	a1 := a.enqueue(a.msg("Task", a.ref.TaskID, 2), a.msg("CarePlan", "cp-a", 1))
	b1 := b.one("Task", b.ref.TaskID, 2)
	a2 := a.one("Goal", "goal-a", 1)
	c1 := c.one("Task", c.ref.TaskID, 2)

	// The limit takes the oldest heads.
	msgs, err := s.ClaimOutbox(context.Background(), linkbridge.ChannelWriteBack, "w1", 2, tClaim)
	if err != nil {
		t.Fatalf("ClaimOutbox returned unexpected error: %v", err)
	}
	if diff := cmp.Diff([]int64{a1[0], b1}, idsOf(msgs), cmpOpts...); diff != "" {
		t.Fatalf("ClaimOutbox(limit 2) ids mismatch (-want +got):\n%s", diff)
	}
	// Claimed messages come whole, inflight and locked.
	for _, m := range msgs {
		want := getOutbox(t, s, m.ID)
		if diff := cmp.Diff(want, m, cmpOpts...); diff != "" {
			t.Fatalf("claimed message %d differs from GetOutbox (-get +claimed):\n%s", m.ID, diff)
		}
		if m.State != linkbridge.OutboxInflight || m.LockedBy != "w1" || !m.LockedAt.Equal(tClaim) ||
			len(m.Body) == 0 || m.NHSNumber == "" {
			t.Fatalf("claimed message = %+v; want inflight, locked by w1 at %s, with body and NHS number", m, tClaim)
		}
	}

	// The keys of inflight messages are skipped: only c's head is left.
	checkClaim(t, s, 10, tClaim, c1)
	checkClaim(t, s, 10, tClaim)

	// Delivering a key's head lets its next message go, in id order.
	mustComplete(t, s, a1[0], tClaim)
	checkClaim(t, s, 10, tClaim, a1[1])
	mustComplete(t, s, a1[1], tClaim)
	mustComplete(t, s, b1, tClaim)
	checkClaim(t, s, 10, tClaim, a2)
	checkClaim(t, s, 10, tClaim)

	t.Run("ErrArguments", func(t *testing.T) {
		for _, tc := range []struct {
			worker string
			limit  int
		}{{"", 10}, {"w1", 0}} {
			_, err := s.ClaimOutbox(context.Background(), linkbridge.ChannelWriteBack, tc.worker, tc.limit, tClaim)
			checkError(t, err, linkbridge.EINVALID, "")
		}
	})
}

func testKeyWaits(t *testing.T, open func(t *testing.T) OutboxStore) {
	s := open(t)
	p := newPeople(t, s, "a", "b")
	a, b := p[0], p[1]
	a1, a2 := a.one("Task", a.ref.TaskID, 2), a.one("CarePlan", "cp-a", 1)
	b1, b2 := b.one("Task", b.ref.TaskID, 2), b.one("CarePlan", "cp-b", 1)

	checkClaim(t, s, 10, tClaim, a1, b1)
	// A failed attempt keeps the key waiting, however long the wait.
	mustRetryLater(t, s, a1, tClaim)
	checkClaim(t, s, 10, tClaim.Add(time.Hour), a1)
	// A dead head lets the key move on; so does a discarded one.
	mustDeadLetter(t, s, a1)
	mustRetryLater(t, s, b1, tClaim.Add(time.Hour))
	if err := s.DiscardOutbox(context.Background(), b1); err != nil {
		t.Fatalf("DiscardOutbox(%d) returned unexpected error: %v", b1, err)
	}
	checkClaim(t, s, 10, tClaim, a2, b2)

	// A requeued message goes back to its place in id order, but never out
	// beside one that is inflight: a1 is a's head again, and waits for a2.
	if err := s.RequeueOutbox(context.Background(), a1, tClaim); err != nil {
		t.Fatalf("RequeueOutbox(%d) returned unexpected error: %v", a1, err)
	}
	checkClaim(t, s, 10, tClaim)
	mustComplete(t, s, a2, tClaim)
	checkClaim(t, s, 10, tClaim, a1)
}

func testNotDue(t *testing.T, open func(t *testing.T) OutboxStore) {
	s := open(t)
	p := newPeople(t, s, "a", "b", "c")
	a, b, c := p[0], p[1], p[2]
	tLater := tClaim.Add(time.Hour)

	// a's first message is rescheduled; c's is enqueued due later.
	a1 := a.one("Task", a.ref.TaskID, 2)
	b1 := b.one("Task", b.ref.TaskID, 2)
	checkClaim(t, s, 10, tClaim, a1, b1)
	mustRetryLater(t, s, a1, tLater)
	late := c.msg("Task", c.ref.TaskID, 2)
	late.AvailableAt = tLater
	c1 := c.enqueue(late)[0]
	a2 := a.one("CarePlan", "cp-a", 1)
	c2 := c.one("CarePlan", "cp-c", 1)

	got := getOutbox(t, s, a1)
	if got.State != linkbridge.OutboxPending || got.Attempts != 1 || !got.AvailableAt.Equal(tLater) ||
		got.LastStatus != 503 || got.LastError != "unavailable" || got.LockedBy != "" || !got.LockedAt.IsZero() {
		t.Fatalf("message after RetryOutboxLater = %+v; want pending, 1 attempt, due %s, status 503, unlocked", got, tLater)
	}

	// Neither a nor c has a due head, and both keys wait for it.
	checkClaim(t, s, 10, tClaim)
	checkClaim(t, s, 10, tLater.Add(-time.Nanosecond))
	// Due at tLater exactly.
	checkClaim(t, s, 10, tLater, a1, c1)
	mustComplete(t, s, a1, tLater)
	mustComplete(t, s, c1, tLater)
	checkClaim(t, s, 10, tLater, a2, c2)
	if got := getOutbox(t, s, a1); got.Attempts != 1 || got.State != linkbridge.OutboxDelivered {
		t.Fatalf("message after delivery = %+v; want delivered, 1 failed attempt", got)
	}
}

func testConcurrentClaims(t *testing.T, open func(t *testing.T) OutboxStore) {
	const (
		people  = 8
		perKey  = 4
		workers = 4
	)
	ctx := context.Background()
	s := open(t)
	names := make([]string, people)
	for i := range names {
		names[i] = strconv.Itoa(i)
	}
	var want []int64
	for i, p := range newPeople(t, s, names...) {
		// Two changes per person, interleaved with the others'; no message
		// supersedes another.
		for c := range perKey / 2 {
			want = append(want, p.enqueue(p.msg("Goal", fmt.Sprintf("g-%d-%d", i, 2*c), 1),
				p.msg("Goal", fmt.Sprintf("g-%d-%d", i, 2*c+1), 1))...)
		}
	}

	var (
		mu        sync.Mutex
		claimedBy = map[int64]string{}   // message → worker
		busy      = map[string]bool{}    // order key → a message is out
		delivered = map[string][]int64{} // order key → ids in delivery order
		done      atomic.Int64
	)
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	for w := range workers {
		worker := "w" + strconv.Itoa(w)
		wg.Go(func() {
			for done.Load() < int64(len(want)) {
				if time.Now().After(deadline) {
					t.Errorf("%s: %d of %d messages delivered before the deadline", worker, done.Load(), len(want))
					return
				}
				msgs, err := s.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, worker, 3, tClaim)
				if err != nil {
					t.Errorf("%s: ClaimOutbox returned unexpected error: %v", worker, err)
					return
				}
				if len(msgs) == 0 {
					runtime.Gosched()
					continue
				}
				mu.Lock()
				for _, m := range msgs {
					if by, ok := claimedBy[m.ID]; ok {
						t.Errorf("message %d claimed by %s and again by %s", m.ID, by, worker)
					}
					claimedBy[m.ID] = worker
					if busy[m.OrderKey] {
						t.Errorf("%s claimed message %d while another message of key %s was out", worker, m.ID, m.OrderKey)
					}
					busy[m.OrderKey] = true
				}
				mu.Unlock()
				for _, m := range msgs {
					// The key is free before the completion commits: no
					// claim can see its next message before that.
					mu.Lock()
					busy[m.OrderKey] = false
					delivered[m.OrderKey] = append(delivered[m.OrderKey], m.ID)
					mu.Unlock()
					if err := s.CompleteOutbox(ctx, m.Claim(), 200, tClaim); err != nil {
						t.Errorf("%s: CompleteOutbox(%d) returned unexpected error: %v", worker, m.ID, err)
						return
					}
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(claimedBy) != len(want) {
		t.Fatalf("%d messages claimed, want %d", len(claimedBy), len(want))
	}
	for key, ids := range delivered {
		if !slices.IsSorted(ids) || len(ids) != perKey {
			t.Fatalf("key %s delivered %v; want %d messages in id order", key, ids, perKey)
		}
	}
	st, err := s.OutboxStats(ctx)
	if err != nil {
		t.Fatalf("OutboxStats returned unexpected error: %v", err)
	}
	if st.Counts[linkbridge.OutboxDelivered] != len(want) {
		t.Fatalf("OutboxStats delivered = %d, want %d", st.Counts[linkbridge.OutboxDelivered], len(want))
	}
}
