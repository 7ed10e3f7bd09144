package linkbridge_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// swemwbsTable reads the SWEMWBS raw → metric conversion (the official
// Warwick table) from docs/domain.md#swemwbs-conversion-table, so that the
// test's oracle is the document's text, not measure.go's map.
func swemwbsTable(t *testing.T) map[int]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("docs", "domain.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### SWEMWBS conversion table\n")
	if !ok {
		t.Fatal("docs/domain.md has no SWEMWBS conversion table section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	out := map[int]string{}
	for _, m := range swemwbsRow.FindAllStringSubmatch(section, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatalf("bad table row %q", m[0])
		}
		if _, dup := out[n]; dup {
			t.Fatalf("raw %d appears twice in the table", n)
		}
		out[n] = m[2]
	}
	if len(out) != 29 {
		t.Fatalf("table has %d entries, want 29 (raw 7–35)", len(out))
	}
	return out
}

// swemwbsRow is a row "| raw | metric |" of the table.
var swemwbsRow = regexp.MustCompile(`(?m)^\| (\d+) \| (\d+\.\d\d) \|$`)

// instrumentRules is docs/domain.md#outcome-measures, transcribed
// independently of measure.go.
var instrumentRules = []struct {
	inst               linkbridge.Instrument
	items, min, max    int
	summed             bool // Total is the item sum (ONS4 is never combined)
	totalMin, totalMax int
}{
	{linkbridge.ONS4, 4, 0, 10, false, 0, 0},
	{linkbridge.WEMWBS, 14, 1, 5, true, 14, 70},
	{linkbridge.SWEMWBS, 7, 1, 5, true, 7, 35},
	{linkbridge.UCLA3, 3, 1, 3, true, 3, 9},
}

var takenAt = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func filled(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// wantErr checks an application error's code, its element paths and
// (when msg is set) that its message contains msg.
func wantErr(t *testing.T, err error, code string, expr []string, msg string) {
	t.Helper()
	if got := linkbridge.ErrorCode(err); got != code {
		t.Fatalf("error = %v, want code %q", err, code)
	}
	if expr != nil && !slices.Equal(linkbridge.ErrorExpression(err), expr) {
		t.Errorf("error names %q, want %q (%v)", linkbridge.ErrorExpression(err), expr, err)
	}
	if msg != "" && !strings.Contains(linkbridge.ErrorMessage(err), msg) {
		t.Errorf("error message %q does not contain %q", linkbridge.ErrorMessage(err), msg)
	}
}

func TestMeasureScoreRanges(t *testing.T) {
	t.Parallel()
	for _, r := range instrumentRules {
		t.Run(string(r.inst), func(t *testing.T) {
			t.Parallel()
			score := func(items []int) (*linkbridge.Measure, error) {
				m := &linkbridge.Measure{Instrument: r.inst, Timepoint: linkbridge.TimepointBaseline, Items: items, TakenAt: takenAt}
				return m, m.Score()
			}
			// Every item at the bottom and at the top of its range.
			for _, v := range []int{r.min, r.max} {
				m, err := score(filled(r.items, v))
				if err != nil {
					t.Fatalf("all items %d: unexpected error %v", v, err)
				}
				want := 0
				if r.summed {
					want = r.items * v
				}
				if m.Total != want {
					t.Errorf("all items %d: Total = %d, want %d", v, m.Total, want)
				}
			}
			if r.summed {
				lo, _ := score(filled(r.items, r.min))
				hi, _ := score(filled(r.items, r.max))
				if lo.Total != r.totalMin || hi.Total != r.totalMax {
					t.Errorf("total range = %d–%d, want %d–%d", lo.Total, hi.Total, r.totalMin, r.totalMax)
				}
			}
			// ONS4 items are kept separately, in order, never summed.
			if r.inst == linkbridge.ONS4 {
				m, err := score([]int{7, 8, 6, 3})
				if err != nil || m.Total != 0 || !slices.Equal(m.Items, []int{7, 8, 6, 3}) || m.Metric != 0 {
					t.Errorf("ONS4 = %+v, %v; want the four items kept, no total", m, err)
				}
				if len(linkbridge.ONS4Items) != 4 || linkbridge.ONS4Items[3] != "anxious-yesterday" {
					t.Errorf("ONS4Items = %q, want four with anxiety last", linkbridge.ONS4Items)
				}
			}
			// Incomplete (or overfull) item sets.
			for _, n := range []int{0, 1, r.items - 1, r.items + 1} {
				_, err := score(filled(n, r.min))
				wantErr(t, err, linkbridge.EUNPROCESSABLE, []string{"items"}, fmt.Sprintf("all %d items, got %d", r.items, n))
			}
			_, err := score(nil)
			wantErr(t, err, linkbridge.EUNPROCESSABLE, []string{"items"}, "")
			// Each item at each boundary, and just outside it.
			for i := 0; i < r.items; i++ {
				for _, v := range []int{r.min, r.max} {
					items := filled(r.items, (r.min+r.max)/2)
					items[i] = v
					if _, err := score(items); err != nil {
						t.Errorf("item %d = %d (boundary): unexpected error %v", i+1, v, err)
					}
				}
				for _, v := range []int{r.min - 1, r.max + 1, -100, 100} {
					items := filled(r.items, r.min)
					items[i] = v
					_, err := score(items)
					wantErr(t, err, linkbridge.EUNPROCESSABLE, []string{fmt.Sprintf("items[%d]", i)}, fmt.Sprintf("item %d is %d", i+1, v))
				}
			}
			// The first bad item is the one named.
			items := filled(r.items, r.max+1)
			_, err = score(items)
			wantErr(t, err, linkbridge.EUNPROCESSABLE, []string{"items[0]"}, "")
		})
	}
}

func TestMeasureScoreOtherRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    linkbridge.Measure
		expr string
	}{
		{"UnknownInstrument", linkbridge.Measure{Instrument: "PHQ9", Timepoint: "baseline", Items: []int{1}, TakenAt: takenAt}, "instrument"},
		{"LowercaseInstrument", linkbridge.Measure{Instrument: "swemwbs", Timepoint: "baseline", Items: filled(7, 3), TakenAt: takenAt}, "instrument"},
		{"NoTimepoint", linkbridge.Measure{Instrument: linkbridge.UCLA3, Items: filled(3, 2), TakenAt: takenAt}, "timepoint"},
		{"UnknownTimepoint", linkbridge.Measure{Instrument: linkbridge.UCLA3, Timepoint: "midpoint", Items: filled(3, 2), TakenAt: takenAt}, "timepoint"},
		{"NoTakenAt", linkbridge.Measure{Instrument: linkbridge.UCLA3, Timepoint: "final", Items: filled(3, 2)}, "takenAt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Score()
			wantErr(t, err, linkbridge.EUNPROCESSABLE, []string{tt.expr}, "")
		})
	}
	for _, tp := range []linkbridge.Timepoint{linkbridge.TimepointBaseline, linkbridge.TimepointReview, linkbridge.TimepointFinal} {
		m := linkbridge.Measure{Instrument: linkbridge.UCLA3, Timepoint: tp, Items: filled(3, 2), TakenAt: takenAt}
		if err := m.Score(); err != nil || m.Total != 6 {
			t.Errorf("timepoint %s: Total %d, err %v; want 6, nil", tp, m.Total, err)
		}
	}
	// Scoring again recomputes: a caller cannot smuggle in a total.
	m := linkbridge.Measure{Instrument: linkbridge.WEMWBS, Timepoint: "review", Items: filled(14, 2), TakenAt: takenAt, Total: 99, Metric: 12.5}
	if err := m.Score(); err != nil || m.Total != 28 || m.Metric != 0 {
		t.Errorf("WEMWBS with a preset total: Total %d Metric %v err %v; want 28, 0, nil", m.Total, m.Metric, err)
	}
	o := linkbridge.Measure{Instrument: linkbridge.ONS4, Timepoint: "review", Items: []int{1, 2, 3, 4}, TakenAt: takenAt, Total: 10}
	if err := o.Score(); err != nil || o.Total != 0 {
		t.Errorf("ONS4 with a preset total: Total %d err %v; want 0 (never combined)", o.Total, err)
	}
}

// TestSWEMWBSMetricTable checks every raw score 7..35, reached through
// Score with a real item set, against the table in docs/domain.md.
func TestSWEMWBSMetricTable(t *testing.T) {
	t.Parallel()
	table := swemwbsTable(t)
	for raw := 7; raw <= 35; raw++ {
		// Spread raw over seven items of 1–5.
		items := filled(7, 1)
		for rest, i := raw-7, 0; rest > 0; i++ {
			add := min(rest, 4)
			items[i] += add
			rest -= add
		}
		m := linkbridge.Measure{Instrument: linkbridge.SWEMWBS, Timepoint: linkbridge.TimepointBaseline, Items: items, TakenAt: takenAt}
		if err := m.Score(); err != nil {
			t.Fatalf("raw %d (%v): unexpected error %v", raw, items, err)
		}
		if m.Total != raw {
			t.Errorf("items %v: Total = %d, want %d", items, m.Total, raw)
		}
		if got := strconv.FormatFloat(m.Metric, 'f', 2, 64); got != table[raw] {
			t.Errorf("raw %d: metric = %s, want %s (docs/domain.md table)", raw, got, table[raw])
		}
		direct, ok := linkbridge.SWEMWBSMetric(raw)
		if !ok || direct != m.Metric {
			t.Errorf("SWEMWBSMetric(%d) = %v, %v; want %v, true", raw, direct, ok, m.Metric)
		}
	}
	for _, raw := range []int{-1, 0, 6, 36, 70} {
		if m, ok := linkbridge.SWEMWBSMetric(raw); ok {
			t.Errorf("SWEMWBSMetric(%d) = %v, true; want no metric outside 7–35", raw, m)
		}
	}
	// The table is monotonic and not a straight line (never a formula).
	prev := 0.0
	for raw := 7; raw <= 35; raw++ {
		m, _ := linkbridge.SWEMWBSMetric(raw)
		if m <= prev {
			t.Errorf("metric(%d) = %v is not above metric(%d) = %v", raw, m, raw-1, prev)
		}
		prev = m
	}
}

// TestChangesFromBaseline checks the change of each follow-up from the
// baseline of the same instrument and referral (docs/domain.md#change-from-baseline).
func TestChangesFromBaseline(t *testing.T) {
	t.Parallel()
	day := func(n int) time.Time { return takenAt.AddDate(0, 0, n) }
	m := func(id string, inst linkbridge.Instrument, tp linkbridge.Timepoint, at time.Time, items ...int) *linkbridge.Measure {
		x := &linkbridge.Measure{ID: id, ReferralID: "ref-1", Instrument: inst, Timepoint: tp, Items: items, TakenAt: at}
		if err := x.Score(); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return x
	}
	score := func(f float64) *float64 { return &f }
	swemwbs := func(id string, tp linkbridge.Timepoint, at time.Time, items ...int) *linkbridge.Measure {
		return m(id, linkbridge.SWEMWBS, tp, at, items...)
	}
	const (
		base   = linkbridge.TimepointBaseline
		review = linkbridge.TimepointReview
		final  = linkbridge.TimepointFinal
	)
	tests := []struct {
		name     string
		measures []*linkbridge.Measure
		want     map[string]*linkbridge.ScoreChange
	}{
		{"NoMeasures", nil, map[string]*linkbridge.ScoreChange{}},
		{"BaselineOnly", []*linkbridge.Measure{swemwbs("b", base, day(0), 2, 2, 3, 2, 2, 3, 2)}, map[string]*linkbridge.ScoreChange{}},
		{"NoBaseline", []*linkbridge.Measure{
			swemwbs("r", review, day(30), 2, 2, 3, 2, 2, 3, 2), swemwbs("f", final, day(60), 4, 4, 3, 4, 4, 3, 4),
		}, map[string]*linkbridge.ScoreChange{}},
		{"SWEMWBSMetric", []*linkbridge.Measure{
			// raw 16 -> 16.36, raw 26 -> 23.21: the change is of the metric score.
			swemwbs("b", base, day(0), 2, 2, 3, 2, 2, 3, 2), swemwbs("f", final, day(60), 4, 4, 3, 4, 4, 3, 4),
		}, map[string]*linkbridge.ScoreChange{"f": {BaselineID: "b", Score: score(6.85), Items: []int{2, 2, 0, 2, 2, 0, 2}}}},
		{"SeveralFollowUps", []*linkbridge.Measure{
			m("b", linkbridge.UCLA3, base, day(0), 3, 3, 3),
			m("r1", linkbridge.UCLA3, review, day(30), 2, 3, 3),
			m("r2", linkbridge.UCLA3, review, day(45), 3, 3, 3),
			m("f", linkbridge.UCLA3, final, day(60), 1, 1, 2),
		}, map[string]*linkbridge.ScoreChange{
			"r1": {BaselineID: "b", Score: score(-1), Items: []int{-1, 0, 0}},
			"r2": {BaselineID: "b", Score: score(0), Items: []int{0, 0, 0}},
			"f":  {BaselineID: "b", Score: score(-5), Items: []int{-2, -2, -1}},
		}},
		{"ONS4ItemsOnly", []*linkbridge.Measure{
			m("b", linkbridge.ONS4, base, day(0), 4, 5, 3, 8), m("f", linkbridge.ONS4, final, day(60), 7, 6, 6, 3),
		}, map[string]*linkbridge.ScoreChange{"f": {BaselineID: "b", Items: []int{3, 1, 3, -5}}}},
		{"SameInstrumentOnly", []*linkbridge.Measure{
			m("b-wemwbs", linkbridge.WEMWBS, base, day(0), filled(14, 2)...),
			swemwbs("f-swemwbs", final, day(60), 4, 4, 3, 4, 4, 3, 4),
			m("f-wemwbs", linkbridge.WEMWBS, final, day(60), filled(14, 3)...),
		}, map[string]*linkbridge.ScoreChange{"f-wemwbs": {BaselineID: "b-wemwbs", Score: score(14), Items: filled(14, 1)}}},
		{"LatestBaselineBeforeTheFollowUp", []*linkbridge.Measure{
			m("b1", linkbridge.UCLA3, base, day(0), 3, 3, 3),
			m("b2", linkbridge.UCLA3, base, day(5), 3, 3, 2),
			m("r", linkbridge.UCLA3, review, day(30), 2, 2, 2),
			m("b3", linkbridge.UCLA3, base, day(40), 1, 1, 1), // after r: not its baseline
			m("f", linkbridge.UCLA3, final, day(60), 1, 1, 2),
		}, map[string]*linkbridge.ScoreChange{
			"r": {BaselineID: "b2", Score: score(-2), Items: []int{-1, -1, 0}},
			"f": {BaselineID: "b3", Score: score(1), Items: []int{0, 0, 1}},
		}},
		{"BaselineAtTheSameTime", []*linkbridge.Measure{
			m("b", linkbridge.UCLA3, base, day(0), 3, 3, 3), m("r", linkbridge.UCLA3, review, day(0), 2, 3, 3),
		}, map[string]*linkbridge.ScoreChange{"r": {BaselineID: "b", Score: score(-1), Items: []int{-1, 0, 0}}}},
		{"OtherReferral", func() []*linkbridge.Measure {
			b := m("b", linkbridge.UCLA3, base, day(0), 3, 3, 3)
			b.ReferralID = "ref-2"
			return []*linkbridge.Measure{b, m("f", linkbridge.UCLA3, final, day(60), 1, 1, 1)}
		}(), map[string]*linkbridge.ScoreChange{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := linkbridge.ChangesFromBaseline(tt.measures)
			if len(got) != len(tt.want) {
				t.Errorf("%d changes, want %d: %v", len(got), len(tt.want), got)
			}
			for id, w := range tt.want {
				g := got[id]
				if g == nil {
					t.Errorf("%s: no change, want %+v", id, w)
					continue
				}
				if g.BaselineID != w.BaselineID || !slices.Equal(g.Items, w.Items) || (g.Score == nil) != (w.Score == nil) ||
					g.Score != nil && *g.Score != *w.Score {
					t.Errorf("%s: change = {%s %v %v}, want {%s %v %v}", id, g.BaselineID, deref(g.Score), g.Items, w.BaselineID, deref(w.Score), w.Items)
				}
			}
		})
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}
