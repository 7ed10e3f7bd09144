package linkbridge

import (
	"context"
	"time"
)

// OutboxState is where a write-back stands.
type OutboxState string

// Outbox states.
const (
	// OutboxPending waits for delivery (now, or at AvailableAt after a
	// retryable failure).
	OutboxPending OutboxState = "pending"
	// OutboxInflight is claimed by a relay worker; the rescuer returns rows
	// left here by a crash.
	OutboxInflight OutboxState = "inflight"
	// OutboxDelivered was accepted by the GP-side endpoint.
	OutboxDelivered OutboxState = "delivered"
	// OutboxDead was refused permanently (a 4xx other than 408/429); the
	// endpoint's OperationOutcome is kept. An operator may retry it.
	OutboxDead OutboxState = "dead"
	// OutboxDiscarded was dropped by an operator.
	OutboxDiscarded OutboxState = "discarded"
	// OutboxSuperseded was never sent because a later version of the same
	// resource was queued behind it (delivering the later one has the same
	// final effect).
	OutboxSuperseded OutboxState = "superseded"
)

// OutboxChannel names what delivers an outbox message: each channel has
// its own relay (ClaimOutbox and RescueOutbox take one channel).
type OutboxChannel string

// Outbox channels.
const (
	// ChannelWriteBack writes a resource version back into the GP record.
	ChannelWriteBack OutboxChannel = "write-back"
	// ChannelRestHook POSTs a subscription notification to the
	// subscriber's rest-hook endpoint (docs/subscriptions.md).
	ChannelRestHook OutboxChannel = "rest-hook"
)

// Valid reports whether c is a known channel.
func (c OutboxChannel) Valid() bool { return c == ChannelWriteBack || c == ChannelRestHook }

// OutboxMessage is one FHIR resource version to write back into the
// patient's GP record, or one subscription notification to deliver. A
// write-back is enqueued in the same transaction as the change that
// produced it, rendered and validated at that moment; a notification is
// queued in the transaction of its event (or of the subscription's
// creation, for its handshake), and rendered when it is sent.
type OutboxMessage struct {
	ID int64 `json:"id"`
	// Channel is what delivers it (ChannelWriteBack when empty).
	Channel OutboxChannel `json:"channel"`
	// OrderKey orders delivery: messages with the same key (the person,
	// or the subscription) are delivered one at a time, in ID order.
	OrderKey string `json:"orderKey"`
	// ReferralID is the referral the message is about ("" for a
	// subscription's handshake and heartbeats).
	ReferralID string `json:"referralId"`
	// ResourceType, ResourceID and Version name the resource version. A
	// notification names its subscription ("Subscription", its id) at
	// version 0: notifications are never superseded.
	ResourceType string `json:"resourceType"`
	ResourceID   string `json:"resourceId"`
	Version      int    `json:"version"`
	// Notification is a notification's type (handshake, heartbeat or
	// event-notification) and EventNumber the number of its event (0 for
	// handshakes and heartbeats).
	Notification string `json:"notification,omitempty"`
	EventNumber  int64  `json:"eventNumber,omitempty"`
	// Body is the FHIR JSON to write, patient identified by NHS number.
	Body []byte `json:"-"`
	// Erase says the GP record must no longer hold the resource's content
	// (the consent was lowered to none): the relay deletes it on an
	// endpoint whose CapabilityStatement offers delete for the type, and
	// otherwise writes Body, a version without the withheld content.
	Erase bool `json:"erase,omitempty"`
	// NHSNumber identifies the person on the GP side (never shown or
	// logged).
	NHSNumber   string      `json:"-"`
	State       OutboxState `json:"state"`
	Attempts    int         `json:"attempts"`
	AvailableAt time.Time   `json:"availableAt"`
	// LockedBy and LockedAt name the worker holding an inflight message.
	LockedBy string    `json:"lockedBy,omitempty"`
	LockedAt time.Time `json:"lockedAt,omitempty"`
	// LastStatus, LastError and LastOutcome describe the last attempt
	// (LastOutcome is the endpoint's OperationOutcome JSON, if any).
	LastStatus  int       `json:"lastStatus,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	LastOutcome []byte    `json:"-"`
	CreatedAt   time.Time `json:"createdAt"`
	DeliveredAt time.Time `json:"deliveredAt,omitempty"`
}

// OutboxClaim names one claim of an outbox message: the worker that
// claimed it and when, as ClaimOutbox stored them (the message's LockedBy
// and LockedAt). The relay's state changes after a send name the claim they
// act under, and take effect only while the message is still inflight under
// it: a worker whose message was rescued and claimed again (by another
// worker, or by itself) cannot complete, reschedule or dead-letter it under
// the new claim. The claim time tells apart two claims of one worker, which
// the attempt count would not (neither a claim nor a rescue counts an
// attempt): a rescue takes only claims older than its cut-off, so the claim
// after it is later than the one it replaces.
type OutboxClaim struct {
	ID     int64
	Worker string
	At     time.Time
}

// Claim returns the claim under which m is inflight (meaningful for a
// message ClaimOutbox returned).
func (m *OutboxMessage) Claim() OutboxClaim {
	return OutboxClaim{ID: m.ID, Worker: m.LockedBy, At: m.LockedAt}
}

// OutboxFilter selects outbox messages for operators.
type OutboxFilter struct {
	// Channel restricts to one channel ("" any).
	Channel    OutboxChannel
	States     []OutboxState
	OrderKey   string
	ReferralID string
	// OlderThan keeps messages created before it (zero: any age).
	OlderThan time.Time
	// CreatedSince keeps messages created at or after it (zero: any age);
	// "outbox retry --since" uses it.
	CreatedSince time.Time
	Limit        int
}

// OutboxStats is the outbox at a glance (for /metrics).
type OutboxStats struct {
	// Counts per state.
	Counts map[OutboxState]int
	// OldestPending is the creation time of the oldest pending or inflight
	// message (zero when none).
	OldestPending time.Time
}

// OutboxStore is the durable outbox. Messages are added through
// ReferralChange.Outbox, in the transaction of the change.
type OutboxStore interface {
	// ClaimOutbox marks up to limit deliverable messages of a channel
	// inflight for worker and returns them (an order key belongs to one
	// channel). A message is deliverable when it is pending,
	// due (AvailableAt <= now), and no earlier message with its OrderKey is
	// pending or inflight: at most one message per OrderKey is claimed, so
	// delivery is ordered per person even with several workers. A due
	// pending head whose next message in its key is a later version of the
	// same resource, or whose resource already has a later version
	// delivered, is marked superseded instead of being claimed (sending the
	// later version has the same final effect; sending the older one after
	// it would regress the GP record).
	ClaimOutbox(ctx context.Context, channel OutboxChannel, worker string, limit int, now time.Time) ([]*OutboxMessage, error)
	// CompleteOutbox marks a message delivered. Like RetryOutboxLater and
	// DeadLetterOutbox, it takes effect only while the message is still
	// inflight under claim c (see OutboxClaim); otherwise it changes nothing
	// and returns ECONFLICT ("claim lost"), or ENOTFOUND for an unknown id.
	CompleteOutbox(ctx context.Context, c OutboxClaim, status int, now time.Time) error
	// RetryOutboxLater returns an inflight message to pending, due at, with
	// the attempt recorded.
	RetryOutboxLater(ctx context.Context, c OutboxClaim, at time.Time, status int, errText string) error
	// DeadLetterOutbox marks a message dead with the endpoint's answer.
	DeadLetterOutbox(ctx context.Context, c OutboxClaim, status int, errText string, outcome []byte) error
	// RescueOutbox returns messages of a channel inflight since before
	// stuckBefore to pending (a crashed worker's), and reports how many.
	RescueOutbox(ctx context.Context, channel OutboxChannel, stuckBefore time.Time) (int, error)

	// ListOutbox, GetOutbox, RequeueOutbox and DiscardOutbox serve the
	// operator tools. RequeueOutbox makes a dead, discarded or pending
	// message pending and due now; DiscardOutbox drops a pending or dead
	// message. Both return ENOTFOUND or ECONFLICT (wrong state).
	ListOutbox(ctx context.Context, f OutboxFilter) ([]*OutboxMessage, error)
	GetOutbox(ctx context.Context, id int64) (*OutboxMessage, error)
	RequeueOutbox(ctx context.Context, id int64, now time.Time) error
	DiscardOutbox(ctx context.Context, id int64) error
	// OutboxStats counts messages per state.
	OutboxStats(ctx context.Context) (*OutboxStats, error)

	// DeleteFinishedOutbox deletes up to limit finished messages (delivered,
	// superseded or discarded) that finished before before, oldest first,
	// and reports how many; callers repeat it until it deletes none (a
	// batch may free a delivered message that an older discarded one held
	// back). It never deletes a pending, inflight or dead message (dead
	// letters wait for an operator), nor a delivered one while an older
	// message of its resource and order key may still be sent (pending,
	// inflight, dead or discarded): the claim needs it to supersede that
	// message. Deleting never changes delivery order or what is superseded.
	// A discarded message finished when it was discarded (requeueing it
	// clears that); a superseded one when a claim superseded it. Safe to
	// run from several replicas at once. Returns EINVALID for a limit below
	// 1.
	DeleteFinishedOutbox(ctx context.Context, before time.Time, limit int) (int, error)
}

// EndpointIdentity is where one resource linkbridge writes back lives on
// one GP-side FHIR endpoint. A production endpoint assigns its own logical
// ids (it refuses update-as-create), so the relay records the id and
// version the endpoint answered with for every resource it wrote, and
// rewrites references between written-back resources to those ids before
// sending (docs/referral-exchange.md#write-back-identity).
type EndpointIdentity struct {
	// Endpoint is the endpoint's FHIR base URL, as configured.
	Endpoint string
	// ResourceType and ResourceID are linkbridge's own (the outbox
	// message's ResourceType and ResourceID).
	ResourceType, ResourceID string
	// EndpointID is the endpoint's logical id of the resource.
	EndpointID string
	// EndpointVersion is the endpoint's meta.versionId of the version last
	// written ("" when it did not say).
	EndpointVersion string
	// Version is linkbridge's version of the resource last written there.
	Version int
	// UpdatedAt is when it was recorded.
	UpdatedAt time.Time
}

// ResourceKey names one resource of linkbridge's: Type and id.
type ResourceKey struct{ Type, ID string }

// EndpointIdentityStore keeps EndpointIdentity records, per endpoint.
type EndpointIdentityStore interface {
	// EndpointIdentities returns the identities held on endpoint for keys;
	// a key with none is absent from the map.
	EndpointIdentities(ctx context.Context, endpoint string, keys []ResourceKey) (map[ResourceKey]EndpointIdentity, error)
	// RecordEndpointIdentity stores id, replacing the record of its
	// (Endpoint, ResourceType, ResourceID); a record of a later Version
	// than id's is kept (a late answer never moves it back). Returns
	// EINVALID when Endpoint, ResourceType, ResourceID or EndpointID is
	// empty.
	RecordEndpointIdentity(ctx context.Context, id EndpointIdentity) error
	// ForgetEndpointIdentity removes the record (after the resource was
	// deleted on the endpoint); removing none is no error.
	ForgetEndpointIdentity(ctx context.Context, endpoint string, key ResourceKey) error
}
