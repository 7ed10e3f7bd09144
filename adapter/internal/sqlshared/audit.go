package sqlshared

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/linkbridge/linkbridge"
)

// AuditRow is an audit record's JSON columns and its entity index.
type AuditRow struct {
	// Entities and Query are the JSON array columns ("[]" for none).
	Entities, Query string
	// Index are the distinct entities, in order, for audit_entity.
	Index []string
}

// NewAuditRow checks that rec has a time (EINVALID otherwise), assigns its
// ID when empty (16 random bytes, hex), and converts it to column values.
func NewAuditRow(rec *linkbridge.AuditRecord) (*AuditRow, error) {
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
	row := &AuditRow{Entities: string(entities), Query: string(query)}
	seen := map[string]bool{}
	for _, e := range rec.Entities {
		if !seen[e] {
			seen[e] = true
			row.Index = append(row.Index, e)
		}
	}
	return row, nil
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

// CheckAuditFilter returns EINVALID for a Limit below 1 or a negative
// Offset.
func CheckAuditFilter(f linkbridge.AuditFilter) error {
	if f.Limit < 1 {
		return linkbridge.Errorf(linkbridge.EINVALID, "audit page size must be at least 1")
	}
	if f.Offset < 0 {
		return linkbridge.Errorf(linkbridge.EINVALID, "audit offset must not be negative")
	}
	return nil
}
