package refgp_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/refgp"
)

type testGP struct {
	t     *testing.T
	url   string
	codec *fhirjson.Codec
}

func newTestGP(t *testing.T, opts refgp.Options) *testGP {
	t.Helper()
	return openTestGP(t, filepath.Join(t.TempDir(), "gp.db"), opts)
}

// openTestGP serves the reference GP on the SQLite file at path (an
// upgrade test's older file, say) until the test ends.
func openTestGP(t *testing.T, path string, opts refgp.Options) *testGP {
	t.Helper()
	gp, err := refgp.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", filepath.Base(path), err)
	}
	t.Cleanup(func() {
		if err := gp.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
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
	defer func() { _ = resp.Body.Close() }()
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

// prov is a Provenance keyed as linkbridge writes it back: a meta.tag.
const prov = `{"resourceType":"Provenance","id":"lb-prov-1",
 "meta":{"tag":[{"system":"https://linkbridge.example.org/Id/writeback","code":"Provenance/lb-prov-1"}]},
 "target":[{"type":"Goal","identifier":{"system":"https://linkbridge.example.org/Id/writeback","value":"Goal/g1"}}],
 "recorded":"2026-11-22T10:00:00Z","agent":[{"who":{"display":"Sam Link"}}]}`

const patient = `{"resourceType":"Patient","id":"p1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],
 "name":[{"family":"<script>alert(1)</script>","given":["Alex"]}]}`

// withoutID returns a resource's JSON without its id, as a client that
// lets a strict endpoint assign ids sends it.
func withoutID(t *testing.T, body string) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "id")
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

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
	g := newTestGP(t, refgp.Options{AllowClientIDs: true})
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

// TestConditionalUpdateAndCreate: on a strict endpoint, writes without an
// id get the endpoint's ids; a conditional update finds what it created,
// If-None-Exist too, on identifier or (Provenance) on _tag.
func TestConditionalUpdateAndCreate(t *testing.T) {
	g := newTestGP(t, refgp.Options{})
	goal := withoutID(t, goal)
	cond := "/fhir/Goal?identifier=" + url.QueryEscape("https://linkbridge.example.org/Id/writeback|Goal/g1")
	st, h, doc := g.do("PUT", cond, goal)
	if st != 201 || doc["id"] == nil || doc["id"] == "g1" {
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
	// Provenance has no identifier element: it is keyed by a meta.tag and
	// conditionally updated on _tag; identifier= is refused, not ignored.
	prov := withoutID(t, prov)
	pc := "/fhir/Provenance?_tag=" + url.QueryEscape("https://linkbridge.example.org/Id/writeback|Provenance/lb-prov-1")
	st, _, doc = g.do("PUT", pc, prov)
	if st != 201 || doc["id"] == nil {
		t.Fatalf("conditional Provenance on _tag = %d id %v, want 201 with the endpoint's own id", st, doc["id"])
	}
	pid := doc["id"].(string)
	if st, _, doc := g.do("PUT", pc, prov); st != 200 || doc["id"] != pid {
		t.Fatalf("conditional Provenance again = %d %v, want 200 on %s", st, doc["id"], pid)
	}
	if _, _, b := g.do("GET", pc, ""); b["total"] != float64(1) {
		t.Fatalf("two conditional writes of a Provenance: GET ?_tag= found %v, want 1", b["total"])
	}
	if _, _, b := g.do("GET", "/fhir/Provenance", ""); b["total"] != float64(1) {
		t.Fatalf("two conditional writes of a Provenance made %v, want 1", b["total"])
	}
	byIdent := "/fhir/Provenance?identifier=" + url.QueryEscape("https://linkbridge.example.org/Id/writeback|Provenance/lb-prov-1")
	if st, _, doc := g.do("PUT", byIdent, prov); st != 400 || !strings.Contains(issueExpr(doc), "identifier") {
		t.Fatalf("conditional Provenance on identifier= = %d %v, want 400 naming identifier", st, doc)
	}
	if st, _, _ := g.do("GET", byIdent, ""); st != 400 {
		t.Fatalf("Provenance?identifier= = %d, want 400 (no such search parameter)", st)
	}
	// If-None-Exist on _tag finds it too.
	if st, _, doc := g.do("POST", "/fhir/Provenance", prov, "If-None-Exist", "_tag=https://linkbridge.example.org/Id/writeback|Provenance/lb-prov-1"); st != 200 || doc["id"] != pid {
		t.Fatalf("If-None-Exist on _tag = %d %v, want 200 %s", st, doc["id"], pid)
	}
}

func TestSearchByPatient(t *testing.T) {
	g := newTestGP(t, refgp.Options{AllowClientIDs: true})
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
	g := newTestGP(t, refgp.Options{AllowClientIDs: true})
	g.do("PUT", "/fhir/Patient/p1", patient)
	g.do("PUT", "/fhir/Goal/g1", strings.Replace(goal, `"Walk"`, `"<b>Walk</b> & talk"`, 1))
	resp, err := http.Get(g.url + "/patients/p1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
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
// reference GP, strict and lenient, in every mode /metadata implies or that
// can be forced (client ids only where the endpoint takes them): writing
// twice makes one resource, and the result names the endpoint's id.
func TestRelayClient(t *testing.T) {
	for _, tc := range []struct {
		mode gpfhir.Mode
		opts refgp.Options
	}{
		{gpfhir.ModeAuto, refgp.Options{}},
		{gpfhir.ModeConditional, refgp.Options{}},
		{gpfhir.ModeCreate, refgp.Options{}},
		{gpfhir.ModeAuto, refgp.Options{AllowClientIDs: true}},
		{gpfhir.ModeConditional, refgp.Options{AllowClientIDs: true}},
	} {
		mode := tc.mode
		g := newTestGP(t, tc.opts)
		// The GP's own patient, created with the endpoint's own id.
		_, _, doc := g.do("POST", "/fhir/Patient", patient)
		wantPatient, _ := doc["id"].(string)
		c, err := gpfhir.New(gpfhir.Config{BaseURL: g.url + "/fhir", Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var ids []string
		for i := 0; i < 2; i++ {
			res, err := c.Put(ctx, "Goal", "g1", 1, []byte(goal))
			if err != nil {
				t.Fatalf("%s: Put #%d = %v", mode, i+1, err)
			}
			ids = append(ids, res.EndpointID)
		}
		if ids[0] == "" || ids[0] != ids[1] || (!tc.opts.AllowClientIDs && ids[0] == "g1") {
			t.Errorf("%s: endpoint ids %v; want one id, the endpoint's own on a strict endpoint", mode, ids)
		}
		_, _, b := g.do("GET", "/fhir/Goal", "")
		if b["total"] != float64(1) {
			t.Errorf("%s: two writes made %v Goals, want 1", mode, b["total"])
		}
		// Provenance (no identifier): client id, or a conditional update on
		// its write-back tag, which /metadata declares searchable.
		for i := 0; i < 2; i++ {
			if _, err := c.Put(ctx, "Provenance", "lb-prov-1", 1, []byte(prov)); err != nil {
				t.Fatalf("%s: Provenance Put #%d = %v", mode, i+1, err)
			}
		}
		_, _, b = g.do("GET", "/fhir/Provenance?_tag="+url.QueryEscape("https://linkbridge.example.org/Id/writeback|Provenance/lb-prov-1"), "")
		if b["total"] != float64(1) {
			t.Errorf("%s: two Provenance writes: ?_tag= found %v, want 1", mode, b["total"])
		}
		id, err := c.FindPatient(ctx, "9434765919")
		if err != nil || id == "" || id != wantPatient {
			t.Errorf("%s: FindPatient = %q, %v; want %q", mode, id, err, wantPatient)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"patient=Patient/p1&_count=10", "_lastUpdated=gt2026-11-01T00:00:00Z", "patient.identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919", "_id=a,b", "_tag=https://linkbridge.example.org/Id/writeback|Provenance/p1", "_tag=|code", "identifier=x", "x=1", "_lastUpdated=le2026", "subject=Group/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, typ := range []string{"Goal", "Patient", "Provenance"} {
			q, err := refgp.ParseQuery(typ, v)
			if err == nil && q.Type != typ {
				t.Fatalf("ParseQuery(%q) type %q", raw, q.Type)
			}
		}
	})
}

// TestSearchByTag: _tag is a token search on meta.tag (system|code, code,
// |code for no system, system| for any code), kept current on update, and
// declared in the CapabilityStatement of every type.
func TestSearchByTag(t *testing.T) {
	g := newTestGP(t, refgp.Options{AllowClientIDs: true})
	const wb = "https://linkbridge.example.org/Id/writeback"
	prov2 := strings.NewReplacer(`"code":"Provenance/lb-prov-1"}]`, `"code":"Provenance/lb-prov-2"},{"code":"no-system"},{"system":"http://example.org/t","code":"x"}]`,
		"lb-prov-1", "lb-prov-2").Replace(prov)
	goalTagged := strings.Replace(goal, `"id":"g1",`, `"id":"g1","meta":{"tag":[{"system":"http://example.org/t","code":"x"}]},`, 1)
	for path, body := range map[string]string{"/fhir/Provenance/lb-prov-1": prov, "/fhir/Provenance/lb-prov-2": prov2, "/fhir/Goal/g1": goalTagged} {
		if st, _, _ := g.do("PUT", path, body); st != 201 {
			t.Fatalf("PUT %s = %d", path, st)
		}
	}
	search := func(typ, tag string) []string {
		t.Helper()
		st, _, b := g.do("GET", "/fhir/"+typ+"?_tag="+url.QueryEscape(tag), "")
		if st != 200 {
			t.Fatalf("%s?_tag=%s = %d", typ, tag, st)
		}
		var ids []string
		for _, e := range asList(b["entry"]) {
			ids = append(ids, e["resource"].(map[string]any)["id"].(string))
		}
		if b["total"] != float64(len(ids)) {
			t.Errorf("total %v for %d entries", b["total"], len(ids))
		}
		// Matches come in lastUpdated order, and the map above creates the
		// resources in random order: compare the set.
		slices.Sort(ids)
		return ids
	}
	for _, tc := range []struct {
		typ, tag, want string
	}{
		{"Provenance", wb + "|Provenance/lb-prov-1", "lb-prov-1"},
		{"Provenance", "Provenance/lb-prov-2", "lb-prov-2"},
		{"Provenance", wb + "|", "lb-prov-1 lb-prov-2"},
		{"Provenance", "|no-system", "lb-prov-2"},
		{"Provenance", "|Provenance/lb-prov-1", ""},
		{"Provenance", "http://example.org/t|x", "lb-prov-2"},
		{"Goal", "http://example.org/t|x", "g1"},
		{"Provenance", wb + "|Provenance/nope", ""},
		{"Provenance", "http://other.example.org|Provenance/lb-prov-1", ""},
	} {
		if got := strings.Join(search(tc.typ, tc.tag), " "); got != tc.want {
			t.Errorf("%s?_tag=%s found %q, want %q", tc.typ, tc.tag, got, tc.want)
		}
	}
	// A new version's tags replace the old ones in the index.
	retagged := strings.Replace(prov, `"code":"Provenance/lb-prov-1"`, `"code":"Provenance/renamed"`, 1)
	if st, _, _ := g.do("PUT", "/fhir/Provenance/lb-prov-1", strings.Replace(retagged, "Sam Link", "Sam Link (2)", 1)); st != 200 {
		t.Fatalf("update = %d", st)
	}
	if got := search("Provenance", wb+"|Provenance/lb-prov-1"); len(got) != 0 {
		t.Errorf("old tag still finds %v", got)
	}
	if got := search("Provenance", wb+"|Provenance/renamed"); len(got) != 1 {
		t.Errorf("new tag finds %v, want lb-prov-1", got)
	}
	_, _, cs := g.do("GET", "/fhir/metadata", "")
	for _, res := range asList(cs["rest"].([]any)[0].(map[string]any)["resource"]) {
		names := map[string]bool{}
		for _, p := range asList(res["searchParam"]) {
			names[p["name"].(string)] = true
		}
		if !names["_tag"] {
			t.Errorf("%s does not declare _tag", res["type"])
		}
		if names["identifier"] == (res["type"] == "Provenance") {
			t.Errorf("%s declares identifier: %v", res["type"], names["identifier"])
		}
	}
}

// TestMigrationDropsConditions: a reference-GP file created before
// 003_tags.sql (with the conditions table of 002) opens, loses the table,
// and its resources' meta.tags become searchable.
func TestMigrationDropsConditions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gp.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }() // if the test stops before the checked Close below
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE migrations (name TEXT PRIMARY KEY)`)
	for _, name := range []string{"001_init.sql", "002_conditions.sql"} {
		b, err := os.ReadFile(filepath.Join("migration", name))
		if err != nil {
			t.Fatal(err)
		}
		exec(string(b))
		exec(`INSERT INTO migrations (name) VALUES (?)`, "migration/"+name)
	}
	// As 002 stored it: the endpoint's id and meta, the sender's tag kept.
	body := strings.Replace(prov, `"id":"lb-prov-1",`+"\n "+`"meta":{`, `"id":"old-1","meta":{"versionId":"1","lastUpdated":"2026-11-22T10:00:00Z",`, 1)
	if !strings.Contains(body, `"id":"old-1","meta":{"versionId":"1","lastUpdated":"2026-11-22T10:00:00Z","tag":[`) {
		t.Fatalf("fixture: %s", body)
	}
	exec(`INSERT INTO current (type, id, version, last_updated, body, content) VALUES ('Provenance', 'old-1', 1, '2026-11-22T10:00:00.000000Z', ?, '{}')`, body)
	exec(`INSERT INTO versions (type, id, version, last_updated, body) VALUES ('Provenance', 'old-1', 1, '2026-11-22T10:00:00.000000Z', ?)`, body)
	exec(`INSERT INTO conditions (type, id, system, value) VALUES ('Provenance', 'old-1', 'https://linkbridge.example.org/Id/writeback', 'Provenance/lb-prov-1')`)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	g := openTestGP(t, path, refgp.Options{}) // over a 002 file
	pc := "/fhir/Provenance?_tag=" + url.QueryEscape("https://linkbridge.example.org/Id/writeback|Provenance/lb-prov-1")
	if _, _, b := g.do("GET", pc, ""); b["total"] != float64(1) {
		t.Fatalf("the held Provenance's tag is not searchable after the migration: total %v", b["total"])
	}
	// Resent without an id (a strict endpoint refuses another id than the
	// match's: 400).
	if st, _, doc := g.do("PUT", pc, withoutID(t, prov)); st != 200 || doc["id"] != "old-1" {
		t.Fatalf("resend on _tag = %d %v, want 200 on old-1", st, doc["id"])
	}
	after, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = after.Close() }()
	var n int
	if err := after.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'conditions'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("conditions table: %d, %v; want dropped", n, err)
	}
}

// TestOpenRelativePath: a relative --db path (the reference GP's own
// default is one) opens; it failed with "invalid uri authority".
func TestOpenRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	gp, err := refgp.Open(context.Background(), "linkbridge-gp.db", refgp.Options{})
	if err != nil {
		t.Fatalf("Open(relative path): %v", err)
	}
	if err := gp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("linkbridge-gp.db"); err != nil {
		t.Errorf("the database is not where the relative path says: %v", err)
	}
}
