package sqlite_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
// tests: 10,000, or 3,000 under the race detector, which instruments
// SQLite's transpiled C as well and makes each row written about twenty
// times slower (10,000 referrals took 55 to 95 s to seed). What the tests
// check does not depend on the number: the adapter chooses each plan from
// its filters' entries counted up to 1,000, and 3,000 referrals still
// give the first service's key more than that (walk the page order) and a
// practice's fewer (start from them).
var seedReferrals = map[bool]int{false: 10000, true: 3000}[raceEnabled]

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
// and resource_access tables in one transaction, with multi-row INSERTs in
// key order.
func seedCorpus(ctx context.Context, path string, c *sqlsharedtest.Corpus) error {
	db, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	// Nothing else has the file open: no journal, one lock for the whole
	// load. The store turns WAL on again when it opens the file.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)&_pragma=locking_mode(EXCLUSIVE)&_pragma=cache_size(-262144)")
	if err != nil {
		return err
	}
	defer func() { _ = raw.Close() }()
	raw.SetMaxOpenConns(1)
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	// Each table's rows are written in the order of its key, so that every
	// insert appends to its B-trees (in the corpus's order they land at
	// random places: several times slower, and under the race detector,
	// which instruments SQLite's transpiled C too, minutes).
	type row struct {
		key  string
		args []any
	}
	var resources, params, access []row
	for i := range c.Referrals {
		c.Each(i, func(r *sqlsharedtest.SeedResource) {
			resources = append(resources, row{r.Type + "\x00" + r.ID,
				[]any{r.Type, r.ID, 1, r.LastUpdated.UTC().Format("2006-01-02T15:04:05.000000000Z"), r.Body, r.ParamsColumn}})
			for _, p := range r.Params {
				params = append(params, row{r.Type + "\x00" + p.Name + "\x00" + p.Value + "\x00" + r.ID + "\x00" + p.System, []any{r.Type, r.ID, p.Name, p.Value, p.System}})
			}
			for _, k := range r.Keys {
				access = append(access, row{r.Type + "\x00" + k + "\x00" + r.ID, []any{r.Type, k, r.ID}})
			}
		})
	}
	const rowsPerInsert = 500
	for _, t := range []struct {
		insert string
		rows   []row
	}{
		{`INSERT INTO resource (type, id, version_id, last_updated, body, params) VALUES `, resources},
		{`INSERT OR IGNORE INTO search_param (type, id, name, value, system) VALUES `, params},
		{`INSERT INTO resource_access (type, key, id) VALUES `, access},
	} {
		slices.SortFunc(t.rows, func(a, b row) int { return strings.Compare(a.key, b.key) })
		cols := len(t.rows[0].args)
		tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
		for len(t.rows) > 0 {
			n := min(len(t.rows), rowsPerInsert)
			args := make([]any, 0, n*cols)
			for _, r := range t.rows[:n] {
				args = append(args, r.args...)
			}
			if _, err := tx.ExecContext(ctx, t.insert+strings.TrimSuffix(strings.Repeat(tuple+", ", n), ", "), args...); err != nil {
				return err
			}
			t.rows = t.rows[n:]
		}
	}
	return tx.Commit()
}

// TestMain removes the seeded databases after the tests.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	for _, dir := range []string{seedDir, journeysDir} {
		if dir == "" {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
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
