package fhirjson

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestCheckJSONRulesManyKeys(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Basic"`)
	for i := range 100 {
		fmt.Fprintf(&sb, `,"k%d":1`, i)
	}
	ok := sb.String() + "}"
	if err := checkJSONRules([]byte(ok), "Basic"); err != nil {
		t.Errorf("checkJSONRules(100 distinct keys) = %v, want nil", err)
	}
	dup := sb.String() + `,"k7":2}`
	err := checkJSONRules([]byte(dup), "Basic")
	if err == nil || err.Message != "duplicate JSON key" || len(err.Expression) != 1 || err.Expression[0] != "Basic.k7" {
		t.Errorf("checkJSONRules(duplicate after 100 keys) = %v, want duplicate JSON key at Basic.k7", err)
	}
}

func TestCheckJSONRulesPathOmitsOddKeys(t *testing.T) {
	t.Parallel()
	err := checkJSONRules([]byte(`{"resourceType":"Patient","9434765919 Smith":{"a":""}}`), "Patient")
	if err == nil {
		t.Fatal("want error")
	}
	if len(err.Expression) != 0 {
		t.Errorf("Expression = %q, want none (key is not an element name)", err.Expression)
	}
}

// TestCheckJSONRulesNullNeedsTwin: a null in a primitive array only aligns
// it with its _twin (FHIR R4 json.html#primitive); one without the twin is
// an empty primitive, refused at the null's place.
func TestCheckJSONRulesNullNeedsTwin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, at string }{
		{`{"resourceType":"Patient","name":[{"given":["Jan",null]}]}`, "Patient.name[0].given[1]"},
		{`{"resourceType":"Patient","name":[{"family":"X"},{"given":[null,"Jan"],"_family":{"id":"f"}}]}`, "Patient.name[1].given[0]"},
	} {
		err := checkJSONRules([]byte(tc.in), "Patient")
		if err == nil || len(err.Expression) != 1 || err.Expression[0] != tc.at {
			t.Errorf("checkJSONRules(%s) = %v, want a null refused at %s", tc.in, err, tc.at)
		}
	}
}

func TestCheckJSONRulesAllowsValidStrings(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`{"resourceType":"Patient","name":[{"text":"a \"quoted\" \\ name"}]}`,
		`{"resourceType":"Patient","name":[{"text":"\\\\"}],"active":true,"multipleBirthInteger":2}`,
		`{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"y"}]}]}]}`,
		`{"resourceType":"Patient","name":[{"_given":[null,{"id":"g2"}],"given":["A",null]}]}`,
		`{ "resourceType" : "Patient" , "active" : false }`,
	} {
		if err := checkJSONRules([]byte(in), "Patient"); err != nil {
			t.Errorf("checkJSONRules(%s) = %v, want nil", in, err)
		}
	}
}

func BenchmarkCheckJSONRules(b *testing.B) {
	in, err := os.ReadFile("../../testdata/fhir/r4/bundle-referral-transaction.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := checkJSONRules(in, "Bundle"); err != nil {
			b.Fatal(err)
		}
	}
}
