package conformance

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseLocation: the Location header comes from the target.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"Task/1/_history/2", "http://h/fhir/ServiceRequest/abc", "https://x/fhir/Task/a-b.c/_history/10", "", "/", "Task//_history/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		typ, id, v := parseLocation(loc)
		if typ != "" && (id == "" || !strings.Contains(loc, typ+"/"+id)) {
			t.Fatalf("parseLocation(%q) = %q %q %q", loc, typ, id, v)
		}
	})
}

// FuzzSameContent: read-backs come from the target.
func FuzzSameContent(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Goal","id":"1","meta":{"versionId":"2"},"subject":{"reference":"Patient/9","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"a":[1,{"b":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if same, _ := sameContent(b, b, map[string]string{"Goal/1": "Goal/g"}); !same && isObject(b) {
			t.Fatalf("sameContent(x, x) = false for %q", b)
		}
	})
}

func isObject(b []byte) bool {
	s := strings.TrimSpace(string(b))
	return strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}")
}

// FuzzLiteralRefs: the references checked come from the target's answers.
func FuzzLiteralRefs(f *testing.F) {
	f.Add([]byte(`{"resourceType":"CarePlan","goal":[{"reference":"Goal/1"},{"reference":"Goal/2/_history/3"}],"contained":[{"reference":"Goal/x"}]}`))
	f.Add([]byte(`{"reference":"Goal/1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var doc J
		if json.Unmarshal(b, &doc) != nil {
			return
		}
		for _, ref := range literalRefs(doc) {
			parts := strings.Split(ref, "/")
			if len(parts) != 2 && len(parts) != 4 {
				t.Fatalf("literalRefs returned %q", ref)
			}
		}
	})
}
