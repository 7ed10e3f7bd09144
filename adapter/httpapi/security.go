package httpapi

import (
	"bytes"
	"container/list"
	"context"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"golang.org/x/time/rate"
)

// Authenticator authenticates a request: adapter/auth.Authenticator. Errors
// are EUNAUTHORIZED; their message is safe to send.
type Authenticator interface {
	Authenticate(r *http.Request) (*linkbridge.Principal, error)
}

// publicRoutes answer without authentication: they hold no personal data.
var publicRoutes = map[string]bool{
	"/healthz": true, "/readyz": true, "/fhir/metadata": true, "/sp/v1/openapi.json": true,
}

// secure is the security middleware of /fhir and /sp/v1: it authenticates
// the caller (401 when Auth is set and credentials are missing or bad),
// applies the caller's rate limit (429 with Retry-After), checks that the
// caller's role and scopes allow the route (403), runs the handler with the
// principal in the context, and records the access in the audit trail: a
// write's record commits with the write (access.ForWrite), every other request's
// is written after the handler.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := routeOf(r)
		if publicRoutes[route] {
			next.ServeHTTP(w, r)
			return
		}
		start := s.now()
		st := access.TrailFrom(r.Context()) // set by logRequests
		ctx := r.Context()
		if st == nil {
			st = &access.Trail{}
			ctx = access.WithTrail(ctx, st)
		}
		// The answer is held until the request's audit record is stored:
		// nothing is disclosed that the audit trail does not name. Should
		// the record not be stored, a disclosing answer is replaced by 503
		// (the request fails; the caller retries).
		rec := newHeldResponse()
		var p *linkbridge.Principal
		defer func() {
			if err := s.audit(ctx, r, route, p, st, rec.status, start); err != nil && rec.status < 400 {
				s.writeErrorFor(w, r, route, linkbridge.Errorf(linkbridge.EUNAVAILABLE, "the access could not be recorded in the audit trail, so nothing is disclosed; retry later"))
				return
			}
			rec.sendTo(w)
		}()

		if s.Auth != nil {
			var err error
			if p, err = s.Auth.Authenticate(r); err != nil {
				// Failed attempts count against the source address's limit.
				if lerr := s.limit(nil, r, rec); lerr != nil {
					s.writeErrorFor(rec, r, route, lerr)
					return
				}
				// The authenticator's error says why (expired, wrong
				// audience, unknown client), never holding the token.
				s.Logger.InfoContext(ctx, "authentication failed", slog.String("route", route), slog.String("source", sourceOf(r)),
					slog.String("reason", err.Error()))
				challenge := `Bearer realm="linkbridge"`
				if r.Header.Get("Authorization") != "" {
					challenge += `, error="invalid_token"`
				}
				rec.Header().Set("WWW-Authenticate", challenge)
				s.writeErrorFor(rec, r, route, err)
				return
			}
			ctx = linkbridge.NewContextWithPrincipal(ctx, p)
			st.SetClient(p.ClientID)
		}
		if s.Auth == nil || p != nil {
			if err := s.limit(p, r, rec); err != nil {
				s.writeErrorFor(rec, r, route, err)
				return
			}
		}
		if p != nil && route != unmatchedRoute { // no route: answered 404/405 whoever asks
			if err := authorizeRoute(p, r.Method, route, mux.Vars(r)["type"]); err != nil {
				s.writeErrorFor(rec, r, route, err)
				return
			}
			// A bounded share of the server per client: one caller's slow
			// requests cannot hold every store connection.
			release, err := s.inflight.acquire(p.ClientID, s.maxInFlight())
			if err != nil {
				rec.Header().Set("Retry-After", "1")
				s.writeErrorFor(rec, r, route, err)
				return
			}
			defer release()
		}
		if s.auditInStore() {
			st.SetWriteAudit(func(entities []string) *linkbridge.AuditRecord {
				return s.auditRecord(r, route, p, writeStatus(route), entities)
			})
		}
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// auditInStore reports whether the audit trail is kept in the store the
// handlers write to, so that a write can carry its own audit record.
func (s *Server) auditInStore() bool {
	if s.Audit == nil {
		return false
	}
	store := s.Store
	if sc, ok := store.(*access.Store); ok {
		store = sc.Store
	}
	as, ok := s.Audit.(linkbridge.Store)
	// (== panics on two values of one incomparable type.)
	return ok && reflect.TypeOf(as).Comparable() && as == store
}

// writeStatus is the status a write route answers when its write succeeds.
// Should a handler answer another (an error after the write), the
// after-handler audit records that answer too.
func writeStatus(route string) int {
	switch route {
	case "/fhir/ServiceRequest", "/fhir/Task", "/fhir/Subscription", "/sp/v1/referrals/{id}/contacts", "/sp/v1/referrals/{id}/measures":
		return http.StatusCreated
	}
	return http.StatusOK
}

// unmatchedRoute is the route of a request no route matched, in logs and
// audit records (its path is the caller's choice and may hold anything).
const unmatchedRoute = "(no route)"

// routeOf is the route template a request matched, or unmatchedRoute.
func routeOf(r *http.Request) string {
	if cr := mux.CurrentRoute(r); cr != nil {
		if t, err := cr.GetPathTemplate(); err == nil {
			return t
		}
	}
	return unmatchedRoute
}

func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func forbidden(format string, args ...any) error {
	return linkbridge.Errorf(linkbridge.EFORBIDDEN, format, args...)
}

// authorizeRoute checks the caller's role and scopes against a route:
//
//   - the audit trail (/fhir/AuditEvent) is the administrator's only, and
//     the administrator reads nothing else;
//   - referral intake (POST /fhir, /fhir/ServiceRequest, /fhir/Task,
//     $process-message) and revoking (PUT /fhir/ServiceRequest/{id}) are
//     GP systems' (ServiceRequest write; a POSTed Task needs Task write);
//   - a Task status change (PUT /fhir/Task/{id}) is a GP system's or a
//     service's (Task write);
//   - /sp/v1, the link workers' API, is the services' (reads Task read,
//     changes Task write); its period report is also GP practices' and
//     MDT viewers' (Task read), each over its own referrals;
//   - every other FHIR read and search needs read on its type; MDT viewers
//     only read.
//
// Which referrals the caller reaches is decided per resource by the store
// (access.Store), not here.
func authorizeRoute(p *linkbridge.Principal, method, route, typ string) error {
	need := func(typ, op string) error {
		if !p.HasScope(typ, op) {
			return forbidden("the token's scopes do not allow %s on %s", op, typ)
		}
		return nil
	}
	isAudit := strings.HasPrefix(route, "/fhir/AuditEvent")
	if isAudit != (p.Role == linkbridge.RoleAdmin) {
		if isAudit {
			return forbidden("only administrators read the audit trail")
		}
		return forbidden("administrators read only the audit trail")
	}
	if isAudit {
		return need("AuditEvent", linkbridge.ScopeRead)
	}
	if route == "/sp/v1/reports/period" && method == http.MethodGet && (p.Role == linkbridge.RoleGP || p.Role == linkbridge.RoleMDT) {
		// A practice, or a primary care network, reads the figures of its
		// own referrals (Principal.ReportScopeFor).
		return need("Task", linkbridge.ScopeRead)
	}
	if strings.HasPrefix(route, "/sp/v1") {
		if p.Role != linkbridge.RoleService {
			return forbidden("the social prescribing API is for social prescribing services")
		}
		if method == http.MethodGet {
			return need("Task", linkbridge.ScopeRead)
		}
		return need("Task", linkbridge.ScopeWrite)
	}
	switch {
	case strings.HasPrefix(route, "/fhir/Subscription"):
		// Any client that reads referrals may subscribe to what it reads
		// (an MDT viewer too: a subscription changes no referral).
		if method == http.MethodGet {
			return need("Subscription", linkbridge.ScopeRead)
		}
		return need("Subscription", linkbridge.ScopeWrite)
	case strings.HasPrefix(route, "/fhir/Basic"):
		// The subscription topics: definitions, no personal data.
		return need("Basic", linkbridge.ScopeRead)
	case method == http.MethodPost && slices.Contains([]string{"/fhir", "/fhir/", "/fhir/$process-message", "/fhir/ServiceRequest", "/fhir/Task"}, route):
		// Referring organisations send referrals; a service receives
		// self-referrals and those of organisations without an ODS code
		// itself (access.Store.CreateReferral checks which).
		if p.Role != linkbridge.RoleGP && p.Role != linkbridge.RoleService {
			return forbidden("only referring organisations' systems and services send referrals")
		}
		if route == "/fhir/Task" {
			return need("Task", linkbridge.ScopeWrite)
		}
		return need("ServiceRequest", linkbridge.ScopeWrite)
	case method == http.MethodPut && route == "/fhir/ServiceRequest/{id}":
		if p.Role != linkbridge.RoleGP {
			return forbidden("only GP systems send and revoke referrals")
		}
		if route == "/fhir/Task" {
			return need("Task", linkbridge.ScopeWrite)
		}
		return need("ServiceRequest", linkbridge.ScopeWrite)
	case method == http.MethodPut && route == "/fhir/Task/{id}":
		if p.Role != linkbridge.RoleGP && p.Role != linkbridge.RoleService {
			return forbidden("only the referrer and the service change a referral Task")
		}
		return need("Task", linkbridge.ScopeWrite)
	case method == http.MethodGet || method == http.MethodPost && strings.HasSuffix(route, "/_search"):
		if typ == "" {
			return forbidden("no resource type")
		}
		return need(typ, linkbridge.ScopeRead)
	}
	return forbidden("this operation is not allowed for this client")
}

// maxAddrBuckets bounds the token buckets kept for unauthenticated source
// addresses.
var maxAddrBuckets = 10000

// limiters holds one token bucket per authenticated client and one per
// source address of unauthenticated callers. Client buckets are never
// evicted: the client registry is finite. Address buckets are bounded by
// maxAddrBuckets: past it the least recently used one is dropped, so that
// a flood from many addresses costs only other addresses' idle buckets,
// never a client's.
type limiters struct {
	mu      sync.Mutex
	clients map[string]*rate.Limiter
	addrs   map[string]*list.Element // of *addrBucket, most recent at the front
	lru     *list.List
}

type addrBucket struct {
	addr string
	lim  *rate.Limiter
}

// get returns the caller's bucket, making it with newLim when missing.
func (l *limiters) get(p *linkbridge.Principal, addr string, newLim func() *rate.Limiter) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p != nil {
		lim, ok := l.clients[p.ClientID]
		if !ok {
			lim = newLim()
			l.clients[p.ClientID] = lim
		}
		return lim
	}
	if e, ok := l.addrs[addr]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*addrBucket).lim
	}
	for l.lru.Len() >= maxAddrBuckets {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.addrs, oldest.Value.(*addrBucket).addr)
	}
	b := &addrBucket{addr: addr, lim: newLim()}
	l.addrs[addr] = l.lru.PushFront(b)
	return b.lim
}

// limit applies the caller's rate limit (p's, or its source address's when
// p is nil); over it, ETOOMANY with Retry-After set on w.
func (s *Server) limit(p *linkbridge.Principal, r *http.Request, w http.ResponseWriter) error {
	if s.RateLimit <= 0 {
		return nil
	}
	s.limitsOnce.Do(func() {
		s.limits = &limiters{clients: map[string]*rate.Limiter{}, addrs: map[string]*list.Element{}, lru: list.New()}
	})
	burst := s.RateBurst
	if burst < 1 {
		burst = max(1, int(math.Ceil(s.RateLimit)))
	}
	lim := s.limits.get(p, sourceOf(r), func() *rate.Limiter { return rate.NewLimiter(rate.Limit(s.RateLimit), burst) })
	res := lim.ReserveN(time.Now(), 1)
	if d := res.Delay(); !res.OK() || d > 0 {
		res.Cancel()
		secs := int(math.Ceil(d.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return linkbridge.Errorf(linkbridge.ETOOMANY, "rate limit exceeded: retry after %d s", secs)
	}
	return nil
}

// audit records one access after the handler, before its answer is sent,
// through the store's group commit; a failure to record is logged at ERROR
// and returned (the caller then withholds a disclosing answer). It records nothing when
// the request's record committed with its write and the handler answered
// the status recorded there.
func (s *Server) audit(ctx context.Context, r *http.Request, route string, p *linkbridge.Principal, st *access.Trail, status int, start time.Time) error {
	if s.Audit == nil {
		return nil
	}
	committed, entities := st.Snapshot()
	if committed != nil && committed.Status == status {
		return nil
	}
	rec := s.auditRecord(r, route, p, status, entities)
	// The request's own context may be cancelled by now; the record is
	// still wanted.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.Audit.RecordAudit(actx, rec); err != nil {
		s.Logger.ErrorContext(ctx, "audit record not stored", slog.String("route", route), slog.String("client_id", rec.ClientID), slog.Any("error", err))
		return err
	}
	return nil
}

// auditRecord builds the audit record of a request that answers status,
// having touched entities ("Type/id"; when none, the resource its route
// names).
func (s *Server) auditRecord(r *http.Request, route string, p *linkbridge.Principal, status int, entities []string) *linkbridge.AuditRecord {
	rec := &linkbridge.AuditRecord{
		Recorded: s.now(), Method: r.Method, Route: route, Status: status, Outcome: linkbridge.AuditOutcome(status),
		RequestID: requestID(r), Source: sourceOf(r), Entities: entities,
	}
	rec.Action, rec.Operation = auditAction(r.Method, route)
	if p != nil {
		rec.ClientID, rec.Role, rec.ODS = p.ClientID, p.Role, p.ODS
	}
	if v := mux.Vars(r); v["id"] != "" && len(rec.Entities) == 0 {
		switch {
		case v["type"] != "":
			rec.Entities = []string{v["type"] + "/" + v["id"]}
		case strings.HasPrefix(route, "/sp/v1/referrals/"):
			rec.Entities = []string{"ServiceRequest/" + v["id"]}
		default:
			rec.Entities = []string{strings.TrimPrefix(strings.TrimSuffix(route, "/{id}"), "/fhir/") + "/" + v["id"]}
		}
	}
	rec.Query = auditQueryNames(route, mux.Vars(r)["type"], r.URL.Query())
	return rec
}

// unknownQueryName stands in the audit trail for every query parameter
// name the route does not support: a malformed query (a value sent as a
// name, e.g. "?9434765919") must not put personal data in the audit trail.
const unknownQueryName = "(unknown)"

// spQueryNames are the query parameters /sp/v1 takes.
var spQueryNames = []string{"service", "linkWorker", "status", "receivedFrom", "receivedTo", "limit", "offset", "from", "to", "practice"}

// auditQueryNames are the query parameter names an audit record keeps,
// sorted: those the route supports, and unknownQueryName once for all
// others.
func auditQueryNames(route, typ string, q url.Values) []string {
	known := func(name string) bool {
		switch {
		case strings.HasPrefix(route, "/sp/v1"):
			return slices.Contains(spQueryNames, name)
		case route == "/fhir/AuditEvent":
			return slices.Contains([]string{"date", "agent", "organization", "entity", "outcome", "_count", "_offset", "_format", "_pretty"}, name)
		case typ != "" && !strings.Contains(route, "{id}"): // a search
			return knownSearchParam(typ, name)
		}
		return slices.Contains([]string{"_format", "_pretty", "_summary", "_elements"}, name)
	}
	var names []string
	unknown := false
	for k := range q {
		if known(k) {
			names = append(names, k)
		} else {
			unknown = true
		}
	}
	slices.Sort(names)
	if unknown {
		names = append(names, unknownQueryName)
	}
	return names
}

// auditAction maps a request to the AuditEvent action and an operation
// name.
func auditAction(method, route string) (action, op string) {
	switch {
	case strings.HasPrefix(route, "/fhir/AuditEvent"):
		return "E", "audit-search"
	case route == "/fhir/$process-message":
		return "E", "process-message"
	case strings.HasPrefix(route, "/sp/v1"):
		switch {
		case method != http.MethodGet:
			return "U", "sp-change"
		case strings.HasSuffix(route, "{id}"):
			return "R", "sp-read"
		}
		return "E", "sp-list"
	case method == http.MethodPost && strings.HasSuffix(route, "/_search"):
		return "E", "search"
	case method == http.MethodPost:
		return "C", "create"
	case method == http.MethodPut:
		return "U", "update"
	case method == http.MethodDelete:
		return "D", "delete"
	case strings.HasSuffix(route, "/_history/{vid}"):
		return "R", "vread"
	case strings.HasSuffix(route, "/_history"):
		return "R", "history"
	case strings.HasSuffix(route, "/{id}"):
		return "R", "read"
	}
	return "E", "search"
}

// heldResponse is a ResponseWriter that keeps the answer (status, headers,
// body) until sendTo writes it out: the security layer sends a request's
// answer only once its audit record is stored.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func newHeldResponse() *heldResponse {
	return &heldResponse{header: http.Header{}, status: http.StatusOK}
}

// Header returns the held headers.
func (h *heldResponse) Header() http.Header { return h.header }

// WriteHeader holds the status (the first one written counts).
func (h *heldResponse) WriteHeader(code int) {
	if !h.wrote {
		h.status, h.wrote = code, true
	}
}

// Write holds body bytes.
func (h *heldResponse) Write(b []byte) (int, error) {
	h.wrote = true
	return h.body.Write(b)
}

// sendTo writes the held answer to w.
func (h *heldResponse) sendTo(w http.ResponseWriter) {
	dst := w.Header()
	for k, v := range h.header {
		dst[k] = v
	}
	w.WriteHeader(h.status)
	_, _ = w.Write(h.body.Bytes()) // the client may have gone; nothing to do then
}
