package linkbridge

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Corrections (docs/domain.md#corrections): a contact, an outcome measure
// or a goal recorded wrongly is amended (a contact or a measure) or
// withdrawn as entered in error (any of the three). Nothing is deleted: a
// withdrawn entry stays in the case record, marked, and its FHIR resource
// takes status entered-in-error, so the GP copy follows; reports, the
// change from baseline and the one-baseline rule no longer count it. The
// rules below are checked without I/O, like those of caserules.go.

// Correction is how a contact or a measure was corrected since it was
// recorded. The server sets it; a request's values are ignored.
type Correction struct {
	// AmendedAt is when the entry was last amended; zero when never.
	AmendedAt time.Time `json:"amendedAt,omitzero"`
	// WithdrawnAt is when the entry was withdrawn as entered in error;
	// zero while it stands.
	WithdrawnAt time.Time `json:"withdrawnAt,omitzero"`
	// WithdrawnReason is why it was withdrawn: free text, kept in the case
	// record and never shared with the GP record.
	WithdrawnReason string `json:"withdrawnReason,omitempty"`
}

// Withdrawn reports whether the entry was withdrawn as entered in error.
func (c Correction) Withdrawn() bool { return !c.WithdrawnAt.IsZero() }

// Amended reports whether the entry was amended since it was recorded.
func (c Correction) Amended() bool { return !c.AmendedAt.IsZero() }

// Withdrawal is a request to withdraw an entry recorded in error.
type Withdrawal struct {
	// Reason says why the entry was wrong (required; free text, never
	// shared with the GP record).
	Reason string `json:"reason"`
}

// check refuses a withdrawal without a reason or with one too long.
func (w Withdrawal) check() error {
	if strings.TrimSpace(w.Reason) == "" {
		return Errorf(EUNPROCESSABLE, "withdrawing an entry recorded in error needs a reason").At("reason")
	}
	return checkText("reason", w.Reason)
}

// checkCorrectable refuses corrections on a referral entered in error: the
// whole referral was withdrawn by its referrer, and its record is closed.
func (cr *CaseRecord) checkCorrectable() error {
	if cr.Referral.Status == TaskEnteredInError {
		return Errorf(ECONFLICT, "the referral was entered in error: its record can no longer be corrected").At("status")
	}
	return nil
}

// contactIndex finds a contact of the record by id: ENOTFOUND when it has
// none, ECONFLICT when it was withdrawn already.
func (cr *CaseRecord) contactIndex(id string) (int, error) {
	i := slices.IndexFunc(cr.Contacts, func(c *Contact) bool { return c.ID == id })
	if i < 0 {
		return 0, Errorf(ENOTFOUND, "the referral has no contact %s", id)
	}
	if cr.Contacts[i].Withdrawn() {
		return 0, Errorf(ECONFLICT, "contact %s was withdrawn as entered in error on %s: it can no longer change", id, cr.Contacts[i].WithdrawnAt.Format(time.RFC3339)).At("id")
	}
	return i, nil
}

// measureIndex is contactIndex for outcome measures.
func (cr *CaseRecord) measureIndex(id string) (int, error) {
	i := slices.IndexFunc(cr.Measures, func(m *Measure) bool { return m.ID == id })
	if i < 0 {
		return 0, Errorf(ENOTFOUND, "the referral has no outcome measure %s", id)
	}
	if cr.Measures[i].Withdrawn() {
		return 0, Errorf(ECONFLICT, "measure %s was withdrawn as entered in error on %s: it can no longer change", id, cr.Measures[i].WithdrawnAt.Format(time.RFC3339)).At("id")
	}
	return i, nil
}

// AmendContact replaces what contact id records (time, mode, minutes,
// attended, notes) with c's, checked as a new contact is (Contact.Validate;
// not in the future, not before the referral was made). It returns the
// amended contact, which replaces the stored one. ENOTFOUND for a contact
// the record does not hold; ECONFLICT for a withdrawn one or a referral
// entered in error; EINVALID when c names another id. The referral's
// status and the moment it was coded do not move (docs/domain.md#corrections).
func (cr *CaseRecord) AmendContact(id string, c Contact, now time.Time) (*Contact, error) {
	if err := cr.checkCorrectable(); err != nil {
		return nil, err
	}
	if c.ID != "" && c.ID != id {
		return nil, Errorf(EINVALID, "the body names contact %s, the path %s", c.ID, id).At("id")
	}
	i, err := cr.contactIndex(id)
	if err != nil {
		return nil, err
	}
	old := cr.Contacts[i]
	next := &Contact{ID: id, ReferralID: cr.Referral.ID, At: c.At.UTC(), Mode: c.Mode, Minutes: c.Minutes,
		Attended: c.Attended, Notes: c.Notes, CreatedAt: old.CreatedAt, Correction: Correction{AmendedAt: now}}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	if err := cr.Referral.CheckWhen("at", next.At, now, false); err != nil {
		return nil, err
	}
	cr.Contacts = slices.Clone(cr.Contacts)
	cr.Contacts[i] = next
	return next, nil
}

// WithdrawContact withdraws contact id as entered in error. It returns the
// withdrawn contact, which replaces the stored one. ENOTFOUND, ECONFLICT as
// AmendContact; EUNPROCESSABLE without a reason.
func (cr *CaseRecord) WithdrawContact(id string, w Withdrawal, now time.Time) (*Contact, error) {
	if err := cr.checkCorrectable(); err != nil {
		return nil, err
	}
	i, err := cr.contactIndex(id)
	if err != nil {
		return nil, err
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	next := *cr.Contacts[i]
	next.WithdrawnAt, next.WithdrawnReason = now, w.Reason
	cr.Contacts = slices.Clone(cr.Contacts)
	cr.Contacts[i] = &next
	return &next, nil
}

// AmendMeasure replaces the answers, timepoint and time taken of outcome
// measure id with m's, scored and checked as a new measure is
// (Measure.Score; not in the future, not before the referral was made; one
// baseline per instrument, a withdrawn one not counting). The instrument
// cannot change: a measure of the wrong instrument is withdrawn and the
// right one recorded. It returns the amended measure, which replaces the
// stored one. ENOTFOUND, ECONFLICT, EINVALID as AmendContact; ECONFLICT for
// a second baseline; EUNPROCESSABLE for another instrument.
func (cr *CaseRecord) AmendMeasure(id string, m Measure, now time.Time) (*Measure, error) {
	if err := cr.checkCorrectable(); err != nil {
		return nil, err
	}
	if m.ID != "" && m.ID != id {
		return nil, Errorf(EINVALID, "the body names measure %s, the path %s", m.ID, id).At("id")
	}
	i, err := cr.measureIndex(id)
	if err != nil {
		return nil, err
	}
	old := cr.Measures[i]
	if m.Instrument != old.Instrument {
		return nil, Errorf(EUNPROCESSABLE, "measure %s is %s: the instrument cannot change (withdraw it and record the right one)", id, old.Instrument).At("instrument")
	}
	next := &Measure{ID: id, ReferralID: cr.Referral.ID, Instrument: old.Instrument, Timepoint: m.Timepoint,
		Items: slices.Clone(m.Items), TakenAt: m.TakenAt.UTC(), CreatedAt: old.CreatedAt, Correction: Correction{AmendedAt: now}}
	if err := next.Score(); err != nil {
		return nil, err
	}
	if err := cr.Referral.CheckWhen("takenAt", next.TakenAt, now, false); err != nil {
		return nil, err
	}
	if err := cr.checkOneBaseline(next); err != nil {
		return nil, err
	}
	cr.Measures = slices.Clone(cr.Measures)
	cr.Measures[i] = next
	return next, nil
}

// checkOneBaseline refuses m as a second baseline of its instrument: one
// the record holds, other than m itself and not withdrawn.
func (cr *CaseRecord) checkOneBaseline(m *Measure) error {
	if m.Timepoint != TimepointBaseline {
		return nil
	}
	for _, o := range cr.Measures {
		if o.ID != m.ID && !o.Withdrawn() && o.Instrument == m.Instrument && o.Timepoint == TimepointBaseline {
			return Errorf(ECONFLICT, "this episode has a %s baseline already (measure %s): a later one is a review or final", m.Instrument, o.ID).At("timepoint")
		}
	}
	return nil
}

// WithdrawMeasure withdraws outcome measure id as entered in error: it no
// longer counts as a baseline (another may be recorded) nor in a change
// from baseline. It returns the withdrawn measure, which replaces the
// stored one. Errors as WithdrawContact.
func (cr *CaseRecord) WithdrawMeasure(id string, w Withdrawal, now time.Time) (*Measure, error) {
	if err := cr.checkCorrectable(); err != nil {
		return nil, err
	}
	i, err := cr.measureIndex(id)
	if err != nil {
		return nil, err
	}
	if err := w.check(); err != nil {
		return nil, err
	}
	next := *cr.Measures[i]
	next.WithdrawnAt, next.WithdrawnReason = now, w.Reason
	cr.Measures = slices.Clone(cr.Measures)
	cr.Measures[i] = &next
	return &next, nil
}

// WithdrawGoal withdraws goal id of the plan as entered in error (status
// entered-in-error), distinct from cancelling it (a goal meant and given
// up, set with the plan): the goal stays in the plan, marked, and no later
// plan may change it (SetPlan). Amending a goal is a plan change (SetPlan).
// ENOTFOUND for a goal the plan does not hold; ECONFLICT for one withdrawn
// already or a referral entered in error; EUNPROCESSABLE without a reason.
func (cr *CaseRecord) WithdrawGoal(id string, w Withdrawal, now time.Time) error {
	if err := cr.checkCorrectable(); err != nil {
		return err
	}
	i := slices.IndexFunc(cr.Plan.Goals, func(g Goal) bool { return g.ID == id })
	if i < 0 {
		return Errorf(ENOTFOUND, "the plan has no goal %s", id)
	}
	if g := cr.Plan.Goals[i]; g.Status == GoalEnteredInError {
		return Errorf(ECONFLICT, "goal %s was withdrawn as entered in error on %s: it can no longer change", id, g.WithdrawnAt.Format(time.RFC3339)).At("id")
	}
	if err := w.check(); err != nil {
		return err
	}
	goals := slices.Clone(cr.Plan.Goals)
	goals[i].Status, goals[i].WithdrawnAt, goals[i].WithdrawnReason = GoalEnteredInError, now, w.Reason
	cr.Plan.Goals = goals
	return nil
}

// keepWithdrawnGoals holds a plan that replaces the record's to the goals
// withdrawn as entered in error: each stays as it was, where p names it
// (unchanged) or, left out, at the end. A goal p sets entered-in-error
// that was not withdrawn is refused (EUNPROCESSABLE: WithdrawGoal does
// that), and so is a change to a withdrawn one (ECONFLICT).
func (cr *CaseRecord) keepWithdrawnGoals(p *Plan) error {
	withdrawn := map[string]Goal{}
	var order []string
	for _, g := range cr.Plan.Goals {
		if g.Status == GoalEnteredInError {
			withdrawn[g.ID] = g
			order = append(order, g.ID)
		}
	}
	named := map[string]bool{}
	for i, g := range p.Goals {
		w, ok := withdrawn[g.ID]
		switch {
		case ok && !sameGoal(g, w):
			return Errorf(ECONFLICT, "goal %s was withdrawn as entered in error: it can no longer change", g.ID).At(fmt.Sprintf("goals[%d]", i))
		case ok:
			p.Goals[i] = w
			named[g.ID] = true
		case g.Status == GoalEnteredInError:
			return Errorf(EUNPROCESSABLE, "a goal recorded in error is withdrawn with POST .../goals/{goalId}/withdraw, not by the plan").At(fmt.Sprintf("goals[%d]", i))
		case g.WithdrawnReason != "" || !g.WithdrawnAt.IsZero():
			return Errorf(EUNPROCESSABLE, "only a goal withdrawn as entered in error has withdrawnAt and withdrawnReason").At(fmt.Sprintf("goals[%d]", i))
		}
	}
	for _, id := range order {
		if !named[id] {
			p.Goals = append(p.Goals, withdrawn[id])
		}
	}
	return nil
}

// sameGoal reports whether a plan's goal a says what the withdrawn goal w
// says.
func sameGoal(a, w Goal) bool {
	return a.ID == w.ID && a.Description == w.Description && a.Importance == w.Importance && a.Confidence == w.Confidence &&
		a.Status == w.Status && a.WithdrawnReason == w.WithdrawnReason && a.WithdrawnAt.Equal(w.WithdrawnAt)
}

// live is r without its contacts and measures withdrawn as entered in
// error: what every report counts (docs/reports.md#definitions).
func (r *ReportReferral) live() *ReportReferral {
	if !slices.ContainsFunc(r.Contacts, func(c *Contact) bool { return c.Withdrawn() }) &&
		!slices.ContainsFunc(r.Measures, func(m *Measure) bool { return m.Withdrawn() }) {
		return r
	}
	out := *r
	out.Contacts = slices.DeleteFunc(slices.Clone(r.Contacts), func(c *Contact) bool { return c.Withdrawn() })
	out.Measures = slices.DeleteFunc(slices.Clone(r.Measures), func(m *Measure) bool { return m.Withdrawn() })
	return &out
}
