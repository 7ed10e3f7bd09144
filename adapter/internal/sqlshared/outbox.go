package sqlshared

import (
	"cmp"
	"slices"
	"time"

	"github.com/linkbridge/linkbridge"
)

// DefaultOutboxListLimit is the page size of ListOutbox when the filter sets
// none.
const DefaultOutboxListLimit = 100

// OutboxColumns are the outbox table's columns in the order the adapters'
// scanOutbox reads them.
const OutboxColumns = `id, order_key, referral_id, resource_type, resource_id, version, body, nhs_number,
	state, attempts, available_at, locked_by, locked_at, last_status, last_error, last_outcome,
	created_at, delivered_at`

// OutboxStates are the states, for checking filters and filling in counts.
var OutboxStates = []linkbridge.OutboxState{linkbridge.OutboxPending, linkbridge.OutboxInflight,
	linkbridge.OutboxDelivered, linkbridge.OutboxDead, linkbridge.OutboxDiscarded, linkbridge.OutboxSuperseded}

// OutboxRows are the outbox messages of one change, converted to column
// values before the write starts.
type OutboxRows struct {
	Msgs       []*linkbridge.OutboxMessage
	ReferralID string
	// Args are the insert's values: order_key, referral_id, resource_type,
	// resource_id, version, body, nhs_number, available_at, created_at.
	Args [][]any
	// Created and Available are the defaulted times, as stored.
	Created, Available []time.Time
	// IDs are set by the adapter's insert.
	IDs []int64
}

// NewOutboxRows converts the outbox messages of a validated change (see
// linkbridge.ReferralChange.Validate) to column values, or returns nil when
// it has none. A message belongs to the change's referral; its times
// default as OutboxMessage.EnqueueTimes says, rounded to c.Precision.
// Attempts, lock and last-attempt fields are not stored: a message is
// enqueued fresh.
func NewOutboxRows(ch *linkbridge.ReferralChange, now time.Time, c Columns) *OutboxRows {
	if len(ch.Outbox) == 0 {
		return nil
	}
	ref := ch.Referral
	n := len(ch.Outbox)
	o := &OutboxRows{Msgs: ch.Outbox, ReferralID: ref.ID, Args: make([][]any, n), Created: make([]time.Time, n),
		Available: make([]time.Time, n), IDs: make([]int64, n)}
	for i, m := range ch.Outbox {
		created, available := m.EnqueueTimes(now)
		// Tell the caller what is stored.
		created, available = c.Stored(created), c.Stored(available)
		o.Created[i], o.Available[i] = created, available
		o.Args[i] = []any{m.OrderKey, ref.ID, m.ResourceType, m.ResourceID, m.Version, m.Body, m.NHSNumber,
			c.Time(available), c.Time(created)}
	}
	return o
}

// Stored tells the caller's messages what was stored, once the change is
// committed: their ids, state, referral and defaulted times. A nil o does
// nothing.
func (o *OutboxRows) Stored() {
	if o == nil {
		return
	}
	for i, m := range o.Msgs {
		m.ID, m.State = o.IDs[i], linkbridge.OutboxPending
		m.ReferralID = o.ReferralID
		m.CreatedAt, m.AvailableAt = o.Created[i], o.Available[i]
	}
}

// CheckClaim returns EINVALID for a claim without a worker name or with a
// limit below 1.
func CheckClaim(worker string, limit int) error {
	switch {
	case worker == "":
		return linkbridge.Errorf(linkbridge.EINVALID, "an outbox claim needs a worker name")
	case limit < 1:
		return linkbridge.Errorf(linkbridge.EINVALID, "an outbox claim takes at least 1 message, not %d", limit)
	}
	return nil
}

// OutboxHead is what settling a claim's head reads of a queued row.
type OutboxHead struct {
	ID           int64
	ResourceType string
	ResourceID   string
	Version      int
}

// Claimable reports whether a head may be claimed: it is pending, due, and
// no earlier or inflight row of its key blocks it.
func Claimable(state string, blocked, due bool) bool {
	return state == string(linkbridge.OutboxPending) && !blocked && due
}

// SupersededBy reports whether h is superseded by next, the row queued
// right behind it in its key (nil: none): next is a later version of the
// same resource. (The other reason, a later version delivered already, is
// a lookup each adapter makes.)
func (h OutboxHead) SupersededBy(next *OutboxHead) bool {
	return next != nil && next.ResourceType == h.ResourceType && next.ResourceID == h.ResourceID && next.Version > h.Version
}

// SortOutbox sorts claimed messages oldest (lowest id) first.
func SortOutbox(msgs []*linkbridge.OutboxMessage) {
	slices.SortFunc(msgs, func(a, b *linkbridge.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
}

// OutboxNotFound is the ENOTFOUND of an unknown message id.
func OutboxNotFound(id int64) error {
	return linkbridge.Errorf(linkbridge.ENOTFOUND, "outbox message %d not found", id)
}

// OutboxWrongState is the ECONFLICT of a state change (op) that message id,
// in state, does not allow; want names the states it should be in.
func OutboxWrongState(op string, id int64, state, want string) error {
	return linkbridge.Errorf(linkbridge.ECONFLICT, "cannot %s outbox message %d: it is %s, not %s", op, id, state, want)
}

// CheckOutboxClaim returns EINVALID for a claim that names no worker or no
// claim time: no claim of ClaimOutbox looks like that.
func CheckOutboxClaim(op string, c linkbridge.OutboxClaim) error {
	if c.Worker == "" || c.At.IsZero() {
		return linkbridge.Errorf(linkbridge.EINVALID, "cannot %s outbox message %d: the claim names no worker or claim time", op, c.ID)
	}
	return nil
}

// OutboxClaimLost is the ECONFLICT of a state change (op) under a claim of
// message id that no longer holds: the message, in state, was rescued
// (and maybe claimed again), or an operator changed it. The message's
// current holder decides what becomes of it.
func OutboxClaimLost(op string, id int64, state string) error {
	now := "it is " + state
	if state == string(linkbridge.OutboxInflight) {
		now = "it is inflight under another claim"
	}
	return linkbridge.Errorf(linkbridge.ECONFLICT, "cannot %s outbox message %d: claim lost: %s", op, id, now)
}

// OutboxListLimit returns a filter's Limit, or DefaultOutboxListLimit when
// it is not positive. It returns EINVALID when the filter names an unknown
// state.
func OutboxListLimit(f linkbridge.OutboxFilter) (int, error) {
	for _, s := range f.States {
		if !slices.Contains(OutboxStates, s) {
			return 0, linkbridge.Errorf(linkbridge.EINVALID, "unknown outbox state %q", s)
		}
	}
	if f.Limit <= 0 {
		return DefaultOutboxListLimit, nil
	}
	return f.Limit, nil
}

// NewOutboxStats returns stats with every state counted 0.
func NewOutboxStats() *linkbridge.OutboxStats {
	st := &linkbridge.OutboxStats{Counts: make(map[linkbridge.OutboxState]int, len(OutboxStates))}
	for _, s := range OutboxStates {
		st.Counts[s] = 0
	}
	return st
}

// finishedOutboxStates are the states DeleteFinishedOutbox deletes, as the
// adapters' partial index outbox_finished names them: never pending or
// inflight (queued) nor dead (waiting for an operator).
const finishedOutboxStates = `state IN ('delivered', 'superseded', 'discarded')`

// CheckDeleteFinished returns EINVALID for a batch limit below 1.
func CheckDeleteFinished(limit int) error {
	if limit < 1 {
		return linkbridge.Errorf(linkbridge.EINVALID, "deleting finished outbox messages takes at least 1 a batch, not %d", limit)
	}
	return nil
}

// FinishedOutboxQuery selects the ids of the finished messages to delete,
// oldest finish first: delivered, superseded or discarded (finished_at is
// set for exactly these) before the placeholder before, at most the
// placeholder limit of them. The adapters run it inside a DELETE.
//
// A delivered row is kept while an older row of its resource in its order
// key (lower id) is pending, inflight, dead or discarded: the claim
// supersedes such a row, when it is or becomes pending again (retry, rescue,
// requeue), because a later version of its resource was delivered (see the
// adapters' outbox.go), and without the delivered row it would be sent and
// overwrite the newer version on the GP record. Once that older row is
// finished for good (delivered, superseded, or discarded and deleted in
// turn), the delivered row goes too. Superseded and discarded rows are
// never read by the claim (it looks only at queued rows and delivered
// ones), and deleting finished rows never changes which queued row is a
// key's head, so ordering is unaffected.
//
// The outer table is not aliased and the state term repeats the index's
// WHERE term exactly, so that SQLite can use the partial index
// outbox_finished; hint follows the table name (SQLite: "INDEXED BY
// outbox_finished", as without statistics its planner prefers
// outbox_state_created and sorts every finished row; PostgreSQL: "").
func FinishedOutboxQuery(before, limit, hint string) string {
	return `SELECT id FROM outbox ` + hint + ` WHERE ` + finishedOutboxStates + ` AND finished_at < ` + before + `
		AND NOT (state = 'delivered' AND EXISTS (SELECT 1 FROM outbox r WHERE r.order_key = outbox.order_key
			AND r.id < outbox.id AND r.resource_type = outbox.resource_type AND r.resource_id = outbox.resource_id
			AND r.state IN ('pending', 'inflight', 'dead', 'discarded')))
		ORDER BY finished_at, id LIMIT ` + limit
}
