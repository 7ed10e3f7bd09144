package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// breakableAudit is the real audit trail, made to fail on demand (a full
// disk, a lost database).
type breakableAudit struct {
	linkbridge.AuditStore
	broken atomic.Bool
}

func (b *breakableAudit) RecordAudit(ctx context.Context, rec *linkbridge.AuditRecord) error {
	if b.broken.Load() {
		return errors.New("audit trail unavailable")
	}
	return b.AuditStore.RecordAudit(ctx, rec)
}

// TestNoDisclosureWithoutAudit: an answer that discloses data is sent only
// once its audit record is stored. With the audit trail failing, reads of
// a Patient, a search and a case record answer 503 (an OperationOutcome,
// or the /sp/v1 JSON error) without the data; a refusal is still answered
// as it was.
func TestNoDisclosureWithoutAudit(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, store func(t *testing.T) func(*httpapi.Server)) {
		var audit *breakableAudit
		ss := newSecServer(t, nil, store(t), func(s *httpapi.Server) {
			audit = &breakableAudit{AuditStore: s.Audit}
			s.Audit = audit
		})
		status, _, body := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), nil)
		if status != http.StatusOK {
			t.Fatalf("intake: %d %s", status, body)
		}
		var patient, referral string
		for _, loc := range bundleOf(t, body) { // Type/id/_history/1
			parts := strings.Split(loc, "/")
			switch parts[0] {
			case "Patient":
				patient = "/fhir/Patient/" + parts[1]
			case "ServiceRequest":
				referral = parts[1]
			}
		}
		reads := []string{patient, "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", "/sp/v1/referrals/" + referral}
		client := map[string]string{reads[0]: "gp-own", reads[1]: "gp-own", reads[2]: "sp-own"}
		for _, path := range reads {
			if status, _, body := ss.call(client[path], http.MethodGet, path, nil, nil); status != http.StatusOK {
				t.Fatalf("GET %s with the audit trail working: %d %s", path, status, body)
			}
		}

		audit.broken.Store(true)
		for _, path := range reads {
			status, _, body := ss.call(client[path], http.MethodGet, path, nil, nil)
			if status != http.StatusServiceUnavailable {
				t.Errorf("GET %s with the audit trail failing: %d, want 503", path, status)
			}
			if strings.Contains(string(body), "XXTESTPATIENT") || strings.Contains(string(body), "9434765919") {
				t.Errorf("GET %s disclosed the person without an audit record: %s", path, body)
			}
			if strings.HasPrefix(path, "/fhir") && !strings.Contains(string(body), "REC_SERVICE_UNAVAILABLE") {
				t.Errorf("GET %s: %s, want an OperationOutcome with REC_SERVICE_UNAVAILABLE", path, body)
			}
		}
		if status, _, _ := ss.call("gp-other", http.MethodGet, patient, nil, nil); status != http.StatusNotFound {
			t.Errorf("a refused read with the audit trail failing: %d, want its 404", status)
		}
	})
}

// TestUnmatchedRoutes: a request no route matches is answered in the
// format of the API it was meant for (OperationOutcome under /fhir, the
// JSON error under /sp/v1), after authentication and rate limiting, and
// is audited under the route "(no route)" — never its path, which is the
// caller's choice.
func TestUnmatchedRoutes(t *testing.T) {
	t.Parallel()
	ss := newSecServer(t, nil, func(s *httpapi.Server) { s.RateLimit, s.RateBurst = 0.1, 4 })
	const nhs = "9434765919"
	tests := []struct {
		client, method, path string
		status               int
		fhir                 bool
	}{
		{"gp-own", http.MethodGet, "/fhir/Patient/" + nhs + "/nonsense", http.StatusNotFound, true},
		{"gp-own", http.MethodDelete, "/fhir/Task/abc", http.StatusMethodNotAllowed, true},
		{"sp-own", http.MethodGet, "/sp/v1/nothing/" + nhs, http.StatusNotFound, false},
		{"", http.MethodGet, "/fhir/nothing/here", http.StatusUnauthorized, true},
	}
	for i, tt := range tests {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", 700+i)
		status, h, body := ss.call(tt.client, tt.method, tt.path, nil, hdr{"X-Request-Id": id})
		if status != tt.status {
			t.Errorf("%s %s: %d, want %d: %s", tt.method, tt.path, status, tt.status, body)
		}
		if ct := h.Get("Content-Type"); tt.fhir != strings.HasPrefix(ct, "application/fhir+json") {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, ct)
		}
		all, _, err := ss.Store.SearchAudit(context.Background(), linkbridge.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rec := range all {
			if rec.RequestID == id {
				found = true
				if rec.Route != "(no route)" || rec.Status != tt.status {
					t.Errorf("%s %s: audit record route %q status %d", tt.method, tt.path, rec.Route, rec.Status)
				}
			}
		}
		if !found {
			t.Errorf("%s %s: not audited", tt.method, tt.path)
		}
	}
	// Unmatched requests spend the client's rate limit like any other.
	codes := map[int]int{}
	for range 6 {
		status, _, _ := ss.call("gp-other", http.MethodGet, "/fhir/nothing", nil, nil)
		codes[status]++
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("six unmatched requests of one client answered %v, want 429 past the burst", codes)
	}
}
