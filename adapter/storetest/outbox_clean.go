package storetest

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// deleteFinished deletes finished messages before cut in batches of limit
// until a batch deletes none (a batch may free a delivered message that an
// older discarded one held), and returns the batch counts. Fatal on error.
func deleteFinished(t *testing.T, s linkbridge.OutboxStore, cut time.Time, limit int) []int {
	t.Helper()
	var counts []int
	for {
		n, err := s.DeleteFinishedOutbox(context.Background(), cut, limit)
		if err != nil {
			t.Fatalf("DeleteFinishedOutbox(%s, %d) returned unexpected error: %v", cut.Format(time.RFC3339), limit, err)
		}
		if n > limit {
			t.Fatalf("DeleteFinishedOutbox(limit %d) deleted %d messages", limit, n)
		}
		counts = append(counts, n)
		if n == 0 {
			return counts
		}
	}
}

// checkGone fails unless each message is deleted (ENOTFOUND).
func checkGone(t *testing.T, s linkbridge.OutboxStore, ids ...int64) {
	t.Helper()
	for _, id := range ids {
		if m, err := s.GetOutbox(context.Background(), id); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			t.Fatalf("GetOutbox(%d) = %+v, %v; want ENOTFOUND (deleted)", id, m, err)
		}
	}
}

func testDeleteFinished(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	// Messages finish at tOld or tNew; the cut-off lies between.
	tOld, tCut, tNew := tClaim, tClaim.Add(time.Hour), tClaim.Add(2*time.Hour)
	tFar := tNew.Add(24 * time.Hour)
	p := newPeople(t, s, "done", "superseded", "queued", "dead", "discarded", "order")
	done, sup, queued, dead, disc, ord := p[0], p[1], p[2], p[3], p[4], p[5]

	// done: version 2 delivered long ago, version 3 recently.
	done2 := done.one("Task", done.ref.TaskID, 2)
	// superseded: version 2 superseded by version 3 at tOld, delivered at
	// tNew.
	sup2, sup3 := sup.one("Task", sup.ref.TaskID, 2), sup.one("Task", sup.ref.TaskID, 3)
	// queued: one inflight, one pending behind it.
	q2, qcp := queued.one("Task", queued.ref.TaskID, 2), queued.one("CarePlan", "cp-q", 1)
	// dead: version 2 dead-lettered, version 3 delivered long ago.
	dead2 := dead.one("Task", dead.ref.TaskID, 2)
	// discarded: version 2 discarded by an operator, version 3 delivered
	// long ago.
	disc2 := disc.one("Task", disc.ref.TaskID, 2)
	// order: version 2 delivered long ago; a care plan and version 3 queue
	// behind it.
	ord2 := ord.one("Task", ord.ref.TaskID, 2)
	if err := s.DiscardOutbox(ctx, disc2); err != nil {
		t.Fatalf("DiscardOutbox returned unexpected error: %v", err)
	}
	checkClaim(t, s, 20, tOld, done2, sup3, q2, dead2, ord2)
	checkStates(t, s, map[int64]linkbridge.OutboxState{sup2: linkbridge.OutboxSuperseded})
	mustDeadLetter(t, s, dead2)
	for _, id := range []int64{done2, ord2} {
		mustComplete(t, s, id, tOld)
	}
	mustComplete(t, s, sup3, tNew)
	done3, dead3, disc3 := done.one("Task", done.ref.TaskID, 3), dead.one("Task", dead.ref.TaskID, 3), disc.one("Task", disc.ref.TaskID, 3)
	checkClaim(t, s, 20, tOld, done3, dead3, disc3)
	for _, id := range []int64{dead3, disc3} {
		mustComplete(t, s, id, tOld)
	}
	mustComplete(t, s, done3, tNew)
	ordcp, ord3 := ord.one("CarePlan", "cp-o", 1), ord.one("Task", ord.ref.TaskID, 3)

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, limit := range []int{0, -1} {
			n, err := s.DeleteFinishedOutbox(ctx, tFar, limit)
			checkError(t, err, linkbridge.EINVALID, "")
			if n != 0 {
				t.Fatalf("DeleteFinishedOutbox(limit %d) = %d, want 0", limit, n)
			}
		}
	})

	// Only what finished before the cut-off goes: delivered long ago, and
	// superseded at tOld. The delivered version 3 of dead and discarded
	// stays: its older version may be requeued.
	if got := deleteFinished(t, s, tCut, 100); !slices.Equal(got, []int{3, 0}) {
		t.Fatalf("deleted in batches %v, want [3 0] (done 2, superseded 2, order 2)", got)
	}
	checkGone(t, s, done2, sup2, ord2)
	checkStates(t, s, map[int64]linkbridge.OutboxState{
		done3: linkbridge.OutboxDelivered, sup3: linkbridge.OutboxDelivered,
		q2: linkbridge.OutboxInflight, qcp: linkbridge.OutboxPending,
		dead2: linkbridge.OutboxDead, dead3: linkbridge.OutboxDelivered,
		disc2: linkbridge.OutboxDiscarded, disc3: linkbridge.OutboxDelivered,
		ordcp: linkbridge.OutboxPending, ord3: linkbridge.OutboxPending,
	})

	// Ordering is unaffected: order's care plan is its head, then version 3
	// (not superseded: the delivered version 2 it follows is gone, and was
	// older anyway); queued's care plan waits for its inflight task.
	checkClaim(t, s, 20, tNew, ordcp)
	mustComplete(t, s, ordcp, tNew)
	checkClaim(t, s, 20, tNew, ord3)
	mustComplete(t, s, ord3, tNew)

	// A cut-off after everything (the discard too, stamped by the store's
	// clock) still leaves the queued and dead messages, and the delivered
	// version an older dead version may still need; the discarded version 2
	// goes, and then (its older version gone for good) discarded's version
	// 3.
	deleteFinished(t, s, time.Now().Add(24*time.Hour), 100)
	checkGone(t, s, done3, sup3, disc2, disc3, ordcp, ord3)
	checkStates(t, s, map[int64]linkbridge.OutboxState{
		q2: linkbridge.OutboxInflight, qcp: linkbridge.OutboxPending,
		dead2: linkbridge.OutboxDead, dead3: linkbridge.OutboxDelivered,
	})

	// Supersede is unaffected: the dead version 2, requeued, is superseded
	// by the kept delivered version 3 instead of overwriting it.
	if err := s.RequeueOutbox(ctx, dead2, tFar); err != nil {
		t.Fatalf("RequeueOutbox returned unexpected error: %v", err)
	}
	checkClaim(t, s, 20, tFar)
	checkStates(t, s, map[int64]linkbridge.OutboxState{dead2: linkbridge.OutboxSuperseded})
	// Now both are finished and go.
	deleteFinished(t, s, tFar.Add(time.Hour), 100)
	checkGone(t, s, dead2, dead3)
	checkStates(t, s, map[int64]linkbridge.OutboxState{q2: linkbridge.OutboxInflight, qcp: linkbridge.OutboxPending})

	// A requeued discarded message is no longer finished: it stays.
	spare := disc.one("Task", disc.ref.TaskID, 4)
	if err := s.DiscardOutbox(ctx, spare); err != nil {
		t.Fatalf("DiscardOutbox returned unexpected error: %v", err)
	}
	if err := s.RequeueOutbox(ctx, spare, tFar); err != nil {
		t.Fatalf("RequeueOutbox returned unexpected error: %v", err)
	}
	deleteFinished(t, s, time.Now().Add(24*time.Hour), 100)
	checkStates(t, s, map[int64]linkbridge.OutboxState{spare: linkbridge.OutboxPending})
}

func testDeleteFinishedBatches(t *testing.T, open func(t *testing.T) OutboxStore) {
	s := open(t)
	p := newPeople(t, s, "a", "b")
	a, b := p[0], p[1]
	// Seven delivered messages of seven resources, finished a minute apart.
	var ids []int64
	for i := range 7 {
		id := a.one("CarePlan", "cp-"+strconv.Itoa(i), 1)
		checkClaim(t, s, 10, tClaim, id)
		mustComplete(t, s, id, tClaim.Add(time.Duration(i)*time.Minute))
		ids = append(ids, id)
	}
	// The oldest finish goes first.
	if got := deleteFinished(t, s, tClaim.Add(time.Hour), 3); !slices.Equal(got, []int{3, 3, 1, 0}) {
		t.Fatalf("deleted in batches %v, want [3 3 1 0]", got)
	}
	checkGone(t, s, ids...)

	var rest []int64
	for i := range 5 {
		id := b.one("CarePlan", "cp-"+strconv.Itoa(i), 1)
		checkClaim(t, s, 10, tClaim, id)
		mustComplete(t, s, id, tClaim.Add(time.Duration(i)*time.Minute))
		rest = append(rest, id)
	}
	n, err := s.DeleteFinishedOutbox(context.Background(), tClaim.Add(time.Hour), 2)
	if err != nil || n != 2 {
		t.Fatalf("DeleteFinishedOutbox(limit 2) = %d, %v; want 2", n, err)
	}
	checkGone(t, s, rest[:2]...)
	checkStates(t, s, map[int64]linkbridge.OutboxState{rest[2]: linkbridge.OutboxDelivered, rest[4]: linkbridge.OutboxDelivered})
}
