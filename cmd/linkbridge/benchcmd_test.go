package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
	"github.com/linkbridge/linkbridge/bench"
)

// The bench command's tests: its flags and its wiring of the real "serve"
// command as the in-process gateway. The load generator's own tests are in
// package bench.

func TestBenchInProcessCompareParseOnly(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "--duration", "300ms", "--warmup", "100ms", "--concurrency", "4", "--compare-parse-only", "--targets=false"},
		func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String()
	if err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("\n%s", out)
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	if n := len(regexp.MustCompile(`throughput [0-9.]+ req/s`).FindAllString(out, -1)); n != 2 {
		t.Errorf("want 2 req/s figures, got %d", n)
	}
	if n := len(regexp.MustCompile(`latency ms  p50 [0-9.]+  p90 [0-9.]+  p99 [0-9.]+`).FindAllString(out, -1)); n != 2 {
		t.Errorf("want 2 latency lines, got %d", n)
	}
	reqs := regexp.MustCompile(`requests (\d+)  ok (\d+)  errors (\d+)`).FindAllStringSubmatch(out, -1)
	if len(reqs) != 2 {
		t.Fatalf("want 2 request count lines, got %d", len(reqs))
	}
	for _, m := range reqs {
		if m[1] == "0" || m[1] != m[2] || m[3] != "0" {
			t.Errorf("want requests > 0, all ok, no errors: %q", m[0])
		}
	}
	// The gateway committed every referral it answered 2xx to.
	st := regexp.MustCompile(`stored \+(\d+) ServiceRequests \(warmup\+run 2xx: (\d+), ok\)`).FindStringSubmatch(out)
	if st == nil || st[1] == "0" || st[1] != st[2] {
		t.Errorf("want a stored count > 0 matching the 2xx count, got %q", st)
	}
	if !strings.Contains(out, "ratio gateway/parse-only: ") {
		t.Error("no ratio line")
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--target", "http://example.org/fhir"},
		{"--target", "http://10.0.0.1:8080/fhir"},
		{"--target", "ftp://127.0.0.1/fhir"},
		{"--concurrency", "0"},
		{"--duration", "0s"},
		{"--duration", "2h"},
		{"--requests", "-1"},
		{"--warmup", "-1s"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"bench"}, args...), func(string) string { return "" }, &stdout, &stderr); err == nil {
			t.Errorf("bench %q: want an error", args)
		}
	}
}

// TestBenchBackends runs the intake benchmark on SQLite and PostgreSQL in
// one run and checks that each backend stored every referral it answered
// 2xx to, and that the PostgreSQL run left no schema behind.
func TestBenchBackends(t *testing.T) {
	pg := pgtest.ServerURL(t)
	ctx := context.Background()
	benchSchemas := func() int {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := conn.Close(ctx); err != nil {
				t.Error(err)
			}
		}()
		var n int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM pg_namespace WHERE nspname LIKE 'linkbridge_bench_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := benchSchemas()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"bench", "--backends", "sqlite,postgres", "--postgres", pg, "--duration", "300ms", "--warmup", "100ms", "--targets=false",
		"--concurrency", "4", "--log-level", "warn", "--json"}, noEnv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, stdout.String())
	}
	if len(rep.Backends) != 2 || rep.Gateway == nil || rep.Gateway.Name != rep.Backends[0].Name {
		t.Fatalf("bench --json: gateway %+v, %d backends; want 2, the first also as gateway", rep.Gateway, len(rep.Backends))
	}
	for i, want := range []string{"gateway/sqlite", "gateway/postgres"} {
		r := rep.Backends[i]
		if r.Name != want || r.Requests == 0 || r.OK != r.Requests || r.Errors != 0 {
			t.Errorf("backend %d: %s requests %d ok %d errors %d; want %s with every request ok", i, r.Name, r.Requests, r.OK, r.Errors, want)
		}
		if r.Stored == nil || *r.Stored != r.OK+r.WarmupOK {
			t.Errorf("%s: stored %v ServiceRequests, want %d (every 2xx)", r.Name, r.Stored, r.OK+r.WarmupOK)
		}
	}
	if after := benchSchemas(); after != before {
		t.Errorf("bench schemas: %d before, %d after; want the run's schema dropped", before, after)
	}
}

func TestBenchBackendsFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"UnknownBackend", []string{"bench", "--backends", "sqlite,mysql"}, `unknown backend "mysql"`},
		{"TargetTakesNoBackend", []string{"bench", "--target", "http://127.0.0.1:1/fhir", "--backends", "postgres"}, "--backends applies to the in-process gateway"},
		{"BadPostgresURL", []string{"bench", "--backends", "postgres", "--postgres", "mysql://x", "--duration", "100ms"}, "not a postgres:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tc.args, noEnv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestBenchDeadTarget: against a gateway that does not answer, bench
// fails (it exited 0 and called the p99 target met, with every request
// failed), prints what failed, and does not call the latency measured.
// Progress lines appear on a run twice as long as --progress.
func TestBenchDeadTarget(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/fhir"
	_ = ln.Close() // nothing listens there now: connections are refused
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"bench", "--target", dead, "--duration", "400ms", "--warmup", "0s", "--concurrency", "2", "--progress", "100ms"},
		noEnv, &stdout, &stderr)
	if err == nil || exitCode(err, io.Discard) != 1 {
		t.Fatalf("bench against a dead target = %v, want a failure\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !regexp.MustCompile(`gateway: (\d+) of (\d+) requests failed \(transport: \d+\); first transport error: .*connection refused`).MatchString(stderr.String()) {
		t.Errorf("stderr does not say what failed:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "p99 ≤ 50ms NOT MEASURED") || strings.Contains(stdout.String(), "p99 ≤ 50ms met") {
		t.Errorf("summary:\n%s", stdout.String())
	}
	if !regexp.MustCompile(`(?m)^  gateway: \d+ms of 400ms, \d+ requests, \d+ failed$`).MatchString(stderr.String()) {
		t.Errorf("no progress line:\n%s", stderr.String())
	}
}
