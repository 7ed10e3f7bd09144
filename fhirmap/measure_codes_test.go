package fhirmap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// measureCase is an accepted case with a baseline and a follow-up of every
// instrument, the follow-ups scoring differently from their baselines.
func measureCase(t *testing.T) *linkbridge.CaseRecord {
	t.Helper()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := &linkbridge.Referral{ID: "ref-m", TaskID: "task-m", PatientID: "pat-m", Status: linkbridge.TaskInProgress,
		Consent: linkbridge.ConsentFull, ReceivedAt: at.Add(-72 * time.Hour), AcceptedAt: at.Add(-48 * time.Hour), UpdatedAt: at}
	cr := &linkbridge.CaseRecord{Referral: r}
	add := func(id string, inst linkbridge.Instrument, tp linkbridge.Timepoint, days int, items ...int) {
		m := &linkbridge.Measure{ID: id, ReferralID: r.ID, Instrument: inst, Timepoint: tp, Items: items, TakenAt: at.AddDate(0, 0, days)}
		if err := m.Score(); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		cr.Measures = append(cr.Measures, m)
	}
	add("ons4-b", linkbridge.ONS4, linkbridge.TimepointBaseline, 0, 4, 5, 3, 8)
	add("wemwbs-b", linkbridge.WEMWBS, linkbridge.TimepointBaseline, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2)
	add("swemwbs-b", linkbridge.SWEMWBS, linkbridge.TimepointBaseline, 0, 2, 2, 3, 2, 2, 3, 2)
	add("ucla3-b", linkbridge.UCLA3, linkbridge.TimepointBaseline, 0, 3, 3, 3)
	add("ons4-f", linkbridge.ONS4, linkbridge.TimepointFinal, 60, 7, 6, 6, 3)
	add("wemwbs-f", linkbridge.WEMWBS, linkbridge.TimepointFinal, 60, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4)
	add("swemwbs-f", linkbridge.SWEMWBS, linkbridge.TimepointFinal, 60, 4, 4, 3, 4, 4, 3, 4)
	add("ucla3-f", linkbridge.UCLA3, linkbridge.TimepointFinal, 60, 1, 2, 1)
	return cr
}

// observations is the outcome-measure Observations of a case view by id.
func observations(t *testing.T, cr *linkbridge.CaseRecord) map[string]*observationpb.Observation {
	t.Helper()
	out := map[string]*observationpb.Observation{}
	c := mustCodec(t)
	for _, g := range (fhirmap.Systems{}).CaseView(cr) {
		mustRenderGenerated(t, c, g) // valid for google/fhir and the R4 JSON schema
		if o, ok := g.Resource.(*observationpb.Observation); ok {
			out[g.ID] = o
		}
	}
	return out
}

// codeKey is a coding as system|code|display.
func codeKey(c *dpb.Coding) string {
	return c.GetSystem().GetValue() + "|" + c.GetCode().GetValue() + "|" + c.GetDisplay().GetValue()
}

// docsMeasureCodes reads docs/domain.md#fhir-codes-of-the-outcome-measures:
// every system|code|display the table lists, "{a..b}" expanded.
func docsMeasureCodes(t *testing.T) map[string]bool {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "domain.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### FHIR codes of the outcome measures\n")
	if !ok {
		t.Fatal("docs/domain.md has no section FHIR codes of the outcome measures")
	}
	section, _, _ = strings.Cut(section, "\n#")
	out := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) != 5 || !strings.HasPrefix(cells[1], "`") {
			continue
		}
		system, code, display := strings.Trim(cells[1], "`"), strings.Trim(cells[2], "`"), cells[3]
		lo, hi := 0, 0
		if a, rest, ok := strings.Cut(code, "{"); ok {
			rng, tail, _ := strings.Cut(rest, "}")
			from, to, _ := strings.Cut(rng, "..")
			lo, _ = strconv.Atoi(from)
			hi, _ = strconv.Atoi(to)
			if lo < 1 || hi < lo || tail != "" {
				t.Fatalf("bad range in %q", code)
			}
			for n := lo; n <= hi; n++ {
				d := strings.Replace(display, "{"+rng+"}", strconv.Itoa(n), 1)
				out[system+"|"+a+strconv.Itoa(n)+"|"+d] = true
			}
			continue
		}
		out[system+"|"+code+"|"+display] = true
	}
	if len(out) < 20 {
		t.Fatalf("read %d codes from the docs table, want the whole table", len(out))
	}
	return out
}

// loincCheckDigitOK checks a LOINC code's mod-10 check digit (the Luhn
// algorithm over the digits before the hyphen and the check digit).
func loincCheckDigitOK(code string) bool {
	body, check, ok := strings.Cut(code, "-")
	if !ok || len(check) != 1 || body == "" {
		return false
	}
	sum, double := 0, false
	digits := body + check
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func TestLOINCCheckDigit(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]bool{"66867-3": true, "106418-7": true, "100946-3": true, "66867-4": false, "106418-1": false, "abc-1": false, "66867": false} {
		if got := loincCheckDigitOK(code); got != want {
			t.Errorf("loincCheckDigitOK(%q) = %v, want %v", code, got, want)
		}
	}
}

// TestMeasureCodesMatchDocs checks that the outcome-measure Observations
// carry exactly the codes, with exactly the displays, that
// docs/domain.md#fhir-codes-of-the-outcome-measures lists and sources, and
// that every national code passes its check digit.
func TestMeasureCodesMatchDocs(t *testing.T) {
	t.Parallel()
	want := docsMeasureCodes(t)
	got := map[string]bool{}
	for _, o := range observations(t, measureCase(t)) {
		var cs []*dpb.Coding
		cs = append(cs, o.GetCode().GetCoding()...)
		for _, c := range o.GetCategory() {
			cs = append(cs, c.GetCoding()...)
		}
		for _, comp := range o.GetComponent() {
			cs = append(cs, comp.GetCode().GetCoding()...)
		}
		for _, c := range cs {
			got[codeKey(c)] = true
		}
	}
	if diff := cmp.Diff(sortedKeys(want), sortedKeys(got)); diff != "" {
		t.Errorf("codes of the measure Observations differ from the docs table (-docs +generated):\n%s", diff)
	}
	for k := range got {
		parts := strings.SplitN(k, "|", 3)
		switch parts[0] {
		case linkbridge.SNOMEDSystem:
			if !linkbridge.ValidSCTID(parts[1]) {
				t.Errorf("SNOMED CT %s fails its Verhoeff check", parts[1])
			}
		case linkbridge.LOINCSystem:
			if !loincCheckDigitOK(parts[1]) {
				t.Errorf("LOINC %s fails its check digit", parts[1])
			}
		}
	}
	if !loincCheckDigitOK(fhirmap.LOINCUCLA3) {
		t.Errorf("LOINC panel %s fails its check digit", fhirmap.LOINCUCLA3)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// component is a component's code and value, as a test reads it.
type component struct {
	code  string // system|code
	value string // "int:N" or "qty:V {score}"
}

func components(o *observationpb.Observation) []component {
	var out []component
	for _, c := range o.GetComponent() {
		cd := c.GetCode().GetCoding()[0]
		comp := component{code: cd.GetSystem().GetValue() + "|" + cd.GetCode().GetValue()}
		switch {
		case c.GetValue().GetInteger() != nil:
			comp.value = fmt.Sprintf("int:%d", c.GetValue().GetInteger().GetValue())
		case c.GetValue().GetQuantity() != nil:
			q := c.GetValue().GetQuantity()
			comp.value = "qty:" + q.GetValue().GetValue() + " " + q.GetCode().GetValue()
			if q.GetSystem().GetValue() != fhirmap.UCUM || q.GetUnit().GetValue() != "{score}" {
				comp.value += " (not UCUM {score})"
			}
		}
		out = append(out, comp)
	}
	return out
}

// TestMeasureObservations checks each instrument's Observation: the score
// as valueQuantity in UCUM {score} under the right code (none for ONS4),
// every item a coded component in order, and on the follow-up the change
// from baseline and derivedFrom the baseline.
func TestMeasureObservations(t *testing.T) {
	t.Parallel()
	obs := observations(t, measureCase(t))
	local := func(code string) string { return fhirmap.OutcomeCodeSystem + "|" + code }
	ons := func(code string) string { return fhirmap.ONS4CodeSystem + "|" + code }
	items := func(prefix string, vals ...int) []component {
		var out []component
		for i, v := range vals {
			out = append(out, component{local(prefix + "-item-" + strconv.Itoa(i+1)), fmt.Sprintf("int:%d", v)})
		}
		return out
	}
	fill := func(n, v int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	tests := []struct {
		id, code, value, baseline string
		components                []component
	}{
		{"ons4-b", ons("ons4"), "", "", []component{
			{ons("life-satisfaction"), "int:4"}, {ons("worthwhile"), "int:5"}, {ons("happy-yesterday"), "int:3"}, {ons("anxious-yesterday"), "int:8"}}},
		{"ons4-f", ons("ons4"), "", "ons4-b", []component{
			{ons("life-satisfaction"), "int:7"}, {ons("worthwhile"), "int:6"}, {ons("happy-yesterday"), "int:6"}, {ons("anxious-yesterday"), "int:3"},
			{ons("life-satisfaction-change"), "int:3"}, {ons("worthwhile-change"), "int:1"}, {ons("happy-yesterday-change"), "int:3"}, {ons("anxious-yesterday-change"), "int:-5"}}},
		{"wemwbs-b", linkbridge.SNOMEDSystem + "|" + fhirmap.SCTWEMWBS, "28 {score}", "", items("wemwbs", fill(14, 2)...)},
		{"wemwbs-f", linkbridge.SNOMEDSystem + "|" + fhirmap.SCTWEMWBS, "43 {score}", "wemwbs-b",
			append(items("wemwbs", append(fill(13, 3), 4)...), component{local("change-from-baseline"), "qty:15 {score}"})},
		{"swemwbs-b", linkbridge.SNOMEDSystem + "|" + fhirmap.SCTSWEMWBS, "16.36 {score}", "",
			append([]component{{local("swemwbs-raw-score"), "qty:16 {score}"}}, items("swemwbs", 2, 2, 3, 2, 2, 3, 2)...)},
		{"swemwbs-f", linkbridge.SNOMEDSystem + "|" + fhirmap.SCTSWEMWBS, "23.21 {score}", "swemwbs-b",
			append(append([]component{{local("swemwbs-raw-score"), "qty:26 {score}"}}, items("swemwbs", 4, 4, 3, 4, 4, 3, 4)...),
				component{local("change-from-baseline"), "qty:6.85 {score}"})},
		{"ucla3-b", local("ucla3-total-score"), "9 {score}", "", []component{
			{local("ucla3-lack-companionship"), "int:3"}, {local("ucla3-left-out"), "int:3"}, {linkbridge.LOINCSystem + "|" + fhirmap.LOINCUCLA3Isolated, "int:3"}}},
		{"ucla3-f", local("ucla3-total-score"), "4 {score}", "ucla3-b", []component{
			{local("ucla3-lack-companionship"), "int:1"}, {local("ucla3-left-out"), "int:2"}, {linkbridge.LOINCSystem + "|" + fhirmap.LOINCUCLA3Isolated, "int:1"},
			{local("change-from-baseline"), "qty:-5 {score}"}}},
	}
	for _, tt := range tests {
		o := obs[tt.id]
		if o == nil {
			t.Errorf("no Observation %s", tt.id)
			continue
		}
		cd := o.GetCode().GetCoding()
		if len(cd) != 1 || cd[0].GetSystem().GetValue()+"|"+cd[0].GetCode().GetValue() != tt.code || cd[0].GetDisplay().GetValue() == "" {
			t.Errorf("%s: code = %v, want %s with a display", tt.id, o.GetCode(), tt.code)
		}
		value := ""
		if q := o.GetValue().GetQuantity(); q != nil {
			value = q.GetValue().GetValue() + " " + q.GetCode().GetValue()
			if q.GetSystem().GetValue() != fhirmap.UCUM || q.GetUnit().GetValue() != "{score}" {
				t.Errorf("%s: value unit = %v, want UCUM {score}", tt.id, q)
			}
		} else if o.GetValue() != nil {
			t.Errorf("%s: value = %v, want a Quantity or none", tt.id, o.GetValue())
		}
		if value != tt.value {
			t.Errorf("%s: value = %q, want %q", tt.id, value, tt.value)
		}
		if diff := cmp.Diff(tt.components, components(o), cmp.AllowUnexported(component{})); diff != "" {
			t.Errorf("%s: components (-want +got):\n%s", tt.id, diff)
		}
		var derived []string
		for _, ref := range o.GetDerivedFrom() {
			typ, id := fhirmap.RefTarget(ref)
			derived = append(derived, typ+"/"+id)
		}
		if want := []string(nil); tt.baseline != "" {
			want = []string{"Observation/" + tt.baseline}
			if !cmp.Equal(derived, want) {
				t.Errorf("%s: derivedFrom = %v, want %v", tt.id, derived, want)
			}
		} else if len(derived) != 0 {
			t.Errorf("%s: derivedFrom = %v, want none", tt.id, derived)
		}
		if typ, id := fhirmap.RefTarget(o.GetBasedOn()[0]); typ+"/"+id != "ServiceRequest/ref-m" || len(o.GetBasedOn()) != 1 {
			t.Errorf("%s: basedOn = %v, want the referral ServiceRequest", tt.id, o.GetBasedOn())
		}
	}
}

// TestCaseViewMeasureOrder: the measure Observations come by time taken,
// a baseline before a follow-up taken at the same time, whatever order
// the case lists its measures in (as added, or as read back).
func TestCaseViewMeasureOrder(t *testing.T) {
	t.Parallel()
	cr := measureCase(t)
	// A follow-up taken at the same time as its baseline, listed first.
	same := *cr.Measures[7]
	same.ID, same.Timepoint, same.TakenAt = "a-ucla3-r", linkbridge.TimepointReview, cr.Measures[3].TakenAt
	cr.Measures = append([]*linkbridge.Measure{&same}, cr.Measures...)
	order := func() []string {
		var out []string
		for _, g := range (fhirmap.Systems{}).CaseView(cr) {
			if g.Type == "Observation" {
				out = append(out, g.ID)
			}
		}
		return out
	}
	want := []string{"ons4-b", "swemwbs-b", "ucla3-b", "wemwbs-b", "a-ucla3-r", "ons4-f", "swemwbs-f", "ucla3-f", "wemwbs-f"}
	if got := order(); !cmp.Equal(got, want) {
		t.Errorf("Observations in order %v, want %v", got, want)
	}
	slices.Reverse(cr.Measures)
	if got := order(); !cmp.Equal(got, want) {
		t.Errorf("measures reversed: Observations in order %v, want %v", got, want)
	}
}
