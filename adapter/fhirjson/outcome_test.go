package fhirjson_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	linkbridge "github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirjson/fhirschema"

	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
)

// apiError is the status and HTTP error code an HTTP API (adapter/httpapi)
// answers each error code with: inputs of OutcomeFromError, which takes them
// from its caller.
var apiError = map[string]struct {
	status int
	code   string
}{
	linkbridge.EINVALID:       {http.StatusBadRequest, "REC_BAD_REQUEST"},
	linkbridge.EUNPROCESSABLE: {http.StatusUnprocessableEntity, "REC_UNPROCESSABLE_ENTITY"},
	linkbridge.ENOTFOUND:      {http.StatusNotFound, "REC_NOT_FOUND"},
	linkbridge.ECONFLICT:      {http.StatusConflict, "REC_CONFLICT"},
	linkbridge.EDUPLICATE:     {http.StatusConflict, "REC_CONFLICT"},
	linkbridge.EPRECONDITION:  {http.StatusPreconditionFailed, "REC_PRECONDITION_FAILED"},
	linkbridge.ETOOLARGE:      {http.StatusRequestEntityTooLarge, "REC_PAYLOAD_TOO_LARGE"},
	linkbridge.EUNSUPPORTED:   {http.StatusUnsupportedMediaType, "REC_UNSUPPORTED_MEDIA_TYPE"},
	linkbridge.EMETHOD:        {http.StatusMethodNotAllowed, "REC_METHOD_NOT_ALLOWED"},
	linkbridge.EUNAUTHORIZED:  {http.StatusUnauthorized, "REC_UNAUTHORIZED"},
}

// outcomeFromError is OutcomeFromError called as the API calls it.
func outcomeFromError(err error) *oopb.OperationOutcome {
	ae, ok := apiError[linkbridge.ErrorCode(err)]
	if !ok {
		ae.status, ae.code = http.StatusInternalServerError, "REC_SERVER_ERROR"
	}
	return fhirjson.OutcomeFromError(err, ae.status, ae.code)
}

// outcomeJSON renders one expected error issue.
func outcomeJSON(issueCode, httpCode, diag string, expr ...string) string {
	is := map[string]any{
		"severity":    "error",
		"code":        issueCode,
		"details":     map[string]any{"coding": []any{map[string]any{"system": fhirjson.HTTPErrorCodeSystem, "code": httpCode}}},
		"diagnostics": diag,
	}
	if len(expr) > 0 {
		is["expression"] = expr
	}
	b, err := json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": []any{is}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestOutcomeFromError(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"Invalid", linkbridge.Errorf(linkbridge.EINVALID, "unknown field").At("Patient.foo"),
			outcomeJSON("invalid", "REC_BAD_REQUEST", "unknown field", "Patient.foo")},
		{"Unprocessable", linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject must reference a Patient").At("ServiceRequest.subject"),
			outcomeJSON("processing", "REC_UNPROCESSABLE_ENTITY", "ServiceRequest.subject must reference a Patient", "ServiceRequest.subject")},
		{"NotFound", fmt.Errorf("read task: %w", linkbridge.Errorf(linkbridge.ENOTFOUND, "Task/t1 not found")),
			outcomeJSON("not-found", "REC_NOT_FOUND", "Task/t1 not found")},
		{"Conflict", linkbridge.Errorf(linkbridge.ECONFLICT, "Task cannot move from completed to in-progress").At("Task.status"),
			outcomeJSON("conflict", "REC_CONFLICT", "Task cannot move from completed to in-progress", "Task.status")},
		{"Duplicate", &linkbridge.Error{Code: linkbridge.EDUPLICATE, Message: "the message has already been processed", Existing: "ServiceRequest/sr1"},
			outcomeJSON("duplicate", "REC_CONFLICT", "the message has already been processed")},
		{"Precondition", linkbridge.Errorf(linkbridge.EPRECONDITION, "If-Match does not match the current version"),
			outcomeJSON("conflict", "REC_PRECONDITION_FAILED", "If-Match does not match the current version")},
		{"TooLarge", linkbridge.Errorf(linkbridge.ETOOLARGE, "request body exceeds 1048576 bytes"),
			outcomeJSON("too-long", "REC_PAYLOAD_TOO_LARGE", "request body exceeds 1048576 bytes")},
		{"Unsupported", linkbridge.Errorf(linkbridge.EUNSUPPORTED, "Content-Type must be application/fhir+json"),
			outcomeJSON("not-supported", "REC_UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/fhir+json")},
		{"Method", linkbridge.Errorf(linkbridge.EMETHOD, "DELETE is not allowed on Task"),
			outcomeJSON("not-supported", "REC_METHOD_NOT_ALLOWED", "DELETE is not allowed on Task")},
		{"Unauthorized", linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "missing bearer token"),
			outcomeJSON("login", "REC_UNAUTHORIZED", "missing bearer token")},
		{"InternalAppError", linkbridge.Errorf(linkbridge.EINTERNAL, "sqlite: disk I/O error on NHS 9434765919").At("Patient.identifier"),
			outcomeJSON("exception", "REC_SERVER_ERROR", "Internal error.")},
		{"ForeignError", fmt.Errorf("sqlite: constraint failed for 9434765919"),
			outcomeJSON("exception", "REC_SERVER_ERROR", "Internal error.")},
		{"UnknownCode", linkbridge.Errorf("teapot", "short and stout"),
			outcomeJSON("exception", "REC_SERVER_ERROR", "Internal error.")},
		{"EmptyMessage", &linkbridge.Error{Code: linkbridge.ENOTFOUND},
			outcomeJSON("not-found", "REC_NOT_FOUND", "Not Found")},
		{"Nil", nil,
			`{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"OK"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			oo := outcomeFromError(tt.err)
			if err := c.Validate(oo); err != nil {
				t.Errorf("Validate(outcome) = %v", err)
			}
			got, err := c.Encode(oo)
			if err != nil {
				t.Fatalf("Encode() returned unexpected error: %v", err)
			}
			if diff := cmp.Diff(normJSON(t, []byte(tt.want)), normJSON(t, got)); diff != "" {
				t.Errorf("OutcomeFromError(%v) mismatch (-want +got):\n%s", tt.err, diff)
			}
			fhirschema.Validate(t, got)
			if strings.Contains(string(got), "9434765919") {
				t.Errorf("outcome %s leaks internal detail", got)
			}
		})
	}
}

func TestOutcomeFromInvalidResourceError(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	_, err := c.Decode([]byte(`{"resourceType":"ServiceRequest","subject":{"reference":"Organization/o1"}}`))
	if err == nil {
		t.Fatal("Decode() = nil error, want *InvalidResourceError")
	}
	got, mErr := c.Encode(outcomeFromError(fmt.Errorf("intake: %w", err)))
	if mErr != nil {
		t.Fatalf("Encode() returned unexpected error: %v", mErr)
	}
	want := `{"resourceType":"OperationOutcome","issue":[
		{"severity":"error","code":"required",
		 "details":{"coding":[{"system":"https://fhir.nhs.uk/Codesystem/http-error-codes","code":"REC_BAD_REQUEST"}]},
		 "diagnostics":"error at \"ServiceRequest\": missing required field \"status\"","expression":["ServiceRequest"]},
		{"severity":"error","code":"required",
		 "details":{"coding":[{"system":"https://fhir.nhs.uk/Codesystem/http-error-codes","code":"REC_BAD_REQUEST"}]},
		 "diagnostics":"error at \"ServiceRequest\": missing required field \"intent\"","expression":["ServiceRequest"]},
		{"severity":"error","code":"value",
		 "details":{"coding":[{"system":"https://fhir.nhs.uk/Codesystem/http-error-codes","code":"REC_BAD_REQUEST"}]},
		 "diagnostics":"error at \"ServiceRequest.subject\": invalid reference to a Organization resource, want Patient, Group, Location, Device",
		 "expression":["ServiceRequest.subject"]}]}`
	if diff := cmp.Diff(normJSON(t, []byte(want)), normJSON(t, got)); diff != "" {
		t.Errorf("outcome mismatch (-want +got):\n%s", diff)
	}
	fhirschema.Validate(t, got)
	// The google/fhir issues themselves are left untouched.
	var ire *fhirjson.InvalidResourceError
	if !errors.As(err, &ire) {
		t.Fatalf("want *InvalidResourceError, got %T", err)
	}
	if got := ire.Issues()[0].GetCode().GetValue().String(); got != "VALUE" {
		t.Errorf("Issues()[0].Code = %s, want VALUE (unmodified)", got)
	}
	if ire.Issues()[0].GetDetails() != nil {
		t.Errorf("Issues()[0].Details was modified")
	}
}

func TestInformationOutcome(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	got, err := c.Encode(fhirjson.InformationOutcome("Referral accepted."))
	if err != nil {
		t.Fatalf("Encode() returned unexpected error: %v", err)
	}
	want := `{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational","diagnostics":"Referral accepted."}]}`
	if diff := cmp.Diff(normJSON(t, []byte(want)), normJSON(t, got)); diff != "" {
		t.Errorf("InformationOutcome mismatch (-want +got):\n%s", diff)
	}
	fhirschema.Validate(t, got)
}

// TestOutcomeMatchesBaRSExamples compares our outcomes with the published
// BaRS receiver examples in shared/fhir-examples, ignoring id, meta and
// diagnostics wording.
func TestOutcomeMatchesBaRSExamples(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "..", "shared", "fhir-examples", "bars", "OperationOutcome", "REC")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("BaRS examples not available: %v", err)
	}
	c := mustNew(t)
	tests := []struct {
		file string
		err  error
	}{
		{"400-REC_BAD_REQUEST-invalid.json", linkbridge.Errorf(linkbridge.EINVALID, "x")},
		{"404-REC_NOT_FOUND-not-found.json", linkbridge.Errorf(linkbridge.ENOTFOUND, "x")},
		{"409-REC_CONFLICT-duplicate.json", linkbridge.Errorf(linkbridge.EDUPLICATE, "x")},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(filepath.Join(dir, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		delete(want, "id")
		delete(want, "meta")
		for _, is := range want["issue"].([]any) {
			is.(map[string]any)["diagnostics"] = "x"
		}
		got, err := c.Encode(outcomeFromError(tt.err))
		if err != nil {
			t.Fatal(err)
		}
		wantJSON, _ := json.Marshal(want)
		if diff := cmp.Diff(normJSON(t, wantJSON), normJSON(t, got)); diff != "" {
			t.Errorf("%s: mismatch (-BaRS +ours):\n%s", tt.file, diff)
		}
	}
}
