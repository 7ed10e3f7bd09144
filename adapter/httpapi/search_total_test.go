package httpapi_test

import (
	"net/http"
	"testing"
)

// TestSearchTotal: _total=accurate, none and estimate are accepted (the
// store counts every match, or up to its bound: Bundle.total is there when
// it is exact), any other value is refused.
func TestSearchTotal(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	for _, v := range []string{"accurate", "none", "estimate"} {
		b := ts.search("Task", vals("_total", v, "_count", "1"))
		if b.GetTotal() == nil || b.GetTotal().GetValue() != 4 || len(b.GetEntry()) != 1 {
			t.Errorf("_total=%s: total %v, %d entries; want 4 (well under the bound), 1", v, b.GetTotal(), len(b.GetEntry()))
		}
		if linkURL(b, "next") == "" {
			t.Errorf("_total=%s: no next link", v)
		}
	}
	wantOutcome(t, ts.get("/Task?_total=exact"), http.StatusBadRequest, "invalid", "_total")
}
