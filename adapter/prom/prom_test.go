package prom

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape returns one /metrics answer.
func scrape(t *testing.T, m *Metrics) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics = %d", rec.Code)
	}
	return rec.Body.Bytes()
}

// CheckExposition parses a /metrics answer with the Prometheus text
// parser and checks the conventions: every family has a HELP text and a
// TYPE; linkbridge's counters end in _total, its histograms have le
// buckets ending at +Inf and a unit suffix. It returns the families.
func CheckExposition(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses /metrics: %v\n%s", err, text)
	}
	typed := map[string]bool{}
	for _, l := range regexp.MustCompile(`(?m)^# TYPE (\S+) (counter|gauge|histogram|summary)$`).FindAllSubmatch(text, -1) {
		typed[string(l[1])] = true
	}
	name := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	for n, f := range fams {
		if !name.MatchString(n) {
			t.Errorf("%s: not a valid metric name", n)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP text", n)
		}
		if !typed[n] {
			t.Errorf("%s: no TYPE line", n)
		}
		if !strings.HasPrefix(n, "linkbridge_") {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(n, "_total") {
				t.Errorf("%s: a counter whose name does not end in _total", n)
			}
		case dto.MetricType_HISTOGRAM:
			if !strings.HasSuffix(n, "_seconds") && !strings.HasSuffix(n, "_bytes") {
				t.Errorf("%s: a histogram without a unit suffix", n)
			}
			for _, m := range f.GetMetric() {
				b := m.GetHistogram().GetBucket()
				if len(b) < 2 {
					t.Errorf("%s: %d le buckets", n, len(b))
				}
				if m.GetHistogram().GetSampleCount() == 0 && len(b) == 0 {
					t.Errorf("%s: empty histogram", n)
				}
			}
		case dto.MetricType_UNTYPED:
			t.Errorf("%s: untyped", n)
		}
	}
	return fams
}

// TestMetricsExposition records one of everything and checks the scrape
// with the Prometheus text parser.
func TestMetricsExposition(t *testing.T) {
	m := New(nil, nil)
	m.Delivered("Task", 1500*time.Millisecond)
	m.Delivered("Encounter", 20*time.Second)
	m.Retried("Task")
	m.DeadLettered("Task")
	m.Cleaned(2)
	m.Request("/fhir/{type:[A-Z][A-Za-z]+}/{id}", http.MethodGet, 200, 3*time.Millisecond)
	m.Request("/fhir", http.MethodPost, 422, 30*time.Millisecond)
	m.Request("unmatched", "PROPFIND", 405, time.Millisecond)
	m.Referral("rest", "created")
	m.Referral("message", "invalid")
	m.Reloaded(true)
	m.Reloaded(false)
	text := scrape(t, m)
	fams := CheckExposition(t, text)
	for _, want := range []string{
		`linkbridge_http_requests_total{route="/fhir/{type}/{id}",method="GET",status_class="2xx"} 1`,
		`linkbridge_http_requests_total{route="unmatched",method="other",status_class="4xx"} 1`,
		`linkbridge_http_request_duration_seconds_bucket{route="/fhir",method="POST",status_class="4xx",le="0.05"} 1`,
		`linkbridge_writeback_delivery_seconds_bucket{resource_type="Task",le="2.5"} 1`,
		`linkbridge_writeback_delivery_seconds_bucket{resource_type="Task",le="+Inf"} 1`,
		`linkbridge_intake_referrals_total{via="message",outcome="invalid"} 1`,
		`linkbridge_config_reloads_total{result="failure"} 1`,
	} {
		if !bytes.Contains(text, []byte(want+"\n")) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if bytes.Contains(text, []byte("vmrange")) {
		t.Error("a VictoriaMetrics vmrange histogram: Prometheus' histogram_quantile cannot read it")
	}
	for _, n := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes", "linkbridge_build_info"} {
		if fams[n] == nil {
			t.Errorf("no %s", n)
		}
	}
	for n := range help {
		if strings.HasPrefix(n, "linkbridge_") && fams[n] == nil && !strings.HasPrefix(n, "linkbridge_outbox_") {
			t.Errorf("help names %s, which the scrape lacks", n)
		}
	}
}

func TestRouteLabel(t *testing.T) {
	for in, want := range map[string]string{
		"/fhir/{type:[A-Z][A-Za-z]+}/{id}/_history/{vid}": "/fhir/{type}/{id}/_history/{vid}",
		"/sp/v1/referrals/{id}":                           "/sp/v1/referrals/{id}",
		"/fhir":                                           "/fhir",
		"/odd/{x":                                         "/odd/{x",
	} {
		if got := routeLabel(in); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
