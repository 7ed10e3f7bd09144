package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/prom"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/outbox"
	"golang.org/x/net/netutil"
)

// ServeConfig is the configuration of "linkbridge serve". Every flag has a
// LINKBRIDGE_* environment equivalent; a flag given on the command line wins.
type ServeConfig struct {
	Addr             string
	DB               string
	LogLevel         string
	LogFormat        string
	MaxBodyBytes     int64
	MaxBundleEntries int
	// RequestTimeout is the deadline of one API request.
	RequestTimeout time.Duration
	// MaxInFlightPerClient caps one client's requests in progress.
	MaxInFlightPerClient int
	// MaxConnections caps the open connections, idle keep-alives included.
	MaxConnections int
	// AnyNHSNumberRange accepts NHS numbers in every range.
	AnyNHSNumberRange bool
	DefaultServiceODS string
	// DNAReviewAfter is the did-not-attend policy (httpapi.Server.DNAReviewAfter).
	DNAReviewAfter  int
	ShutdownTimeout time.Duration
	// GP-side FHIR endpoint for write-back (empty: no write-back).
	GPBase  string
	GPMode  string
	GPToken string
	// Signed-JWT client credentials (OAuth2, RFC 7523).
	GPTokenURL     string
	GPClientID     string
	GPKeyFile      string
	GPKeyID        string
	GPScopes       string
	GPLinkPatients bool
	GPClientCert   string
	GPClientKey    string
	GPCACert       string
	// RelayWorker names this process in claimed outbox rows.
	RelayWorker string
	// RescueAfter returns write-backs left in flight longer than this to
	// the queue; it must exceed the longest send (timeout × attempts).
	RescueAfter time.Duration
	// WritebackSendTimeout bounds one write-back's send, in-process
	// retries included (cut off at half of RescueAfter if that is
	// shorter); a send that times out is retried later with backoff.
	WritebackSendTimeout time.Duration
	// OutboxRetention is how long finished write-backs (delivered,
	// superseded, discarded) are kept before the relay deletes them (0:
	// forever).
	OutboxRetention time.Duration
	// GPTimeout bounds one attempt to the GP endpoint.
	GPTimeout time.Duration
	// SystemBase is the base of the URIs linkbridge writes (identifier
	// systems, code systems, extensions; docs/identifiers.md); empty takes
	// the one recorded in the store, or fhirmap.DefaultSystemBase.
	SystemBase string
	// Security is authentication, rate limits and TLS (security.go).
	Security SecurityConfig
	// Mesh is the send-document route (meshwiring.go).
	Mesh MeshConfig
}

// Validate checks the configuration.
func (c *ServeConfig) Validate() error {
	if c.Addr == "" {
		return errors.New("--addr is required")
	}
	if c.DB == "" {
		return errors.New("--db is required")
	}
	switch gpfhir.Mode(c.GPMode) {
	case gpfhir.ModeAuto, gpfhir.ModeClientID, gpfhir.ModeConditional, gpfhir.ModeCreate:
	default:
		return fmt.Errorf("--gp-mode must be auto, client-id, conditional or create, not %q", c.GPMode)
	}
	if c.GPBase != "" && c.RescueAfter < 2*c.GPTimeout {
		return errors.New("--rescue-after must be at least 2 × --gp-timeout (a send is cut off at half of --rescue-after at the latest)")
	}
	if c.WritebackSendTimeout <= 0 {
		return errors.New("--writeback-send-timeout must be positive")
	}
	if c.OutboxRetention < 0 {
		return errors.New("--outbox-retention must not be negative (0 keeps finished write-backs forever)")
	}
	if c.GPTokenURL != "" && (c.GPClientID == "" || c.GPKeyFile == "") {
		return errors.New("--gp-token-url needs --gp-client-id and --gp-key")
	}
	if c.GPTokenURL != "" && c.GPToken != "" {
		return errors.New("--gp-token and --gp-token-url are alternatives")
	}
	if (c.GPClientCert == "") != (c.GPClientKey == "") {
		return errors.New("--gp-client-cert and --gp-client-key go together")
	}
	if c.MaxBodyBytes <= 0 {
		return errors.New("--max-body must be positive")
	}
	if c.MaxBundleEntries <= 0 {
		return errors.New("--max-bundle-entries must be positive")
	}
	if c.RequestTimeout <= 0 || c.RequestTimeout >= serverWriteTimeout {
		return fmt.Errorf("--request-timeout must be positive and shorter than the %s write timeout", serverWriteTimeout)
	}
	if c.MaxInFlightPerClient <= 0 {
		return errors.New("--max-in-flight-per-client must be positive")
	}
	if c.MaxConnections <= 0 {
		return errors.New("--max-connections must be positive")
	}
	if _, err := fhirmap.NewSystems(c.SystemBase); err != nil {
		return fmt.Errorf("--system-base: %w", err)
	}
	if c.DefaultServiceODS != "" {
		if _, err := linkbridge.NormalizeODSCode(c.DefaultServiceODS); err != nil {
			return fmt.Errorf("--service-ods: %w", err)
		}
	}
	return nil
}

// ServeCommand runs the gateway until its context ends.
type ServeCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Ready, if set, receives the listening address once the server
	// accepts connections (used by tests).
	Ready chan<- string
}

// readyKey is the context key of the Ready channel threaded through run().
type readyKey struct{}

// withReady returns a context under which "serve", started through run(),
// reports its listening address on ch as ServeCommand.Ready does. Tests use
// it to run the real command line on port 0.
func withReady(ctx context.Context, ch chan<- string) context.Context {
	return context.WithValue(ctx, readyKey{}, ch)
}

// flags binds the configuration to flags with env defaults.
func (c *ServeCommand) flags(cfg *ServeConfig) *flag.FlagSet {
	env := func(name, def string) string {
		if v := c.Getenv("LINKBRIDGE_" + name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.StringVar(&cfg.Addr, "addr", env("ADDR", "127.0.0.1:8080"), "listen address (LINKBRIDGE_ADDR)")
	fs.StringVar(&cfg.DB, "db", env("DB", "linkbridge.db"), dbFlagHelp)
	fs.StringVar(&cfg.LogLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LINKBRIDGE_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("LOG_FORMAT", "text"), "text or json (LINKBRIDGE_LOG_FORMAT)")
	maxBody := env("MAX_BODY", fmt.Sprint(httpapi.DefaultMaxBodyBytes))
	fs.Func("max-body", "request body limit in bytes (LINKBRIDGE_MAX_BODY, default "+maxBody+")", func(s string) error {
		_, err := fmt.Sscan(s, &cfg.MaxBodyBytes)
		return err
	})
	_, _ = fmt.Sscan(maxBody, &cfg.MaxBodyBytes)
	maxEntries := env("MAX_BUNDLE_ENTRIES", fmt.Sprint(linkbridge.DefaultMaxReferralEntries))
	fs.Func("max-bundle-entries", "most entries of a referral Bundle, contained resources included (LINKBRIDGE_MAX_BUNDLE_ENTRIES, default "+maxEntries+")", func(s string) error {
		_, err := fmt.Sscan(s, &cfg.MaxBundleEntries)
		return err
	})
	_, _ = fmt.Sscan(maxEntries, &cfg.MaxBundleEntries)
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", envDuration(c.Getenv, "REQUEST_TIMEOUT", httpapi.DefaultRequestTimeout), "deadline of one API request, reaching the store; past it 408 REC_TIMEOUT (LINKBRIDGE_REQUEST_TIMEOUT)")
	fs.IntVar(&cfg.MaxInFlightPerClient, "max-in-flight-per-client", envInt(c.Getenv, "MAX_IN_FLIGHT_PER_CLIENT", httpapi.DefaultMaxInFlightPerClient), "requests one authenticated client may have in progress; 429 above (LINKBRIDGE_MAX_IN_FLIGHT_PER_CLIENT)")
	fs.BoolVar(&cfg.AnyNHSNumberRange, "nhs-number-any-range", c.Getenv("LINKBRIDGE_NHS_NUMBER_ANY_RANGE") == "true", "accept NHS numbers in every range (Modulus 11 alone); by default a number where none is issued, such as 000 000 0000, is refused (LINKBRIDGE_NHS_NUMBER_ANY_RANGE)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", envInt(c.Getenv, "MAX_CONNECTIONS", defaultMaxConnections), "open connections the listener accepts, idle keep-alives included; more wait to be accepted (LINKBRIDGE_MAX_CONNECTIONS)")
	fs.IntVar(&cfg.DNAReviewAfter, "dna-review-after", envInt(c.Getenv, "DNA_REVIEW_AFTER", linkbridge.DefaultDNAReviewAfter), "flag a case for review after this many contacts in a row not attended (LINKBRIDGE_DNA_REVIEW_AFTER)")
	fs.StringVar(&cfg.DefaultServiceODS, "service-ods", env("SERVICE_ODS", ""), "ODS code of the social prescribing service for referrals that name none (LINKBRIDGE_SERVICE_ODS)")
	fs.StringVar(&cfg.SystemBase, "system-base", env("SYSTEM_BASE", ""), "base URL of the identifier systems, code systems and extensions linkbridge writes into GP records, e.g. https://sp.example-ics.nhs.uk/linkbridge; recorded in the store on first start and never changed after (the write-back key is under it); empty: the recorded one, or "+fhirmap.DefaultSystemBase+" (LINKBRIDGE_SYSTEM_BASE)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "time allowed for in-flight requests on shutdown")
	fs.StringVar(&cfg.GPBase, "gp-base", env("GP_BASE", ""), "GP-side FHIR R4 base URL that receives write-backs; empty disables write-back (LINKBRIDGE_GP_BASE)")
	fs.StringVar(&cfg.GPMode, "gp-mode", env("GP_MODE", "auto"), "write mode: client-id (PUT Type/id), conditional (PUT Type?identifier=, no id in the body), create (search, POST, then PUT by the endpoint's id), or auto from the endpoint's CapabilityStatement (LINKBRIDGE_GP_MODE)")
	fs.StringVar(&cfg.GPToken, "gp-token", env("GP_TOKEN", ""), "static bearer token for the GP endpoint (LINKBRIDGE_GP_TOKEN)")
	fs.StringVar(&cfg.GPTokenURL, "gp-token-url", env("GP_TOKEN_URL", ""), "OAuth2 token endpoint for client credentials with a signed JWT assertion (LINKBRIDGE_GP_TOKEN_URL)")
	fs.StringVar(&cfg.GPClientID, "gp-client-id", env("GP_CLIENT_ID", ""), "OAuth2 client id (LINKBRIDGE_GP_CLIENT_ID)")
	fs.StringVar(&cfg.GPKeyFile, "gp-key", env("GP_KEY", ""), "PEM private key (RSA → RS384, EC → ES384) that signs the client assertion (LINKBRIDGE_GP_KEY)")
	fs.StringVar(&cfg.GPKeyID, "gp-key-id", env("GP_KEY_ID", ""), "kid of that key in the client's JWKS (LINKBRIDGE_GP_KEY_ID)")
	fs.StringVar(&cfg.GPScopes, "gp-scopes", env("GP_SCOPES", "system/*.write"), "space-separated scopes to request (LINKBRIDGE_GP_SCOPES)")
	fs.BoolVar(&cfg.GPLinkPatients, "gp-link-patients", env("GP_LINK_PATIENTS", "true") == "true", "look up the GP's Patient by NHS number and add a literal reference (LINKBRIDGE_GP_LINK_PATIENTS)")
	fs.StringVar(&cfg.GPClientCert, "gp-client-cert", env("GP_CLIENT_CERT", ""), "client certificate (PEM) for mutual TLS to the GP endpoint (LINKBRIDGE_GP_CLIENT_CERT)")
	fs.StringVar(&cfg.GPClientKey, "gp-client-key", env("GP_CLIENT_KEY", ""), "client key (PEM) for mutual TLS (LINKBRIDGE_GP_CLIENT_KEY)")
	fs.StringVar(&cfg.GPCACert, "gp-ca", env("GP_CA", ""), "CA certificate (PEM) to trust for the GP endpoint (LINKBRIDGE_GP_CA)")
	fs.DurationVar(&cfg.RescueAfter, "rescue-after", envDuration(c.Getenv, "RESCUE_AFTER", 2*time.Minute), "return write-backs in flight longer than this to the queue; at least 2 × --gp-timeout; a send is cut off at half of it at the latest (LINKBRIDGE_RESCUE_AFTER)")
	fs.DurationVar(&cfg.WritebackSendTimeout, "writeback-send-timeout", envDuration(c.Getenv, "WRITEBACK_SEND_TIMEOUT", 30*time.Second), "time allowed for one write-back's send, in-process retries included, so a GP endpoint hanging on one person holds up no one else; a send that times out is retried later with backoff; cut off at half of --rescue-after if that is shorter (LINKBRIDGE_WRITEBACK_SEND_TIMEOUT)")
	fs.DurationVar(&cfg.OutboxRetention, "outbox-retention", envDuration(c.Getenv, "OUTBOX_RETENTION", 720*time.Hour), "delete delivered, superseded and discarded write-backs this long after they finished; 0 keeps them forever; pending and dead ones are never deleted (LINKBRIDGE_OUTBOX_RETENTION)")
	c.meshFlags(fs, &cfg.Mesh)
	fs.DurationVar(&cfg.GPTimeout, "gp-timeout", envDuration(c.Getenv, "GP_TIMEOUT", 10*time.Second), "timeout of one attempt to the GP endpoint (LINKBRIDGE_GP_TIMEOUT)")
	host, _ := os.Hostname()
	fs.StringVar(&cfg.RelayWorker, "relay-worker", env("RELAY_WORKER", fmt.Sprintf("%s:%d", host, os.Getpid())), "name of this relay worker in claimed outbox rows (LINKBRIDGE_RELAY_WORKER)")
	securityFlags(fs, &cfg.Security, env)
	return fs
}

// Run parses flags, opens the store and serves until ctx ends, then shuts
// down in order: stop accepting, finish in-flight requests, close the store.
func (c *ServeCommand) Run(ctx context.Context, args []string) (err error) {
	var cfg ServeConfig
	if err := c.flags(&cfg).Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger, err := newLogger(c.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	if err := cfg.Security.Validate(); err != nil {
		return err
	}
	codec, err := fhirjson.New()
	if err != nil {
		return err
	}
	db, err := openStore(ctx, cfg.DB, logger)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	if err := reindex(ctx, db, codec, logger); err != nil {
		return err
	}
	systems, err := resolveSystems(ctx, db, cfg.SystemBase, logger)
	if err != nil {
		return err
	}

	api, err := httpapi.NewServer(db, codec, logger)
	if err != nil {
		return err
	}
	api.MaxBodyBytes = cfg.MaxBodyBytes
	api.MaxBundleEntries = cfg.MaxBundleEntries
	api.RequestTimeout = cfg.RequestTimeout
	api.MaxInFlightPerClient = cfg.MaxInFlightPerClient
	api.AnyNHSNumberRange = cfg.AnyNHSNumberRange
	api.DefaultServiceODS = cfg.DefaultServiceODS
	api.DNAReviewAfter = cfg.DNAReviewAfter
	api.Systems = systems

	obStore, _ := any(db).(linkbridge.OutboxStore)
	metrics := prom.New(obStore, logger)
	var relay *outbox.Relay
	meshRoute, err := setupMesh(&cfg.Mesh, db, logger)
	if err != nil {
		return err
	}
	api.WriteBackRoutes, api.Documents = meshRoute.routes, meshRoute.documents
	if cfg.GPBase != "" || meshRoute.enabled() {
		if obStore == nil {
			return errors.New("write-back: this store has no outbox")
		}
		relay, err = newRelay(&cfg, db, codec, systems, logger, metrics)
		if err != nil {
			return err
		}
		relay.Sender = meshRoute.wrap(relay.Sender)
		api.WriteBack = true
		api.OnWriteBack = relay.Notify
	}
	root := http.NewServeMux()
	root.Handle("/metrics", metrics.Handler())

	srv := &http.Server{
		Handler:           root,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    cfg.Security.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// A bounded number of connections, idle keep-alives included (they
	// are closed after serverIdleTimeout): a flood of connections waits to
	// be accepted instead of holding a file descriptor and a goroutine each.
	ln = netutil.LimitListener(ln, cfg.MaxConnections)
	// Authentication is set up on the bound address: --dev is refused
	// unless it is a loopback address.
	tlsCfg, err := setupSecurity(ctx, &cfg.Security, api, db, ln, logger)
	if err != nil {
		_ = ln.Close()
		return err
	}
	scheme := "http://"
	if tlsCfg != nil {
		srv.TLSConfig = tlsCfg
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https://"
	}
	root.Handle("/", api.Handler())
	logger.Info("linkbridge serving", slog.String("addr", ln.Addr().String()), slog.String("fhir_base", scheme+ln.Addr().String()+"/fhir"), slog.String("db", redactDB(cfg.DB)))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if relay != nil {
		if err := relay.Start(ctx); err != nil {
			return err
		}
		defer relay.Stop()
		meshRoute.start(ctx, relay, logger)
		logger.Info("write-back relay started", slog.String("gp_mode", cfg.GPMode), slog.String("worker", cfg.RelayWorker))
	}
	ready := c.Ready
	if ready == nil {
		ready, _ = ctx.Value(readyKey{}).(chan<- string)
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if relay != nil {
		relay.Stop() // in-flight sends finish; anything unsent stays in the outbox
	}
	logger.Info("stopped")
	return nil
}

// Listener and server limits (see --max-connections).
const (
	defaultMaxConnections = 1000
	serverWriteTimeout    = 30 * time.Second
	serverIdleTimeout     = 60 * time.Second
)

// newLogger builds the slog logger from level and format names.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// newRelay wires the write-back relay: the GP endpoint client (retrying
// HTTP, bearer token, optional mutual TLS) and the outbox relay over the
// store.
// relayStore is what the relay needs of the store: the outbox, and the
// record of the endpoint's own ids (docs/referral-exchange.md#write-back-identity).
type relayStore interface {
	linkbridge.OutboxStore
	linkbridge.EndpointIdentityStore
}

func newRelay(cfg *ServeConfig, store relayStore, codec *fhirjson.Codec, systems fhirmap.Systems, logger *slog.Logger, metrics *prom.Metrics) (*outbox.Relay, error) {
	relay := &outbox.Relay{Store: store, Logger: logger, Worker: cfg.RelayWorker, RescueAfter: cfg.RescueAfter,
		SendTimeout: cfg.WritebackSendTimeout, Retention: cfg.OutboxRetention, Metrics: metrics}
	if cfg.GPBase == "" {
		return relay, nil // the send-document route alone (meshRoute.wrap)
	}
	gcfg := gpfhir.Config{BaseURL: cfg.GPBase, Mode: gpfhir.Mode(cfg.GPMode), Logger: logger, RetryMax: 2, Timeout: cfg.GPTimeout, Systems: systems}
	if cfg.GPToken != "" {
		gcfg.Auth = gpfhir.BearerToken(cfg.GPToken)
	}
	if cfg.GPClientCert != "" || cfg.GPCACert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.GPClientCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.GPClientCert, cfg.GPClientKey)
			if err != nil {
				return nil, fmt.Errorf("--gp-client-cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if cfg.GPCACert != "" {
			pem, err := os.ReadFile(cfg.GPCACert)
			if err != nil {
				return nil, fmt.Errorf("--gp-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New("--gp-ca: no certificates found")
			}
			tc.RootCAs = pool
		}
		gcfg.TLS = tc
	}
	if cfg.GPTokenURL != "" {
		key, err := gpfhir.LoadPrivateKey(cfg.GPKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--gp-key: %w", err)
		}
		auth, err := gpfhir.NewSignedJWTAuth(gpfhir.SignedJWTConfig{TokenURL: cfg.GPTokenURL, ClientID: cfg.GPClientID,
			KeyID: cfg.GPKeyID, Key: key, Scopes: strings.Fields(cfg.GPScopes), HTTPClient: tokenHTTPClient(gcfg.TLS)})
		if err != nil {
			return nil, err
		}
		gcfg.Auth = auth
	}
	client, err := gpfhir.New(gcfg)
	if err != nil {
		return nil, err
	}
	relay.Sender = &gpfhir.Sender{Client: client, Codec: codec, LinkPatients: cfg.GPLinkPatients, Identities: store}
	return relay, nil
}

// envDuration reads a duration from LINKBRIDGE_<name>, or def.
func envDuration(getenv func(string) string, name string, def time.Duration) time.Duration {
	if v := getenv("LINKBRIDGE_" + name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// envInt reads an integer from LINKBRIDGE_<name>, or def.
func envInt(getenv func(string) string, name string, def int) int {
	if v := getenv("LINKBRIDGE_" + name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// tokenHTTPClient is the client for token requests (mutual TLS when set).
func tokenHTTPClient(tc *tls.Config) *http.Client {
	if tc == nil {
		return &http.Client{Timeout: 10 * time.Second}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}
