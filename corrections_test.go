package linkbridge_test

import (
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// correctionCase is a case in progress, made two days before ruleNow,
// with an attended and a missed contact, a SWEMWBS baseline and review,
// and two goals.
func correctionCase() *linkbridge.CaseRecord {
	cr := caseIn(linkbridge.TaskInProgress, true)
	cr.Referral.ReceivedAt = ruleNow.Add(-72 * time.Hour)
	created := ruleNow.Add(-time.Hour)
	cr.Contacts = []*linkbridge.Contact{
		{ID: "c1", ReferralID: "r1", At: ruleNow.Add(-24 * time.Hour), Mode: linkbridge.ContactPhone, Minutes: 20, Attended: true, CreatedAt: created},
		{ID: "c2", ReferralID: "r1", At: ruleNow.Add(-12 * time.Hour), Mode: linkbridge.ContactFaceToFace, CreatedAt: created},
	}
	measure := func(id string, tp linkbridge.Timepoint, at time.Time, v int) *linkbridge.Measure {
		m := &linkbridge.Measure{ID: id, ReferralID: "r1", Instrument: linkbridge.SWEMWBS, Timepoint: tp,
			Items: []int{v, v, v, v, v, v, v}, TakenAt: at, CreatedAt: created}
		if err := m.Score(); err != nil {
			panic(err)
		}
		return m
	}
	cr.Measures = []*linkbridge.Measure{
		measure("m-base", linkbridge.TimepointBaseline, ruleNow.Add(-24*time.Hour), 2),
		measure("m-review", linkbridge.TimepointReview, ruleNow.Add(-2*time.Hour), 4),
	}
	cr.Plan.Goals = []linkbridge.Goal{
		{ID: "g1", Description: "Join the walking group", Importance: 8, Confidence: 5, Status: linkbridge.GoalActive},
		{ID: "g2", Description: "Recorded for someone else", Importance: 5, Confidence: 5, Status: linkbridge.GoalActive},
	}
	return cr
}

func TestAmendContactRules(t *testing.T) {
	t.Parallel()
	amended := linkbridge.Contact{At: ruleNow.Add(-30 * time.Hour), Mode: linkbridge.ContactVideo, Minutes: 45, Attended: true, Notes: "Video, not phone."}
	tests := []struct {
		name     string
		edit     func(cr *linkbridge.CaseRecord)
		id       string
		contact  linkbridge.Contact
		wantCode string
	}{
		{"amended", nil, "c1", amended, ""},
		{"a missed contact amended to attended", nil, "c2", amended, ""},
		{"the body names the contact", nil, "c1", func() linkbridge.Contact { c := amended; c.ID = "c1"; return c }(), ""},
		{"the body names another contact", nil, "c1", func() linkbridge.Contact { c := amended; c.ID = "c2"; return c }(), linkbridge.EINVALID},
		{"unknown contact", nil, "c9", amended, linkbridge.ENOTFOUND},
		{"in the future", nil, "c1", func() linkbridge.Contact { c := amended; c.At = ruleNow.Add(time.Hour); return c }(), linkbridge.EUNPROCESSABLE},
		{"before the referral", nil, "c1", func() linkbridge.Contact { c := amended; c.At = ruleNow.Add(-100 * time.Hour); return c }(), linkbridge.EUNPROCESSABLE},
		{"a missed contact with minutes", nil, "c1", func() linkbridge.Contact { c := amended; c.Attended = false; return c }(), linkbridge.EUNPROCESSABLE},
		{"withdrawn already", func(cr *linkbridge.CaseRecord) { cr.Contacts[0].WithdrawnAt = ruleNow.Add(-time.Minute) }, "c1", amended, linkbridge.ECONFLICT},
		{"referral entered in error", func(cr *linkbridge.CaseRecord) { cr.Referral.Status = linkbridge.TaskEnteredInError }, "c1", amended, linkbridge.ECONFLICT},
		{"after discharge", func(cr *linkbridge.CaseRecord) { cr.Referral.Status = linkbridge.TaskCompleted }, "c1", amended, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := correctionCase()
			if tc.edit != nil {
				tc.edit(cr)
			}
			before := *cr.Contacts[0]
			status := cr.Referral.Status
			got, err := cr.AmendContact(tc.id, tc.contact, ruleNow)
			if code := linkbridge.ErrorCode(err); err != nil && code != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("AmendContact error = %v, want code %q", err, tc.wantCode)
			}
			if cr.Referral.Status != status {
				t.Errorf("status = %s, want %s: a correction does not move the referral", cr.Referral.Status, status)
			}
			if tc.wantCode != "" {
				if cr.Contacts[0].At != before.At || cr.Contacts[0].Mode != before.Mode {
					t.Errorf("a refused amendment changed the record: %+v", cr.Contacts[0])
				}
				return
			}
			if got.ID != tc.id || got.ReferralID != "r1" || !got.At.Equal(amended.At) || got.Mode != amended.Mode || got.Minutes != 45 ||
				!got.AmendedAt.Equal(ruleNow) || !got.CreatedAt.Equal(ruleNow.Add(-time.Hour)) || got.Withdrawn() {
				t.Errorf("amended contact = %+v, want the new content, amended now, created as first recorded", got)
			}
			for _, c := range cr.Contacts {
				if c.ID == tc.id && c != got {
					t.Errorf("the record holds %+v, not the amended contact", c)
				}
			}
		})
	}
}

func TestWithdrawRules(t *testing.T) {
	t.Parallel()
	reason := linkbridge.Withdrawal{Reason: "Recorded on the wrong person's record."}
	type withdraw func(cr *linkbridge.CaseRecord, id string, w linkbridge.Withdrawal) error
	contact := func(cr *linkbridge.CaseRecord, id string, w linkbridge.Withdrawal) error {
		_, err := cr.WithdrawContact(id, w, ruleNow)
		return err
	}
	measure := func(cr *linkbridge.CaseRecord, id string, w linkbridge.Withdrawal) error {
		_, err := cr.WithdrawMeasure(id, w, ruleNow)
		return err
	}
	goal := func(cr *linkbridge.CaseRecord, id string, w linkbridge.Withdrawal) error {
		return cr.WithdrawGoal(id, w, ruleNow)
	}
	withdrawn := func(cr *linkbridge.CaseRecord, id string) (linkbridge.Correction, string) {
		for _, c := range cr.Contacts {
			if c.ID == id {
				return c.Correction, ""
			}
		}
		for _, m := range cr.Measures {
			if m.ID == id {
				return m.Correction, ""
			}
		}
		for _, g := range cr.Plan.Goals {
			if g.ID == id {
				return linkbridge.Correction{WithdrawnAt: g.WithdrawnAt, WithdrawnReason: g.WithdrawnReason}, g.Status
			}
		}
		return linkbridge.Correction{}, ""
	}
	tests := []struct {
		name     string
		do       withdraw
		id       string
		w        linkbridge.Withdrawal
		twice    bool
		wantCode string
	}{
		{"contact", contact, "c1", reason, false, ""},
		{"contact twice", contact, "c1", reason, true, linkbridge.ECONFLICT},
		{"contact without a reason", contact, "c1", linkbridge.Withdrawal{Reason: "  "}, false, linkbridge.EUNPROCESSABLE},
		{"unknown contact", contact, "c9", reason, false, linkbridge.ENOTFOUND},
		{"measure", measure, "m-base", reason, false, ""},
		{"measure twice", measure, "m-base", reason, true, linkbridge.ECONFLICT},
		{"measure without a reason", measure, "m-base", linkbridge.Withdrawal{}, false, linkbridge.EUNPROCESSABLE},
		{"unknown measure", measure, "m9", reason, false, linkbridge.ENOTFOUND},
		{"goal", goal, "g2", reason, false, ""},
		{"goal twice", goal, "g2", reason, true, linkbridge.ECONFLICT},
		{"goal without a reason", goal, "g2", linkbridge.Withdrawal{}, false, linkbridge.EUNPROCESSABLE},
		{"unknown goal", goal, "g9", reason, false, linkbridge.ENOTFOUND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := correctionCase()
			if tc.twice {
				if err := tc.do(cr, tc.id, tc.w); err != nil {
					t.Fatalf("first withdrawal: %v", err)
				}
			}
			err := tc.do(cr, tc.id, tc.w)
			if code := linkbridge.ErrorCode(err); err != nil && code != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("withdraw error = %v, want code %q", err, tc.wantCode)
			}
			got, status := withdrawn(cr, tc.id)
			switch {
			case tc.wantCode == "" || tc.twice:
				if !got.WithdrawnAt.Equal(ruleNow) || got.WithdrawnReason != reason.Reason {
					t.Errorf("correction = %+v, want withdrawn now with the reason", got)
				}
				if tc.id == "g2" && status != linkbridge.GoalEnteredInError {
					t.Errorf("goal status = %s, want entered-in-error", status)
				}
			case got.Withdrawn():
				t.Errorf("a refused withdrawal withdrew %s", tc.id)
			}
		})
	}
	t.Run("referral entered in error", func(t *testing.T) {
		t.Parallel()
		for _, do := range []struct {
			f  withdraw
			id string
		}{{contact, "c1"}, {measure, "m-base"}, {goal, "g1"}} {
			cr := correctionCase()
			cr.Referral.Status = linkbridge.TaskEnteredInError
			if err := do.f(cr, do.id, reason); linkbridge.ErrorCode(err) != linkbridge.ECONFLICT {
				t.Errorf("withdraw %s error = %v, want ECONFLICT", do.id, err)
			}
		}
	})
}

func TestAmendMeasureRules(t *testing.T) {
	t.Parallel()
	review := func(edit func(m *linkbridge.Measure)) linkbridge.Measure {
		m := linkbridge.Measure{Instrument: linkbridge.SWEMWBS, Timepoint: linkbridge.TimepointReview, Items: []int{5, 5, 5, 5, 5, 5, 5}, TakenAt: ruleNow.Add(-3 * time.Hour)}
		if edit != nil {
			edit(&m)
		}
		return m
	}
	withdrawBase := func(cr *linkbridge.CaseRecord) {
		if _, err := cr.WithdrawMeasure("m-base", linkbridge.Withdrawal{Reason: "wrong person"}, ruleNow.Add(-time.Minute)); err != nil {
			panic(err)
		}
	}
	tests := []struct {
		name     string
		edit     func(cr *linkbridge.CaseRecord)
		id       string
		m        linkbridge.Measure
		wantCode string
	}{
		{"answers corrected", nil, "m-review", review(nil), ""},
		{"a second baseline", nil, "m-review", review(func(m *linkbridge.Measure) { m.Timepoint = linkbridge.TimepointBaseline }), linkbridge.ECONFLICT},
		{"the baseline stays the baseline", nil, "m-base", review(func(m *linkbridge.Measure) { m.Timepoint = linkbridge.TimepointBaseline }), ""},
		{"a baseline once the first was withdrawn", withdrawBase, "m-review", review(func(m *linkbridge.Measure) { m.Timepoint = linkbridge.TimepointBaseline }), ""},
		{"another instrument", nil, "m-review", review(func(m *linkbridge.Measure) { m.Instrument = linkbridge.WEMWBS }), linkbridge.EUNPROCESSABLE},
		{"an item out of range", nil, "m-review", review(func(m *linkbridge.Measure) { m.Items[0] = 9 }), linkbridge.EUNPROCESSABLE},
		{"in the future", nil, "m-review", review(func(m *linkbridge.Measure) { m.TakenAt = ruleNow.Add(time.Hour) }), linkbridge.EUNPROCESSABLE},
		{"before the referral", nil, "m-review", review(func(m *linkbridge.Measure) { m.TakenAt = ruleNow.Add(-100 * time.Hour) }), linkbridge.EUNPROCESSABLE},
		{"the body names another measure", nil, "m-review", review(func(m *linkbridge.Measure) { m.ID = "m-base" }), linkbridge.EINVALID},
		{"withdrawn", withdrawBase, "m-base", review(nil), linkbridge.ECONFLICT},
		{"unknown", nil, "m9", review(nil), linkbridge.ENOTFOUND},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := correctionCase()
			if tc.edit != nil {
				tc.edit(cr)
			}
			got, err := cr.AmendMeasure(tc.id, tc.m, ruleNow)
			if code := linkbridge.ErrorCode(err); err != nil && code != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("AmendMeasure error = %v, want code %q", err, tc.wantCode)
			}
			if tc.wantCode != "" {
				return
			}
			if got.Total != 35 || got.Metric != 35 || !got.AmendedAt.Equal(ruleNow) || !got.CreatedAt.Equal(ruleNow.Add(-time.Hour)) {
				t.Errorf("amended measure = %+v, want rescored (35), amended now, created as first recorded", got)
			}
		})
	}
}

// TestCorrectionsInFigures: a withdrawn baseline is no baseline for the
// change from baseline, and reports count no withdrawn entry.
func TestCorrectionsInFigures(t *testing.T) {
	t.Parallel()
	cr := correctionCase()
	if ch := linkbridge.ChangesFromBaseline(cr.Measures)["m-review"]; ch == nil || ch.BaselineID != "m-base" {
		t.Fatalf("change of m-review = %+v, want one from m-base", ch)
	}
	if _, err := cr.WithdrawMeasure("m-base", linkbridge.Withdrawal{Reason: "wrong person"}, ruleNow); err != nil {
		t.Fatal(err)
	}
	if ch := linkbridge.ChangesFromBaseline(cr.Measures); len(ch) != 0 {
		t.Errorf("changes from a withdrawn baseline = %v, want none", ch)
	}
	if _, err := cr.WithdrawContact("c1", linkbridge.Withdrawal{Reason: "wrong person"}, ruleNow); err != nil {
		t.Fatal(err)
	}
	rf := cr.Referral
	rf.LinkWorker, rf.PersonID = linkbridge.LinkWorker{ID: "lw1"}, "p1"
	p := linkbridge.NewPeriod(linkbridge.ReportScope{}, ruleNow.Add(-7*24*time.Hour), ruleNow)
	p.Add(&linkbridge.ReportReferral{Referral: rf, Contacts: cr.Contacts, Measures: cr.Measures})
	rep := p.Report()
	if rep.Contacts.Attended != 0 || rep.Contacts.DNA != 1 {
		t.Errorf("period contacts = %+v, want 0 attended (c1 withdrawn) and 1 DNA (c2)", rep.Contacts)
	}
	if rep.WaitingTime.FirstContacts != 0 {
		t.Errorf("first contacts = %d, want 0: the only attended contact was withdrawn", rep.WaitingTime.FirstContacts)
	}
}

// TestSetPlanKeepsWithdrawnGoals: a goal withdrawn as entered in error
// stays as it is whatever the next plan says; a plan cannot withdraw one.
func TestSetPlanKeepsWithdrawnGoals(t *testing.T) {
	t.Parallel()
	newID := func() string { return "new" }
	withdrawnCase := func() *linkbridge.CaseRecord {
		cr := correctionCase()
		if err := cr.WithdrawGoal("g2", linkbridge.Withdrawal{Reason: "someone else's"}, ruleNow); err != nil {
			t.Fatal(err)
		}
		return cr
	}
	g1 := linkbridge.Goal{ID: "g1", Description: "Join the walking group", Importance: 9, Confidence: 6, Status: linkbridge.GoalActive}
	tests := []struct {
		name     string
		goals    func(cr *linkbridge.CaseRecord) []linkbridge.Goal
		wantCode string
		want     []string // goal id:status
	}{
		{"left out, it is kept", func(*linkbridge.CaseRecord) []linkbridge.Goal { return []linkbridge.Goal{g1} }, "", []string{"g1:active", "g2:entered-in-error"}},
		{"sent back unchanged", func(cr *linkbridge.CaseRecord) []linkbridge.Goal { return []linkbridge.Goal{cr.Plan.Goals[1], g1} }, "", []string{"g2:entered-in-error", "g1:active"}},
		{"changed", func(cr *linkbridge.CaseRecord) []linkbridge.Goal {
			g := cr.Plan.Goals[1]
			g.Status = linkbridge.GoalActive
			return []linkbridge.Goal{g1, g}
		}, linkbridge.ECONFLICT, nil},
		{"a plan cannot withdraw a goal", func(*linkbridge.CaseRecord) []linkbridge.Goal {
			g := g1
			g.Status = linkbridge.GoalEnteredInError
			return []linkbridge.Goal{g}
		}, linkbridge.EUNPROCESSABLE, nil},
		{"nor date a withdrawal", func(*linkbridge.CaseRecord) []linkbridge.Goal {
			g := g1
			g.WithdrawnReason = "x"
			return []linkbridge.Goal{g}
		}, linkbridge.EUNPROCESSABLE, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := withdrawnCase()
			err := cr.SetPlan(linkbridge.Plan{Goals: tc.goals(cr)}, ruleNow, newID)
			if code := linkbridge.ErrorCode(err); err != nil && code != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("SetPlan error = %v, want code %q", err, tc.wantCode)
			}
			if tc.wantCode != "" {
				return
			}
			var got []string
			for _, g := range cr.Plan.Goals {
				got = append(got, g.ID+":"+g.Status)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("goals = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("goals = %v, want %v", got, tc.want)
				}
			}
		})
	}
	t.Run("no outcome for a withdrawn goal at discharge", func(t *testing.T) {
		t.Parallel()
		cr := withdrawnCase()
		cr.Referral.Status, cr.Referral.DischargeReason = linkbridge.TaskCompleted, "goals-met"
		if _, err := cr.CloseGoals(&linkbridge.LifecycleCommand{GoalOutcomes: map[string]string{"g2": linkbridge.GoalAchieved}}); linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE {
			t.Fatalf("CloseGoals naming a withdrawn goal: error = %v, want EUNPROCESSABLE", err)
		}
		if _, err := cr.CloseGoals(&linkbridge.LifecycleCommand{}); err != nil {
			t.Fatal(err)
		}
		if cr.Plan.Goals[0].Status != linkbridge.GoalAchieved || cr.Plan.Goals[1].Status != linkbridge.GoalEnteredInError {
			t.Errorf("goals at discharge = %+v, want g1 achieved and g2 still entered-in-error", cr.Plan.Goals)
		}
	})
}
