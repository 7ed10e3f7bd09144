package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

var lenientHeader = hdr{"Prefer": "handling=lenient"}

// selfQuery returns the query of a Bundle's self link.
func selfQuery(t *testing.T, b *rpb.Bundle) url.Values {
	t.Helper()
	u, err := url.Parse(linkURL(b, "self"))
	if err != nil {
		t.Fatalf("self link %q: %v", linkURL(b, "self"), err)
	}
	return u.Query()
}

// TestSearchStrictAndLenient: a parameter, modifier, prefix or result
// parameter value the search cannot apply is refused with 400 naming it
// (strict handling, the default: FHIR R4 search.html#errors); with Prefer:
// handling=lenient the search runs without it, and its self link leaves it
// out while keeping what was used.
func TestSearchStrictAndLenient(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	tests := []struct {
		name    string
		typ     string
		q       string
		refused []string // the parameters named, in any order
		want    []string // lenient matches
	}{
		{"UnknownParam", "Task", "made-up=x&status=requested", []string{"made-up"}, f.task[:]},
		{"TwoUnknown", "Task", "made-up=x&also-made-up=y", []string{"made-up", "also-made-up"}, f.task[:]},
		{"OtherTypesParam", "Patient", "status=active", []string{"status"}, f.patient[:]},
		{"ResultParamUnknown", "Task", "_contained=true", []string{"_contained"}, f.task[:]},
		{"TagUnsupported", "Task", "_tag=x", []string{"_tag"}, f.task[:]},
		{"UnsupportedModifier", "Task", "status:not=requested", []string{"status:not"}, f.task[:]},
		{"IdentifierModifierOnToken", "Task", "status:identifier=x", []string{"status:identifier"}, f.task[:]},
		{"ModifierOnID", "Task", "_id:missing=true", []string{"_id:missing"}, f.task[:]},
		{"UnsupportedPrefix", "Task", "_lastUpdated=sa2026-01-01", []string{"_lastUpdated"}, f.task[:]},
		{"SortOther", "Task", "_sort=status", []string{"_sort"}, f.task[:]},
		{"SortTwoKeys", "Task", "_sort=-_lastUpdated,_id", []string{"_sort"}, f.task[:]},
		{"SummaryTrue", "Task", "_summary=true", []string{"_summary"}, f.task[:]},
		{"SummaryText", "Task", "_summary=text", []string{"_summary"}, f.task[:]},
		{"IncludeUnsupported", "Task", "_include=Task:output", []string{"_include"}, f.task[:]},
		{"IncludeOtherType", "Task", "_include=ServiceRequest:patient", []string{"_include"}, f.task[:]},
		{"RevIncludeProvenance", "Task", "_revinclude=Provenance:target", []string{"_revinclude"}, f.task[:]},
		{"RevIncludeNotPointingHere", "Task", "_revinclude=Task:focus", []string{"_revinclude"}, f.task[:]},
		{"ChainWithoutPatient", "Organization", "patient.identifier=x", []string{"patient.identifier"}, nil},
		// Any value in a system (search.html#token) cannot be read off the
		// index, whose key starts with the value.
		{"AnyValueInSystem", "Task", "identifier=" + url.QueryEscape("https://example.org/task|"), []string{"identifier"}, f.task[:]},
		{"AnyValueInSystemByReference", "Task", "owner:identifier=" + url.QueryEscape(linkbridge.ODSSystem+"|"), []string{"owner:identifier"}, f.task[:]},
		{"KeepsTheRest", "Task", "made-up=x&_id=" + idOf(f.task[0]), []string{"made-up"}, f.task[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oo := wantOutcome(t, ts.get("/"+tt.typ+"?"+tt.q), http.StatusBadRequest, "invalid", "")
			var named []string
			for _, is := range oo.GetIssue() {
				for _, e := range is.GetExpression() {
					named = append(named, e.GetValue())
				}
			}
			slices.Sort(named)
			if want := slices.Sorted(slices.Values(tt.refused)); !slices.Equal(named, want) {
				t.Errorf("strict: issue.expression = %v, want %v", named, want)
			}

			r := ts.do(http.MethodGet, "/"+tt.typ+"?"+tt.q, nil, lenientHeader)
			b := bundle(t, r, "searchset")
			got := matchIDs(b)
			if tt.want != nil && !slices.Equal(got, tt.want) {
				t.Errorf("lenient: matches %v, want %v", got, tt.want)
			}
			self := selfQuery(t, b)
			for _, name := range tt.refused {
				if self.Has(name) {
					t.Errorf("lenient: self link %s carries the ignored %s", linkURL(b, "self"), name)
				}
			}
			sent, _ := url.ParseQuery(tt.q)
			for name := range sent {
				if !slices.Contains(tt.refused, name) && !self.Has(name) {
					t.Errorf("lenient: self link %s lost %s, which was used", linkURL(b, "self"), name)
				}
			}
		})
	}
	// handling=strict is the default, and can be asked for.
	wantOutcome(t, ts.do(http.MethodGet, "/Task?made-up=x", nil, hdr{"Prefer": "handling=strict"}), http.StatusBadRequest, "invalid", "made-up")
	// A malformed value is refused either way.
	wantOutcome(t, ts.do(http.MethodGet, "/Task?_lastUpdated=yesterday", nil, lenientHeader), http.StatusBadRequest, "invalid", "_lastUpdated")
	wantOutcome(t, ts.do(http.MethodGet, "/Task?owner:missing=perhaps", nil, lenientHeader), http.StatusBadRequest, "invalid", "owner:missing")
	// A POSTed search is held to the same rules.
	r := ts.do(http.MethodPost, "/Task/_search", []byte("made-up=x"), hdr{"Content-Type": "application/x-www-form-urlencoded"})
	wantOutcome(t, r, http.StatusBadRequest, "invalid", "made-up")
}

// TestSearchFormat: searches (and reads) answer in the format _format or
// Accept chooses, FHIR JSON or XML (_format first); a format the server does
// not write is answered 406 with an OperationOutcome, never 200 JSON.
func TestSearchFormat(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	tests := []struct {
		name   string
		path   string
		h      hdr
		status int
		xml    bool // answered in FHIR XML
	}{
		{"FormatXML", "/Task?_format=xml", nil, http.StatusOK, true},
		{"FormatFHIRXML", "/Task?_format=application/fhir%2Bxml", nil, http.StatusOK, true},
		{"FormatUnknown", "/Task?_format=yaml", nil, http.StatusNotAcceptable, false},
		{"FormatXMLOnRead", "/" + f.task[0] + "?_format=xml", nil, http.StatusOK, true},
		{"FormatXMLOnMetadata", "/metadata?_format=xml", nil, http.StatusOK, true},
		{"FormatXMLLenient", "/Task?_format=xml", lenientHeader, http.StatusOK, true},
		{"AcceptXML", "/Task", hdr{"Accept": "application/fhir+xml"}, http.StatusOK, true},
		{"AcceptJSONRefused", "/Task", hdr{"Accept": "application/fhir+json;q=0, application/xml"}, http.StatusOK, true},
		{"AcceptNeither", "/Task", hdr{"Accept": "text/plain"}, http.StatusNotAcceptable, false},
		{"FormatJSON", "/Task?_format=json", nil, http.StatusOK, false},
		{"FormatFHIRJSON", "/Task?_format=application/fhir%2Bjson", nil, http.StatusOK, false},
		{"FormatJSONOverAcceptXML", "/Task?_format=json", hdr{"Accept": "application/fhir+xml"}, http.StatusOK, false},
		{"AcceptAnyPrefersXML", "/Task", hdr{"Accept": "text/html, application/xml;q=0.9, */*;q=0.8"}, http.StatusOK, true},
		{"AcceptJSON", "/Task", hdr{"Accept": "application/json"}, http.StatusOK, false},
		{"NoAccept", "/Task", hdr{"Accept": ""}, http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.status != http.StatusOK {
				wantOutcome(t, ts.do(http.MethodGet, tt.path, nil, tt.h), tt.status, "not-supported", "")
				return
			}
			u := strings.TrimSuffix(ts.URL, "/") + tt.path
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			for k, v := range tt.h {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode != http.StatusOK || strings.Contains(ct, "xml") != tt.xml {
				t.Errorf("GET %s: %d %s, want 200 in %s", tt.path, resp.StatusCode, ct, map[bool]string{true: "XML", false: "JSON"}[tt.xml])
			}
		})
	}
	// The self link keeps the _format used.
	b := ts.search("Task", vals("_format", "json"))
	if selfQuery(t, b).Get("_format") != "json" {
		t.Errorf("self link %s lost _format=json", linkURL(b, "self"))
	}
	r := ts.do(http.MethodPost, "/Task/_search", []byte("_format=yaml"), hdr{"Content-Type": "application/x-www-form-urlencoded"})
	wantOutcome(t, r, http.StatusNotAcceptable, "not-supported", "_format")
}

// TestSearchSort: _sort=_lastUpdated and -_lastUpdated order the matches
// (id breaks ties the same way), and paging follows that order.
func TestSearchSort(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	rev := slices.Clone(f.task[:])
	slices.Reverse(rev)
	if got := matchIDs(ts.search("Task", vals("_sort", "_lastUpdated"))); !slices.Equal(got, f.task[:]) {
		t.Errorf("_sort=_lastUpdated: %v, want %v", got, f.task[:])
	}
	if got := matchIDs(ts.search("Task", vals("_sort", "-_lastUpdated"))); !slices.Equal(got, rev) {
		t.Errorf("_sort=-_lastUpdated: %v, want %v", got, rev)
	}
	p1 := ts.search("Task", vals("_sort", "-_lastUpdated", "_count", "3", "status", "requested"))
	next := linkURL(p1, "next")
	if u, err := url.Parse(next); err != nil || u.Query().Get("_sort") != "-_lastUpdated" || u.Query().Get("status") != "requested" {
		t.Fatalf("next link %q lost _sort or status (%v)", next, err)
	}
	p2 := bundle(t, ts.do(http.MethodGet, next, nil, nil), "searchset")
	if got := append(matchIDs(p1), matchIDs(p2)...); !slices.Equal(got, rev) {
		t.Errorf("pages of _sort=-_lastUpdated: %v, want %v", got, rev)
	}
}

// TestSearchSummary: _summary=count is a Bundle with the total and no
// entries; _summary=false the whole resources; _summary=data the resources
// without their narrative, tagged SUBSETTED.
func TestSearchSummary(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	c := ts.search("Task", vals("_summary", "count", "status", "requested"))
	if c.GetTotal() == nil || c.GetTotal().GetValue() != 4 || len(c.GetEntry()) != 0 {
		t.Errorf("_summary=count: total %v, %d entries; want 4 and none", c.GetTotal(), len(c.GetEntry()))
	}
	if q := selfQuery(t, c); q.Get("_summary") != "count" || q.Get("status") != "requested" || linkURL(c, "next") != "" {
		t.Errorf("_summary=count links = %v, want a self link with its parameters only", c.GetLink())
	}
	// The GP cancels Task C, with a narrative.
	task := mustParseJSON(t, withStatus(t, ts.fhirDoc("/"+f.task[2]), "cancelled", "No longer needed"))
	task["text"] = jsonDoc{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Cancelled</div>`}
	wantStatus(t, ts.do(http.MethodPut, "/"+f.task[2], mustJSON(t, task), nil), http.StatusOK)
	wholeDoc := ts.fhirDoc("/" + f.task[2])
	if _, ok := wholeDoc["text"]; !ok {
		t.Fatalf("the Task kept no narrative to leave out")
	}
	full := ts.get("/Task?_summary=false&_id=" + idOf(f.task[2]))
	wantStatus(t, full, http.StatusOK)
	if docs := entryDocs(t, full.Body); len(docs) != 1 || len(docs[0]) != len(wholeDoc) || subsetted(docs[0]) {
		t.Errorf("_summary=false: %v, want the whole Task %v", docs, wholeDoc)
	}
	data := ts.get("/Task?_summary=data&_id=" + idOf(f.task[2]))
	wantStatus(t, data, http.StatusOK)
	doc := entryDocs(t, data.Body)[0]
	if _, ok := doc["text"]; ok {
		t.Errorf("_summary=data kept the narrative")
	}
	if !subsetted(doc) {
		t.Errorf("_summary=data: meta.tag %v lacks SUBSETTED", at(doc, "meta"))
	}
	if len(doc) != len(wholeDoc)-1 {
		t.Errorf("_summary=data dropped more than text: %d elements of %d", len(doc), len(wholeDoc))
	}
}

// entryDocs returns the resources of a Bundle's entries as generic JSON.
func entryDocs(t *testing.T, body []byte) []jsonDoc {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource jsonDoc `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	var out []jsonDoc
	for _, e := range b.Entry {
		out = append(out, e.Resource)
	}
	return out
}

// subsetted reports whether a resource carries the SUBSETTED meta.tag.
func subsetted(doc jsonDoc) bool {
	tags, _ := at(doc, "meta", "tag").([]any)
	for _, tg := range tags {
		if m, ok := tg.(map[string]any); ok && m["code"] == "SUBSETTED" && m["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" {
			return true
		}
	}
	return false
}

// TestSearchElements: _elements keeps the listed top-level elements and
// resourceType, id and meta, tags the resource SUBSETTED, and the links
// carry it.
func TestSearchElements(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	r := ts.get("/Task?_elements=status,intent,focus&_count=2")
	b := bundle(t, r, "searchset")
	docs := entryDocs(t, r.Body)
	if len(docs) != 2 {
		t.Fatalf("%d entries, want 2", len(docs))
	}
	allowed := []string{"resourceType", "id", "meta", "status", "intent", "focus"}
	for _, d := range docs {
		for k := range d {
			if !slices.Contains(allowed, k) {
				t.Errorf("_elements=status,intent,focus kept %s", k)
			}
		}
		if d["focus"] == nil || d["status"] == nil || d["id"] == nil {
			t.Errorf("_elements lost an element asked for: %v", d)
		}
		if !subsetted(d) {
			t.Errorf("meta.tag %v lacks SUBSETTED", at(d, "meta"))
		}
	}
	for _, rel := range []string{"self", "next"} {
		u, _ := url.Parse(linkURL(b, rel))
		if u == nil || u.Query().Get("_elements") != "status,intent,focus" {
			t.Errorf("%s link %q lost _elements", rel, linkURL(b, rel))
		}
	}
	// The stored resource is untouched.
	if d := ts.fhirDoc("/" + f.task[0]); d["for"] == nil || subsetted(d) {
		t.Errorf("a read after _elements: %v", d)
	}
}

// TestSearchMissing: :missing=true finds the resources without a value
// for the parameter, :missing=false those with one; the two split the
// type's resources.
func TestSearchMissing(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	tests := []struct {
		typ, param string
		present    []string // resources known to have a value
	}{
		{"Task", "owner", f.task[:]},
		{"Task", "patient", f.task[:]},
		{"Task", "subject", f.task[:]}, // a Patient subject is indexed as patient
		{"Task", "part-of", nil},
		{"Task", "status", f.task[:]},
		{"Patient", "general-practitioner", f.patient[1:2]},
		{"ServiceRequest", "requester", f.sr[:]},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.param, func(t *testing.T) {
			all := matchIDs(ts.search(tt.typ, nil))
			missing := matchIDs(ts.search(tt.typ, vals(tt.param+":missing", "true")))
			present := matchIDs(ts.search(tt.typ, vals(tt.param+":missing", "false")))
			both := append(slices.Clone(missing), present...)
			slices.Sort(both)
			slices.Sort(all)
			if !slices.Equal(both, all) {
				t.Errorf(":missing=true %v and :missing=false %v do not split %v", missing, present, all)
			}
			for _, id := range tt.present {
				if !slices.Contains(present, id) {
					t.Errorf("%s has a %s but is not in :missing=false %v", id, tt.param, present)
				}
			}
			if tt.present == nil && len(present) != 0 {
				t.Errorf(":missing=false = %v, want none", present)
			}
		})
	}
	// With other filters.
	if got := matchIDs(ts.search("Task", vals("part-of:missing", "true", "focus", f.sr[1]))); !slices.Equal(got, f.task[1:2]) {
		t.Errorf("Task?part-of:missing=true&focus=%s = %v, want %v", f.sr[1], got, f.task[1:2])
	}
}

// TestSearchRevInclude: _revinclude adds the resources that point at the
// matches through a reference parameter, as search.mode include, once
// each, beside the matches and any _include.
func TestSearchRevInclude(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t)
	ts := f.ts
	modes := func(b *rpb.Bundle) (match, include []string) {
		for _, e := range b.GetEntry() {
			r := fhirmap.Unwrap(e.GetResource())
			ref := fhirmap.TypeName(r) + "/" + fhirmap.ID(r)
			if fhirmap.Code(e.GetSearch().GetMode()) == "include" {
				include = append(include, ref)
			} else {
				match = append(match, ref)
			}
		}
		slices.Sort(include)
		return match, include
	}
	sorted := func(s ...string) []string { return slices.Sorted(slices.Values(s)) }
	tests := []struct {
		name             string
		typ              string
		q                url.Values
		match, wantIncls []string
	}{
		{"TaskFocus", "ServiceRequest", vals("_id", idOf(f.sr[0])+","+idOf(f.sr[3]), "_revinclude", "Task:focus"),
			[]string{f.sr[0], f.sr[3]}, sorted(f.task[0], f.task[3])},
		{"TaskPatient", "Patient", vals("_id", idOf(f.patient[1]), "_revinclude", "Task:patient"), f.patient[1:2], f.task[1:2]},
		{"TaskSubjectIsPatient", "Patient", vals("_id", idOf(f.patient[2]), "_revinclude", "Task:subject"), f.patient[2:3], f.task[2:3]},
		{"TwoRevIncludes", "Patient", vals("_id", idOf(f.patient[0]), "_revinclude", "Task:patient", "_revinclude", "ServiceRequest:patient"),
			f.patient[:1], sorted(f.task[0], f.sr[0])},
		{"WithInclude", "Task", vals("_id", idOf(f.task[0]), "_include", "Task:focus", "_revinclude", "Task:part-of"), f.task[:1], f.sr[:1]},
		{"NoMatches", "ServiceRequest", vals("_id", "no-such", "_revinclude", "Task:focus"), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ts.search(tt.typ, tt.q)
			match, incl := modes(b)
			if !slices.Equal(match, tt.match) || !slices.Equal(incl, tt.wantIncls) {
				t.Errorf("%s?%s: match %v include %v, want %v and %v", tt.typ, tt.q.Encode(), match, incl, tt.match, tt.wantIncls)
			}
			if int(b.GetTotal().GetValue()) != len(tt.match) {
				t.Errorf("total = %d, want %d (included resources are not counted)", b.GetTotal().GetValue(), len(tt.match))
			}
			if got := selfQuery(t, b)["_revinclude"]; !slices.Equal(got, tt.q["_revinclude"]) {
				t.Errorf("self link _revinclude = %v, want %v", got, tt.q["_revinclude"])
			}
		})
	}
}

// TestCapabilityStatementSearchParams walks the CapabilityStatement: every
// searchParam of every type it declares is accepted by that type's search
// (bare, and with :missing where it is indexed), and so is every
// searchInclude and searchRevInclude; a parameter it does not declare is
// refused with 400 naming it. The lists and the search read the same
// table (fhirmap.SearchParameters), so they cannot drift apart.
func TestCapabilityStatementSearchParams(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.get("/metadata")
	wantStatus(t, r, http.StatusOK)
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type             string   `json:"type"`
				SearchInclude    []string `json:"searchInclude"`
				SearchRevInclude []string `json:"searchRevInclude"`
				SearchParam      []struct {
					Name string `json:"name"`
					Type string `json:"type"`
				} `json:"searchParam"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(r.Body, &cs); err != nil || len(cs.Rest) != 1 {
		t.Fatalf("CapabilityStatement: %v", err)
	}
	valueOf := map[string]string{"token": "x", "reference": "x", "date": "ge2026-01-01"}
	declared := 0
	for _, res := range cs.Rest[0].Resource {
		if res.Type == "AuditEvent" || res.Type == "Subscription" || res.Type == "Basic" {
			continue // their own routes: the administrator's; subscriptions and topics (subscription_test.go)
		}
		names := map[string]bool{}
		for _, p := range res.SearchParam {
			names[p.Name] = true
			v, ok := valueOf[p.Type]
			if !ok {
				t.Errorf("%s %s has type %q, which linkbridge does not implement", res.Type, p.Name, p.Type)
				continue
			}
			declared++
			queries := []url.Values{vals(p.Name, v)}
			if !strings.HasPrefix(p.Name, "_") {
				queries = append(queries, vals(p.Name+":missing", "true"))
			}
			if p.Type == "reference" {
				queries = append(queries, vals(p.Name+":identifier", "https://example.org/id|x"))
			}
			for _, q := range queries {
				if got := ts.get("/" + res.Type + "?" + q.Encode()); got.Status != http.StatusOK {
					t.Errorf("declared %s?%s answered %d: %s", res.Type, q.Encode(), got.Status, got.Body)
				}
			}
		}
		for _, inc := range res.SearchInclude {
			if got := ts.get("/" + res.Type + "?_include=" + inc); got.Status != http.StatusOK {
				t.Errorf("declared %s?_include=%s answered %d: %s", res.Type, inc, got.Status, got.Body)
			}
		}
		for _, rev := range res.SearchRevInclude {
			if got := ts.get("/" + res.Type + "?_revinclude=" + rev); got.Status != http.StatusOK {
				t.Errorf("declared %s?_revinclude=%s answered %d: %s", res.Type, rev, got.Status, got.Body)
			}
		}
		// Undeclared: a name no type has, and one R4 defines for the type
		// that linkbridge does not declare.
		for _, name := range []string{"not-a-parameter", "_text", "_has:Task:focus:status", undeclaredR4Param(res.Type)} {
			if name == "" || names[name] {
				continue
			}
			wantOutcome(t, ts.get("/"+res.Type+"?"+url.QueryEscape(name)+"=x"), http.StatusBadRequest, "invalid", name)
		}
	}
	if declared < 50 {
		t.Errorf("walked %d declared search parameters; the statement lost its lists?", declared)
	}
}

// undeclaredR4Param is a search parameter FHIR R4 defines for typ that
// linkbridge does not support, or "".
func undeclaredR4Param(typ string) string {
	return map[string]string{
		"Task": "authored-on", "ServiceRequest": "authored", "Patient": "family", "Organization": "name",
		"Practitioner": "name", "PractitionerRole": "role", "HealthcareService": "name", "Condition": "onset-date",
		"Consent": "date", "CarePlan": "date", "Goal": "start-date", "Encounter": "date", "Observation": "date", "Procedure": "date",
	}[typ]
}

// TestSearchIncludeScopes: _include and _revinclude add only types the
// token's scopes allow reading, as a read of them would: a client that
// reads Tasks only is refused _include=Task:focus (a ServiceRequest) with
// 403, and may _revinclude Tasks.
func TestSearchIncludeScopes(t *testing.T) {
	t.Parallel()
	ss := newSecServer(t, nil)
	if status, _, body := ss.call("gp-own", http.MethodPost, "/fhir", mustRead(t, fixReferralTxn), nil); status != http.StatusOK {
		t.Fatalf("referral: %d %s", status, body)
	}
	if status, _, body := ss.call("gp-readonly", http.MethodGet, "/fhir/Task?_include=Task:focus", nil, nil); status != http.StatusForbidden || !strings.Contains(string(body), "ServiceRequest") {
		t.Errorf("Task.read-only client, _include=Task:focus: %d %s; want 403 naming ServiceRequest", status, body)
	}
	if status, _, body := ss.call("gp-readonly", http.MethodGet, "/fhir/Task?_revinclude=Task:part-of", nil, nil); status != http.StatusOK {
		t.Errorf("Task.read-only client, _revinclude=Task:part-of: %d %s; want 200", status, body)
	}
	if status, _, body := ss.call("gp-own", http.MethodGet, "/fhir/Task?_include=Task:focus", nil, nil); status != http.StatusOK || !strings.Contains(string(body), `"include"`) {
		t.Errorf("gp-own _include=Task:focus: %d %s; want its ServiceRequest included", status, body)
	}
}
