package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// startGateway serves the gateway's HTTP API over a new SQLite store at
// path on a loopback test server, and returns its FHIR base URL and a
// function that stops it and closes the store.
func startGateway(tb testing.TB, path string) (string, func()) {
	tb.Helper()
	logger := slog.New(slog.DiscardHandler)
	codec, err := fhirjson.New()
	if err != nil {
		tb.Fatal(err)
	}
	store, err := sqlite.Open(context.Background(), path, logger)
	if err != nil {
		tb.Fatal(err)
	}
	closeStore := func() {
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	}
	api, err := httpapi.NewServer(store, codec, logger)
	if err != nil {
		closeStore()
		tb.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	return srv.URL + "/fhir", func() {
		srv.Close()
		closeStore()
	}
}

// TestRunInProcess runs the load against a gateway Run starts through
// Config.StartGateway and against the parse-only baseline, and checks the
// report, the text output and that the gateway and its store are gone
// afterwards.
func TestRunInProcess(t *testing.T) {
	var dbs []string
	stops := 0
	cfg := Config{
		Concurrency: 4, Duration: 200 * time.Millisecond, Warmup: 100 * time.Millisecond, CompareParseOnly: true,
		StartGateway: func(ctx context.Context, db string) (string, func() error, error) {
			dbs = append(dbs, db)
			base, stop := startGateway(t, db)
			return base, func() error { stops++; stop(); return nil }, nil
		},
	}
	var out bytes.Buffer
	rep, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	if len(dbs) != 1 || stops != 1 {
		t.Fatalf("StartGateway called for %q, stopped %d times; want once each", dbs, stops)
	}
	if _, err := os.Stat(filepath.Dir(dbs[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the store's directory %s is still there: %v", filepath.Dir(dbs[0]), err)
	}
	g, p := rep.Gateway, rep.ParseOnly
	if g == nil || p == nil || g.Name != "gateway" || p.Name != "parse-only" || !g.InProcess || !p.InProcess || rep.Backends != nil {
		t.Fatalf("report: gateway %+v, parse-only %+v, backends %v", g, p, rep.Backends)
	}
	for _, r := range []*Result{g, p} {
		if r.Requests == 0 || r.OK != r.Requests || r.Errors != 0 || r.RPS <= 0 || r.Latency.P99 < r.Latency.P50 {
			t.Errorf("%s: %+v; want requests, all ok", r.Name, r)
		}
	}
	if g.Stored == nil || *g.Stored != g.OK+g.WarmupOK {
		t.Errorf("stored %v ServiceRequests, want %d (every 2xx)", g.Stored, g.OK+g.WarmupOK)
	}
	if rep.Ratio <= 0 || rep.Concurrency != 4 || rep.DurationS != 0.2 || rep.PID != os.Getpid() {
		t.Errorf("report: %+v", rep)
	}
	if n := len(regexp.MustCompile(`throughput [0-9.]+ req/s`).FindAllString(out.String(), -1)); n != 2 {
		t.Errorf("want 2 req/s figures, got %d", n)
	}
	if !strings.Contains(out.String(), "ratio gateway/parse-only: ") {
		t.Error("no ratio line")
	}
}

// TestRunTarget runs the load with JSON output against a running gateway
// and checks the referrals through the gateway's own search.
func TestRunTarget(t *testing.T) {
	base, stop := startGateway(t, filepath.Join(t.TempDir(), "t.db"))
	defer stop()
	ctx := context.Background()
	var out bytes.Buffer
	const n = 20
	got, err := Run(ctx, Config{Target: base + "/", Requests: n, Duration: 30 * time.Second, Concurrency: 3, JSON: true}, &out)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out.String())
	}
	g := rep.Gateway
	if g == nil || g.URL != base || g.InProcess || rep.ParseOnly != nil {
		t.Fatalf("report: %s", out.String())
	}
	if got.Gateway == nil || got.Gateway.Requests != g.Requests || got.Gateway.URL != g.URL {
		t.Errorf("returned report %+v, printed %+v", got.Gateway, g)
	}
	if g.Requests != n || g.OK != n || g.Errors != 0 || g.RPS <= 0 || g.Latency.P99 <= 0 || g.Latency.P99 < g.Latency.P50 {
		t.Errorf("gateway result: %+v", g)
	}
	if g.Stored == nil || *g.Stored != n {
		t.Errorf("stored: %v, want %d", g.Stored, n)
	}
	if total, err := storedServiceRequests(ctx, http.DefaultClient, base); err != nil || total != n {
		t.Errorf("GET ServiceRequest total = %d, %v; want %d", total, err, n)
	}
}

func TestConfigValidate(t *testing.T) {
	start := func(context.Context, string) (string, func() error, error) { return "", nil, errors.New("not started") }
	valid := func() Config {
		return Config{Concurrency: 32, Duration: 10 * time.Second, Warmup: time.Second, StartGateway: start}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"NotLoopback", func(c *Config) { c.Target = "http://example.org/fhir" }, "not a loopback address"},
		{"PrivateAddress", func(c *Config) { c.Target = "http://10.0.0.1:8080/fhir" }, "not a loopback address"},
		{"NotHTTP", func(c *Config) { c.Target = "ftp://127.0.0.1/fhir" }, "not an http(s) URL"},
		{"NoConcurrency", func(c *Config) { c.Concurrency = 0 }, "--concurrency"},
		{"TooMuchConcurrency", func(c *Config) { c.Concurrency = maxBenchConcurrency + 1 }, "--concurrency"},
		{"NoDuration", func(c *Config) { c.Duration = 0 }, "--duration"},
		{"TooLong", func(c *Config) { c.Duration = 2 * time.Hour }, "--duration"},
		{"NegativeRequests", func(c *Config) { c.Requests = -1 }, "--requests"},
		{"NegativeWarmup", func(c *Config) { c.Warmup = -time.Second }, "--warmup"},
		{"TargetTakesNoBackend", func(c *Config) { c.Target, c.Backends = "http://127.0.0.1:1/fhir", []string{BackendPostgres} }, "--backends applies to the in-process gateway"},
		{"NoWayToStartAGateway", func(c *Config) { c.StartGateway = nil }, "no StartGateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	c := valid()
	if err := c.Validate(); err != nil || !slices.Equal(c.Backends, []string{BackendSQLite}) {
		t.Errorf("Validate() = %v, backends %q; want nil, the default sqlite", err, c.Backends)
	}
	c = valid()
	c.Target, c.StartGateway = "http://localhost:8080/fhir/", nil
	if err := c.Validate(); err != nil || c.Target != "http://localhost:8080/fhir" {
		t.Errorf("Validate() = %v, target %q; want nil, the target without its trailing slash", err, c.Target)
	}
}

func TestLoopbackBase(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080/fhir", "http://localhost:8080/fhir/", "http://[::1]:8080/fhir"} {
		if _, err := loopbackBase(ok); err != nil {
			t.Errorf("loopbackBase(%q): %v", ok, err)
		}
	}
}

func TestParseBackends(t *testing.T) {
	if got, err := ParseBackends("sqlite, postgres"); err != nil || !slices.Equal(got, []string{BackendSQLite, BackendPostgres}) {
		t.Errorf("ParseBackends = %q, %v", got, err)
	}
	if _, err := ParseBackends("sqlite,mysql"); err == nil || !strings.Contains(err.Error(), `unknown backend "mysql"`) {
		t.Errorf("ParseBackends(sqlite,mysql) = %v, want an unknown backend error", err)
	}
}

// TestRunBadPostgresURL checks that a postgres backend on a URL that is not
// PostgreSQL's fails before any gateway is started.
func TestRunBadPostgresURL(t *testing.T) {
	cfg := Config{Concurrency: 1, Duration: 100 * time.Millisecond, Backends: []string{BackendPostgres}, PostgresURL: "mysql://x",
		StartGateway: func(context.Context, string) (string, func() error, error) {
			t.Error("StartGateway called")
			return "", nil, errors.New("not started")
		}}
	if _, err := Run(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "not a postgres:// URL") {
		t.Fatalf("Run = %v, want an error containing %q", err, "not a postgres:// URL")
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
	want := Latency{P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if (latencySummary(nil) != Latency{}) {
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
	defer func() {
		if err := store.Close(); err != nil {
			b.Errorf("close store: %v", err)
		}
	}()
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
	benchIntake(b, NewParseOnlyHandler(codec), "/fhir")
}

// TestReportFailures: a run fails on any failed request, on a server that
// completed none, and (with targets) on each target not met; a p99 of
// failed requests is not judged.
func TestReportFailures(t *testing.T) {
	ok := func() *Result {
		return &Result{Name: "gateway", Requests: 100, OK: 100, InProcess: true, PeakRSSMB: 80, Latency: Latency{P99: 20}}
	}
	for _, tc := range []struct {
		name    string
		rep     func() *Report
		targets bool
		want    []string // substrings, one per failure, in order
	}{
		{"AllGood", func() *Report { return &Report{Gateway: ok()} }, true, nil},
		{"Errors", func() *Report {
			g := ok()
			g.OK, g.Errors, g.ErrorsByStatus, g.FirstError, g.Latency.P99 = 0, 100, map[string]int{"transport": 99, "503": 1}, "connection refused", 0.1
			return &Report{Gateway: g}
		}, true, []string{"gateway: 100 of 100 requests failed (503: 1, transport: 99); first transport error: connection refused"}},
		{"NoRequests", func() *Report { g := ok(); g.Requests, g.OK = 0, 0; return &Report{Gateway: g} }, false, []string{"no request completed"}},
		{"P99", func() *Report { g := ok(); g.Latency.P99 = 51; return &Report{Gateway: g} }, true, []string{"p99 51.0 ms > 50ms"}},
		{"P99NotJudgedWithoutTargets", func() *Report { g := ok(); g.Latency.P99 = 51; return &Report{Gateway: g} }, false, nil},
		{"RatioAndRSS", func() *Report {
			g := ok()
			g.PeakRSSMB = 200
			po := ok()
			po.Name = "parse-only"
			return &Report{Gateway: g, ParseOnly: po, Ratio: 0.5}
		}, true, []string{"ratio gateway/parse-only 0.50 < 0.8", "RSS 200.0 MB > 150 MB"}},
		{"BackendFails", func() *Report {
			pg := ok()
			pg.Name, pg.Errors, pg.OK = "gateway/postgres", 3, 97
			g := ok()
			g.Name = "gateway/sqlite"
			return &Report{Gateway: g, Backends: []*Result{g, pg}}
		}, false, []string{"gateway/postgres: 3 of 100 requests failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.rep().Failures(tc.targets)
			if len(got) != len(tc.want) {
				t.Fatalf("Failures = %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("failure %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
