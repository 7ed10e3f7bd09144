package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

func testSupersede(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	p := newPeople(t, s, "a", "b", "c", "d", "e", "f", "g")
	a, b, c, d, e, f, g := p[0], p[1], p[2], p[3], p[4], p[5], p[6]
	tLater := tClaim.Add(time.Hour)
	state := func(id int64, want linkbridge.OutboxState) {
		t.Helper()
		checkStates(t, s, map[int64]linkbridge.OutboxState{id: want})
	}

	// a: a run of versions (three changes, two versions in the last)
	// collapses to the last.
	a2, a3 := a.one("Task", a.ref.TaskID, 2), a.one("Task", a.ref.TaskID, 3)
	a45 := a.enqueue(a.msg("Task", a.ref.TaskID, 4), a.msg("Task", a.ref.TaskID, 5))
	// b: a care plan between two task versions keeps both: it may name
	// something that task version 2 brought, and the GP record must have
	// version 2 before it.
	b2, bcp, b3 := b.one("Task", b.ref.TaskID, 2), b.one("CarePlan", "cp-b", 1), b.one("Task", b.ref.TaskID, 3)
	// c, d, e: a first version, claimed below.
	c2, d2, e2 := c.one("Task", c.ref.TaskID, 2), d.one("Task", d.ref.TaskID, 2), e.one("Task", e.ref.TaskID, 2)
	// f, g: the same resource under two keys (not expected, but keys are
	// independent): neither supersedes the other.
	f2, g3 := f.one("Task", "task-shared", 2), g.one("Task", "task-shared", 3)

	checkClaim(t, s, 20, tClaim, a45[1], b2, c2, d2, e2, f2, g3)
	for _, id := range []int64{a2, a3, a45[0]} {
		state(id, linkbridge.OutboxSuperseded)
	}

	// c: an inflight version is not superseded; the next waits for it.
	c3 := c.one("Task", c.ref.TaskID, 3)
	// d: a version waiting for its retry keeps the key waiting, then is
	// superseded when it falls due.
	mustRetryLater(t, s, d2, tLater)
	d3 := d.one("Task", d.ref.TaskID, 3)
	// e: a dead version, and a later one.
	mustDeadLetter(t, s, e2)
	e3 := e.one("Task", e.ref.TaskID, 3)
	for _, id := range []int64{b2, a45[1], f2, g3} {
		mustComplete(t, s, id, tClaim)
	}
	checkClaim(t, s, 20, tClaim, bcp, e3)
	state(d2, linkbridge.OutboxPending)
	state(d3, linkbridge.OutboxPending)

	mustComplete(t, s, c2, tClaim)
	mustComplete(t, s, bcp, tClaim)
	mustComplete(t, s, e3, tClaim)
	state(c2, linkbridge.OutboxDelivered)
	// e: version 2, requeued after version 3 was delivered, would
	// overwrite it: it is superseded, and the key moves on.
	if err := s.RequeueOutbox(ctx, e2, tClaim); err != nil {
		t.Fatalf("RequeueOutbox returned unexpected error: %v", err)
	}
	ecp := e.one("CarePlan", "cp-e", 1)
	checkClaim(t, s, 20, tClaim, b3, c3, ecp)
	state(e2, linkbridge.OutboxSuperseded)

	checkClaim(t, s, 20, tLater, d3)
	state(d2, linkbridge.OutboxSuperseded)
}

func testDeadLetter(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	a := newPeople(t, s, "a")[0]
	id := a.one("Task", a.ref.TaskID, 2)
	checkClaim(t, s, 10, tClaim, id)
	mustRetryLater(t, s, id, tClaim)
	checkClaim(t, s, 10, tClaim, id)

	outcome := []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid"}]}`)
	if err := s.DeadLetterOutbox(ctx, heldClaim(t, s, id), 422, "unprocessable", outcome); err != nil {
		t.Fatalf("DeadLetterOutbox returned unexpected error: %v", err)
	}
	got := getOutbox(t, s, id)
	if got.State != linkbridge.OutboxDead || got.Attempts != 2 || got.LastStatus != 422 || got.LastError != "unprocessable" ||
		got.LockedBy != "" || !got.LockedAt.IsZero() || !got.DeliveredAt.IsZero() {
		t.Fatalf("message after DeadLetterOutbox = %+v; want dead, 2 attempts, status 422, unlocked", got)
	}
	if diff := cmp.Diff(string(outcome), string(got.LastOutcome)); diff != "" {
		t.Fatalf("LastOutcome mismatch (-want +got):\n%s", diff)
	}
	// Dead is final for the relay.
	checkClaim(t, s, 10, tClaim.Add(time.Hour))
}

func testRescue(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	p := newPeople(t, s, "a", "b")
	a, b := p[0], p[1]
	a1 := a.one("Task", a.ref.TaskID, 2)
	if got := claim(t, s, "w1", 10, tClaim); !slices.Equal(got, []int64{a1}) {
		t.Fatalf("ClaimOutbox = %v, want [%d]", got, a1)
	}
	w1 := heldClaim(t, s, a1)
	tLater := tClaim.Add(time.Minute)
	b1 := b.one("Task", b.ref.TaskID, 2)
	if got := claim(t, s, "w2", 10, tLater); !slices.Equal(got, []int64{b1}) {
		t.Fatalf("ClaimOutbox = %v, want [%d]", got, b1)
	}

	rescue := func(before time.Time) int {
		t.Helper()
		n, err := s.RescueOutbox(ctx, linkbridge.ChannelWriteBack, before)
		if err != nil {
			t.Fatalf("RescueOutbox returned unexpected error: %v", err)
		}
		return n
	}
	// Claimed at tClaim: not stuck since before tClaim.
	if n := rescue(tClaim); n != 0 {
		t.Fatalf("RescueOutbox(claim time) = %d, want 0", n)
	}
	if n := rescue(tClaim.Add(time.Second)); n != 1 {
		t.Fatalf("RescueOutbox(after the first claim) = %d, want 1", n)
	}
	got := getOutbox(t, s, a1)
	if got.State != linkbridge.OutboxPending || got.LockedBy != "" || !got.LockedAt.IsZero() || got.Attempts != 0 {
		t.Fatalf("rescued message = %+v; want pending, unlocked, no attempts", got)
	}
	checkStates(t, s, map[int64]linkbridge.OutboxState{b1: linkbridge.OutboxInflight})

	// The first worker's late answer is refused: the message is not
	// inflight any more.
	err := s.CompleteOutbox(ctx, w1, 200, tLater)
	checkError(t, err, linkbridge.ECONFLICT, "")

	// Another worker takes it over.
	msgs, err := s.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "w3", 10, tLater)
	if err != nil || len(msgs) != 1 || msgs[0].ID != a1 || msgs[0].LockedBy != "w3" {
		t.Fatalf("ClaimOutbox after the rescue = %v, %v; want message %d locked by w3", msgs, err, a1)
	}
	mustComplete(t, s, a1, tLater)
	got = getOutbox(t, s, a1)
	if got.State != linkbridge.OutboxDelivered || !got.DeliveredAt.Equal(tLater) || got.LastStatus != 200 ||
		got.LockedBy != "" || !got.LockedAt.IsZero() {
		t.Fatalf("message after CompleteOutbox = %+v; want delivered at %s, status 200, unlocked", got, tLater)
	}
}

func testOnlyInflight(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	p := newPeople(t, s, "a", "b")
	a, b := p[0], p[1]
	pending := a.one("Task", a.ref.TaskID, 2)
	delivered := b.one("Task", b.ref.TaskID, 2)
	checkClaim(t, s, 1, tClaim, pending)
	mustRetryLater(t, s, pending, tClaim.Add(time.Hour))
	checkClaim(t, s, 10, tClaim, delivered)
	mustComplete(t, s, delivered, tClaim)

	// Both were claimed by w1 at tClaim: the claim, but for the state, that
	// the calls name.
	w1 := func(id int64) linkbridge.OutboxClaim { return linkbridge.OutboxClaim{ID: id, Worker: "w1", At: tClaim} }
	ops := []struct {
		name string
		fn   func(id int64) error
	}{
		{"CompleteOutbox", func(id int64) error { return s.CompleteOutbox(ctx, w1(id), 200, tClaim) }},
		{"RetryOutboxLater", func(id int64) error { return s.RetryOutboxLater(ctx, w1(id), tClaim, 503, "x") }},
		{"DeadLetterOutbox", func(id int64) error { return s.DeadLetterOutbox(ctx, w1(id), 400, "x", nil) }},
	}
	for _, op := range ops {
		for _, tc := range []struct {
			id   int64
			code string
		}{{pending, linkbridge.ECONFLICT}, {delivered, linkbridge.ECONFLICT}, {delivered + 100, linkbridge.ENOTFOUND}} {
			t.Run(fmt.Sprintf("%s%d", op.name, tc.id), func(t *testing.T) {
				checkError(t, op.fn(tc.id), tc.code, "")
			})
		}
	}
	// Nothing changed.
	if got := getOutbox(t, s, pending); got.State != linkbridge.OutboxPending || got.Attempts != 1 || got.LastStatus != 503 {
		t.Fatalf("pending message after refused calls = %+v; want as rescheduled", got)
	}
	if got := getOutbox(t, s, delivered); got.State != linkbridge.OutboxDelivered || got.Attempts != 0 || got.LastStatus != 200 {
		t.Fatalf("delivered message after refused calls = %+v; want as delivered", got)
	}
}

func testClaimLost(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	a := newPeople(t, s, "a")[0]
	a1, a2 := a.one("Task", a.ref.TaskID, 2), a.one("CarePlan", "cp-a", 1)
	tRescue, tB, tC := tClaim.Add(time.Minute), tClaim.Add(2*time.Minute), tClaim.Add(4*time.Minute)

	// take claims the head as worker, fatal unless it gets a1.
	take := func(worker string, at time.Time) linkbridge.OutboxClaim {
		t.Helper()
		msgs, err := s.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, worker, 10, at)
		if err != nil || len(msgs) != 1 || msgs[0].ID != a1 {
			t.Fatalf("ClaimOutbox(%s) = %v, %v; want message %d", worker, msgs, err, a1)
		}
		return msgs[0].Claim()
	}
	rescue := func(before time.Time) {
		t.Helper()
		if n, err := s.RescueOutbox(ctx, linkbridge.ChannelWriteBack, before); err != nil || n != 1 {
			t.Fatalf("RescueOutbox = %d, %v; want 1", n, err)
		}
	}
	// refused checks that every state change under a lost claim is refused
	// with ECONFLICT and changes nothing, and that the key stays blocked.
	refused := func(lost linkbridge.OutboxClaim) {
		t.Helper()
		before := getOutbox(t, s, a1)
		for _, op := range []struct {
			name string
			err  error
		}{
			{"CompleteOutbox", s.CompleteOutbox(ctx, lost, 200, tC)},
			{"RetryOutboxLater", s.RetryOutboxLater(ctx, lost, tC, 503, "late")},
			{"DeadLetterOutbox", s.DeadLetterOutbox(ctx, lost, 422, "late", []byte(`{"resourceType":"OperationOutcome"}`))},
		} {
			if linkbridge.ErrorCode(op.err) != linkbridge.ECONFLICT || !strings.Contains(op.err.Error(), "claim lost") {
				t.Fatalf("%s under the lost claim %+v: error %v, want ECONFLICT (claim lost)", op.name, lost, op.err)
			}
			if diff := cmp.Diff(before, getOutbox(t, s, a1), cmpOpts...); diff != "" {
				t.Fatalf("message after a refused %s mismatch (-want +got):\n%s", op.name, diff)
			}
		}
		// One message in flight per person: a2 still waits for a1.
		checkClaim(t, s, 10, tC)
	}

	// Worker A claims a1, is rescued (a slow send), and B claims it again.
	byA := take("A", tClaim)
	rescue(tRescue)
	byB := take("B", tB)
	refused(byA)
	if got := getOutbox(t, s, a1); got.State != linkbridge.OutboxInflight || got.LockedBy != "B" || !got.LockedAt.Equal(tB) ||
		got.Attempts != 0 {
		t.Fatalf("message after A's refused calls = %+v; want inflight under B's claim at %s, no attempts", got, tB)
	}

	// A claim of the same worker is told apart by its time: B, rescued and
	// claiming a1 again, cannot settle it under its first claim.
	rescue(tB.Add(time.Second))
	byB2 := take("B", tC)
	if byB2 == byB {
		t.Fatalf("two claims of B are equal: %+v", byB)
	}
	refused(byB)
	refused(byA)

	// The current holder settles it, and the key moves on.
	if err := s.CompleteOutbox(ctx, byB2, 200, tC); err != nil {
		t.Fatalf("CompleteOutbox under the current claim returned unexpected error: %v", err)
	}
	if got := getOutbox(t, s, a1); got.State != linkbridge.OutboxDelivered || !got.DeliveredAt.Equal(tC) || got.LockedBy != "" {
		t.Fatalf("message after CompleteOutbox = %+v; want delivered at %s, unlocked", got, tC)
	}
	checkClaim(t, s, 10, tC, a2)
	// The late answers of A stay refused once the message is delivered.
	err := s.DeadLetterOutbox(ctx, byA, 422, "late", nil)
	checkError(t, err, linkbridge.ECONFLICT, "")
	checkStates(t, s, map[int64]linkbridge.OutboxState{a1: linkbridge.OutboxDelivered})

	t.Run("ErrArguments", func(t *testing.T) {
		held := heldClaim(t, s, a2)
		for _, c := range []linkbridge.OutboxClaim{{ID: a2, At: held.At}, {ID: a2, Worker: held.Worker}} {
			checkError(t, s.CompleteOutbox(ctx, c, 200, tC), linkbridge.EINVALID, "")
		}
		checkError(t, s.CompleteOutbox(ctx, linkbridge.OutboxClaim{ID: a2 + 100, Worker: "w1", At: tC}, 200, tC),
			linkbridge.ENOTFOUND, "")
		checkStates(t, s, map[int64]linkbridge.OutboxState{a2: linkbridge.OutboxInflight})
	})
}

func testRequeueDiscard(t *testing.T, open func(t *testing.T) OutboxStore) {
	ctx := context.Background()
	s := open(t)
	tFar, tRequeue := tClaim.Add(48*time.Hour), tClaim.Add(time.Hour)

	// One message in each state, each of its own person: the pending one is
	// not due until tFar, so that the claims leave it pending.
	p := newPeople(t, s, "pending", "inflight", "delivered", "dead", "discarded", "superseded", "spare")
	late := p[0].msg("Task", p[0].ref.TaskID, 2)
	late.AvailableAt = tFar
	ids := map[linkbridge.OutboxState]int64{linkbridge.OutboxPending: p[0].enqueue(late)[0]}
	for i, st := range []linkbridge.OutboxState{linkbridge.OutboxInflight, linkbridge.OutboxDelivered, linkbridge.OutboxDead,
		linkbridge.OutboxDiscarded, linkbridge.OutboxSuperseded} {
		ids[st] = p[i+1].one("Task", p[i+1].ref.TaskID, 2)
	}
	newer := p[5].one("Task", p[5].ref.TaskID, 3)
	if err := s.DiscardOutbox(ctx, ids[linkbridge.OutboxDiscarded]); err != nil {
		t.Fatalf("DiscardOutbox returned unexpected error: %v", err)
	}
	checkClaim(t, s, 10, tClaim, ids[linkbridge.OutboxInflight], ids[linkbridge.OutboxDelivered], ids[linkbridge.OutboxDead], newer)
	mustComplete(t, s, ids[linkbridge.OutboxDelivered], tClaim)
	mustDeadLetter(t, s, ids[linkbridge.OutboxDead])
	mustComplete(t, s, newer, tClaim)
	for st, id := range ids {
		checkStates(t, s, map[int64]linkbridge.OutboxState{id: st})
	}

	t.Run("Refused", func(t *testing.T) {
		for _, tc := range []struct {
			op    string
			state linkbridge.OutboxState
		}{
			{"requeue", linkbridge.OutboxInflight},
			{"requeue", linkbridge.OutboxDelivered},
			{"requeue", linkbridge.OutboxSuperseded},
			{"discard", linkbridge.OutboxInflight},
			{"discard", linkbridge.OutboxDelivered},
			{"discard", linkbridge.OutboxSuperseded},
			{"discard", linkbridge.OutboxDiscarded},
		} {
			id := ids[tc.state]
			before := getOutbox(t, s, id)
			var err error
			if tc.op == "requeue" {
				err = s.RequeueOutbox(ctx, id, tRequeue)
			} else {
				err = s.DiscardOutbox(ctx, id)
			}
			if linkbridge.ErrorCode(err) != linkbridge.ECONFLICT {
				t.Fatalf("%s of a %s message: error %v, want code %q", tc.op, tc.state, err, linkbridge.ECONFLICT)
			}
			if diff := cmp.Diff(before, getOutbox(t, s, id), cmpOpts...); diff != "" {
				t.Fatalf("%s message after a refused %s mismatch (-want +got):\n%s", tc.state, tc.op, diff)
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		missing := newer + 100
		checkError(t, s.RequeueOutbox(ctx, missing, tRequeue), linkbridge.ENOTFOUND, "")
		checkError(t, s.DiscardOutbox(ctx, missing), linkbridge.ENOTFOUND, "")
	})

	t.Run("Requeue", func(t *testing.T) {
		// Pending (due earlier than planned), dead and discarded messages
		// go back to pending, due at the requeue time, their attempts and
		// last attempt kept.
		var want []int64
		for _, st := range []linkbridge.OutboxState{linkbridge.OutboxPending, linkbridge.OutboxDead, linkbridge.OutboxDiscarded} {
			id := ids[st]
			before := getOutbox(t, s, id)
			if err := s.RequeueOutbox(ctx, id, tRequeue); err != nil {
				t.Fatalf("RequeueOutbox of a %s message returned unexpected error: %v", st, err)
			}
			got := getOutbox(t, s, id)
			if got.State != linkbridge.OutboxPending || !got.AvailableAt.Equal(tRequeue) || got.Attempts != before.Attempts ||
				got.LastStatus != before.LastStatus || got.LastError != before.LastError {
				t.Fatalf("%s message after RequeueOutbox = %+v; want pending, due %s, attempts and last attempt kept", st, got, tRequeue)
			}
			want = append(want, id)
		}
		slices.Sort(want)
		checkClaim(t, s, 10, tRequeue.Add(-time.Second))
		checkClaim(t, s, 10, tRequeue, want...)
	})

	t.Run("Discard", func(t *testing.T) {
		// Pending and dead messages are discarded, and not claimed.
		spare := p[6].one("Task", p[6].ref.TaskID, 2)
		dead := ids[linkbridge.OutboxDead] // inflight again since the requeue
		mustDeadLetter(t, s, dead)
		for _, id := range []int64{spare, dead} {
			if err := s.DiscardOutbox(ctx, id); err != nil {
				t.Fatalf("DiscardOutbox(%d) returned unexpected error: %v", id, err)
			}
			checkStates(t, s, map[int64]linkbridge.OutboxState{id: linkbridge.OutboxDiscarded})
		}
		checkClaim(t, s, 10, tFar)
	})
}
