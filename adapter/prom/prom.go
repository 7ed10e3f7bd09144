// Package prom exposes linkbridge's operational metrics in the Prometheus
// text format (via github.com/VictoriaMetrics/metrics, which has no
// dependencies that would clash with google/fhir's): the outbox queue
// (depth per state, oldest pending age, read from the store at scrape time),
// delivery counters and the change-to-delivery latency histogram (from the
// relay), and process metrics. It uses its own metric set; nothing global.
package prom

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/linkbridge/linkbridge"
	"golang.org/x/time/rate"
)

// Metrics implements outbox.Metrics and serves /metrics.
type Metrics struct {
	set *metrics.Set
	// limit bounds scrapes: /metrics is not authenticated, and a scrape is
	// not free.
	limit *rate.Limiter

	mu        sync.Mutex
	queue     []byte // the outbox gauges as last read
	queueRead time.Time
}

// QueueTTL is how long the outbox queue gauges, read from the store, are
// served before they are read again: a scrape costs the store one count
// per QueueTTL at most, however often it comes.
const QueueTTL = 5 * time.Second

// Scrapes are limited to ScrapeRate a second with bursts of ScrapeBurst;
// over that /metrics answers 429 with Retry-After.
const (
	ScrapeRate  = 2
	ScrapeBurst = 10
)

// New builds the metrics over an outbox store (nil when the outbox is not
// in use).
func New(store linkbridge.OutboxStore, logger *slog.Logger) *Metrics {
	m := &Metrics{set: metrics.NewSet(), limit: rate.NewLimiter(ScrapeRate, ScrapeBurst)}
	if store != nil {
		m.set.RegisterMetricsWriter(func(w io.Writer) { m.writeQueueCached(w, store, logger) })
	}
	return m
}

// writeQueueCached writes the outbox gauges, reading them from the store
// at most once per QueueTTL.
func (m *Metrics) writeQueueCached(w io.Writer, store linkbridge.OutboxStore, logger *slog.Logger) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.queue == nil || time.Since(m.queueRead) >= QueueTTL {
		var b bytes.Buffer
		writeQueue(&b, store, logger)
		m.queue, m.queueRead = b.Bytes(), time.Now()
	}
	_, _ = w.Write(m.queue) // the scrape's own response; its failure is the scraper's
}

// Delivered records a delivery and its change-to-delivery latency.
func (m *Metrics) Delivered(resourceType string, latency time.Duration) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`linkbridge_writeback_delivered_total{resource_type=%q}`, resourceType)).Inc()
	m.set.GetOrCreateHistogram(fmt.Sprintf(`linkbridge_writeback_delivery_seconds{resource_type=%q}`, resourceType)).Update(latency.Seconds())
}

// Retried records a rescheduled attempt.
func (m *Metrics) Retried(resourceType string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`linkbridge_writeback_retried_total{resource_type=%q}`, resourceType)).Inc()
}

// DeadLettered records a permanent refusal.
func (m *Metrics) DeadLettered(resourceType string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`linkbridge_writeback_dead_lettered_total{resource_type=%q}`, resourceType)).Inc()
}

// Cleaned records finished messages the relay's cleaner deleted.
func (m *Metrics) Cleaned(n int) {
	m.set.GetOrCreateCounter(`linkbridge_writeback_cleaned_total`).Add(n)
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.limit.Allow() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many scrapes\n", http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
}

// writeQueue writes the outbox queue gauges, read at scrape time.
func writeQueue(w io.Writer, store linkbridge.OutboxStore, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := store.OutboxStats(ctx)
	if err != nil {
		if logger != nil {
			logger.Warn("metrics: outbox stats", slog.Any("error", err))
		}
		return
	}
	for _, s := range []linkbridge.OutboxState{linkbridge.OutboxPending, linkbridge.OutboxInflight, linkbridge.OutboxDelivered,
		linkbridge.OutboxDead, linkbridge.OutboxDiscarded, linkbridge.OutboxSuperseded} {
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`linkbridge_outbox_messages{state=%q}`, s), uint64(st.Counts[s]))
	}
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = time.Since(st.OldestPending).Seconds()
	}
	metrics.WriteGaugeFloat64(w, "linkbridge_outbox_oldest_pending_age_seconds", age)
}
