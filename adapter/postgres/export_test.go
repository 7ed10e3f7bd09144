package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// ExplainSearch returns the plans, as EXPLAIN (FORMAT JSON) gives them
// (with ANALYZE when analyze is set), of the statements SearchResources
// runs for q: the page and the count as far as q.CountLimit says.
func (db *DB) ExplainSearch(ctx context.Context, q *linkbridge.ResourceQuery, analyze bool) (page, count []byte, err error) {
	s, err := buildSearch(q)
	if err != nil {
		return nil, nil, err
	}
	opts := `EXPLAIN (FORMAT JSON) `
	if analyze {
		opts = `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `
	}
	err = db.readTx(ctx, func(tx pgx.Tx) error {
		if err := s.choose(ctx, tx); err != nil {
			return err
		}
		sql, args := s.page(q.Count, q.Offset)
		if err := tx.QueryRow(ctx, opts+sql, args...).Scan(&page); err != nil {
			return err
		}
		sql, args = s.count(q.CountLimit())
		return tx.QueryRow(ctx, opts+sql, args...).Scan(&count)
	})
	if err != nil {
		return nil, nil, err
	}
	return page, count, nil
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
	n := len(args)
	return []Statement{
		{"count", `SELECT COUNT(*) FROM referral` + where, args},
		{"page", `SELECT ` + sqlshared.ReferralColumns + ` FROM referral` + where + ` ORDER BY ` + listOrder +
			` LIMIT $` + strconv.Itoa(n+1) + ` OFFSET $` + strconv.Itoa(n+2), append(slices.Clone(args), f.Limit, f.Offset)},
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
		first, firstArgs := reportPageSQL(base, args, time.Time{}, "")
		out = append(out, Statement{"first page", first, firstArgs})
		if lastID != "" {
			next, nextArgs := reportPageSQL(base, args, lastAt, lastID)
			out = append(out, Statement{"next page", next, nextArgs})
		}
	} else {
		out = append(out, Statement{"matches", reportIDsSQL(base), args})
	}
	if len(ids) > 0 {
		out = append(out, Statement{"chunk", reportChunkSQL, []any{ids}}, Statement{"plans", reportPlansSQL, []any{ids}},
			Statement{"contacts", reportContactsSQL, []any{ids}}, Statement{"measures", reportMeasuresSQL, []any{ids}})
	}
	return out
}

// CaseRecordStatements returns the statements GetCaseRecord runs for a
// referral of a person.
func CaseRecordStatements(referralID, personID string) []Statement {
	return []Statement{
		{"referral", `SELECT ` + sqlshared.ReferralColumns + ` FROM referral WHERE id = $1`, []any{referralID}},
		{"person", `SELECT id, nhs_number, birth_date, gp_ods, created_at FROM person WHERE id = $1`, []any{personID}},
		{"plan", caseRecordPlanSQL, []any{referralID}},
		{"contacts", caseRecordContactsSQL, []any{referralID}},
		{"measures", caseRecordMeasuresSQL, []any{referralID}},
		{"events", caseRecordEventsSQL, []any{referralID}},
	}
}

// HeadsStatement is the relay claim's search for the heads of the
// channel's order keys due at now, for a claim of limit (headsQuery).
func HeadsStatement(channel linkbridge.OutboxChannel, now time.Time, limit int) Statement {
	return Statement{Name: "heads", SQL: headsQuery, Args: []any{now, 2 * limit, string(channel)}}
}

// HeadStatement is the relay's read of the outbox row id as a head to
// settle (headQuery).
func HeadStatement(id int64) Statement {
	return Statement{Name: "head", SQL: headQuery, Args: []any{id}}
}

// PreparedStatements returns the SQL of the named prepared statements of
// one of the pool's sessions (pg_prepared_statements): with a pool of one
// connection, every statement the store has prepared.
func (db *DB) PreparedStatements(ctx context.Context) ([]string, error) {
	var out []string
	err := queryRows(ctx, db.pool, `SELECT statement FROM pg_prepared_statements WHERE NOT from_sql`, nil, func(rows pgx.Rows) error {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// PreparedPlan is a named prepared statement of a session with the number
// of generic and custom plans PostgreSQL made for it.
type PreparedPlan struct {
	SQL             string
	Generic, Custom int64
}

// PreparedPlans returns the named prepared statements of one of the pool's
// sessions with their plan counts (pg_prepared_statements, PostgreSQL 14
// and later).
func (db *DB) PreparedPlans(ctx context.Context) ([]PreparedPlan, error) {
	var out []PreparedPlan
	err := queryRows(ctx, db.pool, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE NOT from_sql`, nil, func(rows pgx.Rows) error {
		var p PreparedPlan
		if err := rows.Scan(&p.SQL, &p.Generic, &p.Custom); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// ExplainStatement returns the plan of a statement as EXPLAIN (ANALYZE,
// FORMAT JSON) gives it, planned with sequential scans turned off
// (enable_seqscan): on a small store a sequential scan is the cheapest
// plan anyway, so one that remains means no index can serve the
// statement.
func (db *DB) ExplainStatement(ctx context.Context, st Statement) ([]byte, error) {
	var out []byte
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+st.SQL, st.Args...).Scan(&out)
	})
	return out, err
}

// ExplainGeneric is ExplainStatement of the generic plan: the plan that a
// prepared statement (pgx's statement cache) uses once PostgreSQL stops
// planning it for each execution's values, which is made without them.
func (db *DB) ExplainGeneric(ctx context.Context, st Statement) ([]byte, error) {
	var out []byte
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `PREPARE lb_generic AS `+st.SQL); err != nil {
			return err
		}
		defer func() { _, _ = tx.Exec(ctx, `DEALLOCATE lb_generic`) }()
		// EXECUTE takes its values as SQL literals, not bound parameters.
		lit := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
		values := make([]string, len(st.Args))
		for i, a := range st.Args {
			switch a := a.(type) {
			case string:
				values[i] = lit(a)
			case int:
				values[i] = strconv.Itoa(a)
			case int64:
				values[i] = strconv.FormatInt(a, 10)
			case time.Time:
				values[i] = lit(a.UTC().Format(time.RFC3339Nano)) + "::timestamptz"
			case []string:
				quoted := make([]string, len(a))
				for j, s := range a {
					quoted[j] = lit(s)
				}
				values[i] = "ARRAY[" + strings.Join(quoted, ", ") + "]::text[]"
			default:
				return fmt.Errorf("ExplainGeneric: argument %d: %T has no literal form here", i+1, a)
			}
		}
		return tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE lb_generic (`+strings.Join(values, ", ")+`)`).Scan(&out)
	})
	return out, err
}

// ReadTxSleep runs a read transaction that takes d (pg_sleep) and returns
// its error: a read longer than the second readTx gives the transaction's
// end must still commit.
func (db *DB) ReadTxSleep(ctx context.Context, d time.Duration) error {
	return db.readTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT pg_sleep($1)`, d.Seconds())
		return err
	})
}

// BatchFallbacks is how many batches WriteBatch wrote op by op after its
// folded write failed.
func (db *DB) BatchFallbacks() int64 { return db.batchFallbacks.Load() }
