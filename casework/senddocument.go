package casework

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/senddoc"

	patientpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
)

// Documents configures the send-document write-back route
// (docs/send-document.md): at the Triggers a change reaches, for a
// practice whose route sends documents, the change enqueues a "Social
// prescribing update" in its own transaction.
type Documents struct {
	// Triggers are the points that send a document (default
	// senddoc.DefaultTriggers).
	Triggers []senddoc.Trigger
	// ServiceName names the social prescribing service on the document
	// ("" shows its ODS code only).
	ServiceName string
	// Sent lists the documents already enqueued, to replace a closed
	// episode's last document when a correction or a consent change alters
	// what it said (nil: no replacements; docs/send-document.md#replacements).
	Sent linkbridge.OutboxStore
}

// replacingActions are the changes that may still be made to a closed
// episode and alter what its closing document said: corrections
// (docs/domain.md#corrections) and the person's consent to share.
var replacingActions = []string{"contact-amended", "contact-withdrawn", "measure-amended", "measure-withdrawn", "goal-withdrawn", "consent"}

// The document is rendered when the change is made, not when it is sent:
// it reports the case as it stood at the trigger (a later change does not
// rewrite what the practice is told about an earlier point), the outbox
// holds the exact bytes every retry sends (the ITK3 message id the
// acknowledgements name stays the same), and rendering fails, if it does,
// where the change is made and logged, not in the relay.

// documentOrderKey orders a person's documents among themselves, apart
// from their FHIR write-backs: a document waits for its acknowledgements
// (possibly days), which must not hold up the FHIR route.
func documentOrderKey(personID string) string { return "send-document:" + personID }

// document returns the send-document outbox message of a change, or nil
// when the change reached no configured trigger. before is the referral
// and the plan's agreement time before the change.
func (s *Service) document(ctx context.Context, cr *linkbridge.CaseRecord, before *linkbridge.Referral, beforeAgreed *time.Time, action string, now time.Time) (*linkbridge.OutboxMessage, error) {
	if s.Documents == nil || cr.Person == nil {
		return nil, nil
	}
	if cr.Referral.Consent == linkbridge.ConsentNone {
		return nil, nil // nothing but the Task status may reach the GP record
	}
	triggers := s.Documents.Triggers
	if triggers == nil {
		triggers = senddoc.DefaultTriggers
	}
	var trig senddoc.Trigger
	for _, t := range senddoc.Reached(before, beforeAgreed, cr) {
		if slices.Contains(triggers, t) {
			trig = t // the last point reached: a change that accepts and discharges reports the discharge
		}
	}
	version, replaces := 1, ""
	if trig == "" {
		var err error
		if trig, replaces, version, err = s.replacement(ctx, cr, action, triggers); err != nil || trig == "" {
			return nil, err
		}
	}
	pat, err := s.documentPatient(ctx, cr)
	if err != nil {
		return nil, err
	}
	in := &senddoc.Input{Case: cr, Patient: pat, Trigger: trig,
		Service:   senddoc.Party{ODS: cr.Referral.ServiceODS, Name: s.Documents.ServiceName},
		Practice:  senddoc.Party{ODS: practiceODS(cr)},
		MessageID: uuid.NewString(), DocumentID: uuid.NewString(), Version: version, Replaces: replaces, Now: now}
	if err := in.Validate(); err != nil {
		// The person's record lacks what MESH routing needs (a family
		// name, a registered practice): the change stands, the document
		// cannot be sent, and the operator is told by the log.
		s.Logger.WarnContext(ctx, "send-document not enqueued", slog.String("referral_id", cr.Referral.ID),
			slog.String("trigger", string(trig)), slog.String("reason", err.Error()))
		return nil, nil
	}
	msg, err := senddoc.Build(in)
	if err != nil {
		return nil, err // a message failing STU3 validation is our bug
	}
	return &linkbridge.OutboxMessage{OrderKey: documentOrderKey(cr.Referral.PersonID), ReferralID: cr.Referral.ID,
		ResourceType: linkbridge.SendDocumentType, ResourceID: in.DocumentID, Version: version, Body: msg.Body,
		NHSNumber: cr.Person.NHSNumber, State: linkbridge.OutboxPending, AvailableAt: now, CreatedAt: now}, nil
}

// replacement decides whether a change to a closed episode replaces its
// closing document: the change is one of replacingActions, the episode's
// closing point (discharge or decline) is a configured trigger, and the
// last document enqueued for the referral is that point's (or a
// replacement of it). It returns the trigger, the DocumentID replaced and
// the new document's version; no trigger when nothing is replaced.
func (s *Service) replacement(ctx context.Context, cr *linkbridge.CaseRecord, action string, triggers []senddoc.Trigger) (senddoc.Trigger, string, int, error) {
	closing := senddoc.Closing(cr.Referral)
	if s.Documents.Sent == nil || closing == "" || !slices.Contains(triggers, closing) || !slices.Contains(replacingActions, action) {
		return "", "", 0, nil
	}
	sent, err := s.Documents.Sent.ListOutbox(ctx, linkbridge.OutboxFilter{OrderKey: documentOrderKey(cr.Referral.PersonID), ReferralID: cr.Referral.ID, Limit: 1000})
	if err != nil {
		return "", "", 0, err
	}
	var last *linkbridge.OutboxMessage
	for _, m := range sent {
		if m.ResourceType == linkbridge.SendDocumentType && (last == nil || m.ID > last.ID) {
			last = m
		}
	}
	if last == nil || senddoc.TriggerOf(last.Body) != closing {
		return "", "", 0, nil // the closing document was never sent (consent, configuration)
	}
	return closing, last.ResourceID, last.Version + 1, nil
}

// documentPatient reads the names MESH automatic routing needs from the
// referral's Patient resource.
func (s *Service) documentPatient(ctx context.Context, cr *linkbridge.CaseRecord) (senddoc.Patient, error) {
	p := senddoc.Patient{NHSNumber: cr.Person.NHSNumber, BirthDate: cr.Person.BirthDate}
	res, err := s.own().ReadResource(ctx, "Patient", cr.Referral.Patient())
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		return p, nil
	} else if err != nil {
		return p, err
	}
	m, err := s.Codec.DecodeResource(res.Body)
	if err != nil {
		return p, err
	}
	pt, ok := m.(*patientpb.Patient)
	if !ok {
		return p, nil
	}
	for _, n := range pt.GetName() {
		if n.GetPeriod().GetEnd() != nil || n.GetFamily().GetValue() == "" {
			continue
		}
		var given []string
		for _, g := range n.GetGiven() {
			given = append(given, g.GetValue())
		}
		if p.Family == "" || strings.EqualFold(n.GetUse().GetValue().String(), "OFFICIAL") {
			p.Family, p.Given = n.GetFamily().GetValue(), strings.Join(given, " ")
		}
	}
	if g := pt.GetGender().GetValue().String(); g != "" && g != "INVALID_UNINITIALIZED" {
		p.Gender = strings.ToLower(g)
	}
	return p, nil
}

// practiceODS is the person's registered practice: the one recorded for
// the person, else the referrer (a GP referral comes from the practice).
func practiceODS(cr *linkbridge.CaseRecord) string {
	if cr.Person != nil && cr.Person.GPODS != "" {
		return cr.Person.GPODS
	}
	return cr.Referral.ReferrerODS
}
