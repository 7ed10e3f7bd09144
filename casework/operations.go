package casework

import (
	"context"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// The link worker's changes (/sp/v1). ifMatch is the referral version the
// caller last read (0: none given).

// Get returns a referral's case record.
func (s *Service) Get(ctx context.Context, id string) (*linkbridge.CaseRecord, error) {
	return s.Cases.GetCaseRecord(ctx, id)
}

// linkWorkerChange is a performer's change to the case record, guarded by
// the referral version.
func (s *Service) linkWorkerChange(ctx context.Context, id string, ifMatch int, action string, edit func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error) (*linkbridge.CaseRecord, error) {
	cr, _, err := s.apply(ctx, change{
		referralID: id, action: action, actor: linkbridge.ActorPerformer,
		check: func(cr *linkbridge.CaseRecord) error { return CheckVersion(ifMatch, cr.Referral.Version) },
		edit:  edit,
	})
	return cr, err
}

// Act applies a lifecycle action (accept, decline, start, hold, resume,
// complete, fail, cancel).
func (s *Service) Act(ctx context.Context, id string, ifMatch int, cmd linkbridge.LifecycleCommand) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, cmd.Action, func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		if err := cr.Referral.Apply(&cmd, now); err != nil {
			return err
		}
		if cmd.At != nil && !cmd.At.Equal(now) {
			ch.Event = &linkbridge.ReferralEvent{OccurredAt: cmd.At.UTC()}
		}
		// At discharge, every open goal gets its outcome.
		changed, err := cr.CloseGoals(&cmd)
		if changed {
			ch.Plan = &cr.Plan
		}
		return err
	})
}

// AddContact records a contact (CaseRecord.AddContact).
func (s *Service) AddContact(ctx context.Context, id string, ifMatch int, c linkbridge.Contact) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "contact", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		c.ID = s.NewID()
		if err := cr.AddContact(&c, now); err != nil {
			return err
		}
		ch.Contacts = append(ch.Contacts, &c)
		return nil
	})
}

// AddMeasure records an outcome measure (CaseRecord.AddMeasure).
func (s *Service) AddMeasure(ctx context.Context, id string, ifMatch int, m linkbridge.Measure) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "measure", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		m.ID = s.NewID()
		if err := cr.AddMeasure(&m, now); err != nil {
			return err
		}
		ch.Measures = append(ch.Measures, &m)
		return nil
	})
}

// SetPlan replaces the personalised care and support plan
// (CaseRecord.SetPlan).
func (s *Service) SetPlan(ctx context.Context, id string, ifMatch int, p linkbridge.Plan) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "plan", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		if err := cr.SetPlan(p, now, s.NewID); err != nil {
			return err
		}
		ch.Plan = &cr.Plan
		return nil
	})
}

// SetConsent sets what may be shared with the GP record
// (CaseRecord.SetConsent).
func (s *Service) SetConsent(ctx context.Context, id string, ifMatch int, c linkbridge.ConsentLevel) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "consent", func(cr *linkbridge.CaseRecord, _ *linkbridge.ReferralChange, _ time.Time) error {
		return cr.SetConsent(c)
	})
}

// Caseload returns each link worker's caseload now against the norms,
// over the referrals in scope the caller may read (docs/reports.md#caseload).
// It streams the referrals a page at a time: memory grows with the open
// caseload and the last 12 months' intake, not with the history.
func (s *Service) Caseload(ctx context.Context, scope linkbridge.ReportScope) (*linkbridge.CaseloadReport, error) {
	scope, err := scopeFor(ctx, scope)
	if err != nil {
		return nil, err
	}
	now := s.now()
	b := linkbridge.NewCaseload(now)
	err = s.Cases.ReportReferrals(ctx, linkbridge.CaseloadQuery(scope, now), func(page []*linkbridge.ReportReferral) error {
		for _, r := range page {
			b.Add(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b.Report(), nil
}

// PeriodReport returns the figures of [from, to) over the referrals in
// scope the caller may read (docs/reports.md#period-report). EINVALID when
// the period is empty or reversed.
func (s *Service) PeriodReport(ctx context.Context, scope linkbridge.ReportScope, from, to time.Time) (*linkbridge.PeriodReport, error) {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "a report period needs from before to").At("from")
	}
	scope, err := scopeFor(ctx, scope)
	if err != nil {
		return nil, err
	}
	p := linkbridge.NewPeriod(scope, from, to)
	err = s.Cases.ReportReferrals(ctx, linkbridge.PeriodQuery(scope, from, to), func(page []*linkbridge.ReportReferral) error {
		for _, r := range page {
			p.Add(r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p.Report(), nil
}

// scopeFor is the scope a report covers for the caller: what it asked,
// limited to its own referrals (Principal.ReportScopeFor; the store limits
// it again). Without a principal, as asked.
func scopeFor(ctx context.Context, asked linkbridge.ReportScope) (linkbridge.ReportScope, error) {
	if p := linkbridge.PrincipalFromContext(ctx); p != nil {
		return p.ReportScopeFor(asked)
	}
	return asked, nil
}

// The FHIR side: the referral Task updated by either party, the referral
// revoked by its requester.

// UpdateTask applies a party's PUT of the referral Task: a status change
// checked against the SDOH state machine for that party (actor). The
// referral's identity may not change (focus, for, intent). ifMatch is the
// Task version the caller read (0: none). It returns the Task as stored.
func (s *Service) UpdateTask(ctx context.Context, taskID string, t *taskpb.Task, actor linkbridge.Actor, ifMatch int) (*linkbridge.Resource, error) {
	rf, err := s.Store.FindReferralByTaskID(ctx, taskID)
	if err != nil {
		return nil, err
	}
	cur, err := s.Store.ReadResource(ctx, "Task", taskID)
	if err != nil {
		return nil, err
	}
	if err := CheckVersion(ifMatch, cur.VersionID); err != nil {
		return nil, err
	}
	if ftyp, fid := fhirmap.RefTarget(t.GetFocus()); ftyp != "ServiceRequest" || fid != rf.ID {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Task.focus cannot change: it must stay ServiceRequest/%s", rf.ID).At("Task.focus")
	}
	if ptyp, pid := fhirmap.RefTarget(t.GetForValue()); ptyp != "Patient" || pid != rf.Patient() {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Task.for cannot change: it must stay Patient/%s", rf.Patient()).At("Task.for")
	}
	if fhirmap.Code(t.GetIntent()) != "order" {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.intent must be order").At("Task.intent")
	}
	stored, err := s.Codec.DecodeResource(cur.Body)
	if err != nil {
		return nil, err
	}
	if err := checkTaskSurface(stored.(*taskpb.Task), t, rf, actor, s.Systems); err != nil {
		return nil, err
	}
	to := fhirmap.TaskStatusOf(t)
	if err := linkbridge.CheckTaskTransition(rf.Status, to, actor); err != nil {
		return nil, err
	}
	_, versions, err := s.apply(ctx, change{
		referralID: rf.ID, action: "task-" + string(to), actor: actor,
		check: func(cr *linkbridge.CaseRecord) error {
			if cr.Referral.Version != rf.Version {
				return changedMeanwhile(ifMatch)
			}
			return nil
		},
		edit: func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
			next := cr.Referral
			from := next.Status
			next.Status = to
			next.StatusReason = t.GetStatusReason().GetText().GetValue()
			next.BusinessStatus = t.GetBusinessStatus().GetText().GetValue()
			if to == linkbridge.TaskCancelled && next.StatusReason == "" {
				next.StatusReason = "Cancelled by the referrer"
			}
			// The episode's moments, as the /sp/v1 actions record them
			// (docs/domain.md#coding-the-episode).
			switch {
			case to == linkbridge.TaskAccepted && next.AcceptedAt.IsZero():
				next.AcceptedAt = now
			case to == linkbridge.TaskInProgress && from == linkbridge.TaskAccepted && next.AgreedAt.IsZero():
				next.AgreedAt, next.AgreedBy = now, next.LinkWorker
			case (to == linkbridge.TaskRejected || to == linkbridge.TaskCancelled) && actor == linkbridge.ActorPerformer &&
				next.AgreedAt.IsZero() && fhirmap.PersonDeclined(t):
				next.PersonDeclinedAt, next.DeclineReason = now, linkbridge.DeclinePerson
			}
			if to.Terminal() && next.CompletedAt.IsZero() && !next.AcceptedAt.IsZero() {
				next.CompletedAt = now
			}
			return closeGoals(cr, ch)
		},
		// The Task as the party sent it, with the referral's new state.
		task: func(_ *taskpb.Task, cr *linkbridge.CaseRecord, _ []fhirmap.Generated, now time.Time) (*taskpb.Task, error) {
			s.Systems.ApplyReferralToTask(t, cr.Referral, now)
			return t, nil
		},
	})
	if err != nil {
		return nil, err
	}
	return resourceOf(ctx, s.Store, versions, "Task", taskID)
}

// closeGoals closes the open goals of a referral a Task update or a
// revocation ended, with their default outcome (CaseRecord.CloseGoals: a
// cancelled or failed referral cancels them), as a discharge does.
func closeGoals(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange) error {
	changed, err := cr.CloseGoals(&linkbridge.LifecycleCommand{})
	if changed {
		ch.Plan = &cr.Plan
	}
	return err
}

// Revoked is what a revocation stored.
type Revoked struct {
	ServiceRequest, Task *linkbridge.Resource
	Referral             *linkbridge.Referral
}

// Revoke applies the requester's update of its ServiceRequest that revokes
// the referral (status revoked, or entered-in-error when raised in error):
// the ServiceRequest takes the new status and nothing else, and the Task
// becomes cancelled (entered-in-error). ifMatch is the ServiceRequest
// version the caller read (0: none); messageID the BaRS message it came in
// ("" for a REST update).
func (s *Service) Revoke(ctx context.Context, srID string, sr *srpb.ServiceRequest, ifMatch int, messageID string) (*Revoked, error) {
	rf, err := s.Store.FindReferral(ctx, srID)
	if err != nil {
		return nil, err
	}
	cur, err := s.Store.ReadResource(ctx, "ServiceRequest", srID)
	if err != nil {
		return nil, err
	}
	if err := CheckVersion(ifMatch, cur.VersionID); err != nil {
		return nil, err
	}
	status := fhirmap.Code(sr.GetStatus())
	var to linkbridge.TaskStatus
	switch status {
	case "revoked":
		to = linkbridge.TaskCancelled
	case "entered-in-error":
		to = linkbridge.TaskEnteredInError
	default:
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "a referral update may only revoke it (status revoked or entered-in-error), not set %q", status).At("ServiceRequest.status")
	}
	if rf.RequestStatus != "active" {
		return nil, linkbridge.Errorf(linkbridge.ECONFLICT, "the ServiceRequest is %s, not active: it cannot be revoked", rf.RequestStatus).At("ServiceRequest.status")
	}
	if err := linkbridge.CheckTaskTransition(rf.Status, to, linkbridge.ActorRequester); err != nil {
		return nil, err
	}
	if ptyp, pid := fhirmap.RefTarget(sr.GetSubject()); ptyp == "Patient" && pid != rf.Patient() {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject cannot change").At("ServiceRequest.subject")
	}
	// The stored ServiceRequest takes the new status; a revocation changes
	// nothing else (BaRS cancellation carries the same referral), and an
	// update that would is refused, not silently cut down.
	srNext, err := s.Codec.DecodeResource(cur.Body)
	if err != nil {
		return nil, err
	}
	if messageID == "" { // a BaRS message carries the referral as the sender holds it
		if changed := fhirmap.ChangedElements(srNext, sr, serviceRequestRevocable...); len(changed) > 0 {
			return nil, linkbridge.Errorf(linkbridge.EFORBIDDEN, "a referral update may change only its status; it changes ServiceRequest.%s", changed[0]).At("ServiceRequest." + changed[0])
		}
	}
	fhirmap.SetCode(srNext.(*srpb.ServiceRequest).Status, status)
	cr, versions, err := s.apply(ctx, change{
		referralID: rf.ID, action: "revoke", actor: linkbridge.ActorRequester, messageID: messageID,
		check: func(cr *linkbridge.CaseRecord) error {
			if cr.Referral.Version != rf.Version {
				return changedMeanwhile(ifMatch)
			}
			return nil
		},
		edit: func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, _ time.Time) error {
			cr.Referral.Status, cr.Referral.RequestStatus = to, status
			cr.Referral.StatusReason = "Referral revoked by the referrer"
			return closeGoals(cr, ch)
		},
		task: func(stored *taskpb.Task, cr *linkbridge.CaseRecord, _ []fhirmap.Generated, now time.Time) (*taskpb.Task, error) {
			s.Systems.ApplyReferralToTask(stored, cr.Referral, now)
			return stored, nil
		},
		also: []proto.Message{srNext},
	})
	if err != nil {
		return nil, err
	}
	out := &Revoked{Referral: cr.Referral}
	if out.ServiceRequest, err = resourceOf(ctx, s.Store, versions, "ServiceRequest", srID); err != nil {
		return nil, err
	}
	if out.Task, err = resourceOf(ctx, s.Store, versions, "Task", rf.TaskID); err != nil {
		return nil, err
	}
	return out, nil
}

// CancelByMessage applies a BaRS cancellation message: its focus
// ServiceRequest sr must be a referral the gateway holds (by business
// identifier, or by id), and is revoked as it says. A business identifier
// is its referrer's own (unique per organisation, not across them): it is
// looked up among the referrals of the authenticated sender's organisation,
// the only ones it may change, or, without authentication, of the
// organisation that sr's requester leads to (resolved among the message's
// entries, as intake resolves it).
func (s *Service) CancelByMessage(ctx context.Context, sr *srpb.ServiceRequest, entries []*fhirmap.Entry, messageID string) (*Revoked, error) {
	referrer := fhirmap.RequesterODS(sr, entries)
	if p := linkbridge.PrincipalFromContext(ctx); p != nil {
		// As at intake: a message speaks for the organisation that sends it.
		if referrer != "" && !strings.EqualFold(referrer, p.ODS) {
			return nil, linkbridge.Errorf(linkbridge.EFORBIDDEN, "the ServiceRequest's requester is not the authenticated organisation %s", p.ODS).At("ServiceRequest.requester")
		}
		referrer = p.ODS
	}
	var rf *linkbridge.Referral
	var err error
	for _, id := range sr.GetIdentifier() {
		if referrer == "" {
			break // no organisation: no identifier is its
		}
		if rf, err = s.Store.FindReferralByIdentifier(ctx, referrer, linkbridge.Identifier{System: id.GetSystem().GetValue(), Value: id.GetValue().GetValue()}); err == nil {
			break
		}
	}
	if rf == nil {
		if rf, err = s.Store.FindReferral(ctx, fhirmap.ID(sr)); err != nil {
			return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "the ServiceRequest to cancel is not held by this server").At("ServiceRequest.identifier")
		}
	}
	return s.Revoke(ctx, rf.ID, sr, 0, messageID)
}

// resourceOf returns the version of typ/id a change stored, or the stored
// one when the change left it as it was.
func resourceOf(ctx context.Context, store linkbridge.Store, versions []version, typ, id string) (*linkbridge.Resource, error) {
	for _, v := range versions {
		if v.res.Type == typ && v.res.ID == id {
			return v.res, nil
		}
	}
	return store.ReadResource(ctx, typ, id)
}

// The update surface of the referral's resources over FHIR: what each
// party may change with a PUT (docs/referral-exchange.md#update-surface).
// Anything else that differs from the stored version is refused with
// EFORBIDDEN naming the element, never stored nor silently dropped.
var (
	// taskAlways may differ in any PUT: the server sets or keeps them.
	taskAlways = []string{"id", "meta", "text", "lastModified"}
	// taskByRequester: the referrer cancels, with a reason and notes.
	taskByRequester = []string{"status", "statusReason", "note"}
	// taskByPerformer: the service moves the Task on, records outputs and
	// assigns an owner within its own organisation.
	taskByPerformer = []string{"status", "statusReason", "businessStatus", "output", "owner", "note", "executionPeriod"}
	// serviceRequestRevocable: a requester's PUT of its ServiceRequest
	// changes its status (revoked, entered-in-error) and nothing else.
	serviceRequestRevocable = []string{"id", "meta", "text", "status"}
)

// checkTaskSurface holds a PUT Task to the elements the actor may change,
// and a performer's owner to its own organisation or one of its link
// workers (by SDS user id or in the deployment's link-worker system).
func checkTaskSurface(stored, sent *taskpb.Task, rf *linkbridge.Referral, actor linkbridge.Actor, sys fhirmap.Systems) error {
	allowed := append([]string(nil), taskAlways...)
	if actor == linkbridge.ActorPerformer {
		allowed = append(allowed, taskByPerformer...)
	} else {
		allowed = append(allowed, taskByRequester...)
	}
	if changed := fhirmap.ChangedElements(stored, sent, allowed...); len(changed) > 0 {
		return linkbridge.Errorf(linkbridge.EFORBIDDEN, "the %s may not change Task.%s", actor, changed[0]).At("Task." + changed[0])
	}
	if actor == linkbridge.ActorPerformer && len(fhirmap.ChangedElements(stored, sent, allOf(stored, "owner")...)) > 0 {
		id := sent.GetOwner().GetIdentifier()
		own := linkbridge.IsODSSystem(id.GetSystem().GetValue()) && strings.EqualFold(id.GetValue().GetValue(), rf.ServiceODS) ||
			sys.IsLinkWorkerSystem(id.GetSystem().GetValue()) && id.GetValue().GetValue() != ""
		if !own {
			return linkbridge.Errorf(linkbridge.EFORBIDDEN, "Task.owner must stay within the service %s: its ODS code or one of its link workers", rf.ServiceODS).At("Task.owner")
		}
	}
	return nil
}

// allOf names every element of m's type but keep.
func allOf(m proto.Message, keep string) []string {
	var out []string
	fields := m.ProtoReflect().Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		if n := fhirmap.ElementName(fields.Get(i)); n != keep {
			out = append(out, n)
		}
	}
	return out
}

// changedMeanwhile is the answer to a change that lost a race with another
// change of the same referral after it was read: with If-Match, the
// version the caller read is stale (EPRECONDITION, 412, as when the other
// change had committed before the read); without, ECONFLICT.
func changedMeanwhile(ifMatch int) error {
	if ifMatch != 0 {
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "If-Match version %d is stale: the referral changed while this update was applied", ifMatch)
	}
	return linkbridge.Errorf(linkbridge.ECONFLICT, "the referral changed while this update was applied; read it again")
}

// Corrections (docs/domain.md#corrections): each is its own change of the
// referral, with a history event, and the FHIR view regenerated: the
// corrected entry's resource gets a new version, written back to the GP
// record like any other.

// AmendContact amends contact contactID (CaseRecord.AmendContact).
func (s *Service) AmendContact(ctx context.Context, id, contactID string, ifMatch int, c linkbridge.Contact) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "contact-amended", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		next, err := cr.AmendContact(contactID, c, now)
		if err != nil {
			return err
		}
		ch.ContactUpdates = append(ch.ContactUpdates, next)
		return nil
	})
}

// WithdrawContact withdraws contact contactID as entered in error
// (CaseRecord.WithdrawContact).
func (s *Service) WithdrawContact(ctx context.Context, id, contactID string, ifMatch int, w linkbridge.Withdrawal) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "contact-withdrawn", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		next, err := cr.WithdrawContact(contactID, w, now)
		if err != nil {
			return err
		}
		ch.ContactUpdates = append(ch.ContactUpdates, next)
		return nil
	})
}

// AmendMeasure amends outcome measure measureID (CaseRecord.AmendMeasure).
func (s *Service) AmendMeasure(ctx context.Context, id, measureID string, ifMatch int, m linkbridge.Measure) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "measure-amended", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		next, err := cr.AmendMeasure(measureID, m, now)
		if err != nil {
			return err
		}
		ch.MeasureUpdates = append(ch.MeasureUpdates, next)
		return nil
	})
}

// WithdrawMeasure withdraws outcome measure measureID as entered in error
// (CaseRecord.WithdrawMeasure).
func (s *Service) WithdrawMeasure(ctx context.Context, id, measureID string, ifMatch int, w linkbridge.Withdrawal) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "measure-withdrawn", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		next, err := cr.WithdrawMeasure(measureID, w, now)
		if err != nil {
			return err
		}
		ch.MeasureUpdates = append(ch.MeasureUpdates, next)
		return nil
	})
}

// WithdrawGoal withdraws goal goalID of the plan as entered in error
// (CaseRecord.WithdrawGoal).
func (s *Service) WithdrawGoal(ctx context.Context, id, goalID string, ifMatch int, w linkbridge.Withdrawal) (*linkbridge.CaseRecord, error) {
	return s.linkWorkerChange(ctx, id, ifMatch, "goal-withdrawn", func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error {
		if err := cr.WithdrawGoal(goalID, w, now); err != nil {
			return err
		}
		ch.Plan = &cr.Plan
		return nil
	})
}
