package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// ReportReferrals streams the referrals a report reads
// (linkbridge.CaseStore.ReportReferrals), keyset-paged on (received_at,
// id) so that each page is one index range, never an offset scan.
func (db *DB) ReportReferrals(ctx context.Context, q linkbridge.ReportQuery, fn func([]*linkbridge.ReportReferral) error) error {
	conds := []string{`status <> 'entered-in-error'`, `request_status <> 'entered-in-error'`}
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+` = ?`)
			args = append(args, v)
		}
	}
	eq("service_ods", q.ServiceODS)
	eq("link_worker_id", q.LinkWorkerID)
	if len(q.ReferrerODS) > 0 {
		conds = append(conds, `referrer_ods IN (`+placeholders(len(q.ReferrerODS))+`)`)
		for _, ods := range q.ReferrerODS {
			args = append(args, ods)
		}
	}
	if !q.To.IsZero() {
		conds = append(conds, `received_at < ?`)
		args = append(args, formatTime(q.To))
	}
	if !q.From.IsZero() {
		from := formatTime(q.From)
		conds = append(conds, `(status NOT IN ('completed', 'failed', 'cancelled', 'rejected') OR updated_at >= ?
			OR EXISTS (SELECT 1 FROM contact c WHERE c.referral_id = referral.id AND c.withdrawn_at IS NULL AND c.at >= ?)
			OR EXISTS (SELECT 1 FROM measure m WHERE m.referral_id = referral.id AND m.withdrawn_at IS NULL AND m.taken_at >= ?))`)
		args = append(args, from, from, from)
	}
	base := `SELECT ` + sqlshared.ReferralColumns + ` FROM referral WHERE ` + strings.Join(conds, ` AND `)
	var lastAt, lastID string
	for {
		query, pageArgs := base, args
		if lastID != "" {
			query += ` AND received_at >= ? AND (received_at > ? OR id > ?)`
			pageArgs = append(append([]any(nil), args...), lastAt, lastAt, lastID)
		}
		query += ` ORDER BY received_at, id LIMIT ?`
		pageArgs = append(pageArgs, linkbridge.ReportPageSize)
		page, err := db.reportPage(ctx, query, pageArgs)
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

// reportPage reads one page of referrals and their review dates, contacts
// and measures, in one read transaction.
func (db *DB) reportPage(ctx context.Context, query string, args []any) ([]*linkbridge.ReportReferral, error) {
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
	err = queryRows(ctx, tx, `SELECT referral_id, json_extract(body, '$.reviewDate') FROM case_plan WHERE referral_id IN `+in, ids,
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
	err = queryRows(ctx, tx, `SELECT referral_id, id, at, mode, minutes, attended FROM contact
		WHERE referral_id IN `+in+` AND withdrawn_at IS NULL ORDER BY referral_id, at, id`, ids, func(rows *sql.Rows) error {
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
	err = queryRows(ctx, tx, `SELECT referral_id, id, instrument, timepoint, items, total, metric, taken_at FROM measure
		WHERE referral_id IN `+in+` AND withdrawn_at IS NULL ORDER BY referral_id, taken_at, id`, ids, func(rows *sql.Rows) error {
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
