package sqlite_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Plan lines that make a search's cost grow with the tables rather than
// with the page (EXPLAIN QUERY PLAN details; r is resource, t an index
// table, d the entries of the filter a search starts from).
var (
	// fullScan is a scan of a whole table or index.
	fullScan = regexp.MustCompile(`^SCAN (r|t)\b`)
	// listSubquery is a subquery evaluated in full to a list first: the
	// "r.id IN (SELECT ...)" that read every entry of an access key.
	listSubquery = regexp.MustCompile(`LIST SUBQUERY`)
	// rangeRead is an index table read by a range of its key rather than
	// probed for one resource.
	rangeRead = regexp.MustCompile(`^SEARCH t USING .*\((type=\? AND (key|name=\? AND value)=\?)\)$`)
)

// planLine is one row of EXPLAIN QUERY PLAN.
type planLine struct {
	id, parent string
	detail     string
}

func parsePlan(lines []string) []planLine {
	out := make([]planLine, len(lines))
	for i, l := range lines {
		f := strings.SplitN(l, " ", 3)
		out[i] = planLine{f[0], f[1], f[2]}
	}
	return out
}

// checkPlan returns what is wrong with a plan: a full scan of resource or
// an index table, a subquery evaluated to a list, an index table read by
// range anywhere but in the driving subquery d (whose entries choose
// bounded), or a sort of the matches when the search does not start from
// a rare filter's entries or from ids.
func checkPlan(lines []string, byID bool) []string {
	plan := parsePlan(lines)
	var bad []string
	driver := map[string]bool{} // ids of the nodes under the driving subquery
	drives := false
	for _, l := range plan {
		if strings.HasPrefix(l.detail, "MATERIALIZE d") || strings.HasPrefix(l.detail, "CO-ROUTINE d") {
			driver[l.id] = true
			drives = true
		}
		if driver[l.parent] {
			driver[l.id] = true
		}
	}
	for _, l := range plan {
		switch {
		case fullScan.MatchString(l.detail):
			bad = append(bad, "full scan: "+l.detail)
		case listSubquery.MatchString(l.detail):
			bad = append(bad, "subquery evaluated in full: "+l.detail)
		case rangeRead.MatchString(l.detail) && !driver[l.id]:
			bad = append(bad, "index table read by range outside the driving subquery: "+l.detail)
		case strings.Contains(l.detail, "TEMP B-TREE FOR ORDER BY") && !drives && !byID:
			bad = append(bad, "every match sorted: "+l.detail)
		}
	}
	return bad
}

// TestSearchPlans runs EXPLAIN QUERY PLAN on the statements of every
// search shape over 10,000 seeded referrals, and fails on a plan whose
// cost grows with the rows of the tables rather than with the page (see
// checkPlan). It checks each shape's results against the corpus too, and
// logs their time.
func TestSearchPlans(t *testing.T) {
	t.Parallel()
	path, c := seededStore(t)
	db := mustOpenPath(t, path)
	ctx := context.Background()
	for _, sh := range c.Shapes() {
		t.Run(sh.Name, func(t *testing.T) {
			start := time.Now()
			c.CheckShape(ctx, t, db, sh)
			took := time.Since(start)
			page, count, err := db.ExplainSearch(ctx, sh.Query)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v\npage:\n  %s\ncount:\n  %s", took, strings.Join(page, "\n  "), strings.Join(count, "\n  "))
			for _, msg := range checkPlan(page, len(sh.Query.IDs) > 0) {
				t.Errorf("page: %s", msg)
			}
			for _, msg := range checkPlan(count, true) {
				t.Errorf("count: %s", msg)
			}
		})
	}
}
