package postgres_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
	"github.com/linkbridge/linkbridge/bench"
)

// journeyReferrals is how many referrals with journeys the case plan
// tests seed (bench.Seed). The plans are taken with sequential scans
// turned off (ExplainStatement), so that on a store this small a
// sequential scan that remains shows a statement no index serves.
const journeyReferrals = 200

// journeys is the schema with journeys the case plan tests share, seeded
// once per test binary and dropped by TestMain.
var journeys struct {
	once sync.Once
	url  string
	err  error
}

// dropJourneys drops the journeys' schema; TestMain calls it.
var dropJourneys func(context.Context) error

// journeyStore returns the URL of a schema seeded with journeyReferrals
// referrals and their journeys, seeding it on first use.
func journeyStore(tb testing.TB) string {
	tb.Helper()
	base := pgtest.ServerURL(tb)
	journeys.once.Do(func() {
		ctx := context.Background()
		u, drop, err := postgres.CreateSchema(ctx, base, "lb_journeys")
		if err != nil {
			journeys.err = err
			return
		}
		dropJourneys = drop
		db, err := postgres.Open(ctx, u, nil)
		if err != nil {
			journeys.err = err
			return
		}
		start := time.Now()
		st, err := bench.Seed(ctx, db, bench.SeedConfig{Referrals: journeyReferrals, Batch: 50, Writers: 2})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = analyze(ctx, u)
		}
		tb.Logf("seeded %d referrals with journeys (%d changes) in %v", st.Referrals, st.Changes, time.Since(start).Round(time.Millisecond))
		journeys.url, journeys.err = u, err
	})
	if journeys.err != nil {
		tb.Fatalf("seed: %v", journeys.err)
	}
	return journeys.url
}

// analyze runs VACUUM ANALYZE on the schema at u, as autovacuum would
// after a bulk of writes (each referral was updated about ten times: its
// indexes hold the dead versions until a vacuum).
func analyze(ctx context.Context, u string) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, `VACUUM ANALYZE`)
	return err
}

// caseTables are the tables the case reads use: no plan may read them
// sequentially.
var caseTables = []string{"referral", "contact", "measure", "case_plan", "referral_event", "person"}

// caseIndexes are the index name prefixes of the case tables.
var caseIndexes = regexp.MustCompile(`^(referral|contact|measure|case_plan|person)_`)

// checkCasePlan returns what is wrong with a case statement's plan: a
// sequential scan of a case table, an index of one read whole (no index
// condition), or a contact or measure index read other than by referral
// (the whole index, filtered).
//
// Unlike SQLite's, PostgreSQL's plans follow the statistics, which a store
// of a few hundred referrals does not share with a large one: which index
// serves a report is left to the planner (on a large store it reads the
// open and recently changed referrals through migration 020's indexes, as
// SQLite does: see docs/performance.md#reports); that some index does is
// checked.
func checkCasePlan(n *planNode) []string {
	var bad []string
	switch {
	case n.NodeType == "Seq Scan" && slices.Contains(caseTables, n.Relation):
		bad = append(bad, "sequential scan of "+n.Relation)
	case caseIndexes.MatchString(n.Index) && n.IndexCond == "":
		bad = append(bad, "whole index read: "+n.Index)
	case (strings.HasPrefix(n.Index, "contact_") || strings.HasPrefix(n.Index, "measure_")) && !strings.Contains(n.IndexCond, "referral_id"):
		bad = append(bad, fmt.Sprintf("%s read whole (%s)", n.Index, n.IndexCond))
	}
	for i := range n.Plans {
		bad = append(bad, checkCasePlan(&n.Plans[i])...)
	}
	return bad
}

// checkGenericStatusPlan fails when the generic plan of a list by one
// status (the inbox's "requested") does not look the status up in an
// index: pgx's prepared statements run on generic plans after five
// executions, and one that reads a service's referrals by date and filters
// on status reads every referral the service ever received.
func checkGenericStatusPlan(t *testing.T, db *postgres.DB, sts []postgres.Statement) {
	t.Helper()
	for _, st := range sts {
		out, err := db.ExplainGeneric(context.Background(), st)
		if err != nil {
			t.Fatalf("%s: generic plan: %v", st.Name, err)
		}
		plan := loggedPlan(t, st.Name+" generic", out)
		var byStatus func(n *planNode) bool
		byStatus = func(n *planNode) bool {
			if (n.Relation == "referral" || strings.HasPrefix(n.Index, "referral_")) && strings.Contains(n.IndexCond, "status") {
				return true
			}
			return slices.ContainsFunc(n.Plans, func(c planNode) bool { return byStatus(&c) })
		}
		if !byStatus(plan) {
			t.Errorf("%s: the generic plan does not look the status up in an index", st.Name)
		}
	}
}

// TestCasePlans runs EXPLAIN ANALYZE on the statements of the case
// store's frequent reads (sqlsharedtest.CaseReads: a service's inbox, a
// link worker's caseload, a month's report, a person's case view, the MDT
// board) over a schema seeded with journeys, and fails on a plan that reads
// a case table sequentially. It runs each read too.
func TestCasePlans(t *testing.T) {
	t.Parallel()
	db := mustOpenURL(t, journeyStore(t))
	ctx := context.Background()
	svc := bench.Service(0)
	done, _, err := db.ListReferrals(ctx, linkbridge.ReferralFilter{ServiceODS: svc, Statuses: []linkbridge.TaskStatus{linkbridge.TaskCompleted}, Limit: 1})
	if err != nil || len(done) == 0 {
		t.Fatalf("a completed referral of %s: %v, %v", svc, done, err)
	}
	rf := done[0]
	practices := []string{bench.Practice(0), bench.Practice(1), bench.Practice(2)}
	for _, read := range sqlsharedtest.CaseReads(svc, rf.LinkWorker.ID, practices, rf.ID, bench.DefaultSeedEnd) {
		t.Run(read.Name, func(t *testing.T) {
			var sts []postgres.Statement
			switch {
			case read.List != nil:
				items, total, err := db.ListReferrals(ctx, *read.List)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d of %d", len(items), total)
				sts = postgres.ListStatements(*read.List)
				if len(read.List.Statuses) == 1 {
					checkGenericStatusPlan(t, db, sts)
				}
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
				sts = postgres.ReportStatements(*read.Report, lastAt, lastID, ids)
			default:
				cr, err := db.GetCaseRecord(ctx, read.CaseRecord)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%d contacts, %d measures, %d events", len(cr.Contacts), len(cr.Measures), len(cr.Events))
				sts = postgres.CaseRecordStatements(cr.Referral.ID, cr.Referral.PersonID)
			}
			for _, st := range sts {
				out, err := db.ExplainStatement(ctx, st)
				if err != nil {
					t.Fatalf("%s: %v", st.Name, err)
				}
				for _, msg := range checkCasePlan(loggedPlan(t, st.Name, out)) {
					t.Errorf("%s: %s", st.Name, strings.TrimSpace(msg))
				}
			}
		})
	}
}

// TestOutboxHeadsPlan checks the plans (custom and generic) of the relay
// claim's search for due heads: the queued messages walked in id order
// through the partial index of queued messages (outbox_claim_walk,
// migration 024), so that it stops at its limit, with no aggregate or sort
// of the whole queue, as when it grouped every queued message by order key
// (docs/performance.md#the-relays-claim), and no walk of the primary key,
// which passes every delivered row on its way. It checks a seeded store's
// outbox, and one analyzed while all of it was queued and then mostly
// delivered, as a drain leaves it between two analyzes: there the primary
// key looks as good a walk as the queue's index, and a claim at a million
// referrals read 30,035 delivered rows, 269 ms
// (docs/performance.md#postgresql-at-a-million-measured-2026-12-06-later).
func TestOutboxHeadsPlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) string
	}{
		{"seeded", func(t *testing.T) string { return journeyStore(t) }},
		{"drained", func(t *testing.T) string {
			u := newSchema(t)
			mustOpenURL(t, u)
			staleOutbox(t, rawConn(t, u))
			return u
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := mustOpenURL(t, tc.open(t))
			st := postgres.HeadsStatement(linkbridge.ChannelWriteBack, time.Now(), 32)
			for _, p := range customAndGeneric(t, db, st) {
				walked := false
				visit(p.plan, func(n *planNode) {
					switch {
					case strings.Contains(n.NodeType, "Aggregate") || n.NodeType == "Sort":
						t.Errorf("%s plan: %s over the queue", p.name, n.NodeType)
					case n.Index == "outbox_pkey" || n.Relation == "outbox" && n.NodeType == "Seq Scan":
						t.Errorf("%s plan walks outbox by %s: every delivered row too", p.name, n.NodeType+" "+n.Index)
					case n.Index == "outbox_claim_walk":
						walked = true
					}
				})
				if !walked {
					t.Errorf("%s plan does not walk the queue in id order (outbox_claim_walk)", p.name)
				}
			}
		})
	}
}

// staleOutbox fills an empty store's outbox with 40 keys of 10 versions of
// one resource each, queued, analyzes it, and then delivers every version
// but each key's last: the state a drain leaves between two analyzes.
func staleOutbox(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO outbox (order_key, resource_type, resource_id, version, body, state, available_at, created_at)
			SELECT 'key-' || k, 'Task', 'task-' || k, v, '\x7b7d'::bytea, 'pending', now() - interval '1 hour', now()
			FROM generate_series(1, 40) AS k, generate_series(1, 10) AS v ORDER BY v, k`,
		`ANALYZE outbox`,
		`UPDATE outbox SET state = 'delivered', delivered_at = now(), finished_at = now() WHERE version < 10`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// namedPlan is one of a statement's plans: custom or generic.
type namedPlan struct {
	name string
	plan *planNode
}

// customAndGeneric returns st's custom plan (ExplainStatement, sequential
// scans off) and its generic plan (ExplainGeneric), each logged.
func customAndGeneric(t *testing.T, db *postgres.DB, st postgres.Statement) []namedPlan {
	t.Helper()
	var out []namedPlan
	for _, explain := range []struct {
		name string
		fn   func(context.Context, postgres.Statement) ([]byte, error)
	}{{"custom", db.ExplainStatement}, {"generic", db.ExplainGeneric}} {
		b, err := explain.fn(context.Background(), st)
		if err != nil {
			t.Fatalf("%s plan: %v", explain.name, err)
		}
		out = append(out, namedPlan{explain.name, loggedPlan(t, explain.name, b)})
	}
	return out
}

// visit calls fn on n and on every node below it.
func visit(n *planNode, fn func(*planNode)) {
	fn(n)
	for i := range n.Plans {
		visit(&n.Plans[i], fn)
	}
}

// TestOutboxHeadPlan checks the plans (custom and generic) of the relay's
// read of a head (headQuery) on an outbox analyzed while nothing was
// delivered and then mostly delivered, as a drain leaves it between two
// analyzes: the check for a later delivered version walks the head's key
// (outbox_order_key), not every delivered row through outbox_state_created,
// which the stale statistics make look cheapest
// (docs/performance.md#the-relays-head-read).
func TestOutboxHeadPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newSchema(t)
	db := mustOpenURL(t, u)
	conn := rawConn(t, u)
	staleOutbox(t, conn)
	var head int64
	if err := conn.QueryRow(ctx, `SELECT min(id) FROM outbox WHERE state = 'pending'`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	for _, p := range customAndGeneric(t, db, postgres.HeadStatement(head)) {
		byKey := false
		visit(p.plan, func(n *planNode) {
			if n.Index == "outbox_state_created" {
				t.Errorf("%s plan reads outbox_state_created (%s): every delivered row, not the head's key", p.name, n.IndexCond)
			}
			switch {
			case n.NodeType == "Seq Scan" && p.name == "custom":
				t.Errorf("custom plan reads outbox %s sequentially", n.Alias)
			case n.Index == "outbox_order_key" && strings.Contains(n.IndexCond, "order_key = o.order_key"):
				byKey = true
			case strings.HasPrefix(n.Index, "outbox") && !strings.Contains(n.IndexCond, "order_key") && !strings.HasPrefix(n.IndexCond, "(id = "):
				t.Errorf("%s plan walks %s by %s alone: the rows of every key, not the head's", p.name, n.Index, n.IndexCond)
			}
		})
		if !byKey {
			t.Errorf("%s plan: the delivered check does not walk the head's key", p.name)
		}
	}
}
