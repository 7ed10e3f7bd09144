package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/bench"
	"github.com/linkbridge/linkbridge/refgp"
)

// BenchScaleCommand is "linkbridge bench scale": on each backend, it seeds
// a store to each size in turn (bench.Seed, growing one store), and at
// each size starts the gateway as its own process on that store and
// measures start-up, the relay's drain of the outbox the store holds, the
// reads of bench.ScaleQueries, durable intake against the parse-only
// server, the store's size and the gateway's peak RSS. It prints a table
// and writes JSON, Markdown and SVG charts (docs/performance.md#the-scale-benchmark).
type BenchScaleCommand struct {
	Stdout, Stderr io.Writer
}

// Run parses flags and runs the benchmark.
func (c *BenchScaleCommand) Run(ctx context.Context, args []string) error {
	var (
		sizesArg, backendsArg, pgURL, out, dir string
		intake, drainCap                       time.Duration
		queryRuns, concurrency                 int
		appendOut, keep                        bool
	)
	fs := newFlags("bench scale", nil, c.Stderr)
	fs.synopsis = "bench scale [--sizes 0,100000,1000000] [--backends sqlite,postgres] [--out bench/results] [flags]"
	fs.str(&sizesArg, "sizes", "", "0,100000,1000000", "store sizes (referrals), ascending: each a new store seeded with that many")
	fs.str(&backendsArg, "backends", "", "sqlite,postgres", "stores to measure: sqlite, postgres or both")
	fs.str(&pgURL, "postgres", "", bench.DefaultPostgresURL, "PostgreSQL database of the postgres backend (a schema is made in it and dropped at the end)")
	fs.str(&out, "out", "", "bench/results", "directory for scale.json, scale.md and the SVG charts")
	fs.str(&dir, "dir", "", "", "directory for the SQLite stores (default: a temporary directory, removed at the end)")
	fs.duration(&intake, "intake-duration", "", 10*time.Second, "length of each intake run (after a 2 s warm-up)")
	fs.integer(&concurrency, "concurrency", "", 32, "intake requests in flight")
	fs.integer(&queryRuns, "query-runs", "", 200, "measured requests of each read")
	fs.duration(&drainCap, "drain-for", "", time.Minute, "longest wait for the relay to drain the store's outbox")
	fs.boolean(&appendOut, "append", "", false, "keep the points already in --out's scale.json that this run does not measure (a backend and size measured again is replaced)")
	fs.boolean(&keep, "keep", "", false, "keep each seeded store at the end (the PostgreSQL schema; the SQLite file needs --dir) and print its --db value, for bench migrations")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench scale takes no arguments, got %q", fs.Args())
	}
	var sizes []int
	for _, s := range strings.Split(sizesArg, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || (len(sizes) > 0 && n < sizes[len(sizes)-1]) {
			return fmt.Errorf("bench scale: --sizes %q: want ascending counts of referrals", sizesArg)
		}
		sizes = append(sizes, n)
	}
	backends, err := bench.ParseBackends(backendsArg)
	if err != nil {
		return fmt.Errorf("bench scale: --backends: %w", err)
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "linkbridge-scale-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		dir = tmp
	}
	res := &bench.ScaleResults{Date: time.Now().UTC().Format("2006-01-02"), Command: "linkbridge bench scale " + strings.Join(args, " "),
		Machine: fmt.Sprintf("%d cores (GOMAXPROCS %d), %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)}
	var earlier *bench.ScaleResults
	if appendOut {
		if earlier, err = bench.LoadScaleResults(out); err != nil {
			return fmt.Errorf("bench scale: --append: %w", err)
		}
	}
	s := &scaleRun{bin: bin, dir: dir, stderr: c.Stderr, intake: intake, concurrency: concurrency, queryRuns: queryRuns, drainCap: drainCap, keep: keep}
	for _, backend := range backends {
		for _, size := range sizes {
			p, err := s.point(ctx, backend, pgURL, size, c.logf)
			if err != nil {
				return fmt.Errorf("bench scale: %s at %d referrals: %w", backend, size, err)
			}
			p.Command = res.Command
			res.Points = append(res.Points, *p)
			// Each point is saved as it comes: a long run stopped later
			// keeps what it measured.
			if err := res.Merged(earlier).Save(out); err != nil {
				return err
			}
		}
	}
	return res.Merged(earlier).WriteTable(c.Stdout)
}

func (c *BenchScaleCommand) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(c.Stderr, "bench scale: "+format+"\n", args...)
}

// scaleRun holds what the points of a scale run share.
type scaleRun struct {
	bin, dir               string
	stderr                 io.Writer
	intake, drainCap       time.Duration
	concurrency, queryRuns int
	// keep leaves each point's store in place at the end.
	keep bool
}

// store makes the backend's empty store: a new SQLite file, or a new
// schema in the PostgreSQL database. It returns the gateway's --db value
// and a function that removes the store.
func (s *scaleRun) store(ctx context.Context, backend, pgURL string) (string, func(), error) {
	if backend == bench.BackendPostgres {
		u, drop, err := postgres.CreateSchema(ctx, pgURL, "linkbridge_scale")
		if err != nil {
			return "", nil, fmt.Errorf("bench scale on PostgreSQL (--postgres): %w", err)
		}
		return u, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = drop(ctx)
		}, nil
	}
	db := filepath.Join(s.dir, "scale.db")
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, err
		}
	}
	return db, func() {}, nil
}

// seed fills the new store with n referrals and returns the rate.
func (s *scaleRun) seed(ctx context.Context, db string, n int) (float64, error) {
	store, err := openSeedStore(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, err
	}
	defer func() { _ = store.Close() }()
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	cfg := bench.SeedConfig{Referrals: n, Progress: s.stderr, ProgressEvery: 30 * time.Second}
	if postgres.IsURL(db) {
		cfg.Writers = 6 // as bench seed: PostgreSQL's write path waits on round trips
	}
	st, err := bench.Seed(ctx, store, cfg)
	if err != nil {
		return 0, fmt.Errorf("bench scale: seed: %w", err)
	}
	return st.Rate(), store.Close()
}

// point makes a new store of the backend, seeds it with size referrals,
// measures it and removes it.
func (s *scaleRun) point(ctx context.Context, backend, pgURL string, size int, logf func(string, ...any)) (*bench.ScalePoint, error) {
	db, drop, err := s.store(ctx, backend, pgURL)
	if err != nil {
		return nil, err
	}
	if s.keep {
		// The store's URL names its schema (search_path); a password in
		// it is redacted (url.URL.Redacted).
		shown := db
		if u, err := url.Parse(db); err == nil && postgres.IsURL(db) {
			shown = u.Redacted()
		}
		logf("%s %d: the store is kept: --db %s", backend, size, shown)
	} else {
		defer drop()
	}
	var rate float64
	if size > 0 {
		logf("%s: seeding %d referrals", backend, size)
		if rate, err = s.seed(ctx, db, size); err != nil {
			return nil, err
		}
	}
	logf("%s %d: measuring", backend, size)
	p, err := s.measure(ctx, backend, db, size)
	if err != nil {
		return nil, err
	}
	p.SeedRate = rate
	if p.Server, err = storeServer(ctx, db); err != nil {
		return nil, err
	}
	return p, nil
}

// storeServer is the database server's version and settings that bear on
// a point's figures: PostgreSQL's (postgres.DB.Settings); "" for SQLite,
// which has no server.
func storeServer(ctx context.Context, db string) (string, error) {
	store, err := openStore(ctx, db, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = store.Close() }()
	if s, ok := store.(interface {
		Settings(context.Context) (string, error)
	}); ok {
		return s.Settings(ctx)
	}
	return "", nil
}

// measure starts the gateway on the store and takes one point's figures.
func (s *scaleRun) measure(ctx context.Context, backend, db string, size int) (*bench.ScalePoint, error) {
	p := &bench.ScalePoint{Backend: backend, Referrals: size}
	// The store's size as seeded, before the intake run adds to it.
	var err error
	if p.DBBytes, err = storeBytes(ctx, db); err != nil {
		return nil, err
	}
	if size > 0 {
		p.BytesPerReferral = float64(p.DBBytes) / float64(size)
	}
	// The outbox the store holds is written back to the reference GP, in
	// this process, lenient: the seeded history's earlier write-backs count
	// as delivered, so the resources they wrote are not on this new record
	// for a strict endpoint's references to resolve.
	// outbox is this process's handle on the store, for the drain's counts;
	// it is closed before intake (closeOutbox), so that nothing of this
	// process (a SQLite checkpointer) runs beside the measured requests.
	outbox, err := openStore(ctx, db, nil)
	if err != nil {
		return nil, err
	}
	var closeOnce sync.Once
	closeOutbox := func() { closeOnce.Do(func() { _ = outbox.Close() }) }
	defer closeOutbox()
	pending, err := queuedOutbox(ctx, outbox)
	if err != nil {
		return nil, err
	}
	// What the seed wrote is on disk before the gateway starts, so that the
	// drain, intake and reads do not share the disk with its write-out.
	if err := settleStore(ctx, outbox); err != nil {
		return nil, err
	}
	gp, err := refgp.Open(ctx, filepath.Join(s.dir, fmt.Sprintf("gp-%s-%d.db", backend, size)), refgp.Options{AllowClientIDs: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer func() { _ = gp.Close() }()
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	gsrv := &http.Server{Handler: gp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = gsrv.Serve(gln) }()
	defer func() { _ = gsrv.Close() }()

	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	root := "http://" + addr
	logs := &lockedBuffer{}
	cmd := exec.CommandContext(ctx, s.bin, "serve", "--dev", "--addr", addr, "--db", db, "--create-db", "--log-level", "warn",
		"--gp-base", "http://"+gln.Addr().String()+"/fhir", "--shutdown-timeout", "10s")
	cmd.Stdout, cmd.Stderr = logs, logs
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var waitOnce sync.Once
	stop := func() {
		waitOnce.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		})
	}
	defer stop()
	if !waitReady(root, 10*time.Minute) {
		return nil, fmt.Errorf("the gateway did not become ready:\n%s", logs)
	}
	p.StartupMS = float64(time.Since(t0).Microseconds()) / 1000

	// The relay drains the outbox the store held (changes of the last
	// week, as the seed queues them).
	if pending > 0 {
		for start := time.Now(); ; time.Sleep(time.Second) {
			left, err := queuedOutbox(ctx, outbox)
			if err != nil {
				return nil, err
			}
			if el := time.Since(start); left == 0 || el > s.drainCap {
				p.DrainPending, p.DrainLeft = pending, left
				p.DrainPerS = float64(pending-left) / time.Since(t0).Seconds()
				break
			}
		}
	}

	closeOutbox()

	client := &http.Client{Timeout: 30 * time.Second}
	// Intake first: on the empty store it is what the reads then find.
	rep, err := bench.Run(ctx, bench.Config{Target: root + "/fhir", Concurrency: s.concurrency, Duration: s.intake, Warmup: 2 * time.Second,
		CompareParseOnly: true}, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	p.IntakeRPS, p.IntakeP99MS, p.IntakeErrors = rep.Gateway.RPS, rep.Gateway.Latency.P99, rep.Gateway.Errors
	if rep.ParseOnly != nil {
		p.ParseOnlyRPS, p.Ratio = rep.ParseOnly.RPS, rep.Ratio
	}
	// The intake run added to the store what a day of referrals would:
	// PostgreSQL's autovacuum would analyze it after that (it is off on
	// some servers, this project's CI machine's included), so the reads
	// are measured with the plans a production server would have.
	if err := analyzeStore(ctx, db); err != nil {
		return nil, err
	}
	// The reads are of the first seeded service; on the empty store, of
	// the service the intake run referred to.
	service, since, month := bench.Service(0), bench.DefaultSeedEnd.Add(-24*time.Hour), bench.DefaultSeedEnd.Format("2006-01")
	if size == 0 {
		service, since, month = bench.IntakeServiceODS, time.Now().Add(-15*time.Minute), time.Now().UTC().Format("2006-01")
	}
	sample, err := bench.Sample(ctx, client, root, service, 200)
	if err != nil {
		return nil, err
	}
	sample.Since, sample.Month = since, month
	if p.Queries, err = bench.MeasureQueries(ctx, client, root, sample, bench.ScaleQueries, s.queryRuns); err != nil {
		return nil, err
	}
	if st := procStatusOf(cmd.Process.Pid); st["VmHWM"] > 0 {
		p.PeakRSSMB = st["VmHWM"]
	}
	stop()
	return p, nil
}

// freeLoopbackAddr returns a loopback address with a free port.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// queuedOutbox counts the messages waiting in the store's outbox (pending
// or inflight; the seeded store's are its write-backs), from its counts
// per state: the drain is polled with it, so it reads no message.
func queuedOutbox(ctx context.Context, store appStore) (int, error) {
	st, err := store.OutboxStats(ctx)
	if err != nil {
		return 0, err
	}
	return st.Counts[linkbridge.OutboxPending] + st.Counts[linkbridge.OutboxInflight], nil
}

// settleStore writes out what seeding left to write: the kernel's dirty
// pages (the SQLite file) and, on PostgreSQL, a checkpoint of the server's
// buffers. Without it the first measurements ran while gigabytes of the
// seed were still being written.
func settleStore(ctx context.Context, store appStore) error {
	if c, ok := store.(interface{ Checkpoint(context.Context) error }); ok {
		if err := c.Checkpoint(ctx); err != nil {
			return err
		}
	}
	syncFiles()
	return nil
}

// analyzeStore refreshes the planner statistics of a store that keeps
// them: PostgreSQL (postgres.DB.Analyze); the SQLite store has none to
// refresh (it runs no ANALYZE).
func analyzeStore(ctx context.Context, db string) error {
	store, err := openStore(ctx, db, nil)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()
	if a, ok := store.(interface{ Analyze(context.Context) error }); ok {
		return a.Analyze(ctx)
	}
	return nil
}

// storeBytes is the store's size on disk: the SQLite files, or the
// PostgreSQL schema's tables with their indexes and TOAST.
func storeBytes(ctx context.Context, db string) (int64, error) {
	if postgres.IsURL(db) {
		return postgres.SchemaSize(ctx, db)
	}
	return bench.DirSize(db), nil
}

// procStatusOf reads a process's /proc status figures in MB (VmHWM, VmRSS).
func procStatusOf(pid int) map[string]float64 {
	return bench.ProcStatus(pid)
}

// waitReady waits until the gateway at root answers /readyz with 200.
func waitReady(root string, timeout time.Duration) bool {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(30 * time.Millisecond) {
		if resp, err := c.Get(root + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
	}
	return false
}
