package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// bigTransaction is the base referral transaction with n Observations about
// the Patient added.
func bigTransaction(t *testing.T, n int) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(mustRead(t, fixReferralTxn), &b); err != nil {
		t.Fatal(err)
	}
	entries := b["entry"].([]any)
	patient := entries[0].(map[string]any)["fullUrl"].(string)
	for i := range n {
		entries = append(entries, map[string]any{
			"fullUrl": fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i),
			"resource": map[string]any{"resourceType": "Observation", "status": "final",
				"code": map[string]any{"text": fmt.Sprintf("supporting note %d", i)}, "subject": map[string]any{"reference": patient}},
			"request": map[string]any{"method": "POST", "url": "Observation"},
		})
	}
	b["entry"] = entries
	return mustJSON(t, b)
}

// TestReferralBundleBounds: a referral Bundle over --max-bundle-entries is
// refused with 413 and an OperationOutcome at Bundle.entry, quickly (it is
// counted before it is decoded), and stores nothing; one at the cap is
// taken whole.
func TestReferralBundleBounds(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *httpapi.Server) { s.MaxBundleEntries = 20 })
	huge := bigTransaction(t, 5000) // ~0.7 MB; the default body limit is 4 MiB
	start := time.Now()
	wantOutcome(t, ts.post("", huge, nil), http.StatusRequestEntityTooLarge, "too-long", "Bundle.entry")
	// Not a speed figure (bench/ measures intake): a bound loose enough
	// for a loaded 2-core CI machine under -race that still tells counting
	// from decoding: jsonformat takes ~0.25 ms an entry uninstrumented, so
	// decoding these 5,000 entries would take over a second even without
	// -race, and several times that with it.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing a 5,000-entry Bundle took %s: was it decoded before it was counted?", d)
	}
	wantOutcome(t, ts.post("", bigTransaction(t, 18), nil), http.StatusRequestEntityTooLarge, "too-long", "Bundle.entry")
	if c := ts.counts(); c != (counts{}) {
		t.Errorf("after refusals the store holds %+v, want nothing", c)
	}
	wantStatus(t, ts.post("", bigTransaction(t, 17), nil), http.StatusOK) // 3 + 17 = 20 entries
	if n := ts.total("Observation", nil); n != 17 {
		t.Errorf("Observations stored = %d, want 17", n)
	}
}

// TestLargePlanRefused: a plan over the bounds is refused with 422 naming
// the element, the referral keeps its version, and its next change costs
// what it always did.
func TestLargePlanRefused(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &linkbridge.LinkWorker{ID: "lw-1"}})
	goals := make([]map[string]any, 5_000) // 100 times the bound, ~0.4 MB
	for i := range goals {
		goals[i] = map[string]any{"description": "goal", "importance": 5, "confidence": 5, "status": "active"}
	}
	start := time.Now()
	r := ts.sp(http.MethodPut, "/referrals/"+c.ID+"/plan", map[string]any{"goals": goals}, c.ifMatch())
	// Within a second on an idle machine; the bound here leaves room for
	// the race detector on a loaded one.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("refusing a 5,000-goal plan took %s", d)
	}
	wantSP(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(string(r.Body), `"goals"`) {
		t.Errorf("error %s does not name goals", r.Body)
	}
	cv := c.get()
	if cv.Referral.Version != c.Version || len(cv.Plan.Goals) != 0 {
		t.Errorf("after the refusal: version %d (want %d), %d goals", cv.Referral.Version, c.Version, len(cv.Plan.Goals))
	}
	note := strings.Repeat("x", linkbridge.MaxTextLength+1)
	r = ts.sp(http.MethodPost, "/referrals/"+c.ID+"/contacts", map[string]any{"at": "2027-01-02T10:00:00Z", "mode": "phone", "minutes": 5, "attended": true, "notes": note}, c.ifMatch())
	wantSP(t, r, http.StatusUnprocessableEntity)
}

// TestNHSNumberNotIssued: an NHS number that passes Modulus 11 in a range
// where none is issued (000 000 0000) is refused with 422 at the Patient's
// identifier, unless the server accepts every range.
func TestNHSNumberNotIssued(t *testing.T) {
	t.Parallel()
	d := mustParseJSON(t, mustRead(t, fixReferralTxn))
	for _, e := range d["entry"].([]any) {
		if r := e.(jsonDoc)["resource"].(jsonDoc); r["resourceType"] == "Patient" {
			r["identifier"].([]any)[0].(jsonDoc)["value"] = "0000000000"
		}
	}
	body := mustJSON(t, d)
	ts := newTestServer(t)
	wantOutcome(t, ts.post("", body, nil), http.StatusUnprocessableEntity, "processing", "Patient.identifier")
	if c := ts.counts(); c != (counts{}) {
		t.Errorf("stored %+v after the refusal", c)
	}
	wantStatus(t, newTestServer(t, func(s *httpapi.Server) { s.AnyNHSNumberRange = true }).post("", body, nil), http.StatusOK)
}
