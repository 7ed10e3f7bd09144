package gpfhir

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// SignedJWTAuth is OAuth2 client credentials with a signed JWT client
// assertion (RFC 7523 private_key_jwt), as in SMART Backend Services and
// the NHS "signed JWT" application-restricted pattern: each token request
// carries a fresh short-lived assertion (iss = sub = client id, aud = token
// URL, jti, exp ≤ 5 min) signed with the client's RS384/ES384 key. Tokens
// are cached until shortly before they expire (oauth2.ReuseTokenSource), or
// until the endpoint refuses one (Invalidate: it is a TokenRefresher).
type SignedJWTAuth struct {
	src oauth2.TokenSource // a new token on every call

	mu sync.Mutex
	ts oauth2.TokenSource // src behind a cache; replaced to drop the cached token
}

// SignedJWTConfig configures SignedJWTAuth.
type SignedJWTConfig struct {
	TokenURL string
	ClientID string
	// KeyID is the "kid" header naming the key in the client's JWKS.
	KeyID string
	// Key is an *rsa.PrivateKey (RS384) or *ecdsa.PrivateKey (ES384).
	Key    crypto.Signer
	Scopes []string
	// HTTPClient is used for token requests (e.g. with mutual TLS).
	HTTPClient *http.Client
}

// NewSignedJWTAuth builds the Authorizer.
func NewSignedJWTAuth(cfg SignedJWTConfig) (*SignedJWTAuth, error) {
	if cfg.TokenURL == "" || cfg.ClientID == "" || cfg.Key == nil {
		return nil, errors.New("gpfhir: signed JWT auth needs a token URL, a client id and a key")
	}
	var method jwt.SigningMethod
	switch cfg.Key.(type) {
	case *rsa.PrivateKey:
		method = jwt.SigningMethodRS384
	case *ecdsa.PrivateKey:
		method = jwt.SigningMethodES384
	default:
		return nil, fmt.Errorf("gpfhir: unsupported key type %T (RSA or ECDSA)", cfg.Key)
	}
	src := &assertionSource{cfg: cfg, method: method}
	return &SignedJWTAuth{src: src, ts: oauth2.ReuseTokenSource(nil, src)}, nil
}

var _ TokenRefresher = (*SignedJWTAuth)(nil)

// source returns the current caching token source.
func (a *SignedJWTAuth) source() oauth2.TokenSource {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ts
}

// Authorize sets the bearer token, fetching a new one when needed.
func (a *SignedJWTAuth) Authorize(_ context.Context, req *http.Request) error {
	tok, err := a.source().Token()
	if err != nil {
		return fmt.Errorf("gpfhir: token: %w", err)
	}
	tok.SetAuthHeader(req)
	return nil
}

// Invalidate drops the cached token if refused carried it, so that the next
// Authorize fetches a new one. Several requests refused with one token
// (sent before the first refusal was seen) drop it once: a request whose
// token was already replaced changes nothing.
func (a *SignedJWTAuth) Invalidate(refused *http.Request) {
	ts := a.source()
	// The cache hands out its token without a request while it is valid.
	tok, err := ts.Token()
	if err != nil || refused.Header.Get("Authorization") != tok.Type()+" "+tok.AccessToken {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ts == ts {
		a.ts = oauth2.ReuseTokenSource(nil, a.src)
	}
}

// assertionSource asks the token endpoint for a token with a new assertion.
type assertionSource struct {
	cfg    SignedJWTConfig
	method jwt.SigningMethod
}

func (s *assertionSource) Token() (*oauth2.Token, error) {
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Issuer:    s.cfg.ClientID,
		Subject:   s.cfg.ClientID,
		Audience:  jwt.ClaimStrings{s.cfg.TokenURL},
		ID:        randomID(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}
	tok := jwt.NewWithClaims(s.method, claims)
	if s.cfg.KeyID != "" {
		tok.Header["kid"] = s.cfg.KeyID
	}
	assertion, err := tok.SignedString(s.cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("sign client assertion: %w", err)
	}
	cc := clientcredentials.Config{
		TokenURL:  s.cfg.TokenURL,
		Scopes:    s.cfg.Scopes,
		AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {assertion},
		},
	}
	ctx := context.Background()
	if s.cfg.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient)
	}
	return cc.Token(ctx)
}

// LoadPrivateKey reads a PEM private key (PKCS#8, PKCS#1 or SEC 1).
func LoadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported private key format")
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}
