package gpfhir_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
