package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/auth"
)

// keys are the test signing keys: one RSA (RS256) and one EC (ES256) in the
// trusted JWKS, and one EC key nobody trusts.
type keys struct {
	rsa      *rsa.PrivateKey
	ec       *ecdsa.PrivateKey
	stranger *ecdsa.PrivateKey
	jwks     []byte
}

func newKeys(t testing.TB) *keys {
	t.Helper()
	k := &keys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.stranger, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	var set jwkset.JWKSMarshal
	for _, kk := range []struct {
		pub any
		kid string
		alg jwkset.ALG
	}{{k.rsa.Public(), "rsa-1", jwkset.AlgRS256}, {k.ec.Public(), "ec-1", jwkset.AlgES256}} {
		jwk, err := jwkset.NewJWKFromKey(kk.pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kk.kid, ALG: kk.alg, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	if k.jwks, err = json.Marshal(set); err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	issuer   = "https://auth.example.nhs.uk"
	audience = "https://linkbridge.example.org/fhir"
)

func testConfig() *auth.Config {
	return &auth.Config{
		Issuer: issuer, Audience: []string{audience},
		Clients: []auth.Client{
			{ID: "gp-a", Role: linkbridge.RoleGP, ODS: "a81001", Scopes: []string{"system/*.read", "system/ServiceRequest.write"}},
			{ID: "mdt-1", Role: linkbridge.RoleMDT, ODS: "U12345", Practices: []string{"A81001"}, Scopes: []string{"system/*.read"}},
		},
	}
}

// baseClaims are valid claims for gp-a.
func baseClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": issuer, "aud": audience, "sub": "gp-a", "client_id": "gp-a",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "x",
		"scope": "system/*.read system/ServiceRequest.write",
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func request(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/fhir/Task", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// TestTokens checks every way a token must be refused, against a JWKS
// served over HTTP and one read from a file.
func TestTokens(t *testing.T) {
	k := newKeys(t)
	now := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(k.jwks)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), k.jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	with := func(f func(c jwt.MapClaims)) jwt.MapClaims {
		c := baseClaims(now)
		f(c)
		return c
	}
	valid := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", baseClaims(now))
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+issuer+`","aud":"`+audience+`","sub":"mdt-1","exp":`+
		big.NewInt(now.Add(time.Hour).Unix()).String()+`}`)) + "." + parts[2]
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	// HS256 keyed with the public key's bytes: the classic algorithm
	// confusion attack.
	pubDER, _ := x509.MarshalPKIXPublicKey(k.rsa.Public())
	hsConfused := sign(t, jwt.SigningMethodHS256, pubDER, "rsa-1", baseClaims(now))

	tests := []struct {
		name    string
		token   string
		header  string // raw Authorization header when set
		wantErr bool
		scopes  []string
	}{
		{name: "ValidRS256", token: valid, scopes: []string{"system/*.read", "system/ServiceRequest.write"}},
		{name: "ValidES256", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", baseClaims(now)), scopes: []string{"system/*.read", "system/ServiceRequest.write"}},
		{name: "ValidNoKid", token: sign(t, jwt.SigningMethodES256, k.ec, "", baseClaims(now)), scopes: []string{"system/*.read", "system/ServiceRequest.write"}},
		{name: "ScopeNarrows", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["scope"] = "system/*.read system/*.write" })), scopes: []string{"system/*.read"}},
		// A token carries its granted scopes: none is refused, not given
		// every registered scope.
		{name: "NoScopeClaim", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { delete(c, "scope") })), wantErr: true},
		{name: "BlankScopeClaim", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["scope"] = " " })), wantErr: true},
		{name: "ScopeNoneRegistered", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["scope"] = "system/*.write system/*.cruds" })), scopes: nil},
		{name: "ScopeRepeated", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["scope"] = "system/*.read  system/*.read" })), scopes: []string{"system/*.read"}},
		{name: "SkewWithinLeeway", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() })), scopes: []string{"system/*.read", "system/ServiceRequest.write"}},
		{name: "Expired", token: sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), wantErr: true},
		{name: "NoExpiry", token: sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", with(func(c jwt.MapClaims) { delete(c, "exp") })), wantErr: true},
		{name: "NotYetValid", token: sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", with(func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() })), wantErr: true},
		{name: "IssuedInFuture", token: sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", with(func(c jwt.MapClaims) { c["iat"] = now.Add(5 * time.Minute).Unix() })), wantErr: true},
		{name: "WrongAudience", token: sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", with(func(c jwt.MapClaims) { c["aud"] = "https://other.example.org" })), wantErr: true},
		{name: "WrongIssuer", token: sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.org" })), wantErr: true},
		{name: "UnknownClient", token: sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", with(func(c jwt.MapClaims) { c["sub"], c["client_id"] = "nobody", "nobody" })), wantErr: true},
		{name: "AlgNone", token: unsigned, wantErr: true},
		{name: "HS256WithPublicKey", token: hsConfused, wantErr: true},
		{name: "TamperedPayload", token: tampered, wantErr: true},
		{name: "UnknownKid", token: sign(t, jwt.SigningMethodES256, k.stranger, "ec-9", baseClaims(now)), wantErr: true},
		{name: "UntrustedKeyKnownKid", token: sign(t, jwt.SigningMethodES256, k.stranger, "ec-1", baseClaims(now)), wantErr: true},
		{name: "RSAKeyClaimsES256", token: func() string { // header says ES256 with the RSA kid
			s := sign(t, jwt.SigningMethodES256, k.ec, "rsa-1", baseClaims(now))
			return s
		}(), wantErr: true},
		{name: "Garbage", token: "not.a.jwt", wantErr: true},
		// RFC 7515 §4.1.11: a crit extension the server does not
		// understand (it understands none) makes the token invalid.
		{name: "CritHeader", token: func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, baseClaims(now))
			tok.Header["kid"], tok.Header["crit"], tok.Header["exp-policy"] = "ec-1", []string{"exp-policy"}, "lenient"
			s, err := tok.SignedString(k.ec)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), wantErr: true},
		// NumericDate claims are JSON numbers (RFC 7519 §2), not strings.
		{name: "ExpAsString", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) })), wantErr: true},
		{name: "NbfAsString", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["nbf"] = fmt.Sprint(now.Add(-time.Minute).Unix()) })), wantErr: true},
		{name: "IatAsString", token: sign(t, jwt.SigningMethodES256, k.ec, "ec-1", with(func(c jwt.MapClaims) { c["iat"] = fmt.Sprint(now.Unix()) })), wantErr: true},
		{name: "NoCredentials", wantErr: true},
		{name: "BasicAuth", header: "Basic Z3AtYTpzZWNyZXQ=", wantErr: true},
	}
	for _, src := range []struct {
		name string
		set  func(c *auth.Config)
	}{
		{"JWKSURL", func(c *auth.Config) { c.JWKSURL = srv.URL }},
		{"JWKSFile", func(c *auth.Config) { c.JWKSFile = filepath.Join(dir, "jwks.json") }},
	} {
		t.Run(src.name, func(t *testing.T) {
			cfg := testConfig()
			src.set(cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			a, err := auth.New(ctx, cfg, logger, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := request(tt.token)
					if tt.header != "" {
						r.Header.Set("Authorization", tt.header)
					}
					p, err := a.Authenticate(r)
					if tt.wantErr {
						if linkbridge.ErrorCode(err) != linkbridge.EUNAUTHORIZED {
							t.Fatalf("Authenticate = %+v, %v; want EUNAUTHORIZED", p, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("Authenticate: %v (reason %v)", err, auth.Reason(err))
					}
					if p.ClientID != "gp-a" || p.Role != linkbridge.RoleGP || p.ODS != "A81001" || p.Method != "jwt" {
						t.Errorf("principal = %+v", p)
					}
					if !slices.Equal(p.Scopes, tt.scopes) {
						t.Errorf("scopes = %v, want %v", p.Scopes, tt.scopes)
					}
				})
			}
		})
	}
}

// TestClientCertificate maps a verified client certificate to its client by
// fingerprint or subject; an unregistered certificate is refused.
func TestClientCertificate(t *testing.T) {
	cert := func(cn string) *x509.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"NHS"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	byPrint, bySubject, stranger := cert("gp-a"), cert("mdt-1"), cert("stranger")
	cfg := testConfig()
	cfg.Clients[0].CertSHA256 = strings.ToUpper(auth.CertFingerprint(byPrint))
	cfg.Clients[1].CertSubject = "CN=mdt-1,O=NHS"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		want string
	}{{"Fingerprint", byPrint, "gp-a"}, {"Subject", bySubject, "mdt-1"}, {"Unregistered", stranger, ""}} {
		t.Run(tt.name, func(t *testing.T) {
			r := request("")
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tt.cert}, VerifiedChains: [][]*x509.Certificate{{tt.cert}}}
			p, err := a.Authenticate(r)
			if tt.want == "" {
				if linkbridge.ErrorCode(err) != linkbridge.EUNAUTHORIZED {
					t.Fatalf("Authenticate = %+v, %v; want EUNAUTHORIZED", p, err)
				}
				return
			}
			if err != nil || p.ClientID != tt.want || p.Method != "mtls" {
				t.Fatalf("Authenticate = %+v, %v; want %s by mtls", p, err, tt.want)
			}
		})
	}
}

// TestConfigValidate refuses registries that would grant too much or
// nothing sensible.
func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(c *auth.Config)
		want string
	}{
		{"BothKeySources", func(c *auth.Config) { c.JWKSFile, c.JWKSURL = "a", "b" }, "not both"},
		{"NoIssuer", func(c *auth.Config) { c.JWKSURL, c.Issuer = "https://x", "" }, "issuer"},
		{"NoClients", func(c *auth.Config) { c.Clients = nil }, "no clients"},
		{"DuplicateClient", func(c *auth.Config) { c.Clients[1].ID = "gp-a" }, "twice"},
		{"BadRole", func(c *auth.Config) { c.Clients[0].Role = "root" }, "role"},
		{"MDTWithoutPractices", func(c *auth.Config) { c.Clients[1].Practices = nil }, "practices"},
		{"BadODS", func(c *auth.Config) { c.Clients[0].ODS = "A8-1001" }, "ods"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.edit(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// TestDevKeys mints a token with the development key and checks the
// development registry accepts it.
func TestDevKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	d, err := auth.EnsureDevKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem mode = %v, %v; want 0600", fi.Mode(), err)
	}
	tok, err := d.Mint("dev-sp", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A second EnsureDevKeys keeps the key: the token still verifies.
	d2, err := auth.EnsureDevKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := auth.LoadConfig(d2.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(request(tok))
	if err != nil || p.Role != linkbridge.RoleService || p.ODS != "Y02662" {
		t.Fatalf("Authenticate(dev token) = %+v, %v (reason %v)", p, err, auth.Reason(err))
	}
	// Without --scope the token carries the client's registered scopes;
	// with one, only those asked for.
	if want := []string{"system/*.read", "system/Task.write", "system/Subscription.write"}; !slices.Equal(p.Scopes, want) {
		t.Errorf("dev token scopes = %v, want %v", p.Scopes, want)
	}
	tok, err = d2.Mint("dev-sp", "system/*.read", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = a.Authenticate(request(tok)); err != nil || !slices.Equal(p.Scopes, []string{"system/*.read"}) {
		t.Fatalf("Authenticate(narrowed dev token) = %+v, %v", p, err)
	}
	if _, err := d2.Mint("nobody", "", time.Hour); err == nil {
		t.Error("Mint for an unregistered client without scopes succeeded")
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
