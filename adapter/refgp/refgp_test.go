package refgp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/adapter/refgp"
)

type testGP struct {
	t     *testing.T
	url   string
	codec *fhirjson.Codec
}

func newTestGP(t *testing.T, opts refgp.Options) *testGP {
	t.Helper()
	gp, err := refgp.Open(context.Background(), filepath.Join(t.TempDir(), "gp.db"), opts)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() { gp.Close() })
	srv := httptest.NewServer(gp.Handler())
	t.Cleanup(srv.Close)
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	return &testGP{t: t, url: srv.URL, codec: codec}
}

// do sends a request and returns status, headers and the parsed body; every
// FHIR body the endpoint returns must pass google/fhir.
func (g *testGP) do(method, path string, body string, hdr ...string) (int, http.Header, map[string]any) {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, g.url+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if strings.Contains(resp.Header.Get("Content-Type"), "fhir+json") && len(b) > 0 {
		if _, err := g.codec.Decode(b); err != nil {
			g.t.Fatalf("%s %s answered FHIR that google/fhir rejects: %v\n%s", method, path, err, b)
		}
		_ = json.Unmarshal(b, &doc)
	}
	return resp.StatusCode, resp.Header, doc
}

const goal = `{"resourceType":"Goal","id":"g1","lifecycleStatus":"active","description":{"text":"Walk"},
 "identifier":[{"system":"https://linkbridge.example.org/Id/writeback","value":"Goal/g1"}],
 "subject":{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}}}`

const patient = `{"resourceType":"Patient","id":"p1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],
 "name":[{"family":"<script>alert(1)</script>","given":["Alex"]}]}`

func issueExpr(doc map[string]any) string {
	is, _ := doc["issue"].([]any)
	if len(is) == 0 {
		return ""
	}
	ex, _ := is[0].(map[string]any)["expression"].([]any)
	if len(ex) == 0 {
		return ""
	}
	return ex[0].(string)
}

func TestUpdateReadVersioning(t *testing.T) {
	g := newTestGP(t, refgp.Options{})
	st, h, _ := g.do("PUT", "/fhir/Goal/g1", goal)
	if st != 201 || h.Get("ETag") != `W/"1"` || !strings.HasSuffix(h.Get("Location"), "/fhir/Goal/g1/_history/1") {
		t.Fatalf("create: %d ETag %q Location %q", st, h.Get("ETag"), h.Get("Location"))
	}
	// The same content again has one effect.
	if st, h, _ := g.do("PUT", "/fhir/Goal/g1", goal); st != 200 || h.Get("ETag") != `W/"1"` {
		t.Fatalf("same write again: %d %q, want 200 W/\"1\"", st, h.Get("ETag"))
	}
	changed := strings.Replace(goal, `"active"`, `"completed"`, 1)
	if st, _, doc := g.do("PUT", "/fhir/Goal/g1", changed, "If-Match", `W/"2"`); st != 412 || issueExpr(doc) != "If-Match" {
		t.Fatalf("stale If-Match: %d %v, want 412 naming If-Match", st, doc)
	}
	if st, h, _ := g.do("PUT", "/fhir/Goal/g1", changed, "If-Match", `W/"1"`); st != 200 || h.Get("ETag") != `W/"2"` {
		t.Fatalf("update: %d %q", st, h.Get("ETag"))
	}
	_, _, doc := g.do("GET", "/fhir/Goal/g1", "")
	if doc["lifecycleStatus"] != "completed" || doc["meta"].(map[string]any)["versionId"] != "2" {
		t.Fatalf("read = %v", doc)
	}
	if _, _, v1 := g.do("GET", "/fhir/Goal/g1/_history/1", ""); v1["lifecycleStatus"] != "active" {
		t.Fatalf("vread 1 = %v", v1)
	}
	if _, _, hist := g.do("GET", "/fhir/Goal/g1/_history", ""); hist["total"] != float64(2) || hist["type"] != "history" {
		t.Fatalf("history = %v", hist)
	}
	// An older sender version after a newer one is not stored.
	if st, h, _ := g.do("PUT", "/fhir/Goal/g1", changed, "X-Linkbridge-Version", "5"); st != 200 || h.Get("ETag") != `W/"2"` {
		t.Fatalf("v5 same content: %d %q", st, h.Get("ETag"))
	}
	if st, h, _ := g.do("PUT", "/fhir/Goal/g1", goal, "X-Linkbridge-Version", "4"); st != 200 || h.Get("ETag") != `W/"2"` {
		t.Fatalf("stale sender version: %d %q, want the current version kept", st, h.Get("ETag"))
	}
	if _, _, doc := g.do("GET", "/fhir/Goal/g1", ""); doc["lifecycleStatus"] != "completed" {
		t.Fatalf("a stale sender version overwrote the record: %v", doc)
	}
}

func TestErrors(t *testing.T) {
	g := newTestGP(t, refgp.Options{})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		expr                     string
	}{
		{"ErrIDMismatch", "PUT", "/fhir/Goal/other", goal, 400, "Goal.id"},
		{"ErrTypeMismatch", "PUT", "/fhir/Task/g1", goal, 400, "resourceType"},
		{"ErrInvalid", "PUT", "/fhir/Goal/g1", strings.Replace(goal, `"lifecycleStatus":"active",`, "", 1), 400, "Goal"},
		{"ErrUnknownElement", "PUT", "/fhir/Goal/g1", strings.Replace(goal, `"id":"g1"`, `"id":"g1","colour":"red"`, 1), 400, "colour"},
		{"ErrUnsupportedType", "GET", "/fhir/Medication/x", "", 404, ""},
		{"ErrNotFound", "GET", "/fhir/Goal/nope", "", 404, ""},
		{"ErrUnknownSearchParam", "GET", "/fhir/Goal?colour=red", "", 400, "colour"},
		{"ErrBadDate", "GET", "/fhir/Goal?_lastUpdated=gtyesterday", "", 400, "_lastUpdated"},
		{"ErrConditionalWithoutCriterion", "PUT", "/fhir/Goal", goal, 400, "identifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, doc := g.do(tc.method, tc.path, tc.body)
			if st != tc.status || doc["resourceType"] != "OperationOutcome" {
				t.Fatalf("%s %s = %d %v, want %d OperationOutcome", tc.method, tc.path, st, doc, tc.status)
			}
			if tc.expr != "" && !strings.Contains(issueExpr(doc), tc.expr) {
				t.Errorf("expression = %q, want it to name %q", issueExpr(doc), tc.expr)
			}
		})
	}
	if st, _, _ := g.do("GET", "/fhir/Goal?identifier=x", ""); st != 200 {
		t.Errorf("nothing was to be stored by the failures, search answered %d", st)
	}
}

func TestConditionalUpdateAndCreate(t *testing.T) {
	g := newTestGP(t, refgp.Options{RefuseClientIDs: true})
	if st, _, _ := g.do("PUT", "/fhir/Goal/g1", goal); st != 405 {
		t.Fatalf("client id on a conditional-only endpoint = %d, want 405", st)
	}
	cond := "/fhir/Goal?identifier=" + url.QueryEscape("https://linkbridge.example.org/Id/writeback|Goal/g1")
	st, h, doc := g.do("PUT", cond, goal)
	if st != 201 || doc["id"] == "g1" {
		t.Fatalf("conditional create = %d id %v, want 201 with the endpoint's own id", st, doc["id"])
	}
	id := doc["id"].(string)
	if st, h2, doc := g.do("PUT", cond, goal); st != 200 || doc["id"] != id || h2.Get("ETag") != h.Get("ETag") {
		t.Fatalf("conditional update again = %d %v %q", st, doc["id"], h2.Get("ETag"))
	}
	ine := "identifier=https://linkbridge.example.org/Id/writeback|Goal/g1"
	if st, _, doc := g.do("POST", "/fhir/Goal", goal, "If-None-Exist", ine); st != 200 || doc["id"] != id {
		t.Fatalf("If-None-Exist with a match = %d %v", st, doc["id"])
	}
	if st, _, doc := g.do("POST", "/fhir/Goal", strings.ReplaceAll(goal, "Goal/g1", "Goal/g2")); st != 201 || doc["id"] == id {
		t.Fatalf("create = %d %v", st, doc["id"])
	}
	_, _, bundle := g.do("GET", "/fhir/Goal", "")
	if bundle["total"] != float64(2) {
		t.Fatalf("total = %v, want 2", bundle["total"])
	}
	// Provenance has no identifier element: the criterion of the
	// conditional update that created it still finds it the second time.
	prov := `{"resourceType":"Provenance","id":"lb-prov-1","target":[{"type":"Goal","identifier":{"system":"https://linkbridge.example.org/Id/writeback","value":"Goal/g1"}}],
	 "recorded":"2026-11-22T10:00:00Z","agent":[{"who":{"display":"Sam Link"}}]}`
	pc := "/fhir/Provenance?identifier=" + url.QueryEscape("https://linkbridge.example.org/Id/writeback|Provenance/lb-prov-1")
	if st, _, _ := g.do("PUT", pc, prov); st != 201 {
		t.Fatalf("conditional Provenance = %d", st)
	}
	if st, _, _ := g.do("PUT", pc, prov); st != 200 {
		t.Fatalf("conditional Provenance again = %d, want 200", st)
	}
	if _, _, b := g.do("GET", "/fhir/Provenance", ""); b["total"] != float64(1) {
		t.Fatalf("two conditional writes of a Provenance made %v, want 1", b["total"])
	}
	_, _, cs := g.do("GET", "/fhir/metadata", "")
	res := cs["rest"].([]any)[0].(map[string]any)["resource"].([]any)[0].(map[string]any)
	if res["updateCreate"] != false || res["conditionalUpdate"] != true {
		t.Errorf("CapabilityStatement updateCreate %v conditionalUpdate %v", res["updateCreate"], res["conditionalUpdate"])
	}
}

func TestSearchByPatient(t *testing.T) {
	g := newTestGP(t, refgp.Options{})
	g.do("PUT", "/fhir/Patient/p1", patient)
	before := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	g.do("PUT", "/fhir/Goal/g1", goal)
	other := strings.NewReplacer(`"id":"g1"`, `"id":"g2"`, "Goal/g1", "Goal/g2", "9434765919", "9990000018").Replace(goal)
	g.do("PUT", "/fhir/Goal/g2", other)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"patient=Patient/p1", []string{"g1"}},
		{"subject=p1", []string{"g1"}},
		{"patient.identifier=" + url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|9990000018"), []string{"g2"}},
		{"patient:identifier=9434765919", []string{"g1"}},
		{"_lastUpdated=gt" + before, []string{"g1", "g2"}},
		{"_lastUpdated=lt" + before, nil},
		{"_id=g2", []string{"g2"}},
		{"identifier=" + url.QueryEscape("https://linkbridge.example.org/Id/writeback|Goal/g1"), []string{"g1"}},
	} {
		_, _, b := g.do("GET", "/fhir/Goal?"+tc.query, "")
		var got []string
		for _, e := range asList(b["entry"]) {
			got = append(got, e["resource"].(map[string]any)["id"].(string))
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("Goal?%s = %v, want %v", tc.query, got, tc.want)
		}
	}
	_, _, pb := g.do("GET", "/fhir/Patient?identifier="+url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|9434765919"), "")
	if pb["total"] != float64(1) {
		t.Errorf("Patient?identifier= total %v, want 1", pb["total"])
	}
}

func asList(v any) []map[string]any {
	var out []map[string]any
	l, _ := v.([]any)
	for _, e := range l {
		out = append(out, e.(map[string]any))
	}
	return out
}

func TestPatientPageEscapes(t *testing.T) {
	g := newTestGP(t, refgp.Options{})
	g.do("PUT", "/fhir/Patient/p1", patient)
	g.do("PUT", "/fhir/Goal/g1", strings.Replace(goal, `"Walk"`, `"<b>Walk</b> & talk"`, 1))
	resp, err := http.Get(g.url + "/patients/p1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>Walk") {
		t.Fatalf("the page does not escape record content:\n%s", page)
	}
	if !strings.Contains(page, "&lt;b&gt;Walk&lt;/b&gt; &amp; talk") || !strings.Contains(page, "9434765919") {
		t.Errorf("the page does not show the goal (escaped) and the NHS number:\n%s", page)
	}
}

func TestBearerToken(t *testing.T) {
	g := newTestGP(t, refgp.Options{Token: "t0k"})
	if st, h, doc := g.do("GET", "/fhir/metadata", ""); st != 401 || h.Get("WWW-Authenticate") == "" || issueExpr(doc) != "Authorization" {
		t.Fatalf("without a token: %d %v", st, doc)
	}
	if st, _, _ := g.do("GET", "/fhir/metadata", "", "Authorization", "Bearer t0k"); st != 200 {
		t.Fatalf("with the token: %d", st)
	}
}

// TestRelayClient: linkbridge's write-back client works against the
// reference GP unchanged, in both write modes picked from /metadata.
func TestRelayClient(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		g := newTestGP(t, refgp.Options{RefuseClientIDs: refuse})
		wantPatient := "p1"
		if refuse {
			// The GP's own patient, created with the endpoint's own id.
			_, _, doc := g.do("POST", "/fhir/Patient", patient)
			wantPatient, _ = doc["id"].(string)
		} else {
			g.do("PUT", "/fhir/Patient/p1", patient)
		}
		c, err := gpfhir.New(gpfhir.Config{BaseURL: g.url + "/fhir", Mode: gpfhir.ModeAuto})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			if _, err := c.Put(ctx, "Goal", "g1", 1, []byte(goal)); err != nil {
				t.Fatalf("refuse=%v: Put #%d = %v", refuse, i+1, err)
			}
		}
		_, _, b := g.do("GET", "/fhir/Goal", "")
		if b["total"] != float64(1) {
			t.Errorf("refuse=%v: two writes made %v Goals, want 1", refuse, b["total"])
		}
		id, err := c.FindPatient(ctx, "9434765919")
		if err != nil || id == "" || id != wantPatient {
			t.Errorf("FindPatient = %q, %v; want %q", id, err, wantPatient)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"patient=Patient/p1&_count=10", "_lastUpdated=gt2026-11-01T00:00:00Z", "patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", "_id=a,b", "x=1", "_lastUpdated=le2026", "subject=Group/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, typ := range []string{"Goal", "Patient"} {
			q, err := refgp.ParseQuery(typ, v)
			if err == nil && q.Type != typ {
				t.Fatalf("ParseQuery(%q) type %q", raw, q.Type)
			}
		}
	})
}
