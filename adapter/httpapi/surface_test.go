package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// TestUpdateSurface: a PUT Task may change only what its sender's side
// may (docs/referral-exchange.md#update-surface); any other element that
// differs from the stored Task is refused with 403 naming it, and nothing
// is stored. The same for a ServiceRequest update beyond its status.
func TestUpdateSurface(t *testing.T) {
	t.Parallel()
	forBackends(t, func(t *testing.T, store func(t *testing.T) func(*httpapi.Server)) {
		org := func(ods string) jsonDoc {
			return jsonDoc{"type": "Organization", "identifier": jsonDoc{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}}
		}
		tests := []struct {
			name    string
			actor   string
			status  string // the Task status sent
			edit    func(d jsonDoc)
			want    int
			element string
		}{
			{"PerformerRewritesRequester", "performer", "accepted", func(d jsonDoc) { d["requester"] = org("B82002") }, http.StatusForbidden, "Task.requester"},
			{"PerformerOwnerOtherService", "performer", "accepted", func(d jsonDoc) { d["owner"] = org("Y09999") }, http.StatusForbidden, "Task.owner"},
			{"PerformerRewritesCode", "performer", "accepted", func(d jsonDoc) { d["code"] = jsonDoc{"text": "something else"} }, http.StatusForbidden, "Task.code"},
			{"PerformerRewritesAuthoredOn", "performer", "accepted", func(d jsonDoc) { d["authoredOn"] = "2020-01-01T00:00:00Z" }, http.StatusForbidden, "Task.authoredOn"},
			{"PerformerRewritesDescription", "performer", "accepted", func(d jsonDoc) { d["description"] = "changed" }, http.StatusForbidden, "Task.description"},
			{"PerformerRewritesIdentifier", "performer", "accepted", func(d jsonDoc) { d["identifier"] = []any{jsonDoc{"system": "urn:x", "value": "y"}} }, http.StatusForbidden, "Task.identifier"},
			{"PerformerRewritesPriority", "performer", "accepted", func(d jsonDoc) { d["priority"] = "stat" }, http.StatusForbidden, "Task.priority"},
			{"RequesterSetsOwner", "requester", "cancelled", func(d jsonDoc) { d["owner"] = org("Y09999") }, http.StatusForbidden, "Task.owner"},
			{"RequesterSetsBusinessStatus", "requester", "cancelled", func(d jsonDoc) { d["businessStatus"] = jsonDoc{"text": "done"} }, http.StatusForbidden, "Task.businessStatus"},
			{"RequesterSetsOutput", "requester", "cancelled", func(d jsonDoc) {
				d["output"] = []any{jsonDoc{"type": jsonDoc{"text": "x"}, "valueString": "y"}}
			}, http.StatusForbidden, "Task.output"},
			// Allowed.
			{"PerformerOwnerOwnService", "performer", "accepted", func(d jsonDoc) { d["owner"] = org("Y02662") }, http.StatusOK, ""},
			{"PerformerOwnerLinkWorker", "performer", "accepted", func(d jsonDoc) {
				d["owner"] = jsonDoc{"type": "Practitioner", "identifier": jsonDoc{"system": "https://linkbridge.example.org/Id/link-worker", "value": "lw-1"}}
			}, http.StatusOK, ""},
			{"PerformerOwnerLinkWorkerBySDSUserID", "performer", "accepted", func(d jsonDoc) {
				d["owner"] = jsonDoc{"type": "Practitioner", "identifier": jsonDoc{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "555050304199"}}
			}, http.StatusOK, ""},
			{"PerformerOwnerOtherLinkWorkerSystem", "performer", "accepted", func(d jsonDoc) {
				d["owner"] = jsonDoc{"type": "Practitioner", "identifier": jsonDoc{"system": "https://other.example/Id/link-worker", "value": "lw-1"}}
			}, http.StatusForbidden, "Task.owner"},
			{"PerformerNoteAndBusinessStatus", "performer", "accepted", func(d jsonDoc) {
				d["note"] = []any{jsonDoc{"text": "Called the person"}}
				d["businessStatus"] = jsonDoc{"text": "accepted-awaiting-first-contact"}
			}, http.StatusOK, ""},
			{"RequesterCancelsWithNote", "requester", "cancelled", func(d jsonDoc) { d["note"] = []any{jsonDoc{"text": "Moved away"}} }, http.StatusOK, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ts := newTestServer(t, store(t))
				task, id := seedTask(t, ts)
				d := mustParseJSON(t, withStatus(t, task, tc.status, ""))
				tc.edit(d)
				r := ts.do(http.MethodPut, "/Task/"+id, mustJSON(t, d), hdr{actorHeader: tc.actor})
				if tc.want != http.StatusOK {
					wantOutcome(t, r, tc.want, "forbidden", tc.element)
					if v := ts.get("/Task/" + id).Header.Get("ETag"); v != `W/"1"` {
						t.Errorf("after the refusal the Task is at %s, want W/\"1\"", v)
					}
					return
				}
				wantStatus(t, r, http.StatusOK)
			})
		}
		t.Run("ServiceRequestBeyondStatus", func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, store(t))
			c := ts.intake(t, mustRead(t, fixReferralTxn))
			sr := ts.fhirDoc("/ServiceRequest/" + c.ID)
			sr["status"] = "revoked"
			priority, had := sr["priority"]
			sr["priority"] = "stat"
			wantOutcome(t, ts.do(http.MethodPut, "/ServiceRequest/"+c.ID, mustJSON(t, sr), nil), http.StatusForbidden, "forbidden", "ServiceRequest.priority")
			delete(sr, "priority")
			if had {
				sr["priority"] = priority
			}
			wantStatus(t, ts.do(http.MethodPut, "/ServiceRequest/"+c.ID, mustJSON(t, sr), nil), http.StatusOK)
		})
	})
}
