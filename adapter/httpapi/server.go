// Package httpapi is linkbridge's inbound HTTP API: the FHIR R4 REST API at
// /fhir that GP systems send referrals to and the MDT reads from, the link
// workers' JSON API at /sp/v1, plus the health endpoints. It is transport
// only: every handler decodes, validates, calls the store or one service
// (intake, casework), then writes exactly one response or returns an error,
// which the route's adapter answers in the route's format (errors.go: a FHIR
// OperationOutcome on /fhir, the JSON error on /sp/v1).
package httpapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirxml"
	"github.com/linkbridge/linkbridge/casework"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/intake"
)

// DefaultMaxBodyBytes is the default request body limit (413 above it).
const DefaultMaxBodyBytes = 4 << 20

// Server serves the FHIR API over a Store.
type Server struct {
	// Store is the social prescribing store.
	Store linkbridge.Store
	// Cases is the case-record side of the store (/sp/v1).
	Cases linkbridge.CaseStore
	// Codec parses and renders FHIR JSON; build it once and share it.
	Codec *fhirjson.Codec
	// Logger receives structured logs (ids only, never personal data).
	Logger *slog.Logger
	// Now returns the current time; defaults to time.Now.
	Now func() time.Time
	// NewID returns a new resource id; defaults to a random UUID.
	NewID func() string
	// MaxBodyBytes limits request bodies; defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxBundleEntries caps the entries of a referral Bundle (transaction or
	// message; 413 above it, counted before the Bundle is decoded) and the
	// resources of one referral, contained ones included; defaults to
	// linkbridge.DefaultMaxReferralEntries.
	MaxBundleEntries int
	// WriteBack enqueues every case-record change for delivery to the GP
	// record (set when a GP-side endpoint is configured).
	WriteBack bool
	// WriteBackRoutes are the practices' write-back routes and Documents
	// the send-document route's settings (docs/send-document.md).
	WriteBackRoutes *linkbridge.WriteBackRoutes
	Documents       *casework.Documents
	// OnWriteBack, if set, is called after a change with write-backs
	// commits (it wakes the relay).
	OnWriteBack func()
	// Systems are the deployment's URIs (serve --system-base), which the
	// FHIR view, the write-back key and AuditEvent agents use. The zero
	// value is the default base.
	Systems fhirmap.Systems
	// DefaultServiceODS is the ODS code of the social prescribing service
	// referrals are addressed to when they name none (optional).
	DefaultServiceODS string
	// DNAReviewAfter is the service's did-not-attend policy: a case whose
	// last DNAReviewAfter contacts were not attended is flagged for review
	// (0: linkbridge.DefaultDNAReviewAfter).
	DNAReviewAfter int

	// Auth, when set, authenticates every request to /fhir (but
	// /fhir/metadata) and /sp/v1 (but its OpenAPI document): 401 without
	// valid credentials, 403 when the caller's role or scopes do not allow
	// the route, and every store access limited to the caller's
	// organisations (see security.go). Nil leaves the API open (in-process
	// tests, serve --dev).
	Auth Authenticator
	// Audit, when set, records every access to /fhir and /sp/v1 as an
	// audit record, served to administrators as FHIR AuditEvent.
	Audit linkbridge.AuditStore
	// RateLimit is each client's sustained request rate per second (per
	// source address when unauthenticated); RateBurst its burst. Zero means
	// no limit. Over the limit: 429 with Retry-After.
	RateLimit float64
	RateBurst int
	// AnyNHSNumberRange accepts NHS numbers in every range (Modulus 11
	// alone); by default a number where none is issued is refused (422).
	AnyNHSNumberRange bool
	// RequestTimeout is the deadline of one request, reaching the store;
	// past it the caller gets 408 REC_TIMEOUT. Defaults to
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxInFlightPerClient caps the requests one authenticated client may
	// have in progress at once (429 with Retry-After above it); defaults to
	// DefaultMaxInFlightPerClient.
	MaxInFlightPerClient int
	// MaxDecoders caps the request bodies google/fhir parses at once;
	// defaults to GOMAXPROCS. Parsing is most of a write's CPU, and with
	// every request in flight parsing at once the store's writer (one
	// goroutine on SQLite) queued behind them for a core; the others wait
	// their turn before parsing instead (see decode).
	MaxDecoders int

	// Ready, if set, is asked by /readyz before the store: an error (such
	// as "shutting down") answers 503 with it.
	Ready func() error
	// Metrics, if set, observes every request (route template, method,
	// status, duration) and counts the referrals received.
	Metrics Metrics
	// Subscriptions, when set, serves topic-based subscriptions
	// (docs/subscriptions.md); NewServer sets it when the store keeps
	// them. SubscriptionEndpoints decides which rest-hook endpoints a
	// Subscription may name (none when nil); OnSubscription, if set, is
	// called after one is created (it wakes the rest-hook relay).
	Subscriptions         linkbridge.SubscriptionStore
	SubscriptionEndpoints EndpointPolicy
	OnSubscription        func()

	inflight inFlight

	// work applies every referral change (built by Handler over the
	// store as the handlers see it).
	work *casework.Service
	// in receives referrals (built by Handler like work).
	in *intake.Service

	limitsOnce sync.Once
	limits     *limiters

	decodersOnce sync.Once
	decoders     chan struct{} // a token per parse in progress (MaxDecoders)

	capability []byte
	// xml converts FHIR XML request bodies to JSON and JSON responses to
	// XML (format.go); built once by NewServer.
	xml *fhirxml.Converter
	// marshalAll turns off storing received bytes (tests compare the two).
	marshalAll bool
}

// Metrics observes the API (adapter/prom implements it).
type Metrics interface {
	intake.Metrics
	// Request records one request: its route template (the unmatched
	// route for none), method, response status and duration.
	Request(route, method string, status int, d time.Duration)
}

// NewServer builds a Server and renders its CapabilityStatement once.
func NewServer(store linkbridge.Store, codec *fhirjson.Codec, logger *slog.Logger) (*Server, error) {
	s := &Server{Store: store, Codec: codec, Logger: logger}
	xc, err := fhirxml.NewConverter(fhirversion.R4)
	if err != nil {
		return nil, fmt.Errorf("httpapi: FHIR XML: %w", err)
	}
	s.xml = xc
	if cs, ok := store.(linkbridge.CaseStore); ok {
		s.Cases = cs
	}
	if ss, ok := store.(linkbridge.SubscriptionStore); ok {
		s.Subscriptions = ss
	}
	cs, err := s.renderCapabilityStatement()
	if err != nil {
		return nil, fmt.Errorf("httpapi: capability statement: %w", err)
	}
	s.capability = cs
	return s, nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) newID() string {
	if s.NewID != nil {
		return s.NewID()
	}
	return NewUUID()
}

// NewUUID returns a time-ordered UUID (version 7, RFC 9562): 48 bits of
// Unix milliseconds, then random bits. Time order keeps the store's id
// indexes append-mostly.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[6:])
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Handler returns the routed HTTP handler.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.Use(s.logRequests, s.fhirFormat, s.withDeadline, s.checkInput)
	secured := s.Auth != nil || s.Audit != nil || s.RateLimit > 0
	// Requests no route matches go through the same layers as the rest
	// (gorilla/mux runs its middleware only for matched routes): logged,
	// checked, authenticated, rate-limited and audited, then answered in
	// the format of the API they were meant for.
	unmatched := func(err func(*http.Request) error) http.Handler {
		var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			s.writeErrorFor(w, req, routeOf(req), err(req))
		})
		if secured {
			h = s.secure(h)
		}
		return s.logRequests(s.fhirFormat(s.withDeadline(s.checkInput(h))))
	}
	r.NotFoundHandler = unmatched(func(*http.Request) error {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "no such endpoint")
	})
	r.MethodNotAllowedHandler = unmatched(func(req *http.Request) error {
		return linkbridge.Errorf(linkbridge.EMETHOD, "method %s is not allowed here", req.Method)
	})
	if secured {
		// Authorisation is enforced at the store boundary (access.Store).
		if _, ok := s.Store.(*access.Store); !ok {
			sc := &access.Store{Store: s.Store, Cases: s.Cases}
			s.Store = sc
			if s.Cases != nil {
				s.Cases = sc
			}
		}
		r.Use(s.secure)
		// The CapabilityStatement now declares the security and AuditEvent.
		if cs, err := s.renderCapabilityStatement(); err == nil {
			s.capability = cs
		} else {
			s.Logger.Error("render CapabilityStatement", slog.Any("error", err))
		}
	}
	s.work = &casework.Service{Store: s.Store, Cases: s.Cases, Codec: s.Codec, Logger: s.Logger,
		Now: s.now, NewID: s.newID, WriteBack: s.WriteBack, OnWriteBack: s.OnWriteBack, Systems: s.Systems,
		Routes: s.WriteBackRoutes, Documents: s.Documents}
	if sc, ok := s.Store.(*access.Store); ok {
		s.work.Own = sc.Store // the referral's own resources, by primary key
	}
	s.in = &intake.Service{Store: s.Store, Codec: s.Codec, Logger: s.Logger, Now: s.now, NewID: s.newID,
		DefaultServiceODS: s.DefaultServiceODS, MarshalAll: s.marshalAll, MaxEntries: s.maxBundleEntries(), AnyNHSNumberRange: s.AnyNHSNumberRange,
		Episodes: s.Cases, Systems: s.Systems}
	if sc, ok := s.Store.(*access.Store); ok {
		s.in.Episodes = sc.Cases // unscoped: the link is the service's record
	}
	if s.Metrics != nil {
		s.in.Metrics = s.Metrics
	}
	r.HandleFunc("/healthz", s.handleHealthz).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.handleReadyz).Methods(http.MethodGet)
	if s.Cases != nil {
		s.registerSPRoutes(r)
	}

	// The FHIR routes carry the full "/fhir" path on a matcher-less
	// subrouter: with r.PathPrefix("/fhir").Subrouter(), gorilla/mux v1.8.1
	// copies the prefix matcher into every route, which clears a method
	// mismatch found by an earlier route, so unsupported methods got 404
	// instead of 405.
	f := r.NewRoute().Subrouter()
	f.Use(s.fhirHeaders, s.requireFormat)
	f.Handle("/fhir", s.fhir(s.handleTransaction)).Methods(http.MethodPost)
	f.Handle("/fhir/", s.fhir(s.handleTransaction)).Methods(http.MethodPost)
	f.HandleFunc("/fhir/metadata", s.handleMetadata).Methods(http.MethodGet)
	f.Handle("/fhir/$process-message", s.fhir(s.handleProcessMessage)).Methods(http.MethodPost)
	f.Handle("/fhir/ServiceRequest", s.fhir(s.handleCreate("ServiceRequest"))).Methods(http.MethodPost)
	f.Handle("/fhir/Task", s.fhir(s.handleCreate("Task"))).Methods(http.MethodPost)
	f.Handle("/fhir/Task/{id}", s.fhir(s.handleUpdateTask)).Methods(http.MethodPut)
	f.Handle("/fhir/ServiceRequest/{id}", s.fhir(s.handleUpdateServiceRequest)).Methods(http.MethodPut)
	f.Handle("/fhir/AuditEvent", s.fhir(s.handleAuditSearch)).Methods(http.MethodGet)
	f.Handle("/fhir/AuditEvent/{id}", s.fhir(s.handleAuditRead)).Methods(http.MethodGet)
	s.registerSubscriptionRoutes(f)
	f.Handle("/fhir/{type:[A-Z][A-Za-z]+}", s.fhir(s.handleSearch)).Methods(http.MethodGet)
	f.Handle("/fhir/{type:[A-Z][A-Za-z]+}/_search", s.fhir(s.handleSearch)).Methods(http.MethodPost)
	f.Handle("/fhir/{type:[A-Z][A-Za-z]+}/{id}", s.fhir(s.handleRead)).Methods(http.MethodGet)
	f.Handle("/fhir/{type:[A-Z][A-Za-z]+}/{id}/_history", s.fhir(s.handleHistory)).Methods(http.MethodGet)
	f.Handle("/fhir/{type:[A-Z][A-Za-z]+}/{id}/_history/{vid}", s.fhir(s.handleVRead)).Methods(http.MethodGet)
	return r
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz reports ready when the store answers a query.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error()+"\n", http.StatusServiceUnavailable)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// A point read by primary key: it proves the store answers without
	// costing more as the store grows (a search would count every match).
	if _, err := s.Store.ReadResource(ctx, "Patient", "readyz-probe"); err != nil && linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		s.Logger.WarnContext(ctx, "readiness check failed", slog.Any("error", err))
		http.Error(w, "store unavailable\n", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ready\n"))
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (sr *statusRecorder) WriteHeader(code int) {
	sr.status = code
	sr.ResponseWriter.WriteHeader(code)
}

// Flush sends what the handler wrote to the client, when the underlying
// writer can.
func (sr *statusRecorder) Flush() {
	if f, ok := sr.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// logRequests logs method, route, status and duration. It never logs the
// query string, which can hold NHS numbers.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Every request has an id: the caller's X-Request-Id, or a new
		// one, returned as X-Request-Id and carried by every log line and
		// audit record of the request (BaRS's required-header check reads
		// the request's own header, not this).
		id := r.Header.Get("X-Request-Id")
		if id == "" || !validRequestID(id) {
			id = NewUUID()
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		st := &access.Trail{} // the security layer records the client here
		r = r.WithContext(context.WithValue(access.WithTrail(r.Context(), st), requestIDKey{}, id))
		next.ServeHTTP(rec, r)
		if s.Metrics != nil {
			s.Metrics.Request(routeOf(r), r.Method, rec.status, time.Since(start))
		}
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("route", routeOf(r)),
			slog.String("id", loggableID(mux.Vars(r)["id"])),
			slog.Int("status", rec.status), slog.Duration("duration", time.Since(start)),
			slog.String("request_id", id), slog.String("client_id", st.Client()))
	})
}

// fhirHeaders echoes the BaRS transaction headers on every FHIR response.
func (s *Server) fhirHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"X-Request-Id", "X-Correlation-Id"} {
			if v := r.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		next.ServeHTTP(w, r)
	})
}
