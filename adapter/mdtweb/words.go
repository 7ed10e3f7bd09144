package mdtweb

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/London on hosts without a zoneinfo database

	"github.com/linkbridge/linkbridge"
)

// The plain words the pages use for the domain's codes. docs/mdt.md lists
// them; words_test.go checks that every code the domain defines has one.

// london is the time zone every date and time on the pages is shown in.
var london = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err) // embedded by time/tzdata: cannot happen
	}
	return loc
}()

// humanDate renders a date as people write it: "4 December 2026", in
// Europe/London. The zero time is "".
func humanDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(london).Format("2 January 2006")
}

// humanDateTime renders "4 December 2026 at 10:00" (24-hour clock, UK
// time).
func humanDateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(london).Format("2 January 2006 at 15:04")
}

// isoDate is the machine-readable date of a <time> element.
func isoDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(london).Format("2006-01-02")
}

// humanDay renders a YYYY-MM-DD date ("" stays "").
func humanDay(s string) string {
	t, err := time.ParseInLocation(time.DateOnly, s, london)
	if err != nil {
		return s
	}
	return t.Format("2 January 2006")
}

// days renders a number of days: "1 day", "12 days", "less than a day".
func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	switch {
	case d < 24*time.Hour:
		return "less than a day"
	case n == 1:
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

// statusGroup is the board's grouping of a referral.
type statusGroup string

// The board's status groups, in the order they are shown.
const (
	groupWaiting    statusGroup = "waiting"
	groupInProgress statusGroup = "in-progress"
	groupOnHold     statusGroup = "on-hold"
	groupClosed     statusGroup = "discharged"
)

var groups = []statusGroup{groupWaiting, groupInProgress, groupOnHold, groupClosed}

// groupTitle is the heading of a status group.
func groupTitle(g statusGroup) string {
	switch g {
	case groupWaiting:
		return "Waiting for first contact"
	case groupInProgress:
		return "In progress"
	case groupOnHold:
		return "On hold"
	case groupClosed:
		return "Discharged or closed"
	}
	return string(g)
}

// groupOf places a referral on the board: waiting until the first attended
// contact (requested, accepted), in progress, on hold, or closed.
func groupOf(rf *linkbridge.Referral) statusGroup {
	switch rf.Status {
	case linkbridge.TaskInProgress:
		return groupInProgress
	case linkbridge.TaskOnHold:
		return groupOnHold
	case linkbridge.TaskDraft, linkbridge.TaskRequested, linkbridge.TaskReceived, linkbridge.TaskReady, linkbridge.TaskAccepted:
		return groupWaiting
	}
	return groupClosed
}

// statusWords says where a referral is, in plain words.
func statusWords(rf *linkbridge.Referral) string {
	switch rf.Status {
	case linkbridge.TaskDraft, linkbridge.TaskRequested, linkbridge.TaskReceived, linkbridge.TaskReady:
		return "New referral, not yet accepted"
	case linkbridge.TaskAccepted:
		return "Accepted, waiting for first contact"
	case linkbridge.TaskInProgress:
		return "Seeing a link worker"
	case linkbridge.TaskOnHold:
		return "On hold"
	case linkbridge.TaskCompleted:
		if rf.DischargeReason != "" {
			return "Discharged: " + lower(dischargeWords(rf.DischargeReason))
		}
		return "Discharged"
	case linkbridge.TaskFailed:
		if rf.DischargeReason != "" {
			return "Ended: " + lower(dischargeWords(rf.DischargeReason))
		}
		return "Ended: could not be contacted"
	case linkbridge.TaskRejected:
		return "Declined: " + lower(declineWords(rf.DeclineReason))
	case linkbridge.TaskCancelled:
		if rf.RequestStatus == "revoked" {
			return "Cancelled by the practice"
		}
		if rf.DeclineReason != "" {
			return "Declined: " + lower(declineWords(rf.DeclineReason))
		}
		return "Cancelled by the service"
	case linkbridge.TaskEnteredInError:
		return "Recorded in error"
	}
	return string(rf.Status)
}

// lower lower-cases the first letter.
func lower(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// contactModeWords names how a contact took place (linkbridge.ContactMode).
func contactModeWords(m linkbridge.ContactMode) string {
	switch m {
	case linkbridge.ContactFaceToFace:
		return "Face-to-face meeting"
	case linkbridge.ContactPhone:
		return "Phone call"
	case linkbridge.ContactVideo:
		return "Video call"
	case linkbridge.ContactHomeVisit:
		return "Home visit"
	case linkbridge.ContactGroup:
		return "Group session"
	}
	return string(m)
}

// dischargeWords explains a discharge reason (linkbridge.DischargeReasons).
func dischargeWords(code string) string {
	switch code {
	case "goals-met":
		return "Goals met"
	case "referred-on":
		return "Referred on to another service"
	case "declined-further-support":
		return "Did not want further support"
	case "unable-to-contact":
		return "Could not be contacted"
	case "moved-away":
		return "Moved away"
	case "died":
		return "Died"
	case "inappropriate-referral":
		return "Social prescribing was not the right service"
	case "other":
		return "Another reason"
	}
	return code
}

// declineWords explains a decline reason (linkbridge.DeclineReasons).
func declineWords(code string) string {
	switch code {
	case linkbridge.DeclinePerson:
		return "The person did not want social prescribing"
	case "inappropriate-referral":
		return "Social prescribing was not the right service"
	case "out-of-area":
		return "Lives outside the service's area"
	case "service-at-capacity":
		return "The service had no capacity"
	case "duplicate-referral":
		return "A duplicate of another referral"
	case "other":
		return "Another reason"
	}
	if code == "" {
		return "No reason given"
	}
	return code
}

// goalWords says where a goal stands.
func goalWords(status string) string {
	switch status {
	case linkbridge.GoalActive:
		return "Working towards it"
	case linkbridge.GoalOnHold:
		return "Paused"
	case linkbridge.GoalAchieved:
		return "Achieved"
	case linkbridge.GoalNotAchieved:
		return "Not achieved"
	case linkbridge.GoalCancelled:
		return "Stopped"
	}
	return status
}

// onwardWords says where an onward referral stands.
func onwardWords(status string) string {
	switch status {
	case "sent":
		return "Referred"
	case "accepted":
		return "Accepted by the service"
	case "attended":
		return "Attending"
	case "declined":
		return "Did not take it up"
	}
	return status
}

// consentWords says what the person agreed to share with their GP record.
func consentWords(c linkbridge.ConsentLevel) string {
	switch c {
	case linkbridge.ConsentFull:
		return "Everything, including notes"
	case linkbridge.ConsentNone:
		return "Nothing beyond the referral's status"
	}
	return "Coded entries and statuses only, no notes (until the person says otherwise)"
}

// instrumentWords names an outcome measure.
func instrumentWords(i linkbridge.Instrument) string {
	switch i {
	case linkbridge.SWEMWBS:
		return "Short Warwick-Edinburgh Mental Wellbeing Scale (SWEMWBS)"
	case linkbridge.WEMWBS:
		return "Warwick-Edinburgh Mental Wellbeing Scale (WEMWBS)"
	case linkbridge.ONS4:
		return "ONS personal wellbeing questions (ONS4)"
	case linkbridge.UCLA3:
		return "UCLA 3-item loneliness scale"
	}
	return string(i)
}

// timepointWords says when in the episode a measure was taken.
func timepointWords(t linkbridge.Timepoint) string {
	switch t {
	case linkbridge.TimepointBaseline:
		return "at the start"
	case linkbridge.TimepointReview:
		return "at a review"
	case linkbridge.TimepointFinal:
		return "at the end"
	}
	return string(t)
}

// ons4ItemWords names the ONS4 questions (linkbridge.ONS4Items).
func ons4ItemWords(item string) string {
	switch item {
	case "life-satisfaction":
		return "Life satisfaction"
	case "worthwhile":
		return "Things done are worthwhile"
	case "happy-yesterday":
		return "Happiness yesterday"
	case "anxious-yesterday":
		return "Anxiety yesterday (lower is better)"
	}
	return item
}

// sourceWords names where a referral came from (linkbridge.ReferralSource).
func sourceWords(s linkbridge.ReferralSource) string {
	switch s {
	case linkbridge.SourceGPPractice:
		return "GP practice"
	case linkbridge.SourcePharmacy:
		return "Community pharmacy"
	case linkbridge.SourceOtherStatutory:
		return "Another NHS or public service"
	case linkbridge.SourceVoluntary:
		return "Voluntary or community organisation"
	case linkbridge.SourceSelf:
		return "Self-referral"
	}
	return "Not recorded"
}

// flagWords names a case flag (linkbridge.CaseRecord.Flags).
func flagWords(flag string, dnaReviewAfter int) string {
	switch flag {
	case linkbridge.FlagDNAReview:
		return fmt.Sprintf("Did not attend %d in a row", dnaReviewAfter)
	case linkbridge.FlagDoNotContact:
		return "Do not contact"
	case linkbridge.FlagSafeguarding:
		return "Safeguarding concern"
	case linkbridge.FlagReviewOverdue:
		return "Review overdue"
	}
	return flag
}

// nhsNumber formats an NHS number as it is printed: "943 476 5919".
func nhsNumber(n string) string {
	if len(n) != 10 {
		return n
	}
	return n[:3] + " " + n[3:6] + " " + n[6:]
}

// eventWords describes an entry of the referral's history that the
// timeline shows as it is (contacts and measures are shown from their own
// records). "" leaves the event out.
func eventWords(e *linkbridge.ReferralEvent, rf *linkbridge.Referral) string {
	switch e.Action {
	case "received":
		return "Referred to social prescribing"
	case linkbridge.ActionAccept:
		return "Accepted by the social prescribing service"
	case linkbridge.ActionDecline:
		return "Referral declined: " + lower(declineWords(rf.DeclineReason))
	case linkbridge.ActionAgree:
		return "The person agreed to take part (coded in the GP record)"
	case linkbridge.ActionReassign:
		return "Handed to another link worker"
	case linkbridge.ActionStart, linkbridge.ActionResume:
		return "Support started again"
	case linkbridge.ActionHold:
		return "Put on hold"
	case linkbridge.ActionComplete:
		return "Discharged: " + lower(dischargeWords(rf.DischargeReason))
	case linkbridge.ActionFail:
		return "Support ended early"
	case linkbridge.ActionCancel:
		return "Cancelled by the service"
	case "plan":
		return "Care and support plan agreed or updated"
	case "consent":
		return "What the person shares with their GP changed"
	case "revoke":
		return "Referral withdrawn by the GP practice"
	case "goal-withdrawn":
		return "A goal recorded in error was removed"
	}
	if strings.HasPrefix(e.Action, "task-") {
		switch linkbridge.TaskStatus(strings.TrimPrefix(e.Action, "task-")) {
		case linkbridge.TaskCancelled:
			return "Referral cancelled"
		case linkbridge.TaskAccepted:
			return "Accepted by the social prescribing service"
		case linkbridge.TaskInProgress:
			return "Support started"
		case linkbridge.TaskOnHold:
			return "Put on hold"
		case linkbridge.TaskCompleted:
			return "Discharged"
		case linkbridge.TaskRejected:
			return "Referral declined"
		case linkbridge.TaskFailed:
			return "Support ended early"
		}
	}
	return "" // contact, measure and their corrections: shown from their records
}
