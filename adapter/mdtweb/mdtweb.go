// Package mdtweb is the MDT web page: what a multidisciplinary team (a
// primary care network, its practices, the social prescribing service)
// sees of the people referred to social prescribing, at /mdt. Pages are
// rendered on the server with html/template and styled with the NHS.UK
// frontend (vendored under assets/nhsuk, embedded in the binary): a board
// of the people referred by the viewer's practices, a page per person (the
// episode's timeline in plain words, the wellbeing scores as charts, the
// coded entries written to the GP record) and the period report with
// charts. Pages are live: a change committed through /sp/v1 or /fhir, by
// this process or another replica, reaches every open page through
// Server-Sent Events (events.go).
//
// Authentication and authorisation are the API's: a browser signs in with
// a registered client's credentials (session.go), every read goes through
// the authorising store (access.Store) and every page view is recorded in
// the audit trail. No personal data goes into URLs or logs: URLs carry
// referral ids and filter values, never names or NHS numbers.
// docs/mdt.md describes the pages, the words they use and the
// accessibility choices.
package mdtweb

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/mdt.js assets/mdt.css assets/nhsuk/nhsuk-frontend.min.css assets/nhsuk/nhsuk-frontend.min.js assets/nhsuk/images assets/nhsuk/LICENSE
var assetFS embed.FS

// Authenticator checks a bearer token as the API does (adapter/auth):
// the sign-in form accepts what the API accepts.
type Authenticator interface {
	Authenticate(r *http.Request) (*linkbridge.Principal, error)
}

// Clients resumes a session's client from the client registry
// (adapter/auth.Authenticator.Principal): false when the client is not
// registered (any more). Scopes nil means every registered scope.
type Clients interface {
	Principal(clientID string, scopes []string, method string) (*linkbridge.Principal, bool)
}

// Server serves the MDT pages.
type Server struct {
	// Store and Cases are the social prescribing store; Handler wraps
	// them in the authorising store (access.Store).
	Store linkbridge.Store
	Cases linkbridge.CaseStore
	// Codec reads the Patient the referrer sent (the person's name).
	Codec *fhirjson.Codec
	// Audit records every page view (nil: none, as with serve --dev
	// without a store that keeps one).
	Audit linkbridge.AuditStore
	// Feed announces committed referral changes (nil: pages are not live).
	Feed linkbridge.ReferralFeed
	// Logger receives operational messages (ids only).
	Logger *slog.Logger
	// Now returns the current time; defaults to time.Now.
	Now func() time.Time
	// Systems are the deployment's URIs (coded entries' local codes).
	Systems fhirmap.Systems
	// DNAReviewAfter is the service's did-not-attend policy (as the API's).
	DNAReviewAfter int

	// Auth checks a bearer token at sign-in and Clients resumes sessions;
	// both nil turns authentication off (serve --dev: loopback only),
	// when every referral is shown, as the API then answers everyone.
	Auth    Authenticator
	Clients Clients
	// SessionKey signs session cookies: at least 32 bytes, the same on
	// every replica behind one address (serve --session-key).
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts (DefaultSessionTTL).
	SessionTTL time.Duration
	// DevSignIn lists clients a developer signs in as with one click
	// (serve --dev-auth); empty in production.
	DevSignIn []string
	// InsecureCookies drops the Secure attribute of cookies: only for
	// plain HTTP on a loopback address (serve --dev-auth without TLS).
	InsecureCookies bool
	// Heartbeat is how often an idle event stream sends a comment
	// (DefaultHeartbeat).
	Heartbeat time.Duration

	broker broker
	tmpl   *template.Template
	// stop ends the open event streams (Start's context).
	stop <-chan struct{}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// secured reports whether authentication is on.
func (s *Server) secured() bool { return s.Auth != nil }

// Handler returns the routed handler of /mdt.
func (s *Server) Handler() (http.Handler, error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.secured() && (s.Clients == nil || len(s.SessionKey) < 32) {
		return nil, errors.New("mdtweb: with authentication on, Clients and a session key of at least 32 bytes are required")
	}
	if _, ok := s.Store.(*access.Store); !ok {
		sc := &access.Store{Store: s.Store, Cases: s.Cases}
		s.Store, s.Cases = sc, sc
	}
	t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("mdtweb: templates: %w", err)
	}
	s.tmpl = t
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	r := mux.NewRouter()
	r.Use(securityHeaders)
	r.PathPrefix("/mdt/assets/").Handler(http.StripPrefix("/mdt/assets/", assetHandler(assets))).Methods(http.MethodGet)
	r.HandleFunc("/mdt/sign-in", s.handleSignInForm).Methods(http.MethodGet)
	r.HandleFunc("/mdt/sign-in", s.handleSignIn).Methods(http.MethodPost)
	r.HandleFunc("/mdt/sign-out", s.handleSignOut).Methods(http.MethodPost)
	r.Handle("/mdt", s.page("board", s.boardPage)).Methods(http.MethodGet)
	r.Handle("/mdt/", http.RedirectHandler("/mdt", http.StatusMovedPermanently)).Methods(http.MethodGet)
	r.Handle("/mdt/board", s.page("board-live", s.boardPage)).Methods(http.MethodGet)
	r.Handle("/mdt/people/{id}", s.page("person", s.personPage)).Methods(http.MethodGet)
	r.Handle("/mdt/people/{id}/live", s.page("person-live", s.personPage)).Methods(http.MethodGet)
	r.Handle("/mdt/reports", s.page("reports", s.reportsPage)).Methods(http.MethodGet)
	r.Handle("/mdt/reports/live", s.page("reports-live", s.reportsPage)).Methods(http.MethodGet)
	r.Handle("/mdt/events", s.authenticated(s.handleEvents, "mdt-events")).Methods(http.MethodGet)
	r.NotFoundHandler = securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, http.StatusNotFound, "Page not found", "There is no page at this address.")
	}))
	return r, nil
}

// securityHeaders are sent with every answer: a strict
// Content-Security-Policy (scripts, styles, fonts and connections from
// this origin only; no inline script or style, no framing), no MIME
// sniffing, no referrer, and no caching of pages that hold personal data.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin, not no-referrer: with no-referrer a browser posts
		// forms with "Origin: null", and the origin check refuses them.
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/mdt/assets/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// assetHandler serves the embedded assets, cacheable for a day.
func assetHandler(assets fs.FS) http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// signedIn returns the request's principal: from its session, or nil
// with authentication off. errNoSession when it must sign in.
func (s *Server) signedIn(r *http.Request) (*linkbridge.Principal, *session, error) {
	if !s.secured() {
		return nil, nil, nil
	}
	ss, err := s.readSession(r)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.principalOf(ss)
	if err != nil {
		return nil, nil, err
	}
	return p, ss, nil
}

// routeOf is the route template a request matched.
func routeOf(r *http.Request) string {
	if cr := mux.CurrentRoute(r); cr != nil {
		if t, err := cr.GetPathTemplate(); err == nil {
			return t
		}
	}
	return "(no route)"
}

// authenticated runs an event stream for a signed-in principal (401
// otherwise), recording its opening in the audit trail.
func (s *Server) authenticated(h func(http.ResponseWriter, *http.Request, *linkbridge.Principal), op string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _, err := s.signedIn(r)
		if err != nil {
			_ = s.audit(r, p, op, http.StatusUnauthorized, nil)
			http.Error(w, "sign in at /mdt/sign-in", http.StatusUnauthorized)
			return
		}
		if err := s.audit(r, p, op, http.StatusOK, nil); err != nil {
			http.Error(w, "the audit trail is unavailable", http.StatusServiceUnavailable)
			return
		}
		h(w, r, p)
	})
}

// pageData is what every page template gets.
type pageData struct {
	Title     string
	Nav       string // "board", "reports"
	Principal *linkbridge.Principal
	Secured   bool
	CSRF      string
	// Live is the URL of the page's fragment, fetched again on change;
	// Referral, when set, is the one referral the page follows.
	Live     string
	Referral string
	View     any
}

// pageFunc renders a page's view into d, or returns an error.
type pageFunc func(r *http.Request, d *pageData) error

// page serves a page (or, for a "-live" template, its live fragment): the
// principal signed in (a page redirects to sign-in, a fragment answers
// 401), its reads through the authorising store with the principal in the
// context, the answer rendered into a buffer, the view recorded in the
// audit trail with every resource it disclosed, then sent. Should the
// record not be stored, nothing is disclosed (503).
func (s *Server) page(name string, fn pageFunc) http.Handler {
	fragment := strings.HasSuffix(name, "-live")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ss, err := s.signedIn(r)
		if err != nil {
			_ = s.audit(r, nil, "mdt-view", http.StatusUnauthorized, nil)
			if fragment {
				http.Error(w, "signed out", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/mdt/sign-in", http.StatusSeeOther)
			return
		}
		trail := &access.Trail{}
		ctx := access.WithTrail(r.Context(), trail)
		if p != nil {
			ctx = linkbridge.NewContextWithPrincipal(ctx, p)
			trail.SetClient(p.ClientID)
		}
		d := &pageData{Principal: p, Secured: s.secured()}
		if ss != nil {
			d.CSRF = ss.CSRF
		}
		status := http.StatusOK
		var body bytes.Buffer
		if err := fn(r.WithContext(ctx), d); err != nil {
			status = s.errorPage(&body, err)
		} else if err := s.tmpl.ExecuteTemplate(&body, name, d); err != nil {
			s.Logger.Error("MDT page: render", slog.String("route", routeOf(r)), slog.Any("error", err))
			body.Reset()
			status = s.errorPage(&body, err)
		}
		_, entities := trail.Snapshot()
		if err := s.audit(r, p, "mdt-view", status, entities); err != nil && status < 400 {
			s.renderError(w, http.StatusServiceUnavailable, "Sorry, the page is unavailable", "The view could not be recorded in the audit trail, so nothing is shown. Try again later.")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(body.Bytes())
	})
}

// errorPage renders the page for an error and returns its status: 404 for
// a referral the principal may not read (as for one that does not
// exist), 403, 400, else 500 (logged).
func (s *Server) errorPage(buf *bytes.Buffer, err error) int {
	status, title, msg := http.StatusInternalServerError, "Sorry, there is a problem", "Try again later."
	switch linkbridge.ErrorCode(err) {
	case linkbridge.ENOTFOUND:
		status, title, msg = http.StatusNotFound, "Page not found", "There is no person at this address, or you may not see them."
	case linkbridge.EFORBIDDEN:
		status, title, msg = http.StatusForbidden, "You cannot see this page", linkbridge.ErrorMessage(err)
	case linkbridge.EINVALID:
		status, title, msg = http.StatusBadRequest, "Check what you asked for", linkbridge.ErrorMessage(err)
	default:
		s.Logger.Error("MDT page failed", slog.Any("error", err))
	}
	buf.Reset()
	_ = s.tmpl.ExecuteTemplate(buf, "error", &pageData{Title: title, View: msg, Secured: s.secured()})
	return status
}

// renderError writes an error page.
func (s *Server) renderError(w http.ResponseWriter, status int, title, msg string) {
	var buf bytes.Buffer
	_ = s.tmpl.ExecuteTemplate(&buf, "error", &pageData{Title: title, View: msg, Secured: s.secured()})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// audit records one page view, sign-in or stream in the audit trail: the
// route template (never the path's values or the query's), the query's
// parameter names, the resources disclosed. Its error is logged.
func (s *Server) audit(r *http.Request, p *linkbridge.Principal, op string, status int, entities []string) error {
	if s.Audit == nil {
		return nil
	}
	rec := &linkbridge.AuditRecord{Recorded: s.now(), Action: "R", Operation: op, Method: r.Method, Route: routeOf(r),
		Entities: entities, Status: status, Outcome: linkbridge.AuditOutcome(status), Source: sourceOf(r)}
	if op != "mdt-view" {
		rec.Action = "E"
	}
	if p != nil {
		rec.ClientID, rec.Role, rec.ODS = p.ClientID, p.Role, p.ODS
	}
	if id := mux.Vars(r)["id"]; id != "" && len(rec.Entities) == 0 {
		rec.Entities = []string{"ServiceRequest/" + id}
	}
	for name := range r.URL.Query() {
		if slices.Contains(queryNames, name) {
			rec.Query = append(rec.Query, name)
		} else if !slices.Contains(rec.Query, "(unknown)") {
			rec.Query = append(rec.Query, "(unknown)")
		}
	}
	slices.Sort(rec.Query)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.Audit.RecordAudit(ctx, rec); err != nil {
		s.Logger.ErrorContext(ctx, "MDT page: audit record not stored", slog.String("route", rec.Route), slog.String("client_id", rec.ClientID), slog.Any("error", err))
		return err
	}
	return nil
}

// queryNames are the query parameters the pages take.
var queryNames = []string{"group", "linkWorker", "practice", "flagged", "page", "from", "to"}

func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// boardPage is the board and its live fragment.
func (s *Server) boardPage(r *http.Request, d *pageData) error {
	q := r.URL.Query()
	f := boardFilter{Group: q.Get("group"), LinkWorker: q.Get("linkWorker"), Practice: q.Get("practice"), Flagged: q.Get("flagged") == "yes"}
	if f.Group != "" && !slices.Contains(groups, statusGroup(f.Group)) {
		return linkbridge.Errorf(linkbridge.EINVALID, "there is no status group %q", f.Group)
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return linkbridge.Errorf(linkbridge.EINVALID, "page must be a whole number from 1, not %q", p)
		}
		f.Page = n
	}
	v, err := s.board(r.Context(), f)
	if err != nil {
		return err
	}
	vals := url.Values{}
	for k, val := range map[string]string{"group": f.Group, "linkWorker": f.LinkWorker, "practice": f.Practice} {
		if val != "" {
			vals.Set(k, val)
		}
	}
	if f.Flagged {
		vals.Set("flagged", "yes")
	}
	v.Query = vals.Encode()
	withPage := func(n int) string {
		pv := url.Values{}
		for k, val := range vals {
			pv[k] = val
		}
		if n > 1 {
			pv.Set("page", strconv.Itoa(n))
		}
		return "?" + pv.Encode()
	}
	if v.Page > 1 {
		v.PrevQuery = withPage(v.Page - 1)
	}
	if v.Page < v.Pages {
		v.NextQuery = withPage(v.Page + 1)
	}
	d.Title, d.Nav, d.View = "People referred to social prescribing", "board", v
	d.Live = "/mdt/board"
	if live := strings.TrimPrefix(withPage(v.Page), "?"); live != "" {
		d.Live += "?" + live
	}
	return nil
}

// personPage is a person's page and its live fragment.
func (s *Server) personPage(r *http.Request, d *pageData) error {
	id := mux.Vars(r)["id"]
	v, err := s.person(r.Context(), id)
	if err != nil {
		return err
	}
	d.Title, d.Nav, d.View = v.Name, "board", v
	d.Live, d.Referral = "/mdt/people/"+url.PathEscape(id)+"/live", id
	return nil
}

// reportsPage is the period report and its live fragment; by default the
// current financial year (April to March) up to this month.
func (s *Server) reportsPage(r *http.Request, d *pageData) error {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	if from == "" || to == "" {
		now := s.now().In(london)
		y := now.Year()
		if now.Month() < time.April {
			y--
		}
		from, to = fmt.Sprintf("%d-04", y), now.Format("2006-01")
	}
	v, err := s.report(r.Context(), from, to)
	if err != nil {
		return err
	}
	d.Title, d.Nav, d.View = "Reports", "reports", v
	d.Live = "/mdt/reports?" + url.Values{"from": {from}, "to": {to}}.Encode()
	d.Live = strings.Replace(d.Live, "/mdt/reports?", "/mdt/reports/live?", 1)
	return nil
}

// signInView is the sign-in page.
type signInView struct {
	CSRF  string
	Dev   []string
	Error string
}

// handleSignInForm shows the sign-in form (with authentication off, the
// board instead).
func (s *Server) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	if !s.secured() {
		http.Redirect(w, r, "/mdt", http.StatusSeeOther)
		return
	}
	s.signInForm(w, http.StatusOK, "")
}

func (s *Server) signInForm(w http.ResponseWriter, status int, msg string) {
	csrf := randomToken()
	s.setCookie(w, csrfCookie, csrf, 3600)
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, "sign-in", &pageData{Title: "Sign in", Secured: true,
		View: &signInView{CSRF: csrf, Dev: s.DevSignIn, Error: msg}}); err != nil {
		s.Logger.Error("MDT sign-in page: render", slog.Any("error", err))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// maxFormBytes bounds a sign-in form (a token is a few kilobytes).
const maxFormBytes = 64 << 10

// handleSignIn signs a browser in: with a bearer token the API would
// accept (the same Authenticator: issuer, audience, signature, expiry,
// registered client, scopes), or, with serve --dev-auth, as one of the
// development clients. The form's CSRF secret must match its cookie. Why
// a token failed is logged, never shown.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if !s.secured() {
		http.Redirect(w, r, "/mdt", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	c, err := r.Cookie(csrfCookie)
	if err != nil || r.ParseForm() != nil || !checkCSRF(r, c.Value) {
		_ = s.audit(r, nil, "mdt-sign-in", http.StatusForbidden, nil)
		s.signInForm(w, http.StatusForbidden, "The form had expired. Please sign in again.")
		return
	}
	var p *linkbridge.Principal
	if dev := r.PostFormValue("client"); dev != "" {
		if !slices.Contains(s.DevSignIn, dev) {
			_ = s.audit(r, nil, "mdt-sign-in", http.StatusForbidden, nil)
			s.signInForm(w, http.StatusForbidden, "That development client cannot sign in here.")
			return
		}
		var ok bool
		if p, ok = s.Clients.Principal(dev, nil, "dev-session"); !ok {
			s.signInForm(w, http.StatusForbidden, "That development client is not registered.")
			return
		}
	} else {
		tok := strings.TrimSpace(r.PostFormValue("token"))
		req := r.Clone(r.Context())
		req.Header = http.Header{"Authorization": {"Bearer " + tok}}
		if p, err = s.Auth.Authenticate(req); err != nil || tok == "" {
			s.Logger.InfoContext(r.Context(), "MDT sign-in failed", slog.String("source", sourceOf(r)), slog.Any("reason", err))
			_ = s.audit(r, nil, "mdt-sign-in", http.StatusUnauthorized, nil)
			s.signInForm(w, http.StatusUnauthorized, "That access token was not accepted. Check it has not expired and try again.")
			return
		}
		p.Method = "session"
	}
	if err := allowed(p); err != nil {
		_ = s.audit(r, p, "mdt-sign-in", http.StatusForbidden, nil)
		s.signInForm(w, http.StatusForbidden, linkbridge.ErrorMessage(err))
		return
	}
	if err := s.audit(r, p, "mdt-sign-in", http.StatusSeeOther, nil); err != nil {
		s.signInForm(w, http.StatusServiceUnavailable, "Signing in could not be recorded in the audit trail. Try again later.")
		return
	}
	if err := s.startSession(w, p); err != nil {
		s.signInForm(w, http.StatusInternalServerError, "Signing in failed. Try again.")
		return
	}
	http.Redirect(w, r, "/mdt", http.StatusSeeOther)
}

// handleSignOut ends the session (its CSRF secret must be posted).
func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if ss, err := s.readSession(r); err == nil {
		if r.ParseForm() != nil || !checkCSRF(r, ss.CSRF) {
			http.Error(w, "the form had expired", http.StatusForbidden)
			return
		}
	}
	s.setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/mdt/sign-in", http.StatusSeeOther)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"date":     humanDate,
	"datetime": humanDateTime,
	"iso":      isoDate,
	"isoTime": func(t time.Time) string {
		return t.UTC().Format(time.RFC3339)
	},
	"roleWords": func(p *linkbridge.Principal) string {
		switch p.Role {
		case linkbridge.RoleMDT:
			return "MDT viewer for practices " + strings.Join(p.Practices, ", ")
		case linkbridge.RoleGP:
			return "GP practice " + p.ODS
		case linkbridge.RoleService:
			return "Social prescribing service " + p.ODS
		}
		return string(p.Role)
	},
	"query": func(base, extra string) string {
		if extra == "" {
			return base
		}
		return base + "?" + extra
	},
	"dict2": func(head string, rows []option) countTable { return countTable{Head: head, Rows: rows} },
}

// countTable is a two-column table of counts.
type countTable struct {
	Head string
	Rows []option
}
