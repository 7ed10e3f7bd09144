package linkbridge_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

var ruleNow = time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)

func caseIn(status linkbridge.TaskStatus, accepted bool) *linkbridge.CaseRecord {
	rf := &linkbridge.Referral{ID: "r1", Status: status}
	if accepted {
		rf.AcceptedAt = ruleNow.Add(-48 * time.Hour)
	}
	return &linkbridge.CaseRecord{Referral: rf}
}

func TestAddContactRules(t *testing.T) {
	t.Parallel()
	ok := linkbridge.Contact{ID: "c1", At: ruleNow.Add(-time.Hour).In(time.FixedZone("BST", 3600)), Mode: linkbridge.ContactPhone, Minutes: 20, Attended: true}
	tests := []struct {
		name       string
		status     linkbridge.TaskStatus
		contact    linkbridge.Contact
		wantCode   string
		wantStatus linkbridge.TaskStatus
	}{
		{"requested refused", linkbridge.TaskRequested, ok, linkbridge.ECONFLICT, linkbridge.TaskRequested},
		{"completed refused", linkbridge.TaskCompleted, ok, linkbridge.ECONFLICT, linkbridge.TaskCompleted},
		{"first attended contact starts the work", linkbridge.TaskAccepted, ok, "", linkbridge.TaskInProgress},
		{"a DNA does not start it", linkbridge.TaskAccepted, linkbridge.Contact{ID: "c2", At: ruleNow, Mode: linkbridge.ContactHomeVisit}, "", linkbridge.TaskAccepted},
		{"on hold keeps its status", linkbridge.TaskOnHold, ok, "", linkbridge.TaskOnHold},
		{"a DNA with minutes is incomplete", linkbridge.TaskInProgress, linkbridge.Contact{ID: "c3", At: ruleNow, Mode: linkbridge.ContactPhone, Minutes: 5}, linkbridge.EUNPROCESSABLE, linkbridge.TaskInProgress},
		{"unknown mode", linkbridge.TaskInProgress, linkbridge.Contact{ID: "c4", At: ruleNow, Mode: "carrier-pigeon"}, linkbridge.EUNPROCESSABLE, linkbridge.TaskInProgress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := caseIn(tc.status, true)
			c := tc.contact
			err := cr.AddContact(&c, ruleNow)
			if got := linkbridge.ErrorCode(err); err != nil && got != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("AddContact error = %v, want code %q", err, tc.wantCode)
			}
			if cr.Referral.Status != tc.wantStatus {
				t.Errorf("status = %s, want %s", cr.Referral.Status, tc.wantStatus)
			}
			if tc.wantCode != "" {
				if len(cr.Contacts) != 0 {
					t.Errorf("a refused contact was recorded")
				}
				return
			}
			if len(cr.Contacts) != 1 || cr.Contacts[0].ReferralID != "r1" || !cr.Contacts[0].CreatedAt.Equal(ruleNow) || cr.Contacts[0].At.Location() != time.UTC {
				t.Errorf("recorded contact = %+v, want it on r1, created now, at in UTC", cr.Contacts)
			}
		})
	}
}

func TestAddMeasureRules(t *testing.T) {
	t.Parallel()
	swemwbs := func() linkbridge.Measure {
		return linkbridge.Measure{ID: "m1", Instrument: linkbridge.SWEMWBS, Timepoint: linkbridge.TimepointBaseline, Items: []int{3, 3, 3, 3, 3, 3, 3}, TakenAt: ruleNow}
	}
	tests := []struct {
		name     string
		status   linkbridge.TaskStatus
		accepted bool
		wantCode string
	}{
		{"never accepted", linkbridge.TaskRequested, false, linkbridge.ECONFLICT},
		{"rejected", linkbridge.TaskRejected, false, linkbridge.ECONFLICT},
		{"in progress", linkbridge.TaskInProgress, true, ""},
		{"completed: the final measure", linkbridge.TaskCompleted, true, ""},
		{"failed", linkbridge.TaskFailed, true, linkbridge.ECONFLICT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := caseIn(tc.status, tc.accepted)
			m := swemwbs()
			err := cr.AddMeasure(&m, ruleNow)
			if got := linkbridge.ErrorCode(err); err != nil && got != tc.wantCode || err == nil && tc.wantCode != "" {
				t.Fatalf("AddMeasure error = %v, want code %q", err, tc.wantCode)
			}
			if tc.wantCode == "" && (len(cr.Measures) != 1 || cr.Measures[0].Total != 21 || cr.Measures[0].Metric == 0) {
				t.Errorf("measure = %+v, want it scored (total 21, metric from the table)", cr.Measures)
			}
		})
	}
}

func TestSetPlanRules(t *testing.T) {
	t.Parallel()
	ids := 0
	newID := func() string { ids++; return "id-" + string(rune('0'+ids)) }
	cr := caseIn(linkbridge.TaskInProgress, true)
	p := linkbridge.Plan{
		Goals:           []linkbridge.Goal{{ID: "kept", Description: "Walk weekly", Importance: 8, Confidence: 6, Status: linkbridge.GoalActive}, {Description: "Join a choir", Importance: 7, Confidence: 5, Status: linkbridge.GoalActive}},
		OnwardReferrals: []linkbridge.OnwardReferral{{OrganisationODS: "y12345", Service: "Choir", Status: "sent"}},
	}
	if err := cr.SetPlan(p, ruleNow, newID); err != nil {
		t.Fatal(err)
	}
	if cr.Plan.Goals[0].ID != "kept" || cr.Plan.Goals[1].ID == "" || cr.Plan.OnwardReferrals[0].ID == "" {
		t.Errorf("ids = %q, %q, %q: existing ids kept, new items given one", cr.Plan.Goals[0].ID, cr.Plan.Goals[1].ID, cr.Plan.OnwardReferrals[0].ID)
	}
	if o := cr.Plan.OnwardReferrals[0]; o.OrganisationODS != "Y12345" || !o.SentAt.Equal(ruleNow) {
		t.Errorf("onward referral = %+v, want ODS upper-cased and sent now", o)
	}
	if cr.Plan.AgreedAt == nil || !cr.Plan.AgreedAt.Equal(ruleNow) || cr.Referral.BusinessStatus != linkbridge.BusinessPlanAgreed {
		t.Errorf("agreed %v, business status %q: a plan with goals is agreed now", cr.Plan.AgreedAt, cr.Referral.BusinessStatus)
	}

	for _, st := range []linkbridge.TaskStatus{linkbridge.TaskCompleted, linkbridge.TaskRequested} {
		closed := caseIn(st, st != linkbridge.TaskRequested)
		if err := closed.SetPlan(p, ruleNow, newID); linkbridge.ErrorCode(err) != linkbridge.ECONFLICT {
			t.Errorf("SetPlan on a %s referral: %v, want ECONFLICT", st, err)
		}
	}
	bad := caseIn(linkbridge.TaskInProgress, true)
	if err := bad.SetPlan(linkbridge.Plan{Goals: []linkbridge.Goal{{Description: "x", Importance: 11, Confidence: 5, Status: linkbridge.GoalActive}}}, ruleNow, newID); linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE {
		t.Errorf("importance 11: %v, want EUNPROCESSABLE", err)
	}
	if bad.Plan.Goals != nil {
		t.Errorf("a refused plan replaced the stored one")
	}
}

func TestSetConsent(t *testing.T) {
	t.Parallel()
	cr := caseIn(linkbridge.TaskInProgress, true)
	if err := cr.SetConsent(linkbridge.ConsentFull); err != nil || cr.Referral.Consent != linkbridge.ConsentFull {
		t.Errorf("SetConsent(full) = %v, consent %q", err, cr.Referral.Consent)
	}
	if err := cr.SetConsent("some"); linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE || cr.Referral.Consent != linkbridge.ConsentFull {
		t.Errorf("SetConsent(some) = %v, consent %q: want EUNPROCESSABLE and no change", err, cr.Referral.Consent)
	}
}

// TestBounds: a plan, contact or action over a bound is refused naming the
// element, and nothing is recorded.
func TestBounds(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", linkbridge.MaxTextLength+1)
	goals := make([]linkbridge.Goal, linkbridge.MaxPlanItems+1)
	for i := range goals {
		goals[i] = linkbridge.Goal{ID: fmt.Sprint(i), Description: "g", Importance: 5, Confidence: 5, Status: linkbridge.GoalActive}
	}
	plans := []struct {
		name string
		plan linkbridge.Plan
		path string
	}{
		{"too many goals", linkbridge.Plan{Goals: goals}, "goals"},
		{"too many risks", linkbridge.Plan{Risks: make([]string, linkbridge.MaxPlanItems+1)}, "risks"},
		{"what matters too long", linkbridge.Plan{WhatMatters: long}, "whatMatters"},
		{"a goal too long", linkbridge.Plan{Goals: []linkbridge.Goal{{ID: "g", Description: long, Importance: 5, Confidence: 5, Status: linkbridge.GoalActive}}}, "goals[0].description"},
	}
	for _, tc := range plans {
		cr := caseIn(linkbridge.TaskInProgress, true)
		err := cr.SetPlan(tc.plan, ruleNow, func() string { return "x" })
		if linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE || !slices.Contains(linkbridge.ErrorExpression(err), tc.path) {
			t.Errorf("%s: %v (at %v), want EUNPROCESSABLE at %s", tc.name, err, linkbridge.ErrorExpression(err), tc.path)
		}
		if cr.Plan.Goals != nil || cr.Plan.WhatMatters != "" {
			t.Errorf("%s: the plan was recorded", tc.name)
		}
	}
	// Exactly at the bounds is accepted.
	if err := caseIn(linkbridge.TaskInProgress, true).SetPlan(linkbridge.Plan{Goals: goals[:linkbridge.MaxPlanItems], WhatMatters: long[:linkbridge.MaxTextLength*2]}, ruleNow, func() string { return "x" }); err != nil {
		t.Errorf("a plan at the bounds: %v", err)
	}
	cr := caseIn(linkbridge.TaskInProgress, true)
	if err := cr.AddContact(&linkbridge.Contact{ID: "c", At: ruleNow, Mode: linkbridge.ContactPhone, Minutes: 5, Attended: true, Notes: long}, ruleNow); linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE || len(cr.Contacts) != 0 {
		t.Errorf("contact notes too long: %v, %d recorded", err, len(cr.Contacts))
	}
	rf := &linkbridge.Referral{Status: linkbridge.TaskInProgress, AcceptedAt: ruleNow}
	if err := rf.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met", Summary: long}, ruleNow); linkbridge.ErrorCode(err) != linkbridge.EUNPROCESSABLE || rf.Status != linkbridge.TaskInProgress {
		t.Errorf("discharge summary too long: %v, status %s", err, rf.Status)
	}
}

func TestCloseGoals(t *testing.T) {
	t.Parallel()
	goals := func() []linkbridge.Goal {
		return []linkbridge.Goal{
			{ID: "g1", Description: "a", Importance: 5, Confidence: 5, Status: linkbridge.GoalActive},
			{ID: "g2", Description: "b", Importance: 5, Confidence: 5, Status: linkbridge.GoalOnHold},
			{ID: "g3", Description: "c", Importance: 5, Confidence: 5, Status: linkbridge.GoalAchieved},
		}
	}
	tests := []struct {
		name     string
		status   linkbridge.TaskStatus
		reason   string
		outcomes map[string]string
		want     []string // g1, g2, g3 after
		wantCode string
	}{
		{"GoalsMetAchievesOpenGoals", linkbridge.TaskCompleted, "goals-met", nil, []string{"achieved", "achieved", "achieved"}, ""},
		{"OtherDischargeNotAchieved", linkbridge.TaskCompleted, "moved-away", nil, []string{"not-achieved", "not-achieved", "achieved"}, ""},
		{"FailedCancels", linkbridge.TaskFailed, "unable-to-contact", nil, []string{"cancelled", "cancelled", "achieved"}, ""},
		{"OutcomeGiven", linkbridge.TaskCompleted, "goals-met", map[string]string{"g2": "not-achieved"}, []string{"achieved", "not-achieved", "achieved"}, ""},
		{"UnknownGoal", linkbridge.TaskCompleted, "goals-met", map[string]string{"gx": "achieved"}, nil, linkbridge.EUNPROCESSABLE},
		{"UnknownOutcome", linkbridge.TaskCompleted, "goals-met", map[string]string{"g1": "sort-of"}, nil, linkbridge.EUNPROCESSABLE},
		{"NotEnded", linkbridge.TaskInProgress, "", nil, []string{"active", "on-hold", "achieved"}, ""},
		{"OutcomesBeforeTheEnd", linkbridge.TaskOnHold, "", map[string]string{"g1": "achieved"}, nil, linkbridge.EUNPROCESSABLE},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cr := caseIn(tc.status, true)
			cr.Referral.DischargeReason = tc.reason
			cr.Plan.Goals = goals()
			before := cr.Plan.Goals
			changed, err := cr.CloseGoals(&linkbridge.LifecycleCommand{GoalOutcomes: tc.outcomes})
			if linkbridge.ErrorCode(err) != tc.wantCode && !(err == nil && tc.wantCode == "") {
				t.Fatalf("CloseGoals error = %v, want %q", err, tc.wantCode)
			}
			if tc.wantCode != "" {
				return
			}
			var got []string
			for _, g := range cr.Plan.Goals {
				got = append(got, g.Status)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("goal statuses = %v, want %v", got, tc.want)
			}
			if changed != !slices.Equal(tc.want, []string{"active", "on-hold", "achieved"}) {
				t.Errorf("changed = %v", changed)
			}
			if changed && before[0].Status != linkbridge.GoalActive {
				t.Errorf("the plan read before the change was modified in place")
			}
		})
	}
}
