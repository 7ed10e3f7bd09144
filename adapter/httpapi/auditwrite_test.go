package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// recordCounter is a store that counts the audit records stored on their
// own (RecordAudit), not with a write.
type recordCounter struct {
	*sqlite.DB
	separate atomic.Int64
}

func (c *recordCounter) RecordAudit(ctx context.Context, rec *linkbridge.AuditRecord) error {
	c.separate.Add(1)
	return c.DB.RecordAudit(ctx, rec)
}

// TestAuditWrites checks that a write's audit record commits with the
// write, and that every request still has exactly one record: a write's
// committed with it, a refused write's after the handler.
func TestAuditWrites(t *testing.T) {
	var counter *recordCounter
	ss := newSecServer(t, nil, func(s *httpapi.Server) {
		counter = &recordCounter{DB: s.Store.(*sqlite.DB)}
		s.Store, s.Cases, s.Audit = counter, counter, counter
	})
	ctx := context.Background()
	var separate int64
	reqID := func(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }
	// one returns the only audit record of request n, which must have
	// answered status and touched every entity of want, and been stored
	// with the request's write (withWrite) or on its own. The server sends
	// the last of a response after its after-handler audit, so a second
	// record would be stored by now.
	one := func(t *testing.T, n int, withWrite bool, status int, want ...string) *linkbridge.AuditRecord {
		t.Helper()
		now := counter.separate.Load()
		if got, want := now-separate, map[bool]int64{true: 0, false: 1}[withWrite]; got != want {
			t.Errorf("request %d stored %d audit records on their own, want %d", n, got, want)
		}
		separate = now
		all, _, err := ss.Store.SearchAudit(ctx, linkbridge.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var recs []*linkbridge.AuditRecord
		for _, r := range all {
			if r.RequestID == reqID(n) {
				recs = append(recs, r)
			}
		}
		if len(recs) != 1 {
			for _, r := range recs {
				t.Logf("record: %+v", r)
			}
			t.Fatalf("request %d has %d audit records, want 1", n, len(recs))
		}
		r := recs[0]
		if r.Status != status || r.Outcome != linkbridge.AuditOutcome(status) {
			t.Errorf("request %d recorded status %d outcome %d, want %d outcome %d", n, r.Status, r.Outcome, status, linkbridge.AuditOutcome(status))
		}
		for _, e := range want {
			if !slices.Contains(r.Entities, e) {
				t.Errorf("request %d recorded entities %v, want %s among them", n, r.Entities, e)
			}
		}
		return r
	}

	st, _, b := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), hdr{"X-Request-Id": reqID(1)})
	if st != http.StatusOK {
		t.Fatalf("intake: %d %s", st, b)
	}
	var sr, task, pat string
	for _, e := range bundleOf(t, b) {
		switch typ, id, _ := parseLocation(t, e); typ {
		case "ServiceRequest":
			sr = id
		case "Task":
			task = id
		case "Patient":
			pat = id
		}
	}
	sp := "/sp/v1/referrals/" + sr
	t.Run("Intake", func(t *testing.T) {
		r := one(t, 1, true, http.StatusOK, "ServiceRequest/"+sr, "Task/"+task, "Patient/"+pat)
		if r.ClientID != "gp-own" || r.ODS != "A81001" || r.Operation != "create" || r.Route != "/fhir" || r.Method != http.MethodPost {
			t.Errorf("intake record = %+v", r)
		}
	})
	t.Run("ReplayedIntake", func(t *testing.T) {
		// The store refuses the second copy (EDUPLICATE): its record rolls
		// back with it, and the answer (the stored referral) is recorded
		// after the handler.
		st, _, b := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), hdr{"X-Request-Id": reqID(2)})
		if st != http.StatusOK {
			t.Fatalf("replayed intake: %d %s", st, b)
		}
		one(t, 2, false, http.StatusOK, "ServiceRequest/"+sr, "Task/"+task)
	})
	t.Run("SPChange", func(t *testing.T) {
		accept := linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1"}}
		st, _, b := ss.call("sp-own", http.MethodPost, sp+"/actions", mustJSON(t, accept),
			hdr{"If-Match": `W/"1"`, "X-Request-Id": reqID(3)})
		if st != http.StatusOK {
			t.Fatalf("accept: %d %s", st, b)
		}
		r := one(t, 3, true, http.StatusOK, "ServiceRequest/"+sr, "Task/"+task)
		if r.ClientID != "sp-own" || r.Operation != "sp-change" || r.Route != "/sp/v1/referrals/{id}/actions" {
			t.Errorf("accept record = %+v", r)
		}
		st, _, b = ss.call("sp-own", http.MethodPost, sp+"/contacts", mustJSON(t, contactIn(linkbridge.Contact{At: ss.Clock.Now(), Mode: linkbridge.ContactPhone, Minutes: 20, Attended: true})),
			hdr{"If-Match": `W/"2"`, "X-Request-Id": reqID(4)})
		if st != http.StatusCreated {
			t.Fatalf("add contact: %d %s", st, b)
		}
		one(t, 4, true, http.StatusCreated, "ServiceRequest/"+sr)
	})
	t.Run("RefusedWrites", func(t *testing.T) {
		taskBody := mustJSON(t, map[string]any{"resourceType": "Task", "id": task, "status": "cancelled", "intent": "order",
			"focus": map[string]any{"reference": "ServiceRequest/" + sr}, "for": map[string]any{"reference": "Patient/" + pat}})
		if st, _, b := ss.call("gp-own", http.MethodPut, "/fhir/Task/"+task, taskBody, hdr{"If-Match": `W/"1"`, "X-Request-Id": reqID(5)}); st != http.StatusPreconditionFailed {
			t.Fatalf("stale Task update: %d %s", st, b)
		}
		one(t, 5, false, http.StatusPreconditionFailed, "Task/"+task)
		if st, _, b := ss.call("sp-own", http.MethodPost, sp+"/actions", []byte(`{"action":"accept"}`), hdr{"If-Match": `W/"1"`, "X-Request-Id": reqID(6)}); st != http.StatusPreconditionFailed {
			t.Fatalf("stale accept: %d %s", st, b)
		}
		one(t, 6, false, http.StatusPreconditionFailed, "ServiceRequest/"+sr)
	})
}
