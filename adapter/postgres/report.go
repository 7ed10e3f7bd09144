package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	var lastAt time.Time
	var lastID string
	for {
		query, pageArgs := reportPageSQL(base, args, lastAt, lastID)
		var page []*linkbridge.ReportReferral
		err := db.readTx(ctx, func(tx pgx.Tx) error {
			var err error
			page, err = reportPage(ctx, tx, query, pageArgs, !q.NoMeasures)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: report: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		last := page[len(page)-1].Referral
		lastAt, lastID = last.ReceivedAt, last.ID
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
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		return queryRows(ctx, tx, reportIDsSQL(base), args, func(rows pgx.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("postgres: report: %w", err)
	}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), linkbridge.ReportPageSize)]
		ids = ids[len(chunk):]
		var page []*linkbridge.ReportReferral
		err := db.readTx(ctx, func(tx pgx.Tx) error {
			var err error
			page, err = reportPage(ctx, tx, reportChunkSQL, []any{chunk}, !q.NoMeasures)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: report: %w", err)
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

// reportChunkSQL reads a page of a report by its referrals' ids ($1).
var reportChunkSQL = `SELECT ` + sqlshared.ReferralColumns + ` FROM referral WHERE id = ANY($1::text[])
	AND status <> 'entered-in-error' AND request_status <> 'entered-in-error' ORDER BY received_at, id`

// reportSQL is the SELECT of ReportReferrals without its keyset and order
// (reportPageSQL), and its arguments.
func reportSQL(q linkbridge.ReportQuery) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	// scope selects the referrals of q's organisations.
	var scope []string
	if q.ServiceODS != "" {
		scope = append(scope, `service_ods = `+arg(q.ServiceODS))
	}
	if q.LinkWorkerID != "" {
		scope = append(scope, `link_worker_id = `+arg(q.LinkWorkerID))
	}
	if len(q.ReferrerODS) > 0 {
		scope = append(scope, `referrer_ods = ANY(`+arg(q.ReferrerODS)+`::text[])`)
	}
	conds := append([]string{`status <> 'entered-in-error'`, `request_status <> 'entered-in-error'`}, scope...)
	if !q.To.IsZero() {
		conds = append(conds, `received_at < `+arg(ceilMicro(q.To)))
	}
	if q.From.IsZero() {
		return `SELECT ` + sqlshared.ReferralColumns + ` FROM referral WHERE ` + strings.Join(conds, ` AND `), args
	}
	from := arg(ceilMicro(q.From))
	conds = append(conds, `(status NOT IN ('completed', 'failed', 'cancelled', 'rejected') OR updated_at >= `+from+`
		OR EXISTS (SELECT 1 FROM contact c WHERE c.referral_id = referral.id AND c.withdrawn_at IS NULL AND c.at >= `+from+`)
		OR EXISTS (SELECT 1 FROM measure m WHERE m.referral_id = referral.id AND m.withdrawn_at IS NULL AND m.taken_at >= `+from+`))`)
	// The referrals that condition can match are those of the scope still
	// open or changed since ReportActiveSince (sqlshared): found first, by
	// the status and updated_at indexes, so that a report reads the
	// referrals active in its period, not every one its scope ever received.
	inScope := ""
	if len(scope) > 0 {
		inScope = ` AND ` + strings.Join(scope, ` AND `)
	}
	active := `(SELECT id AS active_id FROM referral WHERE status IN ` + sqlshared.ActiveStatuses + inScope +
		` UNION SELECT id FROM referral WHERE updated_at >= ` + arg(ceilMicro(sqlshared.ReportActiveSince(q.From))) + inScope +
		`) AS a JOIN referral ON referral.id = a.active_id`
	return `SELECT ` + sqlshared.ReferralColumns + ` FROM ` + active + ` WHERE ` + strings.Join(conds, ` AND `), args
}

// reportPageSQL is the page of a report after the referral (lastAt,
// lastID) in (received_at, id) order; the first page when lastID is "".
func reportPageSQL(base string, args []any, lastAt time.Time, lastID string) (string, []any) {
	n := len(args)
	query, pageArgs := base, append([]any(nil), args...)
	if lastID != "" {
		a, b := "$"+strconv.Itoa(n+1), "$"+strconv.Itoa(n+2)
		query += ` AND received_at >= ` + a + ` AND (received_at > ` + a + ` OR id > ` + b + `)`
		pageArgs = append(pageArgs, lastAt, lastID)
	}
	return query + ` ORDER BY received_at, id LIMIT ` + strconv.Itoa(linkbridge.ReportPageSize), pageArgs
}

// reportPage reads one page of referrals and their review dates, contacts
// and (with measures) measures, through tx.
func reportPage(ctx context.Context, tx pgx.Tx, query string, args []any, measures bool) ([]*linkbridge.ReportReferral, error) {
	var page []*linkbridge.ReportReferral
	byID := map[string]*linkbridge.ReportReferral{}
	err := queryRows(ctx, tx, query, args, func(rows pgx.Rows) error {
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
	ids := make([]string, len(page))
	for i, r := range page {
		ids[i] = r.Referral.ID
	}
	err = queryRows(ctx, tx, reportPlansSQL, []any{ids},
		func(rows pgx.Rows) error {
			var id string
			var review *string
			if err := rows.Scan(&id, &review); err != nil {
				return err
			}
			if review != nil {
				byID[id].ReviewDate = *review
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("plans: %w", err)
	}
	err = queryRows(ctx, tx, reportContactsSQL, []any{ids}, func(rows pgx.Rows) error {
		c := &linkbridge.Contact{}
		var mode string
		if err := rows.Scan(&c.ReferralID, &c.ID, &c.At, &mode, &c.Minutes, &c.Attended); err != nil {
			return err
		}
		c.Mode, c.At = linkbridge.ContactMode(mode), utc(c.At)
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
	err = queryRows(ctx, tx, reportMeasuresSQL, []any{ids}, func(rows pgx.Rows) error {
		m := &linkbridge.Measure{}
		var instrument, timepoint, items string
		if err := rows.Scan(&m.ReferralID, &m.ID, &instrument, &timepoint, &items, &m.Total, &m.Metric, &m.TakenAt); err != nil {
			return err
		}
		m.Instrument, m.Timepoint, m.TakenAt = linkbridge.Instrument(instrument), linkbridge.Timepoint(timepoint), utc(m.TakenAt)
		var err error
		if m.Items, err = sqlshared.DecodeItems(items); err != nil {
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
// dates, contacts and measures ($1: the referrals' ids).
const (
	reportPlansSQL    = `SELECT referral_id, body->>'reviewDate' FROM case_plan WHERE referral_id = ANY($1::text[])`
	reportContactsSQL = `SELECT referral_id, id, at, mode, minutes, attended FROM contact
		WHERE referral_id = ANY($1::text[]) AND withdrawn_at IS NULL ORDER BY referral_id, at, id`
	reportMeasuresSQL = `SELECT referral_id, id, instrument, timepoint, items::text, total, metric, taken_at FROM measure
		WHERE referral_id = ANY($1::text[]) AND withdrawn_at IS NULL ORDER BY referral_id, taken_at, id`
)
