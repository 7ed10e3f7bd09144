package linkbridge

import (
	"slices"
	"time"
)

// Validate checks, without I/O, that an intake is complete enough for a
// store to write: it has a referral at version 1, a person when NewPerson
// is set, and resources that each have a type and an id, are listed once
// and are at version 1. Every Store's CreateReferral calls it first and
// returns its EINVALID.
func (in *Intake) Validate() error {
	switch {
	case in == nil || in.Referral == nil:
		return Errorf(EINVALID, "intake has no referral")
	case in.NewPerson && in.Person == nil:
		return Errorf(EINVALID, "intake has a new person but no person")
	case in.Referral.Version != 1:
		return Errorf(EINVALID, "a new referral must be at version 1, not %d", in.Referral.Version)
	}
	if err := validateResources(in.Resources); err != nil {
		return err
	}
	if err := validateEvents(in.Events); err != nil {
		return err
	}
	for _, r := range in.Resources {
		if r.VersionID != 1 {
			return Errorf(EINVALID, "new resource %s/%s must be at version 1, not %d", r.Type, r.ID, r.VersionID)
		}
	}
	return nil
}

// Validate checks, without I/O, that a change is consistent in itself
// before a store writes it: it has a referral; its resources each have a
// type and an id, are listed once and are at version 1 or later; its
// contacts and measures have ids; its contacts, measures, event and outbox
// messages name no other referral than the change's (an empty ReferralID
// is the change's); its event, if any, has an action and names no other
// version than the one the change produces; and its outbox messages are new
// (pending), name an order key, a resource at version 1 or later and carry a
// body. Whether the change fits the stored referral (its version, the
// resources' versions) is for the store to check in its transaction. Every
// Store's UpdateReferral calls it first and returns its EINVALID.
func (ch *ReferralChange) Validate() error {
	if ch == nil || ch.Referral == nil {
		return Errorf(EINVALID, "change has no referral")
	}
	ref := ch.Referral
	if err := validateResources(ch.Resources); err != nil {
		return err
	}
	if err := validateEvents(ch.Events); err != nil {
		return err
	}
	for _, r := range ch.Resources {
		if r.VersionID < 1 {
			return Errorf(EINVALID, "resource %s/%s has version %d", r.Type, r.ID, r.VersionID)
		}
	}
	for i, ct := range slices.Concat(ch.Contacts, ch.ContactUpdates) {
		switch {
		case ct == nil || ct.ID == "":
			return Errorf(EINVALID, "contact %d has no id", i)
		case ct.ReferralID != "" && ct.ReferralID != ref.ID:
			return Errorf(EINVALID, "contact %s belongs to referral %s, not %s", ct.ID, ct.ReferralID, ref.ID)
		}
	}
	for i, m := range slices.Concat(ch.Measures, ch.MeasureUpdates) {
		switch {
		case m == nil || m.ID == "":
			return Errorf(EINVALID, "measure %d has no id", i)
		case m.ReferralID != "" && m.ReferralID != ref.ID:
			return Errorf(EINVALID, "measure %s belongs to referral %s, not %s", m.ID, m.ReferralID, ref.ID)
		}
	}
	if ev := ch.Event; ev != nil {
		switch {
		case ev.ReferralID != "" && ev.ReferralID != ref.ID:
			return Errorf(EINVALID, "event belongs to referral %s, not %s", ev.ReferralID, ref.ID)
		case ev.Version != 0 && ev.Version != ref.Version:
			return Errorf(EINVALID, "event is of version %d, but the change produces version %d", ev.Version, ref.Version)
		case ev.Action == "":
			return Errorf(EINVALID, "event has no action")
		}
	}
	for i, m := range ch.Outbox {
		switch {
		case m == nil:
			return Errorf(EINVALID, "outbox message %d is empty", i)
		case m.ReferralID != "" && m.ReferralID != ref.ID:
			return Errorf(EINVALID, "outbox message %d belongs to referral %s, not %s", i, m.ReferralID, ref.ID)
		case m.OrderKey == "":
			return Errorf(EINVALID, "outbox message %d has no order key", i)
		case m.ResourceType == "" || m.ResourceID == "":
			return Errorf(EINVALID, "outbox message %d names no resource", i)
		case m.Version < 1:
			return Errorf(EINVALID, "outbox message %d is of %s/%s version %d", i, m.ResourceType, m.ResourceID, m.Version)
		case len(m.Body) == 0 && !m.Erase:
			// Only an erase may have nothing to write where the endpoint
			// cannot delete (see OutboxMessage.Erase).
			return Errorf(EINVALID, "outbox message %d (%s/%s) has no body", i, m.ResourceType, m.ResourceID)
		case m.Channel != "" && m.Channel != ChannelWriteBack:
			return Errorf(EINVALID, "outbox message %d is for the %s channel: a change enqueues write-backs (notifications are queued for its Events)", i, m.Channel)
		case m.State != "" && m.State != OutboxPending:
			return Errorf(EINVALID, "outbox message %d is %s: a new message is pending", i, m.State)
		}
	}
	return nil
}

// validateEvents checks that every topic event names a topic and a focus
// resource version.
func validateEvents(evs []*TopicEvent) error {
	for i, ev := range evs {
		if ev == nil || ev.Topic == "" || ev.Focus == nil || ev.Focus.Type == "" || ev.Focus.ID == "" || ev.Focus.VersionID < 1 {
			return Errorf(EINVALID, "topic event %d names no topic or no focus resource version", i)
		}
	}
	return nil
}

// validateResources checks that every resource has a type and an id and
// that none is listed twice.
func validateResources(rs []*Resource) error {
	for i, r := range rs {
		if r == nil || r.Type == "" || r.ID == "" {
			return Errorf(EINVALID, "resource %d has no type or id", i)
		}
		for _, prev := range rs[:i] {
			if prev.Type == r.Type && prev.ID == r.ID {
				return Errorf(EINVALID, "%s/%s is listed twice", r.Type, r.ID)
			}
		}
	}
	return nil
}

// StoredEvent returns the history event the change appends, as a store
// records it, or nil when the change has none: it belongs to the change's
// referral and its zero Version, At and Status default to the new
// referral's Version, UpdatedAt and Status. Call it on a validated change.
func (ch *ReferralChange) StoredEvent() *ReferralEvent {
	if ch.Event == nil {
		return nil
	}
	ref := ch.Referral
	ev := *ch.Event
	ev.ReferralID, ev.Version = ref.ID, ref.Version
	if ev.At.IsZero() {
		ev.At = ref.UpdatedAt
	}
	if ev.Status == "" {
		ev.Status = ref.Status
	}
	return &ev
}

// ReceivedEvent returns the first event of a new referral's history, as
// CreateReferral records it: version 1, "received" by the "requester" at
// ReceivedAt, with the referral's status.
func ReceivedEvent(r *Referral) *ReferralEvent {
	return &ReferralEvent{ReferralID: r.ID, Version: 1, At: r.ReceivedAt, Action: "received", Actor: "requester", Status: r.Status}
}

// EnqueueTimes returns when a new outbox message was created and when it
// falls due, as a store enqueues it at now: a zero CreatedAt is now, a zero
// AvailableAt is the creation time.
func (m *OutboxMessage) EnqueueTimes(now time.Time) (created, available time.Time) {
	created, available = m.CreatedAt, m.AvailableAt
	if created.IsZero() {
		created = now
	}
	if available.IsZero() {
		available = created
	}
	return created, available
}
