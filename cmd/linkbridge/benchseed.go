package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/bench"
)

// BenchSeedCommand is "linkbridge bench seed": it fills a new SQLite file,
// or an empty PostgreSQL store, with --referrals referrals and their
// journeys through the store's own write path (bench.Seed), showing a
// progress bar with the ETA on stderr and printing what it stored and the
// rate on stdout.
type BenchSeedCommand struct {
	// Stdout receives the summary; Stderr flag errors and the progress bar.
	Stdout, Stderr io.Writer
}

// seedCacheMiB is the SQLite page cache of a seed run: the random keys of
// a million referrals' indexes miss a small cache on most inserts.
const seedCacheMiB = 512

// Run parses flags, opens the store and seeds it.
func (c *BenchSeedCommand) Run(ctx context.Context, args []string) error {
	var (
		cfg      bench.SeedConfig
		db, pg   string
		seed     int64
		end      string
		jsonOut  bool
		progress time.Duration
		cpuProf  string
	)
	fs := newFlags("bench seed", nil, c.Stderr)
	fs.synopsis = "bench seed --referrals N [--db FILE | --postgres URL] [flags]"
	fs.integer(&cfg.Referrals, "referrals", "", 0, "number of referrals to store, each with its journey (required)")
	fs.str(&db, "db", "", "", "new SQLite file to fill (refused if it exists)")
	fs.str(&pg, "postgres", "", "", "postgres:// URL of a database whose linkbridge store is empty, to fill instead of --db")
	fs.integer(&cfg.Batch, "batch", "", 250, "referrals per transaction (each with every change of its journey)")
	fs.integer(&cfg.Writers, "writers", "", 0, "batches written at once (default 1 on SQLite, 6 on PostgreSQL)")
	fs.integer(&cfg.Workers, "workers", "", 0, "goroutines building journeys (default GOMAXPROCS)")
	fs.int64(&seed, "seed", "", 1, "seed of the journeys: the same seed and --referrals make the same store")
	fs.integer(&cfg.Practices, "practices", "", 0, "referring GP practices (default: about 250 referrals a practice a year, at least 40)")
	fs.integer(&cfg.Services, "services", "", 0, "social prescribing services, each taking its practices' referrals (default: about 1,500 a service a year, at least 4)")
	fs.duration(&cfg.Span, "span", "", 3*365*24*time.Hour, "period before --end over which the referrals were received")
	fs.str(&end, "end", "", bench.DefaultSeedEnd.Format(time.RFC3339), "the seeded store's now (RFC 3339): journeys are cut there")
	fs.duration(&cfg.OutboxWindow, "outbox-window", "", 7*24*time.Hour, "changes this recent keep their write-backs queued (pending); 0 queues none")
	fs.duration(&progress, "progress", "", 5*time.Second, "progress line interval when stderr is not a terminal")
	fs.boolean(&jsonOut, "json", "", false, "print the summary as JSON")
	fs.str(&cpuProf, "cpuprofile", "", "", "write a CPU profile of the seed to this file (go tool pprof reads it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench seed takes no arguments, got %q", fs.Args())
	}
	switch {
	case cfg.Referrals < 1:
		return errors.New("bench seed: --referrals N is required")
	case (db == "") == (pg == ""):
		return errors.New("bench seed: give one of --db FILE (a new SQLite file) and --postgres URL")
	case pg != "" && !postgres.IsURL(pg):
		return errors.New("bench seed: --postgres takes a postgres:// or postgresql:// URL")
	case seed < 0:
		return errors.New("bench seed: --seed must not be negative")
	}
	if cfg.OutboxWindow == 0 {
		cfg.OutboxWindow = -1 // none (SeedConfig's zero is its default)
	}
	t, err := time.Parse(time.RFC3339, end)
	if err != nil {
		return fmt.Errorf("bench seed: --end: want an RFC 3339 time such as %s", bench.DefaultSeedEnd.Format(time.RFC3339))
	}
	cfg.End, cfg.Seed, cfg.Progress, cfg.ProgressEvery = t, uint64(seed), c.Stderr, progress
	// A bulk load allocates at a high rate and keeps little: collect less
	// often (the machine has memory to spare for it; measured ~10% faster).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	logger := slog.New(slog.DiscardHandler)

	target := db
	if db != "" {
		if _, err := os.Stat(db); err == nil {
			return fmt.Errorf("bench seed: %s exists: seed a new file (or remove it)", db)
		} else if !errors.Is(err, iofs.ErrNotExist) {
			return fmt.Errorf("bench seed: --db: %w", err)
		}
	} else {
		target = pg
		if cfg.Writers == 0 {
			cfg.Writers = 6
		}
	}
	store, err := openSeedStore(ctx, target, logger)
	if err != nil {
		return err
	}
	where := db
	if db == "" {
		where = "PostgreSQL"
	}
	defer func() { _ = store.Close() }()
	if _, n, err := store.ListReferrals(ctx, linkbridge.ReferralFilter{Limit: 1}); err != nil {
		return err
	} else if n > 0 {
		return fmt.Errorf("bench seed: the store holds %d referrals already: seed an empty one", n)
	}
	if cpuProf != "" {
		f, err := os.Create(cpuProf)
		if err != nil {
			return fmt.Errorf("bench seed: --cpuprofile: %w", err)
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench seed: --cpuprofile: %w", err)
		}
	}
	st, err := bench.Seed(ctx, store, cfg)
	if cpuProf != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return fmt.Errorf("bench seed: %w (%d referrals stored before it)", err, st.Referrals)
	}
	if err := store.Close(); err != nil {
		return err
	}
	var size int64
	if db != "" {
		for _, f := range []string{db, db + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
	}
	if jsonOut {
		return json.NewEncoder(c.Stdout).Encode(map[string]any{
			"store": where, "referrals": st.Referrals, "people": st.People, "changes": st.Changes, "resourceVersions": st.Resources,
			"contacts": st.Contacts, "measures": st.Measures, "goals": st.Goals, "outbox": st.Outbox, "audit": st.Audit,
			"statuses": st.Statuses, "seconds": st.Elapsed.Seconds(), "referralsPerSecond": st.Rate(), "bytes": size,
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seeded %s: %d referrals of %d people in %s: %.0f referrals/s\n", where, st.Referrals, st.People, st.Elapsed.Round(time.Second), st.Rate())
	fmt.Fprintf(&b, "  %d changes, %d resource versions, %d contacts, %d measures, %d goals, %d audit records, %d write-backs queued\n",
		st.Changes, st.Resources, st.Contacts, st.Measures, st.Goals, st.Audit, st.Outbox)
	statuses := make([]string, 0, len(st.Statuses))
	for s := range st.Statuses {
		statuses = append(statuses, string(s))
	}
	slices.Sort(statuses)
	b.WriteString("  statuses at --end:")
	for _, s := range statuses {
		fmt.Fprintf(&b, " %s %d", s, st.Statuses[linkbridge.TaskStatus(s)])
	}
	b.WriteString("\n")
	if size > 0 {
		fmt.Fprintf(&b, "  %.1f MB on disk, %.1f KB a referral\n", float64(size)/1e6, float64(size)/1e3/float64(st.Referrals))
	}
	_, err = io.WriteString(c.Stdout, b.String())
	return err
}

// seedStore is what a seed writes through.
type seedStore interface {
	linkbridge.BatchStore
	linkbridge.CaseStore
	Close() error
}

// openSeedStore opens the store a seed fills: a SQLite file (created,
// with a page cache sized for a bulk load) or a PostgreSQL URL.
func openSeedStore(ctx context.Context, db string, logger *slog.Logger) (seedStore, error) {
	if postgres.IsURL(db) {
		// synchronous_commit=off for the seed's sessions only: a commit
		// does not wait for its WAL flush (a crash loses the last commits,
		// never consistency), and the seed is redone after a crash.
		if u, err := url.Parse(db); err == nil {
			if q := u.Query(); q.Get("synchronous_commit") == "" {
				q.Set("synchronous_commit", "off")
				u.RawQuery = q.Encode()
				db = u.String()
			}
		}
		return postgres.Open(ctx, db, logger)
	}
	s := sqlite.NewDB(db)
	// synchronous=OFF: a seed interrupted by a crash is redone on a new
	// file, so its commits need not wait for the disk (never the gateway's
	// setting).
	s.Logger, s.CacheMiB, s.BulkLoad = logger, seedCacheMiB, true
	if err := s.Open(ctx); err != nil {
		return nil, err
	}
	return s, nil
}
