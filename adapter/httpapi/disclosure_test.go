package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// otherPracticesReferral is the corpus referral as practice B82002 sends it
// to service Y09999: the same NHS number, B's own identifier and what B
// knows of the person (another family name, a phone number).
func otherPracticesReferral(t *testing.T) []byte {
	t.Helper()
	d := mustParseJSON(t, withIdentifier(t, mustRead(t, fixReferralTxn), "practice-b-referral"))
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
