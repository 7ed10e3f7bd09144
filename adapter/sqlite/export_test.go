package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// ExplainSearch returns the plans, as EXPLAIN QUERY PLAN gives them (one
// "id parent detail" line per row), of the statements SearchResources runs
// for q: the page and the count as far as q.CountLimit says.
func (db *DB) ExplainSearch(ctx context.Context, q *linkbridge.ResourceQuery) (page, count []string, err error) {
	s, err := buildSearch(q)
	if err != nil {
		return nil, nil, err
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = tx.Rollback() }()
	if err := s.choose(ctx, tx); err != nil {
		return nil, nil, err
	}
	explain := func(query string, args []any) ([]string, error) {
		rows, err := tx.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
		if err != nil {
			return nil, err
		}
		defer func() { _ = rows.Close() }()
		var out []string
		for rows.Next() {
			var id, parent, notUsed int
			var detail string
			if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprintf("%d %d %s", id, parent, detail))
		}
		return out, rows.Err()
	}
	if page, err = explain(s.page(q.Count, q.Offset)); err != nil {
		return nil, nil, err
	}
	if count, err = explain(s.count(q.CountLimit())); err != nil {
		return nil, nil, err
	}
	return page, count, nil
}

// ReadSlowly runs, on a connection of the read pool and in a read
// transaction as SearchResources does, a statement that never ends by
// itself, until ctx ends it.
func (db *DB) ReadSlowly(ctx context.Context) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	return tx.QueryRowContext(ctx, `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c`).Scan(&n)
}

// Statement is one statement a case-store read runs, with its arguments.
type Statement struct {
	Name string
	SQL  string
	Args []any
}

// ListStatements returns the statements ListReferrals runs for f.
func ListStatements(f linkbridge.ReferralFilter) []Statement {
	where, args := listWhere(f)
	return []Statement{
		{"count", listCountSQL + where, args},
		{"page", listPageSQL(where), append(slices.Clone(args), f.Limit, f.Offset)},
	}
}

// ReportStatements returns the statements ReportReferrals runs for q: for
// a report from a date, the read of its matches' ids and of a page by ids;
// otherwise the first page and the page after the referral (lastAt,
// lastID) when lastID is set; then the reads of the entries of the
// referrals ids.
func ReportStatements(q linkbridge.ReportQuery, lastAt time.Time, lastID string, ids []string) []Statement {
	base, args := reportSQL(q)
	var out []Statement
	if q.From.IsZero() {
		first, firstArgs := reportPageSQL(base, args, "", "")
		out = append(out, Statement{"first page", first, firstArgs})
		if lastID != "" {
			next, nextArgs := reportPageSQL(base, args, formatTime(lastAt), lastID)
			out = append(out, Statement{"next page", next, nextArgs})
		}
	} else {
		out = append(out, Statement{"matches", reportIDsSQL(base), args})
	}
	if len(ids) > 0 {
		in := `(` + placeholders(len(ids)) + `)`
		idArgs := make([]any, len(ids))
		for i, id := range ids {
			idArgs[i] = id
		}
		chunk, chunkArgs := reportChunkSQL(ids)
		out = append(out, Statement{"chunk", chunk, chunkArgs}, Statement{"plans", reportPlansSQL(in), idArgs},
			Statement{"contacts", reportContactsSQL(in), idArgs}, Statement{"measures", reportMeasuresSQL(in), idArgs})
	}
	return out
}

// CaseRecordStatements returns the statements GetCaseRecord runs for a
// referral of a person.
func CaseRecordStatements(referralID, personID string) []Statement {
	return []Statement{
		{"referral", `SELECT ` + sqlshared.ReferralColumns + ` FROM referral WHERE id = ?`, []any{referralID}},
		{"person", `SELECT id, nhs_number, birth_date, gp_ods, created_at FROM person WHERE id = ?`, []any{personID}},
		{"plan", caseRecordPlanSQL, []any{referralID}},
		{"contacts", caseRecordContactsSQL, []any{referralID}},
		{"measures", caseRecordMeasuresSQL, []any{referralID}},
		{"events", caseRecordEventsSQL, []any{referralID}},
	}
}

// HeadsStatement is the relay claim's search for the heads of the
// channel's order keys due at at, limit of them (headsQuery).
func HeadsStatement(channel linkbridge.OutboxChannel, at time.Time, limit int) Statement {
	return Statement{"heads", headsQuery, []any{string(channel), formatTime(at), limit}}
}

// ExplainStatement returns the plan of a statement, as EXPLAIN QUERY PLAN
// gives it (one "id parent detail" line per row).
func (db *DB) ExplainStatement(ctx context.Context, st Statement) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+st.SQL, st.Args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%d %d %s", id, parent, detail))
	}
	return out, rows.Err()
}
