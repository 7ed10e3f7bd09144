package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/prom"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
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
