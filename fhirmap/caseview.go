package fhirmap

import (
	"strconv"
	"time"

	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

// Canonical URLs linkbridge defines and publishes.
const (
	// ONS4CodeSystem is linkbridge's CodeSystem for the ONS4 personal
	// wellbeing questions (no national SNOMED CT or LOINC codes exist).
	ONS4CodeSystem = "https://linkbridge.example.org/fhir/CodeSystem/ons4"
	// ExtTimepoint marks an outcome Observation as baseline, review or final.
	ExtTimepoint = "https://linkbridge.example.org/fhir/StructureDefinition/outcome-timepoint"
	// ExtGoalImportance and ExtGoalConfidence carry the person's 1–10
	// ratings on a Goal (PRSB care and support plan).
	ExtGoalImportance = "https://linkbridge.example.org/fhir/StructureDefinition/goal-importance"
	ExtGoalConfidence = "https://linkbridge.example.org/fhir/StructureDefinition/goal-confidence"
	// LinkWorkerSystem identifies link workers in references.
	LinkWorkerSystem = "https://linkbridge.example.org/Id/link-worker"
	// SDOHTaskOutputSystem is the SDOH temporary code system for Task.output
	// types (resulting-activity, additional-content).
	SDOHTaskOutputSystem = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
	// UCUM is the unit system of Encounter.length.
	UCUM = "http://unitsofmeasure.org"
)

// Codes of the outcome measures (docs/domain.md#outcome-measures).
const (
	SCTWEMWBS  = "718426000"
	SCTSWEMWBS = "718466001"
	LOINCUCLA3 = "106418-7"
)

// JSON is a FHIR resource as a JSON object, before it is parsed and checked
// by google/fhir.
type JSON = map[string]any

// Generated is one resource of the FHIR view of a case record.
type Generated struct {
	Type, ID string
	// Doc is the resource as JSON; the caller parses it with the validating
	// codec before storing or sending it.
	Doc JSON
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
func CaseView(cr *linkbridge.CaseRecord) []Generated {
	r := cr.Referral
	consent := r.Consent
	if consent == "" {
		consent = linkbridge.ConsentCodesOnly
	}
	if consent == linkbridge.ConsentNone {
		return nil
	}
	full := consent == linkbridge.ConsentFull
	patient := JSON{"reference": "Patient/" + r.PersonID}
	basedOn := []any{JSON{"reference": "ServiceRequest/" + r.ID}}
	var out []Generated

	if !r.AcceptedAt.IsZero() {
		proc := JSON{
			"resourceType": "Procedure",
			"status":       "completed",
			"code":         sct(linkbridge.SCTReferralToSocialPrescribing, "Referral to social prescribing service"),
			"subject":      patient,
			"basedOn":      basedOn,
		}
		if r.CompletedAt.IsZero() {
			proc["performedDateTime"] = dateTime(r.AcceptedAt)
		} else {
			proc["performedPeriod"] = JSON{"start": dateTime(r.AcceptedAt), "end": dateTime(r.CompletedAt)}
		}
		if r.LinkWorker.ID != "" {
			proc["performer"] = []any{JSON{"actor": linkWorkerRef(r.LinkWorker)}}
		}
		if full && r.DischargeSummary != "" {
			proc["note"] = []any{JSON{"text": r.DischargeSummary}}
		}
		out = append(out, Generated{"Procedure", AcceptanceID(r.ID), proc})
	}
	if r.Status == linkbridge.TaskRejected {
		obs := JSON{
			"resourceType":      "Observation",
			"status":            "final",
			"code":              sct(linkbridge.SCTSocialPrescribingDeclined, "Social prescribing declined"),
			"subject":           patient,
			"basedOn":           basedOn,
			"effectiveDateTime": dateTime(r.UpdatedAt),
		}
		out = append(out, Generated{"Observation", DeclinedID(r.ID), obs})
	}
	if r.AcceptedAt.IsZero() {
		return out
	}

	// The personalised care and support plan and its goals.
	plan := cr.Plan
	cp := JSON{
		"resourceType": "CarePlan",
		"status":       carePlanStatus(r.Status),
		"intent":       "plan",
		"title":        "Personalised care and support plan (social prescribing)",
		"category":     []any{JSON{"text": "Social prescribing personalised care and support plan"}},
		"subject":      patient,
		// CarePlan.basedOn may only point at a CarePlan (R4); the referral
		// is information the plan was made on.
		"supportingInfo": basedOn,
		"period":         period(r.AcceptedAt, r.CompletedAt),
	}
	if r.LinkWorker.ID != "" {
		cp["author"] = linkWorkerRef(r.LinkWorker)
	}
	if full && plan.WhatMatters != "" {
		cp["description"] = "What matters to me: " + plan.WhatMatters
	}
	var goals, activities []any
	for _, g := range plan.Goals {
		goals = append(goals, JSON{"reference": "Goal/" + g.ID})
		out = append(out, Generated{"Goal", g.ID, goalJSON(g, patient, full)})
	}
	for _, a := range plan.Actions {
		detail := JSON{"status": a.Status}
		if full {
			detail["description"] = a.Description
		}
		if a.Due != "" {
			detail["scheduledString"] = "by " + a.Due
		}
		activities = append(activities, JSON{"detail": detail})
	}
	for _, o := range plan.OnwardReferrals {
		activities = append(activities, JSON{"reference": JSON{"reference": "ServiceRequest/" + o.ID}})
		out = append(out, Generated{"ServiceRequest", o.ID, onwardJSON(o, r, patient, full)})
	}
	for _, s := range plan.Signposts {
		detail := JSON{"kind": "CommunicationRequest", "status": "completed"}
		if full {
			detail["description"] = "Signposted to " + s.To
		}
		activities = append(activities, JSON{"detail": detail})
	}
	if goals != nil {
		cp["goal"] = goals
	}
	if activities != nil {
		cp["activity"] = activities
	}
	out = append(out, Generated{"CarePlan", CarePlanID(r.ID), cp})

	for _, c := range cr.Contacts {
		out = append(out, Generated{"Encounter", c.ID, encounterJSON(c, r, patient, basedOn, full)})
	}
	for _, m := range cr.Measures {
		out = append(out, Generated{"Observation", m.ID, measureJSON(m, patient, basedOn)})
	}
	return out
}

// ApplyCaseToTask writes the case's workflow state onto the referral Task:
// status, businessStatus, statusReason (never free text unless consent is
// full: codes-only gets the coded reason only), owner, and outputs pointing
// at the generated resources (SDOH resulting-activity and
// additional-content).
func ApplyCaseToTask(t *taskpb.Task, r *linkbridge.Referral, view []Generated, now time.Time) {
	shared := *r
	if r.Consent != linkbridge.ConsentFull {
		shared.StatusReason = codedReason(r)
	}
	ApplyReferralToTask(t, &shared, now)
	if r.LinkWorker.ID != "" {
		ow := &dpb.Reference{
			Type:       &dpb.Uri{Value: "Practitioner"},
			Identifier: &dpb.Identifier{System: &dpb.Uri{Value: LinkWorkerSystem}, Value: &dpb.String{Value: r.LinkWorker.ID}},
		}
		if r.LinkWorker.Name != "" {
			ow.Display = &dpb.String{Value: r.LinkWorker.Name}
		}
		t.Owner = ow
	}
	if !r.AcceptedAt.IsZero() && t.ExecutionPeriod == nil {
		t.ExecutionPeriod = &dpb.Period{Start: DateTime(r.AcceptedAt)}
	}
	if !r.CompletedAt.IsZero() && t.ExecutionPeriod != nil {
		t.ExecutionPeriod.End = DateTime(r.CompletedAt)
	}
	t.Output = nil
	for _, g := range view {
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
	case linkbridge.TaskOnHold:
		return "On hold"
	case linkbridge.TaskCancelled:
		return "Cancelled"
	}
	return ""
}

func carePlanStatus(s linkbridge.TaskStatus) string {
	switch s {
	case linkbridge.TaskCompleted:
		return "completed"
	case linkbridge.TaskOnHold:
		return "on-hold"
	case linkbridge.TaskCancelled, linkbridge.TaskFailed:
		return "revoked"
	case linkbridge.TaskEnteredInError:
		return "entered-in-error"
	}
	return "active"
}

func goalJSON(g linkbridge.Goal, patient JSON, full bool) JSON {
	lifecycle, achievement := "active", ""
	switch g.Status {
	case linkbridge.GoalOnHold:
		lifecycle = "on-hold"
	case linkbridge.GoalAchieved:
		lifecycle, achievement = "completed", "achieved"
	case linkbridge.GoalNotAchieved:
		lifecycle, achievement = "completed", "not-achieved"
	case linkbridge.GoalCancelled:
		lifecycle = "cancelled"
	}
	desc := "Personal goal (details held by the social prescribing service)"
	if full {
		desc = g.Description
	}
	doc := JSON{
		"resourceType":    "Goal",
		"lifecycleStatus": lifecycle,
		"description":     JSON{"text": desc},
		"subject":         patient,
		"extension": []any{
			JSON{"url": ExtGoalImportance, "valueInteger": g.Importance},
			JSON{"url": ExtGoalConfidence, "valueInteger": g.Confidence},
		},
	}
	if achievement != "" {
		doc["achievementStatus"] = JSON{"coding": []any{JSON{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": achievement}}}
	}
	return doc
}

func onwardJSON(o linkbridge.OnwardReferral, r *linkbridge.Referral, patient JSON, full bool) JSON {
	status := "active"
	switch o.Status {
	case "attended":
		status = "completed"
	case "declined":
		status = "revoked"
	}
	// The service is named by the link worker in free text: only full
	// consent shares the name; codes-only shares the ODS code, if any.
	code, performer := JSON{"text": "Referral to a community service"}, JSON{}
	if full {
		code["text"] = "Referral to " + o.Service
		performer["display"] = o.Service
	}
	if o.OrganisationODS != "" {
		performer["identifier"] = JSON{"system": linkbridge.ODSSystem, "value": o.OrganisationODS}
		performer["type"] = "Organization"
	}
	doc := JSON{
		"resourceType": "ServiceRequest",
		"status":       status,
		"intent":       "order",
		"code":         code,
		"subject":      patient,
		"basedOn":      []any{JSON{"reference": "ServiceRequest/" + r.ID}},
		"authoredOn":   dateTime(o.SentAt),
		"extension":    []any{JSON{"url": "https://linkbridge.example.org/fhir/StructureDefinition/onward-referral-status", "valueCode": o.Status}},
	}
	if len(performer) > 0 {
		doc["performer"] = []any{performer}
	}
	if r.LinkWorker.ID != "" {
		doc["requester"] = linkWorkerRef(r.LinkWorker)
	}
	if full && o.Reason != "" {
		doc["reasonCode"] = []any{JSON{"text": o.Reason}}
	}
	return doc
}

func encounterJSON(c *linkbridge.Contact, r *linkbridge.Referral, patient JSON, basedOn []any, full bool) JSON {
	class := map[linkbridge.ContactMode][2]string{
		linkbridge.ContactFaceToFace: {"AMB", "ambulatory"},
		linkbridge.ContactGroup:      {"AMB", "ambulatory"},
		linkbridge.ContactPhone:      {"VR", "virtual"},
		linkbridge.ContactVideo:      {"VR", "virtual"},
		linkbridge.ContactHomeVisit:  {"HH", "home health"},
	}[c.Mode]
	status := "finished"
	if !c.Attended {
		status = "cancelled" // did not attend: the contact did not take place
	}
	doc := JSON{
		"resourceType": "Encounter",
		"status":       status,
		"class":        JSON{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class[0], "display": class[1]},
		"type":         []any{JSON{"text": "Social prescribing contact (" + string(c.Mode) + ")"}},
		"subject":      patient,
		"basedOn":      basedOn,
		"period":       JSON{"start": dateTime(c.At), "end": dateTime(c.At.Add(time.Duration(c.Minutes) * time.Minute))},
	}
	if c.Attended {
		doc["length"] = JSON{"value": c.Minutes, "unit": "min", "system": UCUM, "code": "min"}
	}
	if r.LinkWorker.ID != "" {
		doc["participant"] = []any{JSON{"individual": linkWorkerRef(r.LinkWorker)}}
	}
	_ = full // contact notes never leave the store; they are the link worker's own
	return doc
}

func measureJSON(m *linkbridge.Measure, patient JSON, basedOn []any) JSON {
	doc := JSON{
		"resourceType":      "Observation",
		"status":            "final",
		"category":          []any{JSON{"coding": []any{JSON{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}}}},
		"subject":           patient,
		"basedOn":           basedOn,
		"effectiveDateTime": dateTime(m.TakenAt),
		"extension":         []any{JSON{"url": ExtTimepoint, "valueCode": string(m.Timepoint)}},
	}
	switch m.Instrument {
	case linkbridge.WEMWBS:
		doc["code"] = sct(SCTWEMWBS, "Warwick-Edinburgh Mental Well-being Scale score")
		doc["valueInteger"] = m.Total
	case linkbridge.SWEMWBS:
		doc["code"] = sct(SCTSWEMWBS, "Short Warwick-Edinburgh Mental Well-being Scale score")
		doc["component"] = []any{
			JSON{"code": JSON{"text": "SWEMWBS raw score"}, "valueInteger": m.Total},
			JSON{"code": JSON{"text": "SWEMWBS metric score"}, "valueQuantity": JSON{"value": json2dp(m.Metric), "unit": "{score}", "system": UCUM, "code": "{score}"}},
		}
	case linkbridge.UCLA3:
		doc["code"] = JSON{"coding": []any{JSON{"system": linkbridge.LOINCSystem, "code": LOINCUCLA3, "display": "Three-Item Loneliness scale"}}}
		doc["valueInteger"] = m.Total
	case linkbridge.ONS4:
		doc["code"] = JSON{"coding": []any{JSON{"system": ONS4CodeSystem, "code": "ons4", "display": "ONS4 personal wellbeing"}}}
		var comps []any
		for i, item := range linkbridge.ONS4Items {
			comps = append(comps, JSON{
				"code":         JSON{"coding": []any{JSON{"system": ONS4CodeSystem, "code": item}}},
				"valueInteger": m.Items[i],
			})
		}
		doc["component"] = comps
	}
	return doc
}

func sct(code, display string) JSON {
	return JSON{"coding": []any{JSON{"system": linkbridge.SNOMEDSystem, "code": code, "display": display}}}
}

func linkWorkerRef(lw linkbridge.LinkWorker) JSON {
	ref := JSON{"type": "Practitioner", "identifier": JSON{"system": LinkWorkerSystem, "value": lw.ID}}
	if lw.Name != "" {
		ref["display"] = lw.Name
	}
	return ref
}

func dateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func period(start, end time.Time) JSON {
	p := JSON{"start": dateTime(start)}
	if !end.IsZero() {
		p["end"] = dateTime(end)
	}
	return p
}

// json2dp renders a score with two decimals as a JSON number.
func json2dp(f float64) jsonNumber { return jsonNumber(strconv.FormatFloat(f, 'f', 2, 64)) }

// jsonNumber is a preformatted JSON number (keeps "17.00" exact).
type jsonNumber string

// MarshalJSON implements json.Marshaler.
func (n jsonNumber) MarshalJSON() ([]byte, error) { return []byte(n), nil }
