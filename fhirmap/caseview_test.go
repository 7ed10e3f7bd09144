package fhirmap_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirjson/fhirschema"
	"github.com/linkbridge/linkbridge/fhirmap"

	encpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/encounter_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// caseViewDir holds the case-record inputs (a linkbridge.CaseRecord as
// JSON) and the golden FHIR views.
var caseViewDir = filepath.Join("testdata", "caseview")

// goldenCaseView is what a golden file records: every generated resource
// as google/fhir renders it, and the referral Task after ApplyCaseToTask.
type goldenCaseView struct {
	Resources []goldenGenerated `json:"resources"`
	Task      json.RawMessage   `json:"task"`
}

type goldenGenerated struct {
	Reference string          `json:"reference"`
	Resource  json.RawMessage `json:"resource"`
}

// renderedCase is one case record's FHIR view, rendered and validated.
type renderedCase struct {
	cr     *linkbridge.CaseRecord
	view   []fhirmap.Generated
	bodies map[string][]byte // "Type/id" -> rendered JSON
	task   []byte
}

// renderCase reads an input, builds its FHIR view, and parses every
// resource with the validating codec and the independent validator, as
// the HTTP API does before storing them. An input's "systemBase", if any,
// is the deployment's system base (serve --system-base).
func renderCase(t *testing.T, c *fhirjson.Codec, input string) *renderedCase {
	t.Helper()
	var in struct {
		SystemBase string `json:"systemBase"`
	}
	if err := json.Unmarshal(mustReadFile(t, input), &in); err != nil {
		t.Fatalf("parse %s: %v", input, err)
	}
	sys, err := fhirmap.NewSystems(in.SystemBase)
	if err != nil {
		t.Fatalf("%s: %v", input, err)
	}
	return renderCaseWith(t, c, input, sys)
}

// renderCaseWith is renderCase with the URIs under sys.
func renderCaseWith(t *testing.T, c *fhirjson.Codec, input string, sys fhirmap.Systems) *renderedCase {
	t.Helper()
	var cr linkbridge.CaseRecord
	if err := json.Unmarshal(mustReadFile(t, input), &cr); err != nil {
		t.Fatalf("parse %s: %v", input, err)
	}
	out := &renderedCase{cr: &cr, bodies: map[string][]byte{}}
	out.view = sys.CaseView(&cr)
	for _, g := range out.view {
		body := mustRenderGenerated(t, c, g)
		if _, dup := out.bodies[g.Reference()]; dup {
			t.Errorf("CaseView generated %s twice", g.Reference())
		}
		out.bodies[g.Reference()] = body
	}
	// The referral Task as intake stored it, then the case applied to it.
	r := cr.Referral
	intake := *r
	intake.Status = linkbridge.TaskRequested
	task := fhirmap.NewReferralTask(&intake, nil, r.ReceivedAt)
	fhirmap.SetID(task, r.TaskID)
	sys.ApplyCaseToTask(task, r, out.view, r.UpdatedAt)
	body, err := c.Encode(task)
	if err != nil {
		t.Fatalf("encode Task: %v", err)
	}
	out.task = mustRender(t, c, body, "Task")
	return out
}

// mustRenderGenerated validates a generated resource and renders it, as
// casework does before storing it, runs the independent validator on the
// result, and checks that it is the proto google/fhir parses that rendering
// into (typed references, dateTimes as parsed), so that it renders the same
// after a round trip through the store.
func mustRenderGenerated(t *testing.T, c *fhirjson.Codec, g fhirmap.Generated) []byte {
	t.Helper()
	if fhirmap.TypeName(g.Resource) != g.Type || fhirmap.ID(g.Resource) != g.ID {
		t.Fatalf("%s holds %s/%s", g.Reference(), fhirmap.TypeName(g.Resource), fhirmap.ID(g.Resource))
	}
	if err := c.Validate(g.Resource); err != nil {
		t.Fatalf("%s does not validate: %v", g.Reference(), err)
	}
	body, err := c.Encode(g.Resource)
	if err != nil {
		t.Fatalf("%s: encode: %v", g.Reference(), err)
	}
	fhirschema.Validate(t, body)
	back, err := c.DecodeResource(body)
	if err != nil {
		t.Fatalf("%s does not parse back: %v\n%s", g.Reference(), err, body)
	}
	if !proto.Equal(back, g.Resource) {
		t.Errorf("%s is not what its rendering parses into:\n%s\nbuilt:  %v\nparsed: %v", g.Reference(), body, g.Resource, back)
	}
	return body
}

// mustRender parses raw with the codec (which validates it), renders it
// back, and runs the independent validator on the result.
func mustRender(t *testing.T, c *fhirjson.Codec, raw []byte, what string) []byte {
	t.Helper()
	cr, err := c.Decode(raw)
	if err != nil {
		t.Fatalf("%s does not parse as FHIR R4: %v\n%s", what, err, raw)
	}
	body, err := c.Encode(fhirmap.Unwrap(cr))
	if err != nil {
		t.Fatalf("%s: encode: %v", what, err)
	}
	fhirschema.Validate(t, body)
	return body
}

func indentJSON(t *testing.T, b []byte) json.RawMessage {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "    ", "  "); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCaseViewGolden renders each testdata/caseview/*.input.json and
// compares the FHIR view with *.golden.json. Run with -update to rewrite
// the goldens, then review the diff.
func TestCaseViewGolden(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	inputs, err := filepath.Glob(filepath.Join(caseViewDir, "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 3 {
		t.Fatalf("want at least 3 case view inputs, have %d", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rc := renderCase(t, c, in)
			var got goldenCaseView
			for _, g := range rc.view {
				got.Resources = append(got.Resources, goldenGenerated{Reference: g.Reference(), Resource: indentJSON(t, rc.bodies[g.Reference()])})
			}
			got.Task = indentJSON(t, rc.task)
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			goldenPath := filepath.Join(caseViewDir, name+".golden.json")
			if *update {
				if err := os.WriteFile(goldenPath, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("read golden (run go test ./fhirmap -run TestCaseViewGolden -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(gotJSON)); diff != "" {
				t.Errorf("CaseView(%s) mismatch (-want +got); rerun with -update if the change is intended:\n%s", in, diff)
			}
		})
	}
}

// doc parses a rendered body.
func doc(t *testing.T, b []byte) jsonDoc {
	t.Helper()
	return mustParseJSON(t, b)
}

func get(d any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := d.(jsonDoc)
			d = m[k]
		case int:
			a, _ := d.([]any)
			if k >= len(a) {
				return nil
			}
			d = a[k]
		}
	}
	return d
}

func refsByType(view []fhirmap.Generated) map[string]int {
	out := map[string]int{}
	for _, g := range view {
		out[g.Type]++
	}
	return out
}

// TestCaseViewFullConsent checks, independently of the golden file, what a
// full-consent case shares.
func TestCaseViewFullConsent(t *testing.T) {
	t.Parallel()
	rc := renderCase(t, mustCodec(t), filepath.Join(caseViewDir, "full-consent.input.json"))
	cr := rc.cr
	want := map[string]int{"Procedure": 1, "Goal": len(cr.Plan.Goals), "ServiceRequest": len(cr.Plan.OnwardReferrals), "CarePlan": 1,
		"Encounter": len(cr.Contacts), "Observation": len(cr.Measures) + dnas(cr)}
	if diff := cmp.Diff(want, refsByType(rc.view)); diff != "" {
		t.Errorf("resource counts (-want +got):\n%s", diff)
	}
	proc := doc(t, rc.bodies["Procedure/"+fhirmap.AcceptanceID(cr.Referral.ID)])
	if get(proc, "code", "coding", 0, "code") != linkbridge.SCTReferralToSocialPrescribing ||
		get(proc, "performedPeriod", "end") != "2027-02-02T09:00:00Z" || get(proc, "note", 0, "text") != cr.Referral.DischargeSummary {
		t.Errorf("acceptance Procedure = %v", proc)
	}
	cp := doc(t, rc.bodies["CarePlan/"+fhirmap.CarePlanID(cr.Referral.ID)])
	if get(cp, "status") != "completed" || !strings.Contains(get(cp, "description").(string), cr.Plan.WhatMatters) ||
		len(get(cp, "goal").([]any)) != 5 || len(get(cp, "activity").([]any)) != 2+3+1 {
		t.Errorf("CarePlan = %v", cp)
	}
	if get(cp, "supportingInfo", 0, "reference") != "ServiceRequest/"+cr.Referral.ID {
		t.Errorf("CarePlan does not point at the referral: %v", get(cp, "supportingInfo"))
	}
	for _, tt := range []struct{ id, lifecycle, achievement string }{
		{"goal-1", "completed", "achieved"}, {"goal-2", "completed", "not-achieved"}, {"goal-3", "on-hold", ""},
		{"goal-4", "cancelled", ""}, {"goal-5", "active", ""},
	} {
		g := doc(t, rc.bodies["Goal/"+tt.id])
		ach, _ := get(g, "achievementStatus", "coding", 0, "code").(string)
		if get(g, "lifecycleStatus") != tt.lifecycle || ach != tt.achievement {
			t.Errorf("Goal/%s lifecycle/achievement = %v/%q, want %s/%q", tt.id, get(g, "lifecycleStatus"), ach, tt.lifecycle, tt.achievement)
		}
	}
	for _, ct := range cr.Contacts {
		e := doc(t, rc.bodies["Encounter/"+ct.ID])
		if ct.Attended {
			if get(e, "status") != "finished" || get(e, "length", "value") != float64(ct.Minutes) {
				t.Errorf("Encounter/%s = %v, want finished, length %d", ct.ID, e, ct.Minutes)
			}
		} else if get(e, "status") != "cancelled" || get(e, "length") != nil {
			t.Errorf("DNA Encounter/%s = %v, want cancelled without length", ct.ID, e)
		}
		if ct.Notes != "" && bytes.Contains(rc.bodies["Encounter/"+ct.ID], []byte(ct.Notes)) {
			t.Errorf("Encounter/%s carries the contact notes, which never leave the store", ct.ID)
		}
	}
	codes := map[string][2]string{
		"m-ons4": {fhirmap.ONS4CodeSystem, "ons4"}, "m-swemwbs-1": {linkbridge.SNOMEDSystem, fhirmap.SCTSWEMWBS},
		"m-ucla3": {fhirmap.OutcomeCodeSystem, "ucla3-total-score"}, "m-wemwbs": {linkbridge.SNOMEDSystem, fhirmap.SCTWEMWBS},
	}
	for id, sc := range codes {
		o := doc(t, rc.bodies["Observation/"+id])
		if get(o, "code", "coding", 0, "system") != sc[0] || get(o, "code", "coding", 0, "code") != sc[1] {
			t.Errorf("Observation/%s code = %v, want %s|%s", id, get(o, "code"), sc[0], sc[1])
		}
	}
	ons := doc(t, rc.bodies["Observation/m-ons4"])
	if comps, _ := get(ons, "component").([]any); len(comps) != 4 || get(ons, "valueQuantity") != nil || get(ons, "valueInteger") != nil ||
		get(ons, "component", 3, "code", "coding", 0, "code") != "anxious-yesterday" || get(ons, "component", 3, "valueInteger") != 8.0 {
		t.Errorf("ONS4 Observation = %v, want four separate components, no total", ons)
	}
	// The follow-ups with a baseline carry their change and name it.
	sw := rc.bodies["Observation/m-swemwbs-2"]
	if get(doc(t, sw), "valueQuantity", "value") != 23.21 || get(doc(t, sw), "component", 0, "valueQuantity", "value") != 26.0 ||
		!bytes.Contains(sw, []byte(`"value":6.85}`)) || get(doc(t, sw), "derivedFrom", 0, "reference") != "Observation/m-swemwbs-1" {
		t.Errorf("SWEMWBS final Observation = %s, want metric 23.21, raw 26, change 6.85 from Observation/m-swemwbs-1", sw)
	}
	onsFinal := doc(t, rc.bodies["Observation/m-ons4-final"])
	if get(onsFinal, "component", 7, "code", "coding", 0, "code") != "anxious-yesterday-change" || get(onsFinal, "component", 7, "valueInteger") != -5.0 ||
		get(onsFinal, "derivedFrom", 0, "reference") != "Observation/m-ons4" {
		t.Errorf("ONS4 final Observation = %v, want anxiety change -5 from Observation/m-ons4", onsFinal)
	}
	if get(doc(t, rc.bodies["Observation/m-wemwbs"]), "valueQuantity", "value") != 42.0 || get(doc(t, rc.bodies["Observation/m-ucla3"]), "valueQuantity", "value") != 8.0 {
		t.Errorf("WEMWBS/UCLA-3 totals wrong")
	}
	// A follow-up without a baseline has no change.
	if get(doc(t, rc.bodies["Observation/m-ucla3"]), "derivedFrom") != nil {
		t.Errorf("UCLA-3 review without a baseline names one")
	}
	task := doc(t, rc.task)
	if get(task, "status") != "completed" || get(task, "businessStatus", "coding", 0, "code") != linkbridge.BusinessDischarged ||
		get(task, "owner", "identifier", "value") != "lw-0042" ||
		get(task, "statusReason", "coding", 0, "system") != fhirmap.DischargeReasonSystem || get(task, "statusReason", "coding", 0, "code") != "goals-met" {
		t.Errorf("Task = %v, want the discharge reason coded in statusReason", task)
	}
	// Outputs: everything but the Goals and onward ServiceRequests, which
	// hang off the CarePlan.
	if outs, _ := get(task, "output").([]any); len(outs) != 1+1+len(cr.Contacts)+dnas(cr)+len(cr.Measures) {
		t.Errorf("Task.output has %d, want %d", len(outs), 1+1+len(cr.Contacts)+dnas(cr)+len(cr.Measures))
	}
	if get(task, "output", 0, "type", "coding", 0, "code") != "resulting-activity" {
		t.Errorf("Task.output[0] = %v, want the Procedure as resulting-activity", get(task, "output", 0))
	}
}

// freeText is every free-text string in the inputs.
func freeText(cr *linkbridge.CaseRecord) []string {
	out := []string{cr.Referral.StatusReason, cr.Referral.DischargeSummary, cr.Plan.WhatMatters}
	out = append(out, cr.Plan.Risks...)
	for _, n := range cr.Plan.Needs {
		out = append(out, n.Text)
	}
	for _, g := range cr.Plan.Goals {
		out = append(out, g.Description)
	}
	for _, a := range cr.Plan.Actions {
		out = append(out, a.Description)
	}
	for _, o := range cr.Plan.OnwardReferrals {
		out = append(out, o.Service, o.Reason)
	}
	for _, s := range cr.Plan.Signposts {
		out = append(out, s.To, s.Reason)
	}
	for _, c := range cr.Contacts {
		out = append(out, c.Notes)
	}
	var nonEmpty []string
	for _, s := range out {
		if s != "" {
			nonEmpty = append(nonEmpty, s)
		}
	}
	return nonEmpty
}

// TestCaseViewCodesOnly: codes and statuses are shared, free text is not
// (in any resource, nor in the Task's statusReason).
func TestCaseViewCodesOnly(t *testing.T) {
	t.Parallel()
	rc := renderCase(t, mustCodec(t), filepath.Join(caseViewDir, "codes-only.input.json"))
	secrets := freeText(rc.cr)
	if len(secrets) < 10 {
		t.Fatalf("the codes-only input has only %d free-text strings", len(secrets))
	}
	all := map[string][]byte{"Task": rc.task}
	for k, v := range rc.bodies {
		all[k] = v
	}
	for ref, body := range all {
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("codes-only: %s carries free text %q", ref, s)
			}
		}
	}
	if got := get(doc(t, rc.task), "statusReason", "text"); got != "On hold" {
		t.Errorf("codes-only Task.statusReason = %v, want On hold", got)
	}
	if got := get(doc(t, rc.bodies["CarePlan/"+fhirmap.CarePlanID(rc.cr.Referral.ID)]), "status"); got != "on-hold" {
		t.Errorf("CarePlan.status = %v, want on-hold", got)
	}
	// Codes still leave: the acceptance entry, measures, goals' ratings.
	counts := refsByType(rc.view)
	if counts["Procedure"] != 1 || counts["Observation"] != len(rc.cr.Measures)+dnas(rc.cr) || counts["Goal"] != len(rc.cr.Plan.Goals) || counts["Encounter"] != len(rc.cr.Contacts) {
		t.Errorf("codes-only resource counts = %v", counts)
	}
	// An unset consent is treated as codes-only.
	cr := *rc.cr
	rf := *cr.Referral
	rf.Consent = ""
	cr.Referral = &rf
	for _, g := range (fhirmap.Systems{}).CaseView(&cr) {
		raw := mustRenderGenerated(t, mustCodec(t), g)
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("unset consent: %s carries free text %q", g.Reference(), s)
			}
		}
	}
	// Consent none shares no resource at all.
	rf.Consent = linkbridge.ConsentNone
	if v := (fhirmap.Systems{}).CaseView(&cr); len(v) != 0 {
		t.Errorf("consent none: CaseView = %d resources, want none", len(v))
	}
}

// TestCaseViewDeclined: a declined referral shows only the decline entry.
func TestCaseViewDeclined(t *testing.T) {
	t.Parallel()
	rc := renderCase(t, mustCodec(t), filepath.Join(caseViewDir, "declined.input.json"))
	id := rc.cr.Referral.ID
	if len(rc.view) != 1 || rc.view[0].Reference() != "Observation/"+fhirmap.DeclinedID(id) {
		t.Fatalf("declined view = %v, want only the decline Observation", rc.view)
	}
	o := doc(t, rc.bodies["Observation/"+fhirmap.DeclinedID(id)])
	if get(o, "code", "coding", 0, "code") != linkbridge.SCTSocialPrescribingDeclined || get(o, "status") != "final" ||
		get(o, "effectiveDateTime") != "2026-11-21T09:00:00Z" || get(o, "basedOn", 0, "reference") != "ServiceRequest/"+id {
		t.Errorf("decline Observation = %v", o)
	}
	task := doc(t, rc.task)
	if get(task, "status") != "rejected" || get(task, "statusReason", "text") != rc.cr.Referral.StatusReason ||
		get(task, "businessStatus", "coding", 0, "code") != linkbridge.BusinessDeclined || get(task, "executionPeriod") != nil {
		t.Errorf("declined Task = %v", task)
	}
	if get(task, "owner", "identifier", "value") != "Y02662" {
		t.Errorf("declined Task owner = %v, want the service (no link worker)", get(task, "owner"))
	}
}

// TestForGPRecord: the written-back copy names the patient by NHS number
// and the referral by the referrer's identifier, carries a writeback
// identifier, and has no meta; the stored resource is unchanged.
func TestForGPRecord(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	rc := renderCase(t, c, filepath.Join(caseViewDir, "full-consent.input.json"))
	r := rc.cr.Referral
	const nhs = "9434765919"
	for _, ref := range []string{"Encounter/contact-1", "CarePlan/" + fhirmap.CarePlanID(r.ID), "Observation/m-swemwbs-1", "Procedure/" + fhirmap.AcceptanceID(r.ID), "Goal/goal-1", "ServiceRequest/onward-1"} {
		t.Run(strings.ReplaceAll(ref, "/", "-"), func(t *testing.T) {
			cr, err := c.Decode(rc.bodies[ref])
			if err != nil {
				t.Fatal(err)
			}
			stored := fhirmap.Unwrap(cr)
			fhirmap.SetMeta(stored, 3, time.Date(2027, 2, 2, 9, 0, 0, 0, time.UTC))
			before := proto.Clone(stored)
			out := fhirmap.Systems{}.ForGPRecord(stored, r, nhs, nil)
			if !proto.Equal(stored, before) {
				t.Errorf("ForGPRecord changed its input")
			}
			body, err := c.Encode(out)
			if err != nil {
				t.Fatal(err)
			}
			fhirschema.Validate(t, body)
			d := doc(t, body)
			if d["meta"] != nil {
				t.Errorf("meta = %v, want none", d["meta"])
			}
			if bytes.Contains(body, []byte("Patient/"+r.PersonID)) || bytes.Contains(body, []byte(`"ServiceRequest/`+r.ID+`"`)) {
				t.Errorf("gateway ids remain: %s", body)
			}
			subject := get(d, "subject")
			if get(subject, "type") != "Patient" || get(subject, "identifier", "system") != linkbridge.NHSNumberSystem ||
				get(subject, "identifier", "value") != nhs || get(subject, "reference") != nil {
				t.Errorf("subject = %v, want a logical reference by NHS number", subject)
			}
			if based := get(d, "basedOn", 0); based != nil {
				if get(based, "type") != "ServiceRequest" || get(based, "identifier", "system") != r.Identifier.System || get(based, "identifier", "value") != r.Identifier.Value {
					t.Errorf("basedOn = %v, want the referrer's identifier", based)
				}
			}
			ids, _ := d["identifier"].([]any)
			n := 0
			for _, id := range ids {
				if get(id, "system") == fhirmap.WritebackIdentifierSystem {
					n++
					if get(id, "value") != ref {
						t.Errorf("writeback identifier = %v, want %s", get(id, "value"), ref)
					}
				}
			}
			if n != 1 {
				t.Errorf("%d writeback identifiers, want 1", n)
			}
			// Applying it twice adds no second writeback identifier.
			again, err := c.Encode(fhirmap.Systems{}.ForGPRecord(out, r, nhs, nil))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, body) {
				t.Errorf("ForGPRecord is not idempotent:\n%s\n%s", body, again)
			}
		})
	}

	// References to other written-back resources keep their ids; the Task
	// points at the referral by identifier too.
	cr, err := c.Decode(rc.bodies["CarePlan/"+fhirmap.CarePlanID(r.ID)])
	if err != nil {
		t.Fatal(err)
	}
	out, _ := c.Encode(fhirmap.Systems{}.ForGPRecord(fhirmap.Unwrap(cr), r, nhs, nil))
	if get(doc(t, out), "goal", 0, "reference") != "Goal/goal-1" {
		t.Errorf("CarePlan.goal = %v, want Goal/goal-1 kept", get(doc(t, out), "goal", 0))
	}
	tcr, err := c.Decode(rc.task)
	if err != nil {
		t.Fatal(err)
	}
	task := fhirmap.Systems{}.ForGPRecord(fhirmap.Unwrap(tcr), r, nhs, nil).(*taskpb.Task)
	if task.GetFocus().GetIdentifier().GetValue().GetValue() != r.Identifier.Value || task.GetForValue().GetIdentifier().GetValue().GetValue() != nhs {
		t.Errorf("Task focus/for = %v/%v", task.GetFocus(), task.GetForValue())
	}
	// A reference to another patient is left alone.
	enc := &encpb.Encounter{Subject: fhirmap.NewRef("Patient", "someone-else")}
	got := fhirmap.Systems{}.ForGPRecord(enc, r, nhs, nil).(*encpb.Encounter)
	if typ, id := fhirmap.RefTarget(got.GetSubject()); typ != "Patient" || id != "someone-else" || got.GetSubject().GetIdentifier() != nil {
		t.Errorf("another patient's reference became %v", got.GetSubject())
	}
}

// TestCaseViewRefusesUnknownCodes: a code outside its value set leaves the
// typed resource without it, so Validate refuses the resource as the codec
// refused its JSON before: a plan action status (CarePlan activity
// detail.status is required) and a contact mode (Encounter.class code and
// display would be empty).
func TestCaseViewRefusesUnknownCodes(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	var cr linkbridge.CaseRecord
	if err := json.Unmarshal(mustReadFile(t, filepath.Join(caseViewDir, "full-consent.input.json")), &cr); err != nil {
		t.Fatal(err)
	}
	cr.Plan.Actions[0].Status = "bogus"
	cr.Contacts[0].Mode = "carrier-pigeon"
	refused := map[string]bool{}
	for _, g := range (fhirmap.Systems{}).CaseView(&cr) {
		if err := c.Validate(g.Resource); err != nil {
			refused[g.Reference()] = true
		}
	}
	want := map[string]bool{"CarePlan/" + fhirmap.CarePlanID(cr.Referral.ID): true, "Encounter/" + cr.Contacts[0].ID: true}
	if diff := cmp.Diff(want, refused); diff != "" {
		t.Errorf("resources Validate refuses (-want +got):\n%s", diff)
	}
}

// TestCaseViewCodingMoments: the referral code (Procedure 871731000000106)
// exists only once the person agreed, dated then and performed by the link
// worker who recorded it, whoever holds the case now; the declined code
// (Observation 871711000000103) only when the person declined before
// agreeing, never for a service's own refusal
// (docs/domain.md#coding-the-episode).
func TestCaseViewCodingMoments(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	base := func(s linkbridge.TaskStatus) *linkbridge.CaseRecord {
		return &linkbridge.CaseRecord{Referral: &linkbridge.Referral{ID: "r1", TaskID: "t1", PersonID: "p1", Status: s,
			Consent: linkbridge.ConsentCodesOnly, AuthoredOn: t0, ReceivedAt: t0, UpdatedAt: t0}}
	}
	refs := func(cr *linkbridge.CaseRecord) map[string]proto.Message {
		out := map[string]proto.Message{}
		for _, g := range (fhirmap.Systems{}).CaseView(cr) {
			out[g.Reference()] = g.Resource
		}
		return out
	}
	proc, declined := "Procedure/"+fhirmap.AcceptanceID("r1"), "Observation/"+fhirmap.DeclinedID("r1")

	accepted := base(linkbridge.TaskAccepted)
	accepted.Referral.AcceptedAt, accepted.Referral.LinkWorker = t0, linkbridge.LinkWorker{ID: "lw-1"}
	if v := refs(accepted); v[proc] != nil || v[declined] != nil {
		t.Errorf("accepted by the service, not yet agreed: view has %v", v)
	}

	agreed := base(linkbridge.TaskInProgress)
	agreed.Referral.AcceptedAt, agreed.Referral.LinkWorker = t0, linkbridge.LinkWorker{ID: "lw-2"}
	agreed.Referral.AgreedAt, agreed.Referral.AgreedBy = t0.Add(48*time.Hour), linkbridge.LinkWorker{ID: "lw-1"}
	c := mustCodec(t)
	p := refs(agreed)[proc]
	if p == nil {
		t.Fatal("agreed: no Procedure")
	}
	b, err := c.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	d := doc(t, b)
	if get(d, "performedDateTime") != "2026-11-23T09:00:00Z" || get(d, "performer", 0, "actor", "identifier", "value") != "lw-1" {
		t.Errorf("agreed Procedure = %s; want performed at the agreement by lw-1", b)
	}

	service := base(linkbridge.TaskRejected)
	service.Referral.DeclineReason = "out-of-area"
	if v := refs(service); len(v) != 0 {
		t.Errorf("a service's refusal generated %v", v)
	}

	person := base(linkbridge.TaskCancelled)
	person.Referral.AcceptedAt, person.Referral.PersonDeclinedAt, person.Referral.CompletedAt = t0, t0.Add(time.Hour), t0.Add(time.Hour)
	if v := refs(person); v[declined] == nil || v[proc] != nil {
		t.Errorf("the person declined after the service accepted: view %v, want the declined Observation only", v)
	}
}

// dnas counts the contacts a case's person did not attend: each has its
// coded "did not attend" Observation.
func dnas(cr *linkbridge.CaseRecord) int {
	n := 0
	for _, c := range cr.Contacts {
		if !c.Attended {
			n++
		}
	}
	return n
}

// TestCaseViewDNA: a contact the person did not attend is a cancelled
// Encounter and a coded entry, SNOMED CT 281399006 |Did not attend|, at
// its time, naming the Encounter.
func TestCaseViewDNA(t *testing.T) {
	t.Parallel()
	rc := renderCase(t, mustCodec(t), filepath.Join(caseViewDir, "full-consent.input.json"))
	found := 0
	for _, c := range rc.cr.Contacts {
		if c.Attended {
			if _, ok := rc.bodies["Observation/"+fhirmap.DNAID(c.ID)]; ok {
				t.Errorf("attended contact %s has a DNA entry", c.ID)
			}
			continue
		}
		found++
		o := doc(t, rc.bodies["Observation/"+fhirmap.DNAID(c.ID)])
		if get(o, "code", "coding", 0, "code") != fhirmap.SCTDidNotAttend || get(o, "code", "coding", 0, "system") != linkbridge.SNOMEDSystem ||
			get(o, "encounter", "reference") != "Encounter/"+c.ID || get(o, "effectiveDateTime") != c.At.Format(time.RFC3339) {
			t.Errorf("DNA entry of %s = %v", c.ID, o)
		}
		if e := doc(t, rc.bodies["Encounter/"+c.ID]); get(e, "status") != "cancelled" {
			t.Errorf("Encounter of a DNA = %v, want cancelled", get(e, "status"))
		}
	}
	if found == 0 {
		t.Fatal("the full-consent case has no DNA contact to check")
	}
}
