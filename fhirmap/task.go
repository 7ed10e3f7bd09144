package fhirmap

import (
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	vspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/valuesets_go_proto"
	"google.golang.org/protobuf/proto"
)

// Code systems linkbridge emits.
const (
	// TaskCodeSystem is the FHIR task-code system (code "fulfill").
	TaskCodeSystem = "http://hl7.org/fhir/CodeSystem/task-code"
	// BusinessStatusSystem is linkbridge's CodeSystem for finer referral
	// workflow steps carried in Task.businessStatus, under
	// DefaultSystemBase (a deployment's own: Systems.BusinessStatus).
	BusinessStatusSystem = DefaultSystemBase + pathBusinessStatus
	// DeclineReasonSystem codes why a referral was declined
	// (linkbridge.DeclineReasons) in Task.statusReason, under
	// DefaultSystemBase (a deployment's own: Systems.DeclineReason).
	DeclineReasonSystem = DefaultSystemBase + pathDeclineReason
	// DischargeReasonSystem codes why an episode ended
	// (linkbridge.DischargeReasons) in Task.statusReason, under
	// DefaultSystemBase (a deployment's own: Systems.DischargeReason).
	DischargeReasonSystem = DefaultSystemBase + pathDischargeReason
)

// NewReferralTask builds the referral Task the gateway creates when a
// referral arrives without one (SDOH Task for Referral Management: status
// requested, intent order, code fulfill, focus the ServiceRequest, for the
// Patient, requester as on the ServiceRequest, owner the social prescribing
// service by ODS identifier).
func NewReferralTask(r *linkbridge.Referral, requester *dpb.Reference, now time.Time) *taskpb.Task {
	t := &taskpb.Task{
		Status: &taskpb.Task_StatusCode{Value: cpb.TaskStatusCode_REQUESTED},
		Intent: &taskpb.Task_IntentCode{Value: vspb.TaskIntentValueSet_ORDER},
		Code: &dpb.CodeableConcept{Coding: []*dpb.Coding{{
			System:  &dpb.Uri{Value: TaskCodeSystem},
			Code:    &dpb.Code{Value: "fulfill"},
			Display: &dpb.String{Value: "Fulfill the focal request"},
		}}},
		Focus:        NewRef("ServiceRequest", r.ID),
		ForValue:     NewRef("Patient", r.Patient()),
		AuthoredOn:   DateTime(r.AuthoredOn),
		LastModified: DateTime(now),
	}
	if r.Status != "" {
		SetCode(t.Status, string(r.Status))
	}
	if requester != nil {
		t.Requester = proto.Clone(requester).(*dpb.Reference)
	} else {
		t.Requester = odsRef(r.ReferrerODS)
	}
	if r.ServiceODS != "" {
		t.Owner = odsRef(r.ServiceODS)
	}
	if p := r.Priority; p != "" {
		t.Priority = &taskpb.Task_PriorityCode{}
		if !SetCode(t.Priority, p) {
			t.Priority = nil
		}
	}
	return t
}

// odsRef is a logical reference to an organisation by ODS code.
func odsRef(ods string) *dpb.Reference {
	return &dpb.Reference{
		Type:       &dpb.Uri{Value: "Organization"},
		Identifier: &dpb.Identifier{System: &dpb.Uri{Value: linkbridge.ODSSystem}, Value: &dpb.String{Value: ods}},
	}
}

// TaskStatusOf returns the Task's status as a domain status.
func TaskStatusOf(t *taskpb.Task) linkbridge.TaskStatus {
	return linkbridge.TaskStatus(Code(t.GetStatus()))
}

// ApplyReferralToTask writes the referral's workflow state onto its Task:
// status, statusReason text (for rejected, cancelled, on-hold and failed),
// businessStatus and lastModified.
func (s Systems) ApplyReferralToTask(t *taskpb.Task, r *linkbridge.Referral, now time.Time) {
	if t.Status == nil {
		t.Status = &taskpb.Task_StatusCode{}
	}
	SetCode(t.Status, string(r.Status))
	t.StatusReason = nil
	if codings := s.reasonCodings(r); r.StatusReason != "" || len(codings) > 0 {
		t.StatusReason = &dpb.CodeableConcept{Coding: codings}
		if r.StatusReason != "" {
			t.StatusReason.Text = &dpb.String{Value: r.StatusReason}
		}
	}
	t.BusinessStatus = nil
	if r.BusinessStatus != "" {
		t.BusinessStatus = &dpb.CodeableConcept{
			Coding: []*dpb.Coding{{System: &dpb.Uri{Value: s.BusinessStatus()}, Code: &dpb.Code{Value: r.BusinessStatus}}},
			Text:   &dpb.String{Value: r.BusinessStatus},
		}
	}
	t.LastModified = DateTime(now)
}

// reasonCodings are the coded reasons of a referral's status, for
// Task.statusReason (docs/domain.md#business-statuses-decline-and-discharge-reasons):
// a declined referral's decline reason (with SNOMED CT 871711000000103
// when it is the person's), an ended episode's discharge reason.
func (s Systems) reasonCodings(r *linkbridge.Referral) []*dpb.Coding {
	code := func(system, value string) *dpb.Coding {
		return &dpb.Coding{System: &dpb.Uri{Value: system}, Code: &dpb.Code{Value: value},
			Display: &dpb.String{Value: strings.ReplaceAll(value, "-", " ")}}
	}
	var out []*dpb.Coding
	switch r.Status {
	case linkbridge.TaskRejected, linkbridge.TaskCancelled:
		if r.DeclineReason != "" {
			out = append(out, code(s.DeclineReason(), r.DeclineReason))
		}
		if !r.PersonDeclinedAt.IsZero() && r.AgreedAt.IsZero() {
			out = append(out, &dpb.Coding{System: &dpb.Uri{Value: linkbridge.SNOMEDSystem},
				Code: &dpb.Code{Value: linkbridge.SCTSocialPrescribingDeclined}, Display: &dpb.String{Value: "Social prescribing declined"}})
		}
	case linkbridge.TaskCompleted, linkbridge.TaskFailed:
		if r.DischargeReason != "" {
			out = append(out, code(s.DischargeReason(), r.DischargeReason))
		}
	}
	return out
}
