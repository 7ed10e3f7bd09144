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
}

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
func (s *Service) document(ctx context.Context, cr *linkbridge.CaseRecord, before *linkbridge.Referral, beforeAgreed *time.Time, now time.Time) (*linkbridge.OutboxMessage, error) {
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
	if trig == "" {
		return nil, nil
	}
	pat, err := s.documentPatient(ctx, cr)
	if err != nil {
		return nil, err
	}
	in := &senddoc.Input{Case: cr, Patient: pat, Trigger: trig,
		Service:   senddoc.Party{ODS: cr.Referral.ServiceODS, Name: s.Documents.ServiceName},
		Practice:  senddoc.Party{ODS: practiceODS(cr)},
		MessageID: uuid.NewString(), DocumentID: uuid.NewString(), Version: 1, Now: now}
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
		ResourceType: linkbridge.SendDocumentType, ResourceID: in.DocumentID, Version: 1, Body: msg.Body,
		NHSNumber: cr.Person.NHSNumber, State: linkbridge.OutboxPending, AvailableAt: now, CreatedAt: now}, nil
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
