package linkbridge

import (
	"fmt"
	"strings"
	"time"
)

// ConsentLevel is what the person agreed may be shared with the GP record.
type ConsentLevel string

// Consent levels (the "Share All Data" switch of real platforms;
// docs/domain.md#consent).
const (
	// ConsentFull shares coded entries and free text.
	ConsentFull ConsentLevel = "full"
	// ConsentCodesOnly shares coded entries and statuses, never free text
	// (notes, what matters, summaries).
	ConsentCodesOnly ConsentLevel = "codes-only"
	// ConsentNone shares nothing but the referral Task status.
	ConsentNone ConsentLevel = "none"
)

// Valid reports whether c is a known consent level.
func (c ConsentLevel) Valid() bool {
	return c == ConsentFull || c == ConsentCodesOnly || c == ConsentNone
}

// Business statuses carried in Task.businessStatus for finer steps.
const (
	BusinessAwaitingTriage   = "awaiting-triage"
	BusinessAccepted         = "accepted-awaiting-first-contact"
	BusinessFirstContactMade = "first-contact-made"
	BusinessPlanAgreed       = "plan-agreed"
	BusinessDischarged       = "discharged"
	BusinessDeclined         = "declined"
	BusinessOnHold           = "on-hold"
	BusinessCouldNotContact  = "could-not-contact"
	BusinessCancelledBySPLW  = "cancelled-by-service"
)

// DeclinePerson is the decline reason that is the person's own: the only
// one coded as "Social prescribing declined" in the GP record.
const DeclinePerson = "person-declined"

// DeclineReasons are the coded reasons a referral is declined.
var DeclineReasons = []string{DeclinePerson, "inappropriate-referral", "out-of-area", "service-at-capacity", "duplicate-referral", "other"}

// DischargeReasons are the local discharge reasons (no national list exists;
// docs/domain.md#business-statuses-decline-and-discharge-reasons).
var DischargeReasons = []string{"goals-met", "referred-on", "declined-further-support", "unable-to-contact", "moved-away", "died", "inappropriate-referral", "other"}

// LinkWorker identifies the social prescribing link worker who holds a case.
type LinkWorker struct {
	// ID is the link worker's identifier in the social prescribing service
	// (e.g. an SDS user id); it is what logs and FHIR references carry.
	ID string `json:"id"`
	// Name is shown in the GP record as the owner's display.
	Name string `json:"name,omitempty"`
	// SDSUserID is the link worker's NHS Spine Directory Service user id,
	// when they have one (an NHS smartcard): FHIR references then name
	// them by it, which the GP record recognises, instead of by ID in the
	// deployment's own link-worker system (docs/identifiers.md#link-workers).
	SDSUserID string `json:"sdsUserId,omitempty"`
}

// Lifecycle actions a link worker takes on a referral.
const (
	ActionAccept   = "accept"
	ActionDecline  = "decline"
	ActionStart    = "start"
	ActionHold     = "hold"
	ActionResume   = "resume"
	ActionComplete = "complete"
	ActionFail     = "fail"
	ActionCancel   = "cancel"
	// ActionAgree records that the person agreed to take part: the moment
	// the referral is coded (docs/domain.md#coding-the-episode).
	ActionAgree = "agree"
	// ActionReassign hands an open case to another link worker.
	ActionReassign = "reassign"
)

// MaxClockSkew is how far ahead of the server's clock a recorded time may
// be: a device's clock a little fast is not a time in the future.
const MaxClockSkew = 5 * time.Minute

// LifecycleCommand is one link-worker action on a referral.
type LifecycleCommand struct {
	Action     string      `json:"action"`
	LinkWorker *LinkWorker `json:"linkWorker,omitempty"`
	// At is when the action happened; nil means now. It may not be in the
	// future, nor before the referral was made, nor (but for accept)
	// before the referral was accepted.
	At *time.Time `json:"at,omitempty"`
	// ReasonCode is a coded reason (DeclineReasons, DischargeReasons).
	ReasonCode string `json:"reasonCode,omitempty"`
	// Reason is free text: why declined, on hold, failed or cancelled.
	Reason string `json:"reason,omitempty"`
	// Summary is the discharge summary (complete).
	Summary string `json:"summary,omitempty"`
	// GoalOutcomes records, at discharge (complete, fail, cancel), the
	// outcome of open goals by goal id: achieved, not-achieved or
	// cancelled. A goal left out takes its outcome from the discharge
	// (CaseRecord.CloseGoals).
	GoalOutcomes map[string]string `json:"goalOutcomes,omitempty"`
}

// Apply performs a lifecycle command on the referral, enforcing the SDOH
// Task state machine for the performer side. It changes r in place and
// returns ECONFLICT (naming current and requested status) for an illegal
// move, EUNPROCESSABLE for a missing or unknown reason.
func (r *Referral) Apply(cmd *LifecycleCommand, now time.Time) error {
	for _, t := range []struct{ path, s string }{{"reason", cmd.Reason}, {"summary", cmd.Summary}, {"linkWorker.name", linkWorkerName(cmd)}} {
		if err := checkText(t.path, t.s); err != nil {
			return err
		}
	}
	if err := checkLinkWorker(cmd.LinkWorker); err != nil {
		return err
	}
	at := now
	if cmd.At != nil {
		at = cmd.At.UTC()
	}
	if err := r.CheckWhen("at", at, now, cmd.Action != ActionAccept && cmd.Action != ActionDecline); err != nil {
		return err
	}
	var to TaskStatus
	switch cmd.Action {
	case ActionAccept:
		to = TaskAccepted
		if cmd.LinkWorker == nil || cmd.LinkWorker.ID == "" {
			return Errorf(EUNPROCESSABLE, "accepting a referral assigns a link worker: linkWorker.id is required").At("linkWorker.id")
		}
		if r.Status != TaskRequested {
			return Errorf(ECONFLICT, "the referral is %s, not requested: it was accepted already (to hand it to another link worker, reassign)", r.Status).At("action")
		}
	case ActionReassign, ActionAgree:
		return r.applyOpenCase(cmd, at)
	case ActionDecline:
		if !oneOf(cmd.ReasonCode, DeclineReasons) {
			return Errorf(EUNPROCESSABLE, "decline needs a reasonCode, one of %s", strings.Join(DeclineReasons, ", ")).At("reasonCode")
		}
		to = TaskRejected
		if r.Status.Open() {
			// Accepted already: only the person can still decline, before
			// agreeing to take part; the Task is cancelled (SDOH: either
			// side may cancel; rejected is the service's refusal before
			// acceptance).
			if cmd.ReasonCode != DeclinePerson {
				return Errorf(ECONFLICT, "the referral is %s: accepted by the service, it can no longer be rejected; only the person can decline it now (reasonCode %s), or end it with complete, fail or cancel", r.Status, DeclinePerson).At("reasonCode")
			}
			if !r.AgreedAt.IsZero() {
				return Errorf(ECONFLICT, "the person agreed to take part on %s: end the episode with complete and reasonCode declined-further-support", r.AgreedAt.Format(time.DateOnly)).At("action")
			}
			to = TaskCancelled
		}
	case ActionStart, ActionResume:
		to = TaskInProgress
	case ActionHold:
		to = TaskOnHold
		if cmd.Reason == "" {
			return Errorf(EUNPROCESSABLE, "putting a referral on hold needs a reason").At("reason")
		}
	case ActionComplete:
		to = TaskCompleted
		if !oneOf(cmd.ReasonCode, DischargeReasons) {
			return Errorf(EUNPROCESSABLE, "discharge needs a reasonCode, one of %s", strings.Join(DischargeReasons, ", ")).At("reasonCode")
		}
	case ActionFail:
		to = TaskFailed
		if cmd.Reason == "" && cmd.ReasonCode == "" {
			return Errorf(EUNPROCESSABLE, "failing a referral needs a reason (e.g. could not contact)").At("reason")
		}
		if cmd.ReasonCode != "" && !oneOf(cmd.ReasonCode, DischargeReasons) {
			return Errorf(EUNPROCESSABLE, "a failed referral's reasonCode is one of %s", strings.Join(DischargeReasons, ", ")).At("reasonCode")
		}
	case ActionCancel:
		to = TaskCancelled
		if cmd.Reason == "" {
			return Errorf(EUNPROCESSABLE, "cancelling a referral needs a reason").At("reason")
		}
	default:
		return Errorf(EUNPROCESSABLE, "unknown action %q", cmd.Action).At("action")
	}
	if cmd.Action == ActionResume && r.Status != TaskOnHold {
		return Errorf(ECONFLICT, "only a referral on hold can be resumed; it is %s", r.Status).At("action")
	}
	if cmd.Action == ActionStart && r.Status != TaskAccepted {
		return Errorf(ECONFLICT, "only an accepted referral can be started; it is %s", r.Status).At("action")
	}
	if err := CheckTaskTransition(r.Status, to, ActorPerformer); err != nil {
		return err
	}
	r.Status = to
	r.StatusReason = ""
	switch cmd.Action {
	case ActionAccept:
		r.LinkWorker = *cmd.LinkWorker
		r.AcceptedAt = at
		r.BusinessStatus = BusinessAccepted
	case ActionDecline:
		r.DeclineReason = cmd.ReasonCode
		r.StatusReason = reasonText(cmd.ReasonCode, cmd.Reason)
		r.BusinessStatus = BusinessDeclined
		if cmd.ReasonCode == DeclinePerson {
			r.PersonDeclinedAt = at
		}
		if to == TaskCancelled {
			r.CompletedAt = at
		}
	case ActionStart, ActionResume:
		r.BusinessStatus = BusinessFirstContactMade
	case ActionHold:
		r.StatusReason = cmd.Reason
		r.BusinessStatus = BusinessOnHold
	case ActionComplete:
		r.DischargeReason = cmd.ReasonCode
		r.DischargeSummary = cmd.Summary
		// The coded reason only: the summary is free text, shared on the
		// acceptance Procedure with full consent.
		r.StatusReason = reasonText(cmd.ReasonCode, "")
		r.CompletedAt = at
		r.BusinessStatus = BusinessDischarged
	case ActionFail:
		r.DischargeReason = cmd.ReasonCode
		r.StatusReason = reasonText(cmd.ReasonCode, cmd.Reason)
		r.CompletedAt = at
		// The business status says why the episode failed: could not
		// contact only when that is the reason (or none was coded).
		r.BusinessStatus = BusinessCouldNotContact
		if cmd.ReasonCode != "" && cmd.ReasonCode != "unable-to-contact" {
			r.BusinessStatus = "ended-" + cmd.ReasonCode
		}
	case ActionCancel:
		r.StatusReason = cmd.Reason
		r.CompletedAt = at
		r.BusinessStatus = BusinessCancelledBySPLW
	}
	return nil
}

// applyOpenCase performs the actions on an open case that do not move the
// Task: agree (the person agreed to take part) and reassign.
func (r *Referral) applyOpenCase(cmd *LifecycleCommand, at time.Time) error {
	if !r.Status.Open() {
		return Errorf(ECONFLICT, "%s is for an accepted, open referral; this one is %s", cmd.Action, r.Status).At("action")
	}
	switch cmd.Action {
	case ActionAgree:
		if !r.AgreedAt.IsZero() {
			return Errorf(ECONFLICT, "the person agreed to take part on %s already: the referral is coded once per episode", r.AgreedAt.Format(time.DateOnly)).At("action")
		}
		r.AgreedAt, r.AgreedBy = at, r.LinkWorker
	case ActionReassign:
		if cmd.LinkWorker == nil || cmd.LinkWorker.ID == "" {
			return Errorf(EUNPROCESSABLE, "reassigning a referral names the link worker: linkWorker.id is required").At("linkWorker.id")
		}
		if cmd.LinkWorker.ID == r.LinkWorker.ID {
			return Errorf(ECONFLICT, "link worker %s holds this referral already", r.LinkWorker.ID).At("linkWorker.id")
		}
		r.LinkWorker = *cmd.LinkWorker
	}
	return nil
}

// Started returns when the referral was made: the referrer's authoredOn,
// or when it was received if that is earlier or unknown.
func (r *Referral) Started() time.Time {
	if !r.AuthoredOn.IsZero() && (r.ReceivedAt.IsZero() || r.AuthoredOn.Before(r.ReceivedAt)) {
		return r.AuthoredOn
	}
	return r.ReceivedAt
}

// CheckWhen checks the time of something recorded on the referral: never
// in the future (beyond MaxClockSkew), never before the referral was made
// and, with afterAcceptance, never before it was accepted.
// EUNPROCESSABLE at path otherwise.
func (r *Referral) CheckWhen(path string, at, now time.Time, afterAcceptance bool) error {
	if at.After(now.Add(MaxClockSkew)) {
		return Errorf(EUNPROCESSABLE, "%s is in the future", path).At(path)
	}
	if start := r.Started(); !start.IsZero() && at.Before(start) {
		return Errorf(EUNPROCESSABLE, "%s is before the referral was made (%s)", path, start.Format(time.RFC3339)).At(path)
	}
	if afterAcceptance && !r.AcceptedAt.IsZero() && at.Before(r.AcceptedAt) {
		return Errorf(EUNPROCESSABLE, "%s is before the referral was accepted (%s)", path, r.AcceptedAt.Format(time.RFC3339)).At(path)
	}
	return nil
}

func reasonText(code, text string) string {
	code = strings.ReplaceAll(code, "-", " ")
	if text == "" {
		return code
	}
	if code == "" {
		return text
	}
	return code + ": " + text
}

func oneOf(s string, list []string) bool {
	for _, x := range list {
		if s == x {
			return true
		}
	}
	return false
}

// ContactMode is how a contact took place.
type ContactMode string

// Contact modes.
const (
	ContactFaceToFace ContactMode = "face-to-face"
	ContactPhone      ContactMode = "phone"
	ContactVideo      ContactMode = "video"
	ContactHomeVisit  ContactMode = "home-visit"
	ContactGroup      ContactMode = "group"
)

// Outreach reports whether a contact of this mode is the service reaching
// out to the person (phone, video, a home visit), which a referral marked
// do-not-contact forbids (docs/domain.md#do-not-contact).
func (m ContactMode) Outreach() bool {
	return m == ContactPhone || m == ContactVideo || m == ContactHomeVisit
}

// Contact is one contact between the link worker and the person.
type Contact struct {
	ID         string      `json:"id"`
	ReferralID string      `json:"referralId"`
	At         time.Time   `json:"at"`
	Mode       ContactMode `json:"mode"`
	Minutes    int         `json:"minutes"`
	// Attended is false for a contact the person did not attend (DNA).
	Attended  bool      `json:"attended"`
	Notes     string    `json:"notes,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Correction records how the contact was corrected since it was
	// recorded (docs/domain.md#corrections); set by the server only.
	Correction
}

// Validate checks a contact without I/O.
func (c *Contact) Validate() error {
	if err := checkText("notes", c.Notes); err != nil {
		return err
	}
	switch c.Mode {
	case ContactFaceToFace, ContactPhone, ContactVideo, ContactHomeVisit, ContactGroup:
	default:
		return Errorf(EUNPROCESSABLE, "mode must be face-to-face, phone, video, home-visit or group, not %q", c.Mode).At("mode")
	}
	if c.At.IsZero() {
		return Errorf(EUNPROCESSABLE, "contact time is required").At("at")
	}
	if c.Minutes < 0 || c.Minutes > 24*60 {
		return Errorf(EUNPROCESSABLE, "minutes must be between 0 and 1440").At("minutes")
	}
	if !c.Attended && c.Minutes > 0 {
		return Errorf(EUNPROCESSABLE, "a contact the person did not attend has no minutes").At("minutes")
	}
	return nil
}

// Need is a need or concern, coded in SNOMED CT where given, text otherwise.
type Need struct {
	Code *Coding `json:"code,omitempty"`
	Text string  `json:"text,omitempty"`
}

// Goal statuses.
const (
	GoalActive      = "active"
	GoalOnHold      = "on-hold"
	GoalAchieved    = "achieved"
	GoalNotAchieved = "not-achieved"
	GoalCancelled   = "cancelled"
	// GoalEnteredInError is a goal withdrawn because it was recorded in
	// error (CaseRecord.WithdrawGoal), unlike a cancelled one, which was
	// meant and then given up (docs/domain.md#corrections).
	GoalEnteredInError = "entered-in-error"
)

// Goal is a goal of the personalised care and support plan.
type Goal struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	// Importance and Confidence are the person's own 1–10 ratings (PRSB).
	Importance int    `json:"importance"`
	Confidence int    `json:"confidence"`
	Status     string `json:"status"`
	// WithdrawnAt and WithdrawnReason are set when the goal was withdrawn
	// as entered in error (status entered-in-error).
	WithdrawnAt     time.Time `json:"withdrawnAt,omitzero"`
	WithdrawnReason string    `json:"withdrawnReason,omitempty"`
}

// Action statuses (PRSB action status refset, as FHIR CarePlan activity
// statuses).
var ActionStatuses = []string{"not-started", "scheduled", "in-progress", "completed", "cancelled", "stopped"}

// PlanAction is an action agreed in the plan.
type PlanAction struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Who         string `json:"who,omitempty"`
	Due         string `json:"due,omitempty"` // YYYY-MM-DD
	Status      string `json:"status"`
}

// Onward referral statuses.
var OnwardStatuses = []string{"sent", "accepted", "attended", "declined"}

// OnwardReferral is a referral on to a community or voluntary service.
type OnwardReferral struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	// OrganisationODS is the receiving organisation's ODS code, if it has one.
	OrganisationODS string    `json:"organisationOds,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	Status          string    `json:"status"`
	SentAt          time.Time `json:"sentAt"`
}

// Signpost is information given about a service: recorded, but not a
// referral (PRSB).
type Signpost struct {
	ID     string    `json:"id"`
	To     string    `json:"to"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Plan is the personalised care and support plan and what the link worker
// learned about the person.
type Plan struct {
	WhatMatters     string           `json:"whatMatters,omitempty"`
	Needs           []Need           `json:"needs,omitempty"`
	Risks           []string         `json:"risks,omitempty"`
	Safeguarding    bool             `json:"safeguarding,omitempty"`
	Goals           []Goal           `json:"goals,omitempty"`
	Actions         []PlanAction     `json:"actions,omitempty"`
	OnwardReferrals []OnwardReferral `json:"onwardReferrals,omitempty"`
	Signposts       []Signpost       `json:"signposts,omitempty"`
	ReviewDate      string           `json:"reviewDate,omitempty"` // YYYY-MM-DD
	AgreedAt        *time.Time       `json:"agreedAt,omitempty"`
}

// Validate checks the plan's bounds, ranges and codes.
func (p *Plan) Validate() error {
	if err := p.checkBounds(); err != nil {
		return err
	}
	for i, n := range p.Needs {
		if n.Code == nil && n.Text == "" {
			return Errorf(EUNPROCESSABLE, "a need has a SNOMED CT code or text").At(fmt.Sprintf("needs[%d]", i))
		}
		if n.Code != nil && n.Code.System == SNOMEDSystem && !ValidSCTID(n.Code.Code) {
			return Errorf(EUNPROCESSABLE, "SNOMED CT code fails the Verhoeff check").At(fmt.Sprintf("needs[%d].code.code", i))
		}
	}
	for i, g := range p.Goals {
		at := func(f string) string { return fmt.Sprintf("goals[%d].%s", i, f) }
		switch {
		case g.ID == "":
			return Errorf(EINVALID, "goal has no id").At(at("id"))
		case strings.TrimSpace(g.Description) == "":
			return Errorf(EUNPROCESSABLE, "goal needs a description").At(at("description"))
		case g.Importance < 1 || g.Importance > 10:
			return Errorf(EUNPROCESSABLE, "goal importance must be 1–10").At(at("importance"))
		case g.Confidence < 1 || g.Confidence > 10:
			return Errorf(EUNPROCESSABLE, "goal confidence must be 1–10").At(at("confidence"))
		case !oneOf(g.Status, []string{GoalActive, GoalOnHold, GoalAchieved, GoalNotAchieved, GoalCancelled, GoalEnteredInError}):
			return Errorf(EUNPROCESSABLE, "goal status must be active, on-hold, achieved, not-achieved or cancelled").At(at("status"))
		}
	}
	for i, a := range p.Actions {
		if a.ID == "" || strings.TrimSpace(a.Description) == "" {
			return Errorf(EUNPROCESSABLE, "action needs an id and a description").At(fmt.Sprintf("actions[%d]", i))
		}
		if !oneOf(a.Status, ActionStatuses) {
			return Errorf(EUNPROCESSABLE, "action status must be one of %s", strings.Join(ActionStatuses, ", ")).At(fmt.Sprintf("actions[%d].status", i))
		}
		if a.Due != "" {
			if _, err := time.Parse("2006-01-02", a.Due); err != nil {
				return Errorf(EUNPROCESSABLE, "action due date must be YYYY-MM-DD").At(fmt.Sprintf("actions[%d].due", i))
			}
		}
	}
	for i, o := range p.OnwardReferrals {
		if o.ID == "" || strings.TrimSpace(o.Service) == "" {
			return Errorf(EUNPROCESSABLE, "onward referral needs an id and a service").At(fmt.Sprintf("onwardReferrals[%d]", i))
		}
		if !oneOf(o.Status, OnwardStatuses) {
			return Errorf(EUNPROCESSABLE, "onward referral status must be sent, accepted, attended or declined").At(fmt.Sprintf("onwardReferrals[%d].status", i))
		}
		if o.OrganisationODS != "" {
			if _, err := NormalizeODSCode(o.OrganisationODS); err != nil {
				return err.(*Error).At(fmt.Sprintf("onwardReferrals[%d].organisationOds", i))
			}
		}
	}
	for i, s := range p.Signposts {
		if s.ID == "" || strings.TrimSpace(s.To) == "" {
			return Errorf(EUNPROCESSABLE, "signpost needs an id and who it points to").At(fmt.Sprintf("signposts[%d]", i))
		}
	}
	if p.ReviewDate != "" {
		if _, err := time.Parse("2006-01-02", p.ReviewDate); err != nil {
			return Errorf(EUNPROCESSABLE, "review date must be YYYY-MM-DD").At("reviewDate")
		}
	}
	return nil
}

// Caseload norms (NHS England DES: 200–250 people a year; 6–12 contacts;
// docs/domain.md#caseload-norms).
const (
	CaseloadYearLow      = 200
	CaseloadYearHigh     = 250
	ContactsPerPersonLow = 6
	ContactsPerPersonMax = 12
)
