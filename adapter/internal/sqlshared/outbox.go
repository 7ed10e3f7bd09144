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
// A notification's handshake or heartbeat has no referral (NULL): it reads
// as "".
const OutboxColumns = `id, order_key, COALESCE(referral_id, ''), resource_type, resource_id, version, body, nhs_number, erase,
	state, attempts, available_at, locked_by, locked_at, last_status, last_error, last_outcome,
	created_at, delivered_at, channel, notification, event_number`

// OutboxStates are the states, for checking filters and filling in counts.
var OutboxStates = []linkbridge.OutboxState{linkbridge.OutboxPending, linkbridge.OutboxInflight,
	linkbridge.OutboxDelivered, linkbridge.OutboxDead, linkbridge.OutboxDiscarded, linkbridge.OutboxSuperseded}

// OutboxRows are the outbox messages of one change, converted to column
// values before the write starts.
type OutboxRows struct {
	Msgs       []*linkbridge.OutboxMessage
	ReferralID string
	// Args are the insert's values: order_key, referral_id, resource_type,
	// resource_id, version, body, nhs_number, erase, available_at,
	// created_at.
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
			c.Bool(m.Erase), c.Time(available), c.Time(created)}
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
		m.ID, m.State, m.Channel = o.IDs[i], linkbridge.OutboxPending, linkbridge.ChannelWriteBack
		m.ReferralID = o.ReferralID
		m.CreatedAt, m.AvailableAt = o.Created[i], o.Available[i]
	}
}

// SortOutbox sorts claimed messages oldest (lowest id) first.
func SortOutbox(msgs []*linkbridge.OutboxMessage) {
	slices.SortFunc(msgs, func(a, b *linkbridge.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
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
