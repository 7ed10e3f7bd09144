package fhirjson_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

func TestLiteralReferences(t *testing.T) {
	body := []byte(`{"resourceType":"CarePlan","id":"cp1",
		"contained":[{"resourceType":"Goal","id":"g0","subject":{"reference":"Patient/p0"}}],
		"subject":{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}},
		"goal":[{"reference":"Goal/g1"},{"reference":"Goal/g2/_history/3"},{"reference":"#g0"}],
		"author":{"reference":"https://other.example/fhir/Practitioner/x"},
		"activity":[{"reference":{"reference":"ServiceRequest/sr-1","display":"Gardening club"}}],
		"note":[{"text":"reference: Goal/g9"}],
		"supportingInfo":[{"reference":"urn:uuid:0b7f3a2e-2f1c-4f0e-9f5d-0e3d8f1a2b3c"},{"reference":"not a/ref/x"}]}`)
	got, err := fhirjson.LiteralReferences(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []fhirjson.LiteralRef{
		{Path: "goal.0", Type: "Goal", ID: "g1"},
		{Path: "goal.1", Type: "Goal", ID: "g2", Version: "3"},
		{Path: "activity.0.reference", Type: "ServiceRequest", ID: "sr-1"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("LiteralReferences (-want +got):\n%s", d)
	}
	if _, err := fhirjson.LiteralReferences([]byte(`[1]`)); err == nil {
		t.Error("LiteralReferences(array) = nil error")
	}
}

func TestForEndpoint(t *testing.T) {
	body := []byte(`{"resourceType":"CarePlan","id":"cp1","goal":[{"reference":"Goal/g1"},{"reference":"Goal/g2/_history/3"}],"activity":[{"reference":{"reference":"ServiceRequest/sr-1","display":"x"}}]}`)
	refs := map[string]string{"goal.0": "Goal/901", "goal.1": "Goal/902/_history/7", "activity.0.reference": "ServiceRequest/903"}
	tests := []struct {
		name, id, want string
	}{
		{"id removed", "", `{"resourceType":"CarePlan","goal":[{"reference":"Goal/901"},{"reference":"Goal/902/_history/7"}],"activity":[{"reference":{"reference":"ServiceRequest/903","display":"x"}}]}`},
		{"endpoint id", "77", `{"resourceType":"CarePlan","id":"77","goal":[{"reference":"Goal/901"},{"reference":"Goal/902/_history/7"}],"activity":[{"reference":{"reference":"ServiceRequest/903","display":"x"}}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fhirjson.ForEndpoint(body, tc.id, refs)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("ForEndpoint =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if string(body) != `{"resourceType":"CarePlan","id":"cp1","goal":[{"reference":"Goal/g1"},{"reference":"Goal/g2/_history/3"}],"activity":[{"reference":{"reference":"ServiceRequest/sr-1","display":"x"}}]}` {
		t.Error("ForEndpoint modified its input")
	}
}

func TestDropLiteralReference(t *testing.T) {
	body := []byte(`{"resourceType":"Task","requester":{"reference":"PractitionerRole/pr1"},"owner":{"reference":"Organization/o1","identifier":{"system":"s","value":"v"}}}`)
	for _, tc := range []struct{ path, want string }{
		{"requester", `{"resourceType":"Task","requester":{"display":"PractitionerRole not held in this record"},"owner":{"reference":"Organization/o1","identifier":{"system":"s","value":"v"}}}`},
		{"owner", `{"resourceType":"Task","requester":{"reference":"PractitionerRole/pr1"},"owner":{"identifier":{"system":"s","value":"v"}}}`},
	} {
		got, err := fhirjson.DropLiteralReference(body, tc.path, "PractitionerRole not held in this record")
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("DropLiteralReference(%s) =\n%s\nwant\n%s", tc.path, got, tc.want)
		}
	}
	if _, err := fhirjson.DropLiteralReference(body, "nothing", "x"); err == nil {
		t.Error("DropLiteralReference at a missing path = nil error")
	}
}
