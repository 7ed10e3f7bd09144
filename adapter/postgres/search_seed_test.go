package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// pgscale, when set, makes TestSearchScale seed that many referrals and
// measure the searches' latency (go test -run TestSearchScale -pgscale
// 50000 ./adapter/postgres/).
var pgscale = flag.Int("pgscale", 0, "seed this many referrals and measure search latency (TestSearchScale)")

// seedReferrals is how many referrals the default suite seeds for the plan
// tests.
const seedReferrals = 10000

// seeded is the store the plan tests share: seeded once per test binary
// (seeding 10,000 referrals takes seconds, searching it milliseconds).
var seeded struct {
	once   sync.Once
	url    string
	corpus *sqlsharedtest.Corpus
	err    error
}

// seededStore returns the URL of a schema holding the seeded corpus of
// seedReferrals referrals, and the corpus, seeding it on first use. The
// schema lives as long as the test binary: TestMain drops it.
func seededStore(tb testing.TB) (string, *sqlsharedtest.Corpus) {
	tb.Helper()
	base := pgtest.ServerURL(tb)
	seeded.once.Do(func() {
		ctx := context.Background()
		u, drop, err := postgres.CreateSchema(ctx, base, "lb_seed")
		if err != nil {
			seeded.err = err
			return
		}
		dropSeeded = drop
		c := sqlsharedtest.NewCorpus(seedReferrals)
		start := time.Now()
		if err := seedCorpus(ctx, tb, u, c); err != nil {
			seeded.err = err
			return
		}
		tb.Logf("seeded %d referrals in %v", c.Referrals, time.Since(start).Round(time.Millisecond))
		seeded.url, seeded.corpus = u, c
	})
	if seeded.err != nil {
		tb.Fatalf("seed: %v", seeded.err)
	}
	return seeded.url, seeded.corpus
}

// dropSeeded drops the seeded schema; TestMain calls it.
var dropSeeded func(context.Context) error

// seedCorpus migrates the schema at u (by opening a store on it) and
// writes corpus c into its resource, search_param and resource_access
// tables with COPY, then VACUUM ANALYZEs them as autovacuum would after a
// bulk of inserts.
func seedCorpus(ctx context.Context, tb testing.TB, u string, c *sqlsharedtest.Corpus) error {
	db := postgres.NewDB(u)
	if err := db.Open(ctx); err != nil {
		return err
	}
	_ = db.Close()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	each := func(fn func(r *sqlsharedtest.SeedResource) [][]any) pgx.CopyFromSource {
		i := 0
		var pending [][]any
		return pgx.CopyFromFunc(func() ([]any, error) {
			for len(pending) == 0 {
				if i == c.Referrals {
					return nil, nil
				}
				c.Each(i, func(r *sqlsharedtest.SeedResource) { pending = append(pending, fn(r)...) })
				i++
			}
			row := pending[0]
			pending = pending[1:]
			return row, nil
		})
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"resource"}, []string{"type", "id", "version_id", "last_updated", "body", "params"},
			each(func(r *sqlsharedtest.SeedResource) [][]any {
				return [][]any{{r.Type, r.ID, 1, r.LastUpdated, r.Body, r.ParamsColumn}}
			})); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"search_param"}, []string{"type", "id", "name", "value", "system"},
			each(func(r *sqlsharedtest.SeedResource) [][]any {
				rows := make([][]any, 0, len(r.Params))
				seen := map[linkbridge.SearchParam]bool{}
				for _, p := range r.Params {
					if !seen[p] {
						seen[p] = true
						rows = append(rows, []any{r.Type, r.ID, p.Name, p.Value, p.System})
					}
				}
				return rows
			})); err != nil {
			return err
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"resource_access"}, []string{"type", "key", "id"},
			each(func(r *sqlsharedtest.SeedResource) [][]any {
				rows := make([][]any, len(r.Keys))
				for i, k := range r.Keys {
					rows[i] = []any{r.Type, k, r.ID}
				}
				return rows
			}))
		return err
	})
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `VACUUM ANALYZE resource, search_param, resource_access`)
	return err
}

// TestMain drops the seeded schemas after the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	for _, drop := range []func(context.Context) error{dropSeeded, dropJourneys} {
		if drop == nil {
			continue
		}
		if err := drop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// TestSearchScale seeds -pgscale referrals and measures every search
// shape's latency (p50, p99, max over up to 200 runs or 10 s each). It
// runs only with -pgscale.
func TestSearchScale(t *testing.T) {
	if *pgscale == 0 {
		t.Skip("run with -pgscale N to measure searches over N referrals")
	}
	ctx := context.Background()
	u, drop, err := postgres.CreateSchema(ctx, pgtest.ServerURL(t), "lb_scale")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = drop(context.Background()) })
	c := sqlsharedtest.NewCorpus(*pgscale)
	start := time.Now()
	if err := seedCorpus(ctx, t, u, c); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d referrals in %v", c.Referrals, time.Since(start).Round(time.Millisecond))
	db := mustOpenURL(t, u)
	sqlsharedtest.LogLatencies(t, fmt.Sprintf("PostgreSQL, %d referrals", c.Referrals),
		sqlsharedtest.MeasureShapes(ctx, db, c, 200, 10*time.Second, 60*time.Second))
	for _, sh := range c.Shapes() {
		page, count, err := db.ExplainSearch(ctx, sh.Query, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s:\npage %s\ncount %s", sh.Name, planSummary(t, page), planSummary(t, count))
	}
}
