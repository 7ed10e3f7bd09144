package gpfhir_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
)

// TestSignedJWTAuth runs a token endpoint that verifies the client
// assertion's signature and claims, then checks the bearer token reaches
// the GP endpoint and is reused until it expires.
func TestSignedJWTAuth(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var tokenCalls atomic.Int32
	var tokenURL string
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenCalls.Add(1)
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" ||
			r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		claims := &jwt.RegisteredClaims{}
		_, err := jwt.ParseWithClaims(r.PostForm.Get("client_assertion"), claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
			jwt.WithValidMethods([]string{"ES384"}), jwt.WithAudience(tokenURL), jwt.WithIssuer("linkbridge-client"), jwt.WithExpirationRequired())
		if err != nil || claims.Subject != "linkbridge-client" || claims.ID == "" || time.Until(claims.ExpiresAt.Time) > 5*time.Minute {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-123", "token_type": "bearer", "expires_in": 300})
	}))
	t.Cleanup(tokenSrv.Close)
	tokenURL = tokenSrv.URL + "/token"

	var gotAuth atomic.Value
	gp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(gp.Close)

	auth, err := gpfhir.NewSignedJWTAuth(gpfhir.SignedJWTConfig{TokenURL: tokenURL, ClientID: "linkbridge-client", KeyID: "k1", Key: key, Scopes: []string{"system/Task.write"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := gpfhir.New(gpfhir.Config{BaseURL: gp.URL + "/fhir", Mode: gpfhir.ModeClientID, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Put(context.Background(), "Task", "t1", 1, []byte(taskBody)); err != nil {
			t.Fatal(err)
		}
	}
	if got := gotAuth.Load(); got != "Bearer tok-123" {
		t.Fatalf("Authorization = %v, want Bearer tok-123", got)
	}
	if n := tokenCalls.Load(); n != 1 {
		t.Fatalf("token requests = %d, want 1 (the token is reused)", n)
	}

	// A key the token endpoint does not trust is refused, and the write fails.
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	bad, _ := gpfhir.NewSignedJWTAuth(gpfhir.SignedJWTConfig{TokenURL: tokenURL, ClientID: "linkbridge-client", Key: other})
	c2, _ := gpfhir.New(gpfhir.Config{BaseURL: gp.URL + "/fhir", Mode: gpfhir.ModeClientID, Auth: bad})
	if _, err := c2.Put(context.Background(), "Task", "t1", 1, []byte(taskBody)); err == nil {
		t.Fatal("Put with an untrusted key succeeded")
	}
}

// tokenServer is a token endpoint that hands out tok-1, tok-2, ... (one a
// request, valid 5 minutes) without checking the assertion.
type tokenServer struct {
	*httptest.Server
	calls atomic.Int32
}

func newTokenServer(t *testing.T) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := ts.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": "bearer", "expires_in": 300})
	}))
	t.Cleanup(ts.Close)
	return ts
}

// refusingGP answers 401 with an OperationOutcome to the bearer tokens it
// refuses (every token when refuse is nil) and 200 to others, recording the
// Authorization header of every request. With gather > 0, refused requests
// are held until gather of them have arrived.
type refusingGP struct {
	*httptest.Server
	mu       sync.Mutex
	refuse   map[string]bool
	seen     []string
	gather   int
	waiting  int
	gathered chan struct{}
}

func newRefusingGP(t *testing.T, refuse map[string]bool) *refusingGP {
	t.Helper()
	gp := &refusingGP{refuse: refuse, gathered: make(chan struct{})}
	gp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		gp.mu.Lock()
		gp.seen = append(gp.seen, auth)
		refused := gp.refuse == nil || gp.refuse[auth]
		hold := refused && gp.gather > 0
		if hold {
			if gp.waiting++; gp.waiting == gp.gather {
				close(gp.gathered)
			}
		}
		gp.mu.Unlock()
		if hold {
			select {
			case <-gp.gathered:
			case <-time.After(10 * time.Second):
				t.Errorf("only %d of %d refused requests arrived", gp.waiting, gp.gather)
			}
		}
		if refused {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login","diagnostics":"token not accepted"}]}`)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(gp.Close)
	return gp
}

// revoke refuses tok from now on, holding refused requests until n of them
// have arrived.
func (gp *refusingGP) revoke(tok string, n int) {
	gp.mu.Lock()
	defer gp.mu.Unlock()
	gp.refuse[tok], gp.gather = true, n
}

func (gp *refusingGP) requests() []string {
	gp.mu.Lock()
	defer gp.mu.Unlock()
	return append([]string(nil), gp.seen...)
}

// TestSignedJWTAuthRefreshesOn401: a 401 drops the cached token; the write
// is sent once more with a new one. A second 401 is the answer (permanent,
// as before); several writes refused with one token fetch one new token; a
// static token is not retried.
func TestSignedJWTAuthRefreshesOn401(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	setup := func(t *testing.T, refuse map[string]bool) (*gpfhir.Client, *tokenServer, *refusingGP) {
		t.Helper()
		ts := newTokenServer(t)
		gp := newRefusingGP(t, refuse)
		auth, err := gpfhir.NewSignedJWTAuth(gpfhir.SignedJWTConfig{TokenURL: ts.URL + "/token", ClientID: "linkbridge-client", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		c, err := gpfhir.New(gpfhir.Config{BaseURL: gp.URL + "/fhir", Mode: gpfhir.ModeClientID, Auth: auth})
		if err != nil {
			t.Fatal(err)
		}
		return c, ts, gp
	}
	ctx := context.Background()

	t.Run("RefusedOnceThenOK", func(t *testing.T) {
		t.Parallel()
		c, ts, gp := setup(t, map[string]bool{"Bearer tok-1": true})
		if _, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody)); err != nil {
			t.Fatalf("Put returned unexpected error: %v", err)
		}
		if n := ts.calls.Load(); n != 2 {
			t.Errorf("token requests = %d, want 2 (the refused token replaced once)", n)
		}
		if got, want := gp.requests(), []string{"Bearer tok-1", "Bearer tok-2"}; !slices.Equal(got, want) {
			t.Errorf("GP requests carried %v, want %v", got, want)
		}
		// The new token is cached.
		if _, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody)); err != nil || ts.calls.Load() != 2 {
			t.Errorf("second Put = %v with %d token requests; want success on the cached tok-2", err, ts.calls.Load())
		}
	})

	t.Run("ErrRefusedTwice", func(t *testing.T) {
		t.Parallel()
		c, ts, gp := setup(t, nil)
		_, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody))
		var perm *gpfhir.PermanentError
		if !errors.As(err, &perm) || perm.Status != http.StatusUnauthorized || !strings.Contains(string(perm.Outcome), "token not accepted") {
			t.Fatalf("Put error = %v; want a PermanentError 401 with the endpoint's OperationOutcome", err)
		}
		if n := ts.calls.Load(); n != 2 {
			t.Errorf("token requests = %d, want 2 (one refresh only)", n)
		}
		if got, want := gp.requests(), []string{"Bearer tok-1", "Bearer tok-2"}; !slices.Equal(got, want) {
			t.Errorf("GP requests carried %v, want %v", got, want)
		}
	})

	t.Run("ConcurrentRefusalsRefreshOnce", func(t *testing.T) {
		t.Parallel()
		c, ts, gp := setup(t, map[string]bool{})
		// tok-1 is accepted, then revoked while cached: eight writes go
		// out with it at once and are all refused.
		if _, err := c.Put(ctx, "Task", "t0", 1, []byte(strings.Replace(taskBody, `"t1"`, `"t0"`, 1))); err != nil {
			t.Fatalf("Put returned unexpected error: %v", err)
		}
		const n = 8
		gp.revoke("Bearer tok-1", n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				id := "c" + strconv.Itoa(i)
				if _, err := c.Put(ctx, "Task", id, 1, []byte(strings.Replace(taskBody, `"t1"`, `"`+id+`"`, 1))); err != nil {
					t.Errorf("Put(%s) returned unexpected error: %v", id, err)
				}
			})
		}
		wg.Wait()
		if got := ts.calls.Load(); got != 2 {
			t.Errorf("token requests = %d, want 2 (tok-1 dropped once for %d refusals)", got, n)
		}
		if got := gp.requests(); len(got) != 1+2*n {
			t.Errorf("GP requests = %v, want %d (each write refused once, then accepted)", got, 1+2*n)
		}
	})

	t.Run("StaticTokenNotRetried", func(t *testing.T) {
		t.Parallel()
		gp := newRefusingGP(t, nil)
		c, err := gpfhir.New(gpfhir.Config{BaseURL: gp.URL + "/fhir", Mode: gpfhir.ModeClientID, Auth: gpfhir.BearerToken("static")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Put(ctx, "Task", "t1", 1, []byte(taskBody))
		var perm *gpfhir.PermanentError
		if !errors.As(err, &perm) || perm.Status != http.StatusUnauthorized {
			t.Fatalf("Put error = %v; want a PermanentError 401", err)
		}
		if n := len(gp.requests()); n != 1 {
			t.Errorf("GP requests = %d, want 1 (a static token cannot be refreshed)", n)
		}
	})
}
