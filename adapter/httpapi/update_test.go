package httpapi_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

// seedTask stores the base referral transaction and returns the Task as
// stored (JSON) and its id.
func seedTask(t *testing.T, ts *testServer) (taskJSON jsonDoc, id string) {
	t.Helper()
	b := bundle(t, ts.post("", mustRead(t, fixReferralTxn), nil), "transaction-response")
	_, id, _ = parseLocation(t, b.GetEntry()[2].GetResponse().GetLocation().GetValue())
	r := ts.get("/Task/" + id)
	wantStatus(t, r, http.StatusOK)
	return mustParseJSON(t, r.Body), id
}

// withStatus returns the Task JSON with a new status (and reason).
func withStatus(t *testing.T, task jsonDoc, status, reason string) []byte {
	t.Helper()
	c := mustParseJSON(t, mustJSON(t, task))
	c["status"] = status
	delete(c, "statusReason")
	if reason != "" {
		c["statusReason"] = jsonDoc{"text": reason}
	}
	return mustJSON(t, c)
}

func TestUpdateTaskCancel(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	task, id := seedTask(t, ts)
	ts.Clock.Set(ts.Clock.Now().Add(time.Hour))

	put := ts.do(http.MethodPut, "/Task/"+id, withStatus(t, task, "cancelled", "Patient moved out of area"), hdr{"If-Match": `W/"1"`})
	wantStatus(t, put, http.StatusOK)
	if put.Header.Get("ETag") != `W/"2"` {
		t.Errorf("ETag = %q, want W/\"2\"", put.Header.Get("ETag"))
	}
	if typ, gid, v := parseLocation(t, put.Header.Get("Location")); typ != "Task" || gid != id || v != "2" {
		t.Errorf("Location = %q, want Task/%s/_history/2", put.Header.Get("Location"), id)
	}
	got := put.Resource.(*taskpb.Task)
	if fhirmap.TaskStatusOf(got) != linkbridge.TaskCancelled || got.GetStatusReason().GetText().GetValue() != "Patient moved out of area" {
		t.Errorf("Task = %s (%q), want cancelled with the reason sent", fhirmap.TaskStatusOf(got), got.GetStatusReason().GetText().GetValue())
	}
	if fhirmap.GetMeta(got).GetVersionId().GetValue() != "2" {
		t.Errorf("meta.versionId = %q, want 2", fhirmap.GetMeta(got).GetVersionId().GetValue())
	}
	if lm, ao := fhirmap.DateTimeToTime(got.GetLastModified()), fhirmap.DateTimeToTime(got.GetAuthoredOn()); lm.Before(ao) || !lm.Equal(ts.Clock.Now()) {
		t.Errorf("lastModified = %v, want now (%v) and ≥ authoredOn %v (inv-1)", lm, ts.Clock.Now(), ao)
	}
	if n := ts.total("Task", vals("status", "cancelled")); n != 1 {
		t.Errorf("Task?status=cancelled total = %d, want 1", n)
	}
	if n := ts.total("Task", vals("status", "requested")); n != 0 {
		t.Errorf("Task?status=requested total = %d, want 0 (the index follows the current version)", n)
	}

	// A stale If-Match: 412.
	stale := ts.do(http.MethodPut, "/Task/"+id, withStatus(t, task, "cancelled", ""), hdr{"If-Match": `W/"1"`})
	wantOutcome(t, stale, http.StatusPreconditionFailed, "conflict", "")
	// Cancelled is terminal: 409 naming Task.status.
	again := ts.do(http.MethodPut, "/Task/"+id, withStatus(t, task, "in-progress", ""), hdr{"If-Match": `W/"2"`})
	wantOutcome(t, again, http.StatusConflict, "conflict", "Task.status")

	if hb := bundle(t, ts.get("/Task/"+id+"/_history"), "history"); hb.GetTotal().GetValue() != 2 {
		t.Errorf("history total = %d, want 2 (refused updates add no version)", hb.GetTotal().GetValue())
	}
}

func TestUpdateTaskRefusals(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	task, id := seedTask(t, ts)

	tests := []struct {
		name   string
		body   func() []byte
		h      hdr
		status int
		code   string
		expr   string
	}{
		{"ErrRequesterCompletes", func() []byte { return withStatus(t, task, "completed", "") }, hdr{"If-Match": `W/"1"`}, http.StatusConflict, "conflict", "Task.status"},
		{"ErrRequesterAccepts", func() []byte { return withStatus(t, task, "accepted", "") }, nil, http.StatusConflict, "conflict", "Task.status"},
		{"ErrPerformerCompletesFromRequested", func() []byte { return withStatus(t, task, "completed", "") }, hdr{actorHeader: "performer"}, http.StatusConflict, "conflict", "Task.status"},
		{"ErrUnknownStatus", func() []byte { return withStatus(t, task, "ready", "") }, nil, http.StatusConflict, "conflict", "Task.status"},
		{"ErrStaleIfMatch", func() []byte { return withStatus(t, task, "cancelled", "") }, hdr{"If-Match": `W/"7"`}, http.StatusPreconditionFailed, "conflict", ""},
		{"ErrBadIfMatch", func() []byte { return withStatus(t, task, "cancelled", "") }, hdr{"If-Match": `*`}, http.StatusBadRequest, "invalid", ""},
		{"ErrIDMismatch", func() []byte {
			c := mustParseJSON(t, withStatus(t, task, "cancelled", ""))
			c["id"] = "someone-else"
			return mustJSON(t, c)
		}, nil, http.StatusBadRequest, "invalid", "Task.id"},
		{"ErrFocusChanged", func() []byte {
			c := mustParseJSON(t, withStatus(t, task, "cancelled", ""))
			c["focus"] = jsonDoc{"reference": "ServiceRequest/other"}
			return mustJSON(t, c)
		}, nil, http.StatusUnprocessableEntity, "processing", "Task.focus"},
		{"ErrForChanged", func() []byte {
			c := mustParseJSON(t, withStatus(t, task, "cancelled", ""))
			c["for"] = jsonDoc{"reference": "Patient/other"}
			return mustJSON(t, c)
		}, nil, http.StatusUnprocessableEntity, "processing", "Task.for"},
		{"ErrIntentChanged", func() []byte {
			c := mustParseJSON(t, withStatus(t, task, "cancelled", ""))
			c["intent"] = "plan"
			return mustJSON(t, c)
		}, nil, http.StatusUnprocessableEntity, "processing", "Task.intent"},
		{"ErrNotATask", func() []byte { return mustRead(t, fixSRContained) }, nil, http.StatusBadRequest, "invalid", "ServiceRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(http.MethodPut, "/Task/"+id, tt.body(), tt.h)
			wantOutcome(t, r, tt.status, tt.code, tt.expr)
		})
	}
	unknown := mustParseJSON(t, withStatus(t, task, "cancelled", ""))
	unknown["id"] = "no-such-task"
	wantOutcome(t, ts.do(http.MethodPut, "/Task/no-such-task", mustJSON(t, unknown), nil), http.StatusNotFound, "not-found", "")

	cur := ts.get("/Task/" + id)
	if cur.Header.Get("ETag") != `W/"1"` || fhirmap.TaskStatusOf(cur.Resource.(*taskpb.Task)) != linkbridge.TaskRequested {
		t.Errorf("after refused updates: ETag %q status %s, want W/\"1\" requested", cur.Header.Get("ETag"), fhirmap.TaskStatusOf(cur.Resource.(*taskpb.Task)))
	}
}

// TestUpdateTaskPerformerLifecycle walks the link worker's side of the
// state machine (accepted → in-progress → on-hold → in-progress → completed),
// each change a new version.
func TestUpdateTaskPerformerLifecycle(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	task, id := seedTask(t, ts)
	performer := hdr{actorHeader: "performer"}
	for i, st := range []string{"accepted", "in-progress", "on-hold", "in-progress", "completed"} {
		reason := ""
		if st == "on-hold" {
			reason = "Person in hospital"
		}
		ts.Clock.Set(ts.Clock.Now().Add(time.Hour))
		r := ts.do(http.MethodPut, "/Task/"+id, withStatus(t, task, st, reason), performer)
		wantStatus(t, r, http.StatusOK)
		if want := `W/"` + string(rune('2'+i)) + `"`; r.Header.Get("ETag") != want {
			t.Errorf("%s: ETag = %q, want %s", st, r.Header.Get("ETag"), want)
		}
	}
	// Completed is terminal, for either side.
	wantOutcome(t, ts.do(http.MethodPut, "/Task/"+id, withStatus(t, task, "cancelled", ""), nil), http.StatusConflict, "conflict", "Task.status")
	if n := ts.total("Task", vals("status", "completed")); n != 1 {
		t.Errorf("Task?status=completed total = %d, want 1", n)
	}
}

// TestUpdateTaskRace: two updates with the same If-Match version, one
// wins (200), the other gets 412 (docs/conformance.md §8.11).
func TestUpdateTaskRace(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	task, id := seedTask(t, ts)
	bodies := [][]byte{withStatus(t, task, "accepted", ""), withStatus(t, task, "rejected", "Not eligible")}
	statuses := make([]int, 2)
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = ts.do(http.MethodPut, "/Task/"+id, bodies[i], hdr{"If-Match": `W/"1"`, actorHeader: "performer"}).Status
		}()
	}
	wg.Wait()
	ok, failed := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusPreconditionFailed:
			failed++
		}
	}
	if ok != 1 || failed != 1 {
		t.Errorf("statuses = %v, want one 200 and one 412", statuses)
	}
	if hb := bundle(t, ts.get("/Task/"+id+"/_history"), "history"); hb.GetTotal().GetValue() != 2 {
		t.Errorf("history total = %d, want 2", hb.GetTotal().GetValue())
	}
}

func TestUpdateServiceRequestRevokes(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	b := bundle(t, ts.post("", mustRead(t, fixReferralTxn), nil), "transaction-response")
	_, srID, _ := parseLocation(t, b.GetEntry()[1].GetResponse().GetLocation().GetValue())
	_, taskID, _ := parseLocation(t, b.GetEntry()[2].GetResponse().GetLocation().GetValue())
	sr := mustParseJSON(t, ts.get("/ServiceRequest/"+srID).Body)

	sr["status"] = "completed"
	wantOutcome(t, ts.do(http.MethodPut, "/ServiceRequest/"+srID, mustJSON(t, sr), nil), http.StatusUnprocessableEntity, "processing", "ServiceRequest.status")

	sr["status"] = "revoked"
	wantOutcome(t, ts.do(http.MethodPut, "/ServiceRequest/"+srID, mustJSON(t, sr), hdr{"If-Match": `W/"9"`}), http.StatusPreconditionFailed, "conflict", "")
	r := ts.do(http.MethodPut, "/ServiceRequest/"+srID, mustJSON(t, sr), hdr{"If-Match": `W/"1"`})
	wantStatus(t, r, http.StatusOK)
	if got := fhirmap.Code(r.Resource.(*srpb.ServiceRequest).GetStatus()); got != "revoked" {
		t.Errorf("ServiceRequest.status = %q, want revoked", got)
	}
	if got := fhirmap.TaskStatusOf(ts.get("/Task/" + taskID).Resource.(*taskpb.Task)); got != linkbridge.TaskCancelled {
		t.Errorf("Task.status = %s, want cancelled", got)
	}
	// Revoking twice conflicts.
	wantOutcome(t, ts.do(http.MethodPut, "/ServiceRequest/"+srID, mustJSON(t, sr), nil), http.StatusConflict, "conflict", "ServiceRequest.status")
}
