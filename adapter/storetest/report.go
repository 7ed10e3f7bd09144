package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// RunReports runs the reports suite: CaseStore.ReportReferrals over a
// seeded data set with hand-computed figures (docs/reports.md), so that
// every backend gives the same caseload and period report, and its keyset
// paging. open must return a new, empty store and close it when the test
// ends.
func RunReports(t *testing.T, open func(t *testing.T) CaseStore) {
	t.Run("SeededFigures", func(t *testing.T) { t.Parallel(); testReportFigures(t, open) })
	t.Run("Paging", func(t *testing.T) { t.Parallel(); testReportPaging(t, open) })
}

// The seeded data set's period is the quarter [1 April, 1 July 2025); day
// n is 10:00 on the n-th day after 1 April.
var (
	repFrom = time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	repTo   = time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	repNow  = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
)

func day(n int) time.Time { return time.Date(2025, 4, 1, 10, 0, 0, 0, time.UTC).AddDate(0, 0, n) }

func at(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, time.UTC) }

var (
	lonely   = linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: "267076002", Display: "Feeling lonely"}
	isolated = linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: "422650009", Display: "Social isolation"}
	lwA      = linkbridge.LinkWorker{ID: "lw-a", Name: "Link Worker A"}
	lwB      = linkbridge.LinkWorker{ID: "lw-b", Name: "Link Worker B"}
)

// seeder builds referrals through the store with the domain's own rules
// (Referral.Apply, CaseRecord.AddContact, AddMeasure, SetPlan), one
// versioned change per step, as the casework service applies them.
type seeder struct {
	t      *testing.T
	s      CaseStore
	nhs    func() string
	people map[string]*linkbridge.Person
	n      int
}

// refer stores a referral received at received: by practice (a GP
// practice's ODS code, a pharmacy's, or "" for a self-referral) to
// service, for person (created on first use).
func (sd *seeder) refer(name, person, referrer, service string, received time.Time, reasons ...linkbridge.Coding) string {
	sd.t.Helper()
	in := newIntake(name, sd.nhs())
	r := in.Referral
	if p := sd.people[person]; p != nil {
		in.Person, in.NewPerson = p, false
		in.Resources = in.Resources[1:]
		r.PersonID, r.PatientID = p.ID, p.ID
	} else {
		in.Person.ID, r.PersonID, r.PatientID = person, person, person
		in.Resources[0] = patientResource(in.Person)
		sd.people[person] = in.Person
	}
	r.ReferrerODS, r.ServiceODS, r.Reasons = referrer, service, reasons
	r.Source = linkbridge.SourceOfODS(referrer)
	if referrer == "" {
		r.Source = linkbridge.SourceSelf
	}
	r.AuthoredOn, r.ReceivedAt, r.UpdatedAt = received.Add(-time.Hour), received, received
	mustCreate(sd.t, sd.s, in)
	return r.ID
}

// change applies one domain edit to a stored case record at time at.
func (sd *seeder) change(id string, at time.Time, edit func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error) {
	sd.t.Helper()
	cr := mustCaseRecord(sd.t, sd.s, id)
	next := *cr.Referral
	cr.Referral = &next
	ch := &linkbridge.ReferralChange{Referral: &next}
	if err := edit(cr, ch); err != nil {
		sd.t.Fatalf("seeding %s at %s: %v", id, at, err)
	}
	next.Version++
	next.UpdatedAt = at
	mustUpdate(sd.t, sd.s, ch)
}

func (sd *seeder) act(id string, at time.Time, cmd linkbridge.LifecycleCommand) {
	sd.t.Helper()
	sd.change(id, at, func(cr *linkbridge.CaseRecord, _ *linkbridge.ReferralChange) error {
		return cr.Referral.Apply(&cmd, at)
	})
}

func (sd *seeder) accept(id string, at time.Time, lw linkbridge.LinkWorker) {
	sd.t.Helper()
	sd.act(id, at, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw})
}

// contact records a contact at each of times, attended or not (a DNA).
func (sd *seeder) contact(id string, attended bool, times ...time.Time) {
	sd.t.Helper()
	for _, at := range times {
		sd.n++
		c := &linkbridge.Contact{ID: fmt.Sprintf("ct-%d", sd.n), At: at, Mode: linkbridge.ContactPhone, Attended: attended}
		if attended {
			c.Minutes = 30
		}
		sd.change(id, at, func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
			ch.Contacts = append(ch.Contacts, c)
			return cr.AddContact(c, at)
		})
	}
}

func (sd *seeder) measure(id string, recorded, taken time.Time, inst linkbridge.Instrument, tp linkbridge.Timepoint, items ...int) {
	sd.t.Helper()
	sd.n++
	m := &linkbridge.Measure{ID: fmt.Sprintf("m-%d", sd.n), Instrument: inst, Timepoint: tp, Items: items, TakenAt: taken}
	sd.change(id, recorded, func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
		ch.Measures = append(ch.Measures, m)
		return cr.AddMeasure(m, recorded)
	})
}

func weeklyFrom(start time.Time, n, every int) []time.Time {
	var out []time.Time
	for i := 0; i < n; i++ {
		out = append(out, start.AddDate(0, 0, i*every))
	}
	return out
}

// Reports' seeded quarter: [ReportFrom, ReportTo), the caseload at
// ReportNow (docs/reports.md#the-seeded-data-set).
var (
	ReportFrom = repFrom
	ReportTo   = repTo
	ReportNow  = repNow
)

// SeedReports stores the data set of docs/reports.md#the-seeded-data-set
// in an empty store: twelve referrals, eleven to service RAT01, worked by
// lw-a and lw-b. WantPeriod and WantCaseload are its figures.
func SeedReports(t *testing.T, s CaseStore) {
	sd := &seeder{t: t, s: s, nhs: nhsNumbers(), people: map[string]*linkbridge.Person{}}
	const svc, other = "RAT01", "OTHER1"
	complete := func(code string) linkbridge.LifecycleCommand {
		return linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: code}
	}
	swemwbs := func(v ...int) []int { return v }

	// r01: p1 from A81001, seen 7 times (one DNA), discharged goals met.
	r01 := sd.refer("r01", "p1", "A81001", svc, day(0), lonely)
	sd.accept(r01, day(1), lwA)
	sd.contact(r01, true, day(3))
	sd.measure(r01, day(3), day(3), linkbridge.SWEMWBS, linkbridge.TimepointBaseline, swemwbs(2, 2, 2, 2, 2, 2, 2)...) // raw 14: 15.32
	sd.measure(r01, day(3), day(3), linkbridge.ONS4, linkbridge.TimepointBaseline, 4, 5, 3, 8)
	sd.contact(r01, true, day(10), day(17))
	sd.contact(r01, false, day(24))
	sd.contact(r01, true, day(31), day(38), day(45), day(52))
	sd.measure(r01, day(52), day(52), linkbridge.SWEMWBS, linkbridge.TimepointFinal, swemwbs(3, 3, 3, 3, 3, 3, 3)...) // raw 21: 19.25
	sd.measure(r01, day(52), day(52), linkbridge.ONS4, linkbridge.TimepointFinal, 7, 7, 6, 4)
	sd.act(r01, day(60), complete("goals-met"))

	// r02: p2 from A81001, two reasons, a DNA before the first contact,
	// worse at review, review date passed.
	r02 := sd.refer("r02", "p2", "A81001", svc, day(5), isolated, lonely)
	sd.accept(r02, day(6), lwA)
	sd.contact(r02, false, day(8))
	sd.contact(r02, true, day(12))
	sd.measure(r02, day(12), day(12), linkbridge.SWEMWBS, linkbridge.TimepointBaseline, swemwbs(3, 3, 3, 3, 3, 3, 2)...) // raw 20: 18.59
	sd.change(r02, day(12), func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
		err := cr.SetPlan(linkbridge.Plan{ReviewDate: "2025-06-20"}, day(12), func() string { sd.n++; return fmt.Sprintf("pl-%d", sd.n) })
		ch.Plan = &cr.Plan
		return err
	})
	sd.contact(r02, true, day(20))
	sd.measure(r02, day(20), day(20), linkbridge.SWEMWBS, linkbridge.TimepointReview, swemwbs(3, 3, 3, 3, 2, 2, 2)...) // raw 18: 17.43

	// r03: p3 from a pharmacy, no reason, accepted and waiting.
	r03 := sd.refer("r03", "p3", "FAB12", svc, day(10))
	sd.accept(r03, day(11), lwB)

	// r04: p4's self-referral, declined.
	r04 := sd.refer("r04", "p4", "", svc, day(20), lonely)
	sd.act(r04, day(21), linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "person-declined"})

	// r05: p1 again, from A81002: seen once, then on hold.
	r05 := sd.refer("r05", "p1", "A81002", svc, day(70), lonely)
	sd.accept(r05, day(71), lwA)
	sd.contact(r05, true, day(85))
	sd.act(r05, day(86), linkbridge.LifecycleCommand{Action: linkbridge.ActionHold, Reason: "In hospital"})

	// r06: p5 from A81002, since January: 12 contacts before the quarter,
	// one in it and a DNA; over 12, open over three months.
	r06 := sd.refer("r06", "p5", "A81002", svc, at(2025, 1, 10), isolated)
	sd.accept(r06, at(2025, 1, 11), lwB)
	sd.contact(r06, true, weeklyFrom(at(2025, 1, 20), 12, 6)...)
	sd.contact(r06, true, day(2))
	sd.contact(r06, false, day(9))

	// r07: p6 from A81001, seen once, referred on.
	r07 := sd.refer("r07", "p6", "A81001", svc, day(30), isolated)
	sd.accept(r07, day(31), lwB)
	sd.contact(r07, true, day(40))
	sd.act(r07, day(50), complete("referred-on"))

	// r08: another service's referral: never counted.
	r08 := sd.refer("r08", "p7", "A81001", other, day(40), lonely)
	sd.accept(r08, day(41), linkbridge.LinkWorker{ID: "lw-c"})
	sd.contact(r08, true, day(42))

	// r09: received after the quarter, not yet accepted.
	sd.refer("r09", "p8", "A81001", svc, day(100), lonely)

	// r10: p9 from A81002, worked and discharged in late 2024.
	r10 := sd.refer("r10", "p9", "A81002", svc, at(2024, 11, 1), lonely)
	sd.accept(r10, at(2024, 11, 2), lwA)
	sd.contact(r10, true, at(2024, 11, 10), at(2024, 11, 20))
	sd.act(r10, at(2024, 12, 20), complete("goals-met"))

	// r11: entered in error by its referrer: never counted.
	r11 := sd.refer("r11", "p10", "A81001", svc, day(15), lonely)
	sd.change(r11, day(16), func(cr *linkbridge.CaseRecord, _ *linkbridge.ReferralChange) error {
		cr.Referral.Status = linkbridge.TaskEnteredInError
		return nil
	})

	// r12: p11 from A81001, discharged in March; its final SWEMWBS was
	// taken and recorded in the quarter, after the discharge: only the
	// measure's date brings it into the quarter. (A measure cannot be
	// recorded before it is taken: a time in the future is refused.)
	r12 := sd.refer("r12", "p11", "A81001", svc, at(2025, 2, 1), lonely)
	sd.accept(r12, at(2025, 2, 2), lwB)
	sd.contact(r12, true, at(2025, 2, 10))
	sd.measure(r12, at(2025, 2, 10), at(2025, 2, 10), linkbridge.SWEMWBS, linkbridge.TimepointBaseline, swemwbs(2, 2, 2, 2, 2, 2, 2)...) // 15.32
	sd.act(r12, at(2025, 3, 1), complete("goals-met"))
	sd.measure(r12, day(3), day(2), linkbridge.SWEMWBS, linkbridge.TimepointFinal, swemwbs(4, 4, 4, 4, 4, 4, 4)...) // raw 28: 25.03
}

// streamReport runs ReportReferrals and returns the ids it streamed, in
// order, feeding every referral to add.
func streamReport(t *testing.T, s CaseStore, q linkbridge.ReportQuery, add func(*linkbridge.ReportReferral)) []string {
	t.Helper()
	var ids []string
	err := s.ReportReferrals(context.Background(), q, func(page []*linkbridge.ReportReferral) error {
		for _, r := range page {
			ids = append(ids, r.Referral.ID)
			add(r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReportReferrals returned unexpected error: %v", err)
	}
	return ids
}

func testReportFigures(t *testing.T, open func(t *testing.T) CaseStore) {
	s := open(t)
	SeedReports(t, s)
	svc := linkbridge.ReportScope{ServiceODS: "RAT01"}

	t.Run("Period", func(t *testing.T) {
		p := linkbridge.NewPeriod(svc, repFrom, repTo)
		ids := streamReport(t, s, linkbridge.PeriodQuery(svc, repFrom, repTo), p.Add)
		// Oldest received first; r08 (another service), r09 (after the
		// quarter), r10 (closed before it) and r11 (entered in error) are
		// not read.
		if diff := cmp.Diff([]string{"sr-r06", "sr-r12", "sr-r01", "sr-r02", "sr-r03", "sr-r04", "sr-r07", "sr-r05"}, ids); diff != "" {
			t.Errorf("streamed referrals (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(WantPeriod(svc), p.Report()); diff != "" {
			t.Errorf("period report (-want +got):\n%s", diff)
		}
	})

	t.Run("PeriodOfPractice", func(t *testing.T) {
		scope := linkbridge.ReportScope{ReferrerODS: []string{"A81002"}}
		p := linkbridge.NewPeriod(scope, repFrom, repTo)
		ids := streamReport(t, s, linkbridge.PeriodQuery(scope, repFrom, repTo), p.Add)
		if diff := cmp.Diff([]string{"sr-r06", "sr-r05"}, ids); diff != "" {
			t.Errorf("streamed referrals (-want +got):\n%s", diff)
		}
		rep := p.Report()
		if rep.Referrals.Received != 1 || rep.Contacts.Attended != 2 || rep.Contacts.DNA != 1 || rep.WaitingTime.FirstContacts != 1 || rep.WaitingTime.MedianDays != 15 {
			t.Errorf("A81002's quarter = %+v %+v %+v, want 1 received, 2 attended, 1 DNA, one first contact after 15 days", rep.Referrals, rep.Contacts, rep.WaitingTime)
		}
	})

	t.Run("Caseload", func(t *testing.T) {
		c := linkbridge.NewCaseload(repNow)
		streamReport(t, s, linkbridge.CaseloadQuery(svc, repNow), c.Add)
		if diff := cmp.Diff(WantCaseload(), c.Report()); diff != "" {
			t.Errorf("caseload (-want +got):\n%s", diff)
		}
	})

	// NoMeasures streams the same referrals, review dates and contacts,
	// without measures: from a date (r12 still comes in by its measure's
	// date) and without one.
	t.Run("NoMeasures", func(t *testing.T) {
		for _, q := range []linkbridge.ReportQuery{linkbridge.PeriodQuery(svc, repFrom, repTo), {ReportScope: svc}} {
			var want, got []*linkbridge.ReportReferral
			measures := 0
			streamReport(t, s, q, func(r *linkbridge.ReportReferral) {
				measures += len(r.Measures)
				r.Measures = nil
				want = append(want, r)
			})
			if measures == 0 {
				t.Fatalf("query %+v streamed no measures to leave out", q)
			}
			q.NoMeasures = true
			streamReport(t, s, q, func(r *linkbridge.ReportReferral) { got = append(got, r) })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("from %s, with NoMeasures (-want +got):\n%s", q.From, diff)
			}
		}
	})

	t.Run("LinkWorker", func(t *testing.T) {
		scope := linkbridge.ReportScope{ServiceODS: "RAT01", LinkWorkerID: "lw-b"}
		c := linkbridge.NewCaseload(repNow)
		streamReport(t, s, linkbridge.CaseloadQuery(scope, repNow), c.Add)
		rep := c.Report()
		want := WantCaseload().Rows[1]
		if len(rep.Rows) != 1 || !cmp.Equal(rep.Rows[0], want) {
			t.Errorf("lw-b's caseload = %+v, want only %+v", rep.Rows, want)
		}
	})
}

// WantPeriod is the seeded quarter's report of service RAT01, computed by
// hand (docs/reports.md#the-seeded-data-set), with scope as given.
func WantPeriod(scope linkbridge.ReportScope) *linkbridge.PeriodReport {
	ons := func(item string, higher bool, b, f, change float64) linkbridge.OutcomeFigures {
		return linkbridge.OutcomeFigures{Instrument: linkbridge.ONS4, Item: item, Score: "item", HigherIsBetter: higher,
			Pairs: 1, MeanBaseline: b, MeanFollowUp: f, MeanChange: change, Improved: 1, ShareImproved: 1}
	}
	return &linkbridge.PeriodReport{
		From: repFrom, To: repTo, Scope: scope,
		Referrals: linkbridge.ReferralFigures{
			Received: 6, People: 5, Accepted: 5, Declined: 1,
			BySource: []linkbridge.Count{{Key: "gp-practice", Count: 4}, {Key: "pharmacy", Count: 1}, {Key: "self-referral", Count: 1},
				{Key: "other-statutory"}, {Key: "voluntary-sector"}},
			ByPractice: []linkbridge.Count{{Key: "A81001", Count: 3}, {Key: linkbridge.NoValue, Count: 2}, {Key: "A81002", Count: 1}},
			ByReason: []linkbridge.Count{{Key: "267076002", Display: "Feeling lonely", Count: 4}, {Key: "422650009", Display: "Social isolation", Count: 2},
				{Key: linkbridge.NoValue, Count: 1}},
		},
		// Waits of 3, 7, 10 and 15 days.
		WaitingTime: linkbridge.WaitingFigures{FirstContacts: 4, MedianDays: 8.5, P90Days: 13.5, StillWaiting: 1},
		Contacts:    linkbridge.ContactFigures{Attended: 12, DNA: 3, PeopleSeen: 4, PerPerson: 3, DNARate: 0.2},
		Discharges: linkbridge.DischargeFigures{Total: 2, ByReason: []linkbridge.Count{{Key: "goals-met", Count: 1}, {Key: "referred-on", Count: 1}},
			MeanContacts: 4, UnderSixContacts: 1},
		Outcomes: []linkbridge.OutcomeFigures{
			// r01 15.32 → 19.25, r02 18.59 → 17.43, r12 15.32 → 25.03.
			{Instrument: linkbridge.SWEMWBS, Score: "metric", HigherIsBetter: true, Pairs: 3, MeanBaseline: 16.41, MeanFollowUp: 20.57,
				MeanChange: 4.16, Improved: 2, ShareImproved: 0.667},
			ons("life-satisfaction", true, 4, 7, 3),
			ons("worthwhile", true, 5, 7, 2),
			ons("happy-yesterday", true, 3, 6, 3),
			ons("anxious-yesterday", false, 8, 4, -4),
			{Instrument: linkbridge.WEMWBS, Score: "total", HigherIsBetter: true},
			{Instrument: linkbridge.UCLA3, Score: "total"},
		},
	}
}

// WantCaseload is service RAT01's caseload at ReportNow (1 July 2025,
// noon), computed by hand.
func WantCaseload() *linkbridge.CaseloadReport {
	check := func(ids ...string) linkbridge.CaseloadCheck {
		if ids == nil {
			ids = []string{}
		}
		return linkbridge.CaseloadCheck{Count: len(ids), Referrals: ids}
	}
	return &linkbridge.CaseloadReport{
		AsOf: repNow, Norms: linkbridge.Norms,
		Total: &linkbridge.CaseloadRow{
			Open: 4, Active: 2, OnHold: 1, WaitingFirstContact: 1, TakenOnLast12Months: 7, UnderYearNorm: true, AverageContacts: 3.86,
			FewContactsAtDischarge: check("sr-r07", "sr-r10", "sr-r12"), OverContactNorm: check("sr-r06"),
			OpenOverThreeMonths: check("sr-r06"), ReviewOverdue: check("sr-r02"),
		},
		Rows: []*linkbridge.CaseloadRow{
			// p2 active, p1 on hold (r05; r01 ended); p1, p2, p9 taken on
			// with 7+2+1+2 contacts.
			{LinkWorker: lwA, Open: 2, Active: 1, OnHold: 1, TakenOnLast12Months: 3, UnderYearNorm: true, AverageContacts: 4,
				FewContactsAtDischarge: check("sr-r10"), OverContactNorm: check(), OpenOverThreeMonths: check(), ReviewOverdue: check("sr-r02")},
			// p5 active, p3 waiting; p3, p5, p6, p11 taken on with 0+13+1+1.
			{LinkWorker: lwB, Open: 2, Active: 1, WaitingFirstContact: 1, TakenOnLast12Months: 4, UnderYearNorm: true, AverageContacts: 3.75,
				FewContactsAtDischarge: check("sr-r07", "sr-r12"), OverContactNorm: check("sr-r06"), OpenOverThreeMonths: check("sr-r06"), ReviewOverdue: check()},
		},
	}
}

// testReportPaging: more referrals than two pages, many received at the
// same instant, are each streamed once, in (received, id) order, in pages
// of at most ReportPageSize; an error from fn stops the stream.
func testReportPaging(t *testing.T, open func(t *testing.T) CaseStore) {
	s := open(t)
	nhs := nhsNumbers()
	n := 2*linkbridge.ReportPageSize + 101
	t1, t2 := day(1), day(2)
	want := make([]string, 0, n)
	for i := 0; i < n; i++ {
		in := newIntake(fmt.Sprintf("pg%04d", i), nhs())
		// The first 600 at t1, the rest at t2: a page boundary falls inside
		// a run of equal times.
		recv := t1
		if i >= 600 {
			recv = t2
		}
		in.Referral.ReceivedAt, in.Referral.UpdatedAt = recv, recv
		mustCreate(t, s, in)
		want = append(want, in.Referral.ID)
	}
	var got []string
	pages := 0
	q := linkbridge.ReportQuery{ReportScope: linkbridge.ReportScope{ServiceODS: "RAT01"}, From: repFrom, To: repTo}
	err := s.ReportReferrals(context.Background(), q, func(page []*linkbridge.ReportReferral) error {
		pages++
		if len(page) > linkbridge.ReportPageSize {
			t.Errorf("page %d has %d referrals, more than %d", pages, len(page), linkbridge.ReportPageSize)
		}
		for _, r := range page {
			got = append(got, r.Referral.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ReportReferrals returned unexpected error: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("streamed referrals (-want +got):\n%s", diff)
	}
	if pages != 3 {
		t.Errorf("%d referrals came in %d pages, want 3", n, pages)
	}

	t.Run("StopOnError", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := s.ReportReferrals(context.Background(), q, func([]*linkbridge.ReportReferral) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("ReportReferrals = %v after %d calls, want fn's error after 1", err, calls)
		}
	})
}

// SeedReportLoad stores n referrals to service RAT01 for a benchmark, one
// change each after its intake: received over the year before now, each
// accepted by one of ten link workers the next day, with eight contacts
// (one a DNA) and a SWEMWBS baseline and review; two in three discharged.
// A person is referred twice in every hundred referrals.
func SeedReportLoad(tb testing.TB, s CaseStore, n int, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	nhs := nhsNumbers()
	var people []*linkbridge.Person
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("load%06d", i)
		received := now.Add(-time.Duration(n-i) * (365 * 24 * time.Hour / time.Duration(n+1)))
		in := newIntake(name, nhs())
		if i%100 == 99 && len(people) > 0 {
			p := people[len(people)-1]
			in.Person, in.NewPerson, in.Resources = p, false, in.Resources[1:]
			in.Referral.PersonID, in.Referral.PatientID = p.ID, p.ID
		} else {
			people = append(people, in.Person)
		}
		in.MessageID = ""
		r := in.Referral
		r.ReceivedAt, r.UpdatedAt, r.Source = received, received, linkbridge.SourceOfODS(r.ReferrerODS)
		if err := s.CreateReferral(ctx, in); err != nil {
			tb.Fatalf("CreateReferral(%s): %v", r.ID, err)
		}
		cr := &linkbridge.CaseRecord{Referral: r}
		next := *r
		cr.Referral = &next
		ch := &linkbridge.ReferralChange{Referral: &next}
		t := received.Add(24 * time.Hour)
		lw := linkbridge.LinkWorker{ID: fmt.Sprintf("lw-%d", i%10)}
		steps := []error{next.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw}, t)}
		for k := 0; k < 8; k++ {
			c := &linkbridge.Contact{ID: fmt.Sprintf("%s-c%d", name, k), At: t.Add(time.Duration(k+1) * 7 * 24 * time.Hour), Mode: linkbridge.ContactPhone, Attended: k != 3}
			if c.Attended {
				c.Minutes = 30
			}
			steps = append(steps, cr.AddContact(c, t))
			ch.Contacts = append(ch.Contacts, c)
		}
		for k, tp := range []linkbridge.Timepoint{linkbridge.TimepointBaseline, linkbridge.TimepointReview} {
			m := &linkbridge.Measure{ID: fmt.Sprintf("%s-m%d", name, k), Instrument: linkbridge.SWEMWBS, Timepoint: tp,
				Items: []int{2 + k, 3, 3, 2, 3, 3, 2 + i%3}, TakenAt: t.Add(time.Duration(k*6+1) * 7 * 24 * time.Hour)}
			steps = append(steps, cr.AddMeasure(m, t))
			ch.Measures = append(ch.Measures, m)
		}
		if i%3 != 0 {
			steps = append(steps, next.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: linkbridge.DischargeReasons[i%len(linkbridge.DischargeReasons)]}, t.Add(60*24*time.Hour)))
		}
		if err := errors.Join(steps...); err != nil {
			tb.Fatalf("seeding %s: %v", r.ID, err)
		}
		next.Version++
		next.UpdatedAt = t
		if err := s.UpdateReferral(ctx, ch); err != nil {
			tb.Fatalf("UpdateReferral(%s): %v", r.ID, err)
		}
	}
}

// BenchReport times the period report (a year, a quarter) and the
// caseload over a service of n referrals seeded by SeedReportLoad (n×8
// contacts, n×2 measures); referrals/op is how many the store streamed.
func BenchReport(b *testing.B, s CaseStore, n int) {
	ctx := context.Background()
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	SeedReportLoad(b, s, n, now)
	scope := linkbridge.ReportScope{ServiceODS: "RAT01"}
	run := func(b *testing.B, q linkbridge.ReportQuery, add func(*linkbridge.ReportReferral)) {
		streamed := 0
		for b.Loop() {
			streamed = 0
			err := s.ReportReferrals(ctx, q, func(page []*linkbridge.ReportReferral) error {
				for _, r := range page {
					add(r)
				}
				streamed += len(page)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(streamed), "referrals/op")
	}
	b.Run("PeriodYear", func(b *testing.B) {
		p := linkbridge.NewPeriod(scope, now.AddDate(-1, 0, 0), now)
		run(b, linkbridge.PeriodQuery(scope, now.AddDate(-1, 0, 0), now), p.Add)
	})
	b.Run("PeriodQuarter", func(b *testing.B) {
		p := linkbridge.NewPeriod(scope, now.AddDate(0, -3, 0), now)
		run(b, linkbridge.PeriodQuery(scope, now.AddDate(0, -3, 0), now), p.Add)
	})
	b.Run("Caseload", func(b *testing.B) {
		c := linkbridge.NewCaseload(now)
		run(b, linkbridge.CaseloadQuery(scope, now), c.Add)
	})
}
