package fhirschema

import (
	"bytes"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestLazyResourceListAgreesWithOneOf checks that the ResourceList rewrite
// accepts and rejects the same nested resources as the schema's original
// oneOf. It runs in CI under the race detector too (about 20 s there).
func TestLazyResourceListAgreesWithOneOf(t *testing.T) {
	t.Parallel()
	v := shared(t)
	if v == nil {
		t.Skipf("%s is not set", EnvSchema)
	}
	b, err := os.ReadFile(os.Getenv(EnvSchema))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///original/fhir.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	original, err := c.Compile("file:///original/fhir.schema.json#/definitions/Bundle")
	if err != nil {
		t.Fatal(err)
	}
	entries := []string{
		`{"resourceType":"Patient","id":"p1"}`,
		`{"resourceType":"Patient","foo":1}`,
		`{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Patient/p1"}}`,
		`{"resourceType":"ServiceRequest","status":"active","intent":"order"}`,
		`{"resourceType":"Task","status":"requested","intent":"order","for":{"reference":"Patient/p1"}}`,
		`{"resourceType":"Task","status":"nonsense","intent":"order"}`,
		`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid"}]}`,
		`{"resourceType":"OperationOutcome"}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","gender":"other"}}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","gender":"x"}}]}`,
		`{"resourceType":"Nope"}`,
		`{"resourceType":"DomainResource"}`,
		`{"resourceType":"Resource"}`,
		`{"resourceType":1}`,
		`{"id":"x"}`,
		`"Patient"`,
		`[]`,
		`42`,
	}
	for _, e := range entries {
		body := []byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":` + e + `}]}`)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		wantOK := original.Validate(inst) == nil
		bundle, err := v.schemaFor("Bundle")
		if err != nil {
			t.Fatal(err)
		}
		gotOK := bundle.Validate(inst) == nil
		if gotOK != wantOK {
			t.Errorf("entry %s: rewritten schema valid=%v, original oneOf valid=%v", e, gotOK, wantOK)
		}
	}
}
