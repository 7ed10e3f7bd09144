package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// TestOneOpenReferral drives the rules of docs/domain.md#one-open-referral
// through /fhir and /sp/v1, authenticated, on both backends: a second open
// referral of a person to a service is refused naming the first (to a
// sender who may read it), stored beside it when the sender says it goes
// with it (basedOn), stored beside it without a word to a sender who may
// not read it (flagged for the link worker), linked to the earlier episode
// once that one is closed (re-referral), and a closed episode can be
// reopened by its service as a new, linked episode that its referrer still
// sees and that replaces the earlier ServiceRequest.
func TestOneOpenReferral(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, store func(t *testing.T) func(*httpapi.Server)) {
		ss := newSecServer(t, nil, store(t))
		fixture := mustRead(t, fixReferralTxn)
		// send posts a referral transaction as client and returns the
		// status, the body and the ServiceRequest id (on success).
		send := func(client string, body []byte) (int, []byte, string) {
			t.Helper()
			status, _, b := ss.call(client, http.MethodPost, "/fhir", body, nil)
			if status != http.StatusOK {
				return status, b, ""
			}
			for _, loc := range bundleOf(t, b) {
				if typ, id, _ := parseLocation(t, loc); typ == "ServiceRequest" {
					return status, b, id
				}
			}
			t.Fatalf("transaction-response names no ServiceRequest: %s", b)
			return 0, nil, ""
		}
		caseOf := func(id string) *httpapi.CaseView {
			t.Helper()
			status, _, b := ss.call("sp-own", http.MethodGet, "/sp/v1/referrals/"+id, nil, nil)
			if status != http.StatusOK {
				t.Fatalf("GET case %s: %d %s", id, status, b)
			}
			var cv httpapi.CaseView
			if err := json.Unmarshal(b, &cv); err != nil {
				t.Fatal(err)
			}
			return &cv
		}
		act := func(id string, cmd linkbridge.LifecycleCommand) {
			t.Helper()
			status, _, b := ss.call("sp-own", http.MethodPost, "/sp/v1/referrals/"+id+"/actions", mustJSON(t, cmd), nil)
			if status != http.StatusOK {
				t.Fatalf("%s %s: %d %s", cmd.Action, id, status, b)
			}
		}
		lw := linkbridge.LinkWorker{ID: "lw-1", Name: "Link Worker"}

		status, b, first := send("gp-own", fixture)
		if status != http.StatusOK {
			t.Fatalf("first referral: %d %s", status, b)
		}

		// The same practice, the same person, the same service: 409 naming
		// the open referral.
		status, b, _ = send("gp-own", sameIdentifierPerson(t, fixture, "second"))
		if status != http.StatusConflict || !bytes.Contains(b, []byte("ServiceRequest/"+first)) || !bytes.Contains(b, []byte(`"ServiceRequest.subject"`)) {
			t.Fatalf("second open referral: %d %s, want 409 naming ServiceRequest/%s at ServiceRequest.subject", status, b, first)
		}

		// Said to go with the first: stored beside it.
		status, b, related := send("gp-own", following(t, sameIdentifierPerson(t, fixture, "related"), first))
		if status != http.StatusOK {
			t.Fatalf("related referral: %d %s", status, b)
		}
		if cv := caseOf(related); cv.Referral.Link != (linkbridge.ReferralLink{ReferralID: first, Kind: linkbridge.LinkRelated}) ||
			slices.Contains(cv.Flags, linkbridge.FlagConcurrentReferral) {
			t.Errorf("related referral: link %+v flags %v, want related to %s, not flagged", cv.Referral.Link, cv.Flags, first)
		}

		// Another practice, which cannot see the first: stored, not told.
		status, b, concurrent := send("gp-other", fromPractice(t, sameIdentifierPerson(t, fixture, "other-practice"), "A81001", "B82002"))
		if status != http.StatusOK {
			t.Fatalf("other practice's referral: %d %s", status, b)
		}
		if bytes.Contains(b, []byte(first)) {
			t.Errorf("other practice's answer names the first referral %s: %s", first, b)
		}
		if cv := caseOf(concurrent); cv.Referral.Link != (linkbridge.ReferralLink{ReferralID: first, Kind: linkbridge.LinkConcurrent}) ||
			!slices.Contains(cv.Flags, linkbridge.FlagConcurrentReferral) {
			t.Errorf("other practice's referral: link %+v flags %v, want concurrent with %s and flagged", cv.Referral.Link, cv.Flags, first)
		}
		if status, _, b := ss.call("gp-other", http.MethodGet, "/fhir/ServiceRequest/"+first, nil, nil); status != http.StatusNotFound {
			t.Errorf("other practice reads the first referral: %d %s", status, b)
		}

		// The first closed: a new referral follows it (re-referral).
		act(first, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw})
		act(first, linkbridge.LifecycleCommand{Action: linkbridge.ActionComplete, ReasonCode: "goals-met"})
		status, b, again := send("gp-own", sameIdentifierPerson(t, fixture, "re-referral"))
		if status != http.StatusOK {
			t.Fatalf("re-referral: %d %s", status, b)
		}
		if cv := caseOf(again); cv.Referral.Link != (linkbridge.ReferralLink{ReferralID: first, Kind: linkbridge.LinkReReferral}) {
			t.Errorf("re-referral link = %+v, want re-referral of %s", cv.Referral.Link, first)
		}

		// Reopening the first is refused while the re-referral is open,
		// naming it; declined as a duplicate, the first can be reopened.
		reopen := func(id string, body any) (int, []byte) {
			t.Helper()
			status, _, b := ss.call("sp-own", http.MethodPost, "/sp/v1/referrals/"+id+"/reopen", mustJSON(t, body), nil)
			return status, b
		}
		if status, b := reopen(first, httpapi.ReopenRequest{}); status != http.StatusConflict || !bytes.Contains(b, []byte("ServiceRequest/"+again)) {
			t.Fatalf("reopen beside an open referral: %d %s, want 409 naming ServiceRequest/%s", status, b, again)
		}
		if status, b := reopen(related, httpapi.ReopenRequest{}); status != http.StatusConflict {
			t.Errorf("reopen an open referral: %d %s, want 409", status, b)
		}
		act(again, linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "duplicate-referral"})
		if status, b := reopen(first, httpapi.ReopenRequest{At: new(time.Now().Add(time.Hour))}); status != http.StatusUnprocessableEntity {
			t.Errorf("reopen in the future: %d %s, want 422", status, b)
		}
		status, b = reopen(first, httpapi.ReopenRequest{})
		if status != http.StatusCreated {
			t.Fatalf("reopen: %d %s", status, b)
		}
		var cv httpapi.CaseView
		if err := json.Unmarshal(b, &cv); err != nil {
			t.Fatal(err)
		}
		rf := cv.Referral
		if rf.Link != (linkbridge.ReferralLink{ReferralID: first, Kind: linkbridge.LinkReopened}) || rf.Status != linkbridge.TaskAccepted ||
			rf.LinkWorker.ID != lw.ID || rf.ReferrerODS != "A81001" || rf.ServiceODS != "Y02662" {
			t.Errorf("reopened = %+v, want accepted by %s, linked as reopened to %s, A81001's referral to Y02662", rf, lw.ID, first)
		}
		// Its ServiceRequest replaces the first; the referrer sees it, the
		// other practice does not.
		status, _, b = ss.call("sp-own", http.MethodGet, "/fhir/ServiceRequest/"+rf.ID, nil, nil)
		if status != http.StatusOK || !bytes.Contains(b, []byte(`"replaces":[{"reference":"ServiceRequest/`+first+`"}]`)) {
			t.Errorf("reopened ServiceRequest: %d %s, want one replacing ServiceRequest/%s", status, b, first)
		}
		if status, _, b := ss.call("gp-own", http.MethodGet, "/fhir/Task/"+rf.TaskID, nil, nil); status != http.StatusOK {
			t.Errorf("referrer reads the reopened Task: %d %s", status, b)
		}
		if status, _, _ := ss.call("gp-other", http.MethodGet, "/fhir/Task/"+rf.TaskID, nil, nil); status != http.StatusNotFound {
			t.Errorf("other practice reads the reopened Task: %d, want 404", status)
		}
		// Another service cannot reopen it.
		status, _, b = ss.call("sp-other", http.MethodPost, "/sp/v1/referrals/"+first+"/reopen", mustJSON(t, httpapi.ReopenRequest{}), nil)
		if status != http.StatusNotFound && status != http.StatusForbidden {
			t.Errorf("another service reopens: %d %s, want 404 or 403", status, b)
		}
	})
}
