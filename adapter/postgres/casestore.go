package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// correctOp starts the op name of a correction's UPDATE, which must change
// one row (UpdateReferral: ENOTFOUND otherwise).
const correctOp = "correct "

var (
	updContact = sqlshared.ContactUpdateSQL(pgParam)
	updMeasure = sqlshared.MeasureUpdateSQL(pgParam, "::jsonb")
)

// pgParam is PostgreSQL's i-th placeholder.
func pgParam(i int) string { return "$" + strconv.Itoa(i) }

// queueCase queues a change's case-record writes (sqlshared.CaseRows); the
// referral they belong to is updated already, in the same transaction. Each op names the entry, so that
// a taken id is reported as ECONFLICT naming it (see caseError).
func queueCase(c *sqlshared.CaseRows, queue func(op, sql string, args ...any)) {
	if c.Plan != nil {
		queue("store plan", `INSERT INTO case_plan (referral_id, body) VALUES ($1, $2::json)
			ON CONFLICT (referral_id) DO UPDATE SET body = excluded.body`, c.ReferralID, *c.Plan)
	}
	for _, args := range c.Contacts {
		queue("add contact "+args[0].(string), `INSERT INTO contact (id, referral_id, at, mode, minutes, attended, notes, created_at,
			amended_at, withdrawn_at, withdrawn_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, args...)
	}
	for _, args := range c.Measures {
		queue("add measure "+args[0].(string), `INSERT INTO measure (id, referral_id, instrument, timepoint, items, total, metric, taken_at, created_at,
			amended_at, withdrawn_at, withdrawn_reason) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12)`, args...)
	}
	for _, args := range c.ContactUpdates {
		queue(correctOp+"contact "+args[len(args)-2].(string), updContact, args...)
	}
	for _, args := range c.MeasureUpdates {
		queue(correctOp+"measure "+args[len(args)-2].(string), updMeasure, args...)
	}
	if c.Event != nil {
		queue("record event "+strconv.Itoa(c.Event[1].(int)), insEvent, c.Event...)
	}
}

// readTx runs fn in a read-only REPEATABLE READ transaction: every query of
// fn reads one snapshot, as SQLite's read transactions do. An error that
// ends it after ctx ended wraps ctx's error too (see ctxErr).
//
// The transaction ends on a context of its own (ctx's values, a second to
// run): a rollback on an ended ctx fails at once, and pgx closes a
// connection whose rollback failed, so every cancelled search would cost
// the pool its connection, which the cancel request (see Open) keeps.
func (db *DB) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return ctxErr(ctx, err)
	}
	err = fn(tx)
	// The second to end the transaction starts now, after fn: started
	// before it, a read that took longer than a second failed at its
	// commit with "context already done" though it had its answer.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err != nil {
		_ = tx.Rollback(endCtx)
		return statementTimedOut(ctxErr(ctx, err))
	}
	return ctxErr(ctx, tx.Commit(endCtx))
}

// statementTimedOut marks a read the server cancelled at its
// statement_timeout (SQLSTATE 57014 while the caller's context is still
// live) as ETIMEOUT: the caller may retry, the server did not fail.
func statementTimedOut(err error) error {
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) || pe.Code != "57014" || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", linkbridge.Errorf(linkbridge.ETIMEOUT, "the query ran longer than the database allows; retry later"), err)
}

// ctxErr returns err, wrapping ctx's error too when ctx has ended: a
// statement that ctx's end cancelled fails with the server's "canceling
// statement due to user request" (the cancel request, see Open), and the
// caller should still see context.Canceled or DeadlineExceeded in it.
func ctxErr(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil || errors.Is(err, ctx.Err()) {
		return err
	}
	return fmt.Errorf("%w: %w", ctx.Err(), err)
}

// The statements of GetCaseRecord after the referral and its person (by
// primary key): the plan, the contacts, the measures and the history of
// one referral.
const (
	caseRecordPlanSQL     = `SELECT body::text FROM case_plan WHERE referral_id = $1`
	caseRecordContactsSQL = `SELECT id, at, mode, minutes, attended, notes, created_at, amended_at, withdrawn_at, withdrawn_reason
			FROM contact WHERE referral_id = $1 ORDER BY at, id`
	caseRecordMeasuresSQL = `SELECT id, instrument, timepoint, items::text, total, metric, taken_at, created_at, amended_at, withdrawn_at, withdrawn_reason
			FROM measure WHERE referral_id = $1 ORDER BY taken_at, id`
	caseRecordEventsSQL = `SELECT version, at, action, actor, status, occurred_at
			FROM referral_event WHERE referral_id = $1 ORDER BY version`
)

// GetCaseRecord returns a referral's case record, read from one snapshot:
// the referral, its person, its plan (the zero Plan when none was stored),
// its contacts by time then id, its measures by time taken then id, and its
// events oldest first. It returns ENOTFOUND for an unknown referral.
func (db *DB) GetCaseRecord(ctx context.Context, referralID string) (*linkbridge.CaseRecord, error) {
	var rec *linkbridge.CaseRecord
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		ref, err := findReferral(ctx, tx, "referral "+referralID, `WHERE id = $1`, referralID)
		if err != nil {
			return err
		}
		rec = &linkbridge.CaseRecord{Referral: ref}
		if rec.Person, err = findPerson(ctx, tx, "person "+ref.PersonID, `WHERE id = $1`, ref.PersonID); err != nil {
			return err
		}

		var plan []byte
		switch err := tx.QueryRow(ctx, caseRecordPlanSQL, referralID).Scan(&plan); {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("postgres: case record: plan: %w", err)
		default:
			if rec.Plan, err = sqlshared.DecodePlan(plan); err != nil {
				return fmt.Errorf("postgres: case record: %w", err)
			}
		}

		err = queryRows(ctx, tx, caseRecordContactsSQL, []any{referralID}, func(rows pgx.Rows) error {
			c := &linkbridge.Contact{ReferralID: referralID}
			var mode string
			var amended, withdrawn *time.Time
			if err := rows.Scan(&c.ID, &c.At, &mode, &c.Minutes, &c.Attended, &c.Notes, &c.CreatedAt, &amended, &withdrawn, &c.WithdrawnReason); err != nil {
				return err
			}
			c.Mode, c.At, c.CreatedAt = linkbridge.ContactMode(mode), utc(c.At), utc(c.CreatedAt)
			c.AmendedAt, c.WithdrawnAt = utcp(amended), utcp(withdrawn)
			rec.Contacts = append(rec.Contacts, c)
			return nil
		})
		if err != nil {
			return fmt.Errorf("postgres: case record: contacts: %w", err)
		}

		err = queryRows(ctx, tx, caseRecordMeasuresSQL, []any{referralID}, func(rows pgx.Rows) error {
			m := &linkbridge.Measure{ReferralID: referralID}
			var instrument, timepoint, items string
			var amended, withdrawn *time.Time
			if err := rows.Scan(&m.ID, &instrument, &timepoint, &items, &m.Total, &m.Metric, &m.TakenAt, &m.CreatedAt, &amended, &withdrawn, &m.WithdrawnReason); err != nil {
				return err
			}
			m.Instrument, m.Timepoint = linkbridge.Instrument(instrument), linkbridge.Timepoint(timepoint)
			var err error
			if m.Items, err = sqlshared.DecodeItems(items); err != nil {
				return err
			}
			m.TakenAt, m.CreatedAt = utc(m.TakenAt), utc(m.CreatedAt)
			m.AmendedAt, m.WithdrawnAt = utcp(amended), utcp(withdrawn)
			rec.Measures = append(rec.Measures, m)
			return nil
		})
		if err != nil {
			return fmt.Errorf("postgres: case record: measures: %w", err)
		}

		err = queryRows(ctx, tx, caseRecordEventsSQL, []any{referralID}, func(rows pgx.Rows) error {
			e := &linkbridge.ReferralEvent{ReferralID: referralID}
			var status string
			var occurred *time.Time
			if err := rows.Scan(&e.Version, &e.At, &e.Action, &e.Actor, &status, &occurred); err != nil {
				return err
			}
			e.Status, e.At, e.OccurredAt = linkbridge.TaskStatus(status), utc(e.At), utcp(occurred)
			rec.Events = append(rec.Events, e)
			return nil
		})
		if err != nil {
			return fmt.Errorf("postgres: case record: events: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// ListReferrals returns one page of the referrals matching f, newest received
// first (then by id, descending), and the number of matches. Empty fields of
// f do not filter; Statuses matches any of its statuses. It returns EINVALID
// when Limit is below 1 or Offset is negative.
func (db *DB) ListReferrals(ctx context.Context, f linkbridge.ReferralFilter) ([]*linkbridge.Referral, int, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	where, args := listWhere(f)
	var out []*linkbridge.Referral
	total, err := db.countAndPage(ctx, sqlshared.ReferralColumns, `referral`+where, listOrder, args,
		f.Limit, f.Offset, appendTo(&out, scanReferral))
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list referrals: %w", err)
	}
	return out, total, nil
}

// CountContacts returns, per referral id, the number of attended contacts
// (not withdrawn as entered in error). Every id asked for is in the map: one without attended contacts, or not
// stored at all, maps to 0. (One array parameter: PostgreSQL has no small
// limit on bound parameters to chunk around, unlike SQLite.)
func (db *DB) CountContacts(ctx context.Context, referralIDs []string) (map[string]int, error) {
	counts := sqlshared.ZeroCounts(referralIDs)
	if len(referralIDs) == 0 {
		return counts, nil
	}
	err := queryRows(ctx, db.pool, `SELECT referral_id, COUNT(*) FROM contact
		WHERE referral_id = ANY($1::text[]) AND attended AND withdrawn_at IS NULL GROUP BY referral_id`, []any{referralIDs},
		func(rows pgx.Rows) error {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return err
			}
			counts[id] = n
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("postgres: count contacts: %w", err)
	}
	return counts, nil
}

// listOrder is ListReferrals's order: newest received first.
const listOrder = `received_at DESC, id DESC`

// listWhere is the WHERE clause (empty when f filters nothing) and its
// arguments of ListReferrals.
func listWhere(f linkbridge.ReferralFilter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+` = `+arg(v))
		}
	}
	eq("service_ods", f.ServiceODS)
	eq("referrer_ods", f.ReferrerODS)
	eq("link_worker_id", f.LinkWorkerID)
	eq("person_id", f.PersonID)
	// One status (the inbox's "requested") is a scalar: the plan that
	// pgx's prepared statement settles on after five executions is made
	// without the values, and with status = ANY($n) it read the service's
	// whole received_at range and filtered (7 ms a page at 10k referrals,
	// 2,310 rows removed), where status = $n reads (service_ods, status,
	// received_at) in order (docs/performance.md#plan-tests).
	switch len(f.Statuses) {
	case 0:
	case 1:
		conds = append(conds, `status = `+arg(string(f.Statuses[0])))
	default:
		ss := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			ss[i] = string(s)
		}
		conds = append(conds, `status = ANY(`+arg(ss)+`::text[])`)
	}
	if !f.ReceivedFrom.IsZero() {
		conds = append(conds, `received_at >= `+arg(ceilMicro(f.ReceivedFrom)))
	}
	if !f.ReceivedTo.IsZero() {
		conds = append(conds, `received_at < `+arg(ceilMicro(f.ReceivedTo)))
	}
	return whereClause(conds), args
}

// countAndPage counts the rows of "FROM from" (a table and its WHERE
// clause, whose parameters are args) and reads one page of them, cols in
// orderBy order, calling fn for each row. The count and the page come from
// one snapshot, so they agree. When offset is at or past the count it reads
// no page.
func (db *DB) countAndPage(ctx context.Context, cols, from, orderBy string, args []any, limit, offset int, fn func(pgx.Rows) error) (int, error) {
	var total int
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM `+from, args...).Scan(&total); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		if total <= offset {
			return nil
		}
		n := len(args)
		return queryRows(ctx, tx, `SELECT `+cols+` FROM `+from+` ORDER BY `+orderBy+
			` LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2), append(args, limit, offset), fn)
	})
	return total, err
}

// appendTo returns a row callback for queryRows and countAndPage that
// reads each row with scan and appends it to *out.
func appendTo[T any](out *[]T, scan func(pgx.Row) (T, error)) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		*out = append(*out, v)
		return nil
	}
}

// whereClause returns " WHERE c1 AND c2 ...", or "" without conditions.
func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return ` WHERE ` + strings.Join(conds, ` AND `)
}

// queryRows runs a query through q and calls fn for each row.
func queryRows(ctx context.Context, q querier, sql string, args []any, fn func(pgx.Rows) error) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
