package linkbridge

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Topic-based subscriptions (FHIR R4 Subscriptions Backport IG,
// docs/subscriptions.md): a client subscribes to a topic, optionally
// narrowed by filters, and the gateway POSTs a notification Bundle to the
// client's rest-hook endpoint for every event of the topic the client may
// read. Events are recorded in the transaction of the change that caused
// them, each with the next event number of its subscription, and delivered
// through the outbox, in order, one subscription at a time.

// SubscriptionStatus is the status of a Subscription (FHIR R4
// subscription-status).
type SubscriptionStatus string

// Subscription statuses.
const (
	// SubscriptionRequested: created; the handshake is not yet delivered.
	SubscriptionRequested SubscriptionStatus = "requested"
	// SubscriptionActive: the last delivery (handshake, heartbeat or event
	// notification) was accepted by the endpoint.
	SubscriptionActive SubscriptionStatus = "active"
	// SubscriptionError: the last delivery attempt failed; the outbox
	// keeps trying (nothing is skipped) and the status is active again once
	// a delivery succeeds.
	SubscriptionError SubscriptionStatus = "error"
	// SubscriptionOff: no more events are recorded (its end has passed).
	SubscriptionOff SubscriptionStatus = "off"
)

// Valid reports whether s is a subscription status.
func (s SubscriptionStatus) Valid() bool {
	switch s {
	case SubscriptionRequested, SubscriptionActive, SubscriptionError, SubscriptionOff:
		return true
	}
	return false
}

// SubscriptionContent is how much of the resources a notification carries
// (the backport-payload-content extension).
type SubscriptionContent string

// Payload contents.
const (
	// ContentEmpty carries no resource and no reference to one.
	ContentEmpty SubscriptionContent = "empty"
	// ContentIDOnly carries the focus's reference, not its content.
	ContentIDOnly SubscriptionContent = "id-only"
	// ContentFullResource carries the focus resource version itself.
	ContentFullResource SubscriptionContent = "full-resource"
)

// Valid reports whether c is a payload content.
func (c SubscriptionContent) Valid() bool {
	switch c {
	case ContentEmpty, ContentIDOnly, ContentFullResource:
		return true
	}
	return false
}

// Notification types (FHIR subscription-notification-type).
const (
	NotificationHandshake   = "handshake"
	NotificationHeartbeat   = "heartbeat"
	NotificationEvent       = "event-notification"
	NotificationQueryStatus = "query-status"
	NotificationQueryEvent  = "query-event"
)

// SubscriptionOwner is the client that created a subscription, as it was
// authenticated then: its organisation owns the subscription (only that
// organisation's clients read or delete it), and its role and practices
// decide which events reach it, exactly as they decide what the client
// reads at /fhir (Principal.CanRead).
type SubscriptionOwner struct {
	ClientID  string   `json:"clientId,omitempty"`
	Role      Role     `json:"role,omitempty"`
	ODS       string   `json:"ods,omitempty"`
	Practices []string `json:"practices,omitempty"`
}

// OwnerOf returns the owner a subscription created by p records; nil p
// (authentication off) owns with no organisation.
func OwnerOf(p *Principal) SubscriptionOwner {
	if p == nil {
		return SubscriptionOwner{}
	}
	return SubscriptionOwner{ClientID: p.ClientID, Role: p.Role, ODS: p.ODS, Practices: slices.Clone(p.Practices)}
}

// Anonymous reports whether the subscription was created without
// authentication (serve --dev): it then reaches every referral.
func (o SubscriptionOwner) Anonymous() bool { return o.ClientID == "" && o.Role == "" }

// CanRead reports whether events of a referral reach the owner: what
// Principal.CanRead says for the owner's role, organisation and
// practices. An anonymous owner (authentication off) reads every referral
// but one entered in error.
func (o SubscriptionOwner) CanRead(rf *Referral) bool {
	if o.Anonymous() {
		return rf.Status != TaskEnteredInError && rf.RequestStatus != "entered-in-error"
	}
	p := &Principal{ClientID: o.ClientID, Role: o.Role, ODS: o.ODS, Practices: o.Practices}
	return p.CanRead(rf)
}

// SubscriptionFilter is one filter of a subscription
// (backport-filter-criteria): the events whose focus has, under search
// parameter Name, one of Values. A filter naming a ResourceType applies
// only to events whose focus is of that type; without, to every event.
// Several filters are ANDed. Name and Values are as the store indexes
// them (a reference as "Type/id"); a token value is read as a search
// reads it ("code", "system|code" or "|code", FHIR escapes included:
// SearchParam.MatchesAny); "_id" matches the focus's id.
type SubscriptionFilter struct {
	ResourceType string   `json:"resourceType,omitempty"`
	Name         string   `json:"name"`
	Values       []string `json:"values"`
}

// Matches reports whether the filter lets an event about res through.
func (f SubscriptionFilter) Matches(res *Resource) bool {
	if f.ResourceType != "" && f.ResourceType != res.Type {
		return true // not about this type: it does not narrow this event
	}
	if f.Name == "_id" {
		return slices.Contains(f.Values, res.ID)
	}
	for _, p := range res.Params {
		if p.Name == f.Name && p.MatchesAny(f.Values) {
			return true
		}
	}
	return false
}

// Subscription is a client's topic-based subscription with a rest-hook
// channel.
type Subscription struct {
	ID    string
	Owner SubscriptionOwner
	// Topic is the canonical URL of the subscription topic.
	Topic string
	// FilterCriteria are the filter strings as the client sent them
	// (served back on read); Filters are what they mean.
	FilterCriteria []string
	Filters        []SubscriptionFilter
	// Endpoint is the rest-hook URL notifications are POSTed to.
	Endpoint string
	// Headers are "Name: value" lines sent with every notification
	// (Subscription.channel.header). They may hold the endpoint's
	// credentials: never logged.
	Headers []string
	// PayloadType is the notifications' MIME type (application/fhir+json
	// or application/fhir+xml); Content how much of the resources they
	// carry.
	PayloadType string
	Content     SubscriptionContent
	// HeartbeatPeriod, when positive, is the idle time after which a
	// heartbeat notification is sent; Timeout, when positive, bounds one
	// delivery attempt; MaxCount, when positive, is the most events one
	// notification carries (linkbridge sends one event a notification).
	HeartbeatPeriod time.Duration
	Timeout         time.Duration
	MaxCount        int
	// End, when set, is when the subscription turns off.
	End    time.Time
	Reason string
	Status SubscriptionStatus
	// Error describes the last failed delivery while Status is error.
	Error string
	// EventsSinceStart is the number of the last event recorded (events
	// are numbered from 1, without gaps).
	EventsSinceStart int64
	// Base is the FHIR base URL the subscription was created at:
	// notifications refer to it and to resources under it.
	Base string
	// Version counts the changes of the Subscription resource (its
	// status) from 1.
	Version   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Live reports whether events are recorded for s at now: its status is not
// off and its end, if any, has not passed.
func (s *Subscription) Live(now time.Time) bool {
	return s.Status != SubscriptionOff && (s.End.IsZero() || now.Before(s.End))
}

// Matches reports whether an event of the referral rf reaches s at now:
// s is live and subscribed to the event's topic, its owner may read the
// referral, and every filter lets the focus through.
func (s *Subscription) Matches(ev *TopicEvent, rf *Referral, now time.Time) bool {
	if !s.Live(now) || ev == nil || ev.Focus == nil || ev.Topic != s.Topic || rf == nil || !s.Owner.CanRead(rf) {
		return false
	}
	for _, f := range s.Filters {
		if !f.Matches(ev.Focus) {
			return false
		}
	}
	return true
}

// OrderKey is the outbox order key of the subscription's notifications:
// they are delivered one at a time, in the order they were queued.
func (s *Subscription) OrderKey() string { return SubscriptionOrderKey(s.ID) }

// SubscriptionOrderKey is the outbox order key of subscription id.
func SubscriptionOrderKey(id string) string { return "Subscription/" + id }

// SubscriptionIDOfKey returns the subscription id of an outbox order key
// of a subscription, and whether it is one.
func SubscriptionIDOfKey(key string) (string, bool) {
	return strings.CutPrefix(key, "Subscription/")
}

// Validate checks a new subscription without I/O: it has an id, a topic,
// an absolute endpoint, a known content and MIME type, and no negative
// period.
func (s *Subscription) Validate() error {
	switch {
	case s == nil || s.ID == "":
		return Errorf(EINVALID, "subscription has no id")
	case s.Topic == "":
		return Errorf(EUNPROCESSABLE, "Subscription.criteria must name a subscription topic").At("Subscription.criteria")
	case s.Endpoint == "":
		return Errorf(EUNPROCESSABLE, "Subscription.channel.endpoint is required").At("Subscription.channel.endpoint")
	case !s.Content.Valid():
		return Errorf(EUNPROCESSABLE, "payload content must be empty, id-only or full-resource").At("Subscription.channel.payload")
	case s.PayloadType != "application/fhir+json" && s.PayloadType != "application/fhir+xml":
		return Errorf(EUNPROCESSABLE, "Subscription.channel.payload must be application/fhir+json or application/fhir+xml").At("Subscription.channel.payload")
	case s.HeartbeatPeriod < 0 || s.Timeout < 0 || s.MaxCount < 0:
		return Errorf(EUNPROCESSABLE, "heartbeat period, timeout and max count must not be negative").At("Subscription.channel")
	}
	for _, f := range s.Filters {
		if f.Name == "" || len(f.Values) == 0 {
			return Errorf(EUNPROCESSABLE, "a filter needs a parameter and a value").At("Subscription.criteria")
		}
	}
	return nil
}

// TopicEvent is an event of a subscription topic that a referral change
// (or intake) causes: a new version of one of the referral's resources. A
// store records it, in the change's transaction, for every subscription it
// matches (Subscription.Matches).
type TopicEvent struct {
	// Topic is the topic's canonical URL.
	Topic string
	// Focus is the resource version the event is about: one of the
	// change's (or intake's) resources, with its search parameters.
	Focus *Resource
}

// SubscriptionEvent is one recorded event of a subscription: the event
// log $events replays and notifications are rendered from.
type SubscriptionEvent struct {
	SubscriptionID string
	// Number is the event number within the subscription, from 1.
	Number int64
	Topic  string
	// FocusType, FocusID and FocusVersion name the resource version.
	FocusType, FocusID string
	FocusVersion       int
	ReferralID         string
	// At is when the event was recorded.
	At time.Time
}

// SubscriptionQuery selects subscriptions.
type SubscriptionQuery struct {
	// OwnerODS restricts to one organisation's subscriptions ("" with
	// AnyOwner false: the anonymous ones of authentication off).
	OwnerODS string
	// AnyOwner lifts the owner restriction (operators, in-process).
	AnyOwner bool
	IDs      []string
	Statuses []SubscriptionStatus
	Topic    string
	// Limit (default 100) and Offset page the result, oldest first.
	Limit, Offset int
}

// SubscriptionStore keeps subscriptions, their event logs and their
// notifications' place in the outbox. Both backends implement it and pass
// adapter/storetest. Events are recorded by CreateReferral and
// UpdateReferral for the TopicEvents of Intake.Events and
// ReferralChange.Events, in the same transaction.
type SubscriptionStore interface {
	// CreateSubscription stores s with status requested, no events, at
	// version 1 (setting s's Status, Version, CreatedAt and UpdatedAt), and
	// queues its handshake notification, in one transaction. It returns
	// EINVALID for a subscription Validate refuses and ECONFLICT for an id
	// that is taken.
	CreateSubscription(ctx context.Context, s *Subscription, now time.Time) error
	// GetSubscription returns a subscription, or ENOTFOUND.
	GetSubscription(ctx context.Context, id string) (*Subscription, error)
	// ListSubscriptions returns the subscriptions q selects, oldest first.
	ListSubscriptions(ctx context.Context, q SubscriptionQuery) ([]*Subscription, error)
	// DeleteSubscription deletes a subscription and its event log, and
	// discards its notifications that are still pending, in one
	// transaction. It returns ENOTFOUND for an unknown id.
	DeleteSubscription(ctx context.Context, id string) error
	// SetSubscriptionStatus records the outcome of a delivery: status
	// (active or error) and the error text ("" clears it), counting a new
	// version when either changes. An off subscription stays off. It
	// returns ENOTFOUND for an unknown id and EINVALID for another status.
	SetSubscriptionStatus(ctx context.Context, id string, status SubscriptionStatus, errText string, now time.Time) error
	// SubscriptionEvent returns one recorded event of a subscription, or
	// ENOTFOUND.
	SubscriptionEvent(ctx context.Context, id string, number int64) (*SubscriptionEvent, error)
	// SubscriptionEvents returns the recorded events of a subscription
	// numbered from..to (inclusive; to 0: no upper bound), at most limit
	// of them, lowest number first. It returns ENOTFOUND for an unknown
	// subscription.
	SubscriptionEvents(ctx context.Context, id string, from, to int64, limit int) ([]*SubscriptionEvent, error)
	// QueueHeartbeats turns off the subscriptions whose end has passed,
	// and queues a heartbeat notification for every active or erroring
	// subscription with a heartbeat period that nothing was queued for in
	// the last period and that has nothing queued now. It reports how many
	// heartbeats it queued. Safe to run from several replicas at once: a
	// subscription gets one heartbeat a period.
	QueueHeartbeats(ctx context.Context, now time.Time) (int, error)
}
