package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestSelfReferralIsTheServices: a self-referral (the Patient is the
// requester) has no referring organisation: the service it is addressed to
// receives it (its intake client; a GP system's client is refused, 403 at
// ServiceRequest.requester), reads it, and no GP or MDT viewer sees it.
func TestSelfReferralIsTheServices(t *testing.T) {
	ss := newSecServer(t, nil)
	var doc map[string]any
	if err := json.Unmarshal(withIdentifier(t, mustRead(t, fixReferralTxn), "SELF-1"), &doc); err != nil {
		t.Fatal(err)
	}
	var patientURL string
	for _, e := range doc["entry"].([]any) {
		en := e.(map[string]any)
		res := en["resource"].(map[string]any)
		switch res["resourceType"] {
		case "Patient":
			patientURL = en["fullUrl"].(string)
		}
	}
	for _, e := range doc["entry"].([]any) {
		res := e.(map[string]any)["resource"].(map[string]any)
		switch res["resourceType"] {
		case "ServiceRequest":
			res["requester"] = map[string]any{"reference": patientURL}
		case "Task":
			res["requester"] = map[string]any{"reference": patientURL}
		}
	}
	body := mustJSON(t, doc)
	if st, _, b := ss.call("gp-own", http.MethodPost, "/fhir", body, nil); st != http.StatusForbidden || !containsExpr(b, "ServiceRequest.requester") {
		t.Fatalf("a self-referral sent by a GP system: %d %s; want 403 at ServiceRequest.requester", st, b)
	}
	if st, _, b := ss.call("sp-other", http.MethodPost, "/fhir", body, nil); st != http.StatusForbidden {
		t.Fatalf("a self-referral sent by another service: %d %s; want 403", st, b)
	}
	st, _, b := ss.call("sp-intake", http.MethodPost, "/fhir", body, nil)
	if st != http.StatusOK {
		t.Fatalf("a self-referral received by its service: %d %s", st, b)
	}
	var sr string
	for _, e := range bundleOf(t, b) {
		if typ, id, _ := parseLocation(t, e); typ == "ServiceRequest" {
			sr = id
		}
	}
	for client, want := range map[string]int{"sp-own": 200, "gp-own": 404, "mdt-own": 404, "sp-other": 404} {
		if st, _, _ := ss.call(client, http.MethodGet, "/fhir/ServiceRequest/"+sr, nil, nil); st != want {
			t.Errorf("%s reads the self-referral: %d, want %d", client, st, want)
		}
	}
	st, _, cb := ss.call("sp-own", http.MethodGet, "/sp/v1/referrals/"+sr, nil, nil)
	var cv struct {
		Referral struct {
			ReferrerODS string `json:"referrerOds"`
			Source      string `json:"source"`
		} `json:"referral"`
	}
	if st != 200 || json.Unmarshal(cb, &cv) != nil || cv.Referral.Source != "self-referral" || cv.Referral.ReferrerODS != "" {
		t.Errorf("case record: %d source %q referrer %q; want self-referral with no referrer", st, cv.Referral.Source, cv.Referral.ReferrerODS)
	}
}

func containsExpr(b []byte, expr string) bool {
	var oo struct {
		Issue []struct {
			Expression []string `json:"expression"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) != nil {
		return false
	}
	for _, is := range oo.Issue {
		for _, e := range is.Expression {
			if e == expr {
				return true
			}
		}
	}
	return false
}
