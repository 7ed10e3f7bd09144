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
	"runtime/debug"
	"strings"
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
	// reloaded is when the client registry was last reloaded (zero: not
	// since start).
	reloaded time.Time
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
	// HELP and TYPE lines; the library's switch is process-wide, and every
	// set in this process is exposed the same way.
	metrics.ExposeMetadata(true)
	m := &Metrics{set: metrics.NewSet(), limit: rate.NewLimiter(ScrapeRate, ScrapeBurst)}
	started := time.Now()
	m.set.NewGauge(`linkbridge_start_time_seconds`, func() float64 { return float64(started.UnixNano()) / 1e9 })
	m.set.NewGauge(buildInfoName(), func() float64 { return 1 })
	m.set.NewGauge(`linkbridge_config_last_reload_success_timestamp_seconds`, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.reloaded.IsZero() {
			return float64(started.UnixNano()) / 1e9
		}
		return float64(m.reloaded.UnixNano()) / 1e9
	})
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
	m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`linkbridge_writeback_delivery_seconds{resource_type=%q}`, resourceType), deliveryBuckets).Update(latency.Seconds())
}

// deliveryBuckets are the upper bounds (seconds) of the change-to-delivery
// histogram: from a healthy endpoint's sub-second delivery to an hour's
// outage.
var deliveryBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600}

// requestBuckets are the upper bounds (seconds) of the HTTP request
// duration histogram, around BaRS's 5 s answer time.
var requestBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

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

// Request records one API request by route template, method and status
// class (httpapi.Metrics).
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	labels := fmt.Sprintf(`{route=%q,method=%q,status_class=%q}`, routeLabel(route), methodLabel(method), statusClass(status))
	m.set.GetOrCreateCounter(`linkbridge_http_requests_total` + labels).Inc()
	m.set.GetOrCreatePrometheusHistogramExt(`linkbridge_http_request_duration_seconds`+labels, requestBuckets).Update(d.Seconds())
}

// Referral counts one referral received (intake.Metrics).
func (m *Metrics) Referral(via, outcome string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`linkbridge_intake_referrals_total{via=%q,outcome=%q}`, via, outcome)).Inc()
}

// Reloaded records a reload of the client registry and JWKS (SIGHUP):
// its outcome and, on success, the time.
func (m *Metrics) Reloaded(ok bool) {
	result := "failure"
	if ok {
		result = "success"
		m.mu.Lock()
		m.reloaded = time.Now()
		m.mu.Unlock()
	}
	m.set.GetOrCreateCounter(fmt.Sprintf(`linkbridge_config_reloads_total{result=%q}`, result)).Inc()
}

// routeLabel shortens a gorilla/mux template for a label: variables
// without their patterns ("/fhir/{type}/{id}").
func routeLabel(route string) string {
	var b strings.Builder
	for len(route) > 0 {
		i := strings.IndexByte(route, '{')
		if i < 0 {
			b.WriteString(route)
			break
		}
		j := strings.IndexByte(route[i:], '}')
		if j < 0 {
			b.WriteString(route)
			break
		}
		name, _, _ := strings.Cut(route[i+1:i+j], ":")
		b.WriteString(route[:i] + "{" + name + "}")
		route = route[i+j+1:]
	}
	return b.String()
}

// methodLabel keeps the label's values few: the standard methods, or
// "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// statusClass is "2xx", "4xx", ... ("other" out of range).
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return fmt.Sprintf("%dxx", code/100)
}

// Handler serves the metrics in the Prometheus text format, each family
// with its HELP and TYPE.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.limit.Allow() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many scrapes\n", http.StatusTooManyRequests)
			return
		}
		var b bytes.Buffer
		m.set.WritePrometheus(&b)
		metrics.WriteProcessMetrics(&b)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(withHelp(b.Bytes())) // the scrape's own response; its failure is the scraper's
	})
}

// withHelp fills in the text of the HELP lines VictoriaMetrics/metrics
// writes empty ("# HELP name"), from help; a family help lacks keeps its
// empty HELP line (TestMetricsExposition requires one for ours).
func withHelp(text []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(text) + 4096)
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i+1], text[i+1:]
		} else {
			text = nil
		}
		if name, ok := bytes.CutPrefix(bytes.TrimRight(line, "\n"), []byte("# HELP ")); ok && bytes.IndexByte(name, ' ') < 0 {
			if h, ok := help[string(name)]; ok {
				out.WriteString("# HELP " + string(name) + " " + h + "\n")
				continue
			}
		}
		out.Write(line)
	}
	return out.Bytes()
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
	for i, s := range []linkbridge.OutboxState{linkbridge.OutboxPending, linkbridge.OutboxInflight, linkbridge.OutboxDelivered,
		linkbridge.OutboxDead, linkbridge.OutboxDiscarded, linkbridge.OutboxSuperseded} {
		name := fmt.Sprintf(`linkbridge_outbox_messages{state=%q}`, s)
		if i == 0 {
			metrics.WriteMetadataIfNeeded(w, name, "gauge")
		}
		_, _ = fmt.Fprintf(w, "%s %d\n", name, st.Counts[s])
	}
	age := 0.0
	if !st.OldestPending.IsZero() {
		age = time.Since(st.OldestPending).Seconds()
	}
	metrics.WriteGaugeFloat64(w, "linkbridge_outbox_oldest_pending_age_seconds", age) // writes its own HELP and TYPE
}

// buildInfoName is linkbridge_build_info with the binary's version,
// VCS revision and Go version as labels (value 1), the usual way to put
// a version on a dashboard.
func buildInfoName() string {
	version, revision, goVersion := "(devel)", "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return fmt.Sprintf(`linkbridge_build_info{version=%q,revision=%q,goversion=%q}`, version, revision, goVersion)
}
