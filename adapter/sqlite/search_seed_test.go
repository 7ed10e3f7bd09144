package sqlite_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// sqlitescale, when set, makes TestSearchScale seed that many referrals
// and measure the searches' latency (go test -run TestSearchScale
// ./adapter/sqlite/ -sqlitescale=50000).
var sqlitescale = flag.Int("sqlitescale", 0, "seed this many referrals and measure search latency (TestSearchScale)")

// seedReferrals is how many referrals the default suite seeds for the plan
// tests.
const seedReferrals = 10000

// seeded is the database file the plan tests share: seeded once per test
// binary, in seedDir, which TestMain removes.
var (
	seedDir string
	seeded  struct {
		once   sync.Once
		path   string
		corpus *sqlsharedtest.Corpus
		err    error
	}
)

// seededStore returns the path of a database holding the seeded corpus of
// seedReferrals referrals, and the corpus, seeding it on first use.
func seededStore(tb testing.TB) (string, *sqlsharedtest.Corpus) {
	tb.Helper()
	seeded.once.Do(func() {
		dir, err := os.MkdirTemp("", "linkbridge-seed-")
		if err != nil {
			seeded.err = err
			return
		}
		seedDir = dir
		c := sqlsharedtest.NewCorpus(seedReferrals)
		path := filepath.Join(dir, "linkbridge.db")
		start := time.Now()
		if err := seedCorpus(context.Background(), path, c); err != nil {
			seeded.err = err
			return
		}
		tb.Logf("seeded %d referrals in %v", c.Referrals, time.Since(start).Round(time.Millisecond))
		seeded.path, seeded.corpus = path, c
	})
	if seeded.err != nil {
		tb.Fatalf("seed: %v", seeded.err)
	}
	return seeded.path, seeded.corpus
}

// seedCorpus creates the database at path (by opening a store on it, which
// runs the migrations) and writes corpus c into its resource, search_param
// and resource_access tables in one transaction, with multi-row INSERTs.
func seedCorpus(ctx context.Context, path string, c *sqlsharedtest.Corpus) error {
	db, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-65536)")
	if err != nil {
		return err
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	// Rows are buffered per table and written rowsPerInsert at a time.
	const rowsPerInsert = 100
	type table struct {
		insert string
		cols   int
		args   []any
	}
	flush := func(t *table, all bool) error {
		per := t.cols * rowsPerInsert
		for len(t.args) >= per || all && len(t.args) > 0 {
			n := min(len(t.args), per)
			row := "(" + strings.TrimSuffix(strings.Repeat("?, ", t.cols), ", ") + ")"
			stmt := t.insert + strings.TrimSuffix(strings.Repeat(row+", ", n/t.cols), ", ")
			if _, err := tx.ExecContext(ctx, stmt, t.args[:n]...); err != nil {
				return err
			}
			t.args = t.args[n:]
		}
		return nil
	}
	resources := &table{insert: `INSERT INTO resource (type, id, version_id, last_updated, body, params) VALUES `, cols: 6}
	params := &table{insert: `INSERT OR IGNORE INTO search_param (type, id, name, value) VALUES `, cols: 4}
	access := &table{insert: `INSERT INTO resource_access (type, key, id) VALUES `, cols: 3}
	for i := range c.Referrals {
		c.Each(i, func(r *sqlsharedtest.SeedResource) {
			resources.args = append(resources.args, r.Type, r.ID, 1, r.LastUpdated.UTC().Format("2006-01-02T15:04:05.000000000Z"), r.Body, r.ParamsColumn)
			for _, p := range r.Params {
				params.args = append(params.args, r.Type, r.ID, p.Name, p.Value)
			}
			for _, k := range r.Keys {
				access.args = append(access.args, r.Type, k, r.ID)
			}
		})
		for _, t := range []*table{resources, params, access} {
			if err := flush(t, false); err != nil {
				return err
			}
		}
	}
	for _, t := range []*table{resources, params, access} {
		if err := flush(t, true); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// TestMain removes the seeded database after the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if seedDir != "" {
		if err := os.RemoveAll(seedDir); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// TestSearchScale seeds -sqlitescale referrals and measures every search
// shape's latency (p50, p99, max over up to 200 runs or 10 s each). It
// runs only with -sqlitescale.
func TestSearchScale(t *testing.T) {
	if *sqlitescale == 0 {
		t.Skip("run with -sqlitescale N to measure searches over N referrals")
	}
	ctx := context.Background()
	c := sqlsharedtest.NewCorpus(*sqlitescale)
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	start := time.Now()
	if err := seedCorpus(ctx, path, c); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d referrals in %v", c.Referrals, time.Since(start).Round(time.Millisecond))
	db := mustOpenPath(t, path)
	sqlsharedtest.LogLatencies(t, fmt.Sprintf("SQLite, %d referrals", c.Referrals),
		sqlsharedtest.MeasureShapes(ctx, db, c, 200, 10*time.Second, 60*time.Second))
}
