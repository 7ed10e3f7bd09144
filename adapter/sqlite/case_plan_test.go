package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/bench"
)

// journeyReferrals is how many referrals with journeys the case plan
// tests seed (bench.Seed): a few hundred, fewer under the race detector.
// SQLite plans without statistics (the store runs no ANALYZE), so the
// plans do not depend on the number.
var journeyReferrals = map[bool]int{false: 200, true: 40}[raceEnabled]

// journeys is the store with journeys the case plan tests share, seeded
// once per test binary.
var journeys struct {
	once sync.Once
	path string
	err  error
}

// journeyStore returns the path of a database seeded with
// journeyReferrals referrals and their journeys, seeding it on first use.
func journeyStore(tb testing.TB) string {
	tb.Helper()
	journeys.once.Do(func() {
		dir, err := os.MkdirTemp("", "linkbridge-journeys-")
		if err != nil {
			journeys.err = err
			return
		}
		journeysDir = dir
		path := filepath.Join(dir, "linkbridge.db")
		db, err := sqlite.Open(context.Background(), path, nil)
		if err != nil {
			journeys.err = err
			return
		}
		start := time.Now()
		st, err := bench.Seed(context.Background(), db, bench.SeedConfig{Referrals: journeyReferrals, Batch: 50})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		tb.Logf("seeded %d referrals with journeys (%d changes) in %v", st.Referrals, st.Changes, time.Since(start).Round(time.Millisecond))
		journeys.path, journeys.err = path, err
	})
	if journeys.err != nil {
		tb.Fatalf("seed: %v", journeys.err)
	}
	return journeys.path
}

// journeysDir is removed by TestMain.
var journeysDir string

// caseScan is a scan of a whole table or index of the case store.
var caseScan = regexp.MustCompile(`^SCAN (referral|contact|measure|case_plan|referral_event|person)\b`)

// referralIndex names the index a plan line reads referral by.
var referralIndex = regexp.MustCompile(`^SEARCH referral USING (?:COVERING )?INDEX (\w+)`)

// activeIndexes are the indexes a report from a date reads referrals by:
// the open and the recently changed of its scope (migration 020), then
// each by its key.
var activeIndexes = []string{"referral_service_status", "referral_service_updated", "referral_referrer_status",
	"referral_referrer_updated", "sqlite_autoindex_referral_1"}

// checkCasePlan returns what is wrong with a case statement's plan: a scan
// of a whole table or index of the case store; for a page of a list, every
// match sorted; for a report's matches or page, referrals read by another
// index than activeIndexes (every referral of the scope ever received).
func checkCasePlan(lines []string, stmt string) []string {
	var bad []string
	for _, l := range parsePlan(lines) {
		m := referralIndex.FindStringSubmatch(l.detail)
		switch {
		case caseScan.MatchString(l.detail):
			bad = append(bad, "full scan: "+l.detail)
		case stmt == "page" && strings.Contains(l.detail, "USE TEMP B-TREE FOR ORDER BY"):
			bad = append(bad, "every match sorted: "+l.detail)
		case (stmt == "matches" || strings.HasSuffix(stmt, " page")) && m != nil && !slices.Contains(activeIndexes, m[1]):
			bad = append(bad, "the scope's every referral read: "+l.detail)
		}
	}
	return bad
}

// TestCasePlans runs EXPLAIN QUERY PLAN on the statements of the case
// store's frequent reads (sqlsharedtest.CaseReads: a service's inbox, a
// link worker's caseload, a month's report, a person's case view, the MDT
// board) over a store seeded with journeys, and fails on a plan that reads
// a whole table or sorts every match of a page. It runs each read too.
func TestCasePlans(t *testing.T) {
	t.Parallel()
	db := mustOpenPath(t, journeyStore(t))
	ctx := context.Background()
	svc := bench.Service(0)
	// A link worker with referrals, and a completed referral's case.
	done, _, err := db.ListReferrals(ctx, linkbridge.ReferralFilter{ServiceODS: svc, Statuses: []linkbridge.TaskStatus{linkbridge.TaskCompleted}, Limit: 1})
	if err != nil || len(done) == 0 {
		t.Fatalf("a completed referral of %s: %v, %v", svc, done, err)
	}
	rf := done[0]
	practices := []string{bench.Practice(0), bench.Practice(1), bench.Practice(2)}
	for _, read := range sqlsharedtest.CaseReads(svc, rf.LinkWorker.ID, practices, rf.ID, bench.DefaultSeedEnd) {
		t.Run(read.Name, func(t *testing.T) {
			var sts []sqlite.Statement
			switch {
			case read.List != nil:
				items, total, err := db.ListReferrals(ctx, *read.List)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d of %d", len(items), total)
				sts = sqlite.ListStatements(*read.List)
			case read.Report != nil:
				var first []*linkbridge.ReportReferral
				n := 0
				if err := db.ReportReferrals(ctx, *read.Report, func(page []*linkbridge.ReportReferral) error {
					if first == nil {
						first = page
					}
					n += len(page)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				t.Logf("%d referrals", n)
				var ids []string
				for _, r := range first {
					ids = append(ids, r.Referral.ID)
				}
				var lastAt time.Time
				lastID := "0"
				if len(first) > 0 {
					lastAt, lastID = first[len(first)-1].Referral.ReceivedAt, first[len(first)-1].Referral.ID
				}
				sts = sqlite.ReportStatements(*read.Report, lastAt, lastID, ids)
			default:
				cr, err := db.GetCaseRecord(ctx, read.CaseRecord)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d contacts, %d measures, %d events", len(cr.Contacts), len(cr.Measures), len(cr.Events))
				sts = sqlite.CaseRecordStatements(cr.Referral.ID, cr.Referral.PersonID)
			}
			for _, st := range sts {
				plan, err := db.ExplainStatement(ctx, st)
				if err != nil {
					t.Fatalf("%s: %v", st.Name, err)
				}
				t.Logf("%s:\n  %s", st.Name, strings.Join(plan, "\n  "))
				for _, msg := range checkCasePlan(plan, st.Name) {
					t.Errorf("%s: %s", st.Name, msg)
				}
			}
		})
	}
}

// TestOutboxHeadsPlan checks the plan of the relay claim's search for due
// heads (migration 021): it walks the partial index of queued messages in
// id order, so it can stop at its limit, instead of grouping every queued
// message by order key and sorting the heads (which read the whole queue:
// docs/performance.md#the-relays-claim).
func TestOutboxHeadsPlan(t *testing.T) {
	t.Parallel()
	db := mustOpenPath(t, journeyStore(t))
	plan, err := db.ExplainStatement(context.Background(), sqlite.HeadsStatement(linkbridge.ChannelWriteBack, bench.DefaultSeedEnd, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("heads:\n  %s", strings.Join(plan, "\n  "))
	text := strings.Join(plan, "\n")
	for _, bad := range []string{"TEMP B-TREE", "GROUP BY", "SCAN outbox\n", "SCAN o\n"} {
		if strings.Contains(text+"\n", bad) {
			t.Errorf("plan has %q", strings.TrimSpace(bad))
		}
	}
	if !strings.Contains(text, "outbox_queue_id") {
		t.Error("plan does not walk outbox_queue_id")
	}
}
