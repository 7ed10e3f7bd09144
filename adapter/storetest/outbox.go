package storetest

import (
	"context"
	"fmt"
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
//   - A message's Erase flag is stored with it and returned by every read.
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
	t.Run("EnqueueErase", func(t *testing.T) { t.Parallel(); testEnqueueErase(t, open) })
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
	msgs, err := s.ClaimOutbox(context.Background(), linkbridge.ChannelWriteBack, worker, limit, now)
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
