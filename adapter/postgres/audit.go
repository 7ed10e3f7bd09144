package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

var _ linkbridge.AuditStore = (*DB)(nil)

// auditColumns are the audit_event columns in the order scanAudit reads
// them.
const auditColumns = `id, recorded, client_id, role, ods, action, operation, method, route, entities::text, query::text,
	status, outcome, request_id, source`

// RecordAudit stores an audit record and its entity index in one batch (one
// implicit transaction). It assigns the record's ID when empty. Records are
// append only.
func (db *DB) RecordAudit(ctx context.Context, rec *linkbridge.AuditRecord) error {
	ar, err := sqlshared.NewAuditRow(rec, columns)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	var ops []string
	queueAudit(ar, func(op, sql string, args ...any) {
		b.Queue(sql, args...)
		ops = append(ops, op)
	})
	if op, err := db.runBatch(ctx, b, ops); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return nil
}

// Statements of queueAudit; entities and query are sent as text and cast.
const (
	insAudit = `INSERT INTO audit_event (id, recorded, client_id, role, ods, action, operation, method, route, entities, query,
		status, outcome, request_id, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12, $13, $14, $15)`
	insAuditEntities = `INSERT INTO audit_entity (entity, audit_id) SELECT e, $2 FROM unnest($1::text[]) AS u (e)`
)

// queueAudit queues the statements that store an audit record's row and
// entity index; none for nil (a write that carries no record).
func queueAudit(ar *sqlshared.AuditRow, queue func(op, sql string, args ...any)) {
	if ar == nil {
		return
	}
	queue("record audit", insAudit, ar.Args...)
	if len(ar.Index) > 0 {
		queue("record audit entities", insAuditEntities, ar.Index, ar.ID)
	}
}

// SearchAudit returns one page of the records matching f, newest first
// (then by id, descending), and the total number of matches, from one
// snapshot. EINVALID for a Limit below 1 or a negative Offset.
func (db *DB) SearchAudit(ctx context.Context, f linkbridge.AuditFilter) ([]*linkbridge.AuditRecord, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if !f.From.IsZero() {
		where = append(where, `recorded >= `+arg(ceilMicro(f.From)))
	}
	if !f.To.IsZero() {
		where = append(where, `recorded < `+arg(ceilMicro(f.To)))
	}
	if f.ClientID != "" {
		where = append(where, `client_id = `+arg(f.ClientID))
	}
	if f.ODS != "" {
		where = append(where, `ods = `+arg(f.ODS))
	}
	if f.Entity != "" {
		where = append(where, `id IN (SELECT audit_id FROM audit_entity WHERE entity = `+arg(f.Entity)+`)`)
	}
	if f.Outcome != nil {
		where = append(where, `outcome = `+arg(*f.Outcome))
	}
	var out []*linkbridge.AuditRecord
	total, err := db.countAndPage(ctx, auditColumns, `audit_event`+whereClause(where), `recorded DESC, id DESC`, args,
		f.Limit, f.Offset, appendTo(&out, scanAudit))
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: search audit: %w", err)
	}
	return out, total, nil
}

// ReadAudit returns one audit record, or ENOTFOUND.
func (db *DB) ReadAudit(ctx context.Context, id string) (*linkbridge.AuditRecord, error) {
	rec, err := scanAudit(db.pool.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit_event WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "AuditEvent/%s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: read audit: %w", err)
	}
	return rec, nil
}

// scanAudit reads a row of auditColumns.
func scanAudit(row pgx.Row) (*linkbridge.AuditRecord, error) {
	rec := &linkbridge.AuditRecord{}
	var role, entities, query string
	if err := row.Scan(&rec.ID, &rec.Recorded, &rec.ClientID, &role, &rec.ODS, &rec.Action, &rec.Operation, &rec.Method,
		&rec.Route, &entities, &query, &rec.Status, &rec.Outcome, &rec.RequestID, &rec.Source); err != nil {
		return nil, err
	}
	rec.Recorded = utc(rec.Recorded)
	if err := sqlshared.DecodeAudit(rec, role, entities, query); err != nil {
		return nil, err
	}
	return rec, nil
}
