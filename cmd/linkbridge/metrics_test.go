package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/prom"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/prometheus/common/expfmt"
)

// countingOutbox is the real SQLite store, counting the outbox statistics
// reads a scrape makes.
type countingOutbox struct {
	linkbridge.OutboxStore
	stats atomic.Int32
}

func (c *countingOutbox) OutboxStats(ctx context.Context) (*linkbridge.OutboxStats, error) {
	c.stats.Add(1)
	return c.OutboxStore.OutboxStats(ctx)
}

// TestMetricsCheapAndLimited: /metrics reads the outbox from the store at
// most once per prom.QueueTTL however often it is scraped, and a flood of
// scrapes is answered 429 with Retry-After beyond the burst.
func TestMetricsCheapAndLimited(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lb.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store := &countingOutbox{OutboxStore: db}
	srv := httptest.NewServer(prom.New(store, logger).Handler())
	t.Cleanup(srv.Close)
	ok, limited := 0, 0
	for range prom.ScrapeBurst + 20 {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
			if !strings.Contains(string(b), `linkbridge_outbox_messages{state="pending"} 0`) {
				t.Errorf("scrape lacks the outbox gauges:\n%.300s", b)
			}
		case http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		default:
			t.Errorf("scrape answered %d", resp.StatusCode)
		}
	}
	if ok < prom.ScrapeBurst || limited == 0 {
		t.Errorf("%d scrapes served, %d limited: want the burst (%d) served and the rest limited", ok, limited, prom.ScrapeBurst)
	}
	if n := store.stats.Load(); n != 1 {
		t.Errorf("the store's outbox was read %d times for %d scrapes within %s, want once", n, ok, prom.QueueTTL)
	}
}

// TestServeMetrics scrapes the real gateway after a few requests and
// parses /metrics with the Prometheus text parser: every family has HELP
// and TYPE, the request and intake series carry what was sent, the
// histograms have le buckets.
func TestServeMetrics(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "lb.db")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"serve", "--create-db", "--dev", "--addr", "127.0.0.1:0", "--db", db, "--log-level", "error"}, noEnv, io.Discard, io.Discard)
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fhir", "r4", "bundle-referral-transaction.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/fhir/metadata", ""},
		{http.MethodPost, "/fhir", string(body)},
		{http.MethodPost, "/fhir", string(body)}, // the same referral: existing
		{http.MethodGet, "/fhir/Task/no-such-task", ""},
		{http.MethodGet, "/nowhere", ""},
	} {
		r, _ := http.NewRequest(req.method, base+req.path, strings.NewReader(req.body))
		r.Header.Set("Content-Type", "application/fhir+json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses /metrics: %v\n%s", err, text)
	}
	for n, f := range fams {
		if f.GetHelp() == "" || !bytes.Contains(text, []byte("\n# TYPE "+n+" ")) {
			t.Errorf("%s: HELP %q, or no TYPE line", n, f.GetHelp())
		}
	}
	for _, want := range []string{
		`linkbridge_http_requests_total{route="/fhir/metadata",method="GET",status_class="2xx"} 1`,
		`linkbridge_http_requests_total{route="/fhir",method="POST",status_class="2xx"} 2`,
		`linkbridge_http_requests_total{route="/fhir/{type}/{id}",method="GET",status_class="4xx"} 1`,
		`linkbridge_http_requests_total{route="(no route)",method="GET",status_class="4xx"} 1`,
		`linkbridge_http_request_duration_seconds_bucket{route="/fhir",method="POST",status_class="2xx",le="+Inf"} 2`,
		`linkbridge_intake_referrals_total{via="rest",outcome="created"} 1`,
		`linkbridge_intake_referrals_total{via="rest",outcome="existing"} 1`,
		`linkbridge_outbox_messages{state="pending"} 0`,
	} {
		if !bytes.Contains(text, []byte(want+"\n")) {
			t.Errorf("/metrics lacks %s\n%s", want, regexp.MustCompile(`(?m)^linkbridge_http_requests_total.*$`).FindAll(text, -1))
		}
	}
	if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
		t.Error("no Go runtime or process metrics")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
