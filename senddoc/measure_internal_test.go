package senddoc

import (
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// TestMeasureChange: the change between two SWEMWBS metric scores reads
// with the scores' two decimals, signed, without float noise; a fall is
// negative and ONS4 (four separate items) has no single change.
func TestMeasureChange(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	m := func(ins linkbridge.Instrument, tp string, days int, items ...int) *linkbridge.Measure {
		x := &linkbridge.Measure{Instrument: ins, Timepoint: linkbridge.Timepoint(tp), Items: items, TakenAt: at.AddDate(0, 0, days)}
		if err := x.Score(); err != nil {
			t.Fatal(err)
		}
		return x
	}
	for _, tc := range []struct {
		name string
		ms   []*linkbridge.Measure
		want string
	}{
		{"rise", []*linkbridge.Measure{m(linkbridge.SWEMWBS, "baseline", 0, 2, 3, 3, 2, 3, 2, 3), m(linkbridge.SWEMWBS, "final", 60, 3, 4, 4, 3, 4, 3, 4)}, "; change +4.92"},
		{"fall", []*linkbridge.Measure{m(linkbridge.SWEMWBS, "baseline", 0, 3, 4, 4, 3, 4, 3, 4), m(linkbridge.SWEMWBS, "final", 60, 2, 3, 3, 2, 3, 2, 3)}, "; change -4.92"},
		{"ons4", []*linkbridge.Measure{m(linkbridge.ONS4, "baseline", 0, 5, 5, 5, 5), m(linkbridge.ONS4, "final", 60, 7, 7, 7, 3)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := measureRows(tc.ms)
			if len(rows) != 1 {
				t.Fatalf("rows %+v", rows)
			}
			got := rows[0].value
			if tc.want == "" {
				if strings.Contains(got, "change") {
					t.Errorf("ONS4 row %q has a change", got)
				}
				return
			}
			if !strings.HasSuffix(got, tc.want) {
				t.Errorf("row %q, want it to end %q", got, tc.want)
			}
		})
	}
}
