package fhirmap_test

import (
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestLogicalRef: a resource the GP endpoint does not hold is named by its
// national identifier (SDS user or role profile id, ODS code) where it has
// one, and a display from its name; never left as a literal reference.
func TestLogicalRef(t *testing.T) {
	t.Parallel()
	c, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, json, wantSystem, wantValue, wantDisplay string
	}{
		{"practitioner by SDS user id", `{"resourceType":"Practitioner","id":"p1","identifier":[{"system":"https://example.org/local","value":"L1"},{"system":"https://fhir.nhs.uk/Id/sds-user-id","value":"555555555555"}],"name":[{"given":["Ann"],"family":"Jones"}]}`,
			"https://fhir.nhs.uk/Id/sds-user-id", "555555555555", "Ann Jones"},
		{"role by role profile id, display of its practitioner", `{"resourceType":"PractitionerRole","id":"pr1","identifier":[{"system":"https://fhir.nhs.uk/Id/sds-role-profile-id","value":"RP1"}],"practitioner":{"reference":"Practitioner/p1","display":"Dr Ann Jones"}}`,
			"https://fhir.nhs.uk/Id/sds-role-profile-id", "RP1", "Dr Ann Jones"},
		{"organisation by ODS code", `{"resourceType":"Organization","id":"o1","identifier":[{"system":"` + linkbridge.ODSSystem + `","value":"A81001"}],"name":"The Surgery"}`,
			linkbridge.ODSSystem, "A81001", "The Surgery"},
		{"first identifier when no national one", `{"resourceType":"Condition","id":"c1","identifier":[{"value":"no system"},{"system":"https://example.org/c","value":"C9"}],"subject":{"reference":"Patient/x"}}`,
			"https://example.org/c", "C9", ""},
		{"neither identifier nor name", `{"resourceType":"Organization","id":"o2"}`,
			"", "", "Organization not held in this record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.DecodeResource([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			got := fhirmap.LogicalRef(res)
			if typ, id := fhirmap.RefTarget(got); typ != "" || id != "" {
				t.Errorf("LogicalRef has a literal reference %s/%s", typ, id)
			}
			if got.GetType().GetValue() != fhirmap.TypeName(res) {
				t.Errorf("type = %q, want %q", got.GetType().GetValue(), fhirmap.TypeName(res))
			}
			if s, v := got.GetIdentifier().GetSystem().GetValue(), got.GetIdentifier().GetValue().GetValue(); s != tc.wantSystem || v != tc.wantValue {
				t.Errorf("identifier = %s|%s, want %s|%s", s, v, tc.wantSystem, tc.wantValue)
			}
			if d := got.GetDisplay().GetValue(); d != tc.wantDisplay {
				t.Errorf("display = %q, want %q", d, tc.wantDisplay)
			}
		})
	}
}

// TestForGPRecordLogicalRefs: ForGPRecord asks about every literal
// reference but the patient's and the referral's, replaces those it is
// given a logical reference for (keeping their display), and keeps the rest
// literal.
func TestForGPRecordLogicalRefs(t *testing.T) {
	t.Parallel()
	r := &linkbridge.Referral{ID: "r1", PersonID: "p1", TaskID: "t1", Identifier: linkbridge.Identifier{System: "https://gp.example/ref", Value: "R-1"}}
	task := &taskpb.Task{
		Id:        &dpb.Id{Value: "t1"},
		Focus:     fhirmap.NewRef("ServiceRequest", "r1"),
		ForValue:  fhirmap.NewRef("Patient", "p1"),
		Requester: fhirmap.NewRef("PractitionerRole", "pr1"),
		Output: []*taskpb.Task_Output{{Value: &taskpb.Task_Output_ValueX{Choice: &taskpb.Task_Output_ValueX_Reference{
			Reference: fhirmap.NewRef("CarePlan", "careplan-r1")}}}},
	}
	task.Requester.Display = &dpb.String{Value: "Dr Jones"}
	var asked []string
	logical := func(typ, id string) *dpb.Reference {
		asked = append(asked, typ+"/"+id)
		if typ == "PractitionerRole" {
			return &dpb.Reference{Type: &dpb.Uri{Value: typ}, Identifier: &dpb.Identifier{System: &dpb.Uri{Value: "https://fhir.nhs.uk/Id/sds-role-profile-id"}, Value: &dpb.String{Value: "RP1"}}}
		}
		return nil
	}
	out := fhirmap.Systems{}.ForGPRecord(task, r, "9434765919", logical).(*taskpb.Task)
	if len(asked) != 2 {
		t.Errorf("asked about %v, want the requester and the output only", asked)
	}
	if typ, _ := fhirmap.RefTarget(out.Requester); typ != "" || out.Requester.GetIdentifier().GetValue().GetValue() != "RP1" || out.Requester.GetDisplay().GetValue() != "Dr Jones" {
		t.Errorf("requester = %s, want the logical reference with its display", protojson.Format(out.Requester))
	}
	if typ, id := fhirmap.RefTarget(out.Output[0].GetValue().GetReference()); typ+"/"+id != "CarePlan/careplan-r1" {
		t.Errorf("output = %s/%s, want the literal CarePlan reference kept", typ, id)
	}
	if typ, id := fhirmap.RefTarget(task.Requester); typ+"/"+id != "PractitionerRole/pr1" {
		t.Error("ForGPRecord changed its input")
	}
}
