package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

var _ linkbridge.AuditStore = (*DB)(nil)

const (
	auditInsert       = `INSERT OR FAIL INTO audit_event (` + auditColumns + `) VALUES `
	auditEntityInsert = `INSERT OR FAIL INTO audit_entity (entity, audit_id) VALUES `
	auditColumns      = `id, recorded, client_id, role, ods, action, operation, method, route, entities, query, status, outcome, request_id, source`
)

// RecordAudit stores an audit record through the writer, so concurrent
// records share the group commit of the requests they describe. It assigns
// the record's ID when empty. Records are append only.
func (db *DB) RecordAudit(ctx context.Context, rec *linkbridge.AuditRecord) error {
	ar, err := sqlshared.NewAuditRow(rec, columns)
	if err != nil {
		return err
	}
	return db.w.do(ctx, func(w *writer) error { return w.insertAudit(ar) })
}

// insertAudit stores an audit record's row and entity index; nothing for
// nil (a write that carries no record).
func (w *writer) insertAudit(ar *sqlshared.AuditRow) error {
	if ar == nil {
		return nil
	}
	if err := w.execRows(auditInsert, "", len(ar.Args), ar.Args); err != nil {
		return fmt.Errorf("sqlite: record audit: %w", err)
	}
	ents := make([]any, 0, 2*len(ar.Index))
	for _, e := range ar.Index {
		ents = append(ents, e, ar.ID)
	}
	if err := w.execRows(auditEntityInsert, "", 2, ents); err != nil {
		return fmt.Errorf("sqlite: record audit entities: %w", err)
	}
	return nil
}

// SearchAudit returns one page of the records matching f, newest first,
// and the total number of matches.
func (db *DB) SearchAudit(ctx context.Context, f linkbridge.AuditFilter) ([]*linkbridge.AuditRecord, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	var where []string
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, `recorded >= ?`), append(args, formatTime(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, `recorded < ?`), append(args, formatTime(f.To))
	}
	if f.ClientID != "" {
		where, args = append(where, `client_id = ?`), append(args, f.ClientID)
	}
	if f.ODS != "" {
		where, args = append(where, `ods = ?`), append(args, f.ODS)
	}
	if f.Entity != "" {
		where, args = append(where, `id IN (SELECT audit_id FROM audit_entity WHERE entity = ?)`), append(args, f.Entity)
	}
	if f.Outcome != nil {
		where, args = append(where, `outcome = ?`), append(args, *f.Outcome)
	}
	w := ""
	if len(where) > 0 {
		w = ` WHERE ` + strings.Join(where, ` AND `)
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: search audit: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_event`+w, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: search audit: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_event`+w+` ORDER BY recorded DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: search audit: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*linkbridge.AuditRecord
	for rows.Next() {
		rec, err := scanAudit(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: search audit: %w", err)
	}
	return out, total, nil
}

// ReadAudit returns one audit record, or ENOTFOUND.
func (db *DB) ReadAudit(ctx context.Context, id string) (*linkbridge.AuditRecord, error) {
	rec, err := scanAudit(db.read.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit_event WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "AuditEvent/%s not found", id)
	}
	return rec, err
}

func scanAudit(row scanner) (*linkbridge.AuditRecord, error) {
	rec := &linkbridge.AuditRecord{}
	var recorded, role, entities, query string
	err := row.Scan(&rec.ID, &recorded, &rec.ClientID, &role, &rec.ODS, &rec.Action, &rec.Operation, &rec.Method, &rec.Route,
		&entities, &query, &rec.Status, &rec.Outcome, &rec.RequestID, &rec.Source)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: read audit: %w", err)
	}
	if rec.Recorded, err = parseTime(recorded); err != nil {
		return nil, err
	}
	if err := sqlshared.DecodeAudit(rec, role, entities, query); err != nil {
		return nil, fmt.Errorf("sqlite: read audit: %w", err)
	}
	return rec, nil
}
