package fhirmap_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// decodeResource decodes FHIR JSON and returns the bare resource.
func decodeResource(t *testing.T, js string) any {
	t.Helper()
	cr, err := mustCodec(t).Decode([]byte(js))
	if err != nil {
		t.Fatalf("Decode(%s) returned unexpected error: %v", js, err)
	}
	return fhirmap.Unwrap(cr)
}

func TestRefTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ref     string // JSON of Task.focus
		typ, id string
	}{
		{"Typed", `{"reference":"ServiceRequest/sr-1"}`, "ServiceRequest", "sr-1"},
		{"TypedPatient", `{"reference":"Patient/9f2"}`, "Patient", "9f2"},
		{"Fragment", `{"reference":"#sr"}`, "#", "sr"},
		{"URN", `{"reference":"urn:uuid:3741a7a4-3a54-4ec2-b2d0-6b3697f7d130"}`, "", "urn:uuid:3741a7a4-3a54-4ec2-b2d0-6b3697f7d130"},
		{"Absolute", `{"reference":"https://gp.example.nhs.uk/fhir/ServiceRequest/1"}`, "", "https://gp.example.nhs.uk/fhir/ServiceRequest/1"},
		{"LogicalOnly", `{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"}}`, "", ""},
		{"DisplayOnly", `{"display":"somewhere"}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			task := decodeResource(t, `{"resourceType":"Task","status":"requested","intent":"order","focus":`+tt.ref+`}`).(*taskpb.Task)
			typ, id := fhirmap.RefTarget(task.GetFocus())
			if typ != tt.typ || id != tt.id {
				t.Errorf("RefTarget(%s) = (%q, %q), want (%q, %q)", tt.ref, typ, id, tt.typ, tt.id)
			}
		})
	}
	if typ, id := fhirmap.RefTarget(nil); typ != "" || id != "" {
		t.Errorf("RefTarget(nil) = (%q, %q)", typ, id)
	}
	// A relative reference left as a string is still typed.
	if typ, id := fhirmap.RefTarget(&dpb.Reference{Reference: &dpb.Reference_Uri{Uri: &dpb.String{Value: "HealthcareService/hs1"}}}); typ != "HealthcareService" || id != "hs1" {
		t.Errorf("RefTarget(uri HealthcareService/hs1) = (%q, %q)", typ, id)
	}
}

func TestNewRefRoundTrip(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"Patient", "ServiceRequest", "PractitionerRole", "HealthcareService", "Task", "Organization"} {
		ref := fhirmap.NewRef(typ, "id-1")
		if gt, gid := fhirmap.RefTarget(ref); gt != typ || gid != "id-1" {
			t.Errorf("RefTarget(NewRef(%s)) = (%q, %q)", typ, gt, gid)
		}
	}
	if got := fhirmap.NewRef("ServiceRequest", "x").GetServiceRequestId().GetValue(); got != "x" {
		t.Errorf("NewRef(ServiceRequest) did not set service_request_id, got %q", got)
	}
}

func TestRewriteReferences(t *testing.T) {
	t.Parallel()
	task := decodeResource(t, `{"resourceType":"Task","status":"requested","intent":"order",
		"contained":[{"resourceType":"Patient","id":"p","generalPractitioner":[{"reference":"urn:uuid:a"}]}],
		"focus":{"reference":"urn:uuid:a"},
		"for":{"reference":"#p"},
		"requester":{"reference":"Organization/old"},
		"owner":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y02662"}},
		"basedOn":[{"reference":"urn:uuid:b"},{"reference":"urn:uuid:unknown"}]}`).(*taskpb.Task)
	moves := map[string][2]string{
		"urn:uuid:a":       {"ServiceRequest", "sr-new"},
		"urn:uuid:b":       {"CarePlan", "cp-new"},
		"Organization/old": {"Organization", "org-new"},
	}
	n := fhirmap.RewriteReferences(task, func(typ, id string) (string, string, bool) {
		key := id
		if typ != "" {
			key = typ + "/" + id
		}
		m, ok := moves[key]
		return m[0], m[1], ok
	})
	if n != 3 {
		t.Errorf("RewriteReferences rewrote %d references, want 3", n)
	}
	check := func(what string, ref *dpb.Reference, typ, id string) {
		t.Helper()
		if gt, gid := fhirmap.RefTarget(ref); gt != typ || gid != id {
			t.Errorf("%s = (%q, %q), want (%q, %q)", what, gt, gid, typ, id)
		}
	}
	check("focus", task.GetFocus(), "ServiceRequest", "sr-new")
	check("for (fragment untouched)", task.GetForValue(), "#", "p")
	check("requester", task.GetRequester(), "Organization", "org-new")
	check("basedOn[0]", task.GetBasedOn()[0], "CarePlan", "cp-new")
	check("basedOn[1] (unknown untouched)", task.GetBasedOn()[1], "", "urn:uuid:unknown")
	if task.GetOwner().GetIdentifier().GetValue().GetValue() != "Y02662" {
		t.Errorf("logical owner reference changed")
	}
	// Contained resources are not descended into.
	p := fhirmap.Contained(task)[0].(*patpb.Patient)
	check("contained Patient.generalPractitioner", p.GetGeneralPractitioner()[0], "", "urn:uuid:a")
}

func TestCodeAndSetCode(t *testing.T) {
	t.Parallel()
	st := &taskpb.Task_StatusCode{}
	if got := fhirmap.Code(st); got != "" {
		t.Errorf("Code(unset) = %q, want empty", got)
	}
	for _, code := range []string{"draft", "requested", "in-progress", "on-hold", "entered-in-error", "completed"} {
		if !fhirmap.SetCode(st, code) {
			t.Fatalf("SetCode(%q) = false", code)
		}
		if got := fhirmap.Code(st); got != code {
			t.Errorf("Code after SetCode(%q) = %q", code, got)
		}
	}
	if fhirmap.SetCode(st, "not-a-status") {
		t.Errorf("SetCode(not-a-status) = true, want false")
	}
	if got := fhirmap.Code(st); got != "completed" {
		t.Errorf("failed SetCode changed the value to %q", got)
	}
	if got := fhirmap.Code(nil); got != "" {
		t.Errorf("Code(nil) = %q", got)
	}
	if fhirmap.SetCode(&dpb.String{}, "x") {
		t.Errorf("SetCode on a non-code proto = true")
	}
}

func TestWrapUnwrapIDMeta(t *testing.T) {
	t.Parallel()
	p := &patpb.Patient{Meta: &dpb.Meta{Profile: []*dpb.Canonical{{Value: "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"}}}}
	cr := fhirmap.Wrap(p)
	if cr.GetPatient() != p {
		t.Fatalf("Wrap did not put the Patient in the oneof")
	}
	if fhirmap.Unwrap(cr) != p {
		t.Errorf("Unwrap(Wrap(p)) != p")
	}
	if fhirmap.Unwrap(nil) != nil {
		t.Errorf("Unwrap(nil) != nil")
	}
	if got := fhirmap.TypeName(p); got != "Patient" {
		t.Errorf("TypeName = %q", got)
	}
	if got := fhirmap.ID(p); got != "" {
		t.Errorf("ID(unset) = %q", got)
	}
	fhirmap.SetID(p, "abc")
	if got := fhirmap.ID(p); got != "abc" {
		t.Errorf("ID after SetID = %q", got)
	}
	now := time.Date(2026, 11, 20, 9, 30, 0, 123456000, time.FixedZone("BST", 3600))
	fhirmap.SetMeta(p, 3, now)
	m := fhirmap.GetMeta(p)
	if m.GetVersionId().GetValue() != "3" {
		t.Errorf("meta.versionId = %q, want 3", m.GetVersionId().GetValue())
	}
	if got := time.UnixMicro(m.GetLastUpdated().GetValueUs()); !got.Equal(now) || m.GetLastUpdated().GetTimezone() != "Z" {
		t.Errorf("meta.lastUpdated = %v (%s), want %v in UTC", got, m.GetLastUpdated().GetTimezone(), now)
	}
	if len(m.GetProfile()) != 1 {
		t.Errorf("SetMeta dropped meta.profile")
	}
	if got := fhirmap.DateTimeToTime(nil); !got.IsZero() {
		t.Errorf("DateTimeToTime(nil) = %v", got)
	}
	if got := fhirmap.DateTimeToTime(fhirmap.DateTime(now)); !got.Equal(now.Truncate(time.Second)) {
		t.Errorf("DateTime round trip = %v, want %v", got, now.Truncate(time.Second))
	}
}

func TestExpandContained(t *testing.T) {
	t.Parallel()
	task := decodeResource(t, `{"resourceType":"Task","status":"requested","intent":"order",
		"contained":[{"resourceType":"Patient","id":"p"},{"resourceType":"ServiceRequest","id":"s","status":"active","intent":"order","subject":{"reference":"#p"}}]}`).(*taskpb.Task)
	in := []*fhirmap.Entry{{Resource: task, Path: "Task"}}
	out := fhirmap.ExpandContained(in)
	var got []string
	for _, e := range out {
		got = append(got, e.Path+" "+fhirmap.TypeName(e.Resource)+" "+fhirmap.ID(e.Resource)+map[bool]string{true: " contained", false: ""}[e.Contained])
	}
	want := []string{"Task Task ", "Task.contained[0] Patient p contained", "Task.contained[1] ServiceRequest s contained"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ExpandContained mismatch (-want +got):\n%s", diff)
	}
}

func TestSearchParams(t *testing.T) {
	t.Parallel()
	task := decodeResource(t, `{"resourceType":"Task","id":"t1","status":"requested","intent":"order",
		"identifier":[{"system":"https://example.org/task","value":"T-1"}],
		"code":{"coding":[{"system":"http://hl7.org/fhir/CodeSystem/task-code","code":"fulfill"}]},
		"focus":{"reference":"ServiceRequest/sr1"},
		"for":{"reference":"Patient/p1"},
		"requester":{"reference":"Organization/o1"},
		"owner":{"type":"Organization","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"Y02662"}}}`).(*taskpb.Task)
	got := fhirmap.SearchParams(task)
	want := []linkbridge.SearchParam{
		// A token once, with its system.
		{Name: "identifier", Value: "T-1", System: "https://example.org/task"},
		{Name: "status", Value: "requested"},
		{Name: "intent", Value: "order"},
		{Name: "code", Value: "fulfill", System: "http://hl7.org/fhir/CodeSystem/task-code"},
		// References are indexed as Type/id only (the API expands bare ids),
		// and a Patient subject once, under patient.
		{Name: "patient", Value: "Patient/p1"},
		{Name: "focus", Value: "ServiceRequest/sr1"},
		{Name: "owner:identifier", Value: "Y02662", System: "https://fhir.nhs.uk/Id/ods-organization-code"},
		{Name: "requester", Value: "Organization/o1"},
	}
	sortParams := func(p []linkbridge.SearchParam) {
		slices.SortFunc(p, func(a, b linkbridge.SearchParam) int {
			if a.Name != b.Name {
				if a.Name < b.Name {
					return -1
				}
				return 1
			}
			if a.Value < b.Value {
				return -1
			} else if a.Value > b.Value {
				return 1
			}
			return 0
		})
	}
	sortParams(got)
	sortParams(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SearchParams(Task) mismatch (-want +got):\n%s", diff)
	}

	// "patient" only indexes Patient references; a Group subject stays a
	// subject.
	sr := decodeResource(t, `{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Group/g1"}}`).(*srpb.ServiceRequest)
	subject := false
	for _, p := range fhirmap.SearchParams(sr) {
		if p.Name == "patient" {
			t.Errorf("ServiceRequest with a Group subject indexed patient=%s", p.Value)
		}
		subject = subject || (p.Name == "subject" && p.Value == "Group/g1")
	}
	if !subject {
		t.Errorf("ServiceRequest with a Group subject not indexed as subject=Group/g1")
	}
}

func TestNewReferralTask(t *testing.T) {
	t.Parallel()
	authored := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	now := authored.Add(90 * time.Second)
	r := &linkbridge.Referral{
		ID: "sr1", PersonID: "p1", Status: linkbridge.TaskRequested, Priority: "urgent",
		ReferrerODS: "A81001", ServiceODS: "Y02662", AuthoredOn: authored,
	}
	task := fhirmap.NewReferralTask(r, nil, now)
	if task.GetStatus().GetValue() != cpb.TaskStatusCode_REQUESTED {
		t.Errorf("status = %v, want requested", task.GetStatus().GetValue())
	}
	if got := fhirmap.Code(task.GetIntent()); got != "order" {
		t.Errorf("intent = %q, want order", got)
	}
	c := task.GetCode().GetCoding()
	if len(c) != 1 || c[0].GetSystem().GetValue() != fhirmap.TaskCodeSystem || c[0].GetCode().GetValue() != "fulfill" {
		t.Errorf("code = %v, want task-code#fulfill", c)
	}
	if typ, id := fhirmap.RefTarget(task.GetFocus()); typ != "ServiceRequest" || id != "sr1" {
		t.Errorf("focus = %s/%s", typ, id)
	}
	if typ, id := fhirmap.RefTarget(task.GetForValue()); typ != "Patient" || id != "p1" {
		t.Errorf("for = %s/%s", typ, id)
	}
	if got := task.GetRequester().GetIdentifier().GetValue().GetValue(); got != "A81001" {
		t.Errorf("requester ODS = %q, want A81001", got)
	}
	if got := task.GetOwner().GetIdentifier(); got.GetValue().GetValue() != "Y02662" || got.GetSystem().GetValue() != linkbridge.ODSSystem {
		t.Errorf("owner = %v, want ODS Y02662", got)
	}
	if got := fhirmap.Code(task.GetPriority()); got != "urgent" {
		t.Errorf("priority = %q, want urgent", got)
	}
	if a, m := fhirmap.DateTimeToTime(task.GetAuthoredOn()), fhirmap.DateTimeToTime(task.GetLastModified()); !a.Equal(authored) || m.Before(a) {
		t.Errorf("authoredOn %v, lastModified %v: want authoredOn = %v and lastModified ≥ authoredOn (inv-1)", a, m, authored)
	}
	// The codec accepts what the gateway builds.
	if err := mustCodec(t).Validate(task); err != nil {
		t.Errorf("Validate(NewReferralTask) = %v", err)
	}

	// An explicit requester reference is copied, not shared.
	req := fhirmap.NewRef("PractitionerRole", "pr1")
	task2 := fhirmap.NewReferralTask(r, req, now)
	if diff := cmp.Diff(req, task2.GetRequester(), protocmp.Transform()); diff != "" {
		t.Errorf("requester mismatch (-want +got):\n%s", diff)
	}
	if task2.GetRequester() == req {
		t.Errorf("requester is shared with the caller's reference")
	}
	// An unknown priority is dropped rather than invented.
	r.Priority = "whenever"
	if task3 := fhirmap.NewReferralTask(r, nil, now); task3.GetPriority() != nil {
		t.Errorf("priority = %v, want unset for an unknown code", task3.GetPriority())
	}
}

func TestApplyReferralToTask(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	task := &taskpb.Task{StatusReason: &dpb.CodeableConcept{Text: &dpb.String{Value: "old"}}}
	fhirmap.Systems{}.ApplyReferralToTask(task, &linkbridge.Referral{Status: linkbridge.TaskOnHold, StatusReason: "Person in hospital", BusinessStatus: "first-contact-made"}, now)
	if got := fhirmap.TaskStatusOf(task); got != linkbridge.TaskOnHold {
		t.Errorf("status = %q, want on-hold", got)
	}
	if got := task.GetStatusReason().GetText().GetValue(); got != "Person in hospital" {
		t.Errorf("statusReason.text = %q", got)
	}
	if c := task.GetBusinessStatus().GetCoding(); len(c) != 1 || c[0].GetSystem().GetValue() != fhirmap.BusinessStatusSystem || c[0].GetCode().GetValue() != "first-contact-made" {
		t.Errorf("businessStatus = %v", task.GetBusinessStatus())
	}
	if got := fhirmap.DateTimeToTime(task.GetLastModified()); !got.Equal(now) {
		t.Errorf("lastModified = %v, want %v", got, now)
	}
	fhirmap.Systems{}.ApplyReferralToTask(task, &linkbridge.Referral{Status: linkbridge.TaskInProgress}, now)
	if task.GetStatusReason() != nil || task.GetBusinessStatus() != nil {
		t.Errorf("statusReason/businessStatus kept after they were cleared: %v / %v", task.GetStatusReason(), task.GetBusinessStatus())
	}
}
