package fhirmap_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	pbpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/provenance_go_proto"
	"google.golang.org/protobuf/proto"
)

// TestSearchTable checks the search parameter table's shape: every type
// has _id and _lastUpdated first, every row resolved to an element of the
// R4 type (Path), references have targets, and lookups agree with the
// lists.
func TestSearchTable(t *testing.T) {
	t.Parallel()
	types := fhirmap.SearchTypes()
	if !slices.IsSorted(types) || !slices.Contains(types, "Task") || !slices.Contains(types, "ServiceRequest") {
		t.Fatalf("SearchTypes() = %v, want sorted, with Task and ServiceRequest", types)
	}
	for _, typ := range types {
		ps := fhirmap.SearchParameters(typ)
		if len(ps) < 2 || ps[0].Name != "_id" || ps[0].Type != fhirmap.SearchToken || ps[1].Name != "_lastUpdated" || ps[1].Type != fhirmap.SearchDate {
			t.Errorf("%s: parameters do not start with _id (token) and _lastUpdated (date): %+v", typ, ps)
		}
		for _, p := range ps {
			if p.Path == "" {
				t.Errorf("%s %s has no element path", typ, p.Name)
			}
			if (p.Type == fhirmap.SearchReference) != (len(p.Targets) > 0) {
				t.Errorf("%s %s: type %s with targets %v", typ, p.Name, p.Type, p.Targets)
			}
			got, ok := fhirmap.LookupSearchParameter(typ, p.Name)
			if !ok || got.Name != p.Name || got.Path != p.Path {
				t.Errorf("LookupSearchParameter(%s, %s) = %+v, %v; want %+v", typ, p.Name, got, ok, p)
			}
		}
	}
	if ps := fhirmap.SearchParameters("Provenance"); ps != nil {
		t.Errorf("SearchParameters(Provenance) = %v, want nil (not searched)", ps)
	}
	if _, ok := fhirmap.LookupSearchParameter("Task", "owner:identifier"); ok {
		t.Errorf("LookupSearchParameter takes the name without its modifier")
	}
	if p, _ := fhirmap.LookupSearchParameter("Task", "patient"); p.Path != "Task.for" || !p.Only || !p.Include {
		t.Errorf("Task patient = %+v, want Task.for, Only, Include", p)
	}
}

// TestSDOHSearchParameters: the table offers the SDOH IG's server-side
// search requirements linkbridge meets
// (docs/referral-exchange.md#capabilitystatement).
func TestSDOHSearchParameters(t *testing.T) {
	t.Parallel()
	for typ, want := range map[string]map[string]fhirmap.SearchType{
		"Task": {"_id": fhirmap.SearchToken, "code": fhirmap.SearchToken, "patient": fhirmap.SearchReference, "requester": fhirmap.SearchReference,
			"status": fhirmap.SearchToken, "focus": fhirmap.SearchReference, "owner": fhirmap.SearchReference, "_lastUpdated": fhirmap.SearchDate},
		"ServiceRequest": {"_id": fhirmap.SearchToken, "category": fhirmap.SearchToken, "intent": fhirmap.SearchToken,
			"patient": fhirmap.SearchReference, "status": fhirmap.SearchToken},
	} {
		for name, typ2 := range want {
			if p, ok := fhirmap.LookupSearchParameter(typ, name); !ok || p.Type != typ2 {
				t.Errorf("%s %s = %+v, %v; want a %s parameter", typ, name, p, ok, typ2)
			}
		}
	}
	if p, _ := fhirmap.LookupSearchParameter("Task", "focus"); !p.Include {
		t.Errorf("_include=Task:focus is not supported")
	}
}

func TestReferenceIndexName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ typ, name, target, want string }{
		{"ServiceRequest", "subject", "Patient", "patient"},
		{"ServiceRequest", "subject", "Group", "subject"},
		{"ServiceRequest", "patient", "Patient", "patient"},
		{"Task", "subject", "Patient", "patient"},
		{"Observation", "subject", "Patient", "patient"},
		{"Task", "focus", "ServiceRequest", "focus"},
		{"Consent", "patient", "Patient", "patient"},
		{"Provenance", "target", "Task", "target"},
	} {
		if got := fhirmap.ReferenceIndexName(tc.typ, tc.name, tc.target); got != tc.want {
			t.Errorf("ReferenceIndexName(%s, %s, %s) = %q, want %q", tc.typ, tc.name, tc.target, got, tc.want)
		}
	}
}

// TestSearchParamsFollowTable: only the table's parameters are indexed
// (PractitionerRole.code is not a linkbridge parameter; R4 calls it role),
// and a type outside the table has none.
func TestSearchParamsFollowTable(t *testing.T) {
	t.Parallel()
	role := decodeResource(t, `{"resourceType":"PractitionerRole","identifier":[{"system":"s","value":"v"}],
		"code":[{"coding":[{"system":"s","code":"c"}]}]}`).(proto.Message)
	want := []linkbridge.SearchParam{{Name: "identifier", Value: "v", System: "s"}}
	if diff := cmp.Diff(want, fhirmap.SearchParams(role)); diff != "" {
		t.Errorf("SearchParams(PractitionerRole) mismatch (-want +got):\n%s", diff)
	}
	prov := &pbpb.Provenance{Target: []*dpb.Reference{fhirmap.NewRef("Task", "t1")}}
	if got := fhirmap.SearchParams(prov); got != nil {
		t.Errorf("SearchParams(Provenance) = %v, want none", got)
	}
}

// TestIndexNames: the names a parameter's values are indexed under, which
// a :missing search looks for.
func TestIndexNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ, name string
		want      []string
	}{
		{"Task", "status", []string{"status"}},
		{"Task", "owner", []string{"owner", "owner:identifier"}},
		{"Task", "patient", []string{"patient", "patient:identifier"}},
		{"Task", "subject", []string{"subject", "subject:identifier", "patient"}},
		{"Consent", "patient", []string{"patient", "patient:identifier"}},
		{"Goal", "lifecycle-status", []string{"lifecycle-status"}},
		{"Task", "_id", nil},
		{"Task", "_lastUpdated", nil},
		{"Task", "no-such", nil},
		{"Provenance", "target", nil},
	}
	for _, tt := range tests {
		if got := fhirmap.IndexNames(tt.typ, tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("IndexNames(%s, %s) = %v, want %v", tt.typ, tt.name, got, tt.want)
		}
	}
	// Every name it gives is one SearchParams can emit: a Task with a
	// Group subject is indexed under subject.
	task := decodeResource(t, `{"resourceType":"Task","status":"requested","intent":"order","for":{"reference":"Group/g1"}}`).(proto.Message)
	var names []string
	for _, p := range fhirmap.SearchParams(task) {
		names = append(names, p.Name)
	}
	if !slices.Contains(names, "subject") || slices.Contains(names, "patient") {
		t.Errorf("Task for Group/g1 indexed under %v, want subject, not patient", names)
	}
}
