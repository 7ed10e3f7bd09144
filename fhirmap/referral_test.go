package fhirmap_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirxml"
	"github.com/linkbridge/linkbridge/fhirmap"

	orgpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/organization_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

var update = flag.Bool("update", false, "rewrite the golden files under fhirmap/testdata from the current MapReferral and CaseView output")

// goldenReferral is what a golden file records about one mapped request:
// the domain records and which entry plays which part, or the error.
type goldenReferral struct {
	Person         *linkbridge.Person   `json:"person,omitempty"`
	Referral       *linkbridge.Referral `json:"referral,omitempty"`
	Patient        string               `json:"patientEntry,omitempty"`
	SubjectID      string               `json:"subjectId,omitempty"`
	ServiceRequest string               `json:"serviceRequestEntry,omitempty"`
	Task           string               `json:"taskEntry,omitempty"`
	Entries        []goldenEntry        `json:"entries,omitempty"`
	Error          *goldenError         `json:"error,omitempty"`
}

type goldenEntry struct {
	Path      string `json:"path"`
	Type      string `json:"type"`
	FullURL   string `json:"fullUrl,omitempty"`
	Contained bool   `json:"contained,omitempty"`
}

type goldenError struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	Expression []string `json:"expression,omitempty"`
}

func pathOf(e *fhirmap.Entry) string {
	if e == nil {
		return ""
	}
	return e.Path
}

// TestMapReferralGolden maps each fhirmap/testdata/*.input.json (a
// transaction Bundle, a message Bundle, or a lone ServiceRequest or Task)
// and compares the result with *.golden.json. Run with -update to rewrite
// the goldens, then review the diff.
func TestMapReferralGolden(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.input.json files")
	}
	// A referral in FHIR XML is read through adapter/fhirxml, as the API
	// reads it.
	xmlInputs, _ := filepath.Glob(filepath.Join("testdata", "*.input.xml"))
	for _, in := range append(inputs, xmlInputs...) {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(in), ".input.json"), ".input.xml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got goldenReferral
			body := mustReadFile(t, in)
			if strings.HasSuffix(in, ".xml") {
				if body, err = fhirxml.ToJSON(body); err != nil {
					t.Fatalf("fhirxml.ToJSON() returned unexpected error: %v", err)
				}
			}
			cr, err := c.Decode(body)
			if err != nil {
				t.Fatalf("Decode() returned unexpected error: %v", err)
			}
			entries, err := entriesOf(cr)
			var ref *fhirmap.Referral
			if err == nil {
				ref, err = fhirmap.MapReferral(entries)
			}
			if err != nil {
				var le *linkbridge.Error
				if !errors.As(err, &le) {
					t.Fatalf("error is not a *linkbridge.Error: %v", err)
				}
				got.Error = &goldenError{Code: le.Code, Message: le.Message, Expression: le.Expression}
			} else {
				got.Person, got.Referral = &ref.Person, &ref.Referral
				got.Patient, got.SubjectID = pathOf(ref.Patient), ref.SubjectID
				got.ServiceRequest, got.Task = pathOf(ref.ServiceRequest), pathOf(ref.Task)
				for _, e := range ref.Entries {
					got.Entries = append(got.Entries, goldenEntry{Path: e.Path, Type: fhirmap.TypeName(e.Resource), FullURL: e.FullURL, Contained: e.Contained})
				}
			}
			gotJSON, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON = append(gotJSON, '\n')
			goldenPath := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(goldenPath, gotJSON, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("read golden (run go test ./fhirmap -run TestMapReferralGolden -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(gotJSON)); diff != "" {
				t.Errorf("MapReferral(%s) mismatch (-want +got); rerun with -update if the change is intended:\n%s", in, diff)
			}
		})
	}
}

// TestMapReferralFaults builds variants of the base referral transaction,
// each breaking one rule, and checks the error code and the element named.
func TestMapReferralFaults(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	base := mustReadFile(t, baseReferralFile)
	const srURL = "urn:uuid:3741a7a4-3a54-4ec2-b2d0-6b3697f7d130"

	tests := []struct {
		name     string
		mutate   func(t *testing.T, b jsonDoc)
		wantCode string
		wantExpr string
		wantMsg  string // substring of the message
	}{
		{
			name: "ErrTaskForOtherHeldPatient",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["for"] = jsonDoc{"reference": "Patient/someone-else"}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.for", wantMsg: "subject",
		},
		{
			name: "ErrTaskForOtherNHSNumber",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["for"] = jsonDoc{"identifier": jsonDoc{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "4010232137"}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.for", wantMsg: "subject",
		},
		{
			name: "ErrTaskOwnerIsNotPerformer",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["owner"] = jsonDoc{"type": "Organization", "identifier": jsonDoc{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y09999"}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.owner", wantMsg: "performer",
		},
		{
			name: "ErrSecondUnreferencedPatient",
			mutate: func(t *testing.T, b jsonDoc) {
				b["entry"] = append(b["entry"].([]any), jsonDoc{
					"fullUrl":  "urn:uuid:5b1e2f3a-0000-4000-8000-000000000001",
					"resource": jsonDoc{"resourceType": "Patient", "identifier": []any{jsonDoc{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "4010232137"}}},
					"request":  jsonDoc{"method": "POST", "url": "Patient"},
				})
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Bundle.entry[3]", wantMsg: "one Patient",
		},
		{
			name: "ErrNoNHSNumber",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Patient")["identifier"] = []any{jsonDoc{"system": "https://fhir.example-trust.nhs.uk/Id/mrn", "value": "X1"}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Patient.identifier", wantMsg: "NHS number",
		},
		{
			name: "ErrNoPatientIdentifierAtAll",
			mutate: func(t *testing.T, b jsonDoc) {
				delete(bundleResource(t, b, "Patient"), "identifier")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Patient.identifier",
		},
		{
			name: "ErrNHSNumberFailsModulus11",
			mutate: func(t *testing.T, b jsonDoc) {
				id := bundleResource(t, b, "Patient")["identifier"].([]any)[0].(jsonDoc)
				id["value"] = "3478526985"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Patient.identifier[0].value", wantMsg: "Modulus 11",
		},
		{
			name: "ErrNHSNumberSecondIdentifier",
			mutate: func(t *testing.T, b jsonDoc) {
				p := bundleResource(t, b, "Patient")
				p["identifier"] = []any{
					jsonDoc{"system": "https://fhir.example-trust.nhs.uk/Id/mrn", "value": "X1"},
					jsonDoc{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "943476591"},
				}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Patient.identifier[1].value", wantMsg: "10 digits",
		},
		{
			name: "ErrSubjectNHSNumberFailsModulus11",
			mutate: func(t *testing.T, b jsonDoc) {
				removeEntries(b, "Patient")
				sr := bundleResource(t, b, "ServiceRequest")
				sr["subject"] = jsonDoc{"type": "Patient", "identifier": jsonDoc{"system": linkbridge.NHSNumberSystem, "value": "3478526985"}}
				delete(bundleResource(t, b, "Task"), "for")
				bundleResource(t, b, "Task")["for"] = sr["subject"]
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.subject.identifier.value",
		},
		{
			name: "ErrBadSNOMEDCode",
			mutate: func(t *testing.T, b jsonDoc) {
				sr := bundleResource(t, b, "ServiceRequest")
				sr["code"].(jsonDoc)["coding"].([]any)[0].(jsonDoc)["code"] = "871731000000107"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.code.coding[0].code", wantMsg: "Verhoeff",
		},
		{
			name: "ErrBadSNOMEDReason",
			mutate: func(t *testing.T, b jsonDoc) {
				sr := bundleResource(t, b, "ServiceRequest")
				sr["reasonCode"].([]any)[0].(jsonDoc)["coding"].([]any)[0].(jsonDoc)["code"] = "267076003"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.reasonCode[0].coding[0].code",
		},
		{
			name: "ErrBadSNOMEDInPatient",
			mutate: func(t *testing.T, b jsonDoc) {
				p := bundleResource(t, b, "Patient")
				p["maritalStatus"] = jsonDoc{"coding": []any{jsonDoc{"system": linkbridge.SNOMEDSystem, "code": "12345"}}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Patient.maritalStatus.coding[0].code",
		},
		{
			name: "ErrNoSocialPrescribingCode",
			mutate: func(t *testing.T, b jsonDoc) {
				sr := bundleResource(t, b, "ServiceRequest")
				sr["code"] = jsonDoc{"coding": []any{jsonDoc{"system": linkbridge.SNOMEDSystem, "code": "306238000", "display": "Referral to Social Services"}}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.code", wantMsg: "871731000000106",
		},
		{
			name: "ErrSocialPrescribingCodeWrongSystem",
			mutate: func(t *testing.T, b jsonDoc) {
				sr := bundleResource(t, b, "ServiceRequest")
				sr["code"] = jsonDoc{"coding": []any{jsonDoc{"system": "http://read.info/ctv3", "code": "871731000000106"}}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.code",
		},
		{
			name: "ErrMalformedODSCode",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "ServiceRequest")["requester"].(jsonDoc)["identifier"].(jsonDoc)["value"] = "A81-001"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.requester.identifier.value",
		},
		{
			name: "ErrNoIdentifier",
			mutate: func(t *testing.T, b jsonDoc) {
				delete(bundleResource(t, b, "ServiceRequest"), "identifier")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.identifier",
		},
		{
			name: "ErrIdentifierWithoutValue",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "ServiceRequest")["identifier"] = []any{jsonDoc{"system": "https://fhir.example-gp.nhs.uk/Id/referral"}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.identifier",
		},
		{
			name: "ErrServiceRequestNotActive",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "ServiceRequest")["status"] = "draft"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.status",
		},
		{
			name: "ErrServiceRequestIntentProposal",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "ServiceRequest")["intent"] = "proposal"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.intent",
		},
		{
			name: "ErrNoAuthoredOn",
			mutate: func(t *testing.T, b jsonDoc) {
				delete(bundleResource(t, b, "ServiceRequest"), "authoredOn")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.authoredOn",
		},
		{
			name: "ErrSubjectIsGroup",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "ServiceRequest")["subject"] = jsonDoc{"reference": "Group/g1"}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.subject",
		},
		{
			name: "ErrSubjectUnresolved",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "ServiceRequest")["subject"] = jsonDoc{"reference": "urn:uuid:00000000-0000-4000-8000-0000000000ff"}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest.subject",
		},
		{
			name: "ErrNoServiceRequest",
			mutate: func(t *testing.T, b jsonDoc) {
				removeEntries(b, "ServiceRequest")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest",
		},
		{
			name: "ErrTwoServiceRequests",
			mutate: func(t *testing.T, b jsonDoc) {
				sr := bundleResource(t, b, "ServiceRequest")
				addEntry(b, "urn:uuid:00000000-0000-4000-8000-0000000000bb", sr)
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "ServiceRequest", wantMsg: "Bundle.entry[3]",
		},
		{
			name: "ErrTwoTasks",
			mutate: func(t *testing.T, b jsonDoc) {
				addEntry(b, "urn:uuid:00000000-0000-4000-8000-0000000000cc", bundleResource(t, b, "Task"))
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task",
		},
		{
			name: "ErrTaskIntentPlan",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["intent"] = "plan"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.intent", wantMsg: "plan",
		},
		{
			name: "ErrTaskCodeNotFulfill",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["code"] = jsonDoc{"coding": []any{jsonDoc{"system": fhirmap.TaskCodeSystem, "code": "approve"}}}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.code",
		},
		{
			name: "ErrTaskStatusAccepted",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["status"] = "accepted"
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.status",
		},
		{
			name: "ErrTaskFocusNotResolving",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["focus"] = jsonDoc{"reference": "urn:uuid:00000000-0000-4000-8000-0000000000dd"}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.focus",
		},
		{
			name: "ErrTaskFocusIsPatient",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["focus"] = bundleResource(t, b, "Task")["for"]
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.focus",
		},
		{
			name: "ErrTaskNoFocus",
			mutate: func(t *testing.T, b jsonDoc) {
				delete(bundleResource(t, b, "Task"), "focus")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.focus",
		},
		{
			name: "ErrTaskNoFor",
			mutate: func(t *testing.T, b jsonDoc) {
				delete(bundleResource(t, b, "Task"), "for")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.for",
		},
		{
			name: "ErrTaskForOtherResource",
			mutate: func(t *testing.T, b jsonDoc) {
				bundleResource(t, b, "Task")["for"] = jsonDoc{"reference": srURL}
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.for",
		},
		{
			name: "ErrTaskNoAuthoredOn",
			mutate: func(t *testing.T, b jsonDoc) {
				delete(bundleResource(t, b, "Task"), "authoredOn")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.authoredOn",
		},
		{
			name: "ErrTaskNoRequester",
			mutate: func(t *testing.T, b jsonDoc) {
				delete(bundleResource(t, b, "Task"), "requester")
			},
			wantCode: linkbridge.EUNPROCESSABLE, wantExpr: "Task.requester",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := mustParseJSON(t, base)
			tt.mutate(t, doc)
			entries := mustEntries(t, c, mustMarshalJSON(t, doc))
			ref, err := fhirmap.MapReferral(entries)
			if err == nil {
				t.Fatalf("MapReferral() = %+v, want an error", ref.Referral)
			}
			var le *linkbridge.Error
			if !errors.As(err, &le) {
				t.Fatalf("MapReferral() error %v is not a *linkbridge.Error", err)
			}
			if le.Code != tt.wantCode {
				t.Errorf("code = %q, want %q (err %v)", le.Code, tt.wantCode, err)
			}
			if len(le.Expression) == 0 || le.Expression[0] != tt.wantExpr {
				t.Errorf("expression = %q, want [%q] (err %v)", le.Expression, tt.wantExpr, err)
			}
			if !strings.Contains(le.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to mention %q", le.Message, tt.wantMsg)
			}
			// Messages reach callers and logs: never the NHS number.
			for _, nhs := range []string{"3478526985", "9434765919", "943476591"} {
				if strings.Contains(le.Message, nhs) {
					t.Errorf("message %q repeats an NHS number", le.Message)
				}
			}
		})
	}
}

func TestMapReferralNormalises(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)

	t.Run("OKLowerCaseODSSystem", func(t *testing.T) {
		t.Parallel()
		doc := mustParseJSON(t, mustReadFile(t, baseReferralFile))
		addEntry(doc, "urn:uuid:00000000-0000-4000-8000-0000000000a1", jsonDoc{
			"resourceType": "Organization", "name": "Example GP Practice",
			"identifier": []any{jsonDoc{"system": "https://fhir.nhs.uk/id/ods-organization-code", "value": " a81001 "}},
		})
		bundleResource(t, doc, "ServiceRequest")["requester"] = jsonDoc{"reference": "urn:uuid:00000000-0000-4000-8000-0000000000a1"}
		bundleResource(t, doc, "ServiceRequest")["performer"] = []any{jsonDoc{"identifier": jsonDoc{"system": "https://fhir.nhs.uk/id/ods-organization-code", "value": "y02662"}}}
		gp := bundleResource(t, doc, "Patient")["generalPractitioner"].([]any)[0].(jsonDoc)["identifier"].(jsonDoc)
		gp["system"], gp["value"] = "https://fhir.nhs.uk/id/ods-organization-code", "a81001"

		entries := mustEntries(t, c, mustMarshalJSON(t, doc))
		ref, err := fhirmap.MapReferral(entries)
		if err != nil {
			t.Fatalf("MapReferral() returned unexpected error: %v", err)
		}
		if ref.Referral.ReferrerODS != "A81001" || ref.Referral.ServiceODS != "Y02662" || ref.Person.GPODS != "A81001" {
			t.Errorf("ODS codes = referrer %q, service %q, GP %q; want A81001, Y02662, A81001",
				ref.Referral.ReferrerODS, ref.Referral.ServiceODS, ref.Person.GPODS)
		}
		// The resources to store carry the canonical system and upper case.
		for _, e := range ref.Entries {
			if o, ok := e.Resource.(*orgpb.Organization); ok && len(o.GetIdentifier()) > 0 {
				id := o.GetIdentifier()[0]
				if id.GetSystem().GetValue() != linkbridge.ODSSystem || id.GetValue().GetValue() != "A81001" {
					t.Errorf("Organization identifier = %s|%s, want %s|A81001", id.GetSystem().GetValue(), id.GetValue().GetValue(), linkbridge.ODSSystem)
				}
			}
		}
		sr := ref.ServiceRequest.Resource.(*srpb.ServiceRequest)
		if got := sr.GetPerformer()[0].GetIdentifier().GetSystem().GetValue(); got != linkbridge.ODSSystem {
			t.Errorf("performer identifier system = %q, want %q", got, linkbridge.ODSSystem)
		}
		p := ref.Patient.Resource.(*patpb.Patient)
		if got := p.GetGeneralPractitioner()[0].GetIdentifier(); got.GetSystem().GetValue() != linkbridge.ODSSystem || got.GetValue().GetValue() != "A81001" {
			t.Errorf("generalPractitioner identifier = %s|%s", got.GetSystem().GetValue(), got.GetValue().GetValue())
		}
	})

	t.Run("OKNHSNumberWithSpaces", func(t *testing.T) {
		t.Parallel()
		doc := mustParseJSON(t, mustReadFile(t, baseReferralFile))
		bundleResource(t, doc, "Patient")["identifier"].([]any)[0].(jsonDoc)["value"] = "943-476 5919"
		ref, err := fhirmap.MapReferral(mustEntries(t, c, mustMarshalJSON(t, doc)))
		if err != nil {
			t.Fatalf("MapReferral() returned unexpected error: %v", err)
		}
		if ref.Person.NHSNumber != "9434765919" {
			t.Errorf("Person.NHSNumber = %q, want 9434765919", ref.Person.NHSNumber)
		}
		if got := ref.Patient.Resource.(*patpb.Patient).GetIdentifier()[0].GetValue().GetValue(); got != "9434765919" {
			t.Errorf("stored Patient identifier = %q, want normalised 9434765919", got)
		}
	})

	t.Run("OKReceivedStoredAsRequested", func(t *testing.T) {
		t.Parallel()
		doc := mustParseJSON(t, mustReadFile(t, baseReferralFile))
		bundleResource(t, doc, "Task")["status"] = "received"
		ref, err := fhirmap.MapReferral(mustEntries(t, c, mustMarshalJSON(t, doc)))
		if err != nil {
			t.Fatalf("MapReferral() returned unexpected error: %v", err)
		}
		if ref.Referral.Status != linkbridge.TaskRequested {
			t.Errorf("Referral.Status = %q, want requested", ref.Referral.Status)
		}
		if got := fhirmap.TaskStatusOf(ref.Task.Resource.(*taskpb.Task)); got != linkbridge.TaskRequested {
			t.Errorf("stored Task.status = %q, want requested (received is never emitted)", got)
		}
	})

	t.Run("OKDraftTask", func(t *testing.T) {
		t.Parallel()
		doc := mustParseJSON(t, mustReadFile(t, baseReferralFile))
		bundleResource(t, doc, "Task")["status"] = "draft"
		ref, err := fhirmap.MapReferral(mustEntries(t, c, mustMarshalJSON(t, doc)))
		if err != nil {
			t.Fatalf("MapReferral() returned unexpected error: %v", err)
		}
		if ref.Referral.Status != linkbridge.TaskDraft {
			t.Errorf("Referral.Status = %q, want draft", ref.Referral.Status)
		}
	})

	t.Run("OKNoTask", func(t *testing.T) {
		t.Parallel()
		doc := mustParseJSON(t, mustReadFile(t, baseReferralFile))
		removeEntries(doc, "Task")
		ref, err := fhirmap.MapReferral(mustEntries(t, c, mustMarshalJSON(t, doc)))
		if err != nil {
			t.Fatalf("MapReferral() returned unexpected error: %v", err)
		}
		if ref.Task != nil || ref.Referral.Status != linkbridge.TaskRequested {
			t.Errorf("Task = %v, Status = %q; want nil, requested", ref.Task, ref.Referral.Status)
		}
	})
}

// FuzzMapReferral decodes arbitrary bytes with fhirjson and maps whatever
// decodes: MapReferral must never panic, and any error must be a
// *linkbridge.Error that names an element or says what is wrong.
func FuzzMapReferral(f *testing.F) {
	c := mustCodec(f)
	seeds := 0
	err := filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".json") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f.Add(b)
			seeds++
		}
		return nil
	})
	if err != nil {
		f.Fatalf("walk %s: %v", corpusDir, err)
	}
	goldens, _ := filepath.Glob(filepath.Join("testdata", "*.input.json"))
	for _, g := range goldens {
		f.Add(mustReadFile(f, g))
		seeds++
	}
	if seeds == 0 {
		f.Fatalf("no seeds under %s", corpusDir)
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"#x"}},"request":{"method":"POST","url":"ServiceRequest"}}]}`))
	f.Add([]byte(`{"resourceType":"Task","status":"requested","intent":"order","focus":{"reference":"#sr"},"contained":[{"resourceType":"ServiceRequest","id":"sr","status":"active","intent":"order","subject":{"reference":"#sr"}}]}`))

	f.Fuzz(func(t *testing.T, b []byte) {
		cr, err := c.Decode(b)
		if err != nil {
			return
		}
		entries, err := entriesOf(cr)
		if err != nil {
			return
		}
		ref, err := fhirmap.MapReferral(entries)
		if err != nil {
			var le *linkbridge.Error
			if !errors.As(err, &le) || le.Message == "" {
				t.Fatalf("MapReferral error is not a described *linkbridge.Error: %v", err)
			}
			return
		}
		if ref.ServiceRequest == nil || ref.Referral.Identifier.Value == "" || ref.Referral.ReferrerODS == "" && !ref.Referral.Source.WithoutODS() {
			t.Fatalf("MapReferral accepted a referral without ServiceRequest, identifier or referrer: %+v", ref.Referral)
		}
		if ref.SubjectID == "" {
			if _, err := linkbridge.NormalizeNHSNumber(ref.Person.NHSNumber); err != nil {
				t.Fatalf("MapReferral accepted an invalid NHS number: %v", err)
			}
		}
	})
}

func BenchmarkMapReferral(b *testing.B) {
	c := mustCodec(b)
	body := mustReadFile(b, filepath.Join(corpusDir, "valid", "transaction-practitionerrole-healthcareservice.json"))
	cr, err := c.Decode(body)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// MapReferral normalises in place, so each round maps a fresh copy.
		entries, err := entriesOf(cloneProto(cr))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fhirmap.MapReferral(entries); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGoldenInputsAreCorpusCopies keeps the golden inputs copied from the
// shared corpus in step with it.
func TestGoldenInputsAreCorpusCopies(t *testing.T) {
	t.Parallel()
	for golden, corpus := range map[string]string{
		"transaction-practitionerrole-healthcareservice.input.json": "valid/transaction-practitionerrole-healthcareservice.json",
		"servicerequest-contained-patient.input.json":               "valid/servicerequest-contained-patient.json",
		"servicerequest-subject-nhs-number.input.json":              "valid/servicerequest-subject-nhs-number.json",
		"message-referral-new.input.json":                           "valid/message-referral-new.json",
		"error-message-header-not-first.input.json":                 "invalid/message-header-not-first.json",
	} {
		a := mustReadFile(t, filepath.Join("testdata", golden))
		b := mustReadFile(t, filepath.Join(corpusDir, filepath.FromSlash(corpus)))
		if !bytes.Equal(a, b) {
			t.Errorf("testdata/%s differs from %s; copy it again", golden, corpus)
		}
	}
}

// srOf returns the ServiceRequest among entries or the resources they
// contain.
func srOf(t *testing.T, entries []*fhirmap.Entry) *srpb.ServiceRequest {
	t.Helper()
	for _, e := range fhirmap.ExpandContained(entries) {
		if sr, ok := e.Resource.(*srpb.ServiceRequest); ok {
			return sr
		}
	}
	t.Fatal("no ServiceRequest")
	return nil
}

// TestRequesterODS: RequesterODS finds the referrer as MapReferral does,
// on every referral of the corpus (an identifier on the reference, an
// Organization entry, a PractitionerRole's organization, lower-case system
// and code normalised), and on a cancellation message; "" when the
// requester leads to no valid ODS code.
func TestRequesterODS(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	files := []string{baseReferralFile}
	valid, err := filepath.Glob(filepath.Join(corpusDir, "valid", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, valid...)
	for _, file := range files {
		body := mustReadFile(t, file)
		entries := mustEntries(t, c, body)
		got := fhirmap.RequesterODS(srOf(t, entries), entries)
		want := "C82010" // the cancellation: an identifier on the reference
		if !strings.HasSuffix(file, "message-referral-cancel.json") {
			// MapReferral normalises the entries in place: map a copy.
			ref, err := fhirmap.MapReferral(mustEntries(t, c, body))
			if err != nil {
				t.Fatalf("%s: MapReferral returned unexpected error: %v", file, err)
			}
			want = ref.Referral.ReferrerODS
		}
		if got != want || got == "" {
			t.Errorf("%s: RequesterODS = %q, want %q", filepath.Base(file), got, want)
		}
	}

	// The message's requester is an Organization entry: without the
	// entries it leads nowhere.
	entries := mustEntries(t, c, mustReadFile(t, filepath.Join(corpusDir, "valid", "message-referral-new.json")))
	if got := fhirmap.RequesterODS(srOf(t, entries), nil); got != "" {
		t.Errorf("RequesterODS of an unresolved reference = %q, want \"\"", got)
	}
	for name, requester := range map[string]any{
		"none":         nil,
		"invalid code": jsonDoc{"identifier": jsonDoc{"system": linkbridge.ODSSystem, "value": "not an ODS code"}},
		"other system": jsonDoc{"identifier": jsonDoc{"system": "https://example.org/Id/org", "value": "A81001"}},
	} {
		sr := jsonDoc{"resourceType": "ServiceRequest", "status": "revoked", "intent": "order", "subject": jsonDoc{"reference": "Patient/p"}}
		if requester != nil {
			sr["requester"] = requester
		}
		entries := mustEntries(t, c, mustMarshalJSON(t, sr))
		if got := fhirmap.RequesterODS(srOf(t, entries), entries); got != "" {
			t.Errorf("%s: RequesterODS = %q, want \"\"", name, got)
		}
	}
}
