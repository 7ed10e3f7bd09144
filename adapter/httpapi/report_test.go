package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// TestReports works two referrals of one person through /sp/v1 (the
// casework service) and reads the period report and the caseload, whose
// figures are computed by hand (docs/reports.md); every exchange is checked
// against the OpenAPI document.
func TestReports(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	day := func(d int) time.Time { return time.Date(2026, 4, d, 10, 0, 0, 0, time.UTC) }
	lw := linkbridge.LinkWorker{ID: "lw-1", Name: "Link Worker"}
	contact := func(c *spCase, d int, attended bool) {
		t.Helper()
		in := linkbridge.Contact{At: day(d), Mode: linkbridge.ContactPhone, Attended: attended}
		if attended {
			in.Minutes = 30
		}
		c.write(http.MethodPost, "/contacts", contactIn(in), http.StatusCreated)
	}

	// The same person referred twice, on 1 and 3 April.
	ts.Clock.Set(day(1))
	c1 := ts.intake(t, sameIdentifierPerson(t, mustRead(t, fixReferralTxn), "REP-1"))
	ts.Clock.Set(day(3))
	// The same person: the second goes with the first, as its sender says.
	c2 := ts.intake(t, following(t, sameIdentifierPerson(t, mustRead(t, fixReferralTxn), "REP-2"), c1.ID))

	// c1: seen on the 5th (a wait of 4 days), missed the 6th, seen the
	// 8th; SWEMWBS 14 (15.32) then 21 (19.25); discharged, goals met.
	ts.Clock.Set(day(2))
	c1.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw})
	ts.Clock.Set(day(9))
	contact(c1, 5, true)
	contact(c1, 6, false)
	contact(c1, 8, true)
	c1.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointBaseline, []int{2, 2, 2, 2, 2, 2, 2}, day(5)), http.StatusCreated)
	c1.write(http.MethodPost, "/measures", swemwbs(linkbridge.TimepointFinal, []int{3, 3, 3, 3, 3, 3, 3}, day(8)), http.StatusCreated)
	ts.Clock.Set(day(10))
	c1.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met"})

	// c2: accepted on the 4th, seen on the 13th (a wait of 10 days).
	ts.Clock.Set(day(4))
	c2.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw})
	ts.Clock.Set(day(13))
	contact(c2, 13, true)

	ts.Clock.Set(day(20))
	r := ts.sp(http.MethodGet, "/reports/period?from=2026-04&to=2026-04", nil, nil)
	wantSP(t, r, http.StatusOK)
	var rep linkbridge.PeriodReport
	if err := json.Unmarshal(r.Body, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.From.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) || !rep.To.Equal(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("period = [%v, %v), want April 2026", rep.From, rep.To)
	}
	if f := rep.Referrals; f.Received != 2 || f.People != 1 || f.Accepted != 2 || f.BySource[0] != (linkbridge.Count{Key: "gp-practice", Count: 2}) {
		t.Errorf("referrals = %+v, want 2 from a GP practice, 1 person, 2 accepted", f)
	}
	if w := rep.WaitingTime; w != (linkbridge.WaitingFigures{FirstContacts: 2, MedianDays: 7, P90Days: 9.4}) {
		t.Errorf("waiting time = %+v, want waits of 4 and 10 days: median 7, p90 9.4", w)
	}
	if c := rep.Contacts; c != (linkbridge.ContactFigures{Attended: 3, DNA: 1, PeopleSeen: 1, PerPerson: 3, DNARate: 0.25}) {
		t.Errorf("contacts = %+v, want 3 attended and 1 DNA by one person", c)
	}
	if d := rep.Discharges; d.Total != 1 || len(d.ByReason) != 1 || d.ByReason[0].Key != "goals-met" || d.MeanContacts != 2 || d.UnderSixContacts != 1 {
		t.Errorf("discharges = %+v, want one, goals met, after 2 contacts", d)
	}
	if o := rep.Outcomes[0]; o.Instrument != linkbridge.SWEMWBS || o.Pairs != 1 || o.MeanChange != 3.93 || o.ShareImproved != 1 {
		t.Errorf("SWEMWBS outcome = %+v, want one pair improved by 3.93", o)
	}

	r = ts.sp(http.MethodGet, "/reports/caseload?service=Y02662", nil, nil)
	wantSP(t, r, http.StatusOK)
	var load linkbridge.CaseloadReport
	if err := json.Unmarshal(r.Body, &load); err != nil {
		t.Fatal(err)
	}
	if len(load.Rows) != 1 {
		t.Fatalf("caseload rows = %+v, want lw-1's", load.Rows)
	}
	// One person, twice: one taken on, with 3 contacts, in progress.
	if row := load.Rows[0]; row.LinkWorker != lw || row.Open != 1 || row.Active != 1 || row.TakenOnLast12Months != 1 || row.AverageContacts != 3 ||
		row.FewContactsAtDischarge.Count != 1 || row.FewContactsAtDischarge.Referrals[0] != c1.ID {
		t.Errorf("lw-1 = %+v, want 1 person active, 1 taken on, 3 contacts, %s discharged after fewer than 6", row, c1.ID)
	}

	t.Run("BadPeriod", func(t *testing.T) {
		for _, q := range []string{"", "?from=2026-04", "?from=2026-13&to=2026-12", "?from=2026-05&to=2026-04"} {
			wantSPError(t, ts.sp(http.MethodGet, "/reports/period"+q, nil, nil), http.StatusBadRequest, linkbridge.EINVALID)
		}
	})
}
