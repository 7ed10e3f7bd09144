package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	mhpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/message_header_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

const (
	reqID1  = "4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4e01"
	reqID2  = "4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4e02"
	reqID3  = "4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4e03"
	corrID1 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01"
)

func barsHeaders(requestID, correlationID string) hdr {
	return hdr{"X-Request-Id": requestID, "X-Correlation-Id": correlationID}
}

func TestProcessMessageRequiresTransactionHeaders(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := mustRead(t, fixMsgNew)
	for name, h := range map[string]hdr{
		"ErrNoCorrelationID": {"X-Request-Id": reqID1},
		"ErrNoRequestID":     {"X-Correlation-Id": corrID1},
		"ErrNeither":         nil,
	} {
		t.Run(name, func(t *testing.T) {
			r := ts.post("/$process-message", body, h)
			wantOutcome(t, r, http.StatusBadRequest, "invalid", "X-Correlation-Id")
			// Whatever was sent is still echoed.
			for _, k := range []string{"X-Request-Id", "X-Correlation-Id"} {
				if h[k] != "" && r.Header.Get(k) != h[k] {
					t.Errorf("%s not echoed: %q", k, r.Header.Get(k))
				}
			}
		})
	}
	if c := ts.counts(); c != (counts{}) {
		t.Errorf("refused messages stored resources: %+v", c)
	}
}

func TestProcessMessage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := mustRead(t, fixMsgNew)

	resp := ts.post("/$process-message", body, barsHeaders(reqID1, corrID1))
	b := bundle(t, resp, "message")
	if resp.Header.Get("X-Request-Id") != reqID1 || resp.Header.Get("X-Correlation-Id") != corrID1 {
		t.Errorf("headers not echoed: X-Request-Id %q, X-Correlation-Id %q", resp.Header.Get("X-Request-Id"), resp.Header.Get("X-Correlation-Id"))
	}
	mh, ok := fhirmap.Unwrap(b.GetEntry()[0].GetResource()).(*mhpb.MessageHeader)
	if !ok {
		t.Fatalf("first entry of the response is %T, want MessageHeader", fhirmap.Unwrap(b.GetEntry()[0].GetResource()))
	}
	if got := mh.GetEvent().GetCoding().GetCode().GetValue(); got != "servicerequest-response" {
		t.Errorf("response eventCoding = %q, want servicerequest-response", got)
	}
	if got := fhirmap.Code(mh.GetResponse().GetCode()); got != "ok" {
		t.Errorf("response.code = %q, want ok", got)
	}
	if got := mh.GetResponse().GetIdentifier().GetValue(); got != "7c9f3f0e-1b1a-4d8e-8f8e-6a1d0c5b2e01" {
		t.Errorf("response.identifier = %q, want the request MessageHeader id", got)
	}
	task := entryResource[*taskpb.Task](t, b)
	sr := entryResource[*srpb.ServiceRequest](t, b)
	if typ, id := fhirmap.RefTarget(mh.GetFocus()[0]); typ != "Task" || id != fhirmap.ID(task) {
		t.Errorf("response focus = %s/%s, want Task/%s", typ, id, fhirmap.ID(task))
	}
	if fhirmap.TaskStatusOf(task) != linkbridge.TaskRequested {
		t.Errorf("Task.status = %s, want requested", fhirmap.TaskStatusOf(task))
	}
	if typ, id := fhirmap.RefTarget(task.GetFocus()); typ != "ServiceRequest" || id != fhirmap.ID(sr) {
		t.Errorf("Task.focus = %s/%s, want ServiceRequest/%s", typ, id, fhirmap.ID(sr))
	}
	if n := ts.total("ServiceRequest", vals("identifier", referralIDSys+"|"+msgNewReferral)); n != 1 {
		t.Errorf("ServiceRequest?identifier total = %d, want 1", n)
	}

	// The same referral under a new X-Request-Id (a sender retry with a new
	// id): answered with the referral held, still one referral.
	again := bundle(t, ts.post("/$process-message", body, barsHeaders(reqID2, corrID1)), "message")
	if got := fhirmap.ID(entryResource[*taskpb.Task](t, again)); got != fhirmap.ID(task) {
		t.Errorf("new X-Request-Id re-send answered with Task %s, want %s", got, fhirmap.ID(task))
	}
	if c := ts.counts(); c.ServiceRequest != 1 || c.Task != 1 {
		t.Errorf("after re-send: %+v, want one referral", c)
	}
}

// TestProcessMessageReplayIsDuplicate: BaRS receivers answer a message
// whose X-Request-Id was already processed with 409 REC_CONFLICT, issue
// code duplicate, and no second effect
// (docs/referral-exchange.md#bars-headers-and-errors; docs/conformance.md
// row 30, §8.3).
func TestProcessMessageReplayIsDuplicate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	body := mustRead(t, fixMsgNew)
	bundle(t, ts.post("/$process-message", body, barsHeaders(reqID1, corrID1)), "message")

	// Replay of the same X-Request-Id: 409 duplicate, no second effect.
	replay := ts.post("/$process-message", body, barsHeaders(reqID1, corrID1))
	oo := wantOutcome(t, replay, http.StatusConflict, "duplicate", "")
	if got := oo.GetIssue()[0].GetDetails().GetCoding(); len(got) == 0 || got[0].GetCode().GetValue() != "REC_CONFLICT" {
		t.Errorf("duplicate details = %v, want REC_CONFLICT", got)
	}
	if replay.Header.Get("X-Request-Id") != reqID1 || replay.Header.Get("X-Correlation-Id") != corrID1 {
		t.Errorf("headers not echoed on 409")
	}
	if c := ts.counts(); c.ServiceRequest != 1 || c.Task != 1 || c.Patient != 1 {
		t.Errorf("after replay: %+v, want one referral", c)
	}

}

func TestProcessMessageCancellation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	created := bundle(t, ts.post("/$process-message", mustRead(t, fixMsgNew), barsHeaders(reqID1, corrID1)), "message")
	taskID := fhirmap.ID(entryResource[*taskpb.Task](t, created))
	srID := fhirmap.ID(entryResource[*srpb.ServiceRequest](t, created))
	ts.Clock.Set(ts.Clock.Now().Add(24 * time.Hour))

	cancel := mustRead(t, fixMsgCancel)
	resp := ts.post("/$process-message", cancel, barsHeaders(reqID3, corrID1))
	b := bundle(t, resp, "message")
	if resp.Header.Get("X-Request-Id") != reqID3 {
		t.Errorf("X-Request-Id not echoed")
	}
	task := entryResource[*taskpb.Task](t, b)
	if fhirmap.ID(task) != taskID || fhirmap.TaskStatusOf(task) != linkbridge.TaskCancelled {
		t.Errorf("response Task %s status %s, want %s cancelled", fhirmap.ID(task), fhirmap.TaskStatusOf(task), taskID)
	}

	read := ts.get("/Task/" + taskID)
	wantStatus(t, read, http.StatusOK)
	rt := read.Resource.(*taskpb.Task)
	if fhirmap.TaskStatusOf(rt) != linkbridge.TaskCancelled {
		t.Errorf("GET Task status = %s, want cancelled", fhirmap.TaskStatusOf(rt))
	}
	if rt.GetStatusReason().GetText().GetValue() == "" {
		t.Errorf("cancelled Task has no statusReason.text (SDOH SHOULD)")
	}
	if read.Header.Get("ETag") != `W/"2"` {
		t.Errorf("cancelled Task ETag = %q, want W/\"2\"", read.Header.Get("ETag"))
	}
	srr := ts.get("/ServiceRequest/" + srID)
	if got := fhirmap.Code(srr.Resource.(*srpb.ServiceRequest).GetStatus()); got != "revoked" {
		t.Errorf("ServiceRequest.status = %q, want revoked", got)
	}
	if n := ts.total("Task", vals("status", "cancelled", "_id", taskID)); n != 1 {
		t.Errorf("Task?status=cancelled&_id total = %d, want 1", n)
	}
	// The first version is kept.
	v1 := ts.get("/Task/" + taskID + "/_history/1")
	if fhirmap.TaskStatusOf(v1.Resource.(*taskpb.Task)) != linkbridge.TaskRequested {
		t.Errorf("Task version 1 status = %s, want requested", fhirmap.TaskStatusOf(v1.Resource.(*taskpb.Task)))
	}
	if hb := bundle(t, ts.get("/Task/"+taskID+"/_history"), "history"); hb.GetTotal().GetValue() != 2 {
		t.Errorf("Task history total = %d, want 2", hb.GetTotal().GetValue())
	}

	// Cancelling again under a new X-Request-Id is a conflict: the
	// referral is no longer active.
	wantOutcome(t, ts.post("/$process-message", cancel, barsHeaders("4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4e09", corrID1)), http.StatusConflict, "conflict", "ServiceRequest.status")
}

// TestProcessMessageCancelRequestersReferral: without authentication, a
// cancellation's identifier is looked up among the referrals of the
// organisation its ServiceRequest's requester leads to. Practices C82010
// (the fixtures) and A81001 each hold a referral under one identifier;
// A's cancellation, whose requester is an Organization entry of the
// message, revokes A's referral and leaves C's active; C's revokes C's.
func TestProcessMessageCancelRequestersReferral(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	send := func(body []byte, reqID string) *srpb.ServiceRequest {
		t.Helper()
		return entryResource[*srpb.ServiceRequest](t, bundle(t, ts.post("/$process-message", body, barsHeaders(reqID, corrID1)), "message"))
	}
	c := fhirmap.ID(send(mustRead(t, fixMsgNew), reqID1))
	aMsg := mustParseJSON(t, fromPractice(t, mustRead(t, fixMsgNew), "C82010", "A81001"))
	setNHS(aMsg, nhsFor("A81001")) // another person: one open referral per person and service
	a := fhirmap.ID(send(mustJSON(t, aMsg), reqID2))
	if a == c {
		t.Fatalf("A's referral under C's identifier was answered with C's %s", c)
	}

	const orgURL = "urn:uuid:1e6a0a52-6a3e-4a4f-a0b9-0f5e7d3c9b07"
	d := mustParseJSON(t, mustRead(t, fixMsgCancel))
	for _, e := range d["entry"].([]any) {
		if r := e.(jsonDoc)["resource"].(jsonDoc); r["resourceType"] == "ServiceRequest" {
			r["requester"] = jsonDoc{"reference": orgURL}
		}
	}
	d["entry"] = append(d["entry"].([]any), jsonDoc{"fullUrl": orgURL, "resource": jsonDoc{"resourceType": "Organization",
		"identifier": []any{jsonDoc{"system": linkbridge.ODSSystem, "value": "A81001"}}}})
	if sr := send(mustJSON(t, d), reqID3); fhirmap.ID(sr) != a || fhirmap.Code(sr.GetStatus()) != "revoked" {
		t.Errorf("A's cancellation: ServiceRequest %s %s, want A's %s revoked", fhirmap.ID(sr), fhirmap.Code(sr.GetStatus()), a)
	}
	if got := fhirmap.Code(ts.get("/ServiceRequest/" + c).Resource.(*srpb.ServiceRequest).GetStatus()); got != "active" {
		t.Errorf("C's ServiceRequest after A's cancellation is %s, want active", got)
	}
	if sr := send(mustRead(t, fixMsgCancel), "4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4e04"); fhirmap.ID(sr) != c || fhirmap.Code(sr.GetStatus()) != "revoked" {
		t.Errorf("C's cancellation: ServiceRequest %s %s, want C's %s revoked", fhirmap.ID(sr), fhirmap.Code(sr.GetStatus()), c)
	}
}

// TestProcessMessageCancellationReplayIsDuplicate: replaying a processed
// cancellation (same X-Request-Id) is a duplicate, not a state conflict, so
// the sender knows not to retry.
func TestProcessMessageCancellationReplayIsDuplicate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	bundle(t, ts.post("/$process-message", mustRead(t, fixMsgNew), barsHeaders(reqID1, corrID1)), "message")
	cancel := mustRead(t, fixMsgCancel)
	bundle(t, ts.post("/$process-message", cancel, barsHeaders(reqID3, corrID1)), "message")
	wantOutcome(t, ts.post("/$process-message", cancel, barsHeaders(reqID3, corrID1)), http.StatusConflict, "duplicate", "")
}

func TestProcessMessageCancelUnknownReferral(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.post("/$process-message", mustRead(t, fixMsgCancel), barsHeaders(reqID1, corrID1))
	wantOutcome(t, r, http.StatusNotFound, "not-found", "ServiceRequest")
}

func TestProcessMessageRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	base := mustRead(t, fixMsgNew)
	header := func(d jsonDoc) jsonDoc { return d["entry"].([]any)[0].(jsonDoc)["resource"].(jsonDoc) }
	tests := []struct {
		name   string
		mutate func(d jsonDoc)
		status int
		code   string
		expr   string
	}{
		{"ErrNotMessage", func(d jsonDoc) { d["type"] = "collection" }, http.StatusBadRequest, "invalid", "Bundle.type"},
		{"ErrUnknownEvent", func(d jsonDoc) {
			header(d)["eventCoding"] = jsonDoc{"system": "https://fhir.nhs.uk/CodeSystem/message-events-bars", "code": "booking-request"}
		}, http.StatusBadRequest, "invariant", "MessageHeader.eventCoding"}, // BaRS: 400 invariant for an unknown combination
		{"ErrReasonDelete", func(d jsonDoc) {
			header(d)["reason"] = jsonDoc{"coding": []any{jsonDoc{"system": "https://fhir.nhs.uk/CodeSystem/message-reason-bars", "code": "delete"}}}
		}, http.StatusBadRequest, "invariant", "MessageHeader.reason"},
		{"ErrNotABaRSDefinition", func(d jsonDoc) {
			header(d)["definition"] = "https://fhir.nhs.uk/MessageDefinition/bars-message-booking-request"
		}, http.StatusBadRequest, "invariant", "MessageHeader.definition"},
		{"ErrNoLastUpdated", func(d jsonDoc) { delete(header(d), "meta") }, http.StatusBadRequest, "invalid", "MessageHeader.meta.lastUpdated"},
		{"ErrFocusNotInBundle", func(d jsonDoc) {
			header(d)["focus"] = []any{jsonDoc{"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}}
		}, http.StatusBadRequest, "invalid", "MessageHeader.focus"},
		{"ErrNHSNumberFailsModulus11", func(d jsonDoc) { setNHS(d, "3478526985") }, http.StatusUnprocessableEntity, "processing", "Patient.identifier[0].value"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParseJSON(t, base)
			tt.mutate(d)
			id := "4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4f" + string(rune('a'+i)) + "0"
			wantOutcome(t, ts.post("/$process-message", mustJSON(t, d), barsHeaders(id, corrID1)), tt.status, tt.code, tt.expr)
		})
	}
	if c := ts.counts(); c != (counts{}) {
		t.Errorf("refused messages stored resources: %+v", c)
	}
	// A refused message is not recorded: the same X-Request-Id may carry the
	// corrected message.
	r := ts.post("/$process-message", base, barsHeaders("4e2f8a6c-1c2d-4b3e-9f10-0a1b2c3d4fa0", corrID1))
	bundle(t, r, "message")
}

// TestProcessMessageReceiverOnly: a BaRS message that names the social
// prescribing service only as its receiver (MessageHeader.destination
// .receiver; no ServiceRequest.performer, no Task.owner) is addressed to
// that service.
func TestProcessMessageReceiverOnly(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	d := mustParseJSON(t, mustRead(t, fixMsgNew))
	var receiverODS string
	for _, e := range d["entry"].([]any) {
		res := e.(jsonDoc)["resource"].(jsonDoc)
		switch res["resourceType"] {
		case "ServiceRequest":
			delete(res, "performer")
		case "Task":
			delete(res, "owner")
		case "Organization":
			if e.(jsonDoc)["fullUrl"] == "urn:uuid:7c9f3f0e-1b1a-4d8e-8f8e-6a1d0c5b2e04" {
				receiverODS = res["identifier"].([]any)[0].(jsonDoc)["value"].(string)
			}
		}
	}
	if receiverODS == "" {
		t.Fatal("the fixture's receiver Organization has no ODS code")
	}
	resp := ts.post("/$process-message", mustJSON(t, d), barsHeaders(reqID1, corrID1))
	b := bundle(t, resp, "message")
	sr := entryResource[*srpb.ServiceRequest](t, b)
	rf, err := ts.Store.FindReferral(context.Background(), fhirmap.ID(sr))
	if err != nil {
		t.Fatal(err)
	}
	if rf.ServiceODS != receiverODS || rf.ReferrerODS == "" {
		t.Errorf("referral service %q referrer %q; want the receiver %s and the referrer", rf.ServiceODS, rf.ReferrerODS, receiverODS)
	}
}
