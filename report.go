package linkbridge

import (
	"math"
	"slices"
	"strings"
	"time"
)

// Reports (docs/reports.md): each link worker's caseload against the
// national norms, and the figures of a period (referrals, waiting times,
// contacts, discharges, outcome measures). The figures are computed here,
// in Go, from the referrals a store streams (CaseStore.ReportReferrals),
// so both backends give the same figures, and memory stays bounded by the
// period (or the open caseload), never by the organisation's history.

// ReportScope selects whose referrals a report counts.
type ReportScope struct {
	// ServiceODS restricts to referrals addressed to one service.
	ServiceODS string `json:"service,omitempty"`
	// ReferrerODS restricts to referrals made by any of these organisations
	// (practices).
	ReferrerODS []string `json:"practices,omitempty"`
	// LinkWorkerID restricts to one link worker's referrals.
	LinkWorkerID string `json:"linkWorker,omitempty"`
}

// ReportQuery selects the referrals a report reads: those in scope that
// may count in the period [From, To). A zero From or To leaves that end
// open.
type ReportQuery struct {
	ReportScope
	From, To time.Time
	// NoMeasures leaves every ReportReferral's Measures nil, for a reader
	// that uses none (the MDT board): the store does not read them. The
	// referrals streamed are the same (a measure dated at or after From
	// still brings its referral in).
	NoMeasures bool
}

// ReportReferral is a referral with what reports read of its case record.
type ReportReferral struct {
	Referral *Referral
	// ReviewDate is the plan's review date (YYYY-MM-DD); "" when none.
	ReviewDate string
	// Contacts are its contacts, by time then id, without notes.
	Contacts []*Contact
	// Measures are its outcome measures, by time taken then id.
	Measures []*Measure
}

// ReportPageSize is how many referrals a store reads per page of
// CaseStore.ReportReferrals.
const ReportPageSize = 500

// DNA reports whether a contact counts as did-not-attend: the one
// definition every report uses (docs/reports.md#definitions).
func (c *Contact) DNA() bool { return !c.Attended }

// Open reports whether a referral is on a link worker's caseload now:
// accepted (waiting for the first contact), in progress, or on hold.
func (s TaskStatus) Open() bool {
	return s == TaskAccepted || s == TaskInProgress || s == TaskOnHold
}

// endedAt is when an accepted referral left the caseload (completed,
// failed or cancelled): CompletedAt, or, for a referral its referrer
// cancelled (which sets no CompletedAt), its last change. Zero when it is
// still open or was never accepted.
func endedAt(rf *Referral) time.Time {
	if rf.AcceptedAt.IsZero() {
		return time.Time{}
	}
	switch rf.Status {
	case TaskCompleted, TaskFailed, TaskCancelled:
		if !rf.CompletedAt.IsZero() {
			return rf.CompletedAt
		}
		return rf.UpdatedAt
	}
	return time.Time{}
}

// attendedContacts counts a referral's attended contacts before t (all of
// them when t is zero).
func attendedContacts(r *ReportReferral, before time.Time) int {
	n := 0
	for _, c := range r.Contacts {
		if !c.DNA() && (before.IsZero() || c.At.Before(before)) {
			n++
		}
	}
	return n
}

// firstAttended is the time of a referral's first attended contact; zero
// when it has none.
func firstAttended(r *ReportReferral) time.Time {
	var first time.Time
	for _, c := range r.Contacts {
		if !c.DNA() && (first.IsZero() || c.At.Before(first)) {
			first = c.At
		}
	}
	return first
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 1) of sorted values by
// linear interpolation between the closest ranks, as PostgreSQL's
// percentile_cont and spreadsheets' PERCENTILE.INC compute it; 0 for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := p * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (pos-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// round rounds x to the given decimal places (half away from zero).
func round(x float64, places int) float64 {
	f := math.Pow(10, float64(places))
	return math.Round(x*f) / f
}

// ratio is n/d rounded to places, 0 when d is 0.
func ratio(n, d int, places int) float64 {
	if d == 0 {
		return 0
	}
	return round(float64(n)/float64(d), places)
}

// ---- Caseload ----

// CaseloadCheckCap bounds the referral ids a caseload check lists; its
// Count counts them all.
const CaseloadCheckCap = 100

// CaseloadCheck is one per-person check of a caseload: how many referrals
// fail it and (up to CaseloadCheckCap) which, in referral id order.
type CaseloadCheck struct {
	Count     int      `json:"count"`
	Referrals []string `json:"referrals"`
}

func (c *CaseloadCheck) add(id string) {
	c.Count++
	if len(c.Referrals) < CaseloadCheckCap {
		c.Referrals = append(c.Referrals, id)
	}
}

// CaseloadRow is one link worker's caseload against the national norms
// (docs/reports.md#caseload). People are persons (one per NHS number), not
// referrals: a person referred twice counts once.
type CaseloadRow struct {
	LinkWorker LinkWorker `json:"linkWorker"`
	// Open counts the people on the caseload now: Active + OnHold +
	// WaitingFirstContact. A person with several open referrals counts in
	// the most advanced state (in progress, then on hold, then waiting).
	Open int `json:"open"`
	// Active counts people with a referral in progress (first contact made).
	Active int `json:"active"`
	// OnHold counts people whose open referral is on hold.
	OnHold int `json:"onHold"`
	// WaitingFirstContact counts people accepted and not yet seen.
	WaitingFirstContact int `json:"waitingFirstContact"`
	// TakenOnLast12Months counts people with a referral accepted in the last
	// 12 months (norm 200–250 a year).
	TakenOnLast12Months int  `json:"takenOnLast12Months"`
	UnderYearNorm       bool `json:"underYearNorm"`
	OverYearNorm        bool `json:"overYearNorm"`
	// AverageContacts is the mean of attended contacts per person taken on
	// in the last 12 months (norm 6–12).
	AverageContacts float64 `json:"averageContacts"`
	// FewContactsAtDischarge: referrals discharged (completed) in the last
	// 12 months with fewer than 6 attended contacts.
	FewContactsAtDischarge CaseloadCheck `json:"fewContactsAtDischarge"`
	// OverContactNorm: open referrals with more than 12 attended contacts.
	OverContactNorm CaseloadCheck `json:"overContactNorm"`
	// OpenOverThreeMonths: open referrals accepted more than 3 months ago.
	OpenOverThreeMonths CaseloadCheck `json:"openOverThreeMonths"`
	// ReviewOverdue: open referrals whose plan review date has passed.
	ReviewOverdue CaseloadCheck `json:"reviewOverdue"`
}

// CaseloadReport is every link worker's caseload, and the service's as a
// whole, at one time.
type CaseloadReport struct {
	AsOf  time.Time      `json:"asOf"`
	Norms CaseloadNorms  `json:"norms"`
	Total *CaseloadRow   `json:"total"`
	Rows  []*CaseloadRow `json:"linkWorkers"`
}

// CaseloadNorms are the national norms a caseload is read against.
type CaseloadNorms struct {
	PeoplePerYearLow      int `json:"peoplePerYearLow"`
	PeoplePerYearHigh     int `json:"peoplePerYearHigh"`
	ContactsPerPersonLow  int `json:"contactsPerPersonLow"`
	ContactsPerPersonHigh int `json:"contactsPerPersonHigh"`
}

// Norms are the national caseload norms (docs/domain.md#caseload-norms).
var Norms = CaseloadNorms{CaseloadYearLow, CaseloadYearHigh, ContactsPerPersonLow, ContactsPerPersonMax}

// CaseloadQuery is the store query of a caseload at now: every open
// referral, and those that ended or were accepted in the last 12 months.
func CaseloadQuery(scope ReportScope, now time.Time) ReportQuery {
	return ReportQuery{ReportScope: scope, From: now.AddDate(-1, 0, 0)}
}

// Caseload builds a CaseloadReport from streamed referrals (Add), in
// memory bounded by the open caseload and the last 12 months' intake.
type Caseload struct {
	now     time.Time
	workers map[string]*caseloadWork
}

// caseloadWork is a caseload row being built.
type caseloadWork struct {
	row *CaseloadRow
	// state is each person's most advanced open state (1 waiting, 2 on
	// hold, 3 in progress).
	state map[string]int
	// takenOn holds the people accepted in the last 12 months; contacts
	// the attended contacts of those referrals.
	takenOn  map[string]bool
	contacts int
	checks   [4][]string
}

// NewCaseload starts a caseload at now.
func NewCaseload(now time.Time) *Caseload {
	b := &Caseload{now: now.UTC(), workers: map[string]*caseloadWork{}}
	b.work("", LinkWorker{}) // the total, there even when empty
	return b
}

func (b *Caseload) work(key string, lw LinkWorker) *caseloadWork {
	w := b.workers[key]
	if w == nil {
		w = &caseloadWork{row: &CaseloadRow{LinkWorker: lw}, state: map[string]int{}, takenOn: map[string]bool{}}
		b.workers[key] = w
	}
	return w
}

// openState ranks an open status: the most advanced state a person is in.
var openState = map[TaskStatus]int{TaskAccepted: 1, TaskOnHold: 2, TaskInProgress: 3}

// Add counts a referral (from CaseloadQuery) in its link worker's row and
// the total.
func (b *Caseload) Add(r *ReportReferral) {
	r = r.live()
	rf := r.Referral
	if rf.LinkWorker.ID == "" || rf.AcceptedAt.IsZero() {
		return
	}
	yearAgo, quarterAgo := b.now.AddDate(-1, 0, 0), b.now.AddDate(0, -3, 0)
	today := b.now.Format("2006-01-02")
	contacts := attendedContacts(r, time.Time{})
	for _, w := range []*caseloadWork{b.work(rf.LinkWorker.ID, rf.LinkWorker), b.work("", LinkWorker{})} {
		if rf.Status.Open() {
			w.state[rf.PersonID] = max(w.state[rf.PersonID], openState[rf.Status])
			if contacts > ContactsPerPersonMax {
				w.checks[1] = append(w.checks[1], rf.ID)
			}
			if rf.AcceptedAt.Before(quarterAgo) {
				w.checks[2] = append(w.checks[2], rf.ID)
			}
			if r.ReviewDate != "" && r.ReviewDate < today {
				w.checks[3] = append(w.checks[3], rf.ID)
			}
		}
		if !rf.AcceptedAt.Before(yearAgo) && !rf.AcceptedAt.After(b.now) {
			w.takenOn[rf.PersonID] = true
			w.contacts += contacts
		}
		if end := endedAt(rf); rf.Status == TaskCompleted && !end.Before(yearAgo) && !end.After(b.now) && contacts < ContactsPerPersonLow {
			w.checks[0] = append(w.checks[0], rf.ID)
		}
	}
}

// Report returns the caseload: link workers by id, and the total.
func (b *Caseload) Report() *CaseloadReport {
	rep := &CaseloadReport{AsOf: b.now, Norms: Norms, Rows: []*CaseloadRow{}}
	keys := make([]string, 0, len(b.workers))
	for k := range b.workers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		w := b.workers[k]
		row := w.row
		for _, s := range w.state {
			switch s {
			case 3:
				row.Active++
			case 2:
				row.OnHold++
			case 1:
				row.WaitingFirstContact++
			}
		}
		row.Open = row.Active + row.OnHold + row.WaitingFirstContact
		row.TakenOnLast12Months = len(w.takenOn)
		row.UnderYearNorm = row.TakenOnLast12Months < CaseloadYearLow
		row.OverYearNorm = row.TakenOnLast12Months > CaseloadYearHigh
		row.AverageContacts = ratio(w.contacts, row.TakenOnLast12Months, 2)
		for i, c := range []*CaseloadCheck{&row.FewContactsAtDischarge, &row.OverContactNorm, &row.OpenOverThreeMonths, &row.ReviewOverdue} {
			slices.Sort(w.checks[i])
			c.Referrals = []string{}
			for _, id := range w.checks[i] {
				c.add(id)
			}
		}
		if k == "" {
			rep.Total = row
		} else {
			rep.Rows = append(rep.Rows, row)
		}
	}
	return rep
}

// ---- Period report ----

// Count is a number of referrals (or discharges) with one value of a
// breakdown.
type Count struct {
	Key     string `json:"key"`
	Display string `json:"display,omitempty"`
	Count   int    `json:"count"`
}

// NoValue is the key of referrals without a value for a breakdown (no
// referring practice, no coded reason).
const NoValue = "(none)"

// counter counts keys and keeps a display per key.
type counter struct {
	n       map[string]int
	display map[string]string
}

func newCounter() *counter { return &counter{n: map[string]int{}, display: map[string]string{}} }

func (c *counter) add(key, display string) {
	c.n[key]++
	if display != "" && c.display[key] == "" {
		c.display[key] = display
	}
}

// counts returns the counts, most first, then by key; keys listed in
// always come even at 0.
func (c *counter) counts(always ...string) []Count {
	for _, k := range always {
		if _, ok := c.n[k]; !ok {
			c.n[k] = 0
		}
	}
	out := make([]Count, 0, len(c.n))
	for k, n := range c.n {
		out = append(out, Count{Key: k, Display: c.display[k], Count: n})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}

// PeriodReport is what happened in a period [From, To)
// (docs/reports.md#period-report).
type PeriodReport struct {
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	Referrals   ReferralFigures  `json:"referrals"`
	WaitingTime WaitingFigures   `json:"waitingTime"`
	Contacts    ContactFigures   `json:"contacts"`
	Discharges  DischargeFigures `json:"discharges"`
	Outcomes    []OutcomeFigures `json:"outcomes"`
	Scope       ReportScope      `json:"scope"`
}

// ReferralFigures are the referrals received in the period.
type ReferralFigures struct {
	Received int `json:"received"`
	// People counts the distinct people referred.
	People int `json:"people"`
	// Accepted counts those accepted before the period's end; Declined
	// those declined.
	Accepted int `json:"accepted"`
	Declined int `json:"declined"`
	// BySource is by referral source (every source listed); ByPractice by
	// the referring GP practice's ODS code (NoValue for referrals from
	// other sources); ByReason by coded reason (a referral with several
	// reasons counts under each; NoValue for none).
	BySource   []Count `json:"bySource"`
	ByPractice []Count `json:"byPractice"`
	ByReason   []Count `json:"byReason"`
}

// WaitingFigures are the waits from receipt of a referral to the first
// attended contact, for first contacts made in the period, in days.
type WaitingFigures struct {
	FirstContacts int     `json:"firstContacts"`
	MedianDays    float64 `json:"medianDays"`
	P90Days       float64 `json:"p90Days"`
	// StillWaiting counts referrals received and not ended before the
	// period's end, not declined, without an attended contact by then.
	StillWaiting int `json:"stillWaiting"`
}

// ContactFigures are the contacts dated in the period.
type ContactFigures struct {
	Attended int `json:"attended"`
	DNA      int `json:"dna"`
	// PeopleSeen counts the distinct people with an attended contact.
	PeopleSeen int `json:"peopleSeen"`
	// PerPerson is Attended / PeopleSeen.
	PerPerson float64 `json:"perPerson"`
	// DNARate is DNA / (Attended + DNA).
	DNARate float64 `json:"dnaRate"`
}

// DischargeFigures are the accepted referrals that ended in the period.
type DischargeFigures struct {
	Total int `json:"total"`
	// ByReason is by discharge reason (DischargeReasons); a referral that
	// failed or was cancelled without a coded reason counts under its
	// status.
	ByReason []Count `json:"byReason"`
	// MeanContacts is the mean of attended contacts per discharged
	// referral over its whole episode; UnderSixContacts and
	// OverTwelveContacts count those completed outside the 6–12 norm.
	MeanContacts       float64 `json:"meanContacts"`
	UnderSixContacts   int     `json:"underSixContacts"`
	OverTwelveContacts int     `json:"overTwelveContacts"`
}

// OutcomeFigures are the changes of one score from baseline, over the
// referrals with a baseline and a follow-up (review or final) taken in
// the period.
type OutcomeFigures struct {
	Instrument Instrument `json:"instrument"`
	// Item names the ONS4 item; "" for a whole-scale score.
	Item string `json:"item,omitempty"`
	// Score is what is compared: "metric" (SWEMWBS), "total" or "item".
	Score          string `json:"score"`
	HigherIsBetter bool   `json:"higherIsBetter"`
	Pairs          int    `json:"pairs"`
	// MeanBaseline, MeanFollowUp and MeanChange (follow-up − baseline) are
	// rounded to 2 places; Improved counts pairs that moved the better way,
	// ShareImproved is Improved / Pairs.
	MeanBaseline  float64 `json:"meanBaseline"`
	MeanFollowUp  float64 `json:"meanFollowUp"`
	MeanChange    float64 `json:"meanChange"`
	Improved      int     `json:"improved"`
	ShareImproved float64 `json:"shareImproved"`
}

// outcomeScores are the scores reports compare, in report order.
var outcomeScores = []struct {
	instrument Instrument
	item       int // ONS4 item index, -1 for a whole-scale score
	score      string
	higher     bool
}{
	{SWEMWBS, -1, "metric", true},
	{ONS4, 0, "item", true},
	{ONS4, 1, "item", true},
	{ONS4, 2, "item", true},
	{ONS4, 3, "item", false}, // anxious yesterday: higher is worse
	{WEMWBS, -1, "total", true},
	{UCLA3, -1, "total", false}, // higher is lonelier
}

// scoreOf is the value of one outcome score of a measure.
func scoreOf(m *Measure, item int, score string) float64 {
	switch score {
	case "metric":
		return m.Metric
	case "item":
		if item < len(m.Items) {
			return float64(m.Items[item])
		}
		return 0
	}
	return float64(m.Total)
}

// Period builds a PeriodReport from streamed referrals (Add), in memory
// bounded by the period.
type Period struct {
	rep                           *PeriodReport
	from, to                      time.Time
	referred, seen                map[string]bool
	source, practice, reason, dis *counter
	waits                         []float64
	dischargeContacts             int
	outcome                       []outcomeSum
}

// outcomeSum sums one outcome score's pairs.
type outcomeSum struct{ baseline, followUp float64 }

// NewPeriod starts the report of [from, to) in scope.
func NewPeriod(scope ReportScope, from, to time.Time) *Period {
	p := &Period{
		rep:  &PeriodReport{From: from.UTC(), To: to.UTC(), Scope: scope},
		from: from, to: to, referred: map[string]bool{}, seen: map[string]bool{},
		source: newCounter(), practice: newCounter(), reason: newCounter(), dis: newCounter(),
		outcome: make([]outcomeSum, len(outcomeScores)),
	}
	for _, s := range outcomeScores {
		o := OutcomeFigures{Instrument: s.instrument, Score: s.score, HigherIsBetter: s.higher}
		if s.item >= 0 {
			o.Item = ONS4Items[s.item]
		}
		p.rep.Outcomes = append(p.rep.Outcomes, o)
	}
	return p
}

// PeriodQuery is the store query of the period report of [from, to).
func PeriodQuery(scope ReportScope, from, to time.Time) ReportQuery {
	return ReportQuery{ReportScope: scope, From: from, To: to}
}

func (p *Period) in(t time.Time) bool { return !t.IsZero() && !t.Before(p.from) && t.Before(p.to) }

// Add counts a referral (from PeriodQuery).
func (p *Period) Add(r *ReportReferral) {
	r = r.live()
	rf := r.Referral
	rep := p.rep
	if p.in(rf.ReceivedAt) {
		rep.Referrals.Received++
		p.referred[rf.PersonID] = true
		if !rf.AcceptedAt.IsZero() && rf.AcceptedAt.Before(p.to) {
			rep.Referrals.Accepted++
		}
		if rf.Status == TaskRejected {
			rep.Referrals.Declined++
		}
		p.source.add(string(rf.Source), "")
		if rf.Source == SourceGPPractice && rf.ReferrerODS != "" {
			p.practice.add(rf.ReferrerODS, "")
		} else {
			p.practice.add(NoValue, "")
		}
		if len(rf.Reasons) == 0 {
			p.reason.add(NoValue, "")
		}
		for _, c := range rf.Reasons {
			key := c.Code
			if key == "" {
				key = c.Display
			}
			p.reason.add(key, c.Display)
		}
	}

	first := firstAttended(r)
	if p.in(first) {
		rep.WaitingTime.FirstContacts++
		p.waits = append(p.waits, max(0, first.Sub(rf.ReceivedAt).Hours()/24))
	}
	// Gone from the list of referrals waiting: ended, or declined.
	gone := endedAt(rf)
	if rf.Status == TaskRejected || rf.Status == TaskEnteredInError || rf.AcceptedAt.IsZero() && rf.Status.Terminal() {
		gone = rf.UpdatedAt
	}
	if rf.ReceivedAt.Before(p.to) && (gone.IsZero() || !gone.Before(p.to)) && (first.IsZero() || !first.Before(p.to)) {
		rep.WaitingTime.StillWaiting++
	}

	for _, c := range r.Contacts {
		if !p.in(c.At) {
			continue
		}
		if c.DNA() {
			rep.Contacts.DNA++
		} else {
			rep.Contacts.Attended++
			p.seen[rf.PersonID] = true
		}
	}

	if end := endedAt(rf); p.in(end) {
		d := &rep.Discharges
		d.Total++
		reason := rf.DischargeReason
		if reason == "" {
			reason = string(rf.Status)
		}
		p.dis.add(reason, "")
		n := attendedContacts(r, time.Time{})
		p.dischargeContacts += n
		if rf.Status == TaskCompleted && n < ContactsPerPersonLow {
			d.UnderSixContacts++
		}
		if rf.Status == TaskCompleted && n > ContactsPerPersonMax {
			d.OverTwelveContacts++
		}
	}

	p.addOutcomes(r)
}

// addOutcomes pairs, per instrument, the earliest baseline with the
// latest follow-up (review or final) taken in the period and not before
// the baseline.
func (p *Period) addOutcomes(r *ReportReferral) {
	type pair struct{ base, follow *Measure }
	pairs := map[Instrument]*pair{}
	for _, m := range r.Measures {
		pr := pairs[m.Instrument]
		if pr == nil {
			pr = &pair{}
			pairs[m.Instrument] = pr
		}
		if m.Timepoint == TimepointBaseline {
			if pr.base == nil || m.TakenAt.Before(pr.base.TakenAt) {
				pr.base = m
			}
		}
	}
	for _, m := range r.Measures {
		pr := pairs[m.Instrument]
		if m.Timepoint == TimepointBaseline || pr.base == nil || !p.in(m.TakenAt) || m.TakenAt.Before(pr.base.TakenAt) {
			continue
		}
		if pr.follow == nil || !m.TakenAt.Before(pr.follow.TakenAt) {
			pr.follow = m
		}
	}
	for i, s := range outcomeScores {
		pr := pairs[s.instrument]
		if pr == nil || pr.base == nil || pr.follow == nil {
			continue
		}
		b, f := scoreOf(pr.base, s.item, s.score), scoreOf(pr.follow, s.item, s.score)
		o := &p.rep.Outcomes[i]
		o.Pairs++
		p.outcome[i].baseline += b
		p.outcome[i].followUp += f
		if s.higher && f > b || !s.higher && f < b {
			o.Improved++
		}
	}
}

// Report returns the period report.
func (p *Period) Report() *PeriodReport {
	rep := p.rep
	rep.Referrals.People = len(p.referred)
	sources := make([]string, len(ReferralSources))
	for i, s := range ReferralSources {
		sources[i] = string(s)
	}
	rep.Referrals.BySource = p.source.counts(sources...)
	rep.Referrals.ByPractice = p.practice.counts()
	rep.Referrals.ByReason = p.reason.counts()

	slices.Sort(p.waits)
	rep.WaitingTime.MedianDays = round(Percentile(p.waits, 0.5), 1)
	rep.WaitingTime.P90Days = round(Percentile(p.waits, 0.9), 1)

	c := &rep.Contacts
	c.PeopleSeen = len(p.seen)
	c.PerPerson = ratio(c.Attended, c.PeopleSeen, 2)
	c.DNARate = ratio(c.DNA, c.Attended+c.DNA, 3)

	rep.Discharges.ByReason = p.dis.counts()
	rep.Discharges.MeanContacts = ratio(p.dischargeContacts, rep.Discharges.Total, 2)

	for i := range rep.Outcomes {
		o := &rep.Outcomes[i]
		if o.Pairs == 0 {
			continue
		}
		n := float64(o.Pairs)
		o.MeanBaseline = round(p.outcome[i].baseline/n, 2)
		o.MeanFollowUp = round(p.outcome[i].followUp/n, 2)
		o.MeanChange = round((p.outcome[i].followUp-p.outcome[i].baseline)/n, 2)
		o.ShareImproved = ratio(o.Improved, o.Pairs, 3)
	}
	return rep
}

// ReportScopeFor limits the scope a caller asked for to its own referrals
// (docs/reports.md#who-sees-what): a service reports on the referrals
// addressed to it, a GP practice on those it made, an MDT viewer (a
// primary care network) on its practices'. Naming another organisation is
// EFORBIDDEN, not an empty report; administrators report on nothing.
func (p *Principal) ReportScopeFor(asked ReportScope) (ReportScope, error) {
	other := func(what string) error {
		return Errorf(EFORBIDDEN, "%s reports only on its own referrals: %s is another organisation's", p.ODS, what)
	}
	switch p.Role {
	case RoleService:
		if asked.ServiceODS != "" && asked.ServiceODS != p.ODS {
			return asked, other("service " + asked.ServiceODS)
		}
		asked.ServiceODS = p.ODS
	case RoleGP:
		for _, ods := range asked.ReferrerODS {
			if ods != p.ODS {
				return asked, other("practice " + ods)
			}
		}
		asked.ReferrerODS = []string{p.ODS}
	case RoleMDT:
		for _, ods := range asked.ReferrerODS {
			if !slices.Contains(p.Practices, ods) {
				return asked, other("practice " + ods)
			}
		}
		if len(asked.ReferrerODS) == 0 {
			asked.ReferrerODS = p.Practices
		}
		if len(asked.ReferrerODS) == 0 {
			return asked, Errorf(EFORBIDDEN, "this viewer has no practices to report on")
		}
	default:
		return asked, Errorf(EFORBIDDEN, "this client may not read reports")
	}
	return asked, nil
}

// ParseReportPeriod reads a report period from two dates, both inclusive,
// each a year (2025), a month (2025-04) or a day (2025-04-01), in UTC:
// from=2025-04 to=2026-03 is the financial year 2025/26, [2025-04-01,
// 2026-04-01). EINVALID names the parameter that is missing or malformed,
// or "to" when it ends before from starts.
func ParseReportPeriod(from, to string) (time.Time, time.Time, error) {
	parse := func(name, v string) (start, end time.Time, err error) {
		for _, l := range []struct {
			layout string
			y, m   int
			d      int
		}{{"2006", 1, 0, 0}, {"2006-01", 0, 1, 0}, {"2006-01-02", 0, 0, 1}} {
			if len(v) == len(l.layout) {
				if t, err := time.Parse(l.layout, v); err == nil {
					return t, t.AddDate(l.y, l.m, l.d), nil
				}
			}
		}
		return start, end, Errorf(EINVALID, "%s must be a date: YYYY, YYYY-MM or YYYY-MM-DD", name).At(name)
	}
	start, _, err := parse("from", from)
	if err != nil {
		return start, start, err
	}
	_, end, err := parse("to", to)
	if err != nil {
		return start, end, err
	}
	if !start.Before(end) {
		return start, end, Errorf(EINVALID, "the period ends before it starts").At("to")
	}
	return start, end, nil
}
