package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge/bench"
)

// BenchCommand is "linkbridge bench": it POSTs referral transaction Bundles,
// each with a unique valid NHS number and unique identifiers, to a gateway at
// a fixed concurrency for a fixed time, and prints throughput, latency
// percentiles, errors and peak RSS. With --compare-parse-only it runs the
// same load against a parse-only server (google/fhir parse and marshal,
// nothing stored) and prints the ratio of the two throughputs. The load
// generator is package bench; the in-process gateway it measures is the real
// "serve" command.
type BenchCommand struct {
	// Stdout receives the report; Stderr flag errors and the in-process
	// gateway's warnings.
	Stdout, Stderr io.Writer
}

func (c *BenchCommand) flags(cfg *bench.Config, logLevel *string, targets *bool) *commandFlags {
	fs := newFlags("bench", nil, c.Stderr)
	fs.synopsis = "bench [--target URL] [--duration 10s] [--concurrency 32] [flags]"
	fs.StringVar(&cfg.Target, "target", "", "FHIR base URL of a running gateway on this machine, e.g. http://127.0.0.1:8080/fhir (default: start one in-process on a fresh SQLite file)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 32, "requests in flight")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of each measured run")
	fs.IntVar(&cfg.Requests, "requests", 0, "stop each measured run after this many requests (0: no cap)")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured load before each measured run")
	fs.BoolVar(&cfg.CompareParseOnly, "compare-parse-only", false, "also run the load against an in-process parse-only server and print the ratio")
	fs.BoolVar(&cfg.JSON, "json", false, "print the results as JSON")
	fs.StringVar(logLevel, "log-level", "info", "log level of the in-process gateway (logs are rendered; only warnings and errors are shown)")
	fs.Func("backends", "stores to measure the in-process gateway on, in turn: sqlite, postgres or sqlite,postgres (default sqlite)", func(s string) (err error) {
		cfg.Backends, err = bench.ParseBackends(s)
		return err
	})
	fs.BoolVar(targets, "targets", true, "fail (exit 1) when a target is not met: gateway p99 ≤ 50 ms, ratio ≥ 0.8 with --compare-parse-only, RSS ≤ 150 MB; with --targets=false only failed requests fail the run (smoke tests on a loaded machine)")
	fs.DurationVar(&cfg.ProgressEvery, "progress", 5*time.Second, "print progress to stderr this often during runs at least twice as long")
	fs.StringVar(&cfg.PostgresURL, "postgres", bench.DefaultPostgresURL, "PostgreSQL database of the postgres backend (each run makes and drops a schema in it)")
	return fs
}

// Run parses flags, starts whatever servers it needs, runs the load and
// prints the report.
func (c *BenchCommand) Run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "seed" {
		return (&BenchSeedCommand{Stdout: c.Stdout, Stderr: c.Stderr}).Run(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "migrations" {
		return (&BenchMigrationsCommand{Stdout: c.Stdout, Stderr: c.Stderr}).Run(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "scale" {
		return (&BenchScaleCommand{Stdout: c.Stdout, Stderr: c.Stderr}).Run(ctx, args[1:])
	}
	var (
		cfg      bench.Config
		logLevel string
		targets  bool
	)
	fs := c.flags(&cfg, &logLevel, &targets)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench takes no arguments, got %q", fs.Args())
	}
	// The in-process gateway's logs are rendered (so their cost is
	// measured) but only warnings and errors are shown.
	cfg.StartGateway = func(ctx context.Context, db string) (string, func() error, error) {
		gw, err := startBenchGateway(ctx, db, logLevel, c.Stderr)
		if err != nil {
			return "", nil, err
		}
		return gw.base, gw.stop, nil
	}
	cfg.Progress = c.Stderr
	rep, err := bench.Run(ctx, cfg, c.Stdout)
	if err != nil {
		return err
	}
	if failures := rep.Failures(targets); len(failures) > 0 {
		var b strings.Builder
		b.WriteString("bench FAILED:\n")
		for _, f := range failures {
			b.WriteString("  " + f + "\n")
		}
		if _, err := io.WriteString(c.Stderr, b.String()); err != nil {
			return err
		}
		return fmt.Errorf("bench: %d failures (listed above): failed requests mean the gateway refused or could not be reached; a target not met is a performance regression (--targets=false judges errors only)", len(failures))
	}
	return nil
}

// inProcessGateway is a gateway running in this process: the real "serve"
// command (same wiring, flags and HTTP server settings) on 127.0.0.1:0.
type inProcessGateway struct {
	base   string
	cancel context.CancelFunc
	done   chan error
}

// startBenchGateway runs "serve" on 127.0.0.1:0 with the store dbPath names
// (a SQLite file or a postgres:// URL)
// and waits until it accepts connections.
func startBenchGateway(ctx context.Context, dbPath, logLevel string, stderr io.Writer) (*inProcessGateway, error) {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	gw := &inProcessGateway{cancel: cancel, done: make(chan error, 1)}
	serve := &ServeCommand{
		Getenv: func(string) string { return "" }, // flags only: ignore LINKBRIDGE_*
		Stdout: io.Discard,
		Stderr: &warnFilter{w: stderr},
		Ready:  ready,
	}
	go func() {
		gw.done <- serve.Run(ctx, []string{"--dev", "--addr", "127.0.0.1:0", "--db", dbPath, "--create-db", "--log-level", logLevel, "--log-format", "text"})
	}()
	select {
	case addr := <-ready:
		gw.base = "http://" + addr + "/fhir"
		return gw, nil
	case err := <-gw.done:
		cancel()
		if err == nil {
			err = errors.New("stopped before it was ready")
		}
		return nil, fmt.Errorf("in-process gateway: %w", err)
	case <-time.After(30 * time.Second):
		cancel()
		return nil, errors.New("in-process gateway: not ready after 30s")
	}
}

// stop shuts the gateway down (in-flight requests finish, the store closes)
// and returns what "serve" returned.
func (g *inProcessGateway) stop() error {
	g.cancel()
	return <-g.done
}

// warnFilter passes on only the warning and error lines of a text slog
// handler, which writes one record per Write. The in-process gateway runs
// with --dev on loopback by design, so its development-mode warning is
// dropped.
type warnFilter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *warnFilter) Write(p []byte) (int, error) {
	if (bytes.Contains(p, []byte(" level=WARN ")) || bytes.Contains(p, []byte(" level=ERROR "))) && !bytes.Contains(p, []byte("DEVELOPMENT MODE")) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, _ = f.w.Write(p)
	}
	return len(p), nil
}
