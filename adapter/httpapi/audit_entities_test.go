package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAuditRecordsEveryReturnedResource: the audit record of a search
// names every resource the answer disclosed, the _include'd ones too, on
// the largest page a search answers.
func TestAuditRecordsEveryReturnedResource(t *testing.T) {
	ss := newSecServer(t, nil)
	// 101 referrals of one person: a page of their Tasks with their
	// ServiceRequests included discloses 202 resources.
	const n = 101
	body := mustRead(t, fixReferralTxn)
	for i := range n {
		if st, _, b := ss.call("gp-own", http.MethodPost, "/fhir", withIdentifier(t, body, fmt.Sprintf("AUD-%d", i)), nil); st != http.StatusOK {
			t.Fatalf("intake %d: %d %s", i, st, b)
		}
	}
	st, _, b := ss.call("gp-own", http.MethodGet, "/fhir/Task?_count=200&_include=Task:focus", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("search: %d %s", st, b)
	}
	var page struct {
		Entry []struct {
			FullURL string `json:"fullUrl"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Entry) != 2*n {
		t.Fatalf("search answered %d entries, want %d", len(page.Entry), 2*n)
	}
	// The search's record is stored just after its answer is sent.
	var rec *auditEventJSON
	for deadline := time.Now().Add(5 * time.Second); rec == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, _, b = ss.call("admin", http.MethodGet, "/fhir/AuditEvent?agent=gp-own&_count=200", nil, nil)
		var audit struct {
			Entry []struct {
				Resource auditEventJSON `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &audit); err != nil {
			t.Fatalf("audit search: %v %s", err, b)
		}
		for _, e := range audit.Entry {
			if strings.Contains(e.Resource.OutcomeDesc, "GET /fhir/{type") {
				rec = &e.Resource
			}
		}
	}
	if rec == nil {
		t.Fatal("no audit record of the search")
	}
	named := 0
	for _, e := range rec.Entity {
		if e.What != nil {
			named++
		}
	}
	if named != 2*n {
		t.Errorf("the audit record of the search (%s) names %d resources, want the %d it disclosed", rec.OutcomeDesc, named, 2*n)
	}
}

// auditEventJSON is the part of an AuditEvent the test reads.
type auditEventJSON struct {
	OutcomeDesc string `json:"outcomeDesc"`
	Entity      []struct {
		What *struct {
			Reference string `json:"reference"`
		} `json:"what"`
	} `json:"entity"`
}
