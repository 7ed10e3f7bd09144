package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// heldStore is the real store with its searches held until release closes
// (a slow query), or until the request's context ends, when the real store
// is asked anyway and answers as it does for a cancelled query.
type heldStore struct {
	linkbridge.Store
	release chan struct{}
	started chan struct{}
	ctxErr  chan error
}

func (h *heldStore) SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error) {
	select {
	case h.started <- struct{}{}:
	default:
	}
	select {
	case <-h.release:
	case <-ctx.Done():
		select {
		case h.ctxErr <- ctx.Err():
		default:
		}
	}
	return h.Store.SearchResources(ctx, q)
}

func holdSearches(s *httpapi.Server) *heldStore {
	h := &heldStore{Store: s.Store, release: make(chan struct{}), started: make(chan struct{}, 16), ctxErr: make(chan error, 1)}
	s.Store = h
	return h
}

// TestRequestDeadline: a request still running at RequestTimeout has its
// context cancelled where the store sees it, and is answered 408 with a
// BaRS REC_TIMEOUT OperationOutcome instead of hanging.
func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	var held *heldStore
	ts := newTestServer(t, func(s *httpapi.Server) {
		s.RequestTimeout = 100 * time.Millisecond
		held = holdSearches(s)
	})
	start := time.Now()
	oo := wantOutcome(t, ts.get("/Task?status=requested"), http.StatusRequestTimeout, "timeout", "")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("answered after %s", d)
	}
	if got := oo.GetIssue()[0].GetDetails().GetCoding()[0].GetCode().GetValue(); got != "REC_TIMEOUT" {
		t.Errorf("details code = %q, want REC_TIMEOUT", got)
	}
	select {
	case err := <-held.ctxErr:
		if err != context.DeadlineExceeded {
			t.Errorf("store saw %v, want context.DeadlineExceeded", err)
		}
	default:
		t.Errorf("the store never saw the request's deadline")
	}
}

// TestInFlightPerClient: a client with MaxInFlightPerClient requests in
// progress gets 429 with Retry-After for one more, while another client is
// served; the slot comes back when a request ends.
func TestInFlightPerClient(t *testing.T) {
	t.Parallel()
	var held *heldStore
	ss := newSecServer(t, nil, func(s *httpapi.Server) {
		s.MaxInFlightPerClient = 1
		held = holdSearches(s)
	})
	root := strings.TrimSuffix(ss.URL, "/fhir")
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, root+"/fhir/Task", nil)
		req.Header.Set("Authorization", "Bearer "+ss.token("gp-own"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		_ = resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-held.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first search never reached the store")
	}
	status, h, body := ss.call("gp-own", http.MethodGet, "/fhir/Task", nil, nil)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(string(body), "REC_TOO_MANY_REQUESTS") {
		t.Errorf("second request of the same client: %d, Retry-After %q, %s", status, h.Get("Retry-After"), body)
	}
	// Another client is let in while gp-own's slot is taken (its search is
	// held too, until release).
	other := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, root+"/fhir/Task", nil)
		req.Header.Set("Authorization", "Bearer "+ss.token("sp-own"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			other <- 0
			return
		}
		_ = resp.Body.Close()
		other <- resp.StatusCode
	}()
	select {
	case <-held.started:
	case <-time.After(5 * time.Second):
		t.Fatal("another client's search never reached the store")
	}
	close(held.release) // held and later searches go on
	if got := <-other; got != http.StatusOK {
		t.Errorf("another client: %d", got)
	}
	if got := <-first; got != http.StatusOK {
		t.Errorf("first request: %d", got)
	}
	if status, _, body := ss.call("gp-own", http.MethodGet, "/fhir/Task", nil, nil); status != http.StatusOK {
		t.Errorf("after the first ended: %d %s", status, body)
	}
}
