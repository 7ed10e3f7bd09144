package conformance

import (
	"encoding/json"

	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/linkbridge/linkbridge"

	"github.com/linkbridge/linkbridge/fhirmap"
)

// WritebackTypes are the resource types linkbridge writes back, in the
// order a change sends them: what a resource refers to comes first (goals
// and onward referrals before the CarePlan, the outputs before the Task,
// every target before the Provenance).
var WritebackTypes = []string{"Goal", "ServiceRequest", "Procedure", "Encounter", "Observation", "CarePlan", "Task", "Provenance"}

// keyQuery is the criterion that finds the written-back Type/id, as the
// relay's conditional update sends it: identifier=system|Type/id, or
// _tag=system|Type/id for a type without an identifier element, in the
// write-back system of the deployment the kit stands in for
// (Config.Systems).
func (t *T) keyQuery(typ, id string) string {
	return fhirmap.WritebackKeyParam(typ) + "=" + url.QueryEscape(t.kit.cfg.Systems.WritebackToken(typ, id))
}

// taggedKey tells whether a type carries its write-back key as a meta.tag.
func taggedKey(typ string) bool { return fhirmap.WritebackKeyParam(typ) == "_tag" }

// gpState is what the gp-endpoint scenarios learn as they go.
type gpState struct {
	nhs string
	// updateCreate and conditional are read from the CapabilityStatement.
	updateCreate, conditional map[string]bool
	interactions              map[string]map[string]bool
	// params are each type's searchParam names (nil: none listed).
	params map[string]map[string]bool
	// identities records the endpoint's id of every resource written.
	identities *identities
}

func (k *kit) gp() *gpState {
	if k.gpst == nil {
		k.gpst = &gpState{nhs: NewNHSNumber(), updateCreate: map[string]bool{}, conditional: map[string]bool{},
			interactions: map[string]map[string]bool{}, params: map[string]map[string]bool{},
			identities: &identities{m: map[linkbridge.ResourceKey]linkbridge.EndpointIdentity{}}}
	}
	return k.gpst
}

func gpEndpointScenarios() []Scenario {
	s := []Scenario{
		{"gp-capability-statement", "CapabilityStatement: every write-back type can be written idempotently", "gpfhir ModeAuto", scGPCapability},
		{"gp-patient-lookup", "Patient?identifier=<NHS number> answers a searchset", "relay --gp-link-patients", scGPPatientLookup},
	}
	for _, typ := range WritebackTypes {
		typ := typ
		s = append(s, Scenario{"gp-write-" + strings.ToLower(typ), typ + " write-backs: accepted, idempotent, read back as written", "README write-back", func(t *T) { scGPWrite(t, typ) }})
	}
	return append(s,
		Scenario{"gp-conditional-update", "conditional update on the write-back identifier, no id in the body", "FHIR conditional update", scGPConditional},
		Scenario{"gp-id-semantics", "ids as the CapabilityStatement declares: update-as-create only with updateCreate, a conditional update's mismatching id refused", "FHIR http.html#update, #cond-update", scGPIDSemantics},
		Scenario{"gp-new-version", "a later version replaces the earlier one", "README write-back", scGPNewVersion},
		Scenario{"gp-if-match", "If-Match: current version accepted, stale version 412", "FHIR versioned update", scGPIfMatch},
		Scenario{"gp-history", "history and vread keep every version", "FHIR history", scGPHistory},
		Scenario{"gp-invalid-refused", "an invalid resource is refused with an OperationOutcome and not stored", "FHIR validation", scGPInvalid},
		Scenario{"gp-references-resolve", "after a journey, every reference between written-back resources resolves on the endpoint", "FHIR references", scGPReferences},
	)
}

func scGPCapability(t *T) {
	g := t.kit.gp()
	r := t.Do(Request{Method: http.MethodGet, URL: "metadata"})
	t.ExpectStatus(r, http.StatusOK)
	t.Check(r.Doc.Str("resourceType") == "CapabilityStatement", "GET /metadata answers a CapabilityStatement")
	t.Check(r.Doc.Str("fhirVersion") == "4.0.1", "fhirVersion is 4.0.1 (got %q)", r.Doc.Str("fhirVersion"))
	for _, rest := range r.Doc.List("rest") {
		for _, res := range rest.List("resource") {
			typ := res.Str("type")
			g.updateCreate[typ] = res["updateCreate"] == true
			g.conditional[typ] = res["conditionalUpdate"] == true
			g.interactions[typ] = map[string]bool{}
			for _, in := range res.List("interaction") {
				g.interactions[typ][in.Str("code")] = true
			}
			for _, p := range res.List("searchParam") {
				if g.params[typ] == nil {
					g.params[typ] = map[string]bool{}
				}
				g.params[typ][p.Str("name")] = true
			}
		}
	}
	for _, typ := range WritebackTypes {
		t.Check(g.interactions[typ]["update"], "%s supports update", typ)
		t.Check(g.updateCreate[typ] || g.conditional[typ] || g.interactions[typ]["create"], "%s can be written idempotently (updateCreate, conditionalUpdate, or create and search by the key)", typ)
		if param := fhirmap.WritebackKeyParam(typ); !g.updateCreate[typ] && g.conditional[typ] && g.params[typ] != nil {
			t.Check(g.params[typ][param], "%s: conditional update on the write-back key needs the %s search parameter, which the statement does not list", typ, param)
		}
	}
	mode := t.relay().Client
	for _, typ := range WritebackTypes {
		m, err := mode.ModeFor(t.ctx, typ)
		if err != nil {
			t.Fatalf("reading the CapabilityStatement as the relay does: %v", err)
		}
		t.Step("%s: the relay writes in %s mode", typ, m)
	}
}

func scGPPatientLookup(t *T) {
	g := t.kit.gp()
	r := t.Do(Request{Method: http.MethodGet, URL: "Patient?identifier=" + url.QueryEscape(NHSNumberSystem+"|"+g.nhs)})
	t.ExpectStatus(r, http.StatusOK)
	t.Check(r.Doc.Str("resourceType") == "Bundle" && r.Doc.Str("type") == "searchset", "the answer is a searchset Bundle")
}

// shapes renders the write-back shapes of a stage for this run (its run id
// and NHS number).
func (t *T) shapes(stage int) []Shape {
	g := t.kit.gp()
	sh, err := WritebackShapes(t.kit.codec, t.kit.cfg.Systems, t.kit.runID, g.nhs, stage)
	if err != nil {
		t.Fatalf("kit error: rendering write-back shapes: %v", err)
	}
	return sh
}

// writeShape sends one shape as the relay does (t.send) after every shape
// of the same stage that it depends on (an earlier type in WritebackTypes)
// not written yet, and returns the endpoint's status.
func writeShape(t *T, sh Shape) int {
	g := t.kit.gp()
	rel := t.relay()
	for _, dep := range t.shapes(sh.Version) {
		if dep.Type == sh.Type {
			break
		}
		if g.identities.get(dep.Type, dep.ID) == "" && typeIndex(dep.Type) < typeIndex(sh.Type) {
			t.send(rel, dep)
		}
	}
	return t.send(rel, sh)
}

func typeIndex(typ string) int {
	for i, tp := range WritebackTypes {
		if tp == typ {
			return i
		}
	}
	return len(WritebackTypes)
}

// sameContent compares a shape a with the endpoint's copy b, ignoring what
// the endpoint owns (id, meta, text) and a literal Patient reference it may
// add beside the NHS number identifier; each literal reference is compared
// by the resource it names (the endpoint's ids mapped back with back,
// versions left out).
func sameContent(a, b []byte, back map[string]string) (bool, string) {
	norm := func(x []byte) any {
		var m map[string]any
		_ = json.Unmarshal(x, &m)
		delete(m, "id")
		delete(m, "meta")
		delete(m, "text")
		var strip func(v any) any
		strip = func(v any) any {
			switch v := v.(type) {
			case map[string]any:
				if id, ok := v["identifier"].(map[string]any); ok && id["system"] == NHSNumberSystem {
					delete(v, "reference")
				}
				if ref, ok := v["reference"].(string); ok {
					parts := strings.Split(ref, "/")
					if len(parts) >= 2 {
						ref = parts[0] + "/" + parts[1]
					}
					if to, ok := back[ref]; ok {
						ref = to
					}
					v["reference"] = ref
				}
				for k, e := range v {
					v[k] = strip(e)
				}
			case []any:
				for i := range v {
					v[i] = strip(v[i])
				}
			}
			return v
		}
		return strip(m)
	}
	na, nb := norm(a), norm(b)
	if reflect.DeepEqual(na, nb) {
		return true, ""
	}
	ma, _ := na.(map[string]any)
	mb, _ := nb.(map[string]any)
	for k := range ma {
		if !reflect.DeepEqual(ma[k], mb[k]) {
			return false, k
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			return false, k
		}
	}
	return false, "?"
}

// countByWritebackID counts the resources that hold sh's write-back key:
// Type?identifier=, or Type?_tag= for a type keyed by meta.tag. A tag-keyed
// type written with client ids (where _tag search is not needed) is
// counted by id.
func countByWritebackID(t *T, sh Shape) int {
	if g := t.kit.gp(); taggedKey(sh.Type) && g.updateCreate[sh.Type] {
		return count(t, sh.Type, "_id="+url.QueryEscape(sh.ID))
	}
	return count(t, sh.Type, t.keyQuery(sh.Type, sh.ID))
}

// count answers how many typ resources GET typ?query finds.
func count(t *T, typ, query string) int {
	r := t.Do(Request{Method: http.MethodGet, URL: typ + "?" + query})
	t.ExpectStatus(r, http.StatusOK)
	n := 0
	for _, e := range r.Doc.List("entry") {
		if e.Obj("resource").Str("resourceType") == typ {
			n++
		}
	}
	return n
}

func scGPWrite(t *T, typ string) {
	g := t.kit.gp()
	n := 0
	for _, sh := range t.shapes(1) {
		if sh.Type != typ {
			continue
		}
		n++
		status := writeShape(t, sh)
		t.Step("%s/%s accepted as the relay sends it (%d)", sh.Type, sh.ID, status)
		t.send(t.relay(), sh)
		t.Check(countByWritebackID(t, sh) == 1, "writing %s/%s twice left one resource", sh.Type, sh.ID)
		id := g.identities.get(sh.Type, sh.ID)
		if id == "" {
			t.Fatalf("the endpoint did not say where it stored %s/%s (no Location, no id)", sh.Type, sh.ID)
		}
		read := t.Do(Request{Method: http.MethodGet, URL: sh.Type + "/" + url.PathEscape(id)})
		t.ExpectStatus(read, http.StatusOK)
		same, diff := sameContent(sh.Body, read.Body, g.identities.reverse())
		t.Check(same, "reading %s/%s returns what was written (first difference in %q)", sh.Type, id, diff)
	}
	if n == 0 {
		t.Fatalf("kit error: no %s shape rendered", typ)
	}
}

// scGPReferences writes the whole journey (both stages) as the relay does
// and checks that every literal reference in every resource it wrote
// resolves on the endpoint: read (vread for a versioned one) answers 200.
func scGPReferences(t *T) {
	g := t.kit.gp()
	rel := t.relay()
	for stage := 1; stage <= 2; stage++ {
		for _, sh := range t.shapes(stage) {
			t.send(rel, sh)
		}
	}
	checked := 0
	for _, sh := range t.shapes(2) {
		id := g.identities.get(sh.Type, sh.ID)
		read := t.Do(Request{Method: http.MethodGet, URL: sh.Type + "/" + url.PathEscape(id)})
		t.ExpectStatus(read, http.StatusOK)
		for _, ref := range literalRefs(read.Doc) {
			r := t.Do(Request{Method: http.MethodGet, URL: ref})
			t.Check(r.Status == http.StatusOK, "%s/%s refers to %s, which the endpoint answers %d", sh.Type, id, ref, r.Status)
			checked++
		}
	}
	t.Check(checked > 0, "the journey's resources refer to one another (none found)")
	t.Step("%d references between written-back resources resolve", checked)
}

// literalRefs returns the relative literal references of a resource
// (Type/id, Type/id/_history/v), outside contained resources.
func literalRefs(doc J) []string {
	var out []string
	var walk func(v any, top bool)
	walk = func(v any, top bool) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["reference"].(string); ok && !top {
				parts := strings.Split(ref, "/")
				if (len(parts) == 2 || len(parts) == 4 && parts[2] == "_history") && parts[0] != "" && parts[0][0] >= 'A' && parts[0][0] <= 'Z' {
					out = append(out, ref)
				}
			}
			for k, e := range x {
				if !(top && k == "contained") {
					walk(e, false)
				}
			}
		case []any:
			for _, e := range x {
				walk(e, false)
			}
		}
	}
	walk(map[string]any(doc), true)
	return out
}

// scGPIDSemantics checks the id rules the relay relies on, as R4 states
// them (http.html#update, #cond-update) and as the endpoint declares them:
//   - a type that does not declare updateCreate refuses PUT Type/<an id it
//     does not hold> and creates nothing;
//   - a conditional update whose criterion matches one resource but whose
//     body carries a different id is refused with 400, and changes nothing.
//
// A proxy or server that ignores the declared id semantics (creates with a
// client id it said it would not take, or silently re-targets a write) fails
// here.
func scGPIDSemantics(t *T) {
	g := t.kit.gp()
	var goal Shape
	for _, s := range t.shapes(1) {
		if s.Type == "Goal" {
			goal = s
		}
	}
	checked := false
	if !g.updateCreate["Goal"] {
		fresh := "conform-" + t.kit.runID + "-fresh"
		body := mutate(goal.Body, func(d map[string]any) { d["id"] = fresh })
		r := t.Do(Request{Method: http.MethodPut, URL: "Goal/" + fresh, Body: body})
		t.Check(r.Status >= 400 && r.Status < 500, "updateCreate is not declared for Goal, but PUT Goal/%s (an id the endpoint does not hold) answered %d", fresh, r.Status)
		read := t.Do(Request{Method: http.MethodGet, URL: "Goal/" + fresh})
		t.Check(read.Status == http.StatusNotFound || read.Status == http.StatusGone, "the refused update-as-create stored nothing (GET answers %d)", read.Status)
		t.Step("update-as-create with a client id is refused, as the statement declares")
		checked = true
	}
	if g.conditional["Goal"] {
		writeShape(t, goal)
		id := g.identities.get("Goal", goal.ID)
		other := id + "x"
		body := mutate(goal.Body, func(d map[string]any) { d["id"] = other; d["lifecycleStatus"] = "cancelled" })
		r := t.Do(Request{Method: http.MethodPut, URL: "Goal?" + t.keyQuery("Goal", goal.ID), Body: body})
		t.ExpectOutcome(r, 400, 400, "")
		after := t.Do(Request{Method: http.MethodGet, URL: "Goal/" + url.PathEscape(id)})
		t.ExpectStatus(after, http.StatusOK)
		t.Check(after.Doc.Str("lifecycleStatus") != "cancelled", "the refused conditional update changed nothing")
		t.Step("a conditional update that matches Goal/%s but carries id %s is refused with 400", id, other)
		checked = true
	}
	if !checked {
		t.Skipf("the endpoint takes client ids for Goal and offers no conditional update: nothing to check")
	}
}

// scGPConditional writes a new resource twice by conditional update on its
// write-back key — for a type keyed by identifier and for one keyed by
// meta.tag (Provenance, on _tag) — and checks each left one resource,
// found by the same criterion.
func scGPConditional(t *T) {
	g := t.kit.gp()
	var types []string
	for _, tagged := range []bool{false, true} {
		for _, tp := range WritebackTypes {
			if g.conditional[tp] && taggedKey(tp) == tagged {
				types = append(types, tp)
				break
			}
		}
	}
	if len(types) == 0 {
		t.Skipf("the endpoint advertises no conditionalUpdate (it takes client ids)")
	}
	for _, typ := range types {
		var sh Shape
		for _, s := range t.shapes(1) {
			if s.Type == typ {
				sh = s
				break
			}
		}
		sh.ID += "-cond"
		key := sh.Type + "/" + sh.ID
		// No id in the body: the endpoint assigns its own (R4: no match and
		// no id creates; one match and no id updates it).
		sh.Body = mutate(sh.Body, func(d map[string]any) {
			delete(d, "id")
			// The shape's literal references name the gateway's ids; a
			// Provenance's targets keep their write-back identifiers.
			dropLiteralRefs(d)
			for _, id := range asSlice(d["identifier"]) {
				if m := id.(map[string]any); m["system"] == t.kit.cfg.Systems.Writeback() {
					m["value"] = key
				}
			}
			meta, _ := d["meta"].(map[string]any)
			for _, tag := range asSlice(meta["tag"]) {
				if m := tag.(map[string]any); m["system"] == t.kit.cfg.Systems.Writeback() {
					m["code"] = key
				}
			}
		})
		q := t.keyQuery(sh.Type, sh.ID)
		u := sh.Type + "?" + q
		h := map[string]string{"X-Linkbridge-Version": "1"}
		first := t.Do(Request{Method: http.MethodPut, URL: u, Body: sh.Body, Header: h})
		t.ExpectStatus(first, http.StatusOK, http.StatusCreated)
		second := t.Do(Request{Method: http.MethodPut, URL: u, Body: sh.Body, Header: h})
		t.ExpectStatus(second, http.StatusOK, http.StatusCreated)
		t.Check(count(t, sh.Type, q) == 1, "two conditional updates on %s?%s left one resource", sh.Type, fhirmap.WritebackKeyParam(sh.Type))
		t.Step("%s: the same conditional update twice left one resource (%s)", sh.Type, fhirmap.WritebackKeyParam(sh.Type))
	}
}

// dropLiteralRefs removes the literal reference of every Reference that
// also has an identifier (a logical reference remains).
func dropLiteralRefs(v any) {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["reference"].(string); ok && x["identifier"] != nil {
			delete(x, "reference")
		}
		for _, e := range x {
			dropLiteralRefs(e)
		}
	case []any:
		for _, e := range x {
			dropLiteralRefs(e)
		}
	}
}

func asSlice(v any) []any {
	l, _ := v.([]any)
	return l
}

func scGPNewVersion(t *T) {
	g := t.kit.gp()
	for _, sh := range t.shapes(2) {
		if sh.Type != "Task" && sh.Type != "CarePlan" && sh.Type != "Procedure" {
			continue
		}
		if g.identities.get(sh.Type, sh.ID) == "" {
			t.Skipf("needs the gp-write scenarios to have written %s/%s first", sh.Type, sh.ID)
		}
		writeShape(t, sh)
		read := t.Do(Request{Method: http.MethodGet, URL: sh.Type + "/" + url.PathEscape(g.identities.get(sh.Type, sh.ID))})
		t.ExpectStatus(read, http.StatusOK)
		same, diff := sameContent(sh.Body, read.Body, g.identities.reverse())
		t.Check(same, "%s/%s reads the later version (first difference in %q)", sh.Type, sh.ID, diff)
		t.Check(countByWritebackID(t, sh) == 1, "still one %s", sh.Type)
	}
}

func scGPIfMatch(t *T) {
	g := t.kit.gp()
	var sh Shape
	for _, s := range t.shapes(2) {
		if s.Type == "Goal" {
			sh = s
		}
	}
	id := g.identities.get("Goal", sh.ID)
	if id == "" {
		t.Skipf("needs gp-write-goal to have written Goal/%s first", sh.ID)
	}
	cur := t.Do(Request{Method: http.MethodGet, URL: "Goal/" + url.PathEscape(id)})
	t.ExpectStatus(cur, http.StatusOK)
	etag := cur.Header.Get("ETag")
	t.Check(etag != "", "the Goal has an ETag (%s)", etag)
	sh.Body = mutate(sh.Body, func(d map[string]any) { d["id"] = id })
	ok1 := t.Do(Request{Method: http.MethodPut, URL: "Goal/" + url.PathEscape(id), Body: sh.Body, Header: map[string]string{"If-Match": etag}})
	t.ExpectStatus(ok1, http.StatusOK)
	t.Check(ok1.Header.Get("ETag") != "" && ok1.Header.Get("ETag") != etag, "the update with the current If-Match made a new version (%s)", ok1.Header.Get("ETag"))
	changed := mutate(sh.Body, func(d map[string]any) { d["lifecycleStatus"] = "cancelled" })
	stale := t.Do(Request{Method: http.MethodPut, URL: "Goal/" + url.PathEscape(id), Body: changed, Header: map[string]string{"If-Match": etag}})
	t.ExpectOutcome(stale, 412, 412, "")
	t.Step("an update with a stale If-Match is refused with 412")
	after := t.Do(Request{Method: http.MethodGet, URL: "Goal/" + url.PathEscape(id)})
	same, diff := sameContent(sh.Body, after.Body, g.identities.reverse())
	t.Check(same, "the refused update changed nothing (first difference in %q)", diff)
}

func scGPHistory(t *T) {
	g := t.kit.gp()
	if !g.interactions["Task"]["history-instance"] || !g.interactions["Task"]["vread"] {
		t.Skipf("the endpoint does not advertise history-instance and vread for Task")
	}
	var first Shape
	for _, s := range t.shapes(1) {
		if s.Type == "Task" {
			first = s
		}
	}
	id := g.identities.get("Task", first.ID)
	if id == "" {
		t.Skipf("needs gp-write-task to have written the Task first")
	}
	h := t.Do(Request{Method: http.MethodGet, URL: "Task/" + url.PathEscape(id) + "/_history"})
	t.ExpectStatus(h, http.StatusOK)
	t.Check(h.Doc.Str("type") == "history" && len(h.Doc.List("entry")) >= 2, "the Task history has every version (%d)", len(h.Doc.List("entry")))
	v1 := t.Do(Request{Method: http.MethodGet, URL: "Task/" + url.PathEscape(id) + "/_history/1"})
	t.ExpectStatus(v1, http.StatusOK)
	same, diff := sameContent(first.Body, v1.Body, g.identities.reverse())
	t.Check(same, "version 1 reads as first written (first difference in %q)", diff)
}

func scGPInvalid(t *T) {
	var sh Shape
	for _, s := range t.shapes(1) {
		if s.Type == "Task" {
			sh = s
		}
	}
	sh.ID += "-invalid"
	body := mutate(sh.Body, func(d map[string]any) { d["id"] = sh.ID; delete(d, "status"); delete(d, "output") })
	u := "Task/" + sh.ID
	if g := t.kit.gp(); !g.updateCreate["Task"] && g.conditional["Task"] {
		u = "Task?" + t.keyQuery("Task", sh.ID)
		body = mutate(body, func(d map[string]any) { delete(d, "id") })
	}
	r := t.Do(Request{Method: http.MethodPut, URL: u, Body: body})
	t.ExpectOutcome(r, 400, 422, "status")
	read := t.Do(Request{Method: http.MethodGet, URL: "Task/" + sh.ID})
	t.Check(read.Status == http.StatusNotFound || read.Status == http.StatusGone, "nothing was stored (GET answers %d)", read.Status)
}
