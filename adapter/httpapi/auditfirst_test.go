package httpapi_test

import (
	"context"
	"errors"
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
	var audit *breakableAudit
	ss := newSecServer(t, nil, func(s *httpapi.Server) {
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
}
