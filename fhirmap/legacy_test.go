package fhirmap_test

// The JSON builders CaseView and WriteBackProvenance replaced, kept to check
// that the typed builders render every resource exactly as they did.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
)

type legacyGenerated struct {
	Type, ID string
	Doc      jsonDoc
}

func legacyCarePlanStatus(s linkbridge.TaskStatus) string {
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

// CaseView renders the FHIR view of a case record for the GP record and the
// MDT: the coded acceptance entry (Procedure, SNOMED 871731000000106) or
// decline entry (Observation, 871711000000103), the CarePlan with its
// Goals, an Encounter per contact, an Observation per outcome measure, and a
// ServiceRequest per onward referral. Consent decides what leaves: full
// shares everything; codes-only shares codes and statuses but no free text;
// none shares nothing here (only the Task status, see ApplyCaseToTask).
func legacyCaseView(cr *linkbridge.CaseRecord) []legacyGenerated {
	r := cr.Referral
	consent := r.Consent
	if consent == "" {
		consent = linkbridge.ConsentCodesOnly
	}
	if consent == linkbridge.ConsentNone {
		return nil
	}
	full := consent == linkbridge.ConsentFull
	patient := jsonDoc{"reference": "Patient/" + r.PersonID}
	basedOn := []any{jsonDoc{"reference": "ServiceRequest/" + r.ID}}
	var out []legacyGenerated

	if !r.AcceptedAt.IsZero() {
		proc := jsonDoc{
			"resourceType": "Procedure",
			"status":       "completed",
			"code":         sct(linkbridge.SCTReferralToSocialPrescribing, "Referral to social prescribing service"),
			"subject":      patient,
			"basedOn":      basedOn,
		}
		if r.CompletedAt.IsZero() {
			proc["performedDateTime"] = dateTime(r.AcceptedAt)
		} else {
			proc["performedPeriod"] = jsonDoc{"start": dateTime(r.AcceptedAt), "end": dateTime(r.CompletedAt)}
		}
		if r.LinkWorker.ID != "" {
			proc["performer"] = []any{jsonDoc{"actor": linkWorkerRef(r.LinkWorker)}}
		}
		if full && r.DischargeSummary != "" {
			proc["note"] = []any{jsonDoc{"text": r.DischargeSummary}}
		}
		out = append(out, legacyGenerated{"Procedure", fhirmap.AcceptanceID(r.ID), proc})
	}
	if r.Status == linkbridge.TaskRejected {
		obs := jsonDoc{
			"resourceType":      "Observation",
			"status":            "final",
			"code":              sct(linkbridge.SCTSocialPrescribingDeclined, "Social prescribing declined"),
			"subject":           patient,
			"basedOn":           basedOn,
			"effectiveDateTime": dateTime(r.UpdatedAt),
		}
		out = append(out, legacyGenerated{"Observation", fhirmap.DeclinedID(r.ID), obs})
	}
	if r.AcceptedAt.IsZero() {
		return out
	}

	// The personalised care and support plan and its goals.
	plan := cr.Plan
	cp := jsonDoc{
		"resourceType": "CarePlan",
		"status":       legacyCarePlanStatus(r.Status),
		"intent":       "plan",
		"title":        "Personalised care and support plan (social prescribing)",
		"category":     []any{jsonDoc{"text": "Social prescribing personalised care and support plan"}},
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
		goals = append(goals, jsonDoc{"reference": "Goal/" + g.ID})
		out = append(out, legacyGenerated{"Goal", g.ID, goalJSON(g, patient, full)})
	}
	for _, a := range plan.Actions {
		detail := jsonDoc{"status": a.Status}
		if full {
			detail["description"] = a.Description
		}
		if a.Due != "" {
			detail["scheduledString"] = "by " + a.Due
		}
		activities = append(activities, jsonDoc{"detail": detail})
	}
	for _, o := range plan.OnwardReferrals {
		activities = append(activities, jsonDoc{"reference": jsonDoc{"reference": "ServiceRequest/" + o.ID}})
		out = append(out, legacyGenerated{"ServiceRequest", o.ID, onwardJSON(o, r, patient, full)})
	}
	for _, s := range plan.Signposts {
		detail := jsonDoc{"kind": "CommunicationRequest", "status": "completed"}
		if full {
			detail["description"] = "Signposted to " + s.To
		}
		activities = append(activities, jsonDoc{"detail": detail})
	}
	if goals != nil {
		cp["goal"] = goals
	}
	if activities != nil {
		cp["activity"] = activities
	}
	out = append(out, legacyGenerated{"CarePlan", fhirmap.CarePlanID(r.ID), cp})

	for _, c := range cr.Contacts {
		out = append(out, legacyGenerated{"Encounter", c.ID, encounterJSON(c, r, patient, basedOn, full)})
	}
	for _, m := range cr.Measures {
		out = append(out, legacyGenerated{"Observation", m.ID, measureJSON(m, patient, basedOn)})
	}
	return out
}

func goalJSON(g linkbridge.Goal, patient jsonDoc, full bool) jsonDoc {
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
	doc := jsonDoc{
		"resourceType":    "Goal",
		"lifecycleStatus": lifecycle,
		"description":     jsonDoc{"text": desc},
		"subject":         patient,
		"extension": []any{
			jsonDoc{"url": fhirmap.ExtGoalImportance, "valueInteger": g.Importance},
			jsonDoc{"url": fhirmap.ExtGoalConfidence, "valueInteger": g.Confidence},
		},
	}
	if achievement != "" {
		doc["achievementStatus"] = jsonDoc{"coding": []any{jsonDoc{"system": "http://terminology.hl7.org/CodeSystem/goal-achievement", "code": achievement}}}
	}
	return doc
}

func onwardJSON(o linkbridge.OnwardReferral, r *linkbridge.Referral, patient jsonDoc, full bool) jsonDoc {
	status := "active"
	switch o.Status {
	case "attended":
		status = "completed"
	case "declined":
		status = "revoked"
	}
	// The service is named by the link worker in free text: only full
	// consent shares the name; codes-only shares the ODS code, if any.
	code, performer := jsonDoc{"text": "Referral to a community service"}, jsonDoc{}
	if full {
		code["text"] = "Referral to " + o.Service
		performer["display"] = o.Service
	}
	if o.OrganisationODS != "" {
		performer["identifier"] = jsonDoc{"system": linkbridge.ODSSystem, "value": o.OrganisationODS}
		performer["type"] = "Organization"
	}
	doc := jsonDoc{
		"resourceType": "ServiceRequest",
		"status":       status,
		"intent":       "order",
		"code":         code,
		"subject":      patient,
		"basedOn":      []any{jsonDoc{"reference": "ServiceRequest/" + r.ID}},
		"authoredOn":   dateTime(o.SentAt),
		"extension":    []any{jsonDoc{"url": "https://linkbridge.example.org/fhir/StructureDefinition/onward-referral-status", "valueCode": o.Status}},
	}
	if len(performer) > 0 {
		doc["performer"] = []any{performer}
	}
	if r.LinkWorker.ID != "" {
		doc["requester"] = linkWorkerRef(r.LinkWorker)
	}
	if full && o.Reason != "" {
		doc["reasonCode"] = []any{jsonDoc{"text": o.Reason}}
	}
	return doc
}

func encounterJSON(c *linkbridge.Contact, r *linkbridge.Referral, patient jsonDoc, basedOn []any, full bool) jsonDoc {
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
	doc := jsonDoc{
		"resourceType": "Encounter",
		"status":       status,
		"class":        jsonDoc{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class[0], "display": class[1]},
		"type":         []any{jsonDoc{"text": "Social prescribing contact (" + string(c.Mode) + ")"}},
		"subject":      patient,
		"basedOn":      basedOn,
		"period":       jsonDoc{"start": dateTime(c.At), "end": dateTime(c.At.Add(time.Duration(c.Minutes) * time.Minute))},
	}
	if c.Attended {
		doc["length"] = jsonDoc{"value": c.Minutes, "unit": "min", "system": fhirmap.UCUM, "code": "min"}
	}
	if r.LinkWorker.ID != "" {
		doc["participant"] = []any{jsonDoc{"individual": linkWorkerRef(r.LinkWorker)}}
	}
	_ = full // contact notes never leave the store; they are the link worker's own
	return doc
}

func measureJSON(m *linkbridge.Measure, patient jsonDoc, basedOn []any) jsonDoc {
	doc := jsonDoc{
		"resourceType":      "Observation",
		"status":            "final",
		"category":          []any{jsonDoc{"coding": []any{jsonDoc{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}}}},
		"subject":           patient,
		"basedOn":           basedOn,
		"effectiveDateTime": dateTime(m.TakenAt),
		"extension":         []any{jsonDoc{"url": fhirmap.ExtTimepoint, "valueCode": string(m.Timepoint)}},
	}
	switch m.Instrument {
	case linkbridge.WEMWBS:
		doc["code"] = sct(fhirmap.SCTWEMWBS, "Warwick-Edinburgh Mental Well-being Scale score")
		doc["valueInteger"] = m.Total
	case linkbridge.SWEMWBS:
		doc["code"] = sct(fhirmap.SCTSWEMWBS, "Short Warwick-Edinburgh Mental Well-being Scale score")
		doc["component"] = []any{
			jsonDoc{"code": jsonDoc{"text": "SWEMWBS raw score"}, "valueInteger": m.Total},
			jsonDoc{"code": jsonDoc{"text": "SWEMWBS metric score"}, "valueQuantity": jsonDoc{"value": json2dp(m.Metric), "unit": "{score}", "system": fhirmap.UCUM, "code": "{score}"}},
		}
	case linkbridge.UCLA3:
		doc["code"] = jsonDoc{"coding": []any{jsonDoc{"system": linkbridge.LOINCSystem, "code": fhirmap.LOINCUCLA3, "display": "Three-Item Loneliness scale"}}}
		doc["valueInteger"] = m.Total
	case linkbridge.ONS4:
		doc["code"] = jsonDoc{"coding": []any{jsonDoc{"system": fhirmap.ONS4CodeSystem, "code": "ons4", "display": "ONS4 personal wellbeing"}}}
		var comps []any
		for i, item := range linkbridge.ONS4Items {
			comps = append(comps, jsonDoc{
				"code":         jsonDoc{"coding": []any{jsonDoc{"system": fhirmap.ONS4CodeSystem, "code": item}}},
				"valueInteger": m.Items[i],
			})
		}
		doc["component"] = comps
	}
	return doc
}

func sct(code, display string) jsonDoc {
	return jsonDoc{"coding": []any{jsonDoc{"system": linkbridge.SNOMEDSystem, "code": code, "display": display}}}
}

func linkWorkerRef(lw linkbridge.LinkWorker) jsonDoc {
	ref := jsonDoc{"type": "Practitioner", "identifier": jsonDoc{"system": fhirmap.LinkWorkerSystem, "value": lw.ID}}
	if lw.Name != "" {
		ref["display"] = lw.Name
	}
	return ref
}

func dateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func period(start, end time.Time) jsonDoc {
	p := jsonDoc{"start": dateTime(start)}
	if !end.IsZero() {
		p["end"] = dateTime(end)
	}
	return p
}

// json2dp renders a score with two decimals as a jsonDoc number.
func json2dp(f float64) jsonNumber { return jsonNumber(strconv.FormatFloat(f, 'f', 2, 64)) }

// jsonNumber is a preformatted jsonDoc number (keeps "17.00" exact).
type jsonNumber string

// MarshalJSON implements json.Marshaler.
func (n jsonNumber) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// WriteBackProvenance is the Provenance that accompanies one case-record
// change written back to the GP record: it targets every resource version
// the change writes (by their writeback identifiers, which hold in both
// write modes), names the link worker as author (Practitioner by link-worker
// identifier) acting for the social prescribing service (Organization by
// ODS code) — or the service itself before a link worker is assigned; the
// referrer's organisation for the requester's own changes — and
// records the change's action as activity text. It carries its write-back
// key as a meta.tag (Provenance has no identifier element; see
// SetWritebackKey). It carries no patient data.
func legacyWriteBackProvenance(r *linkbridge.Referral, version int, targets []*linkbridge.Resource, action string, actor linkbridge.Actor, now time.Time) jsonDoc {
	var tg []any
	for _, t := range targets {
		tg = append(tg, jsonDoc{"type": t.Type, "identifier": jsonDoc{"system": fhirmap.WritebackIdentifierSystem, "value": t.Type + "/" + t.ID},
			"display": t.Type + " version " + strconv.Itoa(t.VersionID)})
	}
	service := jsonDoc{"type": "Organization", "identifier": jsonDoc{"system": linkbridge.ODSSystem, "value": r.ServiceODS}}
	author := jsonDoc{
		"type": jsonDoc{"coding": []any{jsonDoc{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author"}}},
		"who":  service,
	}
	switch {
	case actor == linkbridge.ActorRequester:
		author["who"] = jsonDoc{"type": "Organization", "identifier": jsonDoc{"system": linkbridge.ODSSystem, "value": r.ReferrerODS}}
	case r.LinkWorker.ID != "":
		author["who"] = linkWorkerRef(r.LinkWorker)
		author["onBehalfOf"] = service
	}
	id := fhirmap.ProvenanceID(r.ID, version)
	doc := jsonDoc{
		"resourceType":     "Provenance",
		"id":               id,
		"target":           tg,
		"occurredDateTime": now.UTC().Format(time.RFC3339),
		"recorded":         now.UTC().Format(time.RFC3339Nano),
		"activity": jsonDoc{"coding": []any{jsonDoc{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE", "display": "revise"}},
			"text": action},
		"agent": []any{author},
	}
	// Provenance has no identifier element: its write-back key is the
	// meta.tag SetWritebackKey would add, found with _tag.
	doc["meta"] = jsonDoc{"tag": []any{jsonDoc{"system": fhirmap.WritebackIdentifierSystem, "code": "Provenance/" + id}}}
	return doc
}

// TestTypedViewMatchesJSON renders random case records both ways: the JSON
// builders' documents parsed by the validating codec must equal the typed
// resources (proto.Equal) and render to the same bytes; a document the
// codec refuses must be a typed resource that fails Validate.
func TestTypedViewMatchesJSON(t *testing.T) {
	c := mustCodec(t)
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	when := func() time.Time {
		if rng.IntN(6) == 0 {
			return time.Time{}
		}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
		switch rng.IntN(4) {
		case 0:
			return base.Truncate(time.Second)
		case 1:
			return base.Truncate(time.Millisecond)
		case 2:
			return base.Truncate(10 * time.Millisecond).In(time.FixedZone("x", 3600))
		}
		return base
	}
	equalN, errN := 0, 0
	check := func(t *testing.T, what string, doc jsonDoc, res proto.Message) {
		t.Helper()
		raw, err := json.Marshal(doc)
		var cr *rpb.ContainedResource
		if err == nil {
			cr, err = c.Decode(raw)
		}
		if err != nil {
			errN++
			if verr := c.Validate(res); verr == nil {
				t.Errorf("%s: JSON refused (%v) but the typed resource validates:\n%s", what, err, raw)
			}
			return
		}
		equalN++
		if verr := c.Validate(res); verr != nil {
			t.Errorf("%s: typed resource fails Validate: %v", what, verr)
		}
		if !proto.Equal(fhirmap.Unwrap(cr), res) {
			t.Errorf("%s: typed resource differs from the parsed JSON:\n%s\ntyped: %v", what, raw, res)
		}
		a, _ := c.Encode(fhirmap.Unwrap(cr))
		b, _ := c.Encode(res)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: renderings differ:\n%s\n%s", what, a, b)
		}
	}
	statuses := []linkbridge.TaskStatus{linkbridge.TaskRequested, linkbridge.TaskAccepted, linkbridge.TaskRejected, linkbridge.TaskCancelled,
		linkbridge.TaskInProgress, linkbridge.TaskOnHold, linkbridge.TaskFailed, linkbridge.TaskCompleted, linkbridge.TaskEnteredInError}
	for i := range 3000 {
		r := &linkbridge.Referral{
			ID: fmt.Sprintf("ref-%d", i), PersonID: "pat-" + strconv.Itoa(i), TaskID: "task-1",
			Status:     statuses[rng.IntN(len(statuses))],
			Consent:    linkbridge.ConsentLevel(pick("full", "codes-only", "", "none", "full")),
			AcceptedAt: when(), CompletedAt: when(), UpdatedAt: when(),
			DischargeSummary: pick("", "Walks every Tuesday"),
			ServiceODS:       pick("Y02662", ""), ReferrerODS: pick("A81001", ""),
		}
		if rng.IntN(3) > 0 {
			r.LinkWorker = linkbridge.LinkWorker{ID: "lw-1", Name: pick("", "Sam Okafor")}
		}
		cr := &linkbridge.CaseRecord{Referral: r}
		cr.Plan.WhatMatters = pick("", "The allotment")
		for j := range rng.IntN(3) {
			cr.Plan.Goals = append(cr.Plan.Goals, linkbridge.Goal{ID: fmt.Sprintf("goal-%d", j), Description: pick("Walk", ""),
				Importance: 1 + rng.IntN(10), Confidence: 1 + rng.IntN(10),
				Status: pick(linkbridge.GoalActive, linkbridge.GoalOnHold, linkbridge.GoalAchieved, linkbridge.GoalNotAchieved, linkbridge.GoalCancelled, "odd")})
		}
		for j := range rng.IntN(3) {
			cr.Plan.Actions = append(cr.Plan.Actions, linkbridge.PlanAction{ID: fmt.Sprintf("action-%d", j), Description: pick("Ring", "", "Visit"),
				Due: pick("", "2026-12-05"), Status: pick(append(linkbridge.ActionStatuses, "bogus")...)})
		}
		for j := range rng.IntN(3) {
			cr.Plan.OnwardReferrals = append(cr.Plan.OnwardReferrals, linkbridge.OnwardReferral{ID: fmt.Sprintf("onward-%d", j),
				Service: pick("Age UK", ""), OrganisationODS: pick("", "X9A3B"), Reason: pick("", "Befriending"),
				Status: pick(append(linkbridge.OnwardStatuses, "")...), SentAt: when()})
		}
		for j := range rng.IntN(2) {
			cr.Plan.Signposts = append(cr.Plan.Signposts, linkbridge.Signpost{ID: fmt.Sprintf("sp-%d", j), To: pick("Citizens Advice", "")})
		}
		for j := range rng.IntN(3) {
			cr.Contacts = append(cr.Contacts, &linkbridge.Contact{ID: fmt.Sprintf("contact-%d", j), At: when(),
				Mode:    linkbridge.ContactMode(pick("face-to-face", "phone", "video", "home-visit", "group", "carrier-pigeon")),
				Minutes: rng.IntN(90) - 5, Attended: rng.IntN(3) > 0, Notes: "secret"})
		}
		for j := range rng.IntN(4) {
			m := &linkbridge.Measure{ID: fmt.Sprintf("m-%d", j), TakenAt: when(),
				Instrument: linkbridge.Instrument(pick("ONS4", "WEMWBS", "SWEMWBS", "UCLA3", "other")),
				Timepoint:  linkbridge.Timepoint(pick("baseline", "review", "final", "")),
				Total:      rng.IntN(70), Metric: []float64{17, 23.21, 19.254999, 35.0000001, 0}[rng.IntN(5)],
				Items: []int{rng.IntN(11), rng.IntN(11), rng.IntN(11), rng.IntN(11)}}
			cr.Measures = append(cr.Measures, m)
		}
		typed, legacy := fhirmap.CaseView(cr), legacyCaseView(cr)
		if len(typed) != len(legacy) {
			t.Fatalf("case %d: %d typed resources, %d JSON", i, len(typed), len(legacy))
		}
		for k, g := range typed {
			l := legacy[k]
			if g.Type != l.Type || g.ID != l.ID || fhirmap.TypeName(g.Resource) != g.Type || fhirmap.ID(g.Resource) != g.ID {
				t.Fatalf("case %d: resource %d is %s/%s (%s/%s), JSON %s/%s", i, k, g.Type, g.ID, fhirmap.TypeName(g.Resource), fhirmap.ID(g.Resource), l.Type, l.ID)
			}
			l.Doc["id"] = l.ID
			check(t, fmt.Sprintf("case %d %s/%s", i, g.Type, g.ID), l.Doc, g.Resource)
		}
		var targets []*linkbridge.Resource
		for k := range rng.IntN(3) {
			targets = append(targets, &linkbridge.Resource{Type: pick("Task", "CarePlan"), ID: fmt.Sprintf("x-%d", k), VersionID: rng.IntN(9)})
		}
		actor := linkbridge.Actor(pick(string(linkbridge.ActorRequester), string(linkbridge.ActorPerformer)))
		now := when()
		action := pick("plan", "", "accept")
		check(t, fmt.Sprintf("case %d Provenance", i), legacyWriteBackProvenance(r, i+1, targets, action, actor, now),
			fhirmap.WriteBackProvenance(r, i+1, targets, action, actor, now))
	}
	t.Logf("%d resources equal, %d refused by both", equalN, errN)
	if equalN < 1000 || errN < 100 {
		t.Errorf("too few cases: %d equal, %d refused", equalN, errN)
	}
}
