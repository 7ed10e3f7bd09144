package conformance

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// Shape is one resource version exactly as linkbridge's relay sends it to
// the GP record.
type Shape struct {
	Type, ID string
	// Version is the gateway's version (the X-Linkbridge-Version header).
	Version int
	Body    []byte
}

// WritebackShapes renders, with linkbridge's own mapping code (CaseView,
// ApplyCaseToTask, ForGPRecord) and the google/fhir codec, every shape the
// relay writes back for one case: the referral Task, the coded acceptance
// Procedure, the CarePlan, Goals, an onward ServiceRequest, Encounters and
// an Observation per outcome instrument. stage 1 is the case in progress;
// stage 2 is the same case completed (new versions of the Task, the
// Procedure and the CarePlan). Shapes come in the order a change sends
// them (WritebackTypes), the Provenance last. sys are the URIs of the
// deployment whose relay is imitated (its write-back key among them).
func WritebackShapes(codec *fhirjson.Codec, sys fhirmap.Systems, runID, nhs string, stage int) ([]Shape, error) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	p := "conform-" + runID
	ref := &linkbridge.Referral{
		ID: p + "-sr", TaskID: p + "-task", PersonID: p + "-person",
		Identifier:     linkbridge.Identifier{System: ReferralSystem, Value: p},
		Status:         linkbridge.TaskInProgress,
		BusinessStatus: linkbridge.BusinessFirstContactMade, RequestStatus: "active", Priority: "routine",
		ReferrerODS: "A81001", ServiceODS: "Y02662",
		LinkWorker: linkbridge.LinkWorker{ID: "lw-conformance", Name: "Conformance Link Worker"},
		Consent:    linkbridge.ConsentFull, AcceptedAt: at, AuthoredOn: at.Add(-48 * time.Hour), ReceivedAt: at.Add(-47 * time.Hour),
		UpdatedAt: at.Add(time.Hour), Version: 4,
		// The person agreed at the first attended contact, an hour in.
		AgreedAt: at.Add(time.Hour), AgreedBy: linkbridge.LinkWorker{ID: "lw-conformance", Name: "Conformance Link Worker"},
	}
	if stage == 2 {
		ref.Status, ref.BusinessStatus = linkbridge.TaskCompleted, linkbridge.BusinessDischarged
		ref.DischargeReason, ref.DischargeSummary = "goals-met", "Joined a walking group; feels less isolated"
		ref.CompletedAt, ref.UpdatedAt, ref.Version = at.Add(60*24*time.Hour), at.Add(60*24*time.Hour), 9
	}
	cr := &linkbridge.CaseRecord{
		Referral: ref,
		Person:   &linkbridge.Person{ID: ref.PersonID, NHSNumber: nhs},
		Plan: linkbridge.Plan{
			WhatMatters: "Getting out of the house",
			Goals:       []linkbridge.Goal{{ID: p + "-goal-1", Description: "Join a walking group", Importance: 8, Confidence: 6, Status: linkbridge.GoalActive}},
			Actions:     []linkbridge.PlanAction{{ID: p + "-action-1", Description: "Visit the Tuesday group", Due: "2026-12-01", Status: "scheduled"}},
			OnwardReferrals: []linkbridge.OnwardReferral{{ID: p + "-onward-1", Service: "Parkside walking group", OrganisationODS: "Y09999",
				Status: "sent", SentAt: at.Add(2 * time.Hour)}},
			Signposts: []linkbridge.Signpost{{ID: p + "-signpost-1", To: "Citizens Advice", At: at.Add(2 * time.Hour)}},
		},
		Contacts: []*linkbridge.Contact{
			{ID: p + "-contact-1", ReferralID: ref.ID, At: at, Mode: linkbridge.ContactPhone, Minutes: 30, Attended: true},
			{ID: p + "-contact-2", ReferralID: ref.ID, At: at.Add(7 * 24 * time.Hour), Mode: linkbridge.ContactFaceToFace, Minutes: 45, Attended: false},
		},
	}
	if stage == 2 {
		cr.Plan.Goals[0].Status = linkbridge.GoalAchieved
	}
	for i, m := range []*linkbridge.Measure{
		{Instrument: linkbridge.SWEMWBS, Timepoint: linkbridge.TimepointBaseline, Items: []int{2, 3, 3, 2, 3, 2, 3}},
		{Instrument: linkbridge.ONS4, Timepoint: linkbridge.TimepointBaseline, Items: []int{5, 6, 4, 7}},
		{Instrument: linkbridge.UCLA3, Timepoint: linkbridge.TimepointBaseline, Items: []int{3, 2, 3}},
		{Instrument: linkbridge.WEMWBS, Timepoint: linkbridge.TimepointBaseline, Items: []int{3, 3, 2, 3, 3, 2, 3, 3, 2, 3, 3, 2, 3, 3}},
	} {
		m.ID, m.ReferralID, m.TakenAt = fmt.Sprintf("%s-measure-%d", p, i+1), ref.ID, at.Add(time.Duration(i)*time.Minute)
		if err := m.Score(); err != nil {
			return nil, err
		}
		cr.Measures = append(cr.Measures, m)
	}
	view := sys.CaseView(cr)
	var out []Shape
	add := func(typ, id string, res proto.Message) error {
		if err := codec.Validate(res); err != nil {
			return fmt.Errorf("conformance: render %s: %w", typ, err)
		}
		body, err := codec.Encode(sys.ForGPRecord(res, ref, nhs, nil))
		if err != nil {
			return err
		}
		out = append(out, Shape{Type: typ, ID: id, Version: stage, Body: body})
		return nil
	}
	// The referral Task as a GP system sends it, with the case applied.
	task := map[string]any{
		"resourceType": "Task", "id": ref.TaskID, "status": "requested", "intent": "order", "priority": "routine",
		"code":       map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}}},
		"focus":      map[string]any{"reference": "ServiceRequest/" + ref.ID},
		"for":        map[string]any{"reference": "Patient/" + ref.PersonID},
		"authoredOn": ref.AuthoredOn.Format(time.RFC3339),
		"requester":  map[string]any{"type": "Organization", "identifier": map[string]any{"system": ODSSystem, "value": ref.ReferrerODS}},
		"owner":      map[string]any{"type": "Organization", "identifier": map[string]any{"system": ODSSystem, "value": ref.ServiceODS}},
	}
	raw, err := json.Marshal(task)
	if err != nil {
		return nil, err
	}
	t, err := codec.DecodeResource(raw)
	if err != nil {
		return nil, fmt.Errorf("conformance: render Task: %w", err)
	}
	sys.ApplyCaseToTask(t.(*taskpb.Task), ref, view, ref.UpdatedAt)
	if err := add("Task", ref.TaskID, t); err != nil {
		return nil, err
	}
	for _, g := range view {
		if err := add(g.Type, g.ID, g.Resource); err != nil {
			return nil, err
		}
	}
	// In the order a change sends them: what a resource refers to first.
	sort.SliceStable(out, func(i, j int) bool { return typeIndex(out[i].Type) < typeIndex(out[j].Type) })
	// The Provenance that accompanies a change: the relay sends it as
	// rendered (it names no patient), after the resources it targets.
	var targets []*linkbridge.Resource
	for _, sh := range out {
		targets = append(targets, &linkbridge.Resource{Type: sh.Type, ID: sh.ID, VersionID: stage})
	}
	prov := sys.WriteBackProvenance(ref, ref.Version, targets, "plan", linkbridge.ActorPerformer, ref.UpdatedAt)
	if err := codec.Validate(prov); err != nil {
		return nil, fmt.Errorf("conformance: render Provenance: %w", err)
	}
	body, err := codec.Encode(prov)
	if err != nil {
		return nil, err
	}
	out = append(out, Shape{Type: "Provenance", ID: fhirmap.ID(prov), Version: 1, Body: body})
	return out, nil
}
