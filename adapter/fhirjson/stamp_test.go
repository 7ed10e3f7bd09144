package fhirjson_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

var stampAt = time.Date(2026, 11, 20, 10, 0, 0, 123456000, time.UTC)

func TestStamp(t *testing.T) {
	refs := map[string]string{
		"urn:uuid:3b1f2a5e-1111-4c2d-9e0f-aaaaaaaaaaaa": "Patient/p1",
		"Organization/gp": "Organization/o1",
	}
	tests := []struct {
		name         string
		in           string
		want         string
		wantReplaced int
	}{
		{
			name: "id and meta added, members kept in order",
			in:   `{"resourceType":"Patient","gender":"female","birthDate":"1970-01-02"}`,
			want: `{"resourceType":"Patient","id":"new","meta":{"versionId":"3","lastUpdated":"2026-11-20T10:00:00.123456Z"},"gender":"female","birthDate":"1970-01-02"}`,
		},
		{
			name: "client id replaced, other meta kept, version and lastUpdated replaced",
			in:   `{"id":"client","meta":{"versionId":"9","profile":["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"],"lastUpdated":"2020-01-01T00:00:00Z"},"resourceType":"Patient"}`,
			want: `{"resourceType":"Patient","id":"new","meta":{"versionId":"3","lastUpdated":"2026-11-20T10:00:00.123456Z","profile":["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]}}`,
		},
		{
			name:         "references rewritten wherever the exact string appears",
			in:           `{"resourceType":"ServiceRequest","subject":{"reference":"urn:uuid:3b1f2a5e-1111-4c2d-9e0f-aaaaaaaaaaaa"},"requester":{"reference":"Organization/gp","display":"Organization/gpx"},"note":[{"text":"not urn:uuid:3b1f2a5e-1111-4c2d-9e0f-aaaaaaaaaaaa"}]}`,
			want:         `{"resourceType":"ServiceRequest","id":"new","meta":{"versionId":"3","lastUpdated":"2026-11-20T10:00:00.123456Z"},"subject":{"reference":"Patient/p1"},"requester":{"reference":"Organization/o1","display":"Organization/gpx"},"note":[{"text":"not urn:uuid:3b1f2a5e-1111-4c2d-9e0f-aaaaaaaaaaaa"}]}`,
			wantReplaced: 2,
		},
		{
			name:         "an escaped spelling is not matched (the caller's count check falls back)",
			in:           `{"resourceType":"ServiceRequest","requester":{"reference":"Organization\/gp"}}`,
			want:         `{"resourceType":"ServiceRequest","id":"new","meta":{"versionId":"3","lastUpdated":"2026-11-20T10:00:00.123456Z"},"requester":{"reference":"Organization\/gp"}}`,
			wantReplaced: 0,
		},
		{
			name: "whitespace inside values kept",
			in:   "{\n  \"resourceType\": \"Patient\",\n  \"name\": [ {\"family\": \"X\"} ]\n}\n",
			want: `{"resourceType":"Patient","id":"new","meta":{"versionId":"3","lastUpdated":"2026-11-20T10:00:00.123456Z"},"name":[ {"family": "X"} ]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, err := fhirjson.Stamp([]byte(tt.in), "new", 3, stampAt, refs)
			if err != nil {
				t.Fatalf("Stamp() returned unexpected error: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Stamp() =\n%s\nwant\n%s", got, tt.want)
			}
			if n != tt.wantReplaced {
				t.Errorf("Stamp() replaced %d, want %d", n, tt.wantReplaced)
			}
		})
	}
}

// TestStampIdentified: a reference rewritten to a resource of idents gains
// that resource's identifier after its "reference", unless it carries one
// already; everything else is as Stamp writes it, and the counts tell the
// caller what was done.
func TestStampIdentified(t *testing.T) {
	refs := map[string]string{
		"urn:uuid:org":     "Organization/o1",
		"urn:uuid:patient": "Patient/p1",
	}
	idents := map[string][]byte{"Organization/o1": fhirjson.IdentifierJSON("https://fhir.nhs.uk/Id/ods-organization-code", "A81001")}
	const head = `{"resourceType":"ServiceRequest","id":"new","meta":{"versionId":"3","lastUpdated":"2026-11-20T10:00:00.123456Z"},`
	tests := []struct {
		name                 string
		in, want             string
		replaced, identified int
	}{
		{
			name:       "identifier added after the rewritten reference",
			in:         `{"resourceType":"ServiceRequest","requester":{"reference":"urn:uuid:org","display":"The Surgery"},"subject":{"reference":"urn:uuid:patient"}}`,
			want:       head + `"requester":{"reference":"Organization/o1","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"},"display":"The Surgery"},"subject":{"reference":"Patient/p1"}}`,
			replaced:   2,
			identified: 1,
		},
		{
			name:     "an identifier the sender gave is kept",
			in:       `{"resourceType":"ServiceRequest","requester":{"identifier":{"value":"X"},"reference":"urn:uuid:org"}}`,
			want:     head + `"requester":{"identifier":{"value":"X"},"reference":"Organization/o1"}}`,
			replaced: 1,
		},
		{
			name:       "references in arrays and nested elements, whitespace dropped there",
			in:         `{"resourceType":"ServiceRequest", "performer": [ {"reference": "urn:uuid:org"}, {"display":"x"} ], "note":[{"authorReference":{"reference":"urn:uuid:org"}}], "status": "active"}`,
			want:       head + `"performer":[{"reference":"Organization/o1","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"}},{"display":"x"}],"note":[{"authorReference":{"reference":"Organization/o1","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"A81001"}}}],"status":"active"}`,
			replaced:   2,
			identified: 2,
		},
		{
			name: "a reference spelt with escapes is neither rewritten nor identified",
			in:   `{"resourceType":"ServiceRequest","requester":{"reference":"urn:uuid:or\u0067"}}`,
			want: head + `"requester":{"reference":"urn:uuid:or\u0067"}}`,
		},
		{
			name:     "a string equal to a reference outside a Reference is counted, not identified",
			in:       `{"resourceType":"ServiceRequest","note":[{"text":"urn:uuid:org"}]}`,
			want:     head + `"note":[{"text":"Organization/o1"}]}`,
			replaced: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, m, err := fhirjson.StampIdentified([]byte(tt.in), "new", 3, stampAt, refs, idents)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("StampIdentified() =\n%s\nwant\n%s", got, tt.want)
			}
			if n != tt.replaced || m != tt.identified {
				t.Errorf("replaced %d, identified %d; want %d, %d", n, m, tt.replaced, tt.identified)
			}
		})
	}
}

func TestStampRefusesNonResources(t *testing.T) {
	for _, in := range []string{``, `[]`, `"x"`, `{"id":"a"}`, `{"resourceType":"Patient"} {}`, `{"resourceType":"Patient","meta":[]}`, `{"resourceType":"Patient"`} {
		if out, _, err := fhirjson.Stamp([]byte(in), "x", 1, stampAt, nil); err == nil {
			t.Errorf("Stamp(%q) = %s, want an error", in, out)
		}
	}
}

// FuzzStamp checks that Stamp never panics and that whatever it accepts
// comes out as one JSON object with the new id and meta, and the decoded
// resource (apart from id and meta) unchanged when there is nothing to
// rewrite.
func FuzzStamp(f *testing.F) {
	for _, s := range []string{
		patientJSON, serviceRequestJSON, taskJSON, `{"resourceType":"Patient","meta":{"tag":[{"code":"x"}]}}`,
		`{"resourceType":"Patient","id":1}`, `{"resourceType":"Patient","meta":{"versionId":{}}}`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	refs := map[string]string{"urn:uuid:org": "Organization/o1"}
	idents := map[string][]byte{"Organization/o1": fhirjson.IdentifierJSON("https://fhir.nhs.uk/Id/ods-organization-code", "A81001")}
	f.Add([]byte(`{"resourceType":"Task","owner":{"reference":"urn:uuid:org"},"input":[{"valueReference":{"reference":"urn:uuid:org","identifier":{}}}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		// With identifiers to add: one JSON object, counts no larger than
		// the strings it could have replaced.
		if out, n, m, err := fhirjson.StampIdentified(in, "id-1", 2, stampAt, refs, idents); err == nil {
			if !json.Valid(out) {
				t.Fatalf("StampIdentified(%q) = %q, not JSON", in, out)
			}
			if m > n || bytes.Count(out, []byte(`"Organization/o1"`)) < n {
				t.Errorf("StampIdentified(%q) = %q: replaced %d, identified %d", in, out, n, m)
			}
		}
		out, _, err := fhirjson.Stamp(in, "id-1", 2, stampAt, nil)
		if err != nil {
			return
		}
		var got, orig map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("Stamp(%q) = %q, not a JSON object: %v", in, out, err)
		}
		if got["id"] != "id-1" {
			t.Errorf("id = %v", got["id"])
		}
		meta, _ := got["meta"].(map[string]any)
		if meta["versionId"] != "2" || meta["lastUpdated"] != "2026-11-20T10:00:00.123456Z" {
			t.Errorf("meta = %v", got["meta"])
		}
		if json.Unmarshal(in, &orig) != nil || bytes.Contains(in, []byte(`\`)) || strings.Count(string(in), `"id"`) > 1 {
			return // duplicate members or escapes: the plain comparison below does not hold
		}
		for k, v := range orig {
			if k == "id" || k == "meta" {
				continue
			}
			a, _ := json.Marshal(v)
			b, _ := json.Marshal(got[k])
			if !bytes.Equal(a, b) {
				t.Errorf("member %q changed: %s -> %s", k, a, b)
			}
		}
	})
}

func BenchmarkStamp(b *testing.B) {
	in := []byte(serviceRequestJSON)
	refs := map[string]string{"Patient/p1": "Patient/0196a1b2-0000-7000-8000-000000000001", "Organization/o1": "Organization/0196a1b2-0000-7000-8000-000000000002"}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := fhirjson.Stamp(in, "0196a1b2-0000-7000-8000-000000000003", 1, stampAt, refs); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStampManyReferences: every string equal to a key of refs is
// replaced, whatever the number of refs, and nothing else is touched (a
// key's text inside a longer string, a string with escapes).
func TestStampManyReferences(t *testing.T) {
	refs := map[string]string{}
	for i := range 5000 {
		refs[fmt.Sprintf("urn:uuid:%d", i)] = fmt.Sprintf("Observation/o%d", i)
	}
	raw := []byte(`{"resourceType":"Observation","status":"final","code":{"text":"urn:uuid:7 is not a reference"},` +
		`"subject":{"reference":"urn:uuid:42"},"hasMember":[{"reference":"urn:uuid:4999"},{"reference":"urn:uuid:\u0037"}],"note":[{"text":"a \"quoted\" note"}]}`)
	out, n, err := fhirjson.Stamp(raw, "x", 1, time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC), refs)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("replaced %d, want 2", n)
	}
	for _, want := range []string{`"reference":"Observation/o42"`, `"reference":"Observation/o4999"`, `"urn:uuid:\u0037"`, `"urn:uuid:7 is not a reference"`, `"a \"quoted\" note"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("stamped %s lacks %s", out, want)
		}
	}
}

// BenchmarkStampBundleEntry is the stamping of one entry of a transaction
// whose fullUrls are all rewritten: linear in the resource, not in the
// number of references (5,000 here).
func BenchmarkStampBundleEntry(b *testing.B) {
	refs := map[string]string{}
	for i := range 5000 {
		refs[fmt.Sprintf("urn:uuid:%d", i)] = fmt.Sprintf("Observation/o%d", i)
	}
	raw := []byte(`{"resourceType":"Observation","status":"final","code":{"text":"note"},"subject":{"reference":"urn:uuid:42"}}`)
	now := time.Now()
	for b.Loop() {
		if _, _, err := fhirjson.Stamp(raw, "x", 1, now, refs); err != nil {
			b.Fatal(err)
		}
	}
}
