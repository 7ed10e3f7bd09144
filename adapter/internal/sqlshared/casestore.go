package sqlshared

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// CaseRows are the case-record writes of one change, converted to column
// values before the write starts.
type CaseRows struct {
	ReferralID string
	// Plan is the plan's JSON; nil: the plan is not changed.
	Plan *string
	// Contacts are contact rows: id, referral_id, at, mode, minutes,
	// attended, notes, created_at, amended_at, withdrawn_at,
	// withdrawn_reason.
	Contacts [][]any
	// Measures are measure rows: id, referral_id, instrument, timepoint,
	// items (JSON), total, metric, taken_at, created_at, amended_at,
	// withdrawn_at, withdrawn_reason.
	Measures [][]any
	// ContactUpdates and MeasureUpdates are the rows of corrected entries:
	// the columns of Contacts and Measures but created_at (kept as
	// stored), id and referral_id last (the UPDATE's WHERE).
	ContactUpdates [][]any
	MeasureUpdates [][]any
	// Event is the referral_event row (EventArgs); nil: no event.
	Event []any
}

// NewCaseRows converts the case-record part of a validated change (see
// linkbridge.ReferralChange.Validate) to column values: entries that name
// no referral are the change's referral's, and the event is the change's
// StoredEvent.
func NewCaseRows(ch *linkbridge.ReferralChange, c Columns) (*CaseRows, error) {
	ref := ch.Referral
	rows := &CaseRows{ReferralID: ref.ID}
	if ch.Plan != nil {
		b, err := json.Marshal(ch.Plan)
		if err != nil {
			return nil, fmt.Errorf("encode plan: %w", err)
		}
		plan := string(b)
		rows.Plan = &plan
	}
	for _, ct := range ch.Contacts {
		rows.Contacts = append(rows.Contacts, slices.Concat([]any{ct.ID, ref.ID}, contactValues(ct, c),
			[]any{c.Time(ct.CreatedAt)}, correctionValues(ct.Correction, c)))
	}
	for _, ct := range ch.ContactUpdates {
		rows.ContactUpdates = append(rows.ContactUpdates, slices.Concat(contactValues(ct, c),
			correctionValues(ct.Correction, c), []any{ct.ID, ref.ID}))
	}
	for _, m := range ch.Measures {
		v, err := measureValues(m, c)
		if err != nil {
			return nil, err
		}
		rows.Measures = append(rows.Measures, slices.Concat([]any{m.ID, ref.ID}, v,
			[]any{c.Time(m.CreatedAt)}, correctionValues(m.Correction, c)))
	}
	for _, m := range ch.MeasureUpdates {
		v, err := measureValues(m, c)
		if err != nil {
			return nil, err
		}
		rows.MeasureUpdates = append(rows.MeasureUpdates, slices.Concat(v, correctionValues(m.Correction, c), []any{m.ID, ref.ID}))
	}
	if ev := ch.StoredEvent(); ev != nil {
		rows.Event = EventArgs(ev, c)
	}
	return rows, nil
}

// contactValues are a contact's columns at, mode, minutes, attended, notes.
func contactValues(ct *linkbridge.Contact, c Columns) []any {
	return []any{c.Time(ct.At), string(ct.Mode), ct.Minutes, c.Bool(ct.Attended), ct.Notes}
}

// measureValues are a measure's columns instrument, timepoint, items,
// total, metric, taken_at.
func measureValues(m *linkbridge.Measure, c Columns) ([]any, error) {
	items := []byte("[]")
	if len(m.Items) > 0 {
		var err error
		if items, err = json.Marshal(m.Items); err != nil {
			return nil, fmt.Errorf("encode measure items: %w", err)
		}
	}
	return []any{string(m.Instrument), string(m.Timepoint), string(items), m.Total, m.Metric, c.Time(m.TakenAt)}, nil
}

// correctionValues are an entry's columns amended_at, withdrawn_at,
// withdrawn_reason (NULL times when never).
func correctionValues(k linkbridge.Correction, c Columns) []any {
	return []any{c.NullTime(k.AmendedAt), c.NullTime(k.WithdrawnAt), k.WithdrawnReason}
}

// ContactUpdateSQL and MeasureUpdateSQL replace a corrected entry
// (CaseRows.ContactUpdates, MeasureUpdates); param(i) is the i-th
// placeholder (1-based). The store reports ENOTFOUND when no row changed.
func ContactUpdateSQL(param func(int) string) string {
	return updateSQL("contact", []string{"at", "mode", "minutes", "attended", "notes"}, param, "")
}

// MeasureUpdateSQL: see ContactUpdateSQL. cast is appended to the items
// placeholder (PostgreSQL's "::jsonb").
func MeasureUpdateSQL(param func(int) string, itemsCast string) string {
	return updateSQL("measure", []string{"instrument", "timepoint", "items", "total", "metric", "taken_at"}, param, itemsCast)
}

func updateSQL(table string, cols []string, param func(int) string, itemsCast string) string {
	cols = append(cols, "amended_at", "withdrawn_at", "withdrawn_reason")
	set := make([]string, len(cols))
	for i, col := range cols {
		set[i] = col + " = " + param(i+1)
		if col == "items" {
			set[i] += itemsCast
		}
	}
	n := len(cols)
	return "UPDATE " + table + " SET " + strings.Join(set, ", ") + " WHERE id = " + param(n+1) + " AND referral_id = " + param(n+2)
}

// DecodePlan reads a case_plan body written by NewCaseRows.
func DecodePlan(b []byte) (linkbridge.Plan, error) {
	var p linkbridge.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return linkbridge.Plan{}, fmt.Errorf("bad stored plan: %w", err)
	}
	return p, nil
}

// DecodeItems reads a measure's items column written by NewCaseRows; "[]"
// is none (nil).
func DecodeItems(s string) ([]int, error) {
	if s == "[]" {
		return nil, nil
	}
	var items []int
	if err := json.Unmarshal([]byte(s), &items); err != nil {
		return nil, fmt.Errorf("bad stored items: %w", err)
	}
	return items, nil
}

// ZeroCounts returns CountContacts's map before the count: every id asked
// for, at 0.
func ZeroCounts(referralIDs []string) map[string]int {
	counts := make(map[string]int, len(referralIDs))
	for _, id := range referralIDs {
		counts[id] = 0
	}
	return counts
}

// ChangeRows is a ReferralChange converted to column values, before the
// write starts.
type ChangeRows struct {
	// Referral is a copy of the change's referral (a writer on another
	// goroutine may read it), ReferralArgs its row (ReferralArgs).
	Referral     *linkbridge.Referral
	ReferralArgs []any
	Resources    []ResourceRow
	Case         *CaseRows
	// Outbox is nil when the change enqueues nothing.
	Outbox *OutboxRows
	// Audit is the change's audit record (WriteAuditRow), nil when it has
	// none.
	Audit *AuditRow
}

// NewChangeRows validates a change (ReferralChange.Validate; its EINVALID
// is returned as it is) and converts it to column values; now is the
// default time of its outbox messages.
func NewChangeRows(ch *linkbridge.ReferralChange, now time.Time, c Columns) (*ChangeRows, error) {
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	ref := *ch.Referral
	rows := &ChangeRows{Referral: &ref}
	var err error
	if rows.ReferralArgs, err = ReferralArgs(&ref, c); err != nil {
		return nil, err
	}
	if rows.Resources, err = ResourceRows(ch.Resources); err != nil {
		return nil, err
	}
	if rows.Case, err = NewCaseRows(ch, c); err != nil {
		return nil, err
	}
	if rows.Audit, err = WriteAuditRow(ch.Audit, c); err != nil {
		return nil, err
	}
	rows.Outbox = NewOutboxRows(ch, now, c)
	return rows, nil
}
