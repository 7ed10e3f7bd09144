package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// TestErrors sends requests the API must refuse and checks the status, the
// OperationOutcome (issue code, the element named) and that nothing was
// stored.
func TestErrors(t *testing.T) {
	t.Parallel()
	const maxBody = 16 << 10
	ts := newTestServer(t, func(s *httpapi.Server) { s.MaxBodyBytes = maxBody })
	// One referral held, so that "nothing stored" is checked against a
	// non-empty store.
	bundle(t, ts.post("", mustRead(t, fixReferralTxn), nil), "transaction-response")
	before := ts.counts()

	big := append([]byte(`{"resourceType":"ServiceRequest","note":[{"text":"`), bytes.Repeat([]byte("x"), maxBody)...)
	big = append(big, `"}]}`...)

	tests := []struct {
		name   string
		method string
		path   string
		body   []byte
		h      hdr
		status int
		code   string // OperationOutcome.issue.code
		expr   string // named in expression or diagnostics
	}{
		{"UnsupportedMediaType", http.MethodPost, "/ServiceRequest", mustRead(t, fixSRContained), hdr{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, "not-supported", ""},
		{"JSONBodyLabelledXML", http.MethodPost, "", mustRead(t, fixReferralTxn), hdr{"Content-Type": "application/fhir+xml"}, http.StatusBadRequest, "invalid", ""},
		{"MalformedXML", http.MethodPost, "/ServiceRequest", []byte(`<ServiceRequest xmlns="http://hl7.org/fhir"><status value="active"/>`), hdr{"Content-Type": "application/fhir+xml"}, http.StatusBadRequest, "invalid", ""},
		{"UnknownXMLElement", http.MethodPost, "/ServiceRequest", []byte(`<ServiceRequest xmlns="http://hl7.org/fhir"><PatientInstruction value="x"/></ServiceRequest>`), hdr{"Content-Type": "text/xml"}, http.StatusBadRequest, "invalid", "ServiceRequest.PatientInstruction"},
		{"XMLDoctype", http.MethodPost, "/Task", []byte(`<?xml version="1.0"?><!DOCTYPE Task [<!ENTITY x SYSTEM "file:///etc/passwd">]><Task xmlns="http://hl7.org/fhir"/>`), hdr{"Content-Type": "application/xml"}, http.StatusBadRequest, "invalid", ""},
		{"NotAcceptable", http.MethodGet, "/Task/does-not-exist", nil, hdr{"Accept": "text/plain"}, http.StatusNotAcceptable, "not-supported", "Accept"},
		{"NotAcceptableFormat", http.MethodGet, "/metadata?_format=ttl", nil, nil, http.StatusNotAcceptable, "not-supported", "_format"},
		{"NotAcceptableBeforeBody", http.MethodPost, "/ServiceRequest", mustRead(t, fixSRContained), hdr{"Accept": "application/pdf"}, http.StatusNotAcceptable, "not-supported", "Accept"},
		{"NoContentType", http.MethodPost, "/Task", mustRead(t, fixTaskContained), hdr{"Content-Type": ""}, http.StatusUnsupportedMediaType, "not-supported", ""},
		{"TooLarge", http.MethodPost, "/ServiceRequest", big, nil, http.StatusRequestEntityTooLarge, "too-long", ""},
		{"TooLargeMessage", http.MethodPost, "/$process-message", big, barsHeaders(reqID1, corrID1), http.StatusRequestEntityTooLarge, "too-long", ""},
		{"UnknownID", http.MethodGet, "/Task/does-not-exist", nil, nil, http.StatusNotFound, "not-found", ""},
		{"UnknownIDHistory", http.MethodGet, "/ServiceRequest/does-not-exist/_history", nil, nil, http.StatusNotFound, "not-found", ""},
		{"UnknownVersion", http.MethodGet, "/Patient/does-not-exist/_history/1", nil, nil, http.StatusNotFound, "not-found", ""},
		{"BadVersion", http.MethodGet, "/Patient/x/_history/zero", nil, nil, http.StatusNotFound, "not-found", ""},
		{"UnknownType", http.MethodGet, "/Goal/1", nil, nil, http.StatusNotFound, "not-found", ""},
		{"UnknownEndpoint", http.MethodGet, "/Task/a/b/c/d", nil, nil, http.StatusNotFound, "not-found", ""},
		{"DeleteNotAllowed", http.MethodDelete, "/Task/does-not-exist", nil, nil, http.StatusMethodNotAllowed, "not-supported", ""},
		{"PatchNotAllowed", http.MethodPatch, "/ServiceRequest/x", []byte(`[]`), hdr{"Content-Type": "application/json-patch+json"}, http.StatusMethodNotAllowed, "not-supported", ""},
		{"PutPatientNotAllowed", http.MethodPut, "/Patient/x", []byte(`{"resourceType":"Patient","id":"x"}`), nil, http.StatusMethodNotAllowed, "not-supported", ""},
		{"UnparsableJSON", http.MethodPost, "/ServiceRequest", []byte(`{"resourceType":"ServiceRequest",`), nil, http.StatusBadRequest, "invalid", ""},
		{"NotAnObject", http.MethodPost, "", []byte(`[1,2,3]`), nil, http.StatusBadRequest, "invalid", ""},
		{"EmptyBody", http.MethodPost, "/Task", []byte{}, nil, http.StatusBadRequest, "invalid", ""},
		{"UnknownResourceType", http.MethodPost, "", []byte(`{"resourceType":"Referral"}`), nil, http.StatusBadRequest, "invalid", ""},
		{"UnknownElement", http.MethodPost, "/ServiceRequest", mustRead(t, fixUnknownElem), nil, http.StatusBadRequest, "invalid", "ServiceRequest.PatientInstruction"},
		{"WrongJSONType", http.MethodPost, "/ServiceRequest", []byte(`{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"},"basedOn":{"reference":"CarePlan/1"}}`), nil, http.StatusBadRequest, "invalid", "basedOn"},
		{"MissingRequiredElement", http.MethodPost, "/ServiceRequest", []byte(`{"resourceType":"ServiceRequest","intent":"order","subject":{"reference":"Patient/1"}}`), nil, http.StatusBadRequest, "required", "status"},
		{"WrongResourceForEndpoint", http.MethodPost, "/ServiceRequest", mustRead(t, fixTaskContained), nil, http.StatusBadRequest, "invalid", "Task"},
		{"NotATransaction", http.MethodPost, "", mustRead(t, fixSRContained), nil, http.StatusBadRequest, "invalid", "ServiceRequest"},
		{"BatchNotTransaction", http.MethodPost, "", bytes.Replace(mustRead(t, fixRoleTxn), []byte(`"transaction"`), []byte(`"batch"`), 1), nil, http.StatusBadRequest, "invalid", "Bundle.type"},
		{"BusinessRuleNHSNumber", http.MethodPost, "/ServiceRequest", mustRead(t, fixBadNHS), nil, http.StatusUnprocessableEntity, "processing", "Patient.identifier[0].value"},
		{"BusinessRuleTaskIntent", http.MethodPost, "/Task", mustRead(t, fixTaskPlan), nil, http.StatusUnprocessableEntity, "processing", "Task.intent"},
		{"BusinessRuleNotSocialPrescribing", http.MethodPost, "/ServiceRequest", mustRead(t, corpusFile("invalid", "servicerequest-not-social-prescribing.json")), nil, http.StatusUnprocessableEntity, "processing", "ServiceRequest.code"},
		{"BusinessRuleBadSNOMED", http.MethodPost, "/ServiceRequest", mustRead(t, corpusFile("invalid", "servicerequest-bad-snomed.json")), nil, http.StatusUnprocessableEntity, "processing", "ServiceRequest.code.coding[0].code"},
		{"BusinessRuleSubjectNotHeld", http.MethodPost, "/ServiceRequest", []byte(strings.Replace(string(mustRead(t, fixSRByNHS)),
			`"subject": {"type": "Patient", "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "999 039 5969"}}`,
			`"subject": {"reference": "Patient/not-held-here"}`, 1)), nil, http.StatusUnprocessableEntity, "processing", "ServiceRequest.subject"},
		{"MessageHeaderNotFirst", http.MethodPost, "/$process-message", mustRead(t, corpusFile("invalid", "message-header-not-first.json")), barsHeaders(reqID2, corrID1), http.StatusBadRequest, "invalid", "Bundle.entry[0]"},
		{"ConditionalCreateBadQuery", http.MethodPost, "/ServiceRequest", mustRead(t, fixSRContained), hdr{"If-None-Exist": "_count=%zz"}, http.StatusBadRequest, "invalid", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(tt.method, tt.path, tt.body, tt.h)
			oo := wantOutcome(t, r, tt.status, tt.code, tt.expr)
			for _, is := range oo.GetIssue() {
				if fhirmap.Code(is.GetSeverity()) != "error" {
					t.Errorf("issue severity = %q, want error", fhirmap.Code(is.GetSeverity()))
				}
				if is.GetDiagnostics().GetValue() == "" {
					t.Errorf("issue has no diagnostics (BaRS: concise diagnostics always)")
				}
				if c := is.GetDetails().GetCoding(); len(c) == 0 || !strings.HasPrefix(c[0].GetCode().GetValue(), "REC_") {
					t.Errorf("issue details = %v, want a BaRS REC_ code", c)
				}
				// Never echo NHS numbers back in errors.
				if strings.Contains(is.GetDiagnostics().GetValue(), "3478526985") {
					t.Errorf("diagnostics repeat the NHS number: %q", is.GetDiagnostics().GetValue())
				}
			}
		})
	}
	if after := ts.counts(); after != before {
		t.Errorf("refused requests stored resources: %+v → %+v", before, after)
	}
}

func corpusFile(parts ...string) string {
	return strings.Join(append([]string{corpusDir}, parts...), "/")
}
