package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
func securityFlags(fs *commandFlags, c *SecurityConfig) {
	fs.str(&c.AuthConfig, "auth-config", "AUTH_CONFIG", "", "client registry and token settings file (JSON), reloaded on SIGHUP; required unless --dev or --dev-auth")
	fs.boolean(&c.Dev, "dev", "DEV", false, "local development: authentication OFF; refused unless --addr is a loopback address")
	fs.boolean(&c.DevAuth, "dev-auth", "DEV_AUTH", false, "local development with authentication on: trust the development key that 'linkbridge token' signs with; loopback only")
	fs.str(&c.DevDir, "dev-dir", "DEV_DIR", auth.DefaultDevDir, "directory of the development key and clients")
	fs.number(&c.RateLimit, "rate-limit", "RATE_LIMIT", 50, "requests per second per client (per address before authentication; off with --dev), 0 for none; over it 429 + Retry-After")
	fs.integer(&c.RateBurst, "rate-burst", "RATE_BURST", 100, "burst per client")
	fs.str(&c.TLSCert, "tls-cert", "TLS_CERT", "", "serve HTTPS (TLS 1.2+) with this certificate (PEM)")
	fs.str(&c.TLSKey, "tls-key", "TLS_KEY", "", "private key (PEM) of --tls-cert")
	fs.str(&c.TLSClientCA, "tls-client-ca", "TLS_CLIENT_CA", "", "CA (PEM) that signs client certificates for mutual TLS")
	fs.integer(&c.MaxHeaderBytes, "max-header-bytes", "MAX_HEADER_BYTES", 64<<10, "request header limit in bytes")
	fs.str(&c.SessionKeyFile, "session-key", "SESSION_KEY", "", "file holding the key (at least 32 bytes) that signs the MDT pages' sign-in cookies, the same on every replica; default with --dev-auth: session.key in --dev-dir; else a key of this process")
	fs.duration(&c.SessionTTL, "session-ttl", "SESSION_TTL", mdtweb.DefaultSessionTTL, "how long a sign-in to the MDT pages lasts")
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

// reloadableAuth is the API's authenticator, replaced whole by reload
// (SIGHUP): requests in progress finish under the one they started with.
type reloadableAuth struct {
	path   string
	logger *slog.Logger
	// mu serialises reloads; cur is read by every request.
	mu     sync.Mutex
	cur    atomic.Pointer[auth.Authenticator]
	cancel context.CancelFunc // ends the current one's JWKS refresh
}

// Authenticate implements httpapi.Authenticator.
func (a *reloadableAuth) Authenticate(r *http.Request) (*linkbridge.Principal, error) {
	return a.cur.Load().Authenticate(r)
}

// Principal resumes a registered client's principal from the current
// registry (the MDT pages' sessions: mdtweb.Clients).
func (a *reloadableAuth) Principal(clientID string, scopes []string, method string) (*linkbridge.Principal, bool) {
	return a.cur.Load().Principal(clientID, scopes, method)
}

// load reads the client registry file and builds an authenticator over
// it (fetching a JWKS URL's key set now); on success it replaces the
// current one, on failure the current one stays and the error is
// returned. The authenticator's JWKS refresh runs until ctx ends or the
// next successful load.
func (a *reloadableAuth) load(ctx context.Context) (clients int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cfg, err := auth.LoadConfig(a.path)
	if err != nil {
		return 0, err
	}
	actx, cancel := context.WithCancel(ctx)
	next, err := auth.New(actx, cfg, a.logger, nil)
	if err != nil {
		cancel()
		return 0, err
	}
	a.cur.Store(next)
	if a.cancel != nil {
		a.cancel()
	}
	a.cancel = cancel
	return len(cfg.Clients), nil
}

// setupSecurity configures the API's authentication, audit and rate limits
// once the listener is bound: --dev and --dev-auth are refused unless it is
// a loopback address. It returns the TLS config when serving TLS, and the
// authenticator that reload (SIGHUP) replaces (nil without one).
func setupSecurity(ctx context.Context, c *SecurityConfig, api *httpapi.Server, store any, ln net.Listener, logger *slog.Logger) (*reloadableAuth, error) {
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
	var ra *reloadableAuth
	if cfgPath != "" {
		ra = &reloadableAuth{path: cfgPath, logger: logger}
		n, err := ra.load(ctx)
		if err != nil {
			return nil, err
		}
		api.Auth = ra
		logger.Info("authentication on", slog.Int("clients", n))
	}
	return ra, nil
}

// loadTLS returns the TLS configuration of --tls-cert (nil without one).
func loadTLS(c *SecurityConfig) (*tls.Config, error) {
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
	fs := newFlags("token", c.Getenv, c.Stderr)
	fs.synopsis = "token [--client dev-gp] [--scope S] [--ttl 1h]"
	var dir string
	fs.str(&dir, "dev-dir", "DEV_DIR", auth.DefaultDevDir, "directory of the development key and clients")
	client := fs.String("client", "dev-gp", "client to mint for: dev-gp (A81001), dev-gp-other (B82002), dev-gp-f84003, dev-gp-m85063, dev-gp-c82010, dev-sp (Y02662), dev-mdt (A81001, A81002), dev-admin")
	scope := fs.String("scope", "", "space-separated scopes to ask for (default: all the client's)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token takes no arguments, got %q (the client is --client)", fs.Args())
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
		return fmt.Errorf("client %q is not in %s: see linkbridge token --help for the development clients", *client, d.ConfigPath())
	}
	tok, err := d.Mint(*client, *scope, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.Stdout, tok)
	return err
}
