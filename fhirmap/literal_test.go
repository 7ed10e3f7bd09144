package fhirmap_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
	"google.golang.org/protobuf/proto"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// TestRelativeRefs: every relative literal reference is found with its
// element path and version, as decoded from FHIR JSON; internal, absolute,
// URN, logical and display-only references, contained resources and the
// assigner inside a reference are not.
func TestRelativeRefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		js   string
		want []fhirmap.LiteralRef
	}{
		{"Typed", `{"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/p1"},
			"goal":[{"reference":"Goal/g1"},{"reference":"Goal/g2/_history/3"}]}`,
			[]fhirmap.LiteralRef{{Path: "CarePlan.subject", Type: "Patient", ID: "p1"},
				{Path: "CarePlan.goal[0]", Type: "Goal", ID: "g1"},
				{Path: "CarePlan.goal[1]", Type: "Goal", ID: "g2", Version: "3"}}},
		{"NotResolvedHere", `{"resourceType":"Goal","lifecycleStatus":"active","description":{"text":"x"},
			"subject":{"reference":"#p"},
			"addresses":[{"reference":"urn:uuid:3741a7a4-3a54-4ec2-b2d0-6b3697f7d130"},{"reference":"https://gp.example.nhs.uk/fhir/Condition/c1"},
			  {"identifier":{"system":"https://example.org/c","value":"c2"}},{"display":"a condition"}],
			"expressedBy":{"reference":"Patient/p1","identifier":{"value":"x","assigner":{"reference":"Organization/o1"}}},
			"contained":[{"resourceType":"Patient","id":"p","generalPractitioner":[{"reference":"Organization/o2"}]}]}`,
			[]fhirmap.LiteralRef{{Path: "Goal.expressedBy", Type: "Patient", ID: "p1"}}},
		{"ChoiceElement", `{"resourceType":"Task","status":"requested","intent":"order",
			"input":[{"type":{"text":"t"},"valueReference":{"reference":"Goal/g1"}}]}`,
			[]fhirmap.LiteralRef{{Path: "Task.input[0].value.reference", Type: "Goal", ID: "g1"}}},
		{"UnknownType", `{"resourceType":"Task","status":"requested","intent":"order","focus":{"reference":"Thing/t1"}}`,
			[]fhirmap.LiteralRef{{Path: "Task.focus", Type: "Thing", ID: "t1"}}},
		{"NeitherForm", `{"resourceType":"Task","status":"requested","intent":"order","focus":{"reference":"Goal/g1/extra"}}`,
			[]fhirmap.LiteralRef{{Path: "Task.focus", Raw: "Goal/g1/extra"}}},
		{"None", `{"resourceType":"Task","status":"requested","intent":"order"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fhirmap.RelativeRefs(decodeResource(t, tt.js).(proto.Message))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RelativeRefs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLiteralRefString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ref  fhirmap.LiteralRef
		want string
	}{
		{fhirmap.LiteralRef{Type: "Goal", ID: "g1"}, "Goal/g1"},
		{fhirmap.LiteralRef{Type: "Goal", ID: "g1", Version: "2"}, "Goal/g1/_history/2"},
		{fhirmap.LiteralRef{Raw: "a/b/c"}, "a/b/c"},
	} {
		if got := tc.ref.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

// TestIdentifyReferences: a literal reference to a resource the map names
// gains its identifier, and is then indexed under <param>:identifier; one
// that already carries an identifier, or names another resource, is left
// alone.
func TestIdentifyReferences(t *testing.T) {
	t.Parallel()
	ods := &dpb.Identifier{System: &dpb.Uri{Value: linkbridge.ODSSystem}, Value: &dpb.String{Value: "C82010"}}
	ids := map[string]*dpb.Identifier{"Organization/o1": ods}
	tests := []struct {
		name      string
		js        string
		wantN     int
		wantParam string // a requester:identifier value SearchParams must give, if any
	}{
		{"Literal", `{"resourceType":"Task","status":"requested","intent":"order","requester":{"reference":"Organization/o1"}}`, 1, linkbridge.ODSSystem + "|C82010"},
		{"AlreadyIdentified", `{"resourceType":"Task","status":"requested","intent":"order",
			"requester":{"reference":"Organization/o1","identifier":{"system":"https://example.org/x","value":"y"}}}`, 0, "https://example.org/x|y"},
		{"OtherResource", `{"resourceType":"Task","status":"requested","intent":"order","requester":{"reference":"Organization/o2"}}`, 0, ""},
		{"SameIDOtherType", `{"resourceType":"Task","status":"requested","intent":"order","requester":{"reference":"Practitioner/o1"}}`, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := decodeResource(t, tt.js).(proto.Message)
			if n := fhirmap.IdentifyReferences(res, ids); n != tt.wantN {
				t.Errorf("IdentifyReferences = %d, want %d", n, tt.wantN)
			}
			var got []string
			for _, p := range fhirmap.SearchParams(res) {
				if p.Name == "requester:identifier" {
					got = append(got, p.System+"|"+p.Value)
				}
			}
			want := []string{}
			if tt.wantParam != "" {
				want = append(want, tt.wantParam)
			}
			if len(got) != len(want) || len(got) == 1 && got[0] != want[0] {
				t.Errorf("requester:identifier values = %v, want %v", got, want)
			}
		})
	}
	if ods.GetValue().GetValue() != "C82010" {
		t.Errorf("IdentifyReferences changed the identifier it was given")
	}
}
