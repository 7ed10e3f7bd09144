package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge"
)

// DefaultRequestTimeout is the default deadline of one request: BaRS asks
// that every request be answered within 5 s, else 408 REC_TIMEOUT
// (docs/referral-exchange.md#errors).
const DefaultRequestTimeout = 5 * time.Second

// DefaultMaxInFlightPerClient is the default number of requests one
// authenticated client may have in progress at once: half the default
// PostgreSQL pool, so that no caller can hold every store connection.
const DefaultMaxInFlightPerClient = 8

// withDeadline gives every request a deadline (RequestTimeout) that
// reaches the store: a query still running when it passes is stopped
// (PostgreSQL cancels it, SQLite interrupts it), and the caller gets 408
// with an OperationOutcome (see timedOut) instead of a hang. A client that
// goes away cancels its request the same way.
func (s *Server) withDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := s.RequestTimeout
		if d <= 0 {
			d = DefaultRequestTimeout
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// inFlight counts each authenticated client's requests in progress.
type inFlight struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes one of the client's slots, or returns ETOOMANY when it has
// max requests in progress already; release gives it back.
func (f *inFlight) acquire(client string, max int) (release func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[string]int{}
	}
	if f.n[client] >= max {
		return nil, linkbridge.Errorf(linkbridge.ETOOMANY, "this client has %d requests in progress already; retry when one has finished", max)
	}
	f.n[client]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n[client]--; f.n[client] <= 0 {
			delete(f.n, client)
		}
	}, nil
}

// maxInFlight is MaxInFlightPerClient or its default.
func (s *Server) maxInFlight() int {
	if s.MaxInFlightPerClient > 0 {
		return s.MaxInFlightPerClient
	}
	return DefaultMaxInFlightPerClient
}
