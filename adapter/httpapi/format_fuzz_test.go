package httpapi

import "testing"

// FuzzFormatOfAccept parses arbitrary Accept headers: never a panic, and a
// header that also lists application/fhir+json at full quality always
// chooses JSON (an exact range with q=1 outranks anything XML can get).
func FuzzFormatOfAccept(f *testing.F) {
	for _, s := range []string{"", "*/*", "application/fhir+xml", "text/*;q=0.3, application/xml", "application/fhir+json;q=0",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "a/b;q=x", ";;,/,*/json", "application/fhir+xml;q=1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		_, _ = formatOfAccept([]string{accept})
		if got, err := formatOfAccept([]string{accept, "application/fhir+json"}); err != nil || got != formatJSON {
			t.Errorf("formatOfAccept(%q, application/fhir+json) = %v, %v; want JSON", accept, got, err)
		}
	})
}
