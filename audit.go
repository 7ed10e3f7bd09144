package linkbridge

import (
	"context"
	"time"
)

// AuditRecord is one access to the gateway's API: who (client,
// organisation, role), what (operation, route, the resources touched), when
// and with what outcome. It never holds query values, bodies, names or NHS
// numbers: entities are "Type/id" references and queries are parameter
// names only. Served to administrators as FHIR AuditEvent.
type AuditRecord struct {
	// ID is assigned by the store when empty.
	ID string
	// Recorded is when the access ended; for a write whose record commits
	// with it (Intake.Audit, ReferralChange.Audit), when the write was
	// made.
	Recorded time.Time
	// ClientID, Role and ODS name the caller; empty when the caller did not
	// authenticate (the record of a refused request).
	ClientID string
	Role     Role
	ODS      string
	// Action is the FHIR AuditEvent action: C create, R read, U update,
	// E execute (search, operations).
	Action string
	// Operation names what was done: "read", "vread", "history", "search",
	// "create", "update", "process-message", "sp-read", "sp-list",
	// "sp-change", "audit-search".
	Operation string
	// Method and Route are the HTTP method and route template.
	Method string
	Route  string
	// Entities are the resources read or written, "Type/id".
	Entities []string
	// Query lists the search parameter names used (never their values).
	Query []string
	// Status is the HTTP status answered; Outcome the AuditEvent outcome:
	// 0 success, 4 minor failure (4xx), 8 serious failure (5xx).
	Status  int
	Outcome int
	// RequestID is the caller's X-Request-Id, if any.
	RequestID string
	// Source is the caller's network address (host only).
	Source string
}

// AuditOutcome returns the AuditEvent outcome code for an HTTP status: 0
// for success, 4 for a client error, 8 for a server error.
func AuditOutcome(status int) int {
	switch {
	case status >= 500:
		return 8
	case status >= 400:
		return 4
	}
	return 0
}

// AuditFilter selects audit records, newest first.
type AuditFilter struct {
	// From and To bound Recorded (inclusive, exclusive); zero is unbounded.
	From, To time.Time
	// ClientID, ODS and Entity ("Type/id") select exact matches when set.
	ClientID string
	ODS      string
	Entity   string
	// Outcome selects one outcome code when not nil.
	Outcome *int
	// Limit (at least 1) and Offset page the result.
	Limit, Offset int
}

// AuditStore keeps the audit trail durably. Implementations: adapter/sqlite
// and adapter/postgres (adapter/storetest.RunAuditStore is its contract,
// with the records that writes carry to Store.CreateReferral and
// Store.UpdateReferral).
type AuditStore interface {
	// RecordAudit stores a record, assigning its ID when empty. Records are
	// never changed or deleted through the store.
	RecordAudit(ctx context.Context, rec *AuditRecord) error
	// SearchAudit returns one page of the records matching f, newest first,
	// and the total number of matches. EINVALID for a Limit below 1.
	SearchAudit(ctx context.Context, f AuditFilter) ([]*AuditRecord, int, error)
	// ReadAudit returns one record by id, or ENOTFOUND.
	ReadAudit(ctx context.Context, id string) (*AuditRecord, error)
}
