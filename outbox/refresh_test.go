package outbox_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
)

// authedEndpoint is the recording GP endpoint behind OAuth: a token
// endpoint handing out tok-1, tok-2, ... and a front that answers 401 to
// the refused bearer tokens (every token when refuse is nil) and passes
// the rest on to the recorder.
type authedEndpoint struct {
	tokens atomic.Int32 // token requests
	sender *gpfhir.Sender
}

func newAuthedEndpoint(t *testing.T, e *env, refuse map[string]bool) *authedEndpoint {
	t.Helper()
	a := &authedEndpoint{}
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := a.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": 300})
	}))
	t.Cleanup(tokenSrv.Close)
	next := e.srv.Config.Handler
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth := r.Header.Get("Authorization"); refuse == nil || refuse[auth] {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login","diagnostics":"token not accepted"}]}`)
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := gpfhir.NewSignedJWTAuth(gpfhir.SignedJWTConfig{TokenURL: tokenSrv.URL + "/token", ClientID: "linkbridge", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gpfhir.New(gpfhir.Config{BaseURL: front.URL, Mode: gpfhir.ModeClientID, Auth: auth, RetryMax: 0, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a.sender = &gpfhir.Sender{Client: c}
	return a
}

// TestRelayRefreshesTokenOn401: a 401 from the GP endpoint makes the sender
// fetch a new OAuth token and send again before anything is decided: a
// write refused with a stale token is delivered, with no failed attempt; a
// write refused with the new token too is dead-lettered with the endpoint's
// answer, as any 4xx is.
func TestRelayRefreshesTokenOn401(t *testing.T) {
	t.Parallel()
	t.Run("RefreshedThenDelivered", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := newAuthedEndpoint(t, e, map[string]bool{"Bearer tok-1": true})
		p := e.mustPerson(t, "a")
		m := p.msg("p-a-a", 1)
		p.enqueue(t, m)
		r := e.relay()
		r.Sender = a.sender
		start(t, r)
		waitFor(t, 30*time.Second, "settled", func() bool {
			st := get(t, e, m.ID).State
			return st != linkbridge.OutboxPending && st != linkbridge.OutboxInflight
		})
		if got := get(t, e, m.ID); got.State != linkbridge.OutboxDelivered || got.Attempts != 0 {
			t.Fatalf("message = %s after %d failed attempts (last %d %q); want delivered, none failed", got.State, got.Attempts, got.LastStatus, got.LastError)
		}
		if n := a.tokens.Load(); n != 2 {
			t.Errorf("token requests = %d, want 2 (the refused token replaced once)", n)
		}
		if n := len(e.srv.Writes()); n != 1 {
			t.Errorf("recorder got %d writes, want 1", n)
		}
	})
	t.Run("ErrRefusedTwiceDeadLetters", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := newAuthedEndpoint(t, e, nil)
		p := e.mustPerson(t, "a")
		m := p.msg("p-a-a", 1)
		p.enqueue(t, m)
		r := e.relay()
		r.Sender = a.sender
		start(t, r)
		waitFor(t, 30*time.Second, "settled", func() bool {
			st := get(t, e, m.ID).State
			return st != linkbridge.OutboxPending && st != linkbridge.OutboxInflight
		})
		got := get(t, e, m.ID)
		if got.State != linkbridge.OutboxDead || got.LastStatus != http.StatusUnauthorized || !strings.Contains(string(got.LastOutcome), "token not accepted") {
			t.Fatalf("message = %s, LastStatus %d, LastOutcome %s; want dead, 401, the endpoint's OperationOutcome", got.State, got.LastStatus, got.LastOutcome)
		}
		if n := a.tokens.Load(); n != 2 {
			t.Errorf("token requests = %d, want 2 (one refresh, then the 401 stands)", n)
		}
		if n := len(e.srv.Writes()); n != 0 {
			t.Errorf("recorder got %d writes, want 0", n)
		}
	})
}
