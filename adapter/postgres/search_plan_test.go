package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// planNode is a node of EXPLAIN (FORMAT JSON) output.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	Relation     string     `json:"Relation Name"`
	Alias        string     `json:"Alias"`
	Index        string     `json:"Index Name"`
	IndexCond    string     `json:"Index Cond"`
	Filter       string     `json:"Filter"`
	Parent       string     `json:"Parent Relationship"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	SharedHit    float64    `json:"Shared Hit Blocks"`
	SharedRead   float64    `json:"Shared Read Blocks"`
	HeapFetches  float64    `json:"Heap Fetches"`
	Plans        []planNode `json:"Plans"`
	ExecutionDur float64    `json:"-"`
}

// explained is one statement's EXPLAIN (ANALYZE, FORMAT JSON) output.
type explained struct {
	Plan          planNode `json:"Plan"`
	ExecutionTime float64  `json:"Execution Time"`
}

// searchTables are the tables a search reads: a plan must never scan them
// whole, nor read a range of an index table once per candidate row.
var searchTables = []string{"resource", "search_param", "resource_access"}

// probe matches the index condition of a lookup of one resource's entries
// in an index table.
var probe = regexp.MustCompile(`\(id = \w+\.id\)`)

// checkPlan returns what is wrong with a plan: a sequential scan of a
// search table, a subquery run once per row (SubPlan: the correlated
// "IN (SELECT ...)" this replaced), or an index table read on the inner
// side of a nested loop by anything but one resource's key (a range per
// row).
//
// A statement that reads a bounded number of matches (a page, a bounded
// count) must not read a filter whole either: no hash built of an index
// table, no sort of more than sqlshared.DriveLimit rows.
func checkPlan(n *planNode, inner, bounded bool) []string {
	var bad []string
	isTable := slices.Contains(searchTables, n.Relation)
	switch {
	case isTable && n.NodeType == "Seq Scan":
		bad = append(bad, "sequential scan of "+n.Relation)
	case bounded && n.NodeType == "Hash":
		bad = append(bad, fmt.Sprintf("hash of %.0f rows", n.ActualRows))
	case bounded && n.NodeType == "Sort" && len(n.Plans) == 1 && n.Plans[0].ActualRows*n.Plans[0].ActualLoops > sqlshared.DriveLimit:
		bad = append(bad, fmt.Sprintf("sort of %.0f rows", n.Plans[0].ActualRows*n.Plans[0].ActualLoops))
	case n.Parent == "SubPlan":
		bad = append(bad, fmt.Sprintf("%s run once per row (SubPlan)", n.NodeType))
	case inner && (n.Relation == "resource_access" || n.Relation == "search_param") && !probe.MatchString(n.IndexCond):
		bad = append(bad, fmt.Sprintf("%s read by range (%s) once per row of a nested loop", n.Relation, n.IndexCond))
	}
	for i := range n.Plans {
		c := &n.Plans[i]
		bad = append(bad, checkPlan(c, inner || n.NodeType == "Nested Loop" && c.Parent == "Inner", bounded)...)
	}
	return bad
}

// summary renders a plan as one indented line per node.
func summary(n *planNode, depth int, b *strings.Builder) {
	fmt.Fprintf(b, "%s%s", strings.Repeat("  ", depth), n.NodeType)
	if n.Relation != "" {
		fmt.Fprintf(b, " on %s %s", n.Relation, n.Alias)
	}
	if n.Index != "" {
		fmt.Fprintf(b, " using %s", n.Index)
	}
	if n.IndexCond != "" {
		fmt.Fprintf(b, " [%s]", n.IndexCond)
	}
	if n.Filter != "" {
		fmt.Fprintf(b, " filter [%s]", n.Filter)
	}
	fmt.Fprintf(b, " (rows %.0f x %.0f loops, heap fetches %.0f)\n", n.ActualRows, n.ActualLoops, n.HeapFetches)
	for i := range n.Plans {
		summary(&n.Plans[i], depth+1, b)
	}
}

// TestSearchPlans runs EXPLAIN ANALYZE on the statements of every search
// shape over 10,000 seeded referrals and fails on a plan whose cost grows
// with the rows of the tables rather than with the page (see checkPlan). It
// checks each shape's results against the corpus too.
func TestSearchPlans(t *testing.T) {
	t.Parallel()
	u, c := seededStore(t)
	db := mustOpenURL(t, u)
	ctx := context.Background()
	for _, sh := range c.Shapes() {
		t.Run(sh.Name, func(t *testing.T) {
			c.CheckShape(ctx, t, db, sh)
			page, count, err := db.ExplainSearch(ctx, sh.Query, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range []struct {
				name    string
				out     []byte
				bounded bool
			}{{"page", page, true}, {"count", count, !sh.Query.AccurateTotal}} {
				for _, msg := range checkPlan(loggedPlan(t, st.name, st.out), false, st.bounded) {
					t.Errorf("%s: %s", st.name, msg)
				}
			}
		})
	}
}

// parsePlan reads EXPLAIN (ANALYZE, FORMAT JSON) output; label names the
// statement in a failure.
func parsePlan(tb testing.TB, label string, out []byte) *explained {
	tb.Helper()
	var ex []explained
	if err := json.Unmarshal(out, &ex); err != nil || len(ex) != 1 {
		tb.Fatalf("%s: EXPLAIN output: %v", label, err)
	}
	return &ex[0]
}

// planSummary renders EXPLAIN (ANALYZE, FORMAT JSON) output for a log.
func planSummary(tb testing.TB, out []byte) string {
	tb.Helper()
	ex := parsePlan(tb, "plan", out)
	var b strings.Builder
	fmt.Fprintf(&b, "(%.2f ms):\n", ex.ExecutionTime)
	summary(&ex.Plan, 1, &b)
	return b.String()
}

// loggedPlan parses EXPLAIN (ANALYZE, FORMAT JSON) output, logs it as
// "<label> plan" with its summary, and returns its top node.
func loggedPlan(tb testing.TB, label string, out []byte) *planNode {
	tb.Helper()
	tb.Logf("%s plan %s", label, planSummary(tb, out))
	return &parsePlan(tb, label, out).Plan
}
