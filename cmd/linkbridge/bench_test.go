package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/bench"
)

func TestBenchInProcessCompareParseOnly(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "--duration", "300ms", "--warmup", "100ms", "--concurrency", "4", "--compare-parse-only"},
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

// TestBenchTarget runs bench --json against a gateway started as "serve"
// does, and checks the referrals through the gateway's own search.
func TestBenchTarget(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var serveLog bytes.Buffer
	go func() {
		done <- (&ServeCommand{Getenv: func(string) string { return "" }, Stdout: &serveLog, Stderr: &serveLog, Ready: ready}).
			Run(ctx, []string{"--dev", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "t.db"), "--log-level", "warn"})
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr + "/fhir"
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, serveLog.String())
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	var stdout, stderr bytes.Buffer
	const n = 20
	err := run(ctx, []string{"bench", "--target", base + "/", "--requests", strconv.Itoa(n), "--duration", "30s", "--warmup", "0", "--concurrency", "3", "--json"},
		func(string) string { return "" }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	var rep BenchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	g := rep.Gateway
	if g == nil || g.URL != base || g.InProcess || rep.ParseOnly != nil {
		t.Fatalf("report: %s", stdout.String())
	}
	if g.Requests != n || g.OK != n || g.Errors != 0 || g.RPS <= 0 || g.Latency.P99 <= 0 || g.Latency.P99 < g.Latency.P50 {
		t.Errorf("gateway result: %+v", g)
	}
	if g.Stored == nil || *g.Stored != n {
		t.Errorf("stored: %v, want %d", g.Stored, n)
	}
	if got, err := storedServiceRequests(ctx, http.DefaultClient, base); err != nil || got != n {
		t.Errorf("GET ServiceRequest total = %d, %v; want %d", got, err, n)
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
	for _, ok := range []string{"http://127.0.0.1:8080/fhir", "http://localhost:8080/fhir/", "http://[::1]:8080/fhir"} {
		if _, err := loopbackBase(ok); err != nil {
			t.Errorf("loopbackBase(%q): %v", ok, err)
		}
	}
}

func TestReferralGen(t *testing.T) {
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	gen := newReferralGen()
	rng := gen.rand()
	nhs := map[string]bool{}
	ids := map[string]bool{}
	reqIDs := map[string]bool{}
	const n = 1000
	for i := 0; i < n; i++ {
		body, reqID := gen.next(nil, rng)
		var b struct {
			Entry []struct {
				FullURL  string `json:"fullUrl"`
				Resource struct {
					ResourceType string `json:"resourceType"`
					Identifier   []struct{ System, Value string }
				} `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("body %d is not JSON: %v\n%s", i, err, body)
		}
		if len(b.Entry) != 3 {
			t.Fatalf("body %d has %d entries", i, len(b.Entry))
		}
		num := b.Entry[0].Resource.Identifier[0].Value
		if _, err := linkbridge.NormalizeNHSNumber(num); err != nil || !strings.HasPrefix(num, "999") {
			t.Fatalf("NHS number %q: %v", num, err)
		}
		nhs[num] = true
		ids[b.Entry[2].Resource.Identifier[0].Value] = true
		for _, e := range b.Entry {
			ids[e.FullURL] = true
		}
		reqIDs[reqID] = true
		if i < 10 {
			if _, err := codec.Decode(body); err != nil {
				t.Fatalf("body %d does not decode: %v\n%s", i, err, body)
			}
		}
	}
	if len(nhs) != n || len(ids) != 4*n || len(reqIDs) != n {
		t.Errorf("unique NHS numbers %d, identifiers %d, request ids %d; want %d, %d, %d", len(nhs), len(ids), len(reqIDs), n, 4*n, n)
	}
}

func TestBenchReasonsAreValidSCTIDs(t *testing.T) {
	for _, r := range benchReasons {
		if !linkbridge.ValidSCTID(r.code) {
			t.Errorf("%s (%s) fails the Verhoeff check", r.code, r.display)
		}
	}
}

func TestLatencySummary(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := latencySummary(ds)
	want := BenchLatency{P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if (latencySummary(nil) != BenchLatency{}) {
		t.Error("empty input")
	}
}

func BenchmarkReferralGen(b *testing.B) {
	gen := newReferralGen()
	rng := gen.rand()
	b.ReportAllocs()
	for b.Loop() {
		gen.next(make([]byte, 0, 4096), rng)
	}
}

// benchIntake posts generated referral Bundles straight to h (no network),
// from GOMAXPROCS goroutines, and fails on any non-2xx answer.
func benchIntake(b *testing.B, h http.Handler, path string) {
	gen := newReferralGen()
	b.ReportAllocs()
	b.SetParallelism(16) // 32 in flight on 2 cores, as "linkbridge bench" runs
	// CPU time per request, whatever else the machine is doing: the ratio
	// of two benchmarks' cpu-ms/op is their throughput ratio on idle cores.
	cpu0 := processCPU(os.Getpid())
	defer func() {
		b.ReportMetric(float64(processCPU(os.Getpid())-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}()
	b.RunParallel(func(pb *testing.PB) {
		rng := gen.rand()
		buf := make([]byte, 0, 8192)
		for pb.Next() {
			body, reqID := gen.next(buf[:0], rng)
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("X-Request-Id", reqID)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 300 {
				b.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body.Bytes())
			}
		}
	})
}

// BenchmarkIntakeGateway is durable transaction intake through the gateway's
// handler on a real SQLite file: parse, validate, map, store, respond.
func BenchmarkIntakeGateway(b *testing.B) { benchIntakeGateway(b, false) }

// BenchmarkIntakeGatewayAudited is BenchmarkIntakeGateway with the audit
// trail on (api.Audit set to the store), as "linkbridge serve" runs.
func BenchmarkIntakeGatewayAudited(b *testing.B) { benchIntakeGateway(b, true) }

// benchIntakeGateway runs benchIntake on the gateway over a new SQLite
// store, auditing into it when audited.
func benchIntakeGateway(b *testing.B, audited bool) {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), logger)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	codec, err := fhirjson.New()
	if err != nil {
		b.Fatal(err)
	}
	api, err := httpapi.NewServer(store, codec, logger)
	if err != nil {
		b.Fatal(err)
	}
	if audited {
		api.Audit = store
	}
	benchIntake(b, api.Handler(), "/fhir")
}

// BenchmarkIntakeParseOnly is the same load on the parse-only baseline.
func BenchmarkIntakeParseOnly(b *testing.B) {
	codec, err := fhirjson.New()
	if err != nil {
		b.Fatal(err)
	}
	benchIntake(b, bench.NewParseOnlyHandler(codec), "/fhir")
}
