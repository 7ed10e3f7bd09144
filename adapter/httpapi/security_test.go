package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/auth"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

const (
	secIssuer   = "https://auth.example.nhs.uk"
	secAudience = "https://linkbridge.example.org/fhir"
)

// secClients is the client registry of the security tests. The fixture
// referral is made by A81001 and addressed to Y02662; the message fixture
// by C82010 to Y06741.
var secClients = []auth.Client{
	{ID: "gp-own", Role: linkbridge.RoleGP, ODS: "A81001", Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write", "system/Subscription.write"}},
	{ID: "gp-other", Role: linkbridge.RoleGP, ODS: "B82002", Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write"}},
	{ID: "gp-msg", Role: linkbridge.RoleGP, ODS: "C82010", Scopes: []string{"system/*.read", "system/ServiceRequest.write"}},
	{ID: "sp-own", Role: linkbridge.RoleService, ODS: "Y02662", Scopes: []string{"system/*.read", "system/Task.write"}},
	// A service's intake of self-referrals: it may create referrals.
	{ID: "sp-intake", Role: linkbridge.RoleService, ODS: "Y02662", Scopes: []string{"system/*.read", "system/ServiceRequest.write", "system/Task.write"}},
	{ID: "sp-other", Role: linkbridge.RoleService, ODS: "Y09999", Scopes: []string{"system/*.read", "system/Task.write"}},
	{ID: "mdt-own", Role: linkbridge.RoleMDT, ODS: "U12345", Practices: []string{"A81001", "A81002"}, Scopes: []string{"system/*.read", "system/Subscription.write"}},
	{ID: "mdt-other", Role: linkbridge.RoleMDT, ODS: "U99999", Practices: []string{"B82002"}, Scopes: []string{"system/*.read", "system/Subscription.write"}},
	{ID: "admin", Role: linkbridge.RoleAdmin, ODS: "Y02662", Scopes: []string{"system/AuditEvent.read"}},
	{ID: "gp-readonly", Role: linkbridge.RoleGP, ODS: "A81001", Scopes: []string{"system/Task.read"}},
}

// secScopes is a token's scope claim for a client: all its registered
// scopes (a token must carry one; see auth).
func secScopes(client string) string {
	for _, c := range secClients {
		if c.ID == client {
			return strings.Join(c.Scopes, " ")
		}
	}
	return "system/*.read"
}

// secServer is a test server with authentication, audit and (optionally)
// rate limits on, and a key to mint tokens with.
type secServer struct {
	*testServer
	key *ecdsa.PrivateKey
}

func newSecServer(t *testing.T, logger *slog.Logger, opts ...func(*httpapi.Server)) *secServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := auth.JWKS(key.Public(), "k1", jwkset.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(auth.Config{Issuer: secIssuer, Audience: []string{secAudience}, JWKSFile: "jwks.json", Clients: secClients})
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := auth.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := auth.New(context.Background(), c, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, append([]func(*httpapi.Server){func(s *httpapi.Server) {
		s.Auth = a
		s.Audit = s.Store.(linkbridge.AuditStore)
		s.Logger = logger
	}}, opts...)...)
	return &secServer{testServer: ts, key: key}
}

// token mints a valid token for a client.
func (ss *secServer) token(client string) string {
	ss.t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": secIssuer, "aud": secAudience, "sub": client, "client_id": client,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "scope": secScopes(client),
	})
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(ss.key)
	if err != nil {
		ss.t.Fatal(err)
	}
	return s
}

// call sends a request as client ("" for none) to a path under the server
// root and returns status, headers and body. FHIR bodies are checked by
// ts.do; /sp/v1 bodies are JSON.
func (ss *secServer) call(client, method, path string, body []byte, h hdr) (int, http.Header, []byte) {
	ss.t.Helper()
	root := strings.TrimSuffix(ss.URL, "/fhir")
	hh := hdr{}
	for k, v := range h {
		hh[k] = v
	}
	if client != "" {
		hh["Authorization"] = "Bearer " + ss.token(client)
	}
	if strings.HasPrefix(path, "/fhir") {
		r := ss.do(method, root+path, body, hh)
		return r.Status, r.Header, r.Body
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, root+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hh {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ss.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// total reads a searchset's or /sp/v1 page's total.
func total(t *testing.T, b []byte) int {
	t.Helper()
	var d struct {
		Total *int `json:"total"`
	}
	if err := json.Unmarshal(b, &d); err != nil || d.Total == nil {
		t.Fatalf("no total in %s", b)
	}
	return *d.Total
}

// TestAuthorizationMatrix runs every endpoint of /fhir and /sp/v1 as every
// role, for the caller's own organisation's referral and another's.
func TestAuthorizationMatrix(t *testing.T) {
	ss := newSecServer(t, nil)
	// The referral: made by A81001, addressed to Y02662.
	st, _, b := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), nil)
	if st != http.StatusOK {
		t.Fatalf("intake as gp-own: %d %s", st, b)
	}
	var sr, task, pat string
	for _, e := range bundleOf(t, b) {
		typ, id, _ := parseLocation(t, e)
		switch typ {
		case "ServiceRequest":
			sr = id
		case "Task":
			task = id
		case "Patient":
			pat = id
		}
	}
	nhs := url.QueryEscape(linkbridge.NHSNumberSystem + "|" + nhsReferralTxn)
	stale := hdr{"If-Match": `W/"999"`}
	taskBody := mustJSON(t, map[string]any{"resourceType": "Task", "id": task, "status": "cancelled", "intent": "order",
		"focus": map[string]any{"reference": "ServiceRequest/" + sr}, "for": map[string]any{"reference": "Patient/" + pat}})
	srBody := mustJSON(t, map[string]any{"resourceType": "ServiceRequest", "id": sr, "status": "revoked", "intent": "order",
		"subject": map[string]any{"reference": "Patient/" + pat}})
	second := withIdentifier(t, mustRead(t, fixReferralTxn), "SEC-2")

	roles := []string{"gp-own", "gp-other", "sp-own", "sp-other", "mdt-own", "mdt-other", "admin"}
	// want maps each role to the expected status, in roles order.
	type row struct {
		name   string
		method string
		path   string
		body   []byte
		h      hdr
		want   [7]int
		// totals, for searches answered 200, in roles order (-1: not checked).
		totals [7]int
	}
	const (
		ok  = http.StatusOK
		nf  = http.StatusNotFound
		fb  = http.StatusForbidden
		pre = http.StatusPreconditionFailed
	)
	no := [7]int{-1, -1, -1, -1, -1, -1, -1}
	readRow := [7]int{ok, nf, ok, nf, ok, nf, fb}
	rows := []row{
		{"Metadata", "GET", "/fhir/metadata", nil, nil, [7]int{ok, ok, ok, ok, ok, ok, ok}, no},
		{"ReadTask", "GET", "/fhir/Task/" + task, nil, nil, readRow, no},
		{"ReadPatient", "GET", "/fhir/Patient/" + pat, nil, nil, readRow, no},
		{"ReadServiceRequest", "GET", "/fhir/ServiceRequest/" + sr, nil, nil, readRow, no},
		{"VRead", "GET", "/fhir/Task/" + task + "/_history/1", nil, nil, readRow, no},
		{"History", "GET", "/fhir/ServiceRequest/" + sr + "/_history", nil, nil, readRow, no},
		{"SearchTaskInclude", "GET", "/fhir/Task?_id=" + task + "&_include=Task:patient&_include=Task:focus", nil, nil,
			[7]int{ok, ok, ok, ok, ok, ok, fb}, [7]int{1, 0, 1, 0, 1, 0, -1}},
		{"SearchAllTasks", "GET", "/fhir/Task", nil, nil, [7]int{ok, ok, ok, ok, ok, ok, fb}, [7]int{1, 0, 1, 0, 1, 0, -1}},
		{"SearchPatientByNHS", "GET", "/fhir/Patient?identifier=" + nhs, nil, nil, [7]int{ok, ok, ok, ok, ok, ok, fb}, [7]int{1, 0, 1, 0, 1, 0, -1}},
		{"ChainedSearch", "GET", "/fhir/Task?patient.identifier=" + nhs, nil, nil, [7]int{ok, ok, ok, ok, ok, ok, fb}, [7]int{1, 0, 1, 0, 1, 0, -1}},
		{"PostSearch", "POST", "/fhir/Patient/_search", nil, nil, [7]int{ok, ok, ok, ok, ok, ok, fb}, no},
		{"UpdateTask", "PUT", "/fhir/Task/" + task, taskBody, stale, [7]int{pre, nf, pre, nf, fb, fb, fb}, no},
		{"RevokeServiceRequest", "PUT", "/fhir/ServiceRequest/" + sr, srBody, stale, [7]int{pre, nf, fb, fb, fb, fb, fb}, no},
		{"SPCase", "GET", "/sp/v1/referrals/" + sr, nil, nil, [7]int{fb, fb, ok, nf, fb, fb, fb}, no},
		{"SPInbox", "GET", "/sp/v1/referrals?service=Y02662", nil, nil, [7]int{fb, fb, ok, ok, fb, fb, fb}, [7]int{-1, -1, 1, 0, -1, -1, -1}},
		{"SPInboxAll", "GET", "/sp/v1/referrals", nil, nil, [7]int{fb, fb, ok, ok, fb, fb, fb}, [7]int{-1, -1, 1, 0, -1, -1, -1}},
		{"SPConsent", "PUT", "/sp/v1/referrals/" + sr + "/consent", []byte(`{"consent":"full"}`), stale, [7]int{fb, fb, pre, nf, fb, fb, fb}, no},
		{"SPAction", "POST", "/sp/v1/referrals/" + sr + "/actions", []byte(`{"action":"accept"}`), stale, [7]int{fb, fb, pre, nf, fb, fb, fb}, no},
		{"SPCaseload", "GET", "/sp/v1/caseload", nil, nil, [7]int{fb, fb, ok, ok, fb, fb, fb}, no},
		{"SPReportCaseload", "GET", "/sp/v1/reports/caseload", nil, nil, [7]int{fb, fb, ok, ok, fb, fb, fb}, no},
		{"SPReportCaseloadOfService", "GET", "/sp/v1/reports/caseload?service=Y02662", nil, nil, [7]int{fb, fb, ok, fb, fb, fb, fb}, no},
		// The period report is also practices' and networks', each over its
		// own referrals: naming another organisation is 403.
		{"SPReportPeriod", "GET", "/sp/v1/reports/period?from=2020&to=2030", nil, nil, [7]int{ok, ok, ok, ok, ok, ok, fb}, no},
		{"SPReportPeriodOfService", "GET", "/sp/v1/reports/period?from=2020&to=2030&service=Y02662", nil, nil, [7]int{ok, ok, ok, fb, ok, ok, fb}, no},
		{"SPReportPeriodOfPractice", "GET", "/sp/v1/reports/period?from=2020&to=2030&practice=A81001", nil, nil, [7]int{ok, fb, ok, ok, ok, fb, fb}, no},
		{"SPOpenAPI", "GET", "/sp/v1/openapi.json", nil, nil, [7]int{ok, ok, ok, ok, ok, ok, ok}, no},
		{"AuditSearch", "GET", "/fhir/AuditEvent", nil, nil, [7]int{fb, fb, fb, fb, fb, fb, ok}, no},
		{"AuditRead", "GET", "/fhir/AuditEvent/does-not-exist", nil, nil, [7]int{fb, fb, fb, fb, fb, fb, nf}, no},
		// Writes that create referrals come last: the totals above count one.
		{"Intake", "POST", "/fhir", second, nil, [7]int{ok, fb, fb, fb, fb, fb, fb}, no},
		// The fixture names another practice as requester: refused for gp-own too.
		{"CreateServiceRequest", "POST", "/fhir/ServiceRequest", mustRead(t, fixSRContained), nil, [7]int{fb, fb, fb, fb, fb, fb, fb}, no},
		{"CreateTask", "POST", "/fhir/Task", mustRead(t, fixTaskContained), nil, [7]int{fb, fb, fb, fb, fb, fb, fb}, no},
		{"ProcessMessage", "POST", "/fhir/$process-message", mustRead(t, fixMsgNew),
			hdr{"X-Request-Id": "33333333-3333-4333-8333-333333333333", "X-Correlation-Id": "44444444-4444-4444-8444-444444444444"},
			[7]int{fb, fb, fb, fb, fb, fb, fb}, no},
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			for i, role := range roles {
				st, h, b := ss.call(role, tt.method, tt.path, tt.body, tt.h)
				if st != tt.want[i] {
					t.Errorf("%s as %s: status %d, want %d; body %s", tt.name, role, st, tt.want[i], b)
					continue
				}
				if st == fb && strings.HasPrefix(tt.path, "/fhir") && !bytes.Contains(b, []byte(`"forbidden"`)) {
					t.Errorf("%s as %s: 403 without issue code forbidden: %s", tt.name, role, b)
				}
				if st == nf && h.Get("ETag") != "" {
					t.Errorf("%s as %s: 404 with an ETag", tt.name, role)
				}
				if tt.totals[i] >= 0 && st == ok {
					if got := total(t, b); got != tt.totals[i] {
						t.Errorf("%s as %s: total %d, want %d", tt.name, role, got, tt.totals[i])
					}
					if tt.totals[i] == 0 && bytes.Contains(b, []byte(`"entry"`)) {
						t.Errorf("%s as %s: an out-of-scope search leaks the referral: %s", tt.name, role, b)
					}
				}
			}
		})
	}
	t.Run("IncludeStaysInScope", func(t *testing.T) {
		_, _, b := ss.call("sp-own", "GET", "/fhir/Task?_id="+task+"&_include=Task:patient&_include=Task:focus", nil, nil)
		for _, want := range []string{"Patient/" + pat, "ServiceRequest/" + sr} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("in-scope _include lacks %s", want)
			}
		}
	})
	t.Run("OutOfScopeIsNotFound", func(t *testing.T) {
		// The other organisation's answer equals the answer for an id that
		// does not exist, but for the id.
		for _, typ := range []string{"Task", "Patient", "ServiceRequest"} {
			id := map[string]string{"Task": task, "Patient": pat, "ServiceRequest": sr}[typ]
			_, _, hidden := ss.call("gp-other", "GET", "/fhir/"+typ+"/"+id, nil, nil)
			_, _, missing := ss.call("gp-other", "GET", "/fhir/"+typ+"/does-not-exist", nil, nil)
			if got, want := strings.ReplaceAll(string(hidden), id, "X"), strings.ReplaceAll(string(missing), "does-not-exist", "X"); got != want {
				t.Errorf("%s: out of scope\n%s\nmissing\n%s", typ, got, want)
			}
		}
		_, _, hidden := ss.call("sp-other", "GET", "/sp/v1/referrals/"+sr, nil, nil)
		_, _, missing := ss.call("sp-other", "GET", "/sp/v1/referrals/does-not-exist", nil, nil)
		if got, want := strings.ReplaceAll(string(hidden), sr, "X"), strings.ReplaceAll(string(missing), "does-not-exist", "X"); got != want {
			t.Errorf("/sp/v1: out of scope %s, missing %s", got, want)
		}
	})
	t.Run("MessageFromItsGP", func(t *testing.T) {
		st, _, b := ss.call("gp-msg", "POST", "/fhir/$process-message", mustRead(t, fixMsgNew),
			hdr{"X-Request-Id": "11111111-1111-4111-8111-111111111111", "X-Correlation-Id": "22222222-2222-4222-8222-222222222222"})
		if st != ok {
			t.Fatalf("$process-message as its GP: %d %s", st, b)
		}
		// The message's referral is C82010's: gp-own does not see it.
		_, _, b = ss.call("gp-own", "GET", "/fhir/ServiceRequest", nil, nil)
		if got := total(t, b); got != 2 {
			t.Errorf("gp-own sees %d ServiceRequests, want 2 (its own two)", got)
		}
	})
	t.Run("ScopeNarrowsRole", func(t *testing.T) {
		if st, _, b := ss.call("gp-readonly", "GET", "/fhir/Patient/"+pat, nil, nil); st != fb {
			t.Errorf("read Patient with only system/Task.read: %d %s", st, b)
		}
		if st, _, b := ss.call("gp-readonly", "GET", "/fhir/Task/"+task, nil, nil); st != ok {
			t.Errorf("read Task with system/Task.read: %d %s", st, b)
		}
	})
	t.Run("Unauthenticated", func(t *testing.T) {
		for _, p := range []string{"/fhir/Task/" + task, "/fhir/Task", "/sp/v1/referrals", "/fhir/AuditEvent"} {
			st, h, b := ss.call("", "GET", p, nil, nil)
			if st != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s without a token: %d %q %s", p, st, h.Get("WWW-Authenticate"), b)
			}
			if strings.HasPrefix(p, "/fhir") && !bytes.Contains(b, []byte(`"login"`)) {
				t.Errorf("GET %s without a token: no OperationOutcome login: %s", p, b)
			}
		}
		st, h, _ := ss.call("", "GET", "/fhir/Task", nil, hdr{"Authorization": "Bearer " + ss.token("gp-own") + "x"})
		if st != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("tampered token: %d %q", st, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("AuditTrail", func(t *testing.T) {
		// gp-other's refused read of the Task is recorded, attributed.
		_, _, b := ss.call("admin", "GET", "/fhir/AuditEvent?agent=gp-other&entity=Task/"+task, nil, nil)
		if total(t, b) < 1 || !bytes.Contains(b, []byte(`"outcome":"4"`)) || !bytes.Contains(b, []byte("B82002")) {
			t.Errorf("audit of gp-other's refused Task read: %s", b)
		}
		// sp-own's successful read is recorded with outcome 0.
		_, _, b = ss.call("admin", "GET", "/fhir/AuditEvent?agent=sp-own&entity=Task/"+task+"&outcome=0", nil, nil)
		if total(t, b) < 1 {
			t.Errorf("no audit of sp-own's Task read: %s", b)
		}
		// Searches record the parameter names, never the NHS number.
		_, _, b = ss.call("admin", "GET", "/fhir/AuditEvent?_count=200", nil, nil)
		if bytes.Contains(b, []byte(nhsReferralTxn)) {
			t.Errorf("the audit trail holds an NHS number")
		}
		if !bytes.Contains(b, []byte("patient.identifier")) {
			t.Errorf("the audit trail does not name the chained search parameter")
		}
		// Unauthenticated attempts are recorded too.
		day := ss.Clock.Now().Format("2006-01-02")
		_, _, b = ss.call("admin", "GET", "/fhir/AuditEvent?_count=200&outcome=4&date="+day, nil, nil)
		if !bytes.Contains(b, []byte("unauthenticated caller")) {
			t.Errorf("no audit of unauthenticated requests on %s", day)
		}
		_, _, b = ss.call("admin", "GET", "/fhir/AuditEvent?date=lt"+day, nil, nil)
		if got := total(t, b); got != 0 {
			t.Errorf("%d audit records before %s, want 0", got, day)
		}
	})
}

// bundleOf returns the response locations of a transaction-response.
func bundleOf(t *testing.T, b []byte) []string {
	t.Helper()
	var d struct {
		Entry []struct {
			Response struct {
				Location string `json:"location"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range d.Entry {
		if e.Response.Location != "" {
			out = append(out, e.Response.Location)
		}
	}
	return out
}

// TestRateLimit answers 429 with Retry-After once a client's burst is spent,
// per client.
func TestRateLimit(t *testing.T) {
	ss := newSecServer(t, nil, func(s *httpapi.Server) { s.RateLimit, s.RateBurst = 0.5, 3 })
	for i := 0; i < 3; i++ {
		if st, _, b := ss.call("gp-own", "GET", "/fhir/Task", nil, nil); st != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, st, b)
		}
	}
	st, h, b := ss.call("gp-own", "GET", "/fhir/Task", nil, nil)
	if st != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !bytes.Contains(b, []byte(`"throttled"`)) {
		t.Fatalf("over the limit: %d Retry-After %q %s", st, h.Get("Retry-After"), b)
	}
	if ra := h.Get("Retry-After"); ra != "1" && ra != "2" {
		t.Errorf("Retry-After = %q, want 1 or 2 s at 0.5 req/s", ra)
	}
	// Another client has its own bucket.
	if st, _, b := ss.call("sp-own", "GET", "/fhir/Task", nil, nil); st != http.StatusOK {
		t.Errorf("another client: %d %s", st, b)
	}
	// Failed authentication counts against the source address: after the
	// burst, guessing answers 429, not 401.
	codes := map[int]int{}
	for i := 0; i < 5; i++ {
		st, _, _ := ss.call("", "GET", "/fhir/Task", nil, hdr{"Authorization": "Bearer nonsense"})
		codes[st]++
	}
	if codes[http.StatusUnauthorized] != 3 || codes[http.StatusTooManyRequests] != 2 {
		t.Errorf("five failed attempts answered %v, want 3 × 401 then 2 × 429", codes)
	}
}

// TestRateLimitAddressFlood: a flood of unauthenticated requests from
// more source addresses than the limiter keeps buckets for drops only the
// least recently used address buckets, never an authenticated client's:
// a client that spent its burst stays throttled.
func TestRateLimitAddressFlood(t *testing.T) {
	defer httpapi.SetMaxAddrBuckets(16)()
	ss := newSecServer(t, nil, func(s *httpapi.Server) { s.RateLimit, s.RateBurst = 0.01, 2 })
	for i := 0; i < 2; i++ {
		if st, _, b := ss.call("gp-own", "GET", "/fhir/Task", nil, nil); st != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, st, b)
		}
	}
	if st, _, _ := ss.call("gp-own", "GET", "/fhir/Task", nil, nil); st != http.StatusTooManyRequests {
		t.Fatalf("over the burst: %d, want 429", st)
	}
	// from sends an unauthenticated request from 127.0.0.<n> (all of
	// 127/8 is loopback on Linux).
	from := func(n int) int {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(ss.URL + "/Task")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// Address .2 spends its burst.
	if a, b, c := from(2), from(2), from(2); a != 401 || b != 401 || c != 429 {
		t.Fatalf("address .2: %d %d %d, want 401 401 429", a, b, c)
	}
	// Fewer addresses than the bound keep .2's bucket.
	for n := 3; n < 3+14; n++ {
		if st := from(n); st != http.StatusUnauthorized {
			t.Fatalf("address .%d: %d", n, st)
		}
	}
	if st := from(2); st != http.StatusTooManyRequests {
		t.Fatalf("address .2 after 14 others: %d, want 429 (its bucket kept)", st)
	}
	// Many more: the bound holds (.2's idle bucket goes, .2 starts afresh)…
	for n := 20; n < 20+40; n++ {
		from(n)
	}
	if st := from(2); st != http.StatusUnauthorized {
		t.Errorf("address .2 after 40 others: %d, want 401 (its bucket evicted)", st)
	}
	// …and the authenticated client's spent bucket is untouched.
	if st, _, b := ss.call("gp-own", "GET", "/fhir/Task", nil, nil); st != http.StatusTooManyRequests {
		t.Errorf("client after an address flood: %d %s, want 429", st, b)
	}
}

// TestAuditQueryNames: an audit record keeps only the query parameter
// names its route supports, and "(unknown)" for the others, so that a
// value sent as a name (an NHS number) never reaches the audit trail.
func TestAuditQueryNames(t *testing.T) {
	ss := newSecServer(t, nil)
	const nhs = "9434765919"
	tests := []struct {
		client, path string
		want         []string
	}{
		{"gp-own", "/fhir/Task?" + nhs + "=x&status=ready", []string{"status", "(unknown)"}},
		{"gp-own", "/fhir/Task?" + nhs + "&status=ready&" + nhs + "1=y", []string{"status", "(unknown)"}},
		{"gp-own", "/fhir/Task?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs + "&_count=5&owner:identifier=x", []string{"_count", "owner:identifier", "patient.identifier"}},
		{"gp-own", "/fhir/Patient?patient.identifier=x&identifier:" + nhs + "=y", []string{"(unknown)"}},
		{"gp-own", "/fhir/Task/abc?" + nhs + "=1&_format=json", []string{"_format", "(unknown)"}},
		{"gp-own", "/fhir/Task?status=ready", []string{"status"}},
		{"admin", "/fhir/AuditEvent?agent=gp-own&" + nhs + "=1", []string{"agent", "(unknown)"}},
		{"sp-own", "/sp/v1/referrals?status=ready&" + nhs + "=1", []string{"status", "(unknown)"}},
		{"", "/fhir/Task?" + nhs + "=1", []string{"(unknown)"}},
	}
	for i, tt := range tests {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", 900+i)
		ss.call(tt.client, http.MethodGet, tt.path, nil, hdr{"X-Request-Id": id})
		all, _, err := ss.Store.SearchAudit(context.Background(), linkbridge.AuditFilter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rec := range all {
			if rec.RequestID != id {
				continue
			}
			found = true
			if !slices.Equal(rec.Query, tt.want) {
				t.Errorf("%s %s: audit query names %q, want %q", tt.client, tt.path, rec.Query, tt.want)
			}
		}
		if !found {
			t.Errorf("%s %s: no audit record", tt.client, tt.path)
		}
	}
	// Nor does the AuditEvent rendering hold the number.
	st, _, b := ss.call("admin", http.MethodGet, "/fhir/AuditEvent?_count=100", nil, nil)
	if st != http.StatusOK || bytes.Contains(b, []byte(nhs)) {
		t.Errorf("AuditEvent search: %d, holds the NHS number: %v", st, bytes.Contains(b, []byte(nhs)))
	}
}

// BenchmarkSecurity measures what authentication, authorisation and the
// audit trail add to a FHIR read and a referral intake: the same requests
// against a server without them ("open") and with them ("secured": ES256
// token checked against the JWKS, scoped store, one audit record per
// request), over loopback HTTP on a real SQLite file.
func BenchmarkSecurity(b *testing.B) {
	for _, secured := range []bool{false, true} {
		name := map[bool]string{false: "open", true: "secured"}[secured]
		b.Run(name, func(b *testing.B) {
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "lb.db"), logger)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = store.Close() })
			codec, err := fhirjson.New()
			if err != nil {
				b.Fatal(err)
			}
			api, err := httpapi.NewServer(store, codec, logger)
			if err != nil {
				b.Fatal(err)
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if secured {
				jwks, _ := auth.JWKS(key.Public(), "k1", jwkset.AlgES256)
				dir := b.TempDir()
				_ = os.WriteFile(filepath.Join(dir, "jwks.json"), jwks, 0o600)
				a, err := auth.New(context.Background(), &auth.Config{Issuer: secIssuer, Audience: []string{secAudience},
					JWKSFile: filepath.Join(dir, "jwks.json"), Clients: secClients}, logger, nil)
				if err != nil {
					b.Fatal(err)
				}
				api.Auth, api.Audit = a, store
			}
			srv := httptest.NewServer(api.Handler())
			b.Cleanup(srv.Close)
			now := time.Now()
			tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": secIssuer, "aud": secAudience, "sub": "gp-own",
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": secScopes("gp-own")})
			tok.Header["kid"] = "k1"
			bearer, _ := tok.SignedString(key)
			req := func(method, path string, body []byte) (int, []byte) {
				r, _ := http.NewRequest(method, srv.URL+"/fhir"+path, bytes.NewReader(body))
				if body != nil {
					r.Header.Set("Content-Type", "application/fhir+json")
				}
				r.Header.Set("Authorization", "Bearer "+bearer)
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				out, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode, out
			}
			fix := mustRead(b, fixReferralTxn)
			st, body := req(http.MethodPost, "", fix)
			if st != http.StatusOK {
				b.Fatalf("intake: %d %s", st, body)
			}
			var d struct {
				Entry []struct {
					Response struct {
						Location string `json:"location"`
					} `json:"response"`
				} `json:"entry"`
			}
			_ = json.Unmarshal(body, &d)
			task := ""
			for _, e := range d.Entry {
				if rest, ok := strings.CutPrefix(e.Response.Location, "Task/"); ok {
					task, _, _ = strings.Cut(rest, "/")
				}
			}
			b.Run("Read", func(b *testing.B) {
				for b.Loop() {
					if st, body := req(http.MethodGet, "/Task/"+task, nil); st != http.StatusOK {
						b.Fatalf("read: %d %s", st, body)
					}
				}
			})
			b.Run("Intake", func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					if st, body := req(http.MethodPost, "", withIdentifier(b, fix, fmt.Sprintf("BENCH-%d", i))); st != http.StatusOK {
						b.Fatalf("intake: %d %s", st, body)
					}
				}
			})
		})
	}
}

// TestSecuredCapabilityStatement declares the security service and the
// AuditEvent resource when authentication and audit are on.
func TestSecuredCapabilityStatement(t *testing.T) {
	ss := newSecServer(t, nil)
	st, _, b := ss.call("", "GET", "/fhir/metadata", nil, nil)
	if st != http.StatusOK {
		t.Fatalf("metadata: %d", st)
	}
	for _, want := range []string{`"SMART-on-FHIR"`, `"AuditEvent"`, `"security"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("the secured CapabilityStatement lacks %s", want)
		}
	}
	open := newTestServer(t)
	if r := open.get("/metadata"); bytes.Contains(r.Body, []byte(`"security"`)) || bytes.Contains(r.Body, []byte(`"AuditEvent"`)) {
		t.Errorf("an open server declares security or AuditEvent")
	}
}

// TestSPSecurityOpenAPI: /sp/v1's security answers (401, 403, 429, and the
// 200 of an authorised call) match its OpenAPI document.
func TestSPSecurityOpenAPI(t *testing.T) {
	ss := newSecServer(t, nil, func(s *httpapi.Server) { s.RateLimit, s.RateBurst = 0.01, 2 })
	bearer := func(c string) hdr { return hdr{"Authorization": "Bearer " + ss.token(c)} }
	wantSP(t, ss.sp(http.MethodGet, "/referrals", nil, nil), http.StatusUnauthorized)
	wantSP(t, ss.sp(http.MethodGet, "/referrals", nil, bearer("gp-own")), http.StatusForbidden)
	wantSP(t, ss.sp(http.MethodGet, "/referrals", nil, bearer("sp-own")), http.StatusOK)
	wantSP(t, ss.sp(http.MethodGet, "/caseload", nil, bearer("sp-own")), http.StatusOK)
	r := ss.sp(http.MethodGet, "/referrals", nil, bearer("sp-own"))
	wantSP(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
