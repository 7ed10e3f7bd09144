// Package auth authenticates callers of the gateway: OAuth2 bearer JWTs in
// the SMART Backend Services style (RS256 or ES256, checked against a JWKS
// file or URL: signature, issuer, audience, expiry, not-before) and, when
// serving TLS, client certificates. Both map to a registered client — an
// organisation (ODS code) and a role — and yield a linkbridge.Principal.
//
// JWT parsing and signature checks are golang-jwt/jwt/v5's; JWKS loading,
// key selection by kid and refreshing a remote set are
// MicahParks/keyfunc/v3's (built on golang-jwt, small, maintained). No
// cryptography is written here.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/linkbridge/linkbridge"
)

// Algorithms are the only JWS algorithms accepted: "none", HMAC and
// everything else are refused before any key is looked up.
var Algorithms = []string{"RS256", "ES256"}

// DefaultLeeway is the clock skew allowed on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// Config is the client registry and token settings, read from a JSON file
// (see LoadConfig and the README's Security section).
type Config struct {
	// Issuer is the required iss claim.
	Issuer string `json:"issuer"`
	// Audience lists accepted aud values (a token must name one of them),
	// usually the gateway's FHIR base URL.
	Audience []string `json:"audience"`
	// JWKSFile or JWKSURL is the JSON Web Key Set that signs tokens. A
	// relative JWKSFile is relative to the config file.
	JWKSFile string `json:"jwksFile,omitempty"`
	JWKSURL  string `json:"jwksUrl,omitempty"`
	// LeewaySeconds is the allowed clock skew (default 30).
	LeewaySeconds int `json:"leewaySeconds,omitempty"`
	// Clients are the registered clients.
	Clients []Client `json:"clients"`
}

// Client is one registered client.
type Client struct {
	// ID is matched with the token's client_id claim, or sub when there is
	// no client_id.
	ID string `json:"id"`
	// Role is gp, sp-service, mdt or admin.
	Role linkbridge.Role `json:"role"`
	// ODS is the client organisation's ODS code.
	ODS string `json:"ods"`
	// Practices are the practices an mdt client reads (required for mdt).
	Practices []string `json:"practices,omitempty"`
	// Scopes are the most the client may be granted: a token's scope claim
	// (required) narrows them; a client certificate gets them all.
	Scopes []string `json:"scopes"`
	// CertSHA256 (hex SHA-256 of the DER certificate) or CertSubject (the
	// certificate subject, e.g. "CN=emis-a81001,O=NHS") maps a verified TLS
	// client certificate to this client.
	CertSHA256  string `json:"certSha256,omitempty"`
	CertSubject string `json:"certSubject,omitempty"`
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	if c.JWKSFile != "" && !filepath.IsAbs(c.JWKSFile) {
		c.JWKSFile = filepath.Join(filepath.Dir(path), c.JWKSFile)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return &c, nil
}

// Validate checks the config: issuer, audience and exactly one key source
// when any client authenticates by token; every client with a unique id, a
// known role, valid ODS codes, practices for mdt.
func (c *Config) Validate() error {
	if c.JWKSFile != "" && c.JWKSURL != "" {
		return errors.New("set jwksFile or jwksUrl, not both")
	}
	if c.JWKSFile != "" || c.JWKSURL != "" {
		if c.Issuer == "" || len(c.Audience) == 0 {
			return errors.New("issuer and audience are required to check tokens")
		}
	}
	if len(c.Clients) == 0 {
		return errors.New("no clients registered")
	}
	seen := map[string]bool{}
	for i := range c.Clients {
		cl := &c.Clients[i]
		switch {
		case cl.ID == "":
			return fmt.Errorf("client %d has no id", i)
		case seen[cl.ID]:
			return fmt.Errorf("client %q is registered twice", cl.ID)
		case !cl.Role.Valid():
			return fmt.Errorf("client %q: role %q is not gp, sp-service, mdt or admin", cl.ID, cl.Role)
		case cl.Role == linkbridge.RoleMDT && len(cl.Practices) == 0:
			return fmt.Errorf("client %q: an mdt client needs practices", cl.ID)
		}
		seen[cl.ID] = true
		ods, err := linkbridge.NormalizeODSCode(cl.ODS)
		if err != nil {
			return fmt.Errorf("client %q: ods: %s", cl.ID, linkbridge.ErrorMessage(err))
		}
		cl.ODS = ods
		for j, p := range cl.Practices {
			if cl.Practices[j], err = linkbridge.NormalizeODSCode(p); err != nil {
				return fmt.Errorf("client %q: practice: %s", cl.ID, linkbridge.ErrorMessage(err))
			}
		}
		cl.CertSHA256 = strings.ToLower(strings.ReplaceAll(cl.CertSHA256, ":", ""))
	}
	return nil
}

// Authenticator authenticates requests against a Config.
type Authenticator struct {
	clients map[string]*Client
	byCert  map[string]*Client
	bySubj  map[string]*Client
	keys    keyfunc.Keyfunc
	parser  *jwt.Parser
}

// New builds an Authenticator. With a JWKS URL the key set is fetched now
// and refreshed hourly (and on an unknown kid, at most every 5 minutes)
// until ctx ends. now, if not nil, is the clock tokens are checked against.
func New(ctx context.Context, c *Config, logger *slog.Logger, now func() time.Time) (*Authenticator, error) {
	a := &Authenticator{clients: map[string]*Client{}, byCert: map[string]*Client{}, bySubj: map[string]*Client{}}
	for i := range c.Clients {
		cl := &c.Clients[i]
		a.clients[cl.ID] = cl
		if cl.CertSHA256 != "" {
			a.byCert[cl.CertSHA256] = cl
		}
		if cl.CertSubject != "" {
			a.bySubj[cl.CertSubject] = cl
		}
	}
	var err error
	switch {
	case c.JWKSFile != "":
		var raw []byte
		if raw, err = os.ReadFile(c.JWKSFile); err != nil {
			return nil, fmt.Errorf("auth: jwks: %w", err)
		}
		a.keys, err = keyfunc.NewJWKSetJSON(raw)
	case c.JWKSURL != "":
		a.keys, err = keyfunc.NewDefaultOverrideCtx(ctx, []string{c.JWKSURL}, keyfunc.Override{
			HTTPTimeout: 10 * time.Second,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					logger.WarnContext(ctx, "JWKS refresh failed", slog.String("url", u), slog.Any("error", err))
				}
			},
		})
	}
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	leeway := DefaultLeeway
	if c.LeewaySeconds > 0 {
		leeway = time.Duration(c.LeewaySeconds) * time.Second
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(Algorithms), jwt.WithIssuer(c.Issuer), jwt.WithAudience(c.Audience...),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(leeway), jwt.WithStrictDecoding(),
	}
	if now != nil {
		opts = append(opts, jwt.WithTimeFunc(now))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

// claims are the JWT claims read.
type claims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id,omitempty"`
	// Scope is the OAuth2 space-separated scope string.
	Scope string `json:"scope,omitempty"`
}

// unauthorized is the one error a caller sees for bad credentials: why a
// token failed is logged by the caller, not sent.
func unauthorized(msg string) error {
	return linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "%s", msg)
}

// Authenticate returns the principal of a request: from its bearer token,
// else from its verified TLS client certificate. Missing or bad credentials
// are EUNAUTHORIZED; the error's chain holds the reason for logs
// (Reason).
func (a *Authenticator) Authenticate(r *http.Request) (*linkbridge.Principal, error) {
	h := r.Header.Get("Authorization")
	if h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return nil, unauthorized("the Authorization header must be a Bearer token")
		}
		return a.fromToken(r.Context(), strings.TrimSpace(tok))
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
		return a.fromCert(r.TLS.PeerCertificates[0])
	}
	return nil, unauthorized("authentication required: send a Bearer token")
}

// reasonError keeps the reason a credential failed for the logs, while the
// caller sees only the EUNAUTHORIZED message.
type reasonError struct {
	err    *linkbridge.Error
	reason error
}

func (e *reasonError) Error() string { return e.err.Error() + ": " + e.reason.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// Reason returns why authentication failed, for logs, or nil.
func Reason(err error) error {
	var re *reasonError
	if errors.As(err, &re) {
		return re.reason
	}
	return nil
}

func (a *Authenticator) fromToken(ctx context.Context, tok string) (*linkbridge.Principal, error) {
	if a.keys == nil {
		return nil, unauthorized("bearer tokens are not accepted by this server")
	}
	var c claims
	parsed, err := a.parser.ParseWithClaims(tok, &c, a.keys.KeyfuncCtx(ctx))
	if err != nil {
		return nil, &reasonError{err: linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "invalid bearer token"), reason: err}
	}
	if err := strictToken(parsed); err != nil {
		return nil, &reasonError{err: linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "invalid bearer token"), reason: err}
	}
	id := c.ClientID
	if id == "" {
		id = c.Subject
	}
	cl, ok := a.clients[id]
	if !ok {
		return nil, &reasonError{err: linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "invalid bearer token"), reason: errors.New("the token names a client that is not registered")} // the unregistered name is the caller's choice: never logged
	}
	// A SMART Backend Services access token carries the scopes it was
	// granted. One without a scope claim is refused rather than given every
	// registered scope: the registration is the ceiling, the token says
	// what this access is for.
	if strings.TrimSpace(c.Scope) == "" {
		return nil, &reasonError{err: linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "invalid bearer token"), reason: fmt.Errorf("client %q: the token has no scope claim", id)}
	}
	var scopes []string
	for _, s := range strings.Fields(c.Scope) {
		if slices.Contains(cl.Scopes, s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return principal(cl, scopes, "jwt"), nil
}

// strictToken refuses what the JWT library lets through but this server
// does not understand or accept: a "crit" header (RFC 7515 §4.1.11: a
// recipient that does not understand every listed extension must reject
// the token, and this one understands none), and an exp, nbf or iat that is
// not a JSON number (RFC 7519 §2 NumericDate; the library also accepts a
// numeric string).
func strictToken(t *jwt.Token) error {
	if _, ok := t.Header["crit"]; ok {
		return errors.New(`the token has a "crit" header`)
	}
	parts := strings.Split(t.Raw, ".")
	if len(parts) != 3 {
		return errors.New("the token is not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("the token payload is not base64url: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(payload, &raw); err != nil {
		return fmt.Errorf("the token payload is not a JSON object: %w", err)
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		v, ok := raw[name]
		if !ok {
			continue
		}
		if len(v) == 0 || !(v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
			return fmt.Errorf("the token's %s claim is not a number", name)
		}
	}
	return nil
}

// CertFingerprint is the hex SHA-256 of a certificate's DER encoding, as
// Client.CertSHA256 holds it.
func CertFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

func (a *Authenticator) fromCert(cert *x509.Certificate) (*linkbridge.Principal, error) {
	cl, ok := a.byCert[CertFingerprint(cert)]
	if !ok {
		cl, ok = a.bySubj[cert.Subject.String()]
	}
	if !ok {
		return nil, &reasonError{err: linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "the client certificate is not registered"), reason: fmt.Errorf("certificate %s", CertFingerprint(cert))}
	}
	return principal(cl, cl.Scopes, "mtls"), nil
}

// Principal returns the principal of a registered client, as a browser
// session signed in with its credentials resumes it (adapter/mdtweb): with
// scopes limited to those registered (nil: all of them) and the given
// method. False when the client is not registered, so that a client taken
// out of the registry loses its sessions at once.
func (a *Authenticator) Principal(clientID string, scopes []string, method string) (*linkbridge.Principal, bool) {
	cl, ok := a.clients[clientID]
	if !ok {
		return nil, false
	}
	granted := cl.Scopes
	if scopes != nil {
		granted = nil
		for _, s := range scopes {
			if slices.Contains(cl.Scopes, s) && !slices.Contains(granted, s) {
				granted = append(granted, s)
			}
		}
	}
	return principal(cl, granted, method), true
}

func principal(cl *Client, scopes []string, method string) *linkbridge.Principal {
	return &linkbridge.Principal{ClientID: cl.ID, Role: cl.Role, ODS: cl.ODS, Practices: slices.Clone(cl.Practices),
		Scopes: slices.Clone(scopes), Method: method}
}
