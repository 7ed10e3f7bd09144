package linkbridge_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

var caseNow = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// validCommand returns a command for the action with every argument it
// needs, so that only the referral's status decides whether it applies.
func validCommand(action string) *linkbridge.LifecycleCommand {
	cmd := &linkbridge.LifecycleCommand{Action: action}
	switch action {
	case linkbridge.ActionAccept:
		cmd.LinkWorker = &linkbridge.LinkWorker{ID: "lw-1", Name: "Sam"}
	case linkbridge.ActionDecline:
		cmd.ReasonCode, cmd.Reason = "out-of-area", "Lives in Wales"
	case linkbridge.ActionHold:
		cmd.Reason = "In hospital"
	case linkbridge.ActionComplete:
		cmd.ReasonCode, cmd.Summary = "goals-met", "Walks weekly"
	case linkbridge.ActionFail:
		cmd.ReasonCode, cmd.Reason = "unable-to-contact", "Three calls"
	case linkbridge.ActionCancel:
		cmd.Reason = "Sent by mistake"
	}
	return cmd
}

var allActions = []string{
	linkbridge.ActionAccept, linkbridge.ActionDecline, linkbridge.ActionStart, linkbridge.ActionHold,
	linkbridge.ActionResume, linkbridge.ActionComplete, linkbridge.ActionFail, linkbridge.ActionCancel,
}

// actionRules is the lifecycle, written from the issue and the SDOH state
// diagram: the status each action leads to, the statuses it applies
// from, and the business status it sets. Hold from on-hold is a
// same-status update (a new reason), which CheckTaskTransition allows for
// non-terminal statuses; accepting again is refused (issue 14: a new link
// worker is a reassignment, TestReassign).
var actionRules = map[string]struct {
	to       linkbridge.TaskStatus
	from     []linkbridge.TaskStatus
	business string
}{
	linkbridge.ActionAccept:   {linkbridge.TaskAccepted, []linkbridge.TaskStatus{"requested"}, linkbridge.BusinessAccepted},
	linkbridge.ActionDecline:  {linkbridge.TaskRejected, []linkbridge.TaskStatus{"requested"}, linkbridge.BusinessDeclined},
	linkbridge.ActionStart:    {linkbridge.TaskInProgress, []linkbridge.TaskStatus{"accepted"}, linkbridge.BusinessFirstContactMade},
	linkbridge.ActionHold:     {linkbridge.TaskOnHold, []linkbridge.TaskStatus{"accepted", "in-progress", "on-hold"}, linkbridge.BusinessOnHold},
	linkbridge.ActionResume:   {linkbridge.TaskInProgress, []linkbridge.TaskStatus{"on-hold"}, linkbridge.BusinessFirstContactMade},
	linkbridge.ActionComplete: {linkbridge.TaskCompleted, []linkbridge.TaskStatus{"accepted", "in-progress", "on-hold"}, linkbridge.BusinessDischarged},
	linkbridge.ActionFail:     {linkbridge.TaskFailed, []linkbridge.TaskStatus{"accepted", "in-progress", "on-hold"}, linkbridge.BusinessCouldNotContact},
	linkbridge.ActionCancel:   {linkbridge.TaskCancelled, []linkbridge.TaskStatus{"requested", "accepted", "in-progress", "on-hold"}, linkbridge.BusinessCancelledBySPLW},
}

func referralIn(s linkbridge.TaskStatus) *linkbridge.Referral {
	return &linkbridge.Referral{
		ID: "r1", TaskID: "t1", PersonID: "p1", Status: s, BusinessStatus: "before",
		StatusReason: "old reason", Version: 4,
		AcceptedAt: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
	}
}

// TestApplyEveryActionFromEveryStatus applies each action, with valid
// arguments, to a referral in each of the twelve Task statuses.
func TestApplyEveryActionFromEveryStatus(t *testing.T) {
	t.Parallel()
	for _, action := range allActions {
		rule := actionRules[action]
		for _, from := range allStatuses {
			t.Run(action+"/"+string(from), func(t *testing.T) {
				r := referralIn(from)
				before := *r
				err := r.Apply(validCommand(action), caseNow)
				legal := false
				for _, s := range rule.from {
					legal = legal || s == from
				}
				if !legal {
					if linkbridge.ErrorCode(err) != linkbridge.ECONFLICT {
						t.Fatalf("Apply(%s) from %s = %v, want ECONFLICT", action, from, err)
					}
					msg := linkbridge.ErrorMessage(err)
					if !strings.Contains(msg, string(from)) {
						t.Errorf("error %q does not name the current status %s", msg, from)
					}
					// The message names the requested status, or the one the
					// action needs (start: accepted; resume: on hold).
					need := map[string]string{linkbridge.ActionStart: "accepted", linkbridge.ActionResume: "on hold"}[action]
					if need == "" {
						need = string(rule.to)
					}
					if !strings.Contains(msg, need) {
						t.Errorf("error %q does not name %q", msg, need)
					}
					if !reflect.DeepEqual(*r, before) {
						t.Errorf("an illegal action changed the referral: %+v, was %+v", *r, before)
					}
					return
				}
				if err != nil {
					t.Fatalf("Apply(%s) from %s: unexpected error %v", action, from, err)
				}
				if r.Status != rule.to || r.BusinessStatus != rule.business {
					t.Errorf("after %s from %s: %s/%s, want %s/%s", action, from, r.Status, r.BusinessStatus, rule.to, rule.business)
				}
				if r.Version != before.Version {
					t.Errorf("Apply changed the version to %d; versions are the store's", r.Version)
				}
				checkAppliedFields(t, action, r)
			})
		}
	}
}

// checkAppliedFields checks what each legal action records.
func checkAppliedFields(t *testing.T, action string, r *linkbridge.Referral) {
	t.Helper()
	switch action {
	case linkbridge.ActionAccept:
		if r.LinkWorker.ID != "lw-1" || r.LinkWorker.Name != "Sam" || !r.AcceptedAt.Equal(caseNow) || r.StatusReason != "" {
			t.Errorf("accept: link worker %+v accepted %v reason %q", r.LinkWorker, r.AcceptedAt, r.StatusReason)
		}
	case linkbridge.ActionDecline:
		if r.DeclineReason != "out-of-area" || r.StatusReason != "out of area: Lives in Wales" {
			t.Errorf("decline: reason %q statusReason %q", r.DeclineReason, r.StatusReason)
		}
	case linkbridge.ActionStart, linkbridge.ActionResume:
		if r.StatusReason != "" {
			t.Errorf("%s: statusReason %q, want none", action, r.StatusReason)
		}
	case linkbridge.ActionHold:
		if r.StatusReason != "In hospital" {
			t.Errorf("hold: statusReason %q", r.StatusReason)
		}
	case linkbridge.ActionComplete:
		// The Task's status reason is the coded reason, never the summary.
		if r.DischargeReason != "goals-met" || r.DischargeSummary != "Walks weekly" || !r.CompletedAt.Equal(caseNow) || r.StatusReason != "goals met" {
			t.Errorf("complete: %q %q %v %q", r.DischargeReason, r.DischargeSummary, r.CompletedAt, r.StatusReason)
		}
	case linkbridge.ActionFail:
		if r.DischargeReason != "unable-to-contact" || r.StatusReason != "unable to contact: Three calls" || !r.CompletedAt.Equal(caseNow) {
			t.Errorf("fail: %q %q %v", r.DischargeReason, r.StatusReason, r.CompletedAt)
		}
	case linkbridge.ActionCancel:
		if r.StatusReason != "Sent by mistake" || !r.CompletedAt.Equal(caseNow) {
			t.Errorf("cancel: %q %v", r.StatusReason, r.CompletedAt)
		}
	}
}

// TestApplyArguments checks the arguments each action needs; they are
// checked before the status, so the referral is in a status where the
// action is otherwise legal.
func TestApplyArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		from   linkbridge.TaskStatus
		cmd    linkbridge.LifecycleCommand
		code   string
		expr   string
		reason string // StatusReason when legal
	}{
		{"AcceptNoLinkWorker", "requested", linkbridge.LifecycleCommand{Action: "accept"}, linkbridge.EUNPROCESSABLE, "linkWorker.id", ""},
		{"AcceptEmptyLinkWorkerID", "requested", linkbridge.LifecycleCommand{Action: "accept", LinkWorker: &linkbridge.LinkWorker{Name: "Sam"}}, linkbridge.EUNPROCESSABLE, "linkWorker.id", ""},
		{"DeclineNoReasonCode", "requested", linkbridge.LifecycleCommand{Action: "decline", Reason: "text only"}, linkbridge.EUNPROCESSABLE, "reasonCode", ""},
		{"DeclineDischargeCode", "requested", linkbridge.LifecycleCommand{Action: "decline", ReasonCode: "goals-met"}, linkbridge.EUNPROCESSABLE, "reasonCode", ""},
		{"DeclineCodeOnly", "requested", linkbridge.LifecycleCommand{Action: "decline", ReasonCode: "service-at-capacity"}, "", "", "service at capacity"},
		{"HoldNoReason", "in-progress", linkbridge.LifecycleCommand{Action: "hold"}, linkbridge.EUNPROCESSABLE, "reason", ""},
		{"CompleteNoReasonCode", "in-progress", linkbridge.LifecycleCommand{Action: "complete", Summary: "done"}, linkbridge.EUNPROCESSABLE, "reasonCode", ""},
		{"CompleteDeclineCode", "in-progress", linkbridge.LifecycleCommand{Action: "complete", ReasonCode: "out-of-area"}, linkbridge.EUNPROCESSABLE, "reasonCode", ""},
		{"CompleteNoSummary", "in-progress", linkbridge.LifecycleCommand{Action: "complete", ReasonCode: "moved-away"}, "", "", "moved away"},
		{"FailNothing", "in-progress", linkbridge.LifecycleCommand{Action: "fail"}, linkbridge.EUNPROCESSABLE, "reason", ""},
		{"FailTextOnly", "in-progress", linkbridge.LifecycleCommand{Action: "fail", Reason: "No reply"}, "", "", "No reply"},
		{"FailCodeOnly", "accepted", linkbridge.LifecycleCommand{Action: "fail", ReasonCode: "unable-to-contact"}, "", "", "unable to contact"},
		{"CancelNoReason", "requested", linkbridge.LifecycleCommand{Action: "cancel"}, linkbridge.EUNPROCESSABLE, "reason", ""},
		{"UnknownAction", "requested", linkbridge.LifecycleCommand{Action: "reopen"}, linkbridge.EUNPROCESSABLE, "action", ""},
		{"EmptyAction", "requested", linkbridge.LifecycleCommand{}, linkbridge.EUNPROCESSABLE, "action", ""},
		{"UppercaseAction", "requested", linkbridge.LifecycleCommand{Action: "ACCEPT", LinkWorker: &linkbridge.LinkWorker{ID: "x"}}, linkbridge.EUNPROCESSABLE, "action", ""},
		// An argument error comes before the status check.
		{"HoldNoReasonFromCompleted", "completed", linkbridge.LifecycleCommand{Action: "hold"}, linkbridge.EUNPROCESSABLE, "reason", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := referralIn(tt.from)
			before := *r
			err := r.Apply(&tt.cmd, caseNow)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if r.StatusReason != tt.reason {
					t.Errorf("statusReason = %q, want %q", r.StatusReason, tt.reason)
				}
				return
			}
			wantErr(t, err, tt.code, []string{tt.expr}, "")
			if !reflect.DeepEqual(*r, before) {
				t.Errorf("a refused command changed the referral")
			}
		})
	}
	// Every listed reason code is accepted by its action.
	for _, code := range linkbridge.DeclineReasons {
		r := referralIn("requested")
		if err := r.Apply(&linkbridge.LifecycleCommand{Action: "decline", ReasonCode: code}, caseNow); err != nil {
			t.Errorf("decline %s: %v", code, err)
		}
	}
	for _, code := range linkbridge.DischargeReasons {
		r := referralIn("in-progress")
		if err := r.Apply(&linkbridge.LifecycleCommand{Action: "complete", ReasonCode: code}, caseNow); err != nil {
			t.Errorf("complete %s: %v", code, err)
		}
	}
}

// TestLifecycleSequence walks the usual path and a hold in the middle.
func TestLifecycleSequence(t *testing.T) {
	t.Parallel()
	r := referralIn("requested")
	steps := []struct {
		cmd  *linkbridge.LifecycleCommand
		want linkbridge.TaskStatus
	}{
		{validCommand("accept"), "accepted"},
		{validCommand("start"), "in-progress"},
		{validCommand("hold"), "on-hold"},
		{validCommand("resume"), "in-progress"},
		{validCommand("complete"), "completed"},
	}
	for i, s := range steps {
		if err := r.Apply(s.cmd, caseNow.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatalf("step %d (%s): %v", i, s.cmd.Action, err)
		}
		if r.Status != s.want {
			t.Fatalf("step %d (%s): status %s, want %s", i, s.cmd.Action, r.Status, s.want)
		}
	}
	if !r.AcceptedAt.Equal(caseNow) || !r.CompletedAt.Equal(caseNow.Add(4*time.Hour)) || r.StatusReason != "goals met" {
		t.Errorf("after the path: accepted %v completed %v reason %q", r.AcceptedAt, r.CompletedAt, r.StatusReason)
	}
	// Nothing leaves a terminal status.
	for _, a := range allActions {
		if err := r.Apply(validCommand(a), caseNow); linkbridge.ErrorCode(err) != linkbridge.ECONFLICT {
			t.Errorf("%s after completion: %v, want ECONFLICT", a, err)
		}
	}
}

func TestConsentLevelValid(t *testing.T) {
	t.Parallel()
	for c, want := range map[linkbridge.ConsentLevel]bool{
		"full": true, "codes-only": true, "none": true, "": false, "Full": false, "codes_only": false, "partial": false,
	} {
		if got := c.Valid(); got != want {
			t.Errorf("ConsentLevel(%q).Valid() = %v, want %v", c, got, want)
		}
	}
}

func TestContactValidate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ok := func(f func(c *linkbridge.Contact)) linkbridge.Contact {
		c := linkbridge.Contact{At: at, Mode: linkbridge.ContactPhone, Minutes: 30, Attended: true}
		if f != nil {
			f(&c)
		}
		return c
	}
	tests := []struct {
		name string
		c    linkbridge.Contact
		expr string // "" when valid
	}{
		{"Valid", ok(nil), ""},
		{"ZeroMinutes", ok(func(c *linkbridge.Contact) { c.Minutes = 0 }), ""},
		{"FullDay", ok(func(c *linkbridge.Contact) { c.Minutes = 1440 }), ""},
		{"OverFullDay", ok(func(c *linkbridge.Contact) { c.Minutes = 1441 }), "minutes"},
		{"NegativeMinutes", ok(func(c *linkbridge.Contact) { c.Minutes = -1 }), "minutes"},
		{"DNA", ok(func(c *linkbridge.Contact) { c.Attended, c.Minutes = false, 0 }), ""},
		{"DNAWithMinutes", ok(func(c *linkbridge.Contact) { c.Attended, c.Minutes = false, 5 }), "minutes"},
		{"NoMode", ok(func(c *linkbridge.Contact) { c.Mode = "" }), "mode"},
		{"UnknownMode", ok(func(c *linkbridge.Contact) { c.Mode = "email" }), "mode"},
		{"NoTime", ok(func(c *linkbridge.Contact) { c.At = time.Time{} }), "at"},
		{"NotesAreFree", ok(func(c *linkbridge.Contact) { c.Notes = strings.Repeat("x", 10000) }), ""},
	}
	for _, m := range []linkbridge.ContactMode{linkbridge.ContactFaceToFace, linkbridge.ContactPhone, linkbridge.ContactVideo, linkbridge.ContactHomeVisit, linkbridge.ContactGroup} {
		tests = append(tests, struct {
			name string
			c    linkbridge.Contact
			expr string
		}{"Mode-" + string(m), ok(func(c *linkbridge.Contact) { c.Mode = m }), ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.expr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantErr(t, err, linkbridge.EUNPROCESSABLE, []string{tt.expr}, "")
		})
	}
}

// validPlan is a complete plan that passes Validate.
func validPlan() linkbridge.Plan {
	return linkbridge.Plan{
		WhatMatters: "My allotment",
		Needs: []linkbridge.Need{
			{Code: &linkbridge.Coding{System: linkbridge.SNOMEDSystem, Code: "267076002"}},
			{Text: "Stairs"},
			{Code: &linkbridge.Coding{System: "https://example.org/local", Code: "L-1"}},
		},
		Risks: []string{"Lives alone"},
		Goals: []linkbridge.Goal{
			{ID: "g1", Description: "Walk", Importance: 1, Confidence: 10, Status: linkbridge.GoalActive},
			{ID: "g2", Description: "Coffee", Importance: 10, Confidence: 1, Status: linkbridge.GoalAchieved},
		},
		Actions:         []linkbridge.PlanAction{{ID: "a1", Description: "Ring the group", Due: "2026-12-05", Status: "not-started"}},
		OnwardReferrals: []linkbridge.OnwardReferral{{ID: "o1", Service: "Befriending", OrganisationODS: "X9A3B", Status: "sent"}},
		Signposts:       []linkbridge.Signpost{{ID: "s1", To: "Citizens Advice"}},
		ReviewDate:      "2027-01-15",
	}
}

func TestPlanValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(p *linkbridge.Plan)
		code   string
		expr   string
	}{
		{"Valid", func(p *linkbridge.Plan) {}, "", ""},
		{"Empty", func(p *linkbridge.Plan) { *p = linkbridge.Plan{} }, "", ""},
		{"NeedEmpty", func(p *linkbridge.Plan) { p.Needs[1] = linkbridge.Need{} }, linkbridge.EUNPROCESSABLE, "needs[1]"},
		{"NeedBadSCTID", func(p *linkbridge.Plan) { p.Needs[0].Code.Code = "267076003" }, linkbridge.EUNPROCESSABLE, "needs[0].code.code"},
		{"NeedSCTIDTooShort", func(p *linkbridge.Plan) { p.Needs[0].Code.Code = "12" }, linkbridge.EUNPROCESSABLE, "needs[0].code.code"},
		{"GoalNoID", func(p *linkbridge.Plan) { p.Goals[1].ID = "" }, linkbridge.EINVALID, "goals[1].id"},
		{"GoalBlankDescription", func(p *linkbridge.Plan) { p.Goals[0].Description = "  \t" }, linkbridge.EUNPROCESSABLE, "goals[0].description"},
		{"GoalImportance0", func(p *linkbridge.Plan) { p.Goals[0].Importance = 0 }, linkbridge.EUNPROCESSABLE, "goals[0].importance"},
		{"GoalImportance11", func(p *linkbridge.Plan) { p.Goals[1].Importance = 11 }, linkbridge.EUNPROCESSABLE, "goals[1].importance"},
		{"GoalConfidence0", func(p *linkbridge.Plan) { p.Goals[1].Confidence = 0 }, linkbridge.EUNPROCESSABLE, "goals[1].confidence"},
		{"GoalConfidence11", func(p *linkbridge.Plan) { p.Goals[0].Confidence = 11 }, linkbridge.EUNPROCESSABLE, "goals[0].confidence"},
		{"GoalBadStatus", func(p *linkbridge.Plan) { p.Goals[0].Status = "done" }, linkbridge.EUNPROCESSABLE, "goals[0].status"},
		{"GoalNoStatus", func(p *linkbridge.Plan) { p.Goals[0].Status = "" }, linkbridge.EUNPROCESSABLE, "goals[0].status"},
		{"ActionNoID", func(p *linkbridge.Plan) { p.Actions[0].ID = "" }, linkbridge.EUNPROCESSABLE, "actions[0]"},
		{"ActionNoDescription", func(p *linkbridge.Plan) { p.Actions[0].Description = " " }, linkbridge.EUNPROCESSABLE, "actions[0]"},
		{"ActionBadStatus", func(p *linkbridge.Plan) { p.Actions[0].Status = "done" }, linkbridge.EUNPROCESSABLE, "actions[0].status"},
		{"ActionBadDue", func(p *linkbridge.Plan) { p.Actions[0].Due = "05/12/2026" }, linkbridge.EUNPROCESSABLE, "actions[0].due"},
		{"ActionImpossibleDue", func(p *linkbridge.Plan) { p.Actions[0].Due = "2026-02-30" }, linkbridge.EUNPROCESSABLE, "actions[0].due"},
		{"OnwardNoID", func(p *linkbridge.Plan) { p.OnwardReferrals[0].ID = "" }, linkbridge.EUNPROCESSABLE, "onwardReferrals[0]"},
		{"OnwardNoService", func(p *linkbridge.Plan) { p.OnwardReferrals[0].Service = "" }, linkbridge.EUNPROCESSABLE, "onwardReferrals[0]"},
		{"OnwardBadStatus", func(p *linkbridge.Plan) { p.OnwardReferrals[0].Status = "pending" }, linkbridge.EUNPROCESSABLE, "onwardReferrals[0].status"},
		{"OnwardBadODS", func(p *linkbridge.Plan) { p.OnwardReferrals[0].OrganisationODS = "X9-A3B" }, linkbridge.EUNPROCESSABLE, "onwardReferrals[0].organisationOds"},
		{"OnwardLongODS", func(p *linkbridge.Plan) { p.OnwardReferrals[0].OrganisationODS = "ABCDEFGHIJ" }, linkbridge.EUNPROCESSABLE, "onwardReferrals[0].organisationOds"},
		{"OnwardNoODS", func(p *linkbridge.Plan) { p.OnwardReferrals[0].OrganisationODS = "" }, "", ""},
		{"SignpostNoTo", func(p *linkbridge.Plan) { p.Signposts[0].To = "" }, linkbridge.EUNPROCESSABLE, "signposts[0]"},
		{"SignpostNoID", func(p *linkbridge.Plan) { p.Signposts[0].ID = "" }, linkbridge.EUNPROCESSABLE, "signposts[0]"},
		{"ReviewDateBad", func(p *linkbridge.Plan) { p.ReviewDate = "next month" }, linkbridge.EUNPROCESSABLE, "reviewDate"},
		{"ReviewDateTime", func(p *linkbridge.Plan) { p.ReviewDate = "2027-01-15T10:00:00Z" }, linkbridge.EUNPROCESSABLE, "reviewDate"},
	}
	for _, st := range []string{"active", "on-hold", "achieved", "not-achieved", "cancelled"} {
		tests = append(tests, struct {
			name   string
			mutate func(p *linkbridge.Plan)
			code   string
			expr   string
		}{"GoalStatus-" + st, func(p *linkbridge.Plan) { p.Goals[0].Status = st }, "", ""})
	}
	for i, st := range linkbridge.OnwardStatuses {
		tests = append(tests, struct {
			name   string
			mutate func(p *linkbridge.Plan)
			code   string
			expr   string
		}{fmt.Sprintf("OnwardStatus-%d-%s", i, st), func(p *linkbridge.Plan) { p.OnwardReferrals[0].Status = st }, "", ""})
	}
	for _, st := range linkbridge.ActionStatuses {
		tests = append(tests, struct {
			name   string
			mutate func(p *linkbridge.Plan)
			code   string
			expr   string
		}{"ActionStatus-" + st, func(p *linkbridge.Plan) { p.Actions[0].Status = st }, "", ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPlan()
			tt.mutate(&p)
			err := p.Validate()
			if tt.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantErr(t, err, tt.code, []string{tt.expr}, "")
		})
	}
}

func TestCaseloadNorms(t *testing.T) {
	t.Parallel()
	if linkbridge.CaseloadYearLow != 200 || linkbridge.CaseloadYearHigh != 250 || linkbridge.ContactsPerPersonLow != 6 || linkbridge.ContactsPerPersonMax != 12 {
		t.Errorf("caseload norms = %d–%d a year, %d–%d contacts; want 200–250 and 6–12 (NHS England DES)",
			linkbridge.CaseloadYearLow, linkbridge.CaseloadYearHigh, linkbridge.ContactsPerPersonLow, linkbridge.ContactsPerPersonMax)
	}
}
