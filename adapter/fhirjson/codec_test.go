package fhirjson_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	linkbridge "github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirjson/fhirschema"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	vspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/valuesets_go_proto"
)

// corpusDir is the shared FHIR R4 test corpus at the repository root.
var corpusDir = filepath.Join("..", "..", "testdata", "fhir", "r4")

const referralBundleFile = "bundle-referral-transaction.json"

func mustNew(t testing.TB) *fhirjson.Codec {
	t.Helper()
	c, err := fhirjson.New()
	if err != nil {
		t.Fatalf("New() returned unexpected error: %v", err)
	}
	return c
}

func mustReadCorpus(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

func mustDecode(t testing.TB, c *fhirjson.Codec, b []byte) *rpb.ContainedResource {
	t.Helper()
	cr, err := c.Decode(b)
	if err != nil {
		t.Fatalf("Decode() returned unexpected error: %v", err)
	}
	return cr
}

const (
	patientJSON = `{"resourceType":"Patient","id":"p1",
		"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],
		"name":[{"family":"XXTESTPATIENT","given":["Alex"]}],"birthDate":"1956-03-14"}`
	serviceRequestJSON = `{"resourceType":"ServiceRequest","id":"sr1","status":"active","intent":"order",
		"code":{"coding":[{"system":"http://snomed.info/sct","code":"871731000000106","display":"Referral to social prescribing service"}]},
		"subject":{"reference":"Patient/p1"},"authoredOn":"2026-11-20T09:30:00Z"}`
	taskJSON = `{"resourceType":"Task","id":"t1","status":"requested","intent":"order",
		"code":{"coding":[{"system":"http://hl7.org/fhir/CodeSystem/task-code","code":"fulfill"}]},
		"focus":{"reference":"ServiceRequest/sr1"},"for":{"reference":"Patient/p1"}}`
)

func TestDecode(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, cr *rpb.ContainedResource)
	}{
		{"Patient", []byte(patientJSON), func(t *testing.T, cr *rpb.ContainedResource) {
			p := cr.GetPatient()
			if got := p.GetIdentifier()[0].GetValue().GetValue(); got != "9434765919" {
				t.Errorf("identifier value = %q, want 9434765919", got)
			}
			if got := p.GetBirthDate().GetPrecision(); got != dpb.Date_DAY {
				t.Errorf("birthDate precision = %v, want DAY", got)
			}
		}},
		{"ServiceRequest", []byte(serviceRequestJSON), func(t *testing.T, cr *rpb.ContainedResource) {
			sr := cr.GetServiceRequest()
			if got := sr.GetStatus().GetValue(); got != cpb.RequestStatusCode_ACTIVE {
				t.Errorf("status = %v, want ACTIVE", got)
			}
			if got := sr.GetCode().GetCoding()[0].GetCode().GetValue(); got != "871731000000106" {
				t.Errorf("code = %q", got)
			}
		}},
		{"Task", []byte(taskJSON), func(t *testing.T, cr *rpb.ContainedResource) {
			task := cr.GetTask()
			if got := task.GetFocus().GetServiceRequestId().GetValue(); got != "sr1" {
				t.Errorf("focus ServiceRequestId = %q, want sr1", got)
			}
			if got := task.GetForValue().GetPatientId().GetValue(); got != "p1" {
				t.Errorf("for PatientId = %q, want p1", got)
			}
		}},
		{"Bundle", mustReadCorpus(t, referralBundleFile), func(t *testing.T, cr *rpb.ContainedResource) {
			b := cr.GetBundle()
			if got := len(b.GetEntry()); got != 3 {
				t.Fatalf("entries = %d, want 3", got)
			}
			sr := b.GetEntry()[1].GetResource().GetServiceRequest()
			if got := sr.GetSubject().GetUri().GetValue(); got != "urn:uuid:2a1a779b-15ef-410b-b927-318d36ec955a" {
				t.Errorf("subject uri = %q", got)
			}
			if got := sr.GetRequester().GetIdentifier().GetValue().GetValue(); got != "A81001" {
				t.Errorf("requester ODS = %q", got)
			}
		}},
		{"ByteOrderMark", append([]byte{0xEF, 0xBB, 0xBF}, patientJSON...), func(t *testing.T, cr *rpb.ContainedResource) {
			if cr.GetPatient() == nil {
				t.Errorf("want a Patient")
			}
		}},
		{"NullAlignsPrimitiveArray", []byte(`{"resourceType":"Patient","name":[{"given":["Alex",null],
			"_given":[null,{"extension":[{"url":"http://example.org/x","valueBoolean":true}]}]}]}`), func(t *testing.T, cr *rpb.ContainedResource) {
			given := cr.GetPatient().GetName()[0].GetGiven()
			// google/fhir adds its primitiveHasNoValue extension to the null entry.
			if len(given) != 2 || given[1].GetValue() != "" || len(given[1].GetExtension()) == 0 {
				t.Errorf("given = %v, want 2 entries, the second with an extension", given)
			}
		}},
		{"LeadingWhitespace", []byte("\r\n\t " + patientJSON), func(t *testing.T, cr *rpb.ContainedResource) {
			if cr.GetPatient() == nil {
				t.Errorf("want a Patient")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, mustDecode(t, c, tt.in))
		})
	}
}

func TestDecodeNormalisesReferences(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	in := `{"resourceType":"ServiceRequest","status":"active","intent":"order",
		"subject":{"reference":"Patient/p1"},
		"requester":{"reference":"#pr1"},
		"contained":[{"resourceType":"Practitioner","id":"pr1"}]}`
	sr := mustDecode(t, c, []byte(in)).GetServiceRequest()
	if got := sr.GetSubject().GetPatientId().GetValue(); got != "p1" {
		t.Errorf("GetSubject().GetPatientId() = %q, want p1", got)
	}
	if got := sr.GetRequester().GetFragment().GetValue(); got != "pr1" {
		t.Errorf("GetRequester().GetFragment() = %q, want pr1", got)
	}
	contained := new(rpb.ContainedResource)
	if err := sr.GetContained()[0].UnmarshalTo(contained); err != nil {
		t.Fatalf("unpack contained: %v", err)
	}
	if got := contained.GetPractitioner().GetId().GetValue(); got != "pr1" {
		t.Errorf("contained Practitioner id = %q, want pr1", got)
	}
	out, err := c.Encode(sr)
	if err != nil {
		t.Fatalf("Encode() returned unexpected error: %v", err)
	}
	for _, want := range []string{`"reference":"Patient/p1"`, `"reference":"#pr1"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Encode() = %s, want it to contain %s", out, want)
		}
	}
}

// TestDecodeStructuralErrors pins what jsonformat v0.7.4 reports for input
// that does not parse as FHIR R4, and checks that no element value leaks into
// the message.
func TestDecodeStructuralErrors(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	deep := `{"resourceType":"Patient","extension":[` + strings.Repeat(`{"url":"http://x","extension":[`, 70) +
		strings.Repeat(`]}`, 70) + `]}`
	tests := []struct {
		name     string
		in       string
		wantMsg  string
		wantExpr []string // sorted
		secret   string   // must not appear in the message
	}{
		{"UnknownField", `{"resourceType":"Patient","foo":1}`, "unknown field", []string{"Patient.foo"}, ""},
		{"UnknownFields", `{"resourceType":"Patient","foo":1,"bar":2}`, "unknown field", []string{"Patient.bar", "Patient.foo"}, ""},
		{"UnknownNestedField", `{"resourceType":"Patient","name":[{"family":"Smith","zzz":1}]}`, "unknown field", []string{"Patient.name[0].zzz"}, "Smith"},
		{"UnknownFieldInBundleEntry", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","foo":1}}]}`,
			"unknown field", []string{"Bundle.entry[0].resource.Patient.foo"}, ""},
		{"UnknownFieldOddKey", `{"resourceType":"Patient","9434765919 Smith":1}`, "unknown field", []string{"Patient"}, "9434765919"},
		{"UnknownChoiceType", `{"resourceType":"Patient","deceasedFoo":true}`, "unknown field", []string{"Patient.deceasedFoo"}, ""},
		{"BadDate", `{"resourceType":"Patient","birthDate":"1980-13-45"}`, "expected date", []string{"Patient.birthDate"}, "1980-13-45"},
		{"BadDateTime", `{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Patient/p1"},"authoredOn":"20 Nov 2026"}`,
			"expected datetime", []string{"ServiceRequest.authoredOn"}, "Nov"},
		{"BadInstant", `{"resourceType":"Patient","meta":{"lastUpdated":"2026-11-20"}}`, "expected instant", []string{"Patient.meta.lastUpdated"}, "2026-11-20"},
		{"WrongTypeBoolean", `{"resourceType":"Patient","active":"yes"}`, "expected boolean", []string{"Patient.active"}, "yes"},
		{"WrongTypeArray", `{"resourceType":"Patient","name":"John Smith"}`, "expected array", []string{"Patient.name"}, "Smith"},
		{"WrongTypeNestedArray", `{"resourceType":"Patient","name":[{"given":"John"}]}`, "expected array", []string{"Patient.name[0].given"}, "John"},
		{"WrongTypeString", `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":9434765919}]}`,
			"expected string", []string{"Patient.identifier[0].value"}, "9434765919"},
		{"ArrayForSingleton", `{"resourceType":"Patient","gender":["male"]}`, "invalid JSON", []string{"Patient.gender"}, "male"},
		{"BadCode", `{"resourceType":"Patient","gender":"9434765919"}`, "code type mismatch", []string{"Patient.gender"}, "9434765919"},
		{"UnknownResourceType", `{"resourceType":"Smith9434765919"}`, "unknown resource type", nil, "9434765919"},
		{"UnknownContainedResourceType", `{"resourceType":"Patient","contained":[{"resourceType":"Smith9434765919"}]}`, "unknown resource type", nil, "9434765919"},
		{"ResourceTypeNotString", `{"resourceType":42}`, "invalid resource type", nil, "42"},
		{"NoResourceType", `{"id":"x"}`, `missing required field "resourceType"`, nil, ""},
		{"EmptyObject", `{}`, `missing required field "resourceType"`, nil, ""},
		{"InvalidJSON", `{"resourceType":"Patient","name":[{"family":"Smith"`, "invalid JSON", nil, "Smith"},
		{"TrailingData", `{"resourceType":"Patient"} {"family":"Smith"}`, "invalid JSON", nil, "Smith"},
		{"TooDeep", deep, "field exceeded the maximum nesting depth 64", nil, ""},
		{"EmptyRequiredCode", `{"resourceType":"Bundle","type":""}`, "empty string: FHIR primitive values must not be empty", []string{"Bundle.type"}, ""},
		{"EmptyStatus", `{"resourceType":"ServiceRequest","status":"","intent":"order","subject":{"reference":"Patient/p1"}}`,
			"empty string: FHIR primitive values must not be empty", []string{"ServiceRequest.status"}, ""},
		{"EmptyStringInArray", `{"resourceType":"Patient","name":[{"given":["Alex",""]}]}`, "empty string: FHIR primitive values must not be empty", []string{"Patient.name[0].given[1]"}, "Alex"},
		{"EmptyStringInEntry", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","gender":""}}]}`,
			"empty string: FHIR primitive values must not be empty", []string{"Bundle.entry[0].resource.gender"}, ""},
		{"EmptyStringResourceTypeLast", `{"gender":"","resourceType":"Patient"}`, "empty string: FHIR primitive values must not be empty", []string{"Patient.gender"}, ""},
		{"NullStatus", `{"resourceType":"ServiceRequest","status":null,"intent":"order","subject":{"reference":"Patient/p1"}}`,
			"null value: null is only allowed inside arrays", []string{"ServiceRequest.status"}, ""},
		{"EmptyObject", `{"resourceType":"Patient","meta":{}}`, "empty object: FHIR elements must have a value or children", []string{"Patient.meta"}, ""},
		{"EmptyArray", `{"resourceType":"Patient","name":[]}`, "empty array: FHIR arrays must have at least one element", []string{"Patient.name"}, ""},
		{"DuplicateKey", `{"resourceType":"Patient","gender":"male","gender":"female"}`, "duplicate JSON key", []string{"Patient.gender"}, "female"},
		{"DuplicateEscapedKey", `{"resourceType":"Patient","gender":"male","gend\u0065r":"female"}`, "duplicate JSON key", []string{"Patient.gender"}, "female"},
		{"DuplicateResourceType", `{"resourceType":"Patient","resourceType":"Patient"}`, "duplicate JSON key", []string{"Patient.resourceType"}, ""},
		{"Empty", ``, "request body is empty: expected a FHIR R4 JSON resource", nil, ""},
		{"Whitespace", " \r\n\t", "request body is empty: expected a FHIR R4 JSON resource", nil, ""},
		{"Array", `[{"resourceType":"Patient"}]`, "request body is not a JSON object: expected a FHIR R4 JSON resource", nil, ""},
		{"String", `"Patient"`, "request body is not a JSON object: expected a FHIR R4 JSON resource", nil, ""},
		{"Null", `null`, "request body is not a JSON object: expected a FHIR R4 JSON resource", nil, ""},
		{"Number", `9434765919`, "request body is not a JSON object: expected a FHIR R4 JSON resource", nil, "9434765919"},
		{"XML", `<Patient xmlns="http://hl7.org/fhir"/>`, "request body is not a JSON object: expected a FHIR R4 JSON resource", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cr, err := c.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode() = %v, want error", cr)
			}
			var ae *linkbridge.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Decode() error %T %v, want *linkbridge.Error", err, err)
			}
			if ae.Code != linkbridge.EINVALID {
				t.Errorf("Code = %q, want %q", ae.Code, linkbridge.EINVALID)
			}
			if tt.name == "TooDeep" {
				if !strings.HasPrefix(ae.Message, tt.wantMsg) {
					t.Errorf("Message = %q, want prefix %q", ae.Message, tt.wantMsg)
				}
			} else if ae.Message != tt.wantMsg {
				t.Errorf("Message = %q, want %q", ae.Message, tt.wantMsg)
			}
			if tt.wantExpr != nil {
				got := slices.Sorted(slices.Values(ae.Expression))
				if diff := cmp.Diff(tt.wantExpr, got); diff != "" {
					t.Errorf("Expression mismatch (-want +got):\n%s", diff)
				}
			} else if tt.name != "TooDeep" && len(ae.Expression) != 0 {
				t.Errorf("Expression = %q, want none", ae.Expression)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q leaks input value %q", err, tt.secret)
			}
			var ire *fhirjson.InvalidResourceError
			if errors.As(err, &ire) {
				t.Errorf("structural error is an *InvalidResourceError")
			}
		})
	}
}

func issue(diag string, expr ...string) *oopb.OperationOutcome_Issue {
	is := &oopb.OperationOutcome_Issue{
		Severity:    &oopb.OperationOutcome_Issue_SeverityCode{Value: cpb.IssueSeverityCode_ERROR},
		Code:        &oopb.OperationOutcome_Issue_CodeType{Value: cpb.IssueTypeCode_VALUE},
		Diagnostics: &dpb.String{Value: diag},
	}
	for _, x := range expr {
		is.Expression = append(is.Expression, &dpb.String{Value: x})
	}
	return is
}

// TestDecodeValidationErrors pins the issues google/fhir v0.7.4 reports for
// resources that parse but break FHIR rules.
func TestDecodeValidationErrors(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	tests := []struct {
		name       string
		in         string
		wantIssues []*oopb.OperationOutcome_Issue
		wantApp    *linkbridge.Error
	}{
		{
			name: "MissingStatusAndIntent",
			in:   `{"resourceType":"ServiceRequest","subject":{"reference":"Patient/p1"}}`,
			wantIssues: []*oopb.OperationOutcome_Issue{
				issue(`error at "ServiceRequest": missing required field "status"`, "ServiceRequest"),
				issue(`error at "ServiceRequest": missing required field "intent"`, "ServiceRequest"),
			},
			wantApp: &linkbridge.Error{Code: linkbridge.EINVALID, Message: `missing required field "status" (and 1 more issue)`, Expression: []string{"ServiceRequest"}},
		},
		{
			name: "MissingStatus",
			in:   `{"resourceType":"ServiceRequest","intent":"order","subject":{"reference":"Patient/p1"}}`,
			wantIssues: []*oopb.OperationOutcome_Issue{
				issue(`error at "ServiceRequest": missing required field "status"`, "ServiceRequest"),
			},
			wantApp: &linkbridge.Error{Code: linkbridge.EINVALID, Message: `missing required field "status"`, Expression: []string{"ServiceRequest"}},
		},
		{
			name: "MissingTaskIntent",
			in:   `{"resourceType":"Task","status":"requested"}`,
			wantIssues: []*oopb.OperationOutcome_Issue{
				issue(`error at "Task": missing required field "intent"`, "Task"),
			},
			wantApp: &linkbridge.Error{Code: linkbridge.EINVALID, Message: `missing required field "intent"`, Expression: []string{"Task"}},
		},
		{
			name: "MissingInBundleEntry",
			in:   `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"ServiceRequest","status":"active","intent":"order"}}]}`,
			wantIssues: []*oopb.OperationOutcome_Issue{
				issue(`error at "Bundle.entry[0].resource.serviceRequest": missing required field "subject"`, "Bundle.entry[0].resource.serviceRequest"),
			},
			wantApp: &linkbridge.Error{Code: linkbridge.EINVALID, Message: `missing required field "subject"`, Expression: []string{"Bundle.entry[0].resource.serviceRequest"}},
		},
		{
			name: "BadID",
			in:   `{"resourceType":"Patient","id":"bad id 9434765919"}`,
			wantIssues: []*oopb.OperationOutcome_Issue{
				issue(`error at "Patient.id": invalid Id format`, "Patient.id"),
			},
			wantApp: &linkbridge.Error{Code: linkbridge.EINVALID, Message: "invalid Id format", Expression: []string{"Patient.id"}},
		},
		{
			name: "WrongReferenceType",
			in:   `{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Organization/o1"}}`,
			wantIssues: []*oopb.OperationOutcome_Issue{
				issue(`error at "ServiceRequest.subject": invalid reference to a Organization resource, want Patient, Group, Location, Device`, "ServiceRequest.subject"),
			},
			wantApp: &linkbridge.Error{Code: linkbridge.EINVALID,
				Message:    "invalid reference to a Organization resource, want Patient, Group, Location, Device",
				Expression: []string{"ServiceRequest.subject"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Decode([]byte(tt.in))
			var ire *fhirjson.InvalidResourceError
			if !errors.As(err, &ire) {
				t.Fatalf("Decode() error = %T %v, want *InvalidResourceError", err, err)
			}
			if diff := cmp.Diff(tt.wantIssues, ire.Issues(), protocmp.Transform()); diff != "" {
				t.Errorf("Issues() mismatch (-want +got):\n%s", diff)
			}
			if got := linkbridge.ErrorCode(err); got != linkbridge.EINVALID {
				t.Errorf("ErrorCode() = %q, want %q", got, linkbridge.EINVALID)
			}
			var ae *linkbridge.Error
			if !errors.As(err, &ae) {
				t.Fatalf("errors.As(*linkbridge.Error) = false")
			}
			if diff := cmp.Diff(tt.wantApp, ae); diff != "" {
				t.Errorf("unwrapped *linkbridge.Error mismatch (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), "9434765919") {
				t.Errorf("Error() = %q leaks an input value", err)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	for _, in := range []string{patientJSON, serviceRequestJSON, taskJSON, string(mustReadCorpus(t, referralBundleFile))} {
		first := mustDecode(t, c, []byte(in))
		name := fhirjson.Resource(first).ProtoReflect().Descriptor().Name()
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			out, err := c.Encode(first)
			if err != nil {
				t.Fatalf("Encode(ContainedResource) returned unexpected error: %v", err)
			}
			bare, err := c.Encode(fhirjson.Resource(first))
			if err != nil {
				t.Fatalf("Encode(bare resource) returned unexpected error: %v", err)
			}
			if string(out) != string(bare) {
				t.Errorf("Encode(ContainedResource) = %s\nEncode(bare) = %s\nwant equal", out, bare)
			}
			if diff := cmp.Diff(normJSON(t, []byte(in)), normJSON(t, out)); diff != "" {
				t.Errorf("Encode(Decode(in)) differs from in (-in +out):\n%s", diff)
			}
			second := mustDecode(t, c, out)
			if diff := cmp.Diff(first, second, protocmp.Transform()); diff != "" {
				t.Errorf("Decode(Encode(x)) mismatch (-first +second):\n%s", diff)
			}
			fhirschema.Validate(t, out)
			if strings.ContainsAny(string(out), "\n\t") {
				t.Errorf("Encode() is not compact: %s", out)
			}
		})
	}
}

// normJSON re-renders JSON with sorted keys and no insignificant whitespace.
func normJSON(t testing.TB, b []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("normJSON: %v", err)
	}
	out, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatalf("normJSON: %v", err)
	}
	return string(out)
}

// TestEncodeDoesNotModifyInput guards against jsonformat's Marshaller, which
// rewrites typed references (Reference.patient_id) into Reference.uri in the
// message it marshals.
func TestEncodeDoesNotModifyInput(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	cr := mustDecode(t, c, []byte(taskJSON))
	before := proto.Clone(cr)
	if _, err := c.Encode(cr); err != nil {
		t.Fatalf("Encode() returned unexpected error: %v", err)
	}
	if _, err := c.Encode(cr.GetTask()); err != nil {
		t.Fatalf("Encode() returned unexpected error: %v", err)
	}
	if diff := cmp.Diff(before, cr, protocmp.Transform()); diff != "" {
		t.Errorf("Encode() modified its input (-before +after):\n%s", diff)
	}
	if got := cr.GetTask().GetForValue().GetPatientId().GetValue(); got != "p1" {
		t.Errorf("after Encode, GetForValue().GetPatientId() = %q, want p1", got)
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	tests := []struct {
		name string
		in   proto.Message
	}{
		{"Nil", nil},
		{"NilPatient", (*patpb.Patient)(nil)},
		{"EmptyContainedResource", &rpb.ContainedResource{}},
		{"NilContainedResource", (*rpb.ContainedResource)(nil)},
		{"NotAResource", &dpb.String{Value: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := c.Encode(tt.in)
			if err == nil {
				t.Fatalf("Encode() = %s, want error", b)
			}
			if got := linkbridge.ErrorCode(err); got != linkbridge.EINTERNAL {
				t.Errorf("ErrorCode() = %q, want %q", got, linkbridge.EINTERNAL)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	valid := &taskpb.Task{
		Status: &taskpb.Task_StatusCode{Value: cpb.TaskStatusCode_REQUESTED},
		Intent: &taskpb.Task_IntentCode{Value: vspb.TaskIntentValueSet_ORDER},
	}
	noStatus := &srpb.ServiceRequest{
		Intent:  &srpb.ServiceRequest_IntentCode{Value: cpb.RequestIntentCode_ORDER},
		Subject: &dpb.Reference{Reference: &dpb.Reference_PatientId{PatientId: &dpb.ReferenceId{Value: "p1"}}},
	}
	badID := &patpb.Patient{Id: &dpb.Id{Value: "not an id!"}}

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		if err := c.Validate(valid); err != nil {
			t.Errorf("Validate(bare) = %v, want nil", err)
		}
		cr, err := fhirjson.Contain(valid)
		if err != nil {
			t.Fatalf("Contain() returned unexpected error: %v", err)
		}
		if err := c.Validate(cr); err != nil {
			t.Errorf("Validate(contained) = %v, want nil", err)
		}
	})
	t.Run("ErrMissingStatus", func(t *testing.T) {
		t.Parallel()
		err := c.Validate(noStatus)
		var ire *fhirjson.InvalidResourceError
		if !errors.As(err, &ire) {
			t.Fatalf("Validate() = %v, want *InvalidResourceError", err)
		}
		want := []*oopb.OperationOutcome_Issue{issue(`error at "ServiceRequest": missing required field "status"`, "ServiceRequest")}
		if diff := cmp.Diff(want, ire.Issues(), protocmp.Transform()); diff != "" {
			t.Errorf("Issues() mismatch (-want +got):\n%s", diff)
		}
		if got := linkbridge.ErrorCode(err); got != linkbridge.EINVALID {
			t.Errorf("ErrorCode() = %q, want %q", got, linkbridge.EINVALID)
		}
	})
	t.Run("ErrBadID", func(t *testing.T) {
		t.Parallel()
		err := c.Validate(badID)
		if got := linkbridge.ErrorExpression(err); !slices.Equal(got, []string{"Patient.id"}) {
			t.Errorf("ErrorExpression() = %q, want [Patient.id] (err %v)", got, err)
		}
	})
	t.Run("ErrEmptyElement", func(t *testing.T) {
		t.Parallel()
		p := &patpb.Patient{MaritalStatus: &dpb.CodeableConcept{}}
		err := c.Validate(p)
		want := &linkbridge.Error{Code: linkbridge.EINVALID, Message: "empty object: FHIR elements must have a value or children", Expression: []string{"Patient.maritalStatus"}}
		var ae *linkbridge.Error
		if !errors.As(err, &ae) {
			t.Fatalf("Validate() = %v, want *linkbridge.Error", err)
		}
		if diff := cmp.Diff(want, ae); diff != "" {
			t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("ErrEmptyString", func(t *testing.T) {
		t.Parallel()
		p := &patpb.Patient{Name: []*dpb.HumanName{{Given: []*dpb.String{{Value: "Alex"}, {Value: ""}}}}}
		if got := linkbridge.ErrorExpression(c.Validate(p)); !slices.Equal(got, []string{"Patient.name[0].given[1]"}) {
			t.Errorf("ErrorExpression(Validate()) = %q, want [Patient.name[0].given[1]]", got)
		}
	})
	t.Run("ErrNotAResource", func(t *testing.T) {
		t.Parallel()
		err := c.Validate(&dpb.String{Value: "x"})
		if got := linkbridge.ErrorCode(err); got != linkbridge.EINTERNAL {
			t.Errorf("ErrorCode() = %q, want %q (err %v)", got, linkbridge.EINTERNAL, err)
		}
	})
}

func TestContainAndResource(t *testing.T) {
	t.Parallel()
	p := &patpb.Patient{Id: &dpb.Id{Value: "p1"}}
	cr, err := fhirjson.Contain(p)
	if err != nil {
		t.Fatalf("Contain() returned unexpected error: %v", err)
	}
	if cr.GetPatient() != p {
		t.Errorf("Contain(p).GetPatient() is not p")
	}
	if got := fhirjson.Resource(cr); got != proto.Message(p) {
		t.Errorf("Resource() = %v, want p", got)
	}
	if again, err := fhirjson.Contain(cr); err != nil || again != cr {
		t.Errorf("Contain(cr) = %v, %v; want cr, nil", again, err)
	}
	if got := fhirjson.Resource(nil); got != nil {
		t.Errorf("Resource(nil) = %v, want nil", got)
	}
	if _, err := fhirjson.Contain(&dpb.Code{Value: "x"}); err == nil {
		t.Errorf("Contain(non-resource) = nil error, want error")
	}
}

// TestConcurrentUse shares one Codec between goroutines; run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	inputs := [][]byte{[]byte(patientJSON), []byte(serviceRequestJSON), []byte(taskJSON), mustReadCorpus(t, referralBundleFile),
		[]byte(`{"resourceType":"Patient","foo":1}`), []byte(`{"resourceType":"ServiceRequest"}`)}
	// A Task with typed references: the Marshaller would rewrite them.
	// wantShared comes from a separate copy so that shared is first encoded
	// by the goroutines below.
	shared := mustDecode(t, c, []byte(taskJSON))
	wantShared, err := c.Encode(mustDecode(t, c, []byte(taskJSON)))
	if err != nil {
		t.Fatalf("Encode() returned unexpected error: %v", err)
	}
	const goroutines, iterations = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iterations {
				in := inputs[(g+i)%len(inputs)]
				cr, err := c.Decode(in)
				if err != nil {
					if linkbridge.ErrorCode(err) != linkbridge.EINVALID {
						errs <- fmt.Errorf("Decode: unexpected error %v", err)
						return
					}
					continue
				}
				out, err := c.Encode(cr)
				if err != nil {
					errs <- fmt.Errorf("Encode: %v", err)
					return
				}
				if _, err := c.Decode(out); err != nil {
					errs <- fmt.Errorf("Decode(Encode()): %v", err)
					return
				}
				// Every goroutine also encodes one shared message.
				got, err := c.Encode(shared)
				if err != nil {
					errs <- fmt.Errorf("Encode(shared): %v", err)
					return
				}
				if string(got) != string(wantShared) {
					errs <- fmt.Errorf("Encode(shared) = %s, want %s", got, wantShared)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkDecode(b *testing.B) {
	c := mustNew(b)
	in := mustReadCorpus(b, referralBundleFile)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	c := mustNew(b)
	cr := mustDecode(b, c, mustReadCorpus(b, referralBundleFile))
	out, err := c.Encode(cr)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Encode(cr); err != nil {
			b.Fatal(err)
		}
	}
}
