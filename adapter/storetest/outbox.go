package storetest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// OutboxStore is a store with case records and the write-back outbox.
type OutboxStore interface {
	linkbridge.Store
	linkbridge.CaseStore
	linkbridge.OutboxStore
}

// RunOutboxStore runs the outbox suite: enqueueing through
// ReferralChange.Outbox, the relay's claim, completion, retry, dead-letter
// and rescue, and the operators' list, requeue, discard and stats. open must
// return a new, empty store and close it when the test ends. Subtests run in
// parallel, each on its own store. Run the Store and CaseStore suites too.
//
// The suite fixes these semantics:
//   - A claim takes, per order key, only the lowest-id pending or inflight
//     message, only when it is pending and due and no message of its key is
//     inflight; at most limit of them, oldest first.
//   - A due pending head is superseded, not claimed, when the message queued
//     right behind it in its key is a later version of the same resource, or
//     a later version of it was delivered already; a run of versions of one
//     resource collapses to its last, but a message of another resource
//     between two versions keeps both (the GP record must never see the
//     message between without the version before it). A head waiting for
//     its retry is superseded only once it is due: its wait holds for its
//     key.
//   - CompleteOutbox, RetryOutboxLater and DeadLetterOutbox apply only to a
//     message still inflight under the claim they name, worker and claim
//     time (ECONFLICT, "claim lost", otherwise, changing nothing; ENOTFOUND
//     for an unknown id): a worker whose message was rescued and claimed
//     again, by another worker or by itself, cannot settle it.
//     Attempts counts failed attempts; RequeueOutbox keeps the count.
//   - ListOutbox is newest first, 100 messages when Limit is not positive.
//   - DeleteFinishedOutbox deletes only delivered, superseded and discarded
//     messages that finished before its cut-off (delivered: the completion
//     time; superseded: the claim's time; discarded: the store's clock,
//     which must be later than the suite's 2025 times), at most limit a
//     call, never pending, inflight or dead ones; it keeps a delivered
//     message while an older message of its resource and key is pending,
//     inflight, dead or discarded, so that a requeued old version is still
//     superseded; and deleting changes no claim.
func RunOutboxStore(t *testing.T, open func(t *testing.T) OutboxStore) {
	t.Run("Enqueue", func(t *testing.T) { t.Parallel(); testEnqueue(t, open) })
	t.Run("EnqueueRollsBackWithTheChange", func(t *testing.T) { t.Parallel(); testEnqueueRollback(t, open) })
	t.Run("ClaimOnePerKeyInIDOrder", func(t *testing.T) { t.Parallel(); testClaimOrder(t, open) })
	t.Run("KeyWaitsForItsHead", func(t *testing.T) { t.Parallel(); testKeyWaits(t, open) })
	t.Run("NotDueBlocksItsKey", func(t *testing.T) { t.Parallel(); testNotDue(t, open) })
	t.Run("ConcurrentClaims", func(t *testing.T) { t.Parallel(); testConcurrentClaims(t, open) })
	t.Run("Supersede", func(t *testing.T) { t.Parallel(); testSupersede(t, open) })
	t.Run("DeadLetter", func(t *testing.T) { t.Parallel(); testDeadLetter(t, open) })
	t.Run("Rescue", func(t *testing.T) { t.Parallel(); testRescue(t, open) })
	t.Run("OnlyInflightCompletes", func(t *testing.T) { t.Parallel(); testOnlyInflight(t, open) })
	t.Run("ClaimLost", func(t *testing.T) { t.Parallel(); testClaimLost(t, open) })
	t.Run("RequeueAndDiscard", func(t *testing.T) { t.Parallel(); testRequeueDiscard(t, open) })
	t.Run("ListOutbox", func(t *testing.T) { t.Parallel(); testListOutbox(t, open) })
	t.Run("OutboxStats", func(t *testing.T) { t.Parallel(); testOutboxStats(t, open) })
	t.Run("DeleteFinished", func(t *testing.T) { t.Parallel(); testDeleteFinished(t, open) })
	t.Run("DeleteFinishedBatches", func(t *testing.T) { t.Parallel(); testDeleteFinishedBatches(t, open) })
}

// tClaim is when the suite's claims run unless a test says otherwise: a day
// after the messages were enqueued.
var tClaim = t0.Add(24 * time.Hour)

// obPerson is a person with one referral, whose changes carry outbox
// messages. The order key of their messages is the person id.
type obPerson struct {
	t   *testing.T
	s   OutboxStore
	in  *linkbridge.Intake
	ref *linkbridge.Referral // the referral's current version
	// clock is the time of the store's last change, shared by the people of
	// a store: each change is a minute after the one before, whoever it is
	// for.
	clock *time.Time
}

// newPeople stores a referral for each name.
func newPeople(t *testing.T, s OutboxStore, names ...string) []*obPerson {
	t.Helper()
	nhs := nhsNumbers()
	clock := t0
	out := make([]*obPerson, len(names))
	for i, name := range names {
		in := createOne(t, s, nhs, name)
		out[i] = &obPerson{t: t, s: s, in: in, ref: in.Referral, clock: &clock}
	}
	return out
}

// next is the time of the next change.
func (p *obPerson) next() time.Time { return p.clock.Add(time.Minute) }

// key is the order key of the person's messages.
func (p *obPerson) key() string { return p.in.Person.ID }

// msg builds a pending message for a version of one of the person's
// resources, created (and due) at the time of the person's next change.
func (p *obPerson) msg(typ, id string, version int) *linkbridge.OutboxMessage {
	at := p.next()
	return &linkbridge.OutboxMessage{
		OrderKey: p.key(), ReferralID: p.ref.ID,
		ResourceType: typ, ResourceID: id, Version: version,
		Body: fmt.Appendf(nil, `{"resourceType":%q,"id":%q,"meta":{"versionId":"%d"},"subject":{"identifier":{"value":%q}}}`,
			typ, id, version, p.in.Person.NHSNumber),
		NHSNumber: p.in.Person.NHSNumber, State: linkbridge.OutboxPending,
		AvailableAt: at, CreatedAt: at,
	}
}

// change returns the person's next change, carrying msgs.
func (p *obPerson) change(msgs ...*linkbridge.OutboxMessage) *linkbridge.ReferralChange {
	at := p.next()
	return &linkbridge.ReferralChange{
		Referral: nextVersion(p.ref, at, func(r *linkbridge.Referral) { r.BusinessStatus = "step-" + at.Format("1504") }),
		Outbox:   msgs,
	}
}

// enqueue applies the person's next change, carrying msgs, and returns their
// ids. Fatal on error.
func (p *obPerson) enqueue(msgs ...*linkbridge.OutboxMessage) []int64 {
	p.t.Helper()
	ch := p.change(msgs...)
	mustUpdate(p.t, p.s, ch)
	p.ref, *p.clock = ch.Referral, ch.Referral.UpdatedAt
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		if m.ID == 0 {
			p.t.Fatalf("UpdateReferral left outbox message %d (%s/%s) without an id", i, m.ResourceType, m.ResourceID)
		}
		ids[i] = m.ID
	}
	return ids
}

// one enqueues a single message, in a change of its own, and returns its id.
func (p *obPerson) one(typ, id string, version int) int64 {
	p.t.Helper()
	return p.enqueue(p.msg(typ, id, version))[0]
}

// claim claims and returns the ids claimed. Fatal on error.
func claim(t *testing.T, s linkbridge.OutboxStore, worker string, limit int, now time.Time) []int64 {
	t.Helper()
	msgs, err := s.ClaimOutbox(context.Background(), worker, limit, now)
	if err != nil {
		t.Fatalf("ClaimOutbox(%s, %d) returned unexpected error: %v", worker, limit, err)
	}
	return idsOf(msgs)
}

// idsOf returns the messages' ids, in their order.
func idsOf(msgs []*linkbridge.OutboxMessage) []int64 {
	var ids []int64
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	return ids
}

// checkClaim claims and fails unless exactly want (in that order) is
// claimed.
func checkClaim(t *testing.T, s linkbridge.OutboxStore, limit int, now time.Time, want ...int64) {
	t.Helper()
	got := claim(t, s, "w1", limit, now)
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Fatalf("ClaimOutbox(limit %d, at %s) ids mismatch (-want +got):\n%s", limit, now.Format(time.RFC3339), diff)
	}
}

// getOutbox reads a message. Fatal on error.
func getOutbox(t *testing.T, s linkbridge.OutboxStore, id int64) *linkbridge.OutboxMessage {
	t.Helper()
	m, err := s.GetOutbox(context.Background(), id)
	if err != nil {
		t.Fatalf("GetOutbox(%d) returned unexpected error: %v", id, err)
	}
	return m
}

// checkStates fails unless each message is in its state.
func checkStates(t *testing.T, s linkbridge.OutboxStore, want map[int64]linkbridge.OutboxState) {
	t.Helper()
	for id, st := range want {
		if got := getOutbox(t, s, id).State; got != st {
			t.Fatalf("outbox message %d is %s, want %s", id, got, st)
		}
	}
}

// heldClaim returns the claim a message is inflight under now. The must*
// helpers act under it, as the worker that claimed the message would.
func heldClaim(t *testing.T, s linkbridge.OutboxStore, id int64) linkbridge.OutboxClaim {
	t.Helper()
	return getOutbox(t, s, id).Claim()
}

// mustComplete marks a message delivered, under its current claim. Fatal
// on error.
func mustComplete(t *testing.T, s linkbridge.OutboxStore, id int64, now time.Time) {
	t.Helper()
	if err := s.CompleteOutbox(context.Background(), heldClaim(t, s, id), 200, now); err != nil {
		t.Fatalf("CompleteOutbox(%d) returned unexpected error: %v", id, err)
	}
}

// mustDeadLetter marks a message dead, under its current claim. Fatal on
// error.
func mustDeadLetter(t *testing.T, s linkbridge.OutboxStore, id int64) {
	t.Helper()
	if err := s.DeadLetterOutbox(context.Background(), heldClaim(t, s, id), 422, "refused", nil); err != nil {
		t.Fatalf("DeadLetterOutbox(%d) returned unexpected error: %v", id, err)
	}
}

// mustRetryLater reschedules a message, under its current claim. Fatal on
// error.
func mustRetryLater(t *testing.T, s linkbridge.OutboxStore, id int64, at time.Time) {
	t.Helper()
	if err := s.RetryOutboxLater(context.Background(), heldClaim(t, s, id), at, 503, "unavailable"); err != nil {
		t.Fatalf("RetryOutboxLater(%d) returned unexpected error: %v", id, err)
	}
}

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

func testClaimOrder(t *testing.T, open func(t *testing.T) OutboxStore) {
	s := open(t)
	p := newPeople(t, s, "a", "b", "c")
	a, b, c := p[0], p[1], p[2]
	a1 := a.enqueue(a.msg("Task", a.ref.TaskID, 2), a.msg("CarePlan", "cp-a", 1))
	b1 := b.one("Task", b.ref.TaskID, 2)
	a2 := a.one("Goal", "goal-a", 1)
	c1 := c.one("Task", c.ref.TaskID, 2)

	// The limit takes the oldest heads.
	msgs, err := s.ClaimOutbox(context.Background(), "w1", 2, tClaim)
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
			_, err := s.ClaimOutbox(context.Background(), tc.worker, tc.limit, tClaim)
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
				msgs, err := s.ClaimOutbox(ctx, worker, 3, tClaim)
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
		n, err := s.RescueOutbox(ctx, before)
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
	msgs, err := s.ClaimOutbox(ctx, "w3", 10, tLater)
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
		msgs, err := s.ClaimOutbox(ctx, worker, 10, at)
		if err != nil || len(msgs) != 1 || msgs[0].ID != a1 {
			t.Fatalf("ClaimOutbox(%s) = %v, %v; want message %d", worker, msgs, err, a1)
		}
		return msgs[0].Claim()
	}
	rescue := func(before time.Time) {
		t.Helper()
		if n, err := s.RescueOutbox(ctx, before); err != nil || n != 1 {
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
