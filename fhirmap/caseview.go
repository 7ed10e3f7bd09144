package fhirmap

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	careplanpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/care_plan_go_proto"
	encounterpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/encounter_go_proto"
	goalpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/goal_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	procedurepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/procedure_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	vspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/valuesets_go_proto"
	"google.golang.org/protobuf/proto"
)

// Canonical URLs linkbridge defines and publishes, under DefaultSystemBase:
// a deployment's own are its Systems' (docs/identifiers.md#linkbridges-own-uris).
const (
	// ONS4CodeSystem is linkbridge's CodeSystem for the ONS4 personal
	// wellbeing questions (no national SNOMED CT or LOINC codes exist).
	ONS4CodeSystem = DefaultSystemBase + pathONS4
	// OutcomeCodeSystem is linkbridge's CodeSystem for the parts of the
	// other outcome measures that have no confirmed national code: item
	// answers, the SWEMWBS raw score, the UCLA 3-item total, and the change
	// from baseline (docs/domain.md#fhir-codes-of-the-outcome-measures).
	OutcomeCodeSystem = DefaultSystemBase + pathOutcome
	// ExtTimepoint marks an outcome Observation as baseline, review or final.
	ExtTimepoint = DefaultSystemBase + pathExtTimepoint
	// ExtGoalImportance and ExtGoalConfidence carry the person's 1–10
	// ratings on a Goal (PRSB care and support plan).
	ExtGoalImportance = DefaultSystemBase + pathExtGoalImportance
	ExtGoalConfidence = DefaultSystemBase + pathExtGoalConfidence
	// ExtOnwardReferralStatus carries an onward referral's own status (sent,
	// accepted, attended, declined) on its ServiceRequest.
	ExtOnwardReferralStatus = DefaultSystemBase + pathExtOnwardReferralStatus
	// LinkWorkerSystem identifies link workers in references.
	LinkWorkerSystem = DefaultSystemBase + pathLinkWorker
	// SDOHTaskOutputSystem is the SDOH temporary code system for Task.output
	// types (resulting-activity, additional-content).
	SDOHTaskOutputSystem = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
	// UCUM is the unit system of Encounter.length.
	UCUM = "http://unitsofmeasure.org"
)

// National codes of the outcome measures
// (docs/domain.md#fhir-codes-of-the-outcome-measures).
const (
	// SCTWEMWBS is SNOMED CT "Warwick-Edinburgh Mental Well-being Scale
	// score", the code of a WEMWBS Observation.
	SCTWEMWBS = "718426000"
	// SCTSWEMWBS is SNOMED CT "Short Warwick-Edinburgh Mental Well-being
	// Scale score", the code of a SWEMWBS Observation (its value is the
	// metric score).
	SCTSWEMWBS = "718466001"
	// SCTDidNotAttend is SNOMED CT 281399006 |Did not attend (finding)|,
	// the coded entry of a contact the person did not attend
	// (docs/domain.md#did-not-attend).
	SCTDidNotAttend = "281399006"
	// LOINCUCLA3 is the LOINC panel "Three-Item Loneliness scale": a panel
	// (an order), not a result, so no Observation carries it as its code;
	// the total has a local code (OutcomeCodeSystem).
	LOINCUCLA3 = "106418-7"
	// LOINCUCLA3Isolated is LOINC "How often do you feel isolated from
	// others", the third item of the UCLA 3-item scale and a member of
	// the LOINCUCLA3 panel.
	LOINCUCLA3Isolated = "66867-3"
)

// Generated is one resource of the FHIR view of a case record.
type Generated struct {
	Type, ID string
	// Resource is the resource, its id set: a *Procedure, *Observation,
	// *CarePlan, *Goal, *Encounter or *ServiceRequest of the R4 protos.
	// The caller validates it (fhirjson.Codec.Validate, ValidateEncoded)
	// before storing or sending it.
	Resource proto.Message
}

// Reference returns "Type/id".
func (g Generated) Reference() string { return g.Type + "/" + g.ID }

// Ids of the resources generated for a referral: stable, so each change
// writes a new version of the same resource (and the GP side can PUT them).
func CarePlanID(referralID string) string   { return "careplan-" + referralID }
func AcceptanceID(referralID string) string { return "accepted-" + referralID }
func DeclinedID(referralID string) string   { return "declined-" + referralID }

// CaseView renders the FHIR view of a case record for the GP record and the
// MDT: the coded acceptance entry (Procedure, SNOMED 871731000000106) or
// decline entry (Observation, 871711000000103), the CarePlan with its
// Goals, an Encounter per contact, an Observation per outcome measure, and a
// ServiceRequest per onward referral. Consent decides what leaves: full
// shares everything; codes-only shares codes and statuses but no free text;
// none shares nothing here (only the Task status, see ApplyCaseToTask).
//
// Each resource is built as the R4 proto google/fhir parses its JSON into
// (typed references, dateTimes to the second in UTC), so it renders and
// compares like a stored version read back.
func (s Systems) CaseView(cr *linkbridge.CaseRecord) []Generated {
	r := cr.Referral
	consent := r.Consent
	if consent == "" {
		consent = linkbridge.ConsentCodesOnly
	}
	if consent == linkbridge.ConsentNone {
		return nil
	}
	full := consent == linkbridge.ConsentFull
	// Every resource gets its own references: none shares a message with
	// another, so one may be changed (SetMeta, ForGPRecord) on its own.
	patient := func() *dpb.Reference { return NewRef("Patient", r.Patient()) }
	basedOn := func() []*dpb.Reference { return []*dpb.Reference{NewRef("ServiceRequest", r.ID)} }
	var out []Generated

	// The referral is coded when the person agrees to take part, once per
	// episode, with the link worker who held the case then; "declined" when
	// the person declined before that (docs/domain.md#coding-the-episode).
	if !r.AgreedAt.IsZero() {
		id := AcceptanceID(r.ID)
		proc := &procedurepb.Procedure{
			Id:      fhirID(id),
			Status:  &procedurepb.Procedure_StatusCode{Value: cpb.EventStatusCode_COMPLETED},
			Code:    sct(linkbridge.SCTReferralToSocialPrescribing, "Referral to social prescribing service"),
			Subject: patient(),
			BasedOn: basedOn(),
		}
		if r.CompletedAt.IsZero() || r.CompletedAt.Before(r.AgreedAt) {
			proc.Performed = &procedurepb.Procedure_PerformedX{Choice: &procedurepb.Procedure_PerformedX_DateTime{DateTime: DateTime(r.AgreedAt)}}
		} else {
			proc.Performed = &procedurepb.Procedure_PerformedX{Choice: &procedurepb.Procedure_PerformedX_Period{
				Period: &dpb.Period{Start: DateTime(r.AgreedAt), End: DateTime(r.CompletedAt)}}}
		}
		if r.AgreedBy.ID != "" {
			proc.Performer = []*procedurepb.Procedure_Performer{{Actor: s.linkWorkerRef(r.AgreedBy)}}
		}
		if full && r.DischargeSummary != "" {
			proc.Note = []*dpb.Annotation{{Text: &dpb.Markdown{Value: r.DischargeSummary}}}
		}
		out = append(out, Generated{"Procedure", id, proc})
	}
	if r.AgreedAt.IsZero() && !r.PersonDeclinedAt.IsZero() {
		id := DeclinedID(r.ID)
		obs := &observationpb.Observation{
			Id:        fhirID(id),
			Status:    &observationpb.Observation_StatusCode{Value: cpb.ObservationStatusCode_FINAL},
			Code:      sct(linkbridge.SCTSocialPrescribingDeclined, "Social prescribing declined"),
			Subject:   patient(),
			BasedOn:   basedOn(),
			Effective: &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: DateTime(r.PersonDeclinedAt)}},
		}
		out = append(out, Generated{"Observation", id, obs})
	}
	if r.AcceptedAt.IsZero() {
		return out
	}

	// The personalised care and support plan and its goals.
	plan := cr.Plan
	cpID := CarePlanID(r.ID)
	cp := &careplanpb.CarePlan{
		Id:       fhirID(cpID),
		Status:   &careplanpb.CarePlan_StatusCode{Value: carePlanStatus(r.Status)},
		Intent:   &careplanpb.CarePlan_IntentCode{Value: vspb.CarePlanIntentValueSet_PLAN},
		Title:    fhirString("Personalised care and support plan (social prescribing)"),
		Category: []*dpb.CodeableConcept{conceptText("Social prescribing personalised care and support plan")},
		Subject:  patient(),
		// CarePlan.basedOn may only point at a CarePlan (R4); the referral
		// is information the plan was made on.
		SupportingInfo: basedOn(),
		Period:         period(r.AcceptedAt, r.CompletedAt),
	}
	if r.LinkWorker.ID != "" {
		cp.Author = s.linkWorkerRef(r.LinkWorker)
	}
	if full && plan.WhatMatters != "" {
		cp.Description = fhirString("What matters to me: " + plan.WhatMatters)
	}
	// A closed plan carries why (R4 CarePlan has no statusReason): the
	// coded discharge reason, no free text.
	if !r.CompletedAt.IsZero() && r.DischargeReason != "" {
		cp.Note = []*dpb.Annotation{{Text: &dpb.Markdown{Value: "Closed: " + r.DischargeReason}}}
	}
	// Needs, risks and the safeguarding flag are the person's own account
	// and the link worker's assessment: shared under full consent only,
	// as notes (R4 CarePlan.addresses takes Conditions, which these are
	// not; docs/domain.md#the-fhir-view-of-a-case).
	if full {
		cp.Note = append(cp.Note, planNotes(plan)...)
	}
	// The review date: a scheduled activity of the plan.
	if plan.ReviewDate != "" && r.CompletedAt.IsZero() {
		if d, err := time.Parse(time.DateOnly, plan.ReviewDate); err == nil {
			cp.Activity = append(cp.Activity, &careplanpb.CarePlan_Activity{Detail: &careplanpb.CarePlan_Activity_Detail{
				Kind:        &careplanpb.CarePlan_Activity_Detail_KindCode{Value: vspb.CarePlanActivityKindValueSet_APPOINTMENT},
				Code:        conceptText("Review of the personalised care and support plan"),
				Status:      &careplanpb.CarePlan_Activity_Detail_StatusCode{Value: cpb.CarePlanActivityStatusCode_SCHEDULED},
				Description: fhirString("Plan review"),
				Scheduled: &careplanpb.CarePlan_Activity_Detail_ScheduledX{Choice: &careplanpb.CarePlan_Activity_Detail_ScheduledX_Period{
					Period: &dpb.Period{Start: &dpb.DateTime{ValueUs: d.UnixMicro(), Precision: dpb.DateTime_DAY, Timezone: "UTC"}}}},
			}})
		}
	}
	for _, g := range plan.Goals {
		// A goal withdrawn as entered in error is no goal of the plan; its
		// Goal stays in the view, entered-in-error, so the GP copy follows
		// (docs/domain.md#corrections).
		if g.Status != linkbridge.GoalEnteredInError {
			cp.Goal = append(cp.Goal, NewRef("Goal", g.ID))
		}
		out = append(out, Generated{"Goal", g.ID, s.goalResource(g, patient(), full)})
	}
	for _, a := range plan.Actions {
		detail := &careplanpb.CarePlan_Activity_Detail{Status: activityStatus(a.Status)}
		if full {
			detail.Description = fhirString(a.Description)
		}
		if a.Due != "" {
			detail.Scheduled = &careplanpb.CarePlan_Activity_Detail_ScheduledX{
				Choice: &careplanpb.CarePlan_Activity_Detail_ScheduledX_StringValue{StringValue: fhirString("by " + a.Due)}}
		}
		cp.Activity = append(cp.Activity, &careplanpb.CarePlan_Activity{Detail: detail})
	}
	for _, o := range plan.OnwardReferrals {
		cp.Activity = append(cp.Activity, &careplanpb.CarePlan_Activity{Reference: NewRef("ServiceRequest", o.ID)})
		out = append(out, Generated{"ServiceRequest", o.ID, s.onwardResource(o, r, patient(), full)})
	}
	for _, s := range plan.Signposts {
		detail := &careplanpb.CarePlan_Activity_Detail{
			Kind:   &careplanpb.CarePlan_Activity_Detail_KindCode{Value: vspb.CarePlanActivityKindValueSet_COMMUNICATION_REQUEST},
			Status: &careplanpb.CarePlan_Activity_Detail_StatusCode{Value: cpb.CarePlanActivityStatusCode_COMPLETED},
		}
		if full {
			detail.Description = fhirString("Signposted to " + s.To)
		}
		cp.Activity = append(cp.Activity, &careplanpb.CarePlan_Activity{Detail: detail})
	}
	out = append(out, Generated{"CarePlan", cpID, cp})

	for _, c := range cr.Contacts {
		enc := s.encounterResource(c, r, patient(), basedOn(), full)
		correctEncounter(enc, c)
		out = append(out, Generated{"Encounter", c.ID, enc})
		// A DNA's coded entry; one whose contact is withdrawn or amended to
		// attended leaves the view and is withdrawn (Withdrawable).
		if c.DNA() && !c.Withdrawn() {
			out = append(out, Generated{"Observation", DNAID(c.ID), dnaResource(c, patient(), basedOn())})
		}
	}
	changes := linkbridge.ChangesFromBaseline(cr.Measures)
	for _, m := range measuresInOrder(cr.Measures) {
		obs := s.measureResource(m, changes[m.ID], patient(), basedOn())
		correctObservation(obs, m)
		out = append(out, Generated{"Observation", m.ID, obs})
	}
	return out
}

// ApplyCaseToTask writes the case's workflow state onto the referral Task:
// status, businessStatus, statusReason (never free text unless consent is
// full: codes-only gets the coded reason only), owner, and outputs pointing
// at the generated resources (SDOH resulting-activity and
// additional-content).
func (s Systems) ApplyCaseToTask(t *taskpb.Task, r *linkbridge.Referral, view []Generated, now time.Time) {
	shared := *r
	if r.Consent != linkbridge.ConsentFull {
		shared.StatusReason = codedReason(r)
	}
	s.ApplyReferralToTask(t, &shared, now)
	if r.LinkWorker.ID != "" {
		t.Owner = s.linkWorkerRef(r.LinkWorker)
	}
	if !r.AcceptedAt.IsZero() && t.ExecutionPeriod == nil {
		t.ExecutionPeriod = &dpb.Period{Start: DateTime(r.AcceptedAt)}
	}
	if !r.CompletedAt.IsZero() && t.ExecutionPeriod != nil {
		t.ExecutionPeriod.End = DateTime(r.CompletedAt)
	}
	t.Output = nil
	for _, g := range view {
		if EnteredInError(g.Resource) {
			continue // withdrawn: no output of the work (docs/domain.md#corrections)
		}
		typ := "additional-content"
		if g.Type == "Procedure" {
			typ = "resulting-activity"
		}
		if g.Type == "Goal" || g.Type == "ServiceRequest" {
			continue // reached through the CarePlan
		}
		t.Output = append(t.Output, &taskpb.Task_Output{
			Type:  &dpb.CodeableConcept{Coding: []*dpb.Coding{{System: &dpb.Uri{Value: SDOHTaskOutputSystem}, Code: &dpb.Code{Value: typ}}}},
			Value: &taskpb.Task_Output_ValueX{Choice: &taskpb.Task_Output_ValueX_Reference{Reference: NewRef(g.Type, g.ID)}},
		})
	}
}

// codedReason is the status reason without free text.
func codedReason(r *linkbridge.Referral) string {
	switch r.Status {
	case linkbridge.TaskRejected:
		return "Declined: " + r.DeclineReason
	case linkbridge.TaskFailed:
		if r.DischargeReason != "" {
			return "Failed: " + r.DischargeReason
		}
		return "Failed"
	case linkbridge.TaskCompleted:
		if r.DischargeReason != "" {
			return "Discharged: " + r.DischargeReason
		}
		return ""
	case linkbridge.TaskOnHold:
		return "On hold"
	case linkbridge.TaskCancelled:
		return "Cancelled"
	}
	return ""
}

func carePlanStatus(s linkbridge.TaskStatus) cpb.RequestStatusCode_Value {
	switch s {
	case linkbridge.TaskCompleted:
		return cpb.RequestStatusCode_COMPLETED
	case linkbridge.TaskOnHold:
		return cpb.RequestStatusCode_ON_HOLD
	case linkbridge.TaskCancelled, linkbridge.TaskFailed:
		return cpb.RequestStatusCode_REVOKED
	case linkbridge.TaskEnteredInError:
		return cpb.RequestStatusCode_ENTERED_IN_ERROR
	}
	return cpb.RequestStatusCode_ACTIVE
}

// activityStatus is a plan action's status as a CarePlan activity status,
// or nil for a code outside the value set: the CarePlan then fails
// validation (detail.status is required), as its JSON did before.
func activityStatus(s string) *careplanpb.CarePlan_Activity_Detail_StatusCode {
	c := &careplanpb.CarePlan_Activity_Detail_StatusCode{}
	if !SetCode(c, s) {
		return nil
	}
	return c
}

func (s Systems) goalResource(g linkbridge.Goal, patient *dpb.Reference, full bool) *goalpb.Goal {
	lifecycle, achievement := cpb.GoalLifecycleStatusCode_ACTIVE, ""
	switch g.Status {
	case linkbridge.GoalOnHold:
		lifecycle = cpb.GoalLifecycleStatusCode_ON_HOLD
	case linkbridge.GoalAchieved:
		lifecycle, achievement = cpb.GoalLifecycleStatusCode_COMPLETED, "achieved"
	case linkbridge.GoalNotAchieved:
		lifecycle, achievement = cpb.GoalLifecycleStatusCode_COMPLETED, "not-achieved"
	case linkbridge.GoalCancelled:
		lifecycle = cpb.GoalLifecycleStatusCode_CANCELLED
	case linkbridge.GoalEnteredInError:
		lifecycle = cpb.GoalLifecycleStatusCode_ENTERED_IN_ERROR
	}
	desc := "Personal goal (details held by the social prescribing service)"
	if full {
		desc = g.Description
	}
	res := &goalpb.Goal{
		Id:              fhirID(g.ID),
		LifecycleStatus: &goalpb.Goal_LifecycleStatusCode{Value: lifecycle},
		Description:     conceptText(desc),
		Subject:         patient,
		Extension:       []*dpb.Extension{integerExt(s.ExtGoalImportance(), g.Importance), integerExt(s.ExtGoalConfidence(), g.Confidence)},
	}
	if achievement != "" {
		res.AchievementStatus = concept(coding("http://terminology.hl7.org/CodeSystem/goal-achievement", achievement, ""))
	}
	return res
}

func (s Systems) onwardResource(o linkbridge.OnwardReferral, r *linkbridge.Referral, patient *dpb.Reference, full bool) *srpb.ServiceRequest {
	status := cpb.RequestStatusCode_ACTIVE
	switch o.Status {
	case "attended":
		status = cpb.RequestStatusCode_COMPLETED
	case "declined":
		status = cpb.RequestStatusCode_REVOKED
	}
	// The service is named by the link worker in free text: only full
	// consent shares the name; codes-only shares the ODS code, if any.
	code, performer := conceptText("Referral to a community service"), &dpb.Reference{}
	if full {
		code.Text = fhirString("Referral to " + o.Service)
		performer.Display = fhirString(o.Service)
	}
	if o.OrganisationODS != "" {
		performer.Identifier = &dpb.Identifier{System: fhirURI(linkbridge.ODSSystem), Value: fhirString(o.OrganisationODS)}
		performer.Type = fhirURI("Organization")
	}
	sr := &srpb.ServiceRequest{
		Id:         fhirID(o.ID),
		Status:     &srpb.ServiceRequest_StatusCode{Value: status},
		Intent:     &srpb.ServiceRequest_IntentCode{Value: cpb.RequestIntentCode_ORDER},
		Code:       code,
		Subject:    patient,
		BasedOn:    []*dpb.Reference{NewRef("ServiceRequest", r.ID)},
		AuthoredOn: DateTime(o.SentAt),
		Extension:  []*dpb.Extension{codeExt(s.ExtOnwardReferralStatus(), o.Status)},
	}
	if performer.Display != nil || performer.Identifier != nil {
		sr.Performer = []*dpb.Reference{performer}
	}
	if r.LinkWorker.ID != "" {
		sr.Requester = s.linkWorkerRef(r.LinkWorker)
	}
	if full && o.Reason != "" {
		sr.ReasonCode = []*dpb.CodeableConcept{conceptText(o.Reason)}
	}
	return sr
}

// contactClass is the Encounter.class (v3 ActCode code and display) of a
// contact mode.
var contactClass = map[linkbridge.ContactMode][2]string{
	linkbridge.ContactFaceToFace: {"AMB", "ambulatory"},
	linkbridge.ContactGroup:      {"AMB", "ambulatory"},
	linkbridge.ContactPhone:      {"VR", "virtual"},
	linkbridge.ContactVideo:      {"VR", "virtual"},
	linkbridge.ContactHomeVisit:  {"HH", "home health"},
}

func (s Systems) encounterResource(c *linkbridge.Contact, r *linkbridge.Referral, patient *dpb.Reference, basedOn []*dpb.Reference, full bool) *encounterpb.Encounter {
	class := contactClass[c.Mode]
	status := cpb.EncounterStatusCode_FINISHED
	if !c.Attended {
		status = cpb.EncounterStatusCode_CANCELLED // did not attend: the contact did not take place
	}
	enc := &encounterpb.Encounter{
		Id:     fhirID(c.ID),
		Status: &encounterpb.Encounter_StatusCode{Value: status},
		// An unknown mode leaves code and display empty, which fails
		// validation (FHIR JSON has no empty strings).
		ClassValue: &dpb.Coding{System: fhirURI("http://terminology.hl7.org/CodeSystem/v3-ActCode"), Code: fhirCode(class[0]), Display: fhirString(class[1])},
		Type:       []*dpb.CodeableConcept{conceptText("Social prescribing contact (" + string(c.Mode) + ")")},
		Subject:    patient,
		BasedOn:    basedOn,
		Period:     &dpb.Period{Start: DateTime(c.At), End: DateTime(c.At.Add(time.Duration(c.Minutes) * time.Minute))},
	}
	if c.Attended {
		enc.Length = &dpb.Duration{Value: &dpb.Decimal{Value: strconv.Itoa(c.Minutes)}, Unit: fhirString("min"), System: fhirURI(UCUM), Code: fhirCode("min")}
	}
	if r.LinkWorker.ID != "" {
		enc.Participant = []*encounterpb.Encounter_Participant{{Individual: s.linkWorkerRef(r.LinkWorker)}}
	}
	_ = full // contact notes never leave the store; they are the link worker's own
	return enc
}

// measuresInOrder is the measures by time taken, a baseline before a
// follow-up taken at the same time, then by id: a baseline's Observation
// then comes before the follow-ups that name it in derivedFrom (the GP
// endpoint holds a reference's target before the reference, as a Goal
// before its CarePlan), and the order does not depend on whether the
// case was just changed (measures in the order added) or read back from
// the store (by time taken).
func measuresInOrder(ms []*linkbridge.Measure) []*linkbridge.Measure {
	out := slices.Clone(ms)
	slices.SortStableFunc(out, func(a, b *linkbridge.Measure) int {
		if c := a.TakenAt.Compare(b.TakenAt); c != 0 {
			return c
		}
		if ab, bb := a.Timepoint == linkbridge.TimepointBaseline, b.Timepoint == linkbridge.TimepointBaseline; ab != bb {
			if ab {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// measureCoding is how an instrument is coded in FHIR: the code of its
// Observation, and of each item's component in questionnaire order.
type measureCoding struct {
	code  *dpb.Coding
	items []*dpb.Coding
}

// measureCodings are the codes of each instrument's Observation and items
// (docs/domain.md#fhir-codes-of-the-outcome-measures, which the tests
// check them against). A code without a confirmed national one is local.
var measureCodings = map[linkbridge.Instrument]measureCoding{
	linkbridge.WEMWBS: {
		code:  coding(linkbridge.SNOMEDSystem, SCTWEMWBS, "Warwick-Edinburgh Mental Well-being Scale score"),
		items: numberedItems("wemwbs", "WEMWBS", 14),
	},
	linkbridge.SWEMWBS: {
		code:  coding(linkbridge.SNOMEDSystem, SCTSWEMWBS, "Short Warwick-Edinburgh Mental Well-being Scale score"),
		items: numberedItems("swemwbs", "SWEMWBS", 7),
	},
	linkbridge.UCLA3: {
		code: coding(OutcomeCodeSystem, "ucla3-total-score", "Three-Item Loneliness Scale total score"),
		items: []*dpb.Coding{
			coding(OutcomeCodeSystem, "ucla3-lack-companionship", "How often do you feel that you lack companionship"),
			coding(OutcomeCodeSystem, "ucla3-left-out", "How often do you feel left out"),
			coding(linkbridge.LOINCSystem, LOINCUCLA3Isolated, "How often do you feel isolated from others"),
		},
	},
	linkbridge.ONS4: {
		code: coding(ONS4CodeSystem, "ons4", "ONS4 personal wellbeing"),
		items: []*dpb.Coding{
			coding(ONS4CodeSystem, "life-satisfaction", "Life satisfaction"),
			coding(ONS4CodeSystem, "worthwhile", "Things done in life are worthwhile"),
			coding(ONS4CodeSystem, "happy-yesterday", "Happiness yesterday"),
			coding(ONS4CodeSystem, "anxious-yesterday", "Anxiety yesterday"),
		},
	},
}

// swemwbsRawScore codes the SWEMWBS raw score (the item sum, before the
// conversion table) as a component.
var swemwbsRawScore = coding(OutcomeCodeSystem, "swemwbs-raw-score", "SWEMWBS raw score")

// changeFromBaseline codes the change of a measure's score from its
// baseline; an ONS4 item's change is coded "<item>-change" in the ONS4
// CodeSystem.
var changeFromBaseline = coding(OutcomeCodeSystem, "change-from-baseline", "Change from baseline")

// numberedItems codes n items prefix-item-1.. locally, with display
// "<name> item i".
func numberedItems(prefix, name string, n int) []*dpb.Coding {
	out := make([]*dpb.Coding, n)
	for i := range out {
		out[i] = coding(OutcomeCodeSystem, prefix+"-item-"+strconv.Itoa(i+1), name+" item "+strconv.Itoa(i+1))
	}
	return out
}

// ons4ChangeCoding codes an ONS4 item's change from baseline.
func ons4ChangeCoding(item *dpb.Coding) *dpb.Coding {
	return coding(ONS4CodeSystem, item.GetCode().GetValue()+"-change", item.GetDisplay().GetValue()+": change from baseline")
}

// measureResource is the Observation of an outcome measure
// (docs/domain.md#how-measures-are-represented-in-fhir): its score as
// valueQuantity (UCUM {score}; ONS4 has none), each item a coded component,
// the SWEMWBS raw score a component, and on a follow-up with a baseline the
// change from it, the baseline named in derivedFrom.
func (s Systems) measureResource(m *linkbridge.Measure, change *linkbridge.ScoreChange, patient *dpb.Reference, basedOn []*dpb.Reference) *observationpb.Observation {
	obs := &observationpb.Observation{
		Id:        fhirID(m.ID),
		Status:    &observationpb.Observation_StatusCode{Value: cpb.ObservationStatusCode_FINAL},
		Category:  []*dpb.CodeableConcept{concept(coding("http://terminology.hl7.org/CodeSystem/observation-category", "survey", "Survey"))},
		Subject:   patient,
		BasedOn:   basedOn,
		Effective: &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: DateTime(m.TakenAt)}},
		Extension: []*dpb.Extension{codeExt(s.ExtTimepoint(), string(m.Timepoint))},
	}
	mc, ok := measureCodings[m.Instrument]
	if !ok {
		return obs // no code: fails validation, as an unknown instrument should
	}
	obs.Code = concept(s.local(mc.code))
	integer := func(code *dpb.Coding, n int) *observationpb.Observation_Component {
		return &observationpb.Observation_Component{Code: concept(s.local(code)), Value: &observationpb.Observation_Component_ValueX{
			Choice: &observationpb.Observation_Component_ValueX_Integer{Integer: &dpb.Integer{Value: int32(n)}}}}
	}
	quantity := func(code *dpb.Coding, v *dpb.Decimal) *observationpb.Observation_Component {
		return &observationpb.Observation_Component{Code: concept(s.local(code)), Value: &observationpb.Observation_Component_ValueX{
			Choice: &observationpb.Observation_Component_ValueX_Quantity{Quantity: scoreQuantity(v)}}}
	}
	switch m.Instrument {
	case linkbridge.SWEMWBS:
		obs.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: scoreQuantity(decimal2dp(m.Metric))}}
		obs.Component = append(obs.Component, quantity(swemwbsRawScore, decimalInt(m.Total)))
	case linkbridge.WEMWBS, linkbridge.UCLA3:
		obs.Value = &observationpb.Observation_ValueX{Choice: &observationpb.Observation_ValueX_Quantity{Quantity: scoreQuantity(decimalInt(m.Total))}}
	}
	for i, item := range mc.items {
		if i < len(m.Items) {
			obs.Component = append(obs.Component, integer(item, m.Items[i]))
		}
	}
	if change == nil {
		return obs
	}
	obs.DerivedFrom = []*dpb.Reference{NewRef("Observation", change.BaselineID)}
	if change.Score != nil {
		v := decimalInt(int(math.Round(*change.Score)))
		if m.Instrument == linkbridge.SWEMWBS {
			v = decimal2dp(*change.Score)
		}
		obs.Component = append(obs.Component, quantity(changeFromBaseline, v))
	}
	if m.Instrument == linkbridge.ONS4 {
		for i, item := range mc.items {
			if i < len(change.Items) {
				obs.Component = append(obs.Component, integer(ons4ChangeCoding(item), change.Items[i]))
			}
		}
	}
	return obs
}

// scoreQuantity is a score as a Quantity of UCUM unit {score}.
func scoreQuantity(v *dpb.Decimal) *dpb.Quantity {
	return &dpb.Quantity{Value: v, Unit: fhirString("{score}"), System: fhirURI(UCUM), Code: fhirCode("{score}")}
}

// decimalInt is a whole number as a FHIR decimal.
func decimalInt(n int) *dpb.Decimal { return &dpb.Decimal{Value: strconv.Itoa(n)} }

// sct is a CodeableConcept of one SNOMED CT coding.
func sct(code, display string) *dpb.CodeableConcept {
	return concept(coding(linkbridge.SNOMEDSystem, code, display))
}

// linkWorkerRef is a logical reference to a link worker (Practitioner by
// SDS user id when known, else by link-worker identifier,
// Systems.LinkWorkerIdentifier), with their name as display when known.
func (s Systems) linkWorkerRef(lw linkbridge.LinkWorker) *dpb.Reference {
	system, value := s.LinkWorkerIdentifier(lw)
	ref := logicalRef("Practitioner", system, value)
	if lw.Name != "" {
		ref.Display = fhirString(lw.Name)
	}
	return ref
}

// period is start to end, open when end is zero.
func period(start, end time.Time) *dpb.Period {
	p := &dpb.Period{Start: DateTime(start)}
	if !end.IsZero() {
		p.End = DateTime(end)
	}
	return p
}

// decimal2dp is a score with two decimals ("17.00" stays exact: a FHIR
// decimal keeps its written precision).
func decimal2dp(f float64) *dpb.Decimal {
	return &dpb.Decimal{Value: strconv.FormatFloat(f, 'f', 2, 64)}
}

// Withdrawable reports whether a resource of the FHIR view is withdrawn
// (Withdraw) when the case no longer holds it: the plan's goals and onward
// referrals, which a plan edit can remove, and a DNA's coded entry, which a
// contact corrected to attended or withdrawn removes.
func Withdrawable(g Generated) bool {
	return g.Type == "Goal" || g.Type == "ServiceRequest" || g.Type == "Observation" && strings.HasPrefix(g.ID, DNAID(""))
}

// Withdraw marks a resource the case no longer holds as no longer current:
// a Goal cancelled, an onward ServiceRequest revoked, a DNA Observation
// entered-in-error (it should never have been recorded). Other types are
// left as they are.
func Withdraw(res proto.Message) {
	switch r := res.(type) {
	case *observationpb.Observation:
		r.Status = &observationpb.Observation_StatusCode{Value: cpb.ObservationStatusCode_ENTERED_IN_ERROR}
	case *goalpb.Goal:
		if r.LifecycleStatus == nil {
			r.LifecycleStatus = &goalpb.Goal_LifecycleStatusCode{}
		}
		SetCode(r.LifecycleStatus, "cancelled")
	case *srpb.ServiceRequest:
		if r.Status == nil {
			r.Status = &srpb.ServiceRequest_StatusCode{}
		}
		SetCode(r.Status, "revoked")
	}
}

// WithheldText is what a withheld resource says in place of its content.
const WithheldText = "Withheld: the person no longer consents to sharing this with the GP record"

// Withhold returns the version of a resource of the FHIR view that the GP
// record may keep when the person's consent no longer allows it to be
// shared and the GP endpoint cannot delete it: the same id and subject,
// status entered-in-error (FHIR R4 has no "withdrawn from sharing" status;
// entered-in-error tells every reader to disregard the entry, and the
// resource's elements that R4 requires carry WithheldText or a masked
// data-absent-reason instead of the content), and nothing else
// (docs/referral-exchange.md#consent). It returns nil for a type the view
// does not generate.
func Withhold(res proto.Message) proto.Message {
	withheld := func() *dpb.CodeableConcept { return conceptText(WithheldText) }
	switch r := res.(type) {
	case *goalpb.Goal:
		return &goalpb.Goal{Id: r.Id, Subject: r.Subject,
			LifecycleStatus: &goalpb.Goal_LifecycleStatusCode{Value: cpb.GoalLifecycleStatusCode_ENTERED_IN_ERROR},
			Description:     withheld()}
	case *careplanpb.CarePlan:
		return &careplanpb.CarePlan{Id: r.Id, Subject: r.Subject, Intent: r.Intent,
			Status: &careplanpb.CarePlan_StatusCode{Value: cpb.RequestStatusCode_ENTERED_IN_ERROR}}
	case *srpb.ServiceRequest:
		return &srpb.ServiceRequest{Id: r.Id, Subject: r.Subject, Intent: r.Intent,
			Status: &srpb.ServiceRequest_StatusCode{Value: cpb.RequestStatusCode_ENTERED_IN_ERROR}}
	case *encounterpb.Encounter:
		return &encounterpb.Encounter{Id: r.Id, Subject: r.Subject,
			Status:     &encounterpb.Encounter_StatusCode{Value: cpb.EncounterStatusCode_ENTERED_IN_ERROR},
			ClassValue: &dpb.Coding{System: &dpb.Uri{Value: DataAbsentReasonSystem}, Code: &dpb.Code{Value: "masked"}}}
	case *observationpb.Observation:
		return &observationpb.Observation{Id: r.Id, Subject: r.Subject,
			Status: &observationpb.Observation_StatusCode{Value: cpb.ObservationStatusCode_ENTERED_IN_ERROR},
			Code:   withheld()}
	case *procedurepb.Procedure:
		return &procedurepb.Procedure{Id: r.Id, Subject: r.Subject,
			Status: &procedurepb.Procedure_StatusCode{Value: cpb.EventStatusCode_ENTERED_IN_ERROR}}
	}
	return nil
}

// DataAbsentReasonSystem is the code system of data-absent-reason codes
// (FHIR R4 codesystem-data-absent-reason), "masked" among them.
const DataAbsentReasonSystem = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

// PersonDeclined reports whether a Task's statusReason says that the
// person declined the referral: a coding of SNOMED CT 871711000000103
// (Social prescribing declined) or of the decline reason person-declined,
// in any system, or that reason as its text.
func PersonDeclined(t *taskpb.Task) bool {
	sr := t.GetStatusReason()
	for _, c := range sr.GetCoding() {
		code := c.GetCode().GetValue()
		if code == linkbridge.DeclinePerson || code == linkbridge.SCTSocialPrescribingDeclined && c.GetSystem().GetValue() == linkbridge.SNOMEDSystem {
			return true
		}
	}
	return sr.GetText().GetValue() == linkbridge.DeclinePerson
}

// DNAID is the id of the coded "did not attend" entry of a contact.
func DNAID(contactID string) string { return "dna-" + contactID }

// dnaResource is the coded entry of a contact the person did not attend:
// an Observation of SNOMED CT 281399006 |Did not attend (finding)|, at the
// contact's time, naming its Encounter (cancelled: the contact did not take
// place), so that a GP system files a DNA as GP systems code one, and a
// cancellation is not mistaken for it (docs/domain.md#did-not-attend).
func dnaResource(c *linkbridge.Contact, patient *dpb.Reference, basedOn []*dpb.Reference) *observationpb.Observation {
	return &observationpb.Observation{
		Id:        fhirID(DNAID(c.ID)),
		Status:    &observationpb.Observation_StatusCode{Value: cpb.ObservationStatusCode_FINAL},
		Code:      sct(SCTDidNotAttend, "Did not attend"),
		Subject:   patient,
		BasedOn:   basedOn,
		Encounter: NewRef("Encounter", c.ID),
		Effective: &observationpb.Observation_EffectiveX{Choice: &observationpb.Observation_EffectiveX_DateTime{DateTime: DateTime(c.At)}},
	}
}

// planNotes renders a plan's needs, risks and safeguarding flag as CarePlan
// notes (full consent only).
func planNotes(p linkbridge.Plan) []*dpb.Annotation {
	var out []*dpb.Annotation
	note := func(s string) { out = append(out, &dpb.Annotation{Text: &dpb.Markdown{Value: s}}) }
	var needs []string
	for _, n := range p.Needs {
		switch {
		case n.Text != "" && n.Code != nil:
			needs = append(needs, n.Text+" (SNOMED CT "+n.Code.Code+")")
		case n.Text != "":
			needs = append(needs, n.Text)
		case n.Code != nil && n.Code.Display != "":
			needs = append(needs, n.Code.Display+" (SNOMED CT "+n.Code.Code+")")
		case n.Code != nil:
			needs = append(needs, "SNOMED CT "+n.Code.Code)
		}
	}
	if len(needs) > 0 {
		note("Needs: " + strings.Join(needs, "; "))
	}
	if len(p.Risks) > 0 {
		note("Risks: " + strings.Join(p.Risks, "; "))
	}
	if p.Safeguarding {
		note("Safeguarding concern recorded by the link worker")
	}
	return out
}
