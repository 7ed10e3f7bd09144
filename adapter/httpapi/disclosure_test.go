package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// otherPracticesReferral is the corpus referral as practice B82002 sends it
// to service Y09999: the same NHS number, B's own identifier and what B
// knows of the person (another family name, a phone number).
func otherPracticesReferral(t *testing.T) []byte {
	t.Helper()
	d := mustParseJSON(t, sameIdentifierPerson(t, mustRead(t, fixReferralTxn), "practice-b-referral"))
	for _, e := range d["entry"].([]any) {
		r := e.(jsonDoc)["resource"].(jsonDoc)
		switch r["resourceType"] {
		case "Patient":
			r["name"] = []any{jsonDoc{"family": "XXPRACTICEB", "given": []any{"Sam"}}}
			r["telecom"] = []any{jsonDoc{"system": "phone", "value": "0000 000 0002"}}
		case "ServiceRequest":
			r["requester"].(jsonDoc)["identifier"].(jsonDoc)["value"] = "B82002"
			r["performer"].([]any)[0].(jsonDoc)["identifier"].(jsonDoc)["value"] = "Y09999"
		case "Task":
			r["requester"].(jsonDoc)["identifier"].(jsonDoc)["value"] = "B82002"
			r["owner"].(jsonDoc)["identifier"].(jsonDoc)["value"] = "Y09999"
		}
	}
	return mustJSON(t, d)
}

// TestNoDisclosureByNHSNumber: knowing an NHS number opens nothing. When
// practice B refers a person practice A already referred, B's answer echoes
// what B sent (201, never A's Patient); neither B nor the service B chose
// can read, search, chain to, or walk the history of A's Patient, and a
// read of A's Patient is answered as one of a Patient that does not exist.
func TestNoDisclosureByNHSNumber(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, store func(t *testing.T) func(*httpapi.Server)) {
		ss := newSecServer(t, nil, store(t))
		const nhs = "9434765919"
		status, _, body := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), nil)
		if status != http.StatusOK {
			t.Fatalf("A's referral: %d %s", status, body)
		}
		aPatient := strings.Split(bundleOf(t, body)[0], "/")[1]
		status, _, body = ss.call("gp-other", http.MethodPost, "/fhir", otherPracticesReferral(t), nil)
		if status != http.StatusOK {
			t.Fatalf("B's referral: %d %s", status, body)
		}
		if bytes.Contains(body, []byte("XXTESTPATIENT")) || !bytes.Contains(body, []byte("XXPRACTICEB")) || !bytes.Contains(body, []byte(`"201 Created"`)) {
			t.Errorf("B's transaction-response does not echo B's own Patient as created: %s", body)
		}
		bPatient := strings.Split(bundleOf(t, body)[0], "/")[1]
		if bPatient == aPatient {
			t.Fatalf("B's referral was given A's Patient %s", aPatient)
		}

		_, _, missing := ss.call("gp-other", http.MethodGet, "/fhir/Patient/no-such-patient", nil, nil)
		for _, client := range []string{"gp-other", "sp-other"} {
			for _, path := range []string{
				"/fhir/Patient/" + aPatient,
				"/fhir/Patient/" + aPatient + "/_history",
				"/fhir/Patient/" + aPatient + "/_history/1",
			} {
				status, _, body := ss.call(client, http.MethodGet, path, nil, nil)
				if status != http.StatusNotFound {
					t.Errorf("%s GET %s: %d, want 404", client, path, status)
				}
				if bytes.Contains(body, []byte("XXTESTPATIENT")) {
					t.Errorf("%s GET %s disclosed A's Patient", client, path)
				}
				// Same answer as for a Patient that does not exist, but for
				// the id.
				if got, want := strings.ReplaceAll(string(body), aPatient, "X"), strings.ReplaceAll(string(missing), "no-such-patient", "X"); path == "/fhir/Patient/"+aPatient && got != want {
					t.Errorf("%s: answer for A's Patient %s differs from one that does not exist %s", client, got, want)
				}
			}
			for _, path := range []string{
				"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs,
				"/fhir/Task?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs + "&_include=Task:patient",
				"/fhir/ServiceRequest?patient=Patient/" + aPatient,
				"/fhir/Task?_include=Task:patient&_include=Task:focus",
				// _revinclude goes through the same access scope.
				"/fhir/Patient?_revinclude=Task:patient&_revinclude=ServiceRequest:patient",
				"/fhir/Patient?_id=" + bPatient + "&_revinclude=Task:patient",
				"/fhir/Patient?_id=" + aPatient + "&_revinclude=Task:patient",
			} {
				status, _, body := ss.call(client, http.MethodGet, path, nil, nil)
				if status != http.StatusOK {
					t.Errorf("%s GET %s: %d %s", client, path, status, body)
					continue
				}
				// (A search naming A's Patient echoes that id in its links.)
				if bytes.Contains(body, []byte("XXTESTPATIENT")) || !strings.Contains(path, aPatient) && bytes.Contains(body, []byte(aPatient)) ||
					strings.Contains(path, aPatient) && total(t, body) != 0 {
					t.Errorf("%s GET %s disclosed A's Patient: %s", client, path, body)
				}
			}
		}
		// A and the service A chose still see A's Patient, and only it.
		for _, client := range []string{"gp-own", "sp-own"} {
			status, _, body := ss.call(client, http.MethodGet, "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|"+nhs, nil, nil)
			if status != http.StatusOK || !bytes.Contains(body, []byte(aPatient)) || bytes.Contains(body, []byte("XXPRACTICEB")) {
				t.Errorf("%s: its own search by NHS number: %d %s", client, status, body)
			}
		}
	})
}

// TestMessageIDsPerOrganisation: X-Request-Id is the sender's (practice
// C82010 sends the corpus message): another organisation reusing it is not
// told it was used (no 409), while the same organisation replaying it is.
func TestMessageIDsPerOrganisation(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, store func(t *testing.T) func(*httpapi.Server)) {
		ss := newSecServer(t, nil, store(t))
		h := barsHeaders(reqID1, corrID1)
		h["Content-Type"] = "application/fhir+json"
		if status, _, body := ss.call("gp-msg", http.MethodPost, "/fhir/$process-message", mustRead(t, fixMsgNew), h); status != http.StatusOK {
			t.Fatalf("C's message: %d %s", status, body)
		}
		status, _, body := ss.call("gp-own", http.MethodPost, "/fhir/$process-message", mustRead(t, fixMsgNew), h)
		if status == http.StatusConflict || bytes.Contains(body, []byte("already been processed")) {
			t.Errorf("another organisation reusing C's X-Request-Id was told it was used: %d %s", status, body)
		}
		if status, _, _ := ss.call("gp-msg", http.MethodPost, "/fhir/$process-message", mustRead(t, fixMsgNew), h); status != http.StatusConflict {
			t.Errorf("C replaying its own message: %d, want 409 duplicate", status)
		}
	})
}

// TestEnteredInErrorEndsAccess: a referral the GP marks entered-in-error
// (a referral raised in error, e.g. for the wrong person) is no longer
// disclosed to anyone: its ServiceRequest, Task, Patient and case record
// answer 404 to the GP and the service alike, and searches leave it out.
func TestEnteredInErrorEndsAccess(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, store func(t *testing.T) func(*httpapi.Server)) {
		ss := newSecServer(t, nil, store(t))
		status, _, body := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), nil)
		if status != http.StatusOK {
			t.Fatalf("referral: %d %s", status, body)
		}
		ids := map[string]string{}
		for _, loc := range bundleOf(t, body) {
			parts := strings.Split(loc, "/")
			ids[parts[0]] = parts[1]
		}
		status, _, body = ss.call("gp-own", http.MethodGet, "/fhir/ServiceRequest/"+ids["ServiceRequest"], nil, nil)
		if status != http.StatusOK {
			t.Fatalf("read: %d", status)
		}
		sr := mustParseJSON(t, body)
		sr["status"] = "entered-in-error"
		if status, _, body := ss.call("gp-own", http.MethodPut, "/fhir/ServiceRequest/"+ids["ServiceRequest"], mustJSON(t, sr), hdr{"Content-Type": "application/fhir+json"}); status != http.StatusOK {
			t.Fatalf("entered-in-error: %d %s", status, body)
		}
		for _, client := range []string{"gp-own", "sp-own"} {
			for typ, id := range ids {
				if status, _, _ := ss.call(client, http.MethodGet, "/fhir/"+typ+"/"+id, nil, nil); status != http.StatusNotFound {
					t.Errorf("%s GET %s/%s after entered-in-error: %d, want 404", client, typ, id, status)
				}
			}
			if _, _, body := ss.call(client, http.MethodGet, "/fhir/Task", nil, nil); total(t, body) != 0 {
				t.Errorf("%s Task search after entered-in-error: %s", client, body)
			}
		}
		if status, _, _ := ss.call("sp-own", http.MethodGet, "/sp/v1/referrals/"+ids["ServiceRequest"], nil, nil); status != http.StatusNotFound {
			t.Errorf("the service's case record after entered-in-error: %d, want 404", status)
		}
	})
}

// setODS changes every ODS code from in a FHIR JSON document (identifiers
// of the ODS system) to to, leaving other identifiers (such as a referral
// identifier that starts with the code) as they are.
func setODS(v any, from, to string) {
	switch v := v.(type) {
	case jsonDoc:
		if v["system"] == linkbridge.ODSSystem && v["value"] == from {
			v["value"] = to
		}
		for _, c := range v {
			setODS(c, from, to)
		}
	case []any:
		for _, c := range v {
			setODS(c, from, to)
		}
	}
}

// fromPractice returns a fixture as practice to sends it in place of
// practice from: the same referral, its identifier included.
func fromPractice(t *testing.T, body []byte, from, to string) []byte {
	t.Helper()
	d := mustParseJSON(t, body)
	setODS(d, from, to)
	return mustJSON(t, d)
}

// statusOf reads the id and status of a resource, or of the ServiceRequest
// in a Bundle.
func statusOf(t *testing.T, b []byte) (id, status string) {
	t.Helper()
	type res struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Status       string `json:"status"`
	}
	var d struct {
		res
		Entry []struct {
			Resource res `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if d.ResourceType != "Bundle" {
		return d.ID, d.Status
	}
	for _, e := range d.Entry {
		if e.Resource.ResourceType == "ServiceRequest" {
			return e.Resource.ID, e.Resource.Status
		}
	}
	t.Fatalf("no ServiceRequest in %s", b)
	return "", ""
}

// TestReferralIdentifiersPerOrganisation: a referral identifier is its
// referrer's own, unique per organisation. Practice B sending a referral
// under the identifier practice A's referral has gets 200 and a referral
// of its own, never 409 (which told B that A's referral exists) nor A's
// referral; a re-send by either is answered with its own; each practice,
// and the service each chose, finds and reads only its own; a conditional
// create on the identifier sees only the caller's.
func TestReferralIdentifiersPerOrganisation(t *testing.T) {
	t.Parallel()
	ss := newSecServer(t, nil)
	send := func(client string, body []byte) (sr string, created bool) {
		t.Helper()
		status, _, b := ss.call(client, http.MethodPost, "/fhir", body, nil)
		if status != http.StatusOK {
			t.Fatalf("%s's referral: %d %s, want 200", client, status, b)
		}
		if client != "gp-own" && bytes.Contains(b, []byte("XXTESTPATIENT")) {
			t.Errorf("%s's answer holds A's Patient: %s", client, b)
		}
		for _, loc := range bundleOf(t, b) {
			if typ, id, _ := parseLocation(t, loc); typ == "ServiceRequest" {
				sr = id
			}
		}
		return sr, bytes.Contains(b, []byte(`"201 Created"`))
	}
	aBody := mustRead(t, fixReferralTxn)
	bBody := withIdentifier(t, otherPracticesReferral(t), referralTxnID) // A's identifier
	a, created := send("gp-own", aBody)
	if !created {
		t.Fatalf("A's referral was not created")
	}
	b, created := send("gp-other", bBody)
	if !created || b == "" || b == a {
		t.Fatalf("B's referral under A's identifier: ServiceRequest %s (created %v), want a new one of B's (A's is %s)", b, created, a)
	}
	// Re-sent, each is answered with its own and nothing is created.
	for _, tc := range []struct {
		client string
		body   []byte
		want   string
	}{{"gp-own", aBody, a}, {"gp-other", bBody, b}} {
		if got, created := send(tc.client, tc.body); created || got != tc.want {
			t.Errorf("%s re-sending its referral: ServiceRequest %s (created %v), want its own %s", tc.client, got, created, tc.want)
		}
	}

	byIdentifier := "/fhir/ServiceRequest?identifier=" + url.QueryEscape(referralIDSys+"|"+referralTxnID)
	for _, tc := range []struct{ client, own, other string }{
		{"gp-own", a, b}, {"sp-own", a, b}, {"gp-other", b, a}, {"sp-other", b, a},
	} {
		status, _, body := ss.call(tc.client, http.MethodGet, byIdentifier, nil, nil)
		if status != http.StatusOK || total(t, body) != 1 || !bytes.Contains(body, []byte(tc.own)) || bytes.Contains(body, []byte(tc.other)) {
			t.Errorf("%s searching by the identifier: %d %s, want its own %s only", tc.client, status, body, tc.own)
		}
		if status, _, body := ss.call(tc.client, http.MethodGet, "/fhir/ServiceRequest/"+tc.own, nil, nil); status != http.StatusOK {
			t.Errorf("%s reading its own ServiceRequest: %d %s", tc.client, status, body)
		}
		if status, _, _ := ss.call(tc.client, http.MethodGet, "/fhir/ServiceRequest/"+tc.other, nil, nil); status != http.StatusNotFound {
			t.Errorf("%s reading the other practice's ServiceRequest: %d, want 404", tc.client, status)
		}
	}

	// Conditional create: B's referral is created beside A's, then found.
	cond := hdr{"If-None-Exist": "identifier=" + referralIDSys + "|" + srContainedID}
	create := func(client, ods string, want int) string {
		t.Helper()
		body := fromPractice(t, mustRead(t, fixSRContained), "F84003", ods)
		status, _, b := ss.call(client, http.MethodPost, "/fhir/ServiceRequest", body, cond)
		if status != want {
			t.Fatalf("%s's conditional create: %d %s, want %d", client, status, b, want)
		}
		id, _ := statusOf(t, b)
		return id
	}
	aSR := create("gp-own", "A81001", http.StatusCreated)
	bSR := create("gp-other", "B82002", http.StatusCreated)
	if bSR == aSR {
		t.Fatalf("B's conditional create was answered with A's ServiceRequest %s", aSR)
	}
	if got := create("gp-other", "B82002", http.StatusOK); got != bSR {
		t.Errorf("B's conditional create again: ServiceRequest %s, want its own %s", got, bSR)
	}
	if got := create("gp-own", "A81001", http.StatusOK); got != aSR {
		t.Errorf("A's conditional create again: ServiceRequest %s, want its own %s", got, aSR)
	}
}

// TestCancelByMessagePerOrganisation: a BaRS cancellation names the
// referral by its sender's identifier. Practice A81001 sends the message
// fixture's referral under practice C82010's identifier, then cancels it:
// A's referral is revoked, never C's, which C then cancels itself.
func TestCancelByMessagePerOrganisation(t *testing.T) {
	t.Parallel()
	ss := newSecServer(t, nil)
	send := func(client string, body []byte, reqID string) (sr, status string) {
		t.Helper()
		h := barsHeaders(reqID, corrID1)
		h["Content-Type"] = "application/fhir+json"
		st, _, b := ss.call(client, http.MethodPost, "/fhir/$process-message", body, h)
		if st != http.StatusOK {
			t.Fatalf("%s's message: %d %s", client, st, b)
		}
		return statusOf(t, b)
	}
	c, _ := send("gp-msg", mustRead(t, fixMsgNew), reqID1)
	a, _ := send("gp-own", fromPractice(t, mustRead(t, fixMsgNew), "C82010", "A81001"), reqID2)
	if a == c {
		t.Fatalf("A's referral under C's identifier was answered with C's %s", c)
	}
	if got, status := send("gp-own", fromPractice(t, mustRead(t, fixMsgCancel), "C82010", "A81001"), reqID3); got != a || status != "revoked" {
		t.Errorf("A's cancellation: ServiceRequest %s %s, want A's %s revoked", got, status, a)
	}
	st, _, b := ss.call("gp-msg", http.MethodGet, "/fhir/ServiceRequest/"+c, nil, nil)
	if _, status := statusOf(t, b); st != http.StatusOK || status != "active" {
		t.Errorf("C's ServiceRequest after A's cancellation: %d %s, want active", st, status)
	}
	// A cancellation that names another organisation as requester than the
	// one sending it is refused, as a referral would be.
	h := barsHeaders("4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4e77", corrID1)
	h["Content-Type"] = "application/fhir+json"
	if st, _, b := ss.call("gp-own", http.MethodPost, "/fhir/$process-message", mustRead(t, fixMsgCancel), h); st != http.StatusForbidden || !bytes.Contains(b, []byte("ServiceRequest.requester")) {
		t.Errorf("A sending C's cancellation: %d %s, want 403 at ServiceRequest.requester", st, b)
	}
	if got, status := send("gp-msg", mustRead(t, fixMsgCancel), reqID3); got != c || status != "revoked" {
		t.Errorf("C's cancellation: ServiceRequest %s %s, want C's %s revoked", got, status, c)
	}
}
