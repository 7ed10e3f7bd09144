package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

// Bounds on a bench run: it is a load generator for a loopback gateway, not
// a tool to hammer anything for long.
const (
	maxBenchConcurrency = 1024
	maxBenchDuration    = time.Hour
	maxBenchWarmup      = time.Minute
	maxBenchRequests    = 10_000_000
	benchRequestTimeout = 30 * time.Second
)

// Targets from the issue: the durable gateway against the parse-only
// baseline on a 2-core machine at concurrency 32.
const (
	benchTargetRatio = 0.8
	benchTargetP99   = 50 * time.Millisecond
	benchTargetRSSMB = 150
)

// Config is the configuration of a bench run ("linkbridge bench").
type Config struct {
	// Target is the FHIR base URL of a running gateway (loopback only).
	// Empty starts a gateway in this process (StartGateway) on a fresh
	// store of each backend.
	Target string
	// Concurrency is the number of requests in flight.
	Concurrency int
	// Duration bounds the measured run.
	Duration time.Duration
	// Requests, if positive, also caps the number of measured requests.
	Requests int
	// Warmup is an unmeasured run before each measured one.
	Warmup time.Duration
	// CompareParseOnly also measures an in-process parse-only server.
	CompareParseOnly bool
	// JSON prints the results as one JSON object.
	JSON bool
	// Backends are the stores the in-process gateway is measured on, in
	// turn ("sqlite", "postgres"; default sqlite); PostgresURL is the
	// database of the postgres backend, in which each run gets a fresh
	// schema that is dropped afterwards.
	Backends    []string
	PostgresURL string
	// StartGateway starts the in-process gateway; it is required when
	// Target is empty.
	StartGateway StartGatewayFunc
	// Progress, if set, receives a line every ProgressEvery during a
	// measured run or warmup of at least twice that: time elapsed,
	// requests sent, errors so far.
	Progress io.Writer
	// ProgressEvery defaults to 5 s.
	ProgressEvery time.Duration
}

// StartGatewayFunc starts a gateway in this process on the fresh, empty
// store that db names (a SQLite file path or a postgres:// URL, as "serve
// --db" takes it) and waits until it accepts connections. It returns the
// gateway's FHIR base URL and a function that shuts the gateway down,
// returns once in-flight requests have finished and the store is closed,
// and reports what went wrong doing so.
type StartGatewayFunc func(ctx context.Context, db string) (base string, stop func() error, err error)

// Validate checks the configuration. It also fills in the default
// backend (sqlite) and trims a trailing slash from Target.
func (c *Config) Validate() error {
	switch {
	case c.Concurrency < 1 || c.Concurrency > maxBenchConcurrency:
		return fmt.Errorf("--concurrency must be between 1 and %d", maxBenchConcurrency)
	case c.Duration <= 0 || c.Duration > maxBenchDuration:
		return fmt.Errorf("--duration must be positive and at most %s", maxBenchDuration)
	case c.Warmup < 0 || c.Warmup > maxBenchWarmup:
		return fmt.Errorf("--warmup must be between 0 and %s", maxBenchWarmup)
	case c.Requests < 0 || c.Requests > maxBenchRequests:
		return fmt.Errorf("--requests must be between 0 (no cap) and %d", maxBenchRequests)
	}
	if len(c.Backends) == 0 {
		c.Backends = []string{BackendSQLite}
	}
	if c.Target != "" && (len(c.Backends) > 1 || c.Backends[0] != BackendSQLite) {
		return errors.New("--backends applies to the in-process gateway, not to --target")
	}
	if c.Target != "" {
		base, err := loopbackBase(c.Target)
		if err != nil {
			return fmt.Errorf("--target: %w", err)
		}
		c.Target = base
	}
	if c.Target == "" && c.StartGateway == nil {
		return errors.New("bench: no Target and no StartGateway to start a gateway in this process")
	}
	return nil
}

// loopbackBase checks that s is an http(s) URL of a loopback host and
// returns it without a trailing slash.
func loopbackBase(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q is not an http(s) URL", s)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("host %q is not a loopback address: bench only loads a gateway on this machine", host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("the FHIR base URL takes no query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Report is the outcome of a bench run (the --json output).
type Report struct {
	// Concurrency, DurationS, WarmupS and Requests echo the flags.
	Concurrency int     `json:"concurrency"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	Requests    int     `json:"requests_cap,omitempty"`
	// GOMAXPROCS, NumCPU and PID describe this process.
	GOMAXPROCS int `json:"gomaxprocs"`
	NumCPU     int `json:"num_cpu"`
	PID        int `json:"pid"`
	// Gateway is the run against the gateway (on the first backend).
	Gateway *Result `json:"gateway"`
	// Backends are the gateway's runs on each backend, when --backends
	// names more than one.
	Backends []*Result `json:"backends,omitempty"`
	// ParseOnly is the run against the parse-only server, if asked for.
	ParseOnly *Result `json:"parse_only,omitempty"`
	// Ratio is gateway req/s divided by parse-only req/s.
	Ratio float64 `json:"ratio,omitempty"`
	// CPURatio is parse-only CPU time per request divided by the
	// gateway's (client included in both; for a --target gateway its
	// process's CPU is added when it was found). It is the throughput
	// ratio the two would reach if CPU were the only limit, and is much
	// steadier than Ratio on a machine that other work shares.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
}

// Result is the measured run against one server.
type Result struct {
	// Name is "gateway" (on SQLite), "gateway/<backend>" (bench
	// --backends) or "parse-only".
	Name string `json:"name"`
	// URL is the FHIR base the Bundles were POSTed to.
	URL string `json:"url"`
	// InProcess is true when the server ran inside this process, so that
	// PeakRSSMB and CPUCores include both the client and the server.
	InProcess bool `json:"in_process"`

	// Requests counts the measured requests; OK those answered 2xx;
	// Errors the rest, by HTTP status or "transport" in ErrorsByStatus.
	Requests       int            `json:"requests"`
	OK             int            `json:"ok"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errors_by_status,omitempty"`
	// FirstError is the first transport error, if any.
	FirstError string `json:"first_error,omitempty"`
	// ElapsedS is the wall time of the measured run, up to the last
	// response; RPS is Requests divided by it.
	ElapsedS float64 `json:"elapsed_s"`
	RPS      float64 `json:"req_per_s"`
	// Latency summarises the time from sending a request to reading the
	// whole response.
	Latency Latency `json:"latency_ms"`

	// PeakRSSMB is this process's VmHWM over the warmup and measured run
	// (reset before the warmup when the kernel allows it).
	PeakRSSMB float64 `json:"peak_rss_mb"`
	// PeakRSSReset says whether the peak was reset before this server's
	// run; when false it is the peak since the process started.
	PeakRSSReset bool `json:"peak_rss_reset"`
	// CPUCores is this process's CPU time over the measured run divided by
	// its wall time; CPUPerReqMS is that CPU time per request. On a shared
	// machine CPUPerReqMS is steadier than req/s.
	CPUCores    float64 `json:"cpu_cores"`
	CPUPerReqMS float64 `json:"cpu_ms_per_req"`

	// WarmupOK counts the successful warmup requests.
	WarmupOK int `json:"warmup_ok"`
	// Stored is how many ServiceRequests the gateway's search total grew
	// by over warmup and run; nil when it could not be read.
	Stored *int `json:"stored,omitempty"`

	// ServerPID and ServerPeakRSSMB describe a separate --target process
	// when it can be found from its listening socket.
	ServerPID       int     `json:"server_pid,omitempty"`
	ServerPeakRSSMB float64 `json:"server_peak_rss_mb,omitempty"`
	ServerRSSMB     float64 `json:"server_rss_mb,omitempty"`
	// ServerCPUPerReqMS is the --target process's CPU time per request
	// over the measured run.
	ServerCPUPerReqMS float64 `json:"server_cpu_ms_per_req,omitempty"`
}

// Latency holds latency figures in milliseconds: nearest-rank
// percentiles, the maximum and the mean.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Failures lists what went wrong in a run, one line each: a server
// whose requests failed (with the statuses and the first transport
// error), one that completed none, and each of the targets not
// met. Empty means every request succeeded and every target was met.
// With targets false only failed requests count.
func (rep *Report) Failures(targets bool) []string {
	var out []string
	results := append([]*Result{}, rep.Backends...)
	if len(results) == 0 && rep.Gateway != nil {
		results = append(results, rep.Gateway)
	}
	if rep.ParseOnly != nil {
		results = append(results, rep.ParseOnly)
	}
	for _, r := range results {
		switch {
		case r.Requests == 0:
			out = append(out, fmt.Sprintf("%s: no request completed (%s)", r.Name, r.URL))
		case r.Errors > 0:
			line := fmt.Sprintf("%s: %d of %d requests failed (%s)", r.Name, r.Errors, r.Requests, errorsByStatus(r.ErrorsByStatus))
			if r.FirstError != "" {
				line += "; first transport error: " + r.FirstError
			}
			out = append(out, line)
		}
	}
	if !targets || rep.Gateway == nil {
		return out
	}
	g := rep.Gateway
	if g.OK > 0 && g.Errors == 0 {
		if p99 := time.Duration(g.Latency.P99 * float64(time.Millisecond)); p99 > benchTargetP99 {
			out = append(out, fmt.Sprintf("target not met: gateway p99 %.1f ms > %s", g.Latency.P99, benchTargetP99))
		}
	}
	if rep.ParseOnly != nil && rep.Ratio < benchTargetRatio {
		out = append(out, fmt.Sprintf("target not met: ratio gateway/parse-only %.2f < %.1f", rep.Ratio, benchTargetRatio))
	}
	if rss := peakRSS(g); rss > benchTargetRSSMB {
		out = append(out, fmt.Sprintf("target not met: RSS %.1f MB > %d MB", rss, benchTargetRSSMB))
	}
	return out
}

// peakRSS is the peak RSS the RSS target applies to: the whole process
// for an in-process gateway, the server's for a --target one (0: unknown).
func peakRSS(g *Result) float64 {
	if g.InProcess {
		return g.PeakRSSMB
	}
	return g.ServerPeakRSSMB
}

// errorsByStatus renders error counts as "transport: 3, 503: 2".
func errorsByStatus(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// Run validates cfg, starts whatever servers it needs, runs the load and
// writes the report to out: as text while it runs or, with cfg.JSON, as one
// JSON object at the end. It returns the report.
//
// Each Bundle it POSTs is a referral with a unique valid NHS number and
// unique identifiers (see ReferralGen), at a fixed concurrency for a fixed
// time; it reports throughput, latency percentiles, errors and peak RSS.
// With cfg.CompareParseOnly it runs the same load against an in-process
// ParseOnlyHandler and reports the ratio of the two throughputs.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{
		Concurrency: cfg.Concurrency,
		DurationS:   cfg.Duration.Seconds(),
		WarmupS:     cfg.Warmup.Seconds(),
		Requests:    cfg.Requests,
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		NumCPU:      runtime.NumCPU(),
		PID:         os.Getpid(),
	}
	gen := newReferralGen()
	if !cfg.JSON {
		w := new(strings.Builder)
		fmt.Fprintf(w, "linkbridge bench: concurrency %d, duration %s, warmup %s", cfg.Concurrency, cfg.Duration, cfg.Warmup)
		if cfg.Requests > 0 {
			fmt.Fprintf(w, ", at most %d requests", cfg.Requests)
		}
		fmt.Fprintf(w, "; GOMAXPROCS %d, %d CPUs, pid %d\n", rep.GOMAXPROCS, rep.NumCPU, rep.PID)
		if _, err := io.WriteString(out, w.String()); err != nil {
			return nil, err
		}
	}

	// The gateway, on each backend in turn.
	for _, backend := range cfg.Backends {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := benchGateway(ctx, &cfg, gen, backend)
		if err != nil {
			return nil, err
		}
		if rep.Gateway == nil {
			rep.Gateway = res
		}
		if len(cfg.Backends) > 1 {
			rep.Backends = append(rep.Backends, res)
		}
		if !cfg.JSON {
			if err := printBenchResult(out, res); err != nil {
				return nil, err
			}
		}
	}

	// The parse-only baseline.
	if cfg.CompareParseOnly {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, err := benchParseOnly(ctx, &cfg, gen)
		if err != nil {
			return nil, err
		}
		rep.ParseOnly = res
		if res.RPS > 0 {
			rep.Ratio = rep.Gateway.RPS / res.RPS
		}
		if g := rep.Gateway.CPUPerReqMS + rep.Gateway.ServerCPUPerReqMS; g > 0 && (rep.Gateway.InProcess || rep.Gateway.ServerPID > 0) {
			rep.CPURatio = res.CPUPerReqMS / g
		}
		if !cfg.JSON {
			if err := printBenchResult(out, res); err != nil {
				return nil, err
			}
		}
	}

	if cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return nil, err
		}
		return rep, nil
	}
	if len(rep.Backends) > 1 {
		if err := printBackends(out, rep.Backends); err != nil {
			return nil, err
		}
	}
	if err := printBenchSummary(out, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// benchGateway measures the gateway at cfg.Target, or at one it starts
// in-process (cfg.StartGateway) on a fresh store of backend (see benchStore).
func benchGateway(ctx context.Context, cfg *Config, gen *referralGen, backend string) (_ *Result, err error) {
	base := cfg.Target
	inProcess := base == ""
	if inProcess {
		db, cleanup, err := benchStore(ctx, backend, cfg.PostgresURL)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		gwBase, stop, err := cfg.StartGateway(ctx, db)
		if err != nil {
			return nil, err
		}
		defer func() {
			if serr := stop(); serr != nil {
				err = errors.Join(err, fmt.Errorf("bench: stop the in-process gateway: %w", serr))
			}
		}()
		base = gwBase
	}
	client := newBenchClient(cfg.Concurrency)
	defer client.CloseIdleConnections()

	before, beforeErr := storedServiceRequests(ctx, client, base)
	res := &Result{Name: "gateway", URL: base, InProcess: inProcess}
	if len(cfg.Backends) > 1 || backend != BackendSQLite {
		res.Name = "gateway/" + backend
	}
	if !inProcess {
		res.ServerPID = listenerPID(base)
	}
	if err := runBenchLoad(ctx, client, base, cfg, gen, res); err != nil {
		return nil, err
	}
	if after, err := storedServiceRequests(ctx, client, base); err == nil && beforeErr == nil {
		n := after - before
		res.Stored = &n
	}
	if res.ServerPID > 0 {
		st := procStatus(fmt.Sprintf("/proc/%d/status", res.ServerPID))
		res.ServerPeakRSSMB, res.ServerRSSMB = st["VmHWM"], st["VmRSS"]
	}
	return res, nil
}

// benchParseOnly measures an in-process parse-only server.
func benchParseOnly(ctx context.Context, cfg *Config, gen *referralGen) (*Result, error) {
	codec, err := fhirjson.New()
	if err != nil {
		return nil, err
	}
	srv, base, err := startBenchServer(NewParseOnlyHandler(codec))
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	client := newBenchClient(cfg.Concurrency)
	defer client.CloseIdleConnections()
	res := &Result{Name: "parse-only", URL: base, InProcess: true}
	if err := runBenchLoad(ctx, client, base, cfg, gen, res); err != nil {
		return nil, err
	}
	return res, nil
}

// startBenchServer serves h on 127.0.0.1:0 with the gateway's HTTP server
// settings and returns the FHIR base URL.
func startBenchServer(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String() + "/fhir", nil
}

// newBenchClient returns a client that keeps one connection per worker and
// never goes through a proxy.
func newBenchClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: benchRequestTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// runBenchLoad runs the warmup and then the measured load against base and
// fills res.
func runBenchLoad(ctx context.Context, client *http.Client, base string, cfg *Config, gen *referralGen, res *Result) error {
	res.PeakRSSReset = resetPeakRSS()
	if cfg.Warmup > 0 {
		w := runBenchPhase(ctx, client, base, cfg.Concurrency, cfg.Warmup, 0, gen, progressTo(cfg, res.Name+" warmup", cfg.Warmup))
		res.WarmupOK = w.ok
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	cpu0, scpu0 := processCPU(0), processCPU(res.ServerPID)
	p := runBenchPhase(ctx, client, base, cfg.Concurrency, cfg.Duration, cfg.Requests, gen, progressTo(cfg, res.Name, cfg.Duration))
	cpu, scpu := processCPU(0)-cpu0, processCPU(res.ServerPID)-scpu0
	if err := ctx.Err(); err != nil {
		return err
	}
	res.PeakRSSMB = procStatus("/proc/self/status")["VmHWM"]
	res.Requests = len(p.latencies)
	res.OK = p.ok
	res.Errors = res.Requests - p.ok
	if len(p.errs) > 0 {
		res.ErrorsByStatus = p.errs
	}
	res.FirstError = p.firstErr
	res.ElapsedS = p.elapsed.Seconds()
	if p.elapsed > 0 {
		res.RPS = float64(res.Requests) / p.elapsed.Seconds()
		res.CPUCores = cpu.Seconds() / p.elapsed.Seconds()
	}
	if res.Requests > 0 {
		res.CPUPerReqMS = float64(cpu.Microseconds()) / 1e3 / float64(res.Requests)
		if res.ServerPID > 0 {
			res.ServerCPUPerReqMS = float64(scpu.Microseconds()) / 1e3 / float64(res.Requests)
		}
	}
	res.Latency = latencySummary(p.latencies)
	return nil
}

// benchPhase is the raw outcome of one timed load.
type benchPhase struct {
	latencies []time.Duration
	ok        int
	errs      map[string]int
	firstErr  string
	elapsed   time.Duration
}

// runBenchPhase keeps concurrency requests in flight until d has passed or
// limit requests (if positive) have been sent, and waits for the last
// response. Every request counts, successful or not.
func runBenchPhase(ctx context.Context, client *http.Client, base string, concurrency int, d time.Duration, limit int, gen *referralGen, prog *progress) *benchPhase {
	type worker struct {
		lat      []time.Duration
		ok       int
		errs     map[string]int
		firstErr string
	}
	var (
		sent    atomic.Int64
		wg      sync.WaitGroup
		workers = make([]worker, concurrency)
	)
	start := time.Now()
	deadline := start.Add(d)
	var done, failed atomic.Int64
	stopProgress := prog.start(start, &done, &failed)
	defer stopProgress()
	for i := range workers {
		w := &workers[i]
		w.errs = map[string]int{}
		w.lat = make([]time.Duration, 0, 1024)
		wg.Go(func() {
			rng := gen.rand()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if limit > 0 && sent.Add(1) > int64(limit) {
					return
				}
				// A fresh buffer each time: the transport may still hold
				// the previous body when the response has arrived.
				body, reqID := gen.next(make([]byte, 0, 4096), rng)
				t0 := time.Now()
				status, err := postBundle(ctx, client, base, body, reqID)
				w.lat = append(w.lat, time.Since(t0))
				done.Add(1)
				if err != nil || status < 200 || status >= 300 {
					failed.Add(1)
				}
				switch {
				case err != nil:
					if ctx.Err() != nil {
						// Interrupted: not the server's failure.
						w.lat = w.lat[:len(w.lat)-1]
						return
					}
					w.errs["transport"]++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
				case status >= 200 && status < 300:
					w.ok++
				default:
					w.errs[strconv.Itoa(status)]++
				}
			}
		})
	}
	wg.Wait()
	p := &benchPhase{elapsed: time.Since(start), errs: map[string]int{}}
	for i := range workers {
		w := &workers[i]
		p.latencies = append(p.latencies, w.lat...)
		p.ok += w.ok
		for k, v := range w.errs {
			p.errs[k] += v
		}
		if p.firstErr == "" {
			p.firstErr = w.firstErr
		}
	}
	return p
}

// postBundle POSTs one transaction Bundle and drains the response so that
// the connection is reused.
func postBundle(ctx context.Context, client *http.Client, base string, body []byte, reqID string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("X-Request-Id", reqID)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// latencySummary returns nearest-rank percentiles of ds (which it sorts).
func latencySummary(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Latency{
		P50:  ms(rank(0.50)),
		P90:  ms(rank(0.90)),
		P99:  ms(rank(0.99)),
		Max:  ms(ds[len(ds)-1]),
		Mean: ms(sum / time.Duration(len(ds))),
	}
}

// storedServiceRequests reads the total of GET
// {base}/ServiceRequest?_count=1&_total=accurate (without _total the
// gateway leaves a total above 1,000 out).
func storedServiceRequests(ctx context.Context, client *http.Client, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ServiceRequest?_count=1&_total=accurate", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("search ServiceRequest: HTTP %d", resp.StatusCode)
	}
	var b struct {
		Total *int `json:"total"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&b); err != nil {
		return 0, err
	}
	if b.Total == nil {
		return 0, errors.New("search ServiceRequest: no total")
	}
	return *b.Total, nil
}

// printBenchResult prints one server's figures.
func printBenchResult(out io.Writer, r *Result) error {
	w := new(strings.Builder)
	where := "separate process"
	if r.InProcess {
		where = "in-process"
	}
	fmt.Fprintf(w, "\n%s  %s (%s)\n", r.Name, r.URL, where)
	fmt.Fprintf(w, "  requests %d  ok %d  errors %d", r.Requests, r.OK, r.Errors)
	if len(r.ErrorsByStatus) > 0 {
		keys := make([]string, 0, len(r.ErrorsByStatus))
		for k := range r.ErrorsByStatus {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, r.ErrorsByStatus[k])
		}
		fmt.Fprintf(w, " (%s)", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first transport error: %s\n", r.FirstError)
	}
	fmt.Fprintf(w, "  throughput %.1f req/s over %.2fs\n", r.RPS, r.ElapsedS)
	l := r.Latency
	fmt.Fprintf(w, "  latency ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	if r.Stored != nil {
		want := r.OK + r.WarmupOK
		check := "ok"
		if *r.Stored != want {
			check = "MISMATCH"
		}
		fmt.Fprintf(w, "  stored +%d ServiceRequests (warmup+run 2xx: %d, %s)\n", *r.Stored, want, check)
	}
	peak := "since start"
	if r.PeakRSSReset {
		peak = "this run"
	}
	who := "client + server"
	if !r.InProcess {
		who = "client only"
	}
	fmt.Fprintf(w, "  this process (%s): peak RSS %.1f MB (%s), CPU %.2f cores, %.2f ms/request\n", who, r.PeakRSSMB, peak, r.CPUCores, r.CPUPerReqMS)
	if !r.InProcess {
		if r.ServerPID > 0 {
			fmt.Fprintf(w, "  server pid %d: peak RSS %.1f MB (since it started), RSS now %.1f MB (from /proc/%d/status), CPU %.2f ms/request\n", r.ServerPID, r.ServerPeakRSSMB, r.ServerRSSMB, r.ServerPID, r.ServerCPUPerReqMS)
		} else {
			fmt.Fprintln(w, "  server RSS: read VmHWM in /proc/<pid of linkbridge serve>/status")
		}
	}
	_, err := io.WriteString(out, w.String())
	return err
}

// printBenchSummary prints the ratio and the targets.
func printBenchSummary(out io.Writer, rep *Report) error {
	w := new(strings.Builder)
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	g := rep.Gateway
	fmt.Fprintln(w)
	if rep.ParseOnly != nil {
		fmt.Fprintf(w, "ratio gateway/parse-only: %.2f (%.1f / %.1f req/s)\n", rep.Ratio, g.RPS, rep.ParseOnly.RPS)
		if rep.CPURatio > 0 {
			fmt.Fprintf(w, "CPU-bound ratio: %.2f (parse-only %.2f / gateway %.2f CPU ms per request, client included)\n",
				rep.CPURatio, rep.ParseOnly.CPUPerReqMS, g.CPUPerReqMS+g.ServerCPUPerReqMS)
		}
	}
	fmt.Fprintf(w, "targets at concurrency %d:", rep.Concurrency)
	if rep.ParseOnly != nil {
		fmt.Fprintf(w, " ratio ≥ %.1f %s;", benchTargetRatio, mark(rep.Ratio >= benchTargetRatio))
	}
	p99 := time.Duration(g.Latency.P99 * float64(time.Millisecond))
	if g.OK == 0 || g.Errors > 0 {
		// The latency of failed requests (a refused connection answers in
		// microseconds) says nothing about the gateway's.
		fmt.Fprintf(w, " gateway p99 ≤ %s NOT MEASURED (requests failed);", benchTargetP99)
	} else {
		fmt.Fprintf(w, " gateway p99 ≤ %s %s;", benchTargetP99, mark(p99 <= benchTargetP99))
	}
	rss, who := g.PeakRSSMB, "process incl. client"
	if !g.InProcess {
		rss, who = g.ServerPeakRSSMB, "server"
	}
	if rss > 0 {
		fmt.Fprintf(w, " RSS ≤ %d MB %s (%.1f MB, %s);", benchTargetRSSMB, mark(rss <= benchTargetRSSMB), rss, who)
	}
	fmt.Fprintf(w, " errors %d\n", g.Errors)
	_, err := io.WriteString(out, w.String())
	return err
}

// resetPeakRSS resets this process's VmHWM to its current RSS (Linux 4.0+)
// and reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// IntakeServiceODS is the first of the services the load generator's
// referrals are addressed to.
const IntakeServiceODS = "Y02662"

// ProcStatus reads the kB fields (VmHWM, VmRSS, ...) of process pid's
// /proc status as MB; empty where there is no procfs.
func ProcStatus(pid int) map[string]float64 { return procStatus(fmt.Sprintf("/proc/%d/status", pid)) }

// procStatus reads the kB fields of a /proc/PID/status file as MB.
func procStatus(path string) map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		v = strings.TrimSpace(v)
		if !ok || !strings.HasSuffix(v, " kB") {
			continue
		}
		if n, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			out[k] = math.Round(n/1024*10) / 10
		}
	}
	return out
}

// processCPU returns the user+system CPU time of process pid (0: this
// process) from /proc/PID/stat, assuming 100 ticks a second; 0 where there
// is no procfs.
func processCPU(pid int) time.Duration {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: state is field 3,
	// utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// listenerPID finds the process listening on base's port on this machine
// from /proc/net/tcp{,6} and the /proc/PID/fd links it can read; 0 when it
// cannot.
func listenerPID(base string) int {
	u, err := url.Parse(base)
	if err != nil {
		return 0
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0
	}
	want := fmt.Sprintf(":%04X", pn)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			// local_address is field 1, st is field 3 (0A = LISTEN),
			// inode is field 9.
			if len(fs) > 9 && strings.HasSuffix(fs[1], want) && fs[3] == "0A" {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); err == nil && inodes[l] {
				return pid
			}
		}
	}
	return 0
}

// Synthetic referral content. NHS numbers come from the 999 range that NHS
// England reserves for test data, so no generated number is a real
// patient's; telephone numbers from Ofcom's drama range.
var (
	benchGiven  = []string{"Ann", "Margaret", "Joan", "David", "John", "Peter", "Susan", "Aisha", "Mohammed", "Priya", "Tomasz", "Grace"}
	benchFamily = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Khan", "Patel", "Evans", "Nowak", "Okafor", "Hughes"}
	benchStreet = []string{"Acacia Avenue", "Station Road", "Church Lane", "High Street", "Victoria Road", "Mill Lane", "Park Road", "The Crescent"}
	benchTown   = []struct{ city, postcode string }{
		{"Leeds", "LS6 2AB"}, {"Bradford", "BD7 1DP"}, {"Wakefield", "WF1 3JS"}, {"Halifax", "HX1 5LU"}, {"Huddersfield", "HD1 2TA"},
	}
	benchGPODS     = []string{"B86001", "B86002", "B82005", "B83010", "B85016", "A81001"}
	benchGPName    = []string{"Park Lane Surgery", "Chapeltown Health Centre", "Moorland Medical Practice", "Riverside Surgery", "Hillside Practice", "Example Surgery"}
	benchServiceOD = []string{IntakeServiceODS, "Y03641", "Y05381"}
	benchNotes     = []string{
		"Lives alone since bereavement last year; would like to meet people.",
		"Struggling with debt and housing worries; low mood.",
		"Recently retired, wants to get more active and find local groups.",
		"Carer for spouse, isolated, asks for support and respite information.",
	}
	// benchReasons are SNOMED CT findings for a social prescribing
	// referral; each passes linkbridge.ValidSCTID (checked in tests).
	benchReasons = []struct{ code, display string }{
		{"267076002", "Feeling lonely"},
		{"422650009", "Social isolation"},
		{"105529008", "Lives alone"},
		{"73595000", "Stress"},
		{"73438004", "Unemployed"},
		{"32911000", "Homeless"},
	}
)

// ReferralGen generates referral transaction Bundles (Patient, the GP's
// Organization, ServiceRequest) as Run posts them, a few microseconds each:
// NHS numbers are unique valid numbers of the 999 test range (up to its
// 909,091 valid numbers) and every identifier and fullUrl is a fresh UUID.
// It is safe for concurrent use, each goroutine with its own Rand.
type ReferralGen struct{ g *referralGen }

// NewReferralGen returns a generator that starts at a random point of the
// NHS number test range.
func NewReferralGen() *ReferralGen { return &ReferralGen{g: newReferralGen()} }

// Rand returns a new random source for one goroutine.
func (g *ReferralGen) Rand() *rand.Rand { return g.g.rand() }

// Next appends a new referral transaction Bundle, its content drawn from
// rng, to b and returns it with a fresh X-Request-Id.
func (g *ReferralGen) Next(b []byte, rng *rand.Rand) ([]byte, string) { return g.g.next(b, rng) }

// referralGen builds referral transaction Bundles from a byte template, a
// few microseconds each. NHS numbers are unique across all its Bundles (up
// to the 909,091 valid numbers of the 999 test range) and every identifier
// and fullUrl is a fresh UUID.
type referralGen struct {
	seq      atomic.Uint64
	nhsStart uint64
	seed     uint64
	seeds    atomic.Uint64
	authored string
}

func newReferralGen() *referralGen {
	g := &referralGen{nhsStart: rand.Uint64N(1_000_000), seed: rand.Uint64()}
	g.authored = time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	return g
}

// rand returns a random source for one worker.
func (g *referralGen) rand() *rand.Rand {
	return rand.New(rand.NewPCG(g.seed, g.seeds.Add(1)))
}

// nhsNumber returns the next unused valid test NHS number (999 range).
func (g *referralGen) nhsNumber() string {
	for {
		first9 := strconv.Itoa(999_000_000 + int((g.nhsStart+g.seq.Add(1))%1_000_000))
		if check, ok := linkbridge.NHSCheckDigit(first9); ok {
			return first9 + strconv.Itoa(check)
		}
		// no valid NHS number has these nine digits
	}
}

// appendUUID appends a random version 4 UUID.
func appendUUID(b []byte, rng *rand.Rand) []byte {
	var u [16]byte
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			u[i+j] = byte(v >> (8 * j))
		}
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], u[10:16])
	return append(b, s[:]...)
}

// next appends a new referral transaction Bundle to b and returns it with
// a fresh X-Request-Id.
func (g *referralGen) next(b []byte, rng *rand.Rand) ([]byte, string) {
	pick := func(n int) int { return rng.IntN(n) }
	var ids [36 * 4]byte
	u := appendUUID(ids[:0], rng)
	u = appendUUID(u, rng)
	u = appendUUID(u, rng)
	u = appendUUID(u, rng)
	patient, org, sr, reqID := u[0:36], u[36:72], u[72:108], string(u[108:144])
	gp := pick(len(benchGPODS))
	town := benchTown[pick(len(benchTown))]
	reason := benchReasons[pick(len(benchReasons))]
	gender := "female"
	if pick(2) == 0 {
		gender = "male"
	}

	b = append(b, `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:`...)
	b = append(b, patient...)
	b = append(b, `","resource":{"resourceType":"Patient","identifier":[{"system":"`+linkbridge.NHSNumberSystem+`","value":"`...)
	b = append(b, g.nhsNumber()...)
	b = append(b, `"}],"name":[{"use":"official","family":"`...)
	b = append(b, benchFamily[pick(len(benchFamily))]...)
	b = append(b, `","given":["`...)
	b = append(b, benchGiven[pick(len(benchGiven))]...)
	b = append(b, `"]}],"telecom":[{"system":"phone","value":"07700 900`...)
	b = fmt.Appendf(b, "%03d", pick(1000))
	b = append(b, `","use":"mobile"}],"gender":"`...)
	b = append(b, gender...)
	b = append(b, `","birthDate":"`...)
	b = fmt.Appendf(b, "%04d-%02d-%02d", 1930+pick(75), 1+pick(12), 1+pick(28))
	b = append(b, `","address":[{"use":"home","line":["`...)
	b = strconv.AppendInt(b, int64(1+pick(200)), 10)
	b = append(b, ' ')
	b = append(b, benchStreet[pick(len(benchStreet))]...)
	b = append(b, `"],"city":"`...)
	b = append(b, town.city...)
	b = append(b, `","postalCode":"`...)
	b = append(b, town.postcode...)
	b = append(b, `"}]},"request":{"method":"POST","url":"Patient"}},{"fullUrl":"urn:uuid:`...)
	b = append(b, org...)
	b = append(b, `","resource":{"resourceType":"Organization","identifier":[{"system":"`+linkbridge.ODSSystem+`","value":"`...)
	b = append(b, benchGPODS[gp]...)
	b = append(b, `"}],"name":"`...)
	b = append(b, benchGPName[gp]...)
	b = append(b, `"},"request":{"method":"POST","url":"Organization"}},{"fullUrl":"urn:uuid:`...)
	b = append(b, sr...)
	b = append(b, `","resource":{"resourceType":"ServiceRequest","identifier":[{"system":"https://fhir.example-gp.nhs.uk/Id/referral","value":"`...)
	b = appendUUID(b, rng)
	b = append(b, `"}],"status":"active","intent":"order","priority":"routine","category":[{"coding":[{"system":"`+linkbridge.SNOMEDSystem+`","code":"871731000000106","display":"Referral to social prescribing service"}]}],"code":{"coding":[{"system":"`+linkbridge.SNOMEDSystem+`","code":"871731000000106"}]},"subject":{"reference":"urn:uuid:`...)
	b = append(b, patient...)
	b = append(b, `"},"authoredOn":"`...)
	b = append(b, g.authored...)
	b = append(b, `","requester":{"reference":"urn:uuid:`...)
	b = append(b, org...)
	b = append(b, `"},"performer":[{"identifier":{"system":"`+linkbridge.ODSSystem+`","value":"`...)
	b = append(b, benchServiceOD[pick(len(benchServiceOD))]...)
	b = append(b, `"}}],"reasonCode":[{"coding":[{"system":"`+linkbridge.SNOMEDSystem+`","code":"`...)
	b = append(b, reason.code...)
	b = append(b, `","display":"`...)
	b = append(b, reason.display...)
	b = append(b, `"}]}],"note":[{"text":"`...)
	b = append(b, benchNotes[pick(len(benchNotes))]...)
	b = append(b, `"}]},"request":{"method":"POST","url":"ServiceRequest"}}]}`...)
	return b, reqID
}

// progress prints a line every interval while a phase runs.
type progress struct {
	w        io.Writer
	name     string
	every, d time.Duration
}

// progressTo returns the progress of a phase of length d, or nil when
// cfg asks for none or the phase is too short to need it.
func progressTo(cfg *Config, name string, d time.Duration) *progress {
	every := cfg.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	if cfg.Progress == nil || d < 2*every {
		return nil
	}
	return &progress{w: cfg.Progress, name: name, every: every, d: d}
}

// start prints the counters every interval until the returned function
// is called.
func (p *progress) start(t0 time.Time, done, failed *atomic.Int64) (stop func()) {
	if p == nil {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				// Progress is informational: a failed write stops nothing.
				_, _ = fmt.Fprintf(p.w, "  %s: %s of %s, %d requests, %d failed\n", p.name,
					now.Sub(t0).Round(min(p.every, time.Second)/10), p.d, done.Load(), failed.Load())
			}
		}
	}()
	return func() { close(quit); <-finished }
}
