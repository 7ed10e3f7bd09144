package mdtweb

import (
	"context"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// boardWindow is how long a closed referral stays on the board after it
// closed.
const boardWindow = 90 * 24 * time.Hour

// boardPageSize is how many people a board page lists: the page reads
// the names of those only, in one search (docs/performance.md#the-mdt-board).
const boardPageSize = 50

// boardRow is one person on the board.
type boardRow struct {
	ID, Name, Practice, LinkWorker, LinkWorkerID, Status string
	Group                                                statusGroup
	Referred                                             time.Time
	// Waiting says how long the person has waited, or waited, for a
	// first contact.
	Waiting string
	// WaitingLong is set past four weeks without a first contact.
	WaitingLong bool
	Flags       []string
	Flagged     bool
	// patient is the id of the Patient the referrer sent (the name).
	patient string
}

// boardGroup is one status group of the board.
type boardGroup struct {
	Group statusGroup
	Title string
	// Count is the number of people in the group, on every page; Rows
	// those on this page.
	Count int
	Rows  []*boardRow
}

// boardFilter is what the board's filter form asks for, and the page.
type boardFilter struct {
	Group, LinkWorker, Practice string
	Flagged                     bool
	// Page is the page asked for, from 1.
	Page int
}

// option is one choice of a select.
type option struct{ Value, Text string }

// boardView is the board page.
type boardView struct {
	Filter      boardFilter
	Groups      []*boardGroup
	Counts      []option // group title, count
	Total       int
	LinkWorkers []option
	Practices   []option
	// Page and Pages number this page and the pages; First and Last are
	// the positions (from 1) of its first and last person among Total.
	Page, Pages, First, Last int
	// PrevPage and NextPage are the neighbouring pages' numbers.
	PrevPage, NextPage int
	// Query is the filter as a query string, without the page; PrevQuery
	// and NextQuery the filter with the previous and next page ("" at
	// either end).
	Query, PrevQuery, NextQuery string
}

// board reads the referrals the principal may see (its practices' for an
// MDT viewer), open ones and those closed in the last boardWindow, with
// what the board shows of each. The practice and link worker filters go
// to the store, which reads only those referrals (by its referrer and
// link worker indexes); status and flags are the board's own reading of a
// referral, so they filter here. Everyone matching is sorted, then one
// page of boardPageSize is shown: only its people's names are read.
func (s *Server) board(ctx context.Context, f boardFilter) (*boardView, error) {
	now := s.now()
	// The board shows no outcome measure: the store skips reading them.
	q := linkbridge.ReportQuery{From: now.Add(-boardWindow), To: now.Add(time.Minute), NoMeasures: true}
	if f.Practice != "" {
		q.ReferrerODS = []string{f.Practice}
	}
	q.LinkWorkerID = f.LinkWorker
	var rows []*boardRow
	lws := map[string]string{}
	practices := map[string]bool{}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && p.Role == linkbridge.RoleMDT {
		for _, ods := range p.Practices {
			practices[ods] = true
		}
	}
	if f.Practice != "" {
		practices[f.Practice] = true
	}
	err := s.Cases.ReportReferrals(ctx, q, func(page []*linkbridge.ReportReferral) error {
		for _, r := range page {
			rf := r.Referral
			if !rf.Status.Open() && !rf.CompletedAt.IsZero() && rf.CompletedAt.Before(q.From) {
				continue
			}
			if !rf.Status.Open() && rf.CompletedAt.IsZero() && rf.UpdatedAt.Before(q.From) {
				continue
			}
			if rf.ReferrerODS != "" {
				practices[rf.ReferrerODS] = true
			}
			if rf.LinkWorker.ID != "" {
				lws[rf.LinkWorker.ID] = linkWorkerName(rf.LinkWorker)
			}
			row := s.boardRow(r, now)
			if f.Group != "" && string(row.Group) != f.Group || f.Flagged && !row.Flagged {
				continue
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v := &boardView{Filter: f, Total: len(rows)}
	v.Pages = max(1, (len(rows)+boardPageSize-1)/boardPageSize)
	if f.Page > v.Pages {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "the board has %d pages: there is no page %d", v.Pages, f.Page)
	}
	v.Page = max(f.Page, 1)
	v.PrevPage, v.NextPage = v.Page-1, v.Page+1
	// By group, then the longest wait first; closed ones most recent
	// first.
	rank := map[statusGroup]int{}
	for i, g := range groups {
		rank[g] = i
	}
	slices.SortStableFunc(rows, func(a, b *boardRow) int {
		if c := rank[a.Group] - rank[b.Group]; c != 0 {
			return c
		}
		c := a.Referred.Compare(b.Referred)
		if a.Group == groupClosed {
			c = -c
		}
		if c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	byGroup := map[statusGroup]*boardGroup{}
	for _, g := range groups {
		bg := &boardGroup{Group: g, Title: groupTitle(g)}
		byGroup[g] = bg
		v.Groups = append(v.Groups, bg)
	}
	for _, row := range rows {
		byGroup[row.Group].Count++
	}
	lo := (v.Page - 1) * boardPageSize
	shown := rows[lo:min(lo+boardPageSize, len(rows))]
	if len(shown) > 0 {
		v.First, v.Last = lo+1, lo+len(shown)
	}
	s.personNames(ctx, shown)
	for _, row := range shown {
		access.Note(ctx, "ServiceRequest/"+row.ID)
		byGroup[row.Group].Rows = append(byGroup[row.Group].Rows, row)
	}
	for _, g := range v.Groups {
		v.Counts = append(v.Counts, option{Value: g.Title, Text: fmt.Sprint(g.Count)})
	}
	for id, name := range lws {
		v.LinkWorkers = append(v.LinkWorkers, option{Value: id, Text: name})
	}
	slices.SortFunc(v.LinkWorkers, func(a, b option) int { return strings.Compare(a.Text, b.Text) })
	for ods := range practices {
		v.Practices = append(v.Practices, option{Value: ods, Text: ods})
	}
	slices.SortFunc(v.Practices, func(a, b option) int { return strings.Compare(a.Value, b.Value) })
	return v, nil
}

// personNames sets each row's Name from the Patient its referrer sent,
// read for all rows in one search through the authorising store (which
// notes each for the audit record); "Name not recorded" where there is
// none or it cannot be read.
func (s *Server) personNames(ctx context.Context, rows []*boardRow) {
	ids := make([]string, 0, len(rows))
	for _, row := range rows {
		row.Name = "Name not recorded"
		if row.patient != "" && !slices.Contains(ids, row.patient) {
			ids = append(ids, row.patient)
		}
	}
	if len(ids) == 0 {
		return
	}
	res, err := s.Store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Patient", IDs: ids, Count: len(ids)})
	if err != nil {
		if s.Logger != nil {
			s.Logger.WarnContext(ctx, "mdt: board: reading the people's names", "err", err)
		}
		return
	}
	// The stored Patients were validated on the way in: their names are
	// read from the JSON (fhirjson.PatientName, the reading of
	// fhirmap.PersonContactOf) rather than decoded one by one.
	names := make(map[string]string, len(res.Resources))
	for _, r := range res.Resources {
		if name := fhirjson.PatientName(r.Body); name != "" {
			names[r.ID] = name
		}
	}
	for _, row := range rows {
		if name, ok := names[row.patient]; ok {
			row.Name = name
		}
	}
}

// linkWorkerName is a link worker's name, or their id when none is known.
func linkWorkerName(lw linkbridge.LinkWorker) string {
	if lw.Name != "" {
		return lw.Name
	}
	return lw.ID
}

// boardRow builds a board row. The flags that come from contacts and the
// plan (did not attend, review overdue) are shown only when the person
// shares more than the referral's status with the GP record: the board
// discloses what the MDT would read at /fhir, no more.
func (s *Server) boardRow(r *linkbridge.ReportReferral, now time.Time) *boardRow {
	rf := r.Referral
	row := &boardRow{ID: rf.ID, Practice: rf.ReferrerODS, LinkWorker: linkWorkerName(rf.LinkWorker), LinkWorkerID: rf.LinkWorker.ID,
		Status: statusWords(rf), Group: groupOf(rf), Referred: rf.Started(), patient: rf.Patient()}
	cr := &linkbridge.CaseRecord{Referral: rf, Plan: linkbridge.Plan{ReviewDate: r.ReviewDate}, Contacts: r.Contacts}
	for _, flag := range cr.Flags(now, s.DNAReviewAfter) {
		if rf.Consent == linkbridge.ConsentNone && flag != linkbridge.FlagDoNotContact {
			continue
		}
		row.Flags = append(row.Flags, flagWords(flag, s.dnaReviewAfter()))
	}
	row.Flagged = len(row.Flags) > 0
	var first time.Time
	for _, c := range r.Contacts {
		if c.Attended && !c.Withdrawn() && (first.IsZero() || c.At.Before(first)) {
			first = c.At
		}
	}
	received := rf.ReceivedAt
	if received.IsZero() {
		received = rf.Started()
	}
	switch {
	case !first.IsZero():
		row.Waiting = "First contact after " + days(first.Sub(received))
	case rf.Status.Open() || rf.Status == linkbridge.TaskRequested:
		row.Waiting = "Waiting " + days(now.Sub(received))
		row.WaitingLong = now.Sub(received) > 28*24*time.Hour
	default:
		row.Waiting = "No contact"
	}
	return row
}

func (s *Server) dnaReviewAfter() int {
	if s.DNAReviewAfter > 0 {
		return s.DNAReviewAfter
	}
	return linkbridge.DefaultDNAReviewAfter
}

func (s *Server) personContact(ctx context.Context, referralID string) *fhirmap.PersonContact {
	rf, err := s.Store.FindReferral(ctx, referralID)
	if err != nil {
		return nil
	}
	res, err := s.Store.ReadResource(ctx, "Patient", rf.Patient())
	if err != nil {
		return nil
	}
	msg, err := s.Codec.DecodeResource(res.Body)
	if err != nil {
		return nil
	}
	return fhirmap.PersonContactOf(msg)
}

// timelineItem is one step of the episode.
type timelineItem struct {
	At     time.Time
	Title  string
	Detail string
	// Kind styles the item: "event", "contact", "dna", "measure".
	Kind string
}

// goalView is a goal of the plan.
type goalView struct {
	Description, Status string
	Importance          int
	Confidence          int
}

// scoreRow is one measure in a trend table.
type scoreRow struct {
	At        time.Time
	Timepoint string
	Values    []string
}

// trend is a chart of one instrument's scores and its table.
type trend struct {
	ID, Title string
	Chart     template.HTML
	Columns   []string
	Rows      []scoreRow
	Note      string
}

// codedEntryView is a coded entry written to the GP record.
type codedEntryView struct {
	At                    time.Time
	Display, Code, System string
}

// personView is the person page.
type personView struct {
	ID, Name, NHSNumber, BirthDate, Practice, Source, Status, LinkWorker, Consent string
	Referred                                                                      time.Time
	Reasons                                                                       []string
	Flags                                                                         []string
	// Shared is false when the person shares nothing beyond the status.
	Shared         bool
	Full           bool
	WhatMatters    string
	Goals          []goalView
	Onward         []option
	ReviewDate     string
	Timeline       []timelineItem
	Trends         []trend
	Coded          []codedEntryView
	DischargeNotes string
}

// person reads one person's case: what the MDT reads of it at /fhir, in
// plain words. Consent decides as it does for the FHIR view: with none,
// only the referral and its status; without full consent, no free text.
func (s *Server) person(ctx context.Context, id string) (*personView, error) {
	cr, err := s.Cases.GetCaseRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	rf := cr.Referral
	v := &personView{ID: rf.ID, Practice: rf.ReferrerODS, Source: sourceWords(rf.Source), Status: statusWords(rf),
		LinkWorker: linkWorkerName(rf.LinkWorker), Consent: consentWords(rf.Consent), Referred: rf.Started(),
		Shared: rf.Consent != linkbridge.ConsentNone, Full: rf.Consent == linkbridge.ConsentFull}
	if v.LinkWorker == "" {
		v.LinkWorker = "Not yet assigned"
	}
	if pc := s.personContact(ctx, id); pc != nil && pc.Name != "" {
		v.Name = pc.Name
	} else {
		v.Name = "Name not recorded"
	}
	if cr.Person != nil {
		v.NHSNumber = nhsNumber(cr.Person.NHSNumber)
		v.BirthDate = humanDay(cr.Person.BirthDate)
	}
	for _, c := range rf.Reasons {
		if c.Display != "" {
			v.Reasons = append(v.Reasons, c.Display)
		}
	}
	now := s.now()
	for _, flag := range cr.Flags(now, s.DNAReviewAfter) {
		if !v.Shared && flag != linkbridge.FlagDoNotContact || flag == linkbridge.FlagSafeguarding && !v.Full {
			continue
		}
		v.Flags = append(v.Flags, flagWords(flag, s.dnaReviewAfter()))
	}

	// The timeline: the referral's history in plain words, and, when
	// shared, each contact and measure from its own record.
	for _, e := range cr.Events {
		title := eventWords(e, rf)
		if title == "" || !v.Shared && !slices.Contains([]string{"received", "accept", "decline", "complete", "fail", "cancel", "hold", "revoke"}, e.Action) && !strings.HasPrefix(e.Action, "task-") {
			continue
		}
		at := e.At
		switch {
		case e.Action == "received":
			at = rf.Started() // when the referrer made it, which may be before it arrived
		case !e.OccurredAt.IsZero():
			at = e.OccurredAt
		}
		item := timelineItem{At: at, Title: title, Kind: "event"}
		if e.Action == linkbridge.ActionComplete && v.Full && rf.DischargeSummary != "" {
			item.Detail = rf.DischargeSummary
		}
		v.Timeline = append(v.Timeline, item)
	}
	if v.Shared {
		for _, c := range cr.Contacts {
			if c.Withdrawn() {
				continue
			}
			item := timelineItem{At: c.At, Title: contactModeWords(c.Mode), Kind: "contact"}
			if c.Attended {
				item.Detail = fmt.Sprintf("%d minutes", c.Minutes)
			} else {
				item.Title += ": did not attend"
				item.Kind = "dna"
			}
			v.Timeline = append(v.Timeline, item)
		}
		changes := linkbridge.ChangesFromBaseline(cr.Measures)
		for _, m := range cr.Measures {
			if m.Withdrawn() {
				continue
			}
			item := timelineItem{At: m.TakenAt, Title: "Wellbeing measured " + timepointWords(m.Timepoint) + ": " + instrumentWords(m.Instrument), Kind: "measure"}
			if sc, ok := m.HeadlineScore(); ok {
				item.Detail = "Score " + num(sc)
				if ch := changes[m.ID]; ch != nil && ch.Score != nil {
					item.Detail += fmt.Sprintf(" (%s since the start)", signed(*ch.Score))
				}
			}
			v.Timeline = append(v.Timeline, item)
		}
		plan := cr.Plan
		if v.Full {
			v.WhatMatters = plan.WhatMatters
		}
		for _, g := range plan.Goals {
			if g.Status == linkbridge.GoalEnteredInError {
				continue
			}
			d := "Personal goal (details held by the social prescribing service)"
			if v.Full {
				d = g.Description
			}
			v.Goals = append(v.Goals, goalView{Description: d, Status: goalWords(g.Status), Importance: g.Importance, Confidence: g.Confidence})
		}
		for _, o := range plan.OnwardReferrals {
			name := "A community service"
			if v.Full {
				name = o.Service
			}
			v.Onward = append(v.Onward, option{Value: name, Text: onwardWords(o.Status)})
		}
		if rf.Status.Open() {
			v.ReviewDate = humanDay(plan.ReviewDate)
		}
		v.Trends = trends(cr.Measures)
	}
	slices.SortStableFunc(v.Timeline, func(a, b timelineItem) int { return a.At.Compare(b.At) })
	for _, e := range s.Systems.CodedEntries(cr) {
		system := e.System
		switch {
		case system == linkbridge.SNOMEDSystem:
			system = "SNOMED CT"
		case system != "":
			system = "Local code"
		}
		v.Coded = append(v.Coded, codedEntryView{At: e.When, Display: e.Display, Code: e.Code, System: system})
	}
	return v, nil
}

// signed renders a change with its sign: "+3.2", "-1", "0".
func signed(v float64) string {
	if v > 0 {
		return "+" + num(v)
	}
	return num(v)
}

// trends charts the SWEMWBS metric score and the four ONS4 answers over
// time, each with its table.
func trends(ms []*linkbridge.Measure) []trend {
	var sw, ons []*linkbridge.Measure
	for _, m := range ms {
		if m.Withdrawn() {
			continue
		}
		switch m.Instrument {
		case linkbridge.SWEMWBS:
			sw = append(sw, m)
		case linkbridge.ONS4:
			ons = append(ons, m)
		}
	}
	byTime := func(a, b *linkbridge.Measure) int { return a.TakenAt.Compare(b.TakenAt) }
	slices.SortStableFunc(sw, byTime)
	slices.SortStableFunc(ons, byTime)
	var out []trend
	if len(sw) > 0 {
		t := trend{ID: "trend-swemwbs", Title: instrumentWords(linkbridge.SWEMWBS), Columns: []string{"Score (7 to 35, higher is better)"},
			Note: "The metric score, from the official conversion of the 7 answers."}
		s := series{Name: "SWEMWBS"}
		var desc []string
		for _, m := range sw {
			s.Points = append(s.Points, point{At: m.TakenAt, Value: m.Metric, Label: num(m.Metric)})
			t.Rows = append(t.Rows, scoreRow{At: m.TakenAt, Timepoint: timepointWords(m.Timepoint), Values: []string{num(m.Metric)}})
			desc = append(desc, fmt.Sprintf("%s on %s", num(m.Metric), humanDate(m.TakenAt)))
		}
		t.Chart = lineChart(t.ID, "SWEMWBS score over time", "Scores: "+strings.Join(desc, ", ")+". Higher is better.", 7, 35, []float64{7, 14, 21, 28, 35}, []series{s})
		out = append(out, t)
	}
	if len(ons) > 0 {
		t := trend{ID: "trend-ons4", Title: instrumentWords(linkbridge.ONS4), Note: "Each answer from 0 to 10; the four are never added up."}
		ss := make([]series, len(linkbridge.ONS4Items))
		var desc []string
		for i, item := range linkbridge.ONS4Items {
			t.Columns = append(t.Columns, ons4ItemWords(item))
			ss[i].Name = ons4ItemWords(item)
		}
		for _, m := range ons {
			row := scoreRow{At: m.TakenAt, Timepoint: timepointWords(m.Timepoint)}
			for i := range linkbridge.ONS4Items {
				if i < len(m.Items) {
					ss[i].Points = append(ss[i].Points, point{At: m.TakenAt, Value: float64(m.Items[i]), Label: fmt.Sprint(m.Items[i])})
					row.Values = append(row.Values, fmt.Sprint(m.Items[i]))
				}
			}
			t.Rows = append(t.Rows, row)
			desc = append(desc, fmt.Sprintf("on %s: %s", humanDate(m.TakenAt), strings.Join(row.Values, ", ")))
		}
		t.Chart = lineChart(t.ID, "ONS4 answers over time", "Life satisfaction, worthwhile, happiness and anxiety "+strings.Join(desc, "; ")+".", 0, 10, []float64{0, 2, 4, 6, 8, 10}, ss)
		out = append(out, t)
	}
	return out
}

// reportView is the reports page: the period report of the principal's
// referrals, with charts.
type reportView struct {
	From, To         string // YYYY-MM, the form's values
	Period           string // in words
	Report           *linkbridge.PeriodReport
	ByPractice       template.HTML
	BySource         template.HTML
	Discharges       template.HTML
	Outcomes         template.HTML
	SourceRows       []option
	PracticeRows     []option
	DischargeRows    []option
	OutcomeRows      []outcomeRow
	DNARate, Waiting string
}

// outcomeRow is one outcome figure in words.
type outcomeRow struct {
	Name, Baseline, FollowUp, Change, Improved string
	Pairs                                      int
}

// report computes the period report [from, to) over the principal's
// referrals (linkbridge.Principal.ReportScopeFor), as /sp/v1/reports/period
// does.
func (s *Server) report(ctx context.Context, fromS, toS string) (*reportView, error) {
	from, to, err := linkbridge.ParseReportPeriod(fromS, toS)
	if err != nil {
		return nil, err
	}
	scope := linkbridge.ReportScope{}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil {
		if scope, err = p.ReportScopeFor(scope); err != nil {
			return nil, err
		}
	}
	p := linkbridge.NewPeriod(scope, from, to)
	if err := s.Cases.ReportReferrals(ctx, linkbridge.PeriodQuery(scope, from, to), func(page []*linkbridge.ReportReferral) error {
		for _, r := range page {
			p.Add(r)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rep := p.Report()
	v := &reportView{From: fromS, To: toS, Report: rep,
		Period: humanDate(from) + " to " + humanDate(to.Add(-time.Nanosecond))}
	counts := func(cs []linkbridge.Count, words func(string) string) ([]bar, []option) {
		var bars []bar
		var rows []option
		for _, c := range cs {
			label := c.Key
			if words != nil {
				label = words(c.Key)
			} else if c.Display != "" {
				label = c.Display
			}
			bars = append(bars, bar{Label: label, Value: float64(c.Count), Text: fmt.Sprint(c.Count)})
			rows = append(rows, option{Value: label, Text: fmt.Sprint(c.Count)})
		}
		return bars, rows
	}
	var bars []bar
	bars, v.PracticeRows = counts(rep.Referrals.ByPractice, nil)
	v.ByPractice = barChart("chart-practice", "Referrals by practice", describeBars(bars), bars, 0)
	bars, v.SourceRows = counts(rep.Referrals.BySource, func(k string) string { return sourceWords(linkbridge.ReferralSource(k)) })
	v.BySource = barChart("chart-source", "Referrals by where they came from", describeBars(bars), bars, 0)
	bars, v.DischargeRows = counts(rep.Discharges.ByReason, dischargeWords)
	v.Discharges = barChart("chart-discharge", "Discharges by reason", describeBars(bars), bars, 0)
	v.DNARate = fmt.Sprintf("%s%%", num(rep.Contacts.DNARate*100))
	if rep.WaitingTime.FirstContacts > 0 {
		v.Waiting = fmt.Sprintf("%s days", num(rep.WaitingTime.MedianDays))
	} else {
		v.Waiting = "No first contacts in the period"
	}
	var ob []bar
	for _, o := range rep.Outcomes {
		if o.Pairs == 0 {
			continue
		}
		name := string(o.Instrument)
		if o.Item != "" {
			name += " " + lower(ons4ItemWords(o.Item))
		}
		v.OutcomeRows = append(v.OutcomeRows, outcomeRow{Name: name, Pairs: o.Pairs, Baseline: num(o.MeanBaseline), FollowUp: num(o.MeanFollowUp),
			Change: signed(o.MeanChange), Improved: fmt.Sprintf("%s%%", num(o.ShareImproved*100))})
		ob = append(ob, bar{Label: name, Value: o.ShareImproved * 100, Text: num(o.ShareImproved*100) + "% improved"})
	}
	v.Outcomes = barChart("chart-outcomes", "Share of people whose score improved", describeBars(ob), ob, 100)
	return v, nil
}

// describeBars is a bar chart's description: every label and value.
func describeBars(bars []bar) string {
	if len(bars) == 0 {
		return "No figures in this period."
	}
	var parts []string
	for _, b := range bars {
		parts = append(parts, b.Label+": "+b.Text)
	}
	return strings.Join(parts, "; ") + "."
}
