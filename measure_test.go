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
