package linkbridge

// The argument checks and shared decisions of the store contracts (Store,
// CaseStore, OutboxStore, AuditStore): every adapter applies them the same
// way, so they live beside the contracts, not in an adapter.

// Validate returns EINVALID when a referral list's Limit is below 1 or its
// Offset is negative.
func (f ReferralFilter) Validate() error {
	switch {
	case f.Limit < 1:
		return Errorf(EINVALID, "referral list page size must be at least 1")
	case f.Offset < 0:
		return Errorf(EINVALID, "referral list offset must not be negative")
	}
	return nil
}

// Validate returns EINVALID for a Limit below 1 or a negative Offset.
func (f AuditFilter) Validate() error {
	if f.Limit < 1 {
		return Errorf(EINVALID, "audit page size must be at least 1")
	}
	if f.Offset < 0 {
		return Errorf(EINVALID, "audit offset must not be negative")
	}
	return nil
}

// ValidateClaim returns EINVALID for an outbox claim (ClaimOutbox) without
// a worker name or with a limit below 1.
func ValidateClaim(worker string, limit int) error {
	switch {
	case worker == "":
		return Errorf(EINVALID, "an outbox claim needs a worker name")
	case limit < 1:
		return Errorf(EINVALID, "an outbox claim takes at least 1 message, not %d", limit)
	}
	return nil
}

// Validate returns EINVALID for a claim that names no worker or no claim
// time: no claim of ClaimOutbox looks like that. op names the state change
// for the message.
func (c OutboxClaim) Validate(op string) error {
	if c.Worker == "" || c.At.IsZero() {
		return Errorf(EINVALID, "cannot %s outbox message %d: the claim names no worker or claim time", op, c.ID)
	}
	return nil
}

// ValidateChannel returns EINVALID for an unknown outbox channel.
func ValidateChannel(c OutboxChannel) error {
	if !c.Valid() {
		return Errorf(EINVALID, "unknown outbox channel %q", c)
	}
	return nil
}

// ValidateDeleteFinished returns EINVALID for a batch limit below 1.
func ValidateDeleteFinished(limit int) error {
	if limit < 1 {
		return Errorf(EINVALID, "deleting finished outbox messages takes at least 1 a batch, not %d", limit)
	}
	return nil
}

// OutboxHead is what settling a claim reads of a queued message at the
// head of its order key.
type OutboxHead struct {
	ID           int64
	ResourceType string
	ResourceID   string
	Version      int
}

// OutboxClaimable reports whether a head may be claimed: it is pending,
// due, and no earlier or inflight message of its key blocks it.
func OutboxClaimable(state string, blocked, due bool) bool {
	return state == string(OutboxPending) && !blocked && due
}

// SupersededBy reports whether h is superseded by next, the message queued
// right behind it in its key (nil: none): next is a later version of the
// same resource. (The other reason, a later version delivered already, is
// a lookup each adapter makes.)
func (h OutboxHead) SupersededBy(next *OutboxHead) bool {
	return next != nil && next.ResourceType == h.ResourceType && next.ResourceID == h.ResourceID && next.Version > h.Version
}

// OutboxNotFound is the ENOTFOUND of an unknown message id.
func OutboxNotFound(id int64) error {
	return Errorf(ENOTFOUND, "outbox message %d not found", id)
}

// OutboxWrongState is the ECONFLICT of a state change (op) that message id,
// in state, does not allow; want names the states it should be in.
func OutboxWrongState(op string, id int64, state, want string) error {
	return Errorf(ECONFLICT, "cannot %s outbox message %d: it is %s, not %s", op, id, state, want)
}

// OutboxClaimLost is the ECONFLICT of a state change (op) under a claim of
// message id that no longer holds: the message, in state, was rescued (and
// maybe claimed again), or an operator changed it. The message's current
// holder decides what becomes of it.
func OutboxClaimLost(op string, id int64, state string) error {
	now := "it is " + state
	if state == string(OutboxInflight) {
		now = "it is inflight under another claim"
	}
	return Errorf(ECONFLICT, "cannot %s outbox message %d: claim lost: %s", op, id, now)
}
