package linkbridge

import (
	"slices"
	"strings"
	"time"
)

// The link-worker rules of a case record: what may be recorded when, checked
// without I/O. casework applies them inside one versioned change; each
// method changes the record only when it returns nil.

// AddContact records a contact (c.ID already assigned) on an accepted or
// active referral. The first attended contact starts the work (accepted →
// in-progress), and is the person's agreement to take part when none was
// recorded (Referral.AgreedAt: the referral is coded then;
// docs/domain.md#coding-the-episode). ECONFLICT on a referral in another
// status; EUNPROCESSABLE when the contact is incomplete, in the future or
// before the referral was made.
func (cr *CaseRecord) AddContact(c *Contact, now time.Time) error {
	rf := cr.Referral
	switch rf.Status {
	case TaskAccepted, TaskInProgress, TaskOnHold:
	default:
		return Errorf(ECONFLICT, "contacts are recorded on accepted or active referrals; this one is %s", rf.Status).At("status")
	}
	c.ReferralID, c.CreatedAt, c.Correction = rf.ID, now, Correction{}
	c.At = c.At.UTC()
	if err := c.Validate(); err != nil {
		return err
	}
	if err := rf.CheckWhen("at", c.At, now, false); err != nil {
		return err
	}
	if rf.DoNotContact && c.Mode.Outreach() {
		return Errorf(ECONFLICT, "the referrer asked that the person is not contacted directly (do not contact): a %s contact is the service reaching out; meet the person when they come (face-to-face, group) or reach them through the referrer", c.Mode).At("mode")
	}
	if rf.Status == TaskAccepted && c.Attended {
		if err := rf.Apply(&LifecycleCommand{Action: ActionStart}, now); err != nil {
			return err
		}
	}
	if c.Attended && rf.AgreedAt.IsZero() {
		rf.AgreedAt, rf.AgreedBy = c.At, rf.LinkWorker
	}
	cr.Contacts = append(cr.Contacts, c)
	return nil
}

// AddMeasure records an outcome measure (m.ID already assigned) on a
// referral that was accepted and is open or completed, scoring it.
// ECONFLICT on a referral never accepted or ended otherwise than completed,
// and on a second baseline of an instrument (one withdrawn as entered in
// error does not count); EUNPROCESSABLE when the
// answers do not fit the instrument or it was taken in the future or before
// the referral was made.
func (cr *CaseRecord) AddMeasure(m *Measure, now time.Time) error {
	rf := cr.Referral
	if rf.AcceptedAt.IsZero() || rf.Status.Terminal() && rf.Status != TaskCompleted {
		return Errorf(ECONFLICT, "outcome measures are recorded on accepted referrals; this one is %s", rf.Status).At("status")
	}
	m.ReferralID, m.CreatedAt, m.Correction = rf.ID, now, Correction{}
	m.TakenAt = m.TakenAt.UTC()
	if err := m.Score(); err != nil {
		return err
	}
	if err := rf.CheckWhen("takenAt", m.TakenAt, now, false); err != nil {
		return err
	}
	if err := cr.checkOneBaseline(m); err != nil {
		return err
	}
	cr.Measures = append(cr.Measures, m)
	return nil
}

// SetPlan replaces the personalised care and support plan of an accepted,
// open referral. Items without an id get one from newID (existing ones keep
// theirs); onward referrals and signposts without a time are dated now. A
// plan with goals and no agreed date is agreed now, and the referral's
// business status becomes plan-agreed. Goals withdrawn as entered in error
// stay as they are (docs/domain.md#corrections). ECONFLICT on a referral not accepted
// or ended; EUNPROCESSABLE when the plan is incomplete.
func (cr *CaseRecord) SetPlan(p Plan, now time.Time, newID func() string) error {
	rf := cr.Referral
	if rf.AcceptedAt.IsZero() || rf.Status.Terminal() {
		return Errorf(ECONFLICT, "the plan is written for accepted, open referrals; this one is %s", rf.Status).At("status")
	}
	for i := range p.Goals {
		if p.Goals[i].ID == "" {
			p.Goals[i].ID = newID()
		}
	}
	for i := range p.Actions {
		if p.Actions[i].ID == "" {
			p.Actions[i].ID = newID()
		}
	}
	for i := range p.OnwardReferrals {
		o := &p.OnwardReferrals[i]
		if o.ID == "" {
			o.ID = newID()
		}
		if o.SentAt.IsZero() {
			o.SentAt = now
		}
		o.OrganisationODS = strings.ToUpper(o.OrganisationODS)
	}
	for i := range p.Signposts {
		if p.Signposts[i].ID == "" {
			p.Signposts[i].ID = newID()
		}
		if p.Signposts[i].At.IsZero() {
			p.Signposts[i].At = now
		}
	}
	if err := cr.keepWithdrawnGoals(&p); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return err
	}
	if p.AgreedAt == nil && len(p.Goals) > 0 {
		t := now
		p.AgreedAt = &t
		rf.BusinessStatus = BusinessPlanAgreed
	}
	cr.Plan = p
	return nil
}

// SetConsent sets what the person agreed may be shared with the GP record.
// EUNPROCESSABLE for an unknown level.
func (cr *CaseRecord) SetConsent(c ConsentLevel) error {
	if !c.Valid() {
		return Errorf(EUNPROCESSABLE, "consent must be full, codes-only or none").At("consent")
	}
	cr.Referral.Consent = c
	return nil
}

// CloseGoals records, once the referral has ended (completed, failed or
// cancelled), the outcome of every goal still open (active or on hold):
// the outcome cmd.GoalOutcomes gives it, or by default achieved when the
// person was discharged with their goals met, not-achieved when discharged
// otherwise, and cancelled when the referral failed or was cancelled. It
// reports whether the plan changed. EUNPROCESSABLE names an outcome for a
// goal the plan does not hold, or an outcome that is not one of achieved,
// not-achieved, cancelled; goal outcomes given before the end are refused.
func (cr *CaseRecord) CloseGoals(cmd *LifecycleCommand) (bool, error) {
	rf := cr.Referral
	ended := rf.Status == TaskCompleted || rf.Status == TaskFailed || rf.Status == TaskCancelled
	if !ended {
		if len(cmd.GoalOutcomes) > 0 {
			return false, Errorf(EUNPROCESSABLE, "goal outcomes are recorded at discharge (complete, fail or cancel)").At("goalOutcomes")
		}
		return false, nil
	}
	held := map[string]bool{}
	for _, g := range cr.Plan.Goals {
		held[g.ID] = g.Status != GoalEnteredInError
	}
	for id, o := range cmd.GoalOutcomes {
		if !held[id] {
			return false, Errorf(EUNPROCESSABLE, "the plan holds no goal %q (or it was withdrawn as entered in error)", id).At("goalOutcomes")
		}
		if !oneOf(o, []string{GoalAchieved, GoalNotAchieved, GoalCancelled}) {
			return false, Errorf(EUNPROCESSABLE, "a goal outcome is achieved, not-achieved or cancelled").At("goalOutcomes")
		}
	}
	def := GoalCancelled
	if rf.Status == TaskCompleted {
		def = GoalNotAchieved
		if rf.DischargeReason == "goals-met" {
			def = GoalAchieved
		}
	}
	changed := false
	goals := make([]Goal, len(cr.Plan.Goals))
	copy(goals, cr.Plan.Goals)
	for i, g := range goals {
		if g.Status != GoalActive && g.Status != GoalOnHold {
			continue
		}
		o, ok := cmd.GoalOutcomes[g.ID]
		if !ok {
			o = def
		}
		goals[i].Status = o
		changed = true
	}
	if changed {
		cr.Plan.Goals = goals
	}
	return changed, nil
}

// DefaultDNAReviewAfter is how many contacts in a row the person did not
// attend before the case is flagged for review (CaseRecord.Flags), unless
// the service sets its own policy (docs/domain.md#did-not-attend).
const DefaultDNAReviewAfter = 2

// Case flags (CaseRecord.Flags).
const (
	FlagDNAReview     = "dna-review"
	FlagDoNotContact  = "do-not-contact"
	FlagSafeguarding  = "safeguarding"
	FlagReviewOverdue = "review-overdue"
	// FlagConcurrentReferral: the person has another open referral to the
	// service, from a sender who could not see it (LinkConcurrent): merge
	// or decline one (docs/domain.md#one-open-referral).
	FlagConcurrentReferral = "concurrent-referral"
)

// Flags lists what the link worker should look at on an open case, in a
// fixed order: dna-review when the last dnaReviewAfter contacts (0:
// DefaultDNAReviewAfter) were all not attended (Contact.DNA; withdrawn ones
// left out), do-not-contact when the
// referrer said the person must not be contacted, safeguarding when the
// plan flags a concern, review-overdue when the plan's review date has
// passed, concurrent-referral while the referral stands beside another open
// one its sender could not see. Never nil.
func (cr *CaseRecord) Flags(now time.Time, dnaReviewAfter int) []string {
	out := []string{}
	if dnaReviewAfter <= 0 {
		dnaReviewAfter = DefaultDNAReviewAfter
	}
	open := cr.Referral.Status.Open()
	if open && len(cr.Contacts) >= dnaReviewAfter {
		contacts := slices.Clone(cr.Contacts)
		slices.SortStableFunc(contacts, func(a, b *Contact) int { return a.At.Compare(b.At) })
		run := 0
		for _, c := range slices.Backward(contacts) {
			if c.Withdrawn() { // recorded in error: counts nowhere
				continue
			}
			if !c.DNA() {
				break
			}
			run++
		}
		if run >= dnaReviewAfter {
			out = append(out, FlagDNAReview)
		}
	}
	if cr.Referral.DoNotContact {
		out = append(out, FlagDoNotContact)
	}
	if cr.Plan.Safeguarding {
		out = append(out, FlagSafeguarding)
	}
	if open && cr.Plan.ReviewDate != "" && cr.Plan.ReviewDate < now.UTC().Format(time.DateOnly) {
		out = append(out, FlagReviewOverdue)
	}
	if !cr.Referral.Status.Terminal() && cr.Referral.Link.Kind == LinkConcurrent {
		out = append(out, FlagConcurrentReferral)
	}
	return out
}
