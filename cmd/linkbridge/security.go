package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/auth"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/mdtweb"
)

// SecurityConfig is how serve authenticates callers, limits them and
// serves TLS.
type SecurityConfig struct {
	// AuthConfig is the client registry and token settings file
	// (adapter/auth.Config); required unless Dev or DevAuth.
	AuthConfig string
	// Dev turns authentication off; only on a loopback address.
	Dev bool
	// DevAuth turns authentication on with the development key and clients
	// kept in DevDir (see `linkbridge token`); only on a loopback address.
	DevAuth bool
	DevDir  string
	// RateLimit is each client's sustained rate (requests/s, 0: none) and
	// RateBurst its burst.
	RateLimit float64
	RateBurst int
	// TLSCert and TLSKey serve HTTPS (TLS 1.2+); TLSClientCA verifies client
	// certificates for mutual TLS, mapped to clients by the registry.
	TLSCert, TLSKey, TLSClientCA string
	// MaxHeaderBytes limits request headers.
	MaxHeaderBytes int
	// SessionKeyFile holds the key that signs the MDT pages' session
	// cookies (at least 32 bytes; the same file on every replica).
	SessionKeyFile string
	// SessionTTL is how long a browser sign-in to the MDT pages lasts.
	SessionTTL time.Duration
}

// securityFlags adds the security flags to fs.
func securityFlags(fs *flag.FlagSet, c *SecurityConfig, env func(name, def string) string) {
	fs.StringVar(&c.AuthConfig, "auth-config", env("AUTH_CONFIG", ""), "client registry and token settings (JSON); required unless --dev or --dev-auth (LINKBRIDGE_AUTH_CONFIG)")
	fs.BoolVar(&c.Dev, "dev", env("DEV", "") == "true", "local development: authentication OFF; refused unless --addr is a loopback address (LINKBRIDGE_DEV)")
	fs.BoolVar(&c.DevAuth, "dev-auth", env("DEV_AUTH", "") == "true", "local development with authentication on: trust the key `linkbridge token` mints with; loopback only (LINKBRIDGE_DEV_AUTH)")
	fs.StringVar(&c.DevDir, "dev-dir", env("DEV_DIR", auth.DefaultDevDir), "directory of the development key and clients (LINKBRIDGE_DEV_DIR)")
	fs.Float64Var(&c.RateLimit, "rate-limit", envFloat(env("RATE_LIMIT", "50")), "requests per second per client (per address before authentication; off with --dev), 0 for none; over it 429 + Retry-After (LINKBRIDGE_RATE_LIMIT)")
	fs.IntVar(&c.RateBurst, "rate-burst", int(envFloat(env("RATE_BURST", "100"))), "burst per client (LINKBRIDGE_RATE_BURST)")
	fs.StringVar(&c.TLSCert, "tls-cert", env("TLS_CERT", ""), "serve HTTPS (TLS 1.2+) with this certificate (PEM) (LINKBRIDGE_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("TLS_KEY", ""), "private key (PEM) of --tls-cert (LINKBRIDGE_TLS_KEY)")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", env("TLS_CLIENT_CA", ""), "CA (PEM) that signs client certificates for mutual TLS (LINKBRIDGE_TLS_CLIENT_CA)")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", 64<<10, "request header limit in bytes")
	fs.StringVar(&c.SessionKeyFile, "session-key", env("SESSION_KEY", ""), "file holding the key (at least 32 bytes) that signs the MDT pages' sign-in cookies, the same on every replica; default with --dev-auth: session.key in --dev-dir, else a key of this process only (LINKBRIDGE_SESSION_KEY)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", envDur(env("SESSION_TTL", ""), mdtweb.DefaultSessionTTL), "how long a sign-in to the MDT pages lasts (LINKBRIDGE_SESSION_TTL)")
}

func envDur(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && s != "" {
		return d
	}
	return def
}

// minSessionKey is the shortest session key accepted: 256 bits.
const minSessionKey = 32

// sessionKey returns the key that signs the MDT pages' session cookies:
// --session-key's file; with --dev-auth, session.key in the development
// directory (created, 0600); else a random key of this process, with a
// warning (sign-ins then last until a restart and reach no other
// replica).
func sessionKey(c *SecurityConfig, logger *slog.Logger) ([]byte, error) {
	path := c.SessionKeyFile
	if path == "" && c.DevAuth {
		path = filepath.Join(c.DevDir, "session.key")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			key := make([]byte, minSessionKey)
			_, _ = rand.Read(key)
			if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("session key: %w", err)
			}
		}
	}
	if path == "" {
		key := make([]byte, minSessionKey)
		_, _ = rand.Read(key)
		if !c.Dev {
			logger.Warn("no --session-key: MDT page sign-ins last until this process stops and reach no other replica")
		}
		return key, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--session-key: %w", err)
	}
	key := bytes.TrimSpace(raw)
	if len(key) < minSessionKey {
		return nil, fmt.Errorf("--session-key: %s holds %d bytes, fewer than %d (make one with: head -c 32 /dev/urandom | xxd -p -c 64 > FILE)", path, len(key), minSessionKey)
	}
	return key, nil
}

func envFloat(s string) float64 {
	var f float64
	_, _ = fmt.Sscan(s, &f)
	return f
}

// Validate checks the security configuration.
func (c *SecurityConfig) Validate() error {
	n := 0
	for _, on := range []bool{c.AuthConfig != "", c.Dev, c.DevAuth} {
		if on {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("authentication is required: --auth-config FILE (see README, Security), or --dev / --dev-auth for local development on a loopback address")
	case n > 1:
		return errors.New("--auth-config, --dev and --dev-auth are alternatives")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case c.RateLimit < 0 || c.RateBurst < 0:
		return errors.New("--rate-limit and --rate-burst must not be negative")
	case c.MaxHeaderBytes < 4096:
		return errors.New("--max-header-bytes must be at least 4096")
	case c.SessionTTL <= 0:
		return errors.New("--session-ttl must be positive")
	}
	return nil
}

// isLoopback reports whether a listener's address is a loopback address.
func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP != nil && ta.IP.IsLoopback()
}

// setupSecurity configures the API's authentication, audit and rate limits
// once the listener is bound: --dev and --dev-auth are refused unless it is
// a loopback address. It returns the TLS config when serving TLS.
func setupSecurity(ctx context.Context, c *SecurityConfig, api *httpapi.Server, store any, ln net.Listener, logger *slog.Logger) (*tls.Config, error) {
	if (c.Dev || c.DevAuth) && !isLoopback(ln.Addr()) {
		return nil, fmt.Errorf("--dev and --dev-auth serve only on a loopback address, not %s: use --auth-config", ln.Addr())
	}
	audit, ok := store.(linkbridge.AuditStore)
	if !ok {
		return nil, errors.New("this store keeps no audit trail: it cannot serve personal data")
	}
	api.Audit = audit
	api.RateLimit, api.RateBurst = c.RateLimit, c.RateBurst
	if c.Dev {
		// No clients to tell apart, nothing to guess: local load tests and
		// demos run unthrottled.
		api.RateLimit = 0
	}
	cfgPath := c.AuthConfig
	switch {
	case c.Dev:
		logger.Warn("DEVELOPMENT MODE: AUTHENTICATION IS OFF. Anyone who can reach " + ln.Addr().String() +
			" reads and changes every referral. Never use --dev with real data.")
	case c.DevAuth:
		d, err := auth.EnsureDevKeys(c.DevDir)
		if err != nil {
			return nil, err
		}
		cfgPath = d.ConfigPath()
		logger.Warn("development authentication: tokens from `linkbridge token` are accepted (development key in " + c.DevDir + "); never use with real data")
	}
	if cfgPath != "" {
		cfg, err := auth.LoadConfig(cfgPath)
		if err != nil {
			return nil, err
		}
		a, err := auth.New(ctx, cfg, logger, nil)
		if err != nil {
			return nil, err
		}
		api.Auth = a
		logger.Info("authentication on", slog.Int("clients", len(cfg.Clients)), slog.String("issuer", cfg.Issuer))
	}
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if c.TLSClientCA != "" {
		pem, err := os.ReadFile(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("--tls-client-ca: no certificates found")
		}
		// A certificate is optional (bearer tokens still work) but, when
		// sent, must verify against the CA.
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// TokenCommand mints a development token: `linkbridge token [--client
// dev-gp]`. The token is signed with the development key in --dev-dir
// (created when missing), which `serve --dev-auth` trusts.
type TokenCommand struct {
	Getenv         func(string) string
	Stdout, Stderr interface{ Write([]byte) (int, error) }
}

// Run mints and prints one token.
func (c *TokenCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	dir := c.Getenv("LINKBRIDGE_DEV_DIR")
	if dir == "" {
		dir = auth.DefaultDevDir
	}
	fs.StringVar(&dir, "dev-dir", dir, "directory of the development key and clients (LINKBRIDGE_DEV_DIR)")
	client := fs.String("client", "dev-gp", "client to mint for: dev-gp (A81001), dev-gp-other (B82002), dev-gp-f84003, dev-gp-m85063, dev-gp-c82010, dev-sp (Y02662), dev-mdt (A81001, A81002), dev-admin")
	scope := fs.String("scope", "", "space-separated scopes to ask for (default: all the client's)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, err := auth.EnsureDevKeys(dir)
	if err != nil {
		return err
	}
	cfg, err := auth.LoadConfig(d.ConfigPath())
	if err != nil {
		return err
	}
	known := false
	for _, cl := range cfg.Clients {
		known = known || cl.ID == *client
	}
	if !known {
		return fmt.Errorf("client %q is not in %s", *client, d.ConfigPath())
	}
	tok, err := d.Mint(*client, *scope, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.Stdout, tok)
	return err
}
