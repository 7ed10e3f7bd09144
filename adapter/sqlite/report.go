package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// ReportReferrals streams the referrals a report reads
// (linkbridge.CaseStore.ReportReferrals). A report without a From is
// keyset-paged on (received_at, id), so that each page is one index range,
// never an offset scan.
//
// A report from a date first reads the ids of all its matches, in page
// order, in one statement (reportIDsSQL: the active referrals of its scope,
// each tested once), then each page by key (reportChunkSQL): keyset pages
// would test the active referrals again for every page.
func (db *DB) ReportReferrals(ctx context.Context, q linkbridge.ReportQuery, fn func([]*linkbridge.ReportReferral) error) error {
	if !q.From.IsZero() {
		return db.reportByIDs(ctx, q, fn)
	}
	base, args := reportSQL(q)
	var lastAt, lastID string
	for {
		query, pageArgs := reportPageSQL(base, args, lastAt, lastID)
		page, err := db.reportPage(ctx, query, pageArgs, !q.NoMeasures)
		if err != nil {
			return fmt.Errorf("sqlite: report: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		last := page[len(page)-1].Referral
		lastAt, lastID = formatTime(last.ReceivedAt), last.ID
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < linkbridge.ReportPageSize {
			return nil
		}
	}
}

// reportByIDs streams a report from a date: the ids of its matches in
// (received_at, id) order from one read, then the pages by key, each
// checked again for entered-in-error (a referral may be withdrawn between
// the two reads). The ids are as many as the matches, which a report
// streams anyway.
func (db *DB) reportByIDs(ctx context.Context, q linkbridge.ReportQuery, fn func([]*linkbridge.ReportReferral) error) error {
	base, args := reportSQL(q)
	var ids []string
	err := queryRows(ctx, db.read, reportIDsSQL(base), args, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: report: %w", err)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), linkbridge.ReportPageSize)]
		ids = ids[len(chunk):]
		query, chunkArgs := reportChunkSQL(chunk)
		page, err := db.reportPage(ctx, query, chunkArgs, !q.NoMeasures)
		if err != nil {
			return fmt.Errorf("sqlite: report: %w", err)
		}
		if len(page) == 0 {
			continue
		}
		if err := fn(page); err != nil {
			return err
		}
	}
	return nil
}

// reportIDsSQL reads the ids of a report's matches (reportSQL's base) in
// page order.
func reportIDsSQL(base string) string {
	_, from, _ := strings.Cut(base, ` FROM `)
	return `SELECT referral.id FROM ` + from + ` ORDER BY received_at, referral.id`
}

// reportChunkSQL reads a page of a report by its referrals' ids.
func reportChunkSQL(ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return `SELECT ` + sqlshared.ReferralColumns + ` FROM referral WHERE id IN (` + placeholders(len(ids)) + `)
		AND status <> 'entered-in-error' AND request_status <> 'entered-in-error' ORDER BY received_at, id`, args
}

// reportSQL is the SELECT of ReportReferrals without its keyset and order
// (reportPageSQL), and its arguments.
func reportSQL(q linkbridge.ReportQuery) (string, []any) {
	// scope and its arguments select the referrals of q's organisations.
	var scope []string
	var scopeArgs []any
	eq := func(col, v string) {
		if v != "" {
			scope = append(scope, col+` = ?`)
			scopeArgs = append(scopeArgs, v)
		}
	}
	eq("service_ods", q.ServiceODS)
	eq("link_worker_id", q.LinkWorkerID)
	if len(q.ReferrerODS) > 0 {
		scope = append(scope, `referrer_ods IN (`+placeholders(len(q.ReferrerODS))+`)`)
		for _, ods := range q.ReferrerODS {
			scopeArgs = append(scopeArgs, ods)
		}
	}
	conds := append([]string{`status <> 'entered-in-error'`, `request_status <> 'entered-in-error'`}, scope...)
	args := slices.Clone(scopeArgs)
	if !q.To.IsZero() {
		conds = append(conds, `received_at < ?`)
		args = append(args, formatTime(q.To))
	}
	if q.From.IsZero() {
		return `SELECT ` + sqlshared.ReferralColumns + ` FROM referral WHERE ` + strings.Join(conds, ` AND `), args
	}
	from := formatTime(q.From)
	conds = append(conds, `(status NOT IN ('completed', 'failed', 'cancelled', 'rejected') OR updated_at >= ?
		OR EXISTS (SELECT 1 FROM contact c WHERE c.referral_id = referral.id AND c.withdrawn_at IS NULL AND c.at >= ?)
		OR EXISTS (SELECT 1 FROM measure m WHERE m.referral_id = referral.id AND m.withdrawn_at IS NULL AND m.taken_at >= ?))`)
	args = append(args, from, from, from)
	// The referrals that condition can match are those of the scope still
	// open or changed since ReportActiveSince (sqlshared): found first, by
	// the status and updated_at indexes, so that a report reads the
	// referrals active in its period, not every one its scope ever received.
	inScope := ""
	if len(scope) > 0 {
		inScope = ` AND ` + strings.Join(scope, ` AND `)
	}
	// CROSS JOIN makes SQLite loop over them (it keeps the order of a
	// CROSS JOIN), reading each referral by its key.
	active := `(SELECT id AS active_id FROM referral WHERE status IN ` + sqlshared.ActiveStatuses + inScope +
		` UNION SELECT id FROM referral WHERE updated_at >= ?` + inScope + `) AS a CROSS JOIN referral`
	activeArgs := slices.Concat(scopeArgs, []any{formatTime(sqlshared.ReportActiveSince(q.From))}, scopeArgs)
	return `SELECT ` + sqlshared.ReferralColumns + ` FROM ` + active + ` WHERE referral.id = a.active_id AND ` + strings.Join(conds, ` AND `),
		append(activeArgs, args...)
}

// reportPageSQL is the page of a report after the referral (lastAt,
// lastID) in (received_at, id) order; the first page when lastID is "".
func reportPageSQL(base string, args []any, lastAt, lastID string) (string, []any) {
	query, pageArgs := base, append([]any(nil), args...)
	if lastID != "" {
		query += ` AND received_at >= ? AND (received_at > ? OR id > ?)`
		pageArgs = append(pageArgs, lastAt, lastAt, lastID)
	}
	return query + ` ORDER BY received_at, id LIMIT ?`, append(pageArgs, linkbridge.ReportPageSize)
}

// reportPage reads one page of referrals and their review dates, contacts
// and (with measures) measures, in one read transaction.
func (db *DB) reportPage(ctx context.Context, query string, args []any, measures bool) ([]*linkbridge.ReportReferral, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	var page []*linkbridge.ReportReferral
	byID := map[string]*linkbridge.ReportReferral{}
	err = queryRows(ctx, tx, query, args, func(rows *sql.Rows) error {
		r, err := scanReferral(rows)
		if err != nil {
			return err
		}
		rr := &linkbridge.ReportReferral{Referral: r}
		page = append(page, rr)
		byID[r.ID] = rr
		return nil
	})
	if err != nil || len(page) == 0 {
		return nil, err
	}
	ids := make([]any, len(page))
	for i, r := range page {
		ids[i] = r.Referral.ID
	}
	in := `(` + placeholders(len(ids)) + `)`
	err = queryRows(ctx, tx, reportPlansSQL(in), ids,
		func(rows *sql.Rows) error {
			var id string
			var review sql.NullString
			if err := rows.Scan(&id, &review); err != nil {
				return err
			}
			byID[id].ReviewDate = review.String
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	err = queryRows(ctx, tx, reportContactsSQL(in), ids, func(rows *sql.Rows) error {
		c := &linkbridge.Contact{}
		var at, mode string
		var attended int
		if err := rows.Scan(&c.ReferralID, &c.ID, &at, &mode, &c.Minutes, &attended); err != nil {
			return err
		}
		c.Mode, c.Attended = linkbridge.ContactMode(mode), attended != 0
		if err := parseTimes(storedTime{&c.At, at}); err != nil {
			return err
		}
		r := byID[c.ReferralID]
		r.Contacts = append(r.Contacts, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	if !measures {
		return page, nil
	}
	err = queryRows(ctx, tx, reportMeasuresSQL(in), ids, func(rows *sql.Rows) error {
		m := &linkbridge.Measure{}
		var instrument, timepoint, items, takenAt string
		if err := rows.Scan(&m.ReferralID, &m.ID, &instrument, &timepoint, &items, &m.Total, &m.Metric, &takenAt); err != nil {
			return err
		}
		m.Instrument, m.Timepoint = linkbridge.Instrument(instrument), linkbridge.Timepoint(timepoint)
		var err error
		if m.Items, err = sqlshared.DecodeItems(items); err != nil {
			return err
		}
		if err := parseTimes(storedTime{&m.TakenAt, takenAt}); err != nil {
			return err
		}
		r := byID[m.ReferralID]
		r.Measures = append(r.Measures, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("measures: %w", err)
	}
	return page, nil
}

// The statements of a report page after its referrals: their plans' review
// dates, contacts and measures; in is the parenthesised list of their ids'
// placeholders.
func reportPlansSQL(in string) string {
	return `SELECT referral_id, json_extract(body, '$.reviewDate') FROM case_plan WHERE referral_id IN ` + in
}

func reportContactsSQL(in string) string {
	return `SELECT referral_id, id, at, mode, minutes, attended FROM contact
		WHERE referral_id IN ` + in + ` AND withdrawn_at IS NULL ORDER BY referral_id, at, id`
}

func reportMeasuresSQL(in string) string {
	return `SELECT referral_id, id, instrument, timepoint, items, total, metric, taken_at FROM measure
		WHERE referral_id IN ` + in + ` AND withdrawn_at IS NULL ORDER BY referral_id, taken_at, id`
}
