package sqlshared

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/linkbridge/linkbridge"
)

// AuditRow is an audit record converted to column values: its
// audit_event row and its entity index.
type AuditRow struct {
	// ID is the record's id (assigned when it had none).
	ID string
	// Entities and Query are the JSON array columns ("[]" for none).
	Entities, Query string
	// Index are the distinct entities, in order, for audit_entity.
	Index []string
	// Args are the audit_event values in the order of AuditColumnList.
	Args []any
}

// AuditColumnList are the audit_event columns in the order of
// AuditRow.Args.
var AuditColumnList = []string{"id", "recorded", "client_id", "role", "ods", "action", "operation", "method", "route",
	"entities", "query", "status", "outcome", "request_id", "source"}

// NewAuditRow checks that rec has a time (EINVALID otherwise), assigns its
// ID when empty (16 random bytes, hex), and converts it to column values.
// The row is a copy: a writer on another goroutine may read it.
func NewAuditRow(rec *linkbridge.AuditRecord, c Columns) (*AuditRow, error) {
	if rec == nil || rec.Recorded.IsZero() {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "audit record needs a time")
	}
	if rec.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		rec.ID = hex.EncodeToString(b[:])
	}
	entities, err := json.Marshal(nonNil(rec.Entities))
	if err != nil {
		return nil, err
	}
	query, err := json.Marshal(nonNil(rec.Query))
	if err != nil {
		return nil, err
	}
	row := &AuditRow{ID: rec.ID, Entities: string(entities), Query: string(query)}
	seen := map[string]bool{}
	for _, e := range rec.Entities {
		if !seen[e] {
			seen[e] = true
			row.Index = append(row.Index, e)
		}
	}
	row.Args = []any{rec.ID, c.Time(rec.Recorded), rec.ClientID, string(rec.Role), rec.ODS, rec.Action, rec.Operation,
		rec.Method, rec.Route, row.Entities, row.Query, rec.Status, rec.Outcome, rec.RequestID, rec.Source}
	return row, nil
}

// WriteAuditRow converts the audit record a write carries
// (Intake.Audit, ReferralChange.Audit) as NewAuditRow does; nil when the
// write carries none.
func WriteAuditRow(rec *linkbridge.AuditRecord, c Columns) (*AuditRow, error) {
	if rec == nil {
		return nil, nil
	}
	return NewAuditRow(rec, c)
}

// nonNil returns s, or an empty slice for nil.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DecodeAudit sets rec's role, entities and query from their columns.
func DecodeAudit(rec *linkbridge.AuditRecord, role, entities, query string) error {
	rec.Role = linkbridge.Role(role)
	if err := json.Unmarshal([]byte(entities), &rec.Entities); err != nil {
		return fmt.Errorf("bad stored audit entities: %w", err)
	}
	if err := json.Unmarshal([]byte(query), &rec.Query); err != nil {
		return fmt.Errorf("bad stored audit query: %w", err)
	}
	return nil
}
