package linkbridge_test

import (
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// openReferral is a referral made on 20 November, accepted on the 21st by
// lw-1, in status s.
func openReferral(s linkbridge.TaskStatus) *linkbridge.Referral {
	return &linkbridge.Referral{
		ID: "r1", TaskID: "t1", PersonID: "p1", Status: s, Version: 3,
		AuthoredOn: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
		ReceivedAt: time.Date(2026, 11, 20, 9, 5, 0, 0, time.UTC),
		AcceptedAt: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
		LinkWorker: linkbridge.LinkWorker{ID: "lw-1", Name: "Sam"},
	}
}

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// TestEpisodeCoding: the moments that code the referral in the GP record
// (docs/domain.md#coding-the-episode). Agreement is recorded once, by
// whoever holds the case; the person may decline after the service
// accepted only before agreeing, and that cancels the Task; a service's
// own refusal is not the person declining.
func TestEpisodeCoding(t *testing.T) {
	t.Parallel()
	t.Run("AgreeOnce", func(t *testing.T) {
		r := openReferral(linkbridge.TaskInProgress)
		if err := r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAgree, At: at("2026-11-25T10:00:00Z")}, caseNow); err != nil {
			t.Fatal(err)
		}
		if !r.AgreedAt.Equal(*at("2026-11-25T10:00:00Z")) || r.AgreedBy.ID != "lw-1" || r.Status != linkbridge.TaskInProgress {
			t.Fatalf("after agree: agreed %v by %+v, status %s", r.AgreedAt, r.AgreedBy, r.Status)
		}
		err := r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAgree}, caseNow)
		checkCode(t, err, linkbridge.ECONFLICT, "action")
	})
	t.Run("AgreeNotBeforeAcceptance", func(t *testing.T) {
		r := openReferral(linkbridge.TaskAccepted)
		err := r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAgree, At: at("2026-11-20T12:00:00Z")}, caseNow)
		checkCode(t, err, linkbridge.EUNPROCESSABLE, "at")
	})
	t.Run("AgreeNeedsOpenCase", func(t *testing.T) {
		for _, s := range []linkbridge.TaskStatus{"requested", "completed", "rejected", "cancelled"} {
			r := openReferral(s)
			checkCode(t, r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAgree}, caseNow), linkbridge.ECONFLICT, "action")
		}
	})
	t.Run("PersonDeclinesBeforeAcceptance", func(t *testing.T) {
		r := openReferral(linkbridge.TaskRequested)
		r.AcceptedAt = time.Time{}
		if err := r.Apply(&linkbridge.LifecycleCommand{Action: "decline", ReasonCode: linkbridge.DeclinePerson}, caseNow); err != nil {
			t.Fatal(err)
		}
		if r.Status != linkbridge.TaskRejected || !r.PersonDeclinedAt.Equal(caseNow) {
			t.Fatalf("status %s, declined at %v", r.Status, r.PersonDeclinedAt)
		}
	})
	t.Run("ServiceDeclinesIsNotThePerson", func(t *testing.T) {
		r := openReferral(linkbridge.TaskRequested)
		if err := r.Apply(&linkbridge.LifecycleCommand{Action: "decline", ReasonCode: "out-of-area"}, caseNow); err != nil {
			t.Fatal(err)
		}
		if !r.PersonDeclinedAt.IsZero() {
			t.Fatalf("a service's refusal recorded the person declining at %v", r.PersonDeclinedAt)
		}
	})
	t.Run("PersonDeclinesAfterAcceptance", func(t *testing.T) {
		r := openReferral(linkbridge.TaskAccepted)
		if err := r.Apply(&linkbridge.LifecycleCommand{Action: "decline", ReasonCode: linkbridge.DeclinePerson, At: at("2026-11-22T10:00:00Z")}, caseNow); err != nil {
			t.Fatal(err)
		}
		if r.Status != linkbridge.TaskCancelled || !r.PersonDeclinedAt.Equal(*at("2026-11-22T10:00:00Z")) || !r.CompletedAt.Equal(r.PersonDeclinedAt) {
			t.Fatalf("status %s, declined at %v, completed %v", r.Status, r.PersonDeclinedAt, r.CompletedAt)
		}
	})
	t.Run("NoDeclineAfterAgreement", func(t *testing.T) {
		r := openReferral(linkbridge.TaskInProgress)
		r.AgreedAt = *at("2026-11-22T10:00:00Z")
		before := *r
		checkCode(t, r.Apply(&linkbridge.LifecycleCommand{Action: "decline", ReasonCode: linkbridge.DeclinePerson}, caseNow), linkbridge.ECONFLICT, "action")
		if r.Status != before.Status || !r.PersonDeclinedAt.IsZero() {
			t.Fatalf("a refused decline changed the referral: %+v", r)
		}
	})
}

// TestReassign: a new link worker is a reassignment of an open case; the
// agreement keeps who recorded it.
func TestReassign(t *testing.T) {
	t.Parallel()
	r := openReferral(linkbridge.TaskInProgress)
	r.AgreedAt, r.AgreedBy = *at("2026-11-22T10:00:00Z"), r.LinkWorker
	checkCode(t, r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-2"}}, caseNow), linkbridge.ECONFLICT, "action")
	checkCode(t, r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionReassign}, caseNow), linkbridge.EUNPROCESSABLE, "linkWorker.id")
	checkCode(t, r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionReassign, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1"}}, caseNow), linkbridge.ECONFLICT, "linkWorker.id")
	if err := r.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionReassign, LinkWorker: &linkbridge.LinkWorker{ID: "lw-2", Name: "Alex"}}, caseNow); err != nil {
		t.Fatal(err)
	}
	if r.LinkWorker.ID != "lw-2" || r.AgreedBy.ID != "lw-1" || r.Status != linkbridge.TaskInProgress {
		t.Fatalf("after reassign: holder %+v, agreed by %+v, status %s", r.LinkWorker, r.AgreedBy, r.Status)
	}
	done := openReferral(linkbridge.TaskCompleted)
	checkCode(t, done.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionReassign, LinkWorker: &linkbridge.LinkWorker{ID: "lw-2"}}, caseNow), linkbridge.ECONFLICT, "action")
}

// TestActionTimes: an action's at defaults to now, may not be in the
// future (beyond the clock skew), before the referral was made, or (but
// for accept) before it was accepted.
func TestActionTimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		from linkbridge.TaskStatus
		cmd  linkbridge.LifecycleCommand
		ok   bool
	}{
		{"AcceptBackdated", "requested", linkbridge.LifecycleCommand{Action: "accept", LinkWorker: &linkbridge.LinkWorker{ID: "x"}, At: at("2026-11-20T10:00:00Z")}, true},
		{"AcceptBeforeReferral", "requested", linkbridge.LifecycleCommand{Action: "accept", LinkWorker: &linkbridge.LinkWorker{ID: "x"}, At: at("2026-11-19T10:00:00Z")}, false},
		{"AcceptInFuture", "requested", linkbridge.LifecycleCommand{Action: "accept", LinkWorker: &linkbridge.LinkWorker{ID: "x"}, At: at("2026-12-02T09:00:00Z")}, false},
		{"AcceptWithinSkew", "requested", linkbridge.LifecycleCommand{Action: "accept", LinkWorker: &linkbridge.LinkWorker{ID: "x"}, At: at("2026-12-01T09:04:00Z")}, true},
		{"CompleteBeforeAcceptance", "in-progress", linkbridge.LifecycleCommand{Action: "complete", ReasonCode: "goals-met", At: at("2026-11-20T18:00:00Z")}, false},
		{"CompleteBackdated", "in-progress", linkbridge.LifecycleCommand{Action: "complete", ReasonCode: "goals-met", At: at("2026-11-28T18:00:00Z")}, true},
		{"HoldInFuture", "in-progress", linkbridge.LifecycleCommand{Action: "hold", Reason: "away", At: at("2027-01-01T00:00:00Z")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openReferral(tt.from)
			if tt.from == "requested" {
				r.AcceptedAt = time.Time{}
			}
			err := r.Apply(&tt.cmd, caseNow)
			if !tt.ok {
				checkCode(t, err, linkbridge.EUNPROCESSABLE, "at")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tt.cmd.Action {
			case "accept":
				if !r.AcceptedAt.Equal(*tt.cmd.At) {
					t.Errorf("accepted at %v, want %v", r.AcceptedAt, *tt.cmd.At)
				}
			case "complete":
				if !r.CompletedAt.Equal(*tt.cmd.At) {
					t.Errorf("completed at %v, want %v", r.CompletedAt, *tt.cmd.At)
				}
			}
		})
	}
}

// checkCode fails unless err is an application error with code at expr.
func checkCode(t *testing.T, err error, code, expr string) {
	t.Helper()
	if linkbridge.ErrorCode(err) != code {
		t.Fatalf("error %v, want %s", err, code)
	}
	if ex := linkbridge.ErrorExpression(err); len(ex) == 0 || ex[0] != expr {
		t.Fatalf("error %v names %v, want %s", err, ex, expr)
	}
}

// TestCaseFlags: a case is flagged for review after the policy's number of
// contacts in a row not attended (an attended one resets the run), and
// shows do-not-contact, safeguarding and an overdue review.
func TestCaseFlags(t *testing.T) {
	t.Parallel()
	day := func(d int) time.Time { return time.Date(2026, 11, d, 10, 0, 0, 0, time.UTC) }
	contacts := func(attended ...bool) []*linkbridge.Contact {
		var out []*linkbridge.Contact
		// Stored out of time order: the run is by time.
		for i := len(attended) - 1; i >= 0; i-- {
			out = append(out, &linkbridge.Contact{ID: string(rune('a' + i)), At: day(21 + i), Attended: attended[i]})
		}
		return out
	}
	tests := []struct {
		name     string
		status   linkbridge.TaskStatus
		contacts []*linkbridge.Contact
		policy   int
		plan     linkbridge.Plan
		dnc      bool
		want     []string
	}{
		{"None", linkbridge.TaskInProgress, contacts(true, false), 0, linkbridge.Plan{}, false, []string{}},
		{"TwoDNAs", linkbridge.TaskInProgress, contacts(true, false, false), 0, linkbridge.Plan{}, false, []string{linkbridge.FlagDNAReview}},
		{"AttendedResets", linkbridge.TaskInProgress, contacts(false, false, true), 0, linkbridge.Plan{}, false, []string{}},
		{"PolicyThree", linkbridge.TaskInProgress, contacts(true, false, false), 3, linkbridge.Plan{}, false, []string{}},
		{"ClosedCase", linkbridge.TaskCompleted, contacts(false, false), 0, linkbridge.Plan{ReviewDate: "2026-11-01"}, false, []string{}},
		{"Everything", linkbridge.TaskOnHold, contacts(false, false), 0, linkbridge.Plan{Safeguarding: true, ReviewDate: "2026-11-30"}, true,
			[]string{linkbridge.FlagDNAReview, linkbridge.FlagDoNotContact, linkbridge.FlagSafeguarding, linkbridge.FlagReviewOverdue}},
		{"ReviewToday", linkbridge.TaskInProgress, nil, 0, linkbridge.Plan{ReviewDate: "2026-12-01"}, false, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cr := &linkbridge.CaseRecord{Referral: &linkbridge.Referral{Status: tt.status, DoNotContact: tt.dnc}, Contacts: tt.contacts, Plan: tt.plan}
			got := cr.Flags(caseNow, tt.policy)
			if len(got) != len(tt.want) {
				t.Fatalf("Flags = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("Flags = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestDoNotContact: on a referral marked do-not-contact the service may not
// reach out (phone, video, home visit): 409 naming the mode; a meeting the
// person comes to is recorded.
func TestDoNotContact(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode linkbridge.ContactMode
		ok   bool
	}{
		{linkbridge.ContactPhone, false}, {linkbridge.ContactVideo, false}, {linkbridge.ContactHomeVisit, false},
		{linkbridge.ContactFaceToFace, true}, {linkbridge.ContactGroup, true},
	} {
		cr := &linkbridge.CaseRecord{Referral: openReferral(linkbridge.TaskAccepted)}
		cr.Referral.DoNotContact = true
		err := cr.AddContact(&linkbridge.Contact{ID: "c1", At: caseNow.Add(-time.Hour), Mode: tt.mode, Minutes: 30, Attended: true}, caseNow)
		if tt.ok {
			if err != nil || len(cr.Contacts) != 1 {
				t.Errorf("%s contact on do-not-contact: %v, want recorded", tt.mode, err)
			}
			continue
		}
		checkCode(t, err, linkbridge.ECONFLICT, "mode")
		if len(cr.Contacts) != 0 || cr.Referral.Status != linkbridge.TaskAccepted {
			t.Errorf("a refused %s contact changed the case", tt.mode)
		}
	}
}

// TestCaseFlagsIgnoreWithdrawn: a contact withdrawn as recorded in error
// neither adds to nor breaks the run of contacts not attended.
func TestCaseFlagsIgnoreWithdrawn(t *testing.T) {
	t.Parallel()
	at := func(d int) time.Time { return time.Date(2026, 11, d, 10, 0, 0, 0, time.UTC) }
	withdrawn := at(29)
	cr := &linkbridge.CaseRecord{Referral: &linkbridge.Referral{Status: linkbridge.TaskInProgress}, Contacts: []*linkbridge.Contact{
		{ID: "a", At: at(21), Attended: true},
		{ID: "b", At: at(22)},
		{ID: "c", At: at(23), Attended: true, Correction: linkbridge.Correction{WithdrawnAt: withdrawn}},
		{ID: "d", At: at(24)},
	}}
	if got := cr.Flags(caseNow, 2); len(got) != 1 || got[0] != linkbridge.FlagDNAReview {
		t.Fatalf("Flags = %v, want dna-review (the withdrawn attended contact does not break the run)", got)
	}
	cr.Contacts[1].WithdrawnAt, cr.Contacts[2].WithdrawnAt = withdrawn, time.Time{}
	if got := cr.Flags(caseNow, 2); len(got) != 0 {
		t.Fatalf("Flags = %v, want none (a withdrawn DNA does not count)", got)
	}
}
