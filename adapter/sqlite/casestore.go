package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// applyCase writes a change's case-record rows (sqlshared.CaseRows); the
// referral they belong to is stored already. A contact or measure id that is taken is ECONFLICT;
// a corrected one the referral does not hold is ENOTFOUND.
func applyCase(w *writer, c *sqlshared.CaseRows) error {
	if c.Plan != nil {
		if _, err := w.upsertPlan.ExecContext(bg, c.ReferralID, *c.Plan); err != nil {
			return fmt.Errorf("sqlite: store plan: %w", err)
		}
	}
	for _, args := range c.Contacts {
		if _, err := w.insContact.ExecContext(bg, args...); err != nil {
			if constraintOf(err).kind == "unique" {
				return linkbridge.Errorf(linkbridge.ECONFLICT, "contact %s exists already", args[0])
			}
			return fmt.Errorf("sqlite: add contact: %w", err)
		}
	}
	for _, args := range c.Measures {
		if _, err := w.insMeasure.ExecContext(bg, args...); err != nil {
			if constraintOf(err).kind == "unique" {
				return linkbridge.Errorf(linkbridge.ECONFLICT, "measure %s exists already", args[0])
			}
			return fmt.Errorf("sqlite: add measure: %w", err)
		}
	}
	for _, u := range []struct {
		what string
		stmt *sql.Stmt
		rows [][]any
	}{{"contact", w.updContact, c.ContactUpdates}, {"measure", w.updMeasure, c.MeasureUpdates}} {
		for _, args := range u.rows {
			res, err := u.stmt.ExecContext(bg, args...)
			if err != nil {
				return fmt.Errorf("sqlite: correct %s: %w", u.what, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("sqlite: correct %s: %w", u.what, err)
			} else if n == 0 {
				return linkbridge.Errorf(linkbridge.ENOTFOUND, "referral %s has no %s %s", c.ReferralID, u.what, args[len(args)-2])
			}
		}
	}
	if c.Event != nil {
		if _, err := w.insEvent.ExecContext(bg, c.Event...); err != nil {
			if constraintOf(err).kind == "unique" {
				return linkbridge.Errorf(linkbridge.ECONFLICT, "referral %s has an event for version %d already", c.Event[0], c.Event[1])
			}
			return fmt.Errorf("sqlite: record event: %w", err)
		}
	}
	return nil
}

// The statements of GetCaseRecord after the referral and its person (by
// primary key): the plan, the contacts, the measures and the history of one
// referral.
const (
	caseRecordPlanSQL     = `SELECT body FROM case_plan WHERE referral_id = ?`
	caseRecordContactsSQL = `SELECT id, at, mode, minutes, attended, notes, created_at, amended_at, withdrawn_at, withdrawn_reason
		FROM contact WHERE referral_id = ? ORDER BY at, id`
	caseRecordMeasuresSQL = `SELECT id, instrument, timepoint, items, total, metric, taken_at, created_at, amended_at, withdrawn_at, withdrawn_reason
		FROM measure WHERE referral_id = ? ORDER BY taken_at, id`
	caseRecordEventsSQL = `SELECT version, at, action, actor, status, occurred_at
		FROM referral_event WHERE referral_id = ? ORDER BY version`
)

// GetCaseRecord returns a referral's case record, read in one transaction:
// the referral, its person, its plan (the zero Plan when none was stored),
// its contacts by time then id, its measures by time taken then id, and its
// events oldest first. It returns ENOTFOUND for an unknown referral.
func (db *DB) GetCaseRecord(ctx context.Context, referralID string) (*linkbridge.CaseRecord, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: case record: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	ref, err := findReferral(ctx, tx, "referral "+referralID, `WHERE id = ?`, referralID)
	if err != nil {
		return nil, err
	}
	rec := &linkbridge.CaseRecord{Referral: ref}
	if rec.Person, err = findPerson(ctx, tx, "person "+ref.PersonID, `WHERE id = ?`, ref.PersonID); err != nil {
		return nil, err
	}

	var plan []byte
	switch err := tx.QueryRowContext(ctx, caseRecordPlanSQL, referralID).Scan(&plan); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("sqlite: case record: plan: %w", err)
	default:
		if rec.Plan, err = sqlshared.DecodePlan(plan); err != nil {
			return nil, fmt.Errorf("sqlite: case record: %w", err)
		}
	}

	err = queryRows(ctx, tx, caseRecordContactsSQL, []any{referralID}, func(rows *sql.Rows) error {
		c := &linkbridge.Contact{ReferralID: referralID}
		var at, mode, createdAt string
		var amended, withdrawn sql.NullString
		var attended int
		if err := rows.Scan(&c.ID, &at, &mode, &c.Minutes, &attended, &c.Notes, &createdAt, &amended, &withdrawn, &c.WithdrawnReason); err != nil {
			return err
		}
		c.Mode, c.Attended = linkbridge.ContactMode(mode), attended != 0
		if err := parseTimes(storedTime{&c.At, at}, storedTime{&c.CreatedAt, createdAt},
			storedTime{&c.AmendedAt, amended.String}, storedTime{&c.WithdrawnAt, withdrawn.String}); err != nil {
			return err
		}
		rec.Contacts = append(rec.Contacts, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: case record: contacts: %w", err)
	}

	err = queryRows(ctx, tx, caseRecordMeasuresSQL, []any{referralID}, func(rows *sql.Rows) error {
		m := &linkbridge.Measure{ReferralID: referralID}
		var instrument, timepoint, items, takenAt, createdAt string
		var amended, withdrawn sql.NullString
		if err := rows.Scan(&m.ID, &instrument, &timepoint, &items, &m.Total, &m.Metric, &takenAt, &createdAt, &amended, &withdrawn, &m.WithdrawnReason); err != nil {
			return err
		}
		m.Instrument, m.Timepoint = linkbridge.Instrument(instrument), linkbridge.Timepoint(timepoint)
		var err error
		if m.Items, err = sqlshared.DecodeItems(items); err != nil {
			return err
		}
		if err := parseTimes(storedTime{&m.TakenAt, takenAt}, storedTime{&m.CreatedAt, createdAt},
			storedTime{&m.AmendedAt, amended.String}, storedTime{&m.WithdrawnAt, withdrawn.String}); err != nil {
			return err
		}
		rec.Measures = append(rec.Measures, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: case record: measures: %w", err)
	}

	err = queryRows(ctx, tx, caseRecordEventsSQL, []any{referralID}, func(rows *sql.Rows) error {
		e := &linkbridge.ReferralEvent{ReferralID: referralID}
		var at, status string
		var occurred sql.NullString
		if err := rows.Scan(&e.Version, &at, &e.Action, &e.Actor, &status, &occurred); err != nil {
			return err
		}
		e.Status = linkbridge.TaskStatus(status)
		if err := parseTimes(storedTime{&e.At, at}, storedTime{&e.OccurredAt, occurred.String}); err != nil {
			return err
		}
		rec.Events = append(rec.Events, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: case record: events: %w", err)
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
	// The count and the page come from one read transaction, so they agree.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list referrals: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	var total int
	if err := tx.QueryRowContext(ctx, listCountSQL+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: list referrals: count: %w", err)
	}
	if total <= f.Offset {
		return nil, total, nil
	}
	var out []*linkbridge.Referral
	err = queryRows(ctx, tx, listPageSQL(where), append(args, f.Limit, f.Offset),
		func(rows *sql.Rows) error {
			r, err := scanReferral(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list referrals: %w", err)
	}
	return out, total, nil
}

// The statements of ListReferrals: the count and the page of the matches
// of a WHERE clause (listWhere), newest received first.
const listCountSQL = `SELECT COUNT(*) FROM referral`

func listPageSQL(where string) string {
	return `SELECT ` + sqlshared.ReferralColumns + ` FROM referral` + where + ` ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?`
}

// listWhere is the WHERE clause (empty when f filters nothing) and its
// arguments of ListReferrals.
func listWhere(f linkbridge.ReferralFilter) (string, []any) {
	var conds []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+` = ?`)
			args = append(args, v)
		}
	}
	eq("service_ods", f.ServiceODS)
	eq("referrer_ods", f.ReferrerODS)
	eq("link_worker_id", f.LinkWorkerID)
	eq("person_id", f.PersonID)
	if len(f.Statuses) > 0 {
		conds = append(conds, `status IN (`+placeholders(len(f.Statuses))+`)`)
		for _, s := range f.Statuses {
			args = append(args, string(s))
		}
	}
	if !f.ReceivedFrom.IsZero() {
		conds = append(conds, `received_at >= ?`)
		args = append(args, formatTime(f.ReceivedFrom))
	}
	if !f.ReceivedTo.IsZero() {
		conds = append(conds, `received_at < ?`)
		args = append(args, formatTime(f.ReceivedTo))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	return where, args
}

// countChunk bounds the ids of one CountContacts query, well below SQLite's
// limit on bound parameters.
const countChunk = 500

// CountContacts returns, per referral id, the number of attended contacts
// (not withdrawn as entered in error). Every id asked for is in the map: one without attended contacts, or not
// stored at all, maps to 0.
func (db *DB) CountContacts(ctx context.Context, referralIDs []string) (map[string]int, error) {
	counts := sqlshared.ZeroCounts(referralIDs)
	for ids := referralIDs; len(ids) > 0; {
		chunk := ids[:min(len(ids), countChunk)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		err := queryRows(ctx, db.read, `SELECT referral_id, COUNT(*) FROM contact
			WHERE referral_id IN (`+placeholders(len(chunk))+`) AND attended = 1 AND withdrawn_at IS NULL GROUP BY referral_id`, args,
			func(rows *sql.Rows) error {
				var id string
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					return err
				}
				counts[id] = n
				return nil
			})
		if err != nil {
			return nil, fmt.Errorf("sqlite: count contacts: %w", err)
		}
	}
	return counts, nil
}

// queryRows runs a query through q and calls fn for each row.
func queryRows(ctx context.Context, q querier, query string, args []any, fn func(*sql.Rows) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	return eachRow(rows, err, fn)
}

// eachRow calls fn for each row of a query's result (rows and err as the
// query returned them) and closes it.
func eachRow(rows *sql.Rows, err error, fn func(*sql.Rows) error) error {
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// storedTime is a stored time to parse into dst.
type storedTime struct {
	dst *time.Time
	src string
}

// parseTimes parses stored times. An empty one (NULL) leaves its dst zero.
func parseTimes(ts ...storedTime) error {
	for _, t := range ts {
		if t.src == "" {
			continue
		}
		v, err := parseTime(t.src)
		if err != nil {
			return err
		}
		*t.dst = v
	}
	return nil
}
