package gpfhir_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
)

// fakeGP is a scripted GP endpoint (outside our control, as every real one
// is): handle answers each request; calls counts them by method.
type fakeGP struct {
	mu     sync.Mutex
	calls  map[string]int
	handle func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeGP(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) (*fakeGP, string) {
	t.Helper()
	f := &fakeGP{calls: map[string]int{}, handle: handle}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls[r.Method]++
		n := f.calls[r.Method]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/fhir+json")
		if r.URL.Path == "/fhir/metadata" {
			_, _ = w.Write([]byte(`{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","rest":[{"mode":"server","resource":[{"type":"Goal","interaction":[{"code":"create"},{"code":"update"},{"code":"delete"}],"updateCreate":false,"conditionalUpdate":true}]}]}`))
			return
		}
		f.handle(w, r, n)
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL + "/fhir"
}

func (f *fakeGP) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

const goalG1 = `{"resourceType":"Goal","id":"g1","identifier":[{"system":"https://linkbridge.example.org/Id/writeback","value":"Goal/g1"}],"lifecycleStatus":"active","description":{"text":"x"},"subject":{"display":"p"}}`

// TestFindByKeyKeepsOnlyKeyedMatches: a server that ignores the search
// parameter answers with every resource of the type; none that lacks the
// key is taken for linkbridge's copy, and the search asks for strict
// handling.
func TestFindByKeyKeepsOnlyKeyedMatches(t *testing.T) {
	var prefer string
	_, base := newFakeGP(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		prefer = r.Header.Get("Prefer")
		_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Goal","id":"gp-own-1"},"search":{"mode":"match"}},` +
			`{"resource":{"resourceType":"Goal","id":"lb-1","meta":{"versionId":"3"},"identifier":[{"system":"https://linkbridge.example.org/Id/writeback","value":"Goal/g1"}]},"search":{"mode":"match"}}]}`))
	})
	c, err := gpfhir.New(gpfhir.Config{BaseURL: base, Mode: gpfhir.ModeConditional})
	if err != nil {
		t.Fatal(err)
	}
	id, v, n, err := c.FindByKey(context.Background(), "Goal", "g1")
	if err != nil || n != 1 || id != "lb-1" || v != "3" {
		t.Fatalf("FindByKey = %q %q %d %v; want only the keyed copy lb-1 version 3", id, v, n, err)
	}
	if prefer != "handling=strict" {
		t.Errorf("Prefer = %q, want handling=strict", prefer)
	}
	if _, _, n, _ := c.FindByKey(context.Background(), "Goal", "other"); n != 0 {
		t.Errorf("FindByKey(other) found %d, want none", n)
	}
}

// TestCreateModeIfNoneExistMatched: a create whose If-None-Exist matched
// a copy (200, the body ignored) is followed by an update of that copy, so
// the version is applied.
func TestCreateModeIfNoneExistMatched(t *testing.T) {
	f, base := newFakeGP(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.Method {
		case http.MethodGet:
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset"}`)) // the search lags
		case http.MethodPost:
			_, _ = w.Write([]byte(`{"resourceType":"Goal","id":"old","meta":{"versionId":"1"}}`))
		case http.MethodPut:
			if r.URL.Path != "/fhir/Goal/old" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set("Location", "/fhir/Goal/old/_history/2")
			_, _ = w.Write([]byte(goalG1))
		}
	})
	c, _ := gpfhir.New(gpfhir.Config{BaseURL: base, Mode: gpfhir.ModeCreate})
	res, err := c.Write(context.Background(), gpfhir.Write{Type: "Goal", ID: "g1", Version: 2, Body: []byte(goalG1)})
	if err != nil || res.EndpointID != "old" || res.EndpointVersion != "2" || f.count(http.MethodPut) != 1 {
		t.Fatalf("Write = %+v, %v, %d PUTs; want the matched copy updated (old, version 2)", res, err, f.count(http.MethodPut))
	}
}

// TestCreateNotRetriedInProcess: a POST answered 503 (it may have been
// applied) is not sent again at once: the outbox retries it later, after
// a search by the key.
func TestCreateNotRetriedInProcess(t *testing.T) {
	f, base := newFakeGP(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.Method {
		case http.MethodGet:
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset"}`))
		case http.MethodPost:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	c, _ := gpfhir.New(gpfhir.Config{BaseURL: base, Mode: gpfhir.ModeCreate, RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	_, err := c.Write(context.Background(), gpfhir.Write{Type: "Goal", ID: "g1", Version: 1, Body: []byte(goalG1)})
	var re *gpfhir.RetryableError
	if !errors.As(err, &re) || f.count(http.MethodPost) != 1 {
		t.Fatalf("Write = %v after %d POSTs; want one POST and a retryable error for the outbox", err, f.count(http.MethodPost))
	}
}

// TestMetadataRefusedIsNotNoStatement: a 401 on /metadata is an error, not
// "the endpoint has no CapabilityStatement", and is not remembered.
func TestMetadataRefusedIsNotNoStatement(t *testing.T) {
	var mu sync.Mutex
	refuse := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"resourceType":"CapabilityStatement","rest":[{"mode":"server","resource":[{"type":"Goal","interaction":[{"code":"delete"}],"updateCreate":true}]}]}`))
	}))
	defer srv.Close()
	c, _ := gpfhir.New(gpfhir.Config{BaseURL: srv.URL + "/fhir", Mode: gpfhir.ModeAuto})
	if _, err := c.ModeFor(context.Background(), "Goal"); err == nil {
		t.Fatal("ModeFor with /metadata refused = nil error")
	}
	mu.Lock()
	refuse = false
	mu.Unlock()
	if m, err := c.ModeFor(context.Background(), "Goal"); err != nil || m != gpfhir.ModeClientID {
		t.Fatalf("ModeFor once /metadata answers = %s, %v; want client-id (read again, not remembered)", m, err)
	}
}

// TestEraseRefusedWritesWithheldVersion: an endpoint that refuses the
// delete (409: a resource of its own refers to it) gets the withheld
// version instead; and every copy carrying the key is deleted.
func TestEraseRefusedWritesWithheldVersion(t *testing.T) {
	f, base := newFakeGP(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch r.Method {
		case http.MethodGet:
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Goal","id":"a","identifier":[{"system":"https://linkbridge.example.org/Id/writeback","value":"Goal/g1"}]}}]}`))
		case http.MethodDelete:
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"conflict","diagnostics":"referenced by CarePlan/gp-1"}]}`))
		case http.MethodPut:
			w.Header().Set("Location", "/fhir/Goal/a/_history/2")
			_, _ = w.Write([]byte(goalG1))
		}
	})
	c, _ := gpfhir.New(gpfhir.Config{BaseURL: base, Mode: gpfhir.ModeAuto})
	s := &gpfhir.Sender{Client: c}
	m := &linkbridge.OutboxMessage{ResourceType: "Goal", ResourceID: "g1", Version: 2, Erase: true, Body: []byte(goalG1)}
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatalf("Send(erase refused) = %v; want the withheld version written", err)
	}
	if f.count(http.MethodDelete) != 1 || f.count(http.MethodPut) != 1 {
		t.Errorf("DELETEs %d, PUTs %d; want the refused delete, then the withheld version", f.count(http.MethodDelete), f.count(http.MethodPut))
	}
}
