package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirxml"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/mdtweb"
	"github.com/linkbridge/linkbridge/adapter/prom"
	"github.com/linkbridge/linkbridge/adapter/resthook"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/outbox"
	"golang.org/x/net/netutil"
)

// ServeConfig is the configuration of "linkbridge serve". Every flag has a
// LINKBRIDGE_* environment equivalent; a flag given on the command line wins.
type ServeConfig struct {
	Addr string
	DB   string
	// CreateDB lets serve create a SQLite file that does not exist yet
	// (the default path is created without it).
	CreateDB         bool
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
	// SubscriptionEndpoints are the host patterns rest-hook endpoints of
	// Subscriptions may name (adapter/resthook.ParseHosts): host,
	// *.domain, IP address or CIDR prefix. In development (--dev,
	// --dev-auth) loopback endpoints are allowed too.
	SubscriptionEndpoints []string
	// SubscriptionTimeout bounds one notification attempt.
	SubscriptionTimeout time.Duration
	// HeartbeatInterval is how often idle subscriptions are checked for a
	// heartbeat due.
	HeartbeatInterval time.Duration
	// MemoryLimit is the Go runtime's soft memory limit in bytes (0:
	// none); see defaultMemoryLimit.
	MemoryLimit int64
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
	if c.SubscriptionTimeout <= 0 || c.HeartbeatInterval <= 0 {
		return errors.New("--subscription-timeout and --heartbeat-interval must be positive")
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
	Getenv func(string) string
	// Environ lists the process environment (os.Environ's form), for the
	// warning about unknown LINKBRIDGE_* variables; nil: no warning.
	Environ        []string
	Stdout, Stderr io.Writer
	// Ready, if set, receives the listening address once the server
	// accepts connections (used by tests).
	Ready chan<- string
	// Reload, if set, reloads as SIGHUP does; Reloaded, if set, receives
	// each reload's outcome (tests).
	Reload   <-chan struct{}
	Reloaded chan<- error
	// SetMemoryLimit sets the runtime's soft memory limit
	// (debug.SetMemoryLimit) from --memory-limit; nil takes the one
	// withMemoryLimit put in the context, and without one the limit is
	// left alone, as tests that run several gateways in one process do.
	SetMemoryLimit func(int64) int64
}

// memoryLimitKey is the context key of the memory limit setter threaded
// through run() from main.
type memoryLimitKey struct{}

// withMemoryLimit returns a context under which "serve" sets the
// process's soft memory limit with set (main passes debug.SetMemoryLimit).
func withMemoryLimit(ctx context.Context, set func(int64) int64) context.Context {
	return context.WithValue(ctx, memoryLimitKey{}, set)
}

// readyKey is the context key of the Ready channel threaded through run().
type readyKey struct{}

// withReady returns a context under which "serve", started through run(),
// reports its listening address on ch as ServeCommand.Ready does. Tests use
// it to run the real command line on port 0.
func withReady(ctx context.Context, ch chan<- string) context.Context {
	return context.WithValue(ctx, readyKey{}, ch)
}

// flags binds the configuration to flags, each with its LINKBRIDGE_*
// variable as the default, both parsed strictly (flags.go).
func (c *ServeCommand) flags(cfg *ServeConfig) *commandFlags {
	fs := newFlags("serve", c.Getenv, c.Stderr)
	fs.str(&cfg.Addr, "addr", "ADDR", "127.0.0.1:8080", "listen address")
	fs.str(&cfg.DB, "db", "DB", defaultDB, dbFlagUsage)
	fs.boolean(&cfg.CreateDB, "create-db", "CREATE_DB", false, "create the SQLite database file (and its directory) when it does not exist; without it serve refuses a missing file, so a mistyped --db does not start on a new, empty database (the default "+defaultDB+" is created on first start without asking)")
	fs.str(&cfg.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	fs.str(&cfg.LogFormat, "log-format", "LOG_FORMAT", "text", "text or json")
	fs.int64(&cfg.MaxBodyBytes, "max-body", "MAX_BODY", httpapi.DefaultMaxBodyBytes, "request body limit in bytes")
	fs.integer(&cfg.MaxBundleEntries, "max-bundle-entries", "MAX_BUNDLE_ENTRIES", linkbridge.DefaultMaxReferralEntries, "most entries of a referral Bundle, contained resources included")
	fs.duration(&cfg.RequestTimeout, "request-timeout", "REQUEST_TIMEOUT", httpapi.DefaultRequestTimeout, "deadline of one API request, reaching the store; past it 408 REC_TIMEOUT")
	fs.integer(&cfg.MaxInFlightPerClient, "max-in-flight-per-client", "MAX_IN_FLIGHT_PER_CLIENT", httpapi.DefaultMaxInFlightPerClient, "requests one authenticated client may have in progress; 429 above")
	fs.boolean(&cfg.AnyNHSNumberRange, "nhs-number-any-range", "NHS_NUMBER_ANY_RANGE", false, "accept NHS numbers in every range (Modulus 11 alone); by default a number where none is issued, such as 000 000 0000, is refused")
	fs.integer(&cfg.MaxConnections, "max-connections", "MAX_CONNECTIONS", defaultMaxConnections, "open connections the listener accepts, idle keep-alives included; more wait to be accepted")
	bind(fs, &cfg.MemoryLimit, "memory-limit", "MEMORY_LIMIT", defaultMemoryLimit, memoryForm,
		"soft memory limit of the Go runtime (heap, stacks, runtime data), e.g. 64MiB or 1GiB, or off; the resident set adds about 40 MB of code and SQLite's page caches. Left at its default, GOMEMLIMIT wins when set")
	fs.integer(&cfg.DNAReviewAfter, "dna-review-after", "DNA_REVIEW_AFTER", linkbridge.DefaultDNAReviewAfter, "flag a case for review after this many contacts in a row not attended")
	fs.str(&cfg.DefaultServiceODS, "service-ods", "SERVICE_ODS", "", "ODS code of the social prescribing service for referrals that name none")
	fs.url(&cfg.SystemBase, "system-base", "SYSTEM_BASE", "", "base URL of the identifier systems, code systems and extensions linkbridge writes into GP records, e.g. https://sp.example-ics.nhs.uk/linkbridge; recorded in the store on first start and never changed after (the write-back key is under it); empty: the recorded one, or "+fhirmap.DefaultSystemBase)
	fs.duration(&cfg.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 15*time.Second, "time allowed on SIGTERM for in-flight requests, then for the relay's in-flight write-backs")
	fs.url(&cfg.GPBase, "gp-base", "GP_BASE", "", "GP-side FHIR R4 base URL that receives write-backs; empty disables write-back")
	fs.str(&cfg.GPMode, "gp-mode", "GP_MODE", "auto", "write mode: client-id (PUT Type/id), conditional (PUT Type?identifier=, no id in the body), create (search, POST, then PUT by the endpoint's id), or auto from the endpoint's CapabilityStatement")
	fs.secretStr(&cfg.GPToken, "gp-token", "GP_TOKEN", "", "static bearer token for the GP endpoint")
	fs.url(&cfg.GPTokenURL, "gp-token-url", "GP_TOKEN_URL", "", "OAuth2 token endpoint for client credentials with a signed JWT assertion")
	fs.str(&cfg.GPClientID, "gp-client-id", "GP_CLIENT_ID", "", "OAuth2 client id")
	fs.str(&cfg.GPKeyFile, "gp-key", "GP_KEY", "", "PEM private key file (RSA: RS384, EC: ES384) that signs the client assertion")
	fs.str(&cfg.GPKeyID, "gp-key-id", "GP_KEY_ID", "", "kid of that key in the client's JWKS")
	fs.str(&cfg.GPScopes, "gp-scopes", "GP_SCOPES", "system/*.write", "space-separated scopes to request")
	fs.boolean(&cfg.GPLinkPatients, "gp-link-patients", "GP_LINK_PATIENTS", true, "look up the GP's Patient by NHS number and add a literal reference")
	fs.str(&cfg.GPClientCert, "gp-client-cert", "GP_CLIENT_CERT", "", "client certificate (PEM) for mutual TLS to the GP endpoint")
	fs.str(&cfg.GPClientKey, "gp-client-key", "GP_CLIENT_KEY", "", "client key (PEM) for mutual TLS")
	fs.str(&cfg.GPCACert, "gp-ca", "GP_CA", "", "CA certificate (PEM) to trust for the GP endpoint")
	fs.duration(&cfg.RescueAfter, "rescue-after", "RESCUE_AFTER", 2*time.Minute, "return write-backs in flight longer than this to the queue; at least 2 × --gp-timeout; a send is cut off at half of it at the latest")
	fs.duration(&cfg.WritebackSendTimeout, "writeback-send-timeout", "WRITEBACK_SEND_TIMEOUT", 30*time.Second, "time allowed for one write-back's send, in-process retries included, so a GP endpoint hanging on one person holds up no one else; a send that times out is retried later with backoff; cut off at half of --rescue-after if that is shorter")
	fs.duration(&cfg.OutboxRetention, "outbox-retention", "OUTBOX_RETENTION", 720*time.Hour, "delete delivered, superseded and discarded write-backs this long after they finished; 0 keeps them forever; pending and dead ones are never deleted")
	fs.duration(&cfg.GPTimeout, "gp-timeout", "GP_TIMEOUT", 10*time.Second, "timeout of one attempt to the GP endpoint")
	hostsForm := form[[]string]{resthook.ParseHosts, func(h []string) string { return strings.Join(h, ",") },
		"comma-separated hosts: host, *.domain, IP address or CIDR prefix", "hosts"}
	bind(fs, &cfg.SubscriptionEndpoints, "subscription-endpoints", "SUBSCRIPTION_ENDPOINTS", nil, hostsForm,
		"hosts that Subscription rest-hook endpoints may name: host, *.domain, IP address or CIDR prefix (an internal address is reached only when an IP or CIDR entry covers it); https only, but loopback in development")
	fs.duration(&cfg.SubscriptionTimeout, "subscription-timeout", "SUBSCRIPTION_TIMEOUT", 10*time.Second, "timeout of one attempt to deliver a subscription notification; a Subscription's backport-timeout shortens it")
	fs.duration(&cfg.HeartbeatInterval, "heartbeat-interval", "HEARTBEAT_INTERVAL", time.Second, "how often subscriptions are checked for a heartbeat due")
	c.meshFlags(fs, &cfg.Mesh)
	host, _ := os.Hostname()
	fs.str(&cfg.RelayWorker, "relay-worker", "RELAY_WORKER", fmt.Sprintf("%s:%d", host, os.Getpid()), "name of this relay worker in claimed outbox rows (default host:pid)")
	securityFlags(fs, &cfg.Security)
	return fs
}

// Run parses flags, opens the store and serves until ctx ends, then shuts
// down in order: stop accepting, finish in-flight requests, close the store.
func (c *ServeCommand) Run(ctx context.Context, args []string) (err error) {
	var cfg ServeConfig
	fs := c.flags(&cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger, err := newLogger(c.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	setLimit := c.SetMemoryLimit
	if setLimit == nil {
		setLimit, _ = ctx.Value(memoryLimitKey{}).(func(int64) int64)
	}
	if setLimit != nil {
		limit, from := applyMemoryLimit(setLimit, cfg.MemoryLimit, fs.source["memory-limit"], c.Getenv)
		logger.Info("memory limit", slog.String("limit", describeMemoryLimit(limit)), slog.String("from", from))
	}
	if err := cfg.Security.Validate(); err != nil {
		return err
	}
	for _, u := range unknownVariables(c.Environ, c.flags(&ServeConfig{}).variables()) {
		if u[1] != "" {
			logger.Warn("unknown environment variable ignored: did you mean "+u[1]+"?", slog.String("variable", u[0]))
		} else {
			logger.Warn("unknown environment variable ignored", slog.String("variable", u[0]))
		}
	}
	if err := checkDBExists(cfg.DB, cfg.CreateDB || cfg.DB == defaultDB); err != nil {
		return err
	}
	tlsCfg, err := loadTLS(&cfg.Security)
	if err != nil {
		return err
	}
	// The listener opens first, so that while the store opens and
	// migrates (which may wait for another replica's migration) /healthz
	// answers and /readyz says not ready; every other path answers 503.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if (cfg.Security.Dev || cfg.Security.DevAuth) && !isLoopback(ln.Addr()) {
		_ = ln.Close()
		return fmt.Errorf("--dev and --dev-auth serve only on a loopback address, not %s: use --auth-config", ln.Addr())
	}
	addr := ln.Addr()
	// A bounded number of connections, idle keep-alives included (they
	// are closed after serverIdleTimeout): a flood of connections waits to
	// be accepted instead of holding a file descriptor and a goroutine each.
	ln = netutil.LimitListener(ln, cfg.MaxConnections)
	scheme := "http://"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https://"
	}
	gate := &startGate{}
	srv := &http.Server{
		Handler:           gate,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    cfg.Security.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	defer func() {
		if err != nil {
			_ = srv.Close() // start-up failed: the error says why
		}
	}()

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
	api.Ready = gate.stopping

	obStore, _ := any(db).(linkbridge.OutboxStore)
	metrics := prom.New(obStore, logger)
	api.Metrics = metrics
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
	// Subscription notifications: their own relay on the rest-hook
	// channel, and the heartbeats (docs/subscriptions.md).
	var hooks *outbox.Relay
	var beats *resthook.Heartbeats
	if subStore, ok := any(db).(subscriptionStore); ok && obStore != nil {
		policy := resthook.Policy{Hosts: cfg.SubscriptionEndpoints, DevLoopback: cfg.Security.Dev || cfg.Security.DevAuth}
		xc, err := fhirxml.NewConverter(fhirversion.R4)
		if err != nil {
			return err
		}
		sender, err := resthook.New(resthook.Config{Store: subStore, Codec: codec, XML: xc, Policy: policy, Logger: logger,
			Timeout: cfg.SubscriptionTimeout})
		if err != nil {
			return err
		}
		hooks = &outbox.Relay{Store: obStore, Sender: sender, Channel: linkbridge.ChannelRestHook, Logger: logger,
			Worker: cfg.RelayWorker, RescueAfter: cfg.RescueAfter, SendTimeout: 4 * cfg.SubscriptionTimeout,
			Retention: cfg.OutboxRetention, Metrics: metrics}
		beats = &resthook.Heartbeats{Store: subStore, Interval: cfg.HeartbeatInterval, Notify: hooks.Notify, Logger: logger}
		api.SubscriptionEndpoints = policy
		api.OnSubscription = hooks.Notify
		notifyGP := api.OnWriteBack
		api.OnWriteBack = func() {
			if notifyGP != nil {
				notifyGP()
			}
			hooks.Notify()
		}
	}
	root := http.NewServeMux()
	root.Handle("/metrics", metrics.Handler())
	// Authentication is set up on the bound address: --dev is refused
	// unless it is a loopback address.
	reloader, err := setupSecurity(ctx, &cfg.Security, api, db, ln, logger)
	if err != nil {
		return err
	}
	root.Handle("/", api.Handler())
	mdt, err := newMDTPages(&cfg, api, db, codec, systems, tlsCfg != nil, logger)
	if err != nil {
		return err
	}
	mdtHandler, err := mdt.Handler()
	if err != nil {
		return err
	}
	root.Handle("/mdt", mdtHandler)
	root.Handle("/mdt/", mdtHandler)
	if err := mdt.Start(ctx); err != nil {
		return err
	}
	if relay != nil {
		if err := relay.Start(ctx); err != nil {
			return err
		}
		defer relay.Stop()
		meshRoute.start(ctx, relay, logger)
		logger.Info("write-back relay started", slog.String("gp_mode", cfg.GPMode), slog.String("worker", cfg.RelayWorker))
	}
	if hooks != nil {
		if err := hooks.Start(ctx); err != nil {
			return err
		}
		defer hooks.Stop()
		beats.Start(ctx)
		defer beats.Stop()
		logger.Info("subscription relay started", slog.Int("endpoint_patterns", len(cfg.SubscriptionEndpoints)))
	}
	gate.open(root)
	logger.Info("linkbridge serving", slog.String("addr", addr.String()), slog.String("fhir_base", scheme+addr.String()+"/fhir"),
		slog.String("mdt", scheme+addr.String()+"/mdt"), slog.String("db", redactDB(cfg.DB)))
	ready := c.Ready
	if ready == nil {
		ready, _ = ctx.Value(readyKey{}).(chan<- string)
	}
	if ready != nil {
		ready <- addr.String()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := c.Reload
	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			done = true
		case <-hup:
			c.reload(ctx, reloader, metrics, logger)
		case <-reload:
			c.reload(ctx, reloader, metrics, logger)
		}
	}
	// Not ready from now on, so that a load balancer stops sending; then
	// in-flight requests finish, then the relay's in-flight write-backs.
	gate.stop()
	logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if relay != nil {
		logger.Info("shutting down: finishing in-flight write-backs")
		relay.Stop() // in-flight sends finish; anything unsent stays in the outbox
	}
	if hooks != nil {
		beats.Stop()
		hooks.Stop()
	}
	logger.Info("stopped")
	return nil
}

// reload replaces the client registry and JWKS from --auth-config (or the
// development registry): SIGHUP, or ServeCommand.Reload in tests. A file
// that does not load leaves the current registry in force.
func (c *ServeCommand) reload(ctx context.Context, ra *reloadableAuth, m *prom.Metrics, logger *slog.Logger) {
	if ra == nil {
		logger.Warn("reload: nothing to reload (authentication is off)")
		return
	}
	n, err := ra.load(ctx)
	m.Reloaded(err == nil)
	if c.Reloaded != nil {
		c.Reloaded <- err
	}
	if err != nil {
		logger.Error("reload failed: the previous client registry stays in force", slog.Any("error", err))
		return
	}
	logger.Info("client registry and JWKS reloaded", slog.Int("clients", n))
}

// startGate is serve's root handler: until open it answers /healthz
// (alive) and /readyz (not ready: the store is opening or migrating), and
// 503 with Retry-After to the rest; once open it passes every request to
// the gateway, and after stop /readyz reports not ready (shutting down).
type startGate struct {
	h    atomic.Pointer[http.Handler]
	down atomic.Bool
}

func (g *startGate) open(h http.Handler) { g.h.Store(&h) }
func (g *startGate) stop()               { g.down.Store(true) }

// stopping is the API's readiness check: an error once shutdown began.
func (g *startGate) stopping() error {
	if g.down.Load() {
		return errors.New("shutting down")
	}
	return nil
}

func (g *startGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.URL.Path == "/healthz" {
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	w.Header().Set("Retry-After", "5")
	http.Error(w, "starting: the store is opening (migrations run)", http.StatusServiceUnavailable)
}

// newMDTPages builds the MDT pages over the API's store, authentication
// and audit trail: sign-in with the same client registry, development
// clients one click away with --dev-auth, live through the store's
// referral feed.
func newMDTPages(cfg *ServeConfig, api *httpapi.Server, db linkbridge.Store, codec *fhirjson.Codec, systems fhirmap.Systems, tls bool, logger *slog.Logger) (*mdtweb.Server, error) {
	m := &mdtweb.Server{Store: db, Codec: codec, Audit: api.Audit, Logger: logger, Systems: systems,
		DNAReviewAfter: cfg.DNAReviewAfter, SessionTTL: cfg.Security.SessionTTL}
	cs, ok := db.(linkbridge.CaseStore)
	if !ok {
		return nil, errors.New("this store keeps no case records: the MDT pages need them")
	}
	m.Cases = cs
	if feed, ok := db.(linkbridge.ReferralFeed); ok {
		m.Feed = feed
	}
	if a, ok := api.Auth.(*reloadableAuth); ok {
		m.Auth, m.Clients = a, a
		key, err := sessionKey(&cfg.Security, logger)
		if err != nil {
			return nil, err
		}
		m.SessionKey = key
	}
	if cfg.Security.DevAuth {
		m.DevSignIn = []string{"dev-mdt", "dev-gp", "dev-sp"}
	}
	// Plain HTTP only on a loopback address in development: cookies are
	// Secure everywhere else (behind a TLS-terminating proxy too).
	m.InsecureCookies = (cfg.Security.Dev || cfg.Security.DevAuth) && !tls
	return m, nil
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
		return slog.New(requestIDHandler{slog.NewTextHandler(w, opts)}), nil
	case "json":
		return slog.New(requestIDHandler{slog.NewJSONHandler(w, opts)}), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}

// requestIDHandler adds the request id (httpapi.RequestIDFromContext) to
// every record logged with a request's context that does not carry one.
type requestIDHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := httpapi.RequestIDFromContext(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == "request_id"
			return !has
		})
		if !has {
			r.AddAttrs(slog.String("request_id", id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
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

// subscriptionStore is what the rest-hook relay needs of the store.
type subscriptionStore interface {
	resthook.Store
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
	tc, err := clientTLS("gp", cfg.GPClientCert, cfg.GPClientKey, cfg.GPCACert)
	if err != nil {
		return nil, err
	}
	gcfg.TLS = tc
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

// tokenHTTPClient is the client for token requests (mutual TLS when set).
func tokenHTTPClient(tc *tls.Config) *http.Client {
	if tc == nil {
		return &http.Client{Timeout: 10 * time.Second}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

// clientTLS is the TLS configuration of an outbound peer (the GP endpoint,
// MESH) from its --<flag>-client-cert, --<flag>-client-key and --<flag>-ca
// files: nil when none is set (the system roots, no client certificate).
func clientTLS(flag, certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" && caFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--%s-client-cert: %w", flag, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--%s-ca: %w", flag, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--%s-ca: no certificates found", flag)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}
