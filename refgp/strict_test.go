package refgp_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/refgp"
)

// issue returns the first issue of an OperationOutcome (nil if none).
func issue(doc map[string]any) map[string]any {
	is, _ := doc["issue"].([]any)
	if len(is) == 0 {
		return nil
	}
	m, _ := is[0].(map[string]any)
	return m
}

// exprs returns every expression of the first issue.
func exprs(doc map[string]any) []string {
	var out []string
	l, _ := issue(doc)["expression"].([]any)
	for _, e := range l {
		out = append(out, e.(string))
	}
	return out
}

// outcome fails unless doc is an OperationOutcome whose first issue has the
// code, the expressions (nil: any) and diagnostics containing every one of
// diags.
func outcome(t *testing.T, doc map[string]any, code string, expr []string, diags ...string) {
	t.Helper()
	is := issue(doc)
	if doc["resourceType"] != "OperationOutcome" || is == nil {
		t.Fatalf("answer = %v, want an OperationOutcome", doc)
	}
	if is["code"] != code {
		t.Errorf("issue code = %v, want %s (%v)", is["code"], code, is["diagnostics"])
	}
	if expr != nil && !slices.Equal(exprs(doc), expr) {
		t.Errorf("expression = %v, want %v", exprs(doc), expr)
	}
	for _, d := range diags {
		if msg, _ := is["diagnostics"].(string); !strings.Contains(msg, d) {
			t.Errorf("diagnostics %q do not mention %q", msg, d)
		}
	}
}

// post creates a resource (POST) and returns the endpoint's id for it.
func (g *testGP) post(typ, body string) string {
	g.t.Helper()
	st, _, doc := g.do("POST", "/fhir/"+typ, body)
	id, _ := doc["id"].(string)
	if st != 201 || id == "" {
		g.t.Fatalf("POST %s = %d %v", typ, st, doc)
	}
	return id
}

// goalKeyed is a Goal without an id, keyed by write-back identifier key.
func goalKeyed(key, status string) string {
	return fmt.Sprintf(`{"resourceType":"Goal","lifecycleStatus":%q,"description":{"text":"Walk"},
 "identifier":[{"system":"https://linkbridge.example.org/Id/writeback","value":%q}],
 "subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}}}`, status, key)
}

// carePlan is a CarePlan without an id whose goal is the given references
// (JSON Reference objects).
func carePlan(goals ...string) string {
	return `{"resourceType":"CarePlan","status":"active","intent":"plan",
 "subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}},
 "goal":[` + strings.Join(goals, ",") + `]}`
}

func ref(r string) string { return `{"reference":"` + r + `"}` }

// withID returns a resource's JSON with the given id.
func withID(body, id string) string {
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		panic(err)
	}
	doc["id"] = id
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return string(b)
}

const writebackSystem = "https://linkbridge.example.org/Id/writeback"

// TestStrictConditionalUpdate: each case of R4's conditional update
// (http.html#cond-update) on a strict endpoint, through the HTTP handler.
func TestStrictConditionalUpdate(t *testing.T) {
	cond := func(key string) string {
		return "/fhir/Goal?identifier=" + url.QueryEscape(writebackSystem+"|"+key)
	}
	for _, tc := range []struct {
		name string
		// body builds the request body; held is the id of the Goal keyed
		// "Goal/held" that the endpoint already holds.
		body   func(held string) string
		key    string
		status int
		// code and expr are the OperationOutcome's, for a refusal.
		code, expr string
		// same: the answer is the held Goal (else a new one, or none).
		same bool
	}{
		{name: "NoMatchNoIDCreates", body: func(string) string { return goalKeyed("Goal/new", "active") }, key: "Goal/new", status: 201},
		{name: "NoMatchClientIDRefused", body: func(string) string { return withID(goalKeyed("Goal/new", "active"), "client-1") }, key: "Goal/new",
			status: 400, code: "invalid", expr: "Goal.id"},
		{name: "NoMatchHeldIDRefused", body: func(held string) string { return withID(goalKeyed("Goal/new", "active"), held) }, key: "Goal/new",
			status: 400, code: "invalid", expr: "Goal.id"},
		{name: "OneMatchNoIDUpdates", body: func(string) string { return goalKeyed("Goal/held", "completed") }, key: "Goal/held", status: 200, same: true},
		{name: "OneMatchSameIDUpdates", body: func(held string) string { return withID(goalKeyed("Goal/held", "completed"), held) }, key: "Goal/held", status: 200, same: true},
		{name: "OneMatchOtherIDRefused", body: func(string) string { return withID(goalKeyed("Goal/held", "completed"), "other") }, key: "Goal/held",
			status: 400, code: "invalid", expr: "Goal.id"},
		{name: "MultipleMatches", body: func(string) string { return goalKeyed("Goal/dup", "completed") }, key: "Goal/dup",
			status: 412, code: "conflict", expr: "identifier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGP(t, refgp.Options{})
			held := g.post("Goal", goalKeyed("Goal/held", "active"))
			g.post("Goal", goalKeyed("Goal/dup", "active"))
			g.post("Goal", goalKeyed("Goal/dup", "active"))
			_, _, before := g.do("GET", "/fhir/Goal", "")
			st, h, doc := g.do("PUT", cond(tc.key), tc.body(held))
			if st != tc.status {
				t.Fatalf("PUT %s = %d %v, want %d", cond(tc.key), st, doc, tc.status)
			}
			_, _, after := g.do("GET", "/fhir/Goal", "")
			if tc.code != "" {
				outcome(t, doc, tc.code, []string{tc.expr})
				if after["total"] != before["total"] {
					t.Errorf("a refused write changed the Goals held: %v, then %v", before["total"], after["total"])
				}
				if _, _, v := g.do("GET", "/fhir/Goal/"+held, ""); v["lifecycleStatus"] != "active" {
					t.Errorf("a refused write changed the held Goal: %v", v)
				}
				return
			}
			id, _ := doc["id"].(string)
			wantVersion := "1"
			if tc.same {
				wantVersion = "2"
				if id != held {
					t.Errorf("updated %s, want the match %s", id, held)
				}
			} else if id == "" || id == held || id == "client-1" {
				t.Errorf("created id %q, want a new id of the endpoint's", id)
			}
			if h.Get("ETag") != `W/"`+wantVersion+`"` || !strings.HasSuffix(h.Get("Location"), "/fhir/Goal/"+id+"/_history/"+wantVersion) {
				t.Errorf("ETag %q Location %q, want version %s of Goal/%s", h.Get("ETag"), h.Get("Location"), wantVersion, id)
			}
			if _, _, read := g.do("GET", "/fhir/Goal/"+id, ""); read["lifecycleStatus"] != doc["lifecycleStatus"] {
				t.Errorf("read back %v, want what the write answered (%v)", read["lifecycleStatus"], doc["lifecycleStatus"])
			}
			if _, _, b := g.do("GET", cond(tc.key), ""); b["total"] != float64(1) {
				t.Errorf("%s matches %v resources after the write, want 1", tc.key, b["total"])
			}
		})
	}
}

// TestUpdateAsCreate: a strict endpoint refuses PUT Type/id of an id it
// does not hold (405) and stores nothing, and updates one it holds; a
// lenient one creates it.
func TestUpdateAsCreate(t *testing.T) {
	g := newTestGP(t, refgp.Options{})
	st, _, doc := g.do("PUT", "/fhir/Goal/g1", goal)
	if st != 405 {
		t.Fatalf("update-as-create on a strict endpoint = %d, want 405", st)
	}
	outcome(t, doc, "not-supported", nil, "update-as-create", "POST Goal")
	if st, _, _ := g.do("GET", "/fhir/Goal/g1", ""); st != 404 {
		t.Errorf("the refused write stored Goal/g1: GET = %d", st)
	}
	id := g.post("Goal", goal) // the id in the body is ignored
	if id == "g1" {
		t.Fatalf("POST kept the client's id")
	}
	changed := strings.Replace(withID(withoutID(t, goal), id), `"active"`, `"completed"`, 1)
	if st, h, doc := g.do("PUT", "/fhir/Goal/"+id, changed); st != 200 || h.Get("ETag") != `W/"2"` || doc["lifecycleStatus"] != "completed" {
		t.Errorf("update of a held id = %d %q %v, want 200 version 2", st, h.Get("ETag"), doc["lifecycleStatus"])
	}

	lenient := newTestGP(t, refgp.Options{AllowClientIDs: true})
	if st, h, _ := lenient.do("PUT", "/fhir/Goal/g1", goal); st != 201 || !strings.HasSuffix(h.Get("Location"), "/fhir/Goal/g1/_history/1") {
		t.Errorf("update-as-create on a lenient endpoint = %d %q, want 201 at Goal/g1", st, h.Get("Location"))
	}
	// A conditional update that matches nothing creates with the body's id.
	cond := "/fhir/Goal?identifier=" + url.QueryEscape(writebackSystem+"|Goal/c1")
	if st, _, doc := lenient.do("PUT", cond, withID(goalKeyed("Goal/c1", "active"), "c1")); st != 201 || doc["id"] != "c1" {
		t.Errorf("lenient conditional update-as-create = %d %v, want 201 c1", st, doc["id"])
	}
	// ... unless another resource holds that id.
	if st, _, doc := lenient.do("PUT", "/fhir/Goal?identifier="+url.QueryEscape(writebackSystem+"|Goal/c2"), withID(goalKeyed("Goal/c2", "active"), "c1")); st != 409 {
		t.Errorf("lenient conditional update-as-create on a taken id = %d %v, want 409", st, doc)
	}
}

// TestReferentialIntegrity: a strict endpoint refuses a write whose
// relative literal references do not resolve, on every write path, naming
// each reference and its element; a lenient one accepts it.
func TestReferentialIntegrity(t *testing.T) {
	for _, tc := range []struct {
		name string
		// body builds a CarePlan from the held Goal's id.
		body func(goal string) string
		// bad are the expressions of the refused references (nil: accepted);
		// diag is what the diagnostics must mention.
		bad  []string
		diag string
	}{
		{"Resolves", func(g string) string { return carePlan(ref("Goal/" + g)) }, nil, ""},
		{"Dangling", func(string) string { return carePlan(ref("Goal/nope")) }, []string{"CarePlan.goal[0]"}, "Goal/nope"},
		{"VersionHeld", func(g string) string { return carePlan(ref("Goal/" + g + "/_history/1")) }, nil, ""},
		{"VersionNotHeld", func(g string) string { return carePlan(ref("Goal/"+g), ref("Goal/"+g+"/_history/9")) }, []string{"CarePlan.goal[1]"}, "no version 9"},
		{"TypeNotHeld", func(g string) string {
			return strings.Replace(carePlan(ref("Goal/"+g)), `"goal"`, `"author":{"reference":"Organization/o1"},"goal"`, 1)
		}, []string{"CarePlan.author"}, "Organization/o1"},
		{"EachDangling", func(g string) string {
			return strings.Replace(carePlan(ref("Goal/x"), ref("Goal/"+g), ref("Goal/y")), `"subject":{`, `"subject":{"reference":"Patient/p9",`, 1)
		}, []string{"CarePlan.subject", "CarePlan.goal[0]", "CarePlan.goal[2]"}, "Goal/y"},
		{"NotLiteral", func(string) string { return carePlan(ref("Goal/g1/extra")) }, []string{"CarePlan.goal[0]"}, "Goal/g1/extra"},
		{"NotChecked", func(string) string {
			return strings.Replace(carePlan(ref("#g"), ref("urn:uuid:3741a7a4-3a54-4ec2-b2d0-6b3697f7d130"), ref("https://other.example.org/fhir/Goal/1"),
				`{"identifier":{"system":"https://example.org/goals","value":"1"}}`, `{"display":"a goal"}`),
				`"resourceType":"CarePlan",`, `"resourceType":"CarePlan","contained":[{"resourceType":"Goal","id":"g","lifecycleStatus":"active",
				 "description":{"text":"x"},"subject":{"reference":"Patient/elsewhere"}}],`, 1)
		}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGP(t, refgp.Options{})
			goalID := g.post("Goal", goalKeyed("Goal/held", "active"))
			held := g.post("CarePlan", carePlan(ref("Goal/"+goalID)))
			body := tc.body(goalID)
			for _, w := range []struct{ method, path, body string }{
				{"POST", "/fhir/CarePlan", body},
				{"PUT", "/fhir/CarePlan?_tag=" + url.QueryEscape(writebackSystem+"|CarePlan/new"), body},
				{"PUT", "/fhir/CarePlan/" + held, withID(body, held)},
			} {
				st, _, doc := g.do(w.method, w.path, w.body)
				if tc.bad == nil {
					if st != 200 && st != 201 {
						t.Errorf("%s %s = %d %v, want it stored", w.method, w.path, st, doc)
					}
					continue
				}
				if st != 400 {
					t.Errorf("%s %s = %d, want 400", w.method, w.path, st)
					continue
				}
				outcome(t, doc, "processing", tc.bad, tc.diag, "referential integrity")
			}
			if tc.bad != nil {
				if _, _, v := g.do("GET", "/fhir/CarePlan/"+held, ""); v["meta"].(map[string]any)["versionId"] != "1" {
					t.Errorf("a refused update stored a version: %v", v["meta"])
				}
			}

			lenient := newTestGP(t, refgp.Options{AllowClientIDs: true})
			if st, _, doc := lenient.do("POST", "/fhir/CarePlan", tc.body("nope")); st != 201 {
				t.Errorf("lenient POST = %d %v, want 201 (references unchecked)", st, doc)
			}
		})
	}
}

// TestDelete: delete is stored as a version (read 410, vread of it 410,
// history lists it, searches drop it), is idempotent, honours If-Match, is
// refused while another resource references the target (strict), and a
// deleted id comes back by update; a conditional update afterwards creates
// a new resource.
func TestDelete(t *testing.T) {
	g := newTestGP(t, refgp.Options{})
	goalID := g.post("Goal", goalKeyed("Goal/d1", "active"))
	cpID := g.post("CarePlan", carePlan(ref("Goal/"+goalID)))

	st, _, doc := g.do("DELETE", "/fhir/Goal/"+goalID, "")
	if st != 409 {
		t.Fatalf("DELETE of a referenced Goal = %d %v, want 409", st, doc)
	}
	outcome(t, doc, "conflict", nil, "CarePlan/"+cpID, "CarePlan.goal[0]")
	if st, _, _ := g.do("GET", "/fhir/Goal/"+goalID, ""); st != 200 {
		t.Fatalf("the refused delete removed the Goal: GET = %d", st)
	}

	if st, _, doc := g.do("DELETE", "/fhir/CarePlan/"+cpID, "", "If-Match", `W/"7"`); st != 412 {
		t.Fatalf("DELETE with a stale If-Match = %d %v, want 412", st, doc)
	}
	st, _, doc = g.do("DELETE", "/fhir/CarePlan/"+cpID, "", "If-Match", `W/"1"`)
	if st != 200 {
		t.Fatalf("DELETE = %d %v, want 200", st, doc)
	}
	outcome(t, doc, "informational", nil, "deleted (version 2)")
	st, _, doc = g.do("GET", "/fhir/CarePlan/"+cpID, "")
	if st != 410 {
		t.Fatalf("read after delete = %d, want 410 Gone", st)
	}
	outcome(t, doc, "deleted", nil, "was deleted")
	if st, _, _ := g.do("GET", "/fhir/CarePlan/"+cpID+"/_history/1", ""); st != 200 {
		t.Errorf("vread of the version before the delete = %d, want 200", st)
	}
	if st, _, _ := g.do("GET", "/fhir/CarePlan/"+cpID+"/_history/2", ""); st != 410 {
		t.Errorf("vread of the delete = %d, want 410", st)
	}
	_, _, hist := g.do("GET", "/fhir/CarePlan/"+cpID+"/_history", "")
	entries := asList(hist["entry"])
	if hist["total"] != float64(2) || len(entries) != 2 {
		t.Fatalf("history = %v, want the version and the delete", hist)
	}
	if req := entries[0]["request"].(map[string]any); req["method"] != "DELETE" || entries[0]["resource"] != nil {
		t.Errorf("history's newest entry = %v, want a DELETE without a resource", entries[0])
	}
	if _, _, b := g.do("GET", "/fhir/CarePlan", ""); b["total"] != float64(0) {
		t.Errorf("search after delete found %v CarePlans, want 0", b["total"])
	}

	// Idempotent: already deleted, never held.
	for _, path := range []string{"/fhir/CarePlan/" + cpID, "/fhir/Goal/never"} {
		if st, _, doc := g.do("DELETE", path, ""); st != 200 || issue(doc)["code"] != "informational" {
			t.Errorf("DELETE %s = %d %v, want 200", path, st, doc)
		}
	}
	if st, _, _ := g.do("GET", "/fhir/Goal/never", ""); st != 404 {
		t.Errorf("a delete of what was never held made it gone: GET = %d, want 404", st)
	}

	// Nothing references the Goal now: it deletes, and a new reference to
	// it is dangling.
	if st, _, doc := g.do("DELETE", "/fhir/Goal/"+goalID, ""); st != 200 {
		t.Fatalf("DELETE of a Goal no longer referenced = %d %v", st, doc)
	}
	if st, _, _ := g.do("POST", "/fhir/CarePlan", carePlan(ref("Goal/"+goalID))); st != 400 {
		t.Errorf("a reference to a deleted Goal = %d, want 400", st)
	}
	cond := "/fhir/Goal?identifier=" + url.QueryEscape(writebackSystem+"|Goal/d1")
	if _, _, b := g.do("GET", cond, ""); b["total"] != float64(0) {
		t.Errorf("the deleted Goal's identifier still matches %v", b["total"])
	}
	st, _, doc = g.do("PUT", cond, goalKeyed("Goal/d1", "active"))
	if st != 201 || doc["id"] == goalID {
		t.Errorf("conditional update after the delete = %d id %v, want 201 with a new id", st, doc["id"])
	}
	// An update brings the deleted id back (R4 allows it), as version 3.
	if st, h, _ := g.do("PUT", "/fhir/Goal/"+goalID, withID(goalKeyed("Goal/d1-back", "active"), goalID)); st != 201 || h.Get("ETag") != `W/"3"` {
		t.Errorf("update of a deleted id = %d %q, want 201 W/\"3\"", st, h.Get("ETag"))
	}
	_, _, hist = g.do("GET", "/fhir/Goal/"+goalID+"/_history", "")
	if e := asList(hist["entry"]); len(e) != 3 || e[0]["response"].(map[string]any)["status"] != "201 Created" {
		t.Errorf("history after the comeback = %v, want 3 entries, the newest 201 Created", hist["entry"])
	}
	// A versioned reference resolves to a stored version, not to the delete.
	if st, _, _ := g.do("POST", "/fhir/CarePlan", carePlan(ref("Goal/"+goalID+"/_history/1"))); st != 201 {
		t.Errorf("a reference to version 1 of the Goal = %d, want 201", st)
	}
	if st, _, doc := g.do("POST", "/fhir/CarePlan", carePlan(ref("Goal/"+goalID+"/_history/2"))); st != 400 || !strings.Contains(issue(doc)["diagnostics"].(string), "no version 2") {
		t.Errorf("a reference to the version recording the delete = %d %v, want 400", st, doc)
	}

	// Lenient: a referenced resource deletes.
	lenient := newTestGP(t, refgp.Options{AllowClientIDs: true})
	lg := lenient.post("Goal", goalKeyed("Goal/l1", "active"))
	lenient.post("CarePlan", carePlan(ref("Goal/"+lg)))
	if st, _, doc := lenient.do("DELETE", "/fhir/Goal/"+lg, ""); st != 200 {
		t.Errorf("lenient DELETE of a referenced Goal = %d %v, want 200", st, doc)
	}
}

// TestNoDelete: with NoDelete, DELETE is 405 and changes nothing;
// conditional delete is 405 in any mode.
func TestNoDelete(t *testing.T) {
	g := newTestGP(t, refgp.Options{NoDelete: true})
	id := g.post("Goal", goalKeyed("Goal/n1", "active"))
	st, _, doc := g.do("DELETE", "/fhir/Goal/"+id, "")
	if st != 405 {
		t.Fatalf("DELETE with NoDelete = %d %v, want 405", st, doc)
	}
	outcome(t, doc, "not-supported", nil, "delete")
	if st, _, _ := g.do("GET", "/fhir/Goal/"+id, ""); st != 200 {
		t.Errorf("the refused delete removed the Goal: GET = %d", st)
	}
	for _, opts := range []refgp.Options{{}, {AllowClientIDs: true}} {
		g := newTestGP(t, opts)
		g.post("Goal", goalKeyed("Goal/n1", "active"))
		if st, _, _ := g.do("DELETE", "/fhir/Goal?identifier="+url.QueryEscape(writebackSystem+"|Goal/n1"), ""); st != 405 {
			t.Errorf("%+v: conditional delete = %d, want 405", opts, st)
		}
	}
}

// TestCapabilityStatementPerMode: /metadata declares what each mode does,
// for every type.
func TestCapabilityStatementPerMode(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opts         refgp.Options
		updateCreate bool
		policy       string
		delete       bool
	}{
		{"Strict", refgp.Options{}, false, "literal logical enforced", true},
		{"Lenient", refgp.Options{AllowClientIDs: true}, true, "literal logical", true},
		{"StrictNoDelete", refgp.Options{NoDelete: true}, false, "literal logical enforced", false},
		{"LenientNoDelete", refgp.Options{AllowClientIDs: true, NoDelete: true}, true, "literal logical", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGP(t, tc.opts)
			_, _, cs := g.do("GET", "/fhir/metadata", "")
			resources := asList(cs["rest"].([]any)[0].(map[string]any)["resource"])
			if len(resources) != len(refgp.Types) {
				t.Fatalf("%d resources declared, want %d", len(resources), len(refgp.Types))
			}
			for _, res := range resources {
				var inter, policy []string
				for _, in := range asList(res["interaction"]) {
					inter = append(inter, in["code"].(string))
				}
				for _, p := range res["referencePolicy"].([]any) {
					policy = append(policy, p.(string))
				}
				if res["updateCreate"] != tc.updateCreate || res["conditionalUpdate"] != true || res["conditionalCreate"] != true ||
					res["conditionalDelete"] != "not-supported" || strings.Join(policy, " ") != tc.policy {
					t.Errorf("%s: updateCreate %v conditionalUpdate %v conditionalCreate %v conditionalDelete %v referencePolicy %v",
						res["type"], res["updateCreate"], res["conditionalUpdate"], res["conditionalCreate"], res["conditionalDelete"], policy)
				}
				if slices.Contains(inter, "delete") != tc.delete {
					t.Errorf("%s: interactions %v, want delete %v", res["type"], inter, tc.delete)
				}
				for _, want := range []string{"read", "vread", "update", "history-instance", "create", "search-type"} {
					if !slices.Contains(inter, want) {
						t.Errorf("%s: interactions %v lack %s", res["type"], inter, want)
					}
				}
			}
		})
	}
}

// TestMigrationIndexesReferences: a reference-GP file created before
// 004_delete_refs.sql opens; the references of the resources it holds are
// indexed (outside contained resources), so a strict endpoint refuses to
// delete a Goal its CarePlan references, and deletes work on its versions.
func TestMigrationIndexesReferences(t *testing.T) {
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
	for _, name := range []string{"001_init.sql", "002_conditions.sql", "003_tags.sql"} {
		b, err := os.ReadFile(filepath.Join("migration", name))
		if err != nil {
			t.Fatal(err)
		}
		exec(string(b))
		exec(`INSERT INTO migrations (name) VALUES (?)`, "migration/"+name)
	}
	meta := `"meta":{"versionId":"1","lastUpdated":"2026-11-22T10:00:00Z"}`
	held := map[string]string{
		"Goal/g-old": `{"resourceType":"Goal","id":"g-old",` + meta + `,"lifecycleStatus":"active","description":{"text":"Walk"},
			"subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}}}`,
		"Goal/g-other": `{"resourceType":"Goal","id":"g-other",` + meta + `,"lifecycleStatus":"active","description":{"text":"Talk"},
			"subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}}}`,
		// g-other is referenced only from a contained resource and from an
		// identifier's assigner: neither counts.
		"CarePlan/cp-old": `{"resourceType":"CarePlan","id":"cp-old",` + meta + `,"status":"active","intent":"plan",
			"contained":[{"resourceType":"Goal","id":"c","lifecycleStatus":"active","description":{"text":"x"},"subject":{"reference":"Goal/g-other"}}],
			"identifier":[{"value":"1","assigner":{"reference":"Goal/g-other"}}],
			"subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}},
			"goal":[{"reference":"#c"},{"reference":"Goal/g-old/_history/1"}]}`,
	}
	for key, body := range held {
		typ, id, _ := strings.Cut(key, "/")
		exec(`INSERT INTO current (type, id, version, last_updated, body, content) VALUES (?, ?, 1, '2026-11-22T10:00:00.000000Z', ?, '{}')`, typ, id, body)
		exec(`INSERT INTO versions (type, id, version, last_updated, body) VALUES (?, ?, 1, '2026-11-22T10:00:00.000000Z', ?)`, typ, id, body)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	g := openTestGP(t, path, refgp.Options{}) // over a 003 file
	st, _, doc := g.do("DELETE", "/fhir/Goal/g-old", "")
	if st != 409 {
		t.Fatalf("DELETE of a Goal referenced before the migration = %d %v, want 409", st, doc)
	}
	outcome(t, doc, "conflict", nil, "CarePlan/cp-old", "CarePlan.goal[1]")
	if st, _, doc := g.do("DELETE", "/fhir/Goal/g-other", ""); st != 200 {
		t.Errorf("DELETE of a Goal referenced only from contained and assigner = %d %v, want 200", st, doc)
	}
	if st, _, _ := g.do("DELETE", "/fhir/CarePlan/cp-old", ""); st != 200 {
		t.Fatalf("DELETE CarePlan = %d", st)
	}
	if st, _, _ := g.do("GET", "/fhir/CarePlan/cp-old", ""); st != 410 {
		t.Errorf("read of the deleted CarePlan = %d, want 410", st)
	}
	if st, _, doc := g.do("DELETE", "/fhir/Goal/g-old", ""); st != 200 {
		t.Errorf("DELETE of the Goal no longer referenced = %d %v", st, doc)
	}
}
