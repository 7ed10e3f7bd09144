package linkbridge_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// TestPercentile: linear interpolation between the closest ranks, as
// PostgreSQL's percentile_cont computes it.
func TestPercentile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		values []float64
		p      float64
		want   float64
	}{
		{nil, 0.5, 0},
		{[]float64{7}, 0.9, 7},
		{[]float64{1, 2, 3, 4}, 0.5, 2.5},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9.1},
		{[]float64{0, 10}, 0.9, 9},
		{[]float64{2, 4, 4, 8}, 1, 8},
		{[]float64{2, 4, 4, 8}, 0, 2},
	} {
		if got := linkbridge.Percentile(tc.values, tc.p); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.values, tc.p, got, tc.want)
		}
	}
}

// TestCaseloadPeople: a caseload counts people, not referrals, each in
// their most advanced open state, and flags referrals by the per-person
// checks.
func TestCaseloadPeople(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a := linkbridge.LinkWorker{ID: "lw-a"}
	b := linkbridge.LinkWorker{ID: "lw-b"}
	contacts := func(n int) []*linkbridge.Contact {
		var out []*linkbridge.Contact
		for i := 0; i < n; i++ {
			out = append(out, &linkbridge.Contact{At: now.AddDate(0, 0, -i-1), Attended: true})
		}
		// A DNA never counts as a contact.
		return append(out, &linkbridge.Contact{At: now.AddDate(0, 0, -1)})
	}
	rr := func(id, person string, lw linkbridge.LinkWorker, st linkbridge.TaskStatus, accepted time.Time, n int) *linkbridge.ReportReferral {
		rf := &linkbridge.Referral{ID: id, PersonID: person, LinkWorker: lw, Status: st, AcceptedAt: accepted}
		if st.Terminal() {
			rf.CompletedAt = now.AddDate(0, 0, -2)
		}
		return &linkbridge.ReportReferral{Referral: rf, Contacts: contacts(n)}
	}
	refs := []*linkbridge.ReportReferral{
		// p1 twice with lw-a: in progress and waiting; counts once, active.
		rr("r1", "p1", a, linkbridge.TaskInProgress, now.AddDate(0, -1, 0), 13),
		rr("r2", "p1", a, linkbridge.TaskAccepted, now.AddDate(0, 0, -5), 0),
		// p2: on hold since four months, review overdue.
		rr("r3", "p2", a, linkbridge.TaskOnHold, now.AddDate(0, -4, 0), 2),
		// p3: discharged with 5 contacts.
		rr("r4", "p3", a, linkbridge.TaskCompleted, now.AddDate(0, -6, 0), 5),
		// p4: taken on two years ago, still waiting.
		rr("r5", "p4", b, linkbridge.TaskAccepted, now.AddDate(-2, 0, 0), 0),
		// Not taken on: counts nowhere.
		{Referral: &linkbridge.Referral{ID: "r6", PersonID: "p5", Status: linkbridge.TaskRequested}},
	}
	refs[2].ReviewDate = "2026-02-28"
	refs[1].ReviewDate = "2026-03-01" // today: not overdue
	c := linkbridge.NewCaseload(now)
	for _, r := range refs {
		c.Add(r)
	}
	rep := c.Report()
	none := linkbridge.CaseloadCheck{Referrals: []string{}}
	check := func(ids ...string) linkbridge.CaseloadCheck {
		return linkbridge.CaseloadCheck{Count: len(ids), Referrals: ids}
	}
	wantA := &linkbridge.CaseloadRow{
		LinkWorker: a, Open: 2, Active: 1, OnHold: 1, TakenOnLast12Months: 3, UnderYearNorm: true,
		AverageContacts: 6.67, FewContactsAtDischarge: check("r4"), OverContactNorm: check("r1"),
		OpenOverThreeMonths: check("r3"), ReviewOverdue: check("r3"),
	}
	wantB := &linkbridge.CaseloadRow{
		LinkWorker: b, Open: 1, WaitingFirstContact: 1, UnderYearNorm: true,
		FewContactsAtDischarge: none, OverContactNorm: none, OpenOverThreeMonths: check("r5"), ReviewOverdue: none,
	}
	for i, want := range []*linkbridge.CaseloadRow{wantA, wantB} {
		if i >= len(rep.Rows) || !reflect.DeepEqual(rep.Rows[i], want) {
			t.Errorf("caseload rows = %+v, want row %d %+v", rep.Rows, i, want)
		}
	}
	if len(rep.Rows) != 2 {
		t.Errorf("caseload has %d rows, want lw-a and lw-b", len(rep.Rows))
	}
	if rep.Total.Open != 3 || rep.Total.TakenOnLast12Months != 3 || rep.Total.OpenOverThreeMonths.Count != 2 {
		t.Errorf("total = %+v, want 3 open, 3 taken on, 2 open over three months", rep.Total)
	}

	t.Run("OverYearNorm", func(t *testing.T) {
		c := linkbridge.NewCaseload(now)
		for i := 0; i <= linkbridge.CaseloadYearHigh; i++ {
			c.Add(&linkbridge.ReportReferral{Referral: &linkbridge.Referral{ID: "r", PersonID: string(rune('A' + i)), LinkWorker: a,
				Status: linkbridge.TaskCompleted, AcceptedAt: now.AddDate(0, -1, 0), CompletedAt: now}})
		}
		// The same person referred again is no more people.
		c.Add(&linkbridge.ReportReferral{Referral: &linkbridge.Referral{ID: "r", PersonID: "A", LinkWorker: a,
			Status: linkbridge.TaskCompleted, AcceptedAt: now.AddDate(0, -1, 0), CompletedAt: now}})
		if r := c.Report().Rows[0]; !r.OverYearNorm || r.UnderYearNorm || r.TakenOnLast12Months != linkbridge.CaseloadYearHigh+1 {
			t.Errorf("%d people taken on in a year: %+v", linkbridge.CaseloadYearHigh+1, r)
		}
	})
}
