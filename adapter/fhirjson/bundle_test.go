package fhirjson_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// TestEncodeBundle splices stored resource bytes into the rendered envelope
// (kept byte for byte, keys in their stored order) next to entries encoded
// from protos, and reads them back with EntryResources.
func TestEncodeBundle(t *testing.T) {
	t.Parallel()
	c := mustNew(t)
	stored := []byte(`{"resourceType":"Patient","id":"p1","active":true}`)
	in := []byte(`{"resourceType":"Bundle","type":"searchset","entry":[
		{"fullUrl":"http://x/fhir/Patient/p1","search":{"mode":"match"}},
		{"fullUrl":"http://x/fhir/Organization/o1","resource":{"resourceType":"Organization","id":"o1"}},
		{"resource":{"resourceType":"Patient","id":"p2"}}]}`)
	res, err := c.DecodeResource(in)
	if err != nil {
		t.Fatalf("DecodeResource() returned unexpected error: %v", err)
	}
	b := res.(*rpb.Bundle)
	got, err := c.EncodeBundle(b, [][]byte{stored, nil, []byte(`{"resourceType":"Patient","id":"p2"}`)})
	if err != nil {
		t.Fatalf("EncodeBundle() returned unexpected error: %v", err)
	}
	want := `{"resourceType":"Bundle","type":"searchset","entry":[
		{"resource":{"resourceType":"Patient","id":"p1","active":true},"fullUrl":"http://x/fhir/Patient/p1","search":{"mode":"match"}},
		{"fullUrl":"http://x/fhir/Organization/o1","resource":{"resourceType":"Organization","id":"o1"}},
		{"resource":{"resourceType":"Patient","id":"p2"}}]}`
	if diff := cmp.Diff(normJSON(t, []byte(want)), normJSON(t, got)); diff != "" {
		t.Errorf("EncodeBundle() mismatch (-want +got):\n%s", diff)
	}
	raws := fhirjson.EntryResources(got)
	if len(raws) != 3 || string(raws[0]) != string(stored) || raws[1] == nil {
		t.Errorf("EntryResources() = %q, want the stored Patient first", raws)
	}
	if got := fhirjson.EntryResources([]byte(`{"resourceType":"Bundle","entry":[{"fullUrl":"urn:uuid:1"}]}`)); len(got) != 1 || got[0] != nil {
		t.Errorf("EntryResources(entry without resource) = %q, want [nil]", got)
	}
	if _, err := c.EncodeBundle(b, [][]byte{stored}); err == nil {
		t.Error("EncodeBundle(raw shorter than entries) = nil error")
	}
	plain, err := c.EncodeBundle(b, nil)
	if err != nil {
		t.Fatalf("EncodeBundle(nil) returned unexpected error: %v", err)
	}
	if enc, _ := c.Encode(b); string(plain) != string(enc) {
		t.Errorf("EncodeBundle(nil) = %s, want Encode's %s", plain, enc)
	}
}
