package linkbridge_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// TestSplitSearchValues: commas separate values unless escaped; the
// escapes stay for the token reading.
func TestSplitSearchValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"a", []string{"a"}},
		{"a,b", []string{"a", "b"}},
		{" a , b ", []string{"a", "b"}},
		{"a,,b", []string{"a", "", "b"}},
		{`a\,b`, []string{`a\,b`}},
		{`a\\,b`, []string{`a\\`, "b"}},
		{`s|a\,b,c`, []string{`s|a\,b`, "c"}},
		{`a\|b,c`, []string{`a\|b`, "c"}},
		{`a\`, []string{`a\`}},
		{"", []string{""}},
	}
	for _, tt := range tests {
		if got := linkbridge.SplitSearchValues(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("SplitSearchValues(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCutToken: FHIR's token forms (search.html#token) and escapes
// (search.html#escaping).
func TestCutToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in            string
		system, value string
		bySystem      bool
	}{
		{"https://fhir.nhs.uk/Id/nhs-number|9434765919", "https://fhir.nhs.uk/Id/nhs-number", "9434765919", true},
		{"9434765919", "", "9434765919", false},
		{"|REF-1", "", "REF-1", true},
		{"sys|", "sys", "", true},
		{"sys|a|b", "sys", "a|b", true},
		{`sys|a\|b`, "sys", "a|b", true},
		{`a\|b`, "", "a|b", false},
		{`\|a`, "", "|a", false},
		{`sys|a\,b\$c\\d`, "sys", `a,b$c\d`, true},
		{`a\\|b`, `a\`, "b", true},
		{`a\xb`, "", `a\xb`, false},
		{`a\`, "", `a\`, false},
	}
	for _, tt := range tests {
		sys, val, by := linkbridge.CutToken(tt.in)
		if sys != tt.system || val != tt.value || by != tt.bySystem {
			t.Errorf("CutToken(%q) = %q, %q, %v; want %q, %q, %v", tt.in, sys, val, by, tt.system, tt.value, tt.bySystem)
		}
	}
}

// TestMatchesAny: token search values against indexed values.
func TestMatchesAny(t *testing.T) {
	t.Parallel()
	type sp = linkbridge.SearchParam
	nhs := sp{Name: "identifier", Value: "9434765919", System: "https://fhir.nhs.uk/Id/nhs-number"}
	bare := sp{Name: "identifier", Value: "9434765919"}
	piped := sp{Name: "identifier", Value: "REF|7,8", System: "https://example.org/refs"}
	tests := []struct {
		values []string
		p      sp
		want   bool
	}{
		{[]string{"https://fhir.nhs.uk/Id/nhs-number|9434765919"}, nhs, true},
		{[]string{"9434765919"}, nhs, true},
		{[]string{"9434765919"}, bare, true},
		{[]string{"|9434765919"}, nhs, false},
		{[]string{"|9434765919"}, bare, true},
		{[]string{"https://other|9434765919"}, nhs, false},
		{[]string{"https://other|1", "https://fhir.nhs.uk/Id/nhs-number|9434765919"}, nhs, true},
		{[]string{"https://fhir.nhs.uk/Id/nhs-number|"}, nhs, false},
		{[]string{"Patient/1"}, sp{Name: "patient", Value: "Patient/1"}, true},
		{[]string{`https://example.org/refs|REF\|7\,8`}, piped, true},
		{[]string{`REF\|7\,8`}, piped, true},
		{[]string{`REF|7\,8`}, piped, false}, // system "REF"
	}
	for _, tt := range tests {
		if got := tt.p.MatchesAny(tt.values); got != tt.want {
			t.Errorf("%+v.MatchesAny(%q) = %v, want %v", tt.p, tt.values, got, tt.want)
		}
	}
}

// TestSubscriptionFilterToken: a subscription filter's token value names
// its system as a search's does; the indexed value keeps its system apart.
func TestSubscriptionFilterToken(t *testing.T) {
	t.Parallel()
	res := &linkbridge.Resource{Type: "Task", ID: "t1", Params: []linkbridge.SearchParam{
		{Name: "code", Value: "871731000000106", System: linkbridge.SNOMEDSystem}, {Name: "status", Value: "accepted"}}}
	tests := []struct {
		values []string
		want   bool
	}{
		{[]string{linkbridge.SNOMEDSystem + "|871731000000106"}, true},
		{[]string{"871731000000106"}, true},
		{[]string{"http://loinc.org|871731000000106"}, false},
		{[]string{"|871731000000106"}, false},
	}
	for _, tt := range tests {
		f := linkbridge.SubscriptionFilter{ResourceType: "Task", Name: "code", Values: tt.values}
		if got := f.Matches(res); got != tt.want {
			t.Errorf("filter code=%q: Matches = %v, want %v", tt.values, got, tt.want)
		}
	}
}

// FuzzSearchValues: any value, escaped, splits back into itself alone and
// reads back (as a token's value and whole) as it was; no input panics.
func FuzzSearchValues(f *testing.F) {
	for _, s := range []string{"", "a", "a,b", `a\,b`, `s|a\|b`, `\\`, `a\`, "sys|", "|v", "$,|\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range linkbridge.SplitSearchValues(s) {
			linkbridge.CutToken(v)
			linkbridge.UnescapeSearchValue(v)
		}
		if s != strings.TrimSpace(s) || s == "" {
			return // a value is trimmed of spaces; an empty one is none
		}
		esc := linkbridge.EscapeSearchValue(s)
		parts := linkbridge.SplitSearchValues(esc)
		if len(parts) != 1 || linkbridge.UnescapeSearchValue(parts[0]) != s {
			t.Fatalf("escaped %q as %q: split %q", s, esc, parts)
		}
		if sys, val, by := linkbridge.CutToken("sys|" + esc); sys != "sys" || val != s || !by {
			t.Fatalf("CutToken(sys|%q) = %q, %q, %v", esc, sys, val, by)
		}
		if _, val, by := linkbridge.CutToken(esc); val != s || by {
			t.Fatalf("CutToken(%q) = %q, %v; want the value alone", esc, val, by)
		}
	})
}
