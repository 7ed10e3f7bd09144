package fhirjson_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	linkbridge "github.com/linkbridge/linkbridge"
)

// corpusFiles lists every *.json file under the shared testdata/fhir/r4
// corpus (valid and invalid); none when the directory is absent.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(corpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".json") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("walk %s: %v", corpusDir, err)
	}
	return files
}

// FuzzDecode checks that Decode never panics, fails only with EINVALID, and
// that whatever it accepts encodes, decodes again to the same message, and
// encodes to the same bytes.
//
// "The same message" ignores empty elements: google/fhir accepts a primitive
// given as "" or null (for example "gender":"") as an element with no value,
// which Encode then leaves out.
func FuzzDecode(f *testing.F) {
	for _, path := range corpusFiles(f) {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		patientJSON, serviceRequestJSON, taskJSON,
		``, `{}`, `[]`, `null`, `"x"`, `{"resourceType":"Patient"}`,
		`{"resourceType":"Patient","foo":1}`,
		`{"resourceType":"Patient","birthDate":"1980-13-45"}`,
		`{"resourceType":"Patient","birthDate":"2024"}`,
		`{"resourceType":"Patient","deceasedDateTime":"2024-02-29T23:59:60+14:00"}`,
		`{"resourceType":"Patient","_birthDate":{"extension":[{"url":"http://x","valueString":"y"}]}}`,
		`{"resourceType":"Patient","gender":null}`,
		`{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"extension":[{"url":"http://x","valueBoolean":true}]}]}]}`,
		`{"resourceType":"Patient","gender":"male","gender":"female"}`,
		`{"resourceType":"Bundle","type":""}`,
		`{"resourceType":"Patient","gender":""}`,
		`{"resourceType":"Patient","id":"a","id":"b"}`,
		`{"resourceType":"Observation","status":"final","code":{},"valueQuantity":{"value":1.50}}`,
		`{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Patient/p1/_history/2"}}`,
		`{"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"#p"},"contained":[{"resourceType":"Patient","id":"p"}]}`,
		`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"ServiceRequest"}}]}`,
		"{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"\xff\"}]}",
	} {
		f.Add([]byte(s))
	}
	c := mustNew(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		cr, err := c.Decode(in)
		if err != nil {
			if code := linkbridge.ErrorCode(err); code != linkbridge.EINVALID {
				t.Fatalf("Decode() error code = %q (%v), want %q", code, err, linkbridge.EINVALID)
			}
			return
		}
		out, err := c.Encode(cr)
		if err != nil {
			t.Fatalf("Encode(Decode(in)) returned unexpected error: %v", err)
		}
		again, err := c.Decode(out)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(in))) returned unexpected error: %v\nencoded: %s", err, out)
		}
		if diff := cmp.Diff(cr, again, protocmp.Transform(), protocmp.IgnoreEmptyMessages()); diff != "" {
			t.Fatalf("round trip changed the message (-first +second):\n%s", diff)
		}
		out2, err := c.Encode(again)
		if err != nil {
			t.Fatalf("second Encode returned unexpected error: %v", err)
		}
		if string(out) != string(out2) {
			t.Fatalf("encoding is not stable:\nfirst:  %s\nsecond: %s", out, out2)
		}
	})
}
