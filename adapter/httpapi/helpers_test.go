package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/fhirjson/fhirschema"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/fhirmap"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
	"google.golang.org/protobuf/proto"
)

// corpusDir is the shared FHIR R4 test corpus at the repository root.
var corpusDir = filepath.Join("..", "..", "testdata", "fhir", "r4")

// Fixtures used across the tests.
var (
	fixReferralTxn   = filepath.Join(corpusDir, "bundle-referral-transaction.json")
	fixReferralXML   = filepath.Join(corpusDir, "bundle-referral-transaction.xml") // the same in FHIR XML
	fixRoleTxn       = filepath.Join(corpusDir, "valid", "transaction-practitionerrole-healthcareservice.json")
	fixSRContained   = filepath.Join(corpusDir, "valid", "servicerequest-contained-patient.json")
	fixSRByNHS       = filepath.Join(corpusDir, "valid", "servicerequest-subject-nhs-number.json")
	fixTaskContained = filepath.Join(corpusDir, "valid", "task-contained-servicerequest.json")
	fixMsgNew        = filepath.Join(corpusDir, "valid", "message-referral-new.json")
	fixMsgCancel     = filepath.Join(corpusDir, "valid", "message-referral-cancel.json")
	fixBadNHS        = filepath.Join(corpusDir, "invalid", "servicerequest-nhs-number-fails-mod11.json")
	fixUnknownElem   = filepath.Join(corpusDir, "invalid", "servicerequest-unknown-element.json")
	fixTaskPlan      = filepath.Join(corpusDir, "invalid", "task-intent-plan.json")
)

// Identifiers in the fixtures.
const (
	nhsReferralTxn  = "9434765919"
	nhsRoleTxn      = "9990158398"
	nhsSRContained  = "9990000018"
	nhsMsgNew       = "9990316775"
	referralIDSys   = "https://fhir.example-gp.nhs.uk/Id/referral"
	referralTxnID   = "a7a3cbd2-3fe7-42c5-b0ae-4f57431b80a0"
	msgNewReferral  = "C82010-2026-001204"
	msgReferrerODS  = "C82010" // the message's requester Organization
	msgServiceODS   = "Y06741" // and its receiver, the Task's owner
	srContainedID   = "F84003-2026-000112"
	taskContainedID = "M85063-2026-004410"
)

// clock is a settable clock for the server, so that _lastUpdated searches
// are deterministic.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// testServer is the FHIR API over a real SQLite file, served on loopback.
type testServer struct {
	t      *testing.T
	URL    string // base of the FHIR API, ".../fhir"
	API    *httpapi.Server
	Store  *sqlite.DB
	Codec  *fhirjson.Codec
	Clock  *clock
	DBPath string
}

// actorHeader is a test-only header: the wrapper below turns it into the
// actor of the request (the security layer does this in production).
const actorHeader = "X-Test-Actor"

// newTestServer starts a server; opts may adjust the API before it serves.
func newTestServer(t *testing.T, opts ...func(*httpapi.Server)) *testServer {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dbPath := filepath.Join(t.TempDir(), "linkbridge.db")
	store, err := sqlite.Open(ctx, dbPath, logger)
	if err != nil {
		t.Fatalf("sqlite.Open() returned unexpected error: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("store.Close() returned unexpected error: %v", err)
		}
	})
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatalf("fhirjson.New() returned unexpected error: %v", err)
	}
	api, err := httpapi.NewServer(store, codec, logger)
	if err != nil {
		t.Fatalf("httpapi.NewServer() returned unexpected error: %v", err)
	}
	clk := &clock{now: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	api.Now = clk.Now
	for _, o := range opts {
		o(api)
	}
	h := api.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get(actorHeader); a != "" {
			r = r.WithContext(httpapi.WithActor(r.Context(), linkbridge.Actor(a)))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return &testServer{t: t, URL: srv.URL + "/fhir", API: api, Store: store, Codec: codec, Clock: clk, DBPath: dbPath}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// response is one HTTP answer, with its FHIR body decoded.
type response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Resource proto.Message // nil when the body is empty
}

// hdr is a set of request headers.
type hdr map[string]string

// do sends a request to the FHIR API (path relative to /fhir, or an absolute
// URL) and checks that any body is FHIR JSON that decodes with fhirjson and
// passes the independent JSON Schema validator.
func (ts *testServer) do(method, path string, body []byte, h hdr) *response {
	ts.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = ts.URL + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		ts.t.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	req.Header.Set("Accept", "application/fhir+json")
	for k, v := range h {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	out := &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(b) > 0 {
		out.Resource = ts.mustFHIR(b, method+" "+path)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			ts.t.Errorf("%s %s: Content-Type = %q, want application/fhir+json", method, path, ct)
		}
	}
	return out
}

// mustFHIR asserts that b is a FHIR R4 JSON resource: it decodes with the
// gateway's codec and passes the independent validator (fhirschema, when
// LINKBRIDGE_FHIR_SCHEMA is set; always under CI=true).
func (ts *testServer) mustFHIR(b []byte, what string) proto.Message {
	ts.t.Helper()
	cr, err := ts.Codec.Decode(b)
	if err != nil {
		ts.t.Fatalf("%s: response body does not decode as FHIR R4: %v\nbody: %s", what, err, b)
	}
	fhirschema.Validate(ts.t, b)
	return fhirmap.Unwrap(cr)
}

func (ts *testServer) post(path string, body []byte, h hdr) *response {
	ts.t.Helper()
	return ts.do(http.MethodPost, path, body, h)
}

func (ts *testServer) get(path string) *response {
	ts.t.Helper()
	return ts.do(http.MethodGet, path, nil, nil)
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// wantStatus fails the test unless r has the status.
func wantStatus(t *testing.T, r *response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.Status, status, r.Body)
	}
}

// wantOutcome checks an error response: the status, an OperationOutcome
// body with one error issue of the given code, and (when expr is not empty)
// an issue whose expression or diagnostics mention expr.
func wantOutcome(t *testing.T, r *response, status int, issueCode, expr string) *oopb.OperationOutcome {
	t.Helper()
	wantStatus(t, r, status)
	oo, ok := r.Resource.(*oopb.OperationOutcome)
	if !ok {
		t.Fatalf("body is %T, want OperationOutcome: %s", r.Resource, r.Body)
	}
	if len(oo.GetIssue()) == 0 {
		t.Fatalf("OperationOutcome has no issue")
	}
	codes := []string{}
	for _, is := range oo.GetIssue() {
		codes = append(codes, fhirmap.Code(is.GetCode()))
	}
	if issueCode != "" && codes[0] != issueCode {
		t.Errorf("issue codes = %q, want first %q; body: %s", codes, issueCode, r.Body)
	}
	if expr != "" && !outcomeMentions(oo, expr) {
		t.Errorf("no issue names %q; body: %s", expr, r.Body)
	}
	return oo
}

// outcomeMentions reports whether an issue's expression or diagnostics
// contains s.
func outcomeMentions(oo *oopb.OperationOutcome, s string) bool {
	for _, is := range oo.GetIssue() {
		for _, e := range is.GetExpression() {
			if strings.Contains(e.GetValue(), s) {
				return true
			}
		}
		if strings.Contains(is.GetDiagnostics().GetValue(), s) {
			return true
		}
	}
	return false
}

// bundle asserts r is a 200 Bundle of the given type.
func bundle(t *testing.T, r *response, typ string) *rpb.Bundle {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	b, ok := r.Resource.(*rpb.Bundle)
	if !ok {
		t.Fatalf("body is %T, want Bundle: %s", r.Resource, r.Body)
	}
	if got := fhirmap.Code(b.GetType()); got != typ {
		t.Fatalf("Bundle.type = %q, want %q", got, typ)
	}
	return b
}

// search runs a search and returns the searchset Bundle.
func (ts *testServer) search(typ string, q url.Values) *rpb.Bundle {
	ts.t.Helper()
	return bundle(ts.t, ts.get("/"+typ+"?"+q.Encode()), "searchset")
}

// total is the Bundle.total of a search.
func (ts *testServer) total(typ string, q url.Values) int {
	ts.t.Helper()
	return int(ts.search(typ, q).GetTotal().GetValue())
}

// counts are the totals of the referral resource types, used to check that
// a refused request stored nothing.
type counts struct{ Patient, ServiceRequest, Task, Organization int }

func (ts *testServer) counts() counts {
	ts.t.Helper()
	return counts{
		Patient:        ts.total("Patient", nil),
		ServiceRequest: ts.total("ServiceRequest", nil),
		Task:           ts.total("Task", nil),
		Organization:   ts.total("Organization", nil),
	}
}

// matchIDs returns "Type/id" of the match entries of a searchset.
func matchIDs(b *rpb.Bundle) []string {
	var out []string
	for _, e := range b.GetEntry() {
		if fhirmap.Code(e.GetSearch().GetMode()) != "match" {
			continue
		}
		r := fhirmap.Unwrap(e.GetResource())
		out = append(out, fhirmap.TypeName(r)+"/"+fhirmap.ID(r))
	}
	return out
}

// entryResource returns the resource of the first entry of type typ.
func entryResource[T proto.Message](t *testing.T, b *rpb.Bundle) T {
	t.Helper()
	var zero T
	for _, e := range b.GetEntry() {
		if r, ok := fhirmap.Unwrap(e.GetResource()).(T); ok {
			return r
		}
	}
	t.Fatalf("Bundle has no %T entry", zero)
	return zero
}

// jsonDoc is FHIR JSON as generic JSON, for variants of a fixture.
type jsonDoc = map[string]any

func mustParseJSON(t testing.TB, b []byte) jsonDoc {
	t.Helper()
	var d jsonDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parse JSON: %v", err)
	}
	return d
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal JSON: %v", err)
	}
	return b
}

// withIdentifier returns a copy of a ServiceRequest, Task or transaction
// fixture whose referral identifier value is v, so one fixture can seed
// several distinct referrals. The referral is of a person of its own (an
// NHS number drawn from v, nhsFor): a person has one open referral to a
// service (docs/domain.md#one-open-referral). sameIdentifierPerson keeps
// the fixture's person.
func withIdentifier(t testing.TB, body []byte, v string) []byte {
	t.Helper()
	d := mustParseJSON(t, body)
	setSRIdentifier(d, v)
	setNHS(d, nhsFor(v))
	return mustJSON(t, d)
}

// sameIdentifierPerson is withIdentifier keeping the fixture's person.
func sameIdentifierPerson(t testing.TB, body []byte, v string) []byte {
	t.Helper()
	d := mustParseJSON(t, body)
	setSRIdentifier(d, v)
	return mustJSON(t, d)
}

// following returns a copy of a ServiceRequest, Task or transaction fixture
// whose ServiceRequest says it goes with the stored referral srID
// (basedOn), so that it is stored beside it, open at once
// (docs/domain.md#one-open-referral).
func following(t testing.TB, body []byte, srID string) []byte {
	t.Helper()
	d := mustParseJSON(t, body)
	var set func(d jsonDoc)
	set = func(d jsonDoc) {
		switch d["resourceType"] {
		case "ServiceRequest":
			d["basedOn"] = []any{jsonDoc{"reference": "ServiceRequest/" + srID}}
		case "Task":
			cs, _ := d["contained"].([]any)
			for _, c := range cs {
				set(c.(jsonDoc))
			}
		case "Bundle":
			for _, e := range d["entry"].([]any) {
				set(e.(jsonDoc)["resource"].(jsonDoc))
			}
		}
	}
	set(d)
	return mustJSON(t, d)
}

// nhsFor returns a valid NHS number in the 999 test range drawn from s:
// distinct strings give distinct numbers (but for rare collisions of the
// six digits taken from a hash).
func nhsFor(s string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	for n := h.Sum64() % 1000000; ; n = (n + 1) % 1000000 {
		stem := fmt.Sprintf("999%06d", n)
		if c, ok := linkbridge.NHSCheckDigit(stem); ok {
			return stem + strconv.Itoa(c)
		}
	}
}

func setSRIdentifier(d jsonDoc, v string) {
	switch d["resourceType"] {
	case "ServiceRequest":
		d["identifier"] = []any{jsonDoc{"system": referralIDSys, "value": v}}
	case "Task":
		cs, _ := d["contained"].([]any)
		for _, c := range cs {
			setSRIdentifier(c.(jsonDoc), v)
		}
	case "Bundle":
		for _, e := range d["entry"].([]any) {
			setSRIdentifier(e.(jsonDoc)["resource"].(jsonDoc), v)
		}
	}
}

// setNHS replaces the NHS number of every Patient in a fixture.
func setNHS(d jsonDoc, nhs string) {
	switch d["resourceType"] {
	case "Patient":
		for _, id := range d["identifier"].([]any) {
			if id.(jsonDoc)["system"] == linkbridge.NHSNumberSystem {
				id.(jsonDoc)["value"] = nhs
			}
		}
	case "Bundle":
		for _, e := range d["entry"].([]any) {
			setNHS(e.(jsonDoc)["resource"].(jsonDoc), nhs)
		}
	default:
		if cs, ok := d["contained"].([]any); ok {
			for _, c := range cs {
				setNHS(c.(jsonDoc), nhs)
			}
		}
		// A subject named by NHS number (ServiceRequest.subject, Task.for).
		for _, el := range []string{"subject", "for"} {
			if ref, ok := d[el].(jsonDoc); ok {
				if id, ok := ref["identifier"].(jsonDoc); ok && id["system"] == linkbridge.NHSNumberSystem {
					id["value"] = nhs
				}
			}
		}
	}
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}
