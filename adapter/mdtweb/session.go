package mdtweb

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// Browser sessions (docs/mdt.md#signing-in). A browser signs in once with
// what the API takes (a bearer token of a registered client, checked by
// the same Authenticator), or, with serve --dev-auth, by choosing a
// development client. The session is a cookie the server signs with
// HMAC-SHA256: it names the client, the scopes granted at sign-in, when it
// ends and a random CSRF secret; nothing is kept on the server, so any
// replica holding the same key (--session-key) reads it, and the client is
// looked up in the registry on every request (one removed from the
// registry is signed out at once).

const (
	// sessionCookie holds the signed session; csrfCookie the sign-in
	// form's CSRF secret before there is a session.
	sessionCookie = "lb_mdt_session"
	csrfCookie    = "lb_mdt_csrf"
	// DefaultSessionTTL is how long a sign-in lasts: a working day.
	DefaultSessionTTL = 8 * time.Hour
	cookiePath        = "/mdt"
)

// session is what the session cookie carries.
type session struct {
	Client  string   `json:"c"`
	Scopes  []string `json:"s"`
	Method  string   `json:"m"`
	Expires int64    `json:"e"`
	CSRF    string   `json:"x"`
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) sign(payload string) string {
	m := hmac.New(sha256.New, s.SessionKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// encodeSession signs a session into a cookie value.
func (s *Server) encodeSession(ss *session) (string, error) {
	b, err := json.Marshal(ss)
	if err != nil {
		return "", err
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + s.sign(payload), nil
}

// errNoSession is a request without a valid session.
var errNoSession = errors.New("no valid session")

// readSession returns the request's session when its cookie is present,
// signed with the key and not expired.
func (s *Server) readSession(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, errNoSession
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.sign(payload))) {
		return nil, errNoSession
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, errNoSession
	}
	var ss session
	if err := json.Unmarshal(b, &ss); err != nil || ss.Client == "" || ss.CSRF == "" {
		return nil, errNoSession
	}
	if s.now().Unix() >= ss.Expires {
		return nil, errNoSession
	}
	return &ss, nil
}

// principalOf resumes a session's principal from the client registry:
// errNoSession when the client is no longer registered or its role may not
// use the pages any more.
func (s *Server) principalOf(ss *session) (*linkbridge.Principal, error) {
	p, ok := s.Clients.Principal(ss.Client, ss.Scopes, ss.Method)
	if !ok || allowed(p) != nil {
		return nil, errNoSession
	}
	return p, nil
}

// allowed checks that a principal may use the MDT pages: MDT viewers, GP
// practices and services (each sees its own referrals, as at /fhir), with
// a scope that reads Tasks. Administrators read no personal data.
func allowed(p *linkbridge.Principal) error {
	switch p.Role {
	case linkbridge.RoleMDT, linkbridge.RoleGP, linkbridge.RoleService:
	default:
		return linkbridge.Errorf(linkbridge.EFORBIDDEN, "this client's role may not use the MDT pages")
	}
	if !p.HasScope("Task", linkbridge.ScopeRead) {
		return linkbridge.Errorf(linkbridge.EFORBIDDEN, "this client's scopes do not allow reading referrals")
	}
	return nil
}

// setCookie sets a cookie of the pages: HttpOnly, SameSite=Strict, Path
// /mdt, Secure unless InsecureCookies (plain HTTP on a loopback address in
// development).
func (s *Server) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: cookiePath, MaxAge: maxAge, HttpOnly: true,
		Secure: !s.InsecureCookies, SameSite: http.SameSiteStrictMode})
}

// startSession signs the principal in.
func (s *Server) startSession(w http.ResponseWriter, p *linkbridge.Principal) error {
	ttl := s.SessionTTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	v, err := s.encodeSession(&session{Client: p.ClientID, Scopes: p.Scopes, Method: p.Method, Expires: s.now().Add(ttl).Unix(), CSRF: randomToken()})
	if err != nil {
		return err
	}
	s.setCookie(w, sessionCookie, v, int(ttl.Seconds()))
	s.setCookie(w, csrfCookie, "", -1)
	return nil
}

// sameOrigin refuses a form post that a browser says came from another
// site: Sec-Fetch-Site, when sent, must be same-origin, and Origin, when
// sent, must be this host.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	o = strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://")
	return o == r.Host
}

// checkCSRF compares a form's csrf field with the expected secret in
// constant time.
func checkCSRF(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return want != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 && sameOrigin(r)
}
