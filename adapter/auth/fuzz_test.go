package auth_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/auth"
)

// FuzzAuthenticate feeds arbitrary Authorization headers to the
// authenticator: it never panics, and anything but the one valid token is
// EUNAUTHORIZED.
func FuzzAuthenticate(f *testing.F) {
	k := newKeys(f)
	dir := f.TempDir()
	cfg := testConfig()
	cfg.JWKSFile = dir + "/jwks.json"
	if err := writeFile(cfg.JWKSFile, k.jwks); err != nil {
		f.Fatal(err)
	}
	a, err := auth.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	valid := "Bearer " + sign(f, jwt.SigningMethodES256, k.ec, "ec-1", baseClaims(now))
	for _, seed := range []string{valid, "Bearer ", "Bearer a.b.c", "bearer eyJhbGciOiJub25lIn0.e30.", "Basic x", "", "Bearer " + valid[7:] + "=", "Bearer \x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("GET", "/fhir/Task", nil)
		r.Header["Authorization"] = []string{h}
		p, err := a.Authenticate(r)
		if err != nil {
			if linkbridge.ErrorCode(err) != linkbridge.EUNAUTHORIZED {
				t.Fatalf("error code %s for %q", linkbridge.ErrorCode(err), h)
			}
			return
		}
		// Only the valid token passes (any case of the scheme, spaces
		// around the token).
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) != valid[len("Bearer "):] || p.ClientID != "gp-a" {
			t.Fatalf("%q authenticated as %+v", h, p)
		}
	})
}
