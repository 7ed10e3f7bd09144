package sqlite_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
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
			// A search by ids looks each one up: reading resource by any
			// other key walks every resource of the type.
			for _, l := range append(slices.Clone(page), count...) {
				if len(sh.Query.IDs) > 0 && strings.Contains(l, " SEARCH r ") && !strings.Contains(l, "id=?") {
					t.Errorf("a search by ids walks the resources of the type: %s", l)
				}
			}
		})
	}
}

// TestSearchByManyIDsPlan: a search by 50 ids (an MDT board page's
// Patients) looks each up by key, whatever the planner thinks of the
// type's other resources; with "r.id IN (…)" SQLite walked every Patient
// in resource_last_updated order instead.
func TestSearchByManyIDsPlan(t *testing.T) {
	t.Parallel()
	path, _ := seededStore(t)
	db := mustOpenPath(t, path)
	ctx := context.Background()
	some, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Patient", Count: 50})
	if err != nil || len(some.Resources) < 50 {
		t.Fatalf("50 Patients of the seeded store: %v, %v", some, err)
	}
	q := &linkbridge.ResourceQuery{Type: "Patient", Count: 50, Access: &linkbridge.Access{Keys: []string{linkbridge.ReferrerAccessKey("A81001")}}}
	for _, r := range some.Resources {
		q.IDs = append(q.IDs, r.ID)
	}
	page, count, err := db.ExplainSearch(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range append(slices.Clone(page), count...) {
		if strings.Contains(l, " SEARCH r ") && !strings.Contains(l, "id=?") {
			t.Errorf("a search by 50 ids walks the Patients: %s\npage:\n  %s", l, strings.Join(page, "\n  "))
		}
	}
	q.Access = nil
	got, err := db.SearchResources(ctx, q)
	if err != nil || len(got.Resources) != 50 {
		t.Fatalf("the search by the 50 ids found %d, %v", len(got.Resources), err)
	}
}
