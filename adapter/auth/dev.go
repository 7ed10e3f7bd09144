package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/linkbridge/linkbridge"
)

// Local development keys: `linkbridge token` and `serve --dev-auth` share a
// directory (DefaultDevDir) holding an ES256 key, its JWKS and a client
// registry with one client per role. Never use them outside a laptop.
const (
	// DefaultDevDir is where development keys are kept.
	DefaultDevDir = ".linkbridge-dev"
	// DevIssuer and DevAudience are the dev tokens' iss and aud.
	DevIssuer   = "https://linkbridge.invalid/dev-issuer"
	DevAudience = "linkbridge-dev"
	devKID      = "linkbridge-dev-1"
)

// DevClients is the development client registry: one client per role,
// matching the README examples (GP practice A81001 refers to the service
// Y02662; the MDT viewer reads A81001 and A81002; the other fixtures'
// practices have a client each).
func DevClients() []Client {
	return []Client{
		{ID: "dev-gp", Role: linkbridge.RoleGP, ODS: "A81001",
			Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write", "system/Subscription.write"}},
		{ID: "dev-gp-other", Role: linkbridge.RoleGP, ODS: "B82002",
			Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write"}},
		// The practices of the other referral fixtures under testdata/.
		{ID: "dev-gp-f84003", Role: linkbridge.RoleGP, ODS: "F84003",
			Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write"}},
		{ID: "dev-gp-m85063", Role: linkbridge.RoleGP, ODS: "M85063",
			Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write"}},
		{ID: "dev-gp-c82010", Role: linkbridge.RoleGP, ODS: "C82010",
			Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write"}},
		{ID: "dev-sp", Role: linkbridge.RoleService, ODS: "Y02662",
			Scopes: []string{"system/*.read", "system/Task.write", "system/Subscription.write"}},
		{ID: "dev-mdt", Role: linkbridge.RoleMDT, ODS: "U12345", Practices: []string{"A81001", "A81002"},
			Scopes: []string{"system/*.read", "system/Subscription.write"}},
		{ID: "dev-admin", Role: linkbridge.RoleAdmin, ODS: "Y02662",
			Scopes: []string{"system/AuditEvent.read"}},
	}
}

// DevKeys is a development signing key and the config that trusts it.
type DevKeys struct {
	// Dir holds key.pem (0600), jwks.json and auth.json.
	Dir string
	key *ecdsa.PrivateKey
}

// ConfigPath is the dev client registry file.
func (d *DevKeys) ConfigPath() string { return filepath.Join(d.Dir, "auth.json") }

// EnsureDevKeys loads the development key in dir, creating the directory
// (0700), key (0600), JWKS and client registry when missing.
func EnsureDevKeys(dir string) (*DevKeys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: dev keys: %w", err)
	}
	d := &DevKeys{Dir: dir}
	keyPath := filepath.Join(dir, "key.pem")
	raw, err := os.ReadFile(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if d.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(d.key)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("auth: dev keys: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("auth: dev keys: %w", err)
	default:
		blk, _ := pem.Decode(raw)
		if blk == nil {
			return nil, fmt.Errorf("auth: dev keys: %s is not PEM", keyPath)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: dev keys: %w", err)
		}
		var ok bool
		if d.key, ok = k.(*ecdsa.PrivateKey); !ok {
			return nil, fmt.Errorf("auth: dev keys: %s is not an EC key", keyPath)
		}
	}
	jwks, err := JWKS(d.key.Public(), devKID, jwkset.AlgES256)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o644); err != nil {
		return nil, fmt.Errorf("auth: dev keys: %w", err)
	}
	// The registry is written once: a developer may edit it.
	if _, err := os.Stat(d.ConfigPath()); errors.Is(err, fs.ErrNotExist) {
		cfg, err := json.MarshalIndent(Config{Issuer: DevIssuer, Audience: []string{DevAudience}, JWKSFile: "jwks.json", Clients: DevClients()}, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(d.ConfigPath(), append(cfg, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("auth: dev keys: %w", err)
		}
	}
	return d, nil
}

// JWKS renders a public key as a JSON Web Key Set with one key.
func JWKS(pub crypto.PublicKey, kid string, alg jwkset.ALG) ([]byte, error) {
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
	if err != nil {
		return nil, fmt.Errorf("auth: jwks: %w", err)
	}
	return json.MarshalIndent(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}}, "", "  ")
}

// Mint signs a development token for a client: ES256, the dev issuer and
// audience, valid for ttl, with the given scopes in its scope claim (when
// empty, the client's registered scopes, read from the dev registry).
func (d *DevKeys) Mint(clientID string, scopes string, ttl time.Duration) (string, error) {
	if strings.TrimSpace(scopes) == "" {
		cfg, err := LoadConfig(d.ConfigPath())
		if err != nil {
			return "", err
		}
		i := slices.IndexFunc(cfg.Clients, func(c Client) bool { return c.ID == clientID })
		if i < 0 || len(cfg.Clients[i].Scopes) == 0 {
			return "", fmt.Errorf("auth: client %q has no scopes in %s", clientID, d.ConfigPath())
		}
		scopes = strings.Join(cfg.Clients[i].Scopes, " ")
	}
	now := time.Now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: DevIssuer, Subject: clientID, Audience: jwt.ClaimStrings{DevAudience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		ClientID: clientID,
		Scope:    scopes,
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = devKID
	return t.SignedString(d.key)
}
