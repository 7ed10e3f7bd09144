package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/intake"
)

// BenchMigrationsCommand is "linkbridge bench migrations": on a populated
// store (a seeded one, or a copy of a real one), it times what an upgrade
// would run there: every migration's statements, replayed in a transaction
// rolled back (sqlite.ReplayMigrations, postgres.ReplayMigrations), and the
// search re-index, from a sample of the current resources
// (intake.ScanIndex) projected to all of them. The store is left as it was
// (docs/performance.md#migrations-on-a-large-store).
type BenchMigrationsCommand struct {
	Stdout, Stderr io.Writer
}

// MigrationRun is one run of bench migrations, as migrations.json keeps it.
type MigrationRun struct {
	Date    string `json:"date"`
	Command string `json:"command"`
	Machine string `json:"machine"`
	Backend string `json:"backend"`
	// Referrals and Resources are what the store held: referrals, and
	// current resource versions (what a re-index parses).
	Referrals int   `json:"referrals"`
	Resources int64 `json:"resources"`
	// TimeoutS is the longest a statement was let run (0: no limit).
	TimeoutS   float64                  `json:"statement_timeout_s,omitempty"`
	Migrations []sqlite.MigrationReplay `json:"migrations"`
	Reindex    *ReindexSample           `json:"reindex,omitempty"`
}

// ReindexSample is the search re-index timed on the first Scanned current
// resources, and projected to all of them at the same rate.
type ReindexSample struct {
	Scanned    int     `json:"scanned"`
	Changed    int     `json:"changed"`
	Seconds    float64 `json:"seconds"`
	PerS       float64 `json:"per_s"`
	ProjectedS float64 `json:"projected_s"`
}

// Run parses flags and times the migrations.
func (c *BenchMigrationsCommand) Run(ctx context.Context, args []string) error {
	var (
		db, pg, out string
		timeout     time.Duration
		sample      int
		replay      bool
	)
	fs := newFlags("bench migrations", nil, c.Stderr)
	fs.synopsis = "bench migrations (--db FILE | --postgres URL) [--out bench/results] [flags]"
	fs.str(&db, "db", "", "", "SQLite store to time the migrations on (left as it was)")
	fs.str(&pg, "postgres", "", "", "postgres:// URL of the store to time the migrations on, instead of --db")
	fs.duration(&timeout, "statement-timeout", "", 10*time.Minute, "longest a replayed statement may run; one stopped ends its migration's replay (0: no limit)")
	fs.integer(&sample, "reindex-sample", "", 100_000, "current resources the re-index is timed on (0: skip it)")
	fs.boolean(&replay, "replay", "", true, "replay the migrations (--replay=false times the re-index alone)")
	fs.str(&out, "out", "", "", "directory to add the run to (migrations.json and migrations.md; a run of the same backend and size is replaced)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("bench migrations takes no arguments, got %q", fs.Args())
	case (db == "") == (pg == ""):
		return errors.New("bench migrations: give one of --db FILE and --postgres URL")
	case pg != "" && !postgres.IsURL(pg):
		return errors.New("bench migrations: --postgres takes a postgres:// or postgresql:// URL")
	case !replay && out != "":
		return errors.New("bench migrations: --out keeps whole runs: drop it with --replay=false")
	case timeout < 0 || sample < 0:
		return errors.New("bench migrations: --statement-timeout and --reindex-sample must not be negative")
	}
	target, backend := db, "sqlite"
	if pg != "" {
		target, backend = pg, "postgres"
	} else if err := checkDBExists(db, false); err != nil {
		return fmt.Errorf("bench migrations: %w", err)
	}
	run := &MigrationRun{Date: time.Now().UTC().Format("2006-01-02"), Command: "linkbridge bench migrations " + strings.Join(redactArgs(args), " "),
		Machine: fmt.Sprintf("%d cores (GOMAXPROCS %d), %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH),
		Backend: backend, TimeoutS: timeout.Seconds()}

	// The store's size, and the re-index sample, through the store as the
	// gateway opens it (which applies any pending migration first).
	store, err := openStore(ctx, target, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	err = c.measureStore(ctx, store, run, sample)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bench migrations: %w", err)
	}

	if !replay {
		return writeMigrationRuns(c.Stdout, []MigrationRun{*run})
	}
	c.logf("replaying %s's migrations on %d referrals (%d resources)", backend, run.Referrals, run.Resources)
	progress := func(m sqlite.MigrationReplay) {
		c.logf("%s: %d of %d statements replayed, %s", m.Name, m.Replayed(), len(m.Statements), m.Total().Round(time.Millisecond))
	}
	if pg != "" {
		run.Migrations, err = postgres.ReplayMigrations(ctx, pg, timeout, progress)
	} else {
		run.Migrations, err = sqlite.ReplayMigrations(ctx, db, timeout, progress)
	}
	if err != nil {
		return fmt.Errorf("bench migrations: %w", err)
	}
	if out != "" {
		if err := saveMigrationRun(out, run); err != nil {
			return fmt.Errorf("bench migrations: --out: %w", err)
		}
	}
	return writeMigrationRuns(c.Stdout, []MigrationRun{*run})
}

// measureStore counts the store's referrals and resources and times the
// re-index on a sample of the resources.
func (c *BenchMigrationsCommand) measureStore(ctx context.Context, store appStore, run *MigrationRun, sample int) error {
	_, n, err := store.ListReferrals(ctx, linkbridge.ReferralFilter{Limit: 1})
	if err != nil {
		return err
	}
	run.Referrals = n
	counter, ok := store.(interface {
		CountResources(context.Context) (int64, error)
	})
	if !ok {
		return errors.New("the store cannot count its resources")
	}
	if run.Resources, err = counter.CountResources(ctx); err != nil {
		return err
	}
	if sample == 0 {
		return nil
	}
	codec, err := fhirjson.New()
	if err != nil {
		return err
	}
	c.logf("re-index: parsing %d of %d resources", min(int64(sample), run.Resources), run.Resources)
	start := time.Now()
	st, err := intake.ScanIndex(ctx, store, codec, sample)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	run.Reindex = &ReindexSample{Scanned: st.Scanned, Changed: st.Reindexed, Seconds: secs}
	if st.Scanned > 0 && secs > 0 {
		run.Reindex.PerS = float64(st.Scanned) / secs
		run.Reindex.ProjectedS = float64(run.Resources) / run.Reindex.PerS
	}
	return nil
}

func (c *BenchMigrationsCommand) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(c.Stderr, "bench migrations: "+format+"\n", args...)
}

// redactArgs drops a PostgreSQL URL's password from the recorded command.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if postgres.IsURL(a) {
			out[i] = redactDB(a)
		} else if k, v, ok := strings.Cut(a, "="); ok && postgres.IsURL(v) {
			out[i] = k + "=" + redactDB(v)
		}
	}
	return out
}

// saveMigrationRun adds run to dir's migrations.json, replacing a run of
// the same backend and store size, and writes migrations.md from it.
func saveMigrationRun(dir string, run *MigrationRun) error {
	file := filepath.Join(dir, "migrations.json")
	var runs []MigrationRun
	if b, err := os.ReadFile(file); err == nil {
		if err := json.Unmarshal(b, &runs); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return err
	}
	runs = slices.DeleteFunc(runs, func(r MigrationRun) bool {
		return r.Backend == run.Backend && sizeBucket(r.Referrals) == sizeBucket(run.Referrals)
	})
	runs = append(runs, *run)
	slices.SortStableFunc(runs, func(a, b MigrationRun) int {
		if c := strings.Compare(a.Backend, b.Backend); c != 0 {
			return c
		}
		return a.Referrals - b.Referrals
	})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	md.WriteString("# Migrations on populated stores\n\n")
	md.WriteString("Each migration's statements replayed in a transaction rolled back (`linkbridge bench migrations`,\n" +
		"docs/performance.md#migrations-on-a-large-store); the re-index timed on a sample of the resources and projected.\n\n")
	if err := writeMigrationRuns(&md, runs); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "migrations.md"), []byte(md.String()), 0o644)
}

// sizeBucket is a store size rounded to its order of magnitude's leading
// digit, so that a store measured after an intake run (a few thousand
// referrals more) replaces the run of the same seeded size.
func sizeBucket(n int) int {
	m := 1
	for n >= 10*m {
		m *= 10
	}
	return n / m * m
}

// writeMigrationRuns renders runs as Markdown: for each, a line on the
// store and a table of the migrations, and the re-index.
func writeMigrationRuns(w io.Writer, runs []MigrationRun) error {
	var b strings.Builder
	for _, r := range runs {
		fmt.Fprintf(&b, "## %s, %d referrals, %d resources (%s)\n\n`%s`\n\n", r.Backend, r.Referrals, r.Resources, r.Date, r.Command)
		var t strings.Builder
		t.WriteString("| migration\t statements replayed\t time s\t slowest statement\t\n|---\t---:\t---:\t---\t\n")
		var (
			total   time.Duration
			anyStop bool
			atLeast = func(stopped bool) string { return map[bool]string{true: "≥ "}[stopped] }
		)
		for _, m := range r.Migrations {
			slow, stopped := "–", false
			var longest time.Duration
			for _, s := range m.Statements {
				if strings.HasPrefix(s.Note, "stopped") {
					slow, stopped = fmt.Sprintf("**stopped after %.0f s**: `%s`", s.Duration.Seconds(), s.Statement), true
					break
				}
				if s.Replayed && s.Duration > longest {
					longest, slow = s.Duration, fmt.Sprintf("%.2f s `%s`", s.Duration.Seconds(), s.Statement)
				}
			}
			total, anyStop = total+m.Total(), anyStop || stopped
			fmt.Fprintf(&t, "| %s\t %d of %d\t %s%.2f\t %s\t\n", m.Name, m.Replayed(), len(m.Statements), atLeast(stopped), m.Total().Seconds(), slow)
		}
		fmt.Fprintf(&t, "| all\t \t %s%.2f\t \t\n", atLeast(anyStop), total.Seconds())
		tw := tabwriter.NewWriter(&b, 0, 2, 1, ' ', tabwriter.Debug)
		if _, err := io.WriteString(tw, t.String()); err != nil {
			return err
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if r.Reindex != nil && r.Reindex.Scanned > 0 {
			fmt.Fprintf(&b, "\nSearch re-index: %d resources parsed in %.1f s (%.0f/s, %d would change); all %d: about %s.\n",
				r.Reindex.Scanned, r.Reindex.Seconds, r.Reindex.PerS, r.Reindex.Changed, r.Resources,
				(time.Duration(r.Reindex.ProjectedS) * time.Second).Round(time.Second))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
