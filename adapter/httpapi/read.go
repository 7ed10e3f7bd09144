package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// Search paging limits.
const (
	defaultCount = 20
	maxCount     = access.MaxPage
)

// searchable maps each resource type the API reads and searches to the
// names of its search parameters (_id and _lastUpdated first). It is read
// from the search parameter table, fhirmap.SearchParameters, where a
// parameter is added (docs/referral-exchange.md#search-parameters).
var searchable = func() map[string][]string {
	out := map[string][]string{}
	for _, typ := range fhirmap.SearchTypes() {
		for _, p := range fhirmap.SearchParameters(typ) {
			out[typ] = append(out[typ], p.Name)
		}
	}
	return out
}()

// includes maps each supported _include value, Type:param, to the JSON
// element of the stored resource that holds the reference: the table's
// reference parameters marked Include (fhirmap.SearchParameter.Include).
var includes = func() map[string]string {
	out := map[string]string{}
	for _, typ := range fhirmap.SearchTypes() {
		for _, p := range fhirmap.SearchParameters(typ) {
			if p.Include {
				out[typ+":"+p.Name] = strings.TrimPrefix(p.Path, typ+".")
			}
		}
	}
	return out
}()

func (s *Server) checkType(typ string) error {
	if _, ok := searchable[typ]; !ok {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "resource type %s is not supported by this server", typ)
	}
	return nil
}

// handleRead answers GET /fhir/{type}/{id}.
func (s *Server) handleRead(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if err := s.checkType(v["type"]); err != nil {
		return err
	}
	res, err := s.Store.ReadResource(r.Context(), v["type"], v["id"])
	if err != nil {
		return err
	}
	if n, ok := parseETag(r.Header.Get("If-None-Match")); ok && n == res.VersionID {
		setResourceHeaders(w, res, false)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeResource(w, res)
	return nil
}

// handleVRead answers GET /fhir/{type}/{id}/_history/{vid}.
func (s *Server) handleVRead(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if err := s.checkType(v["type"]); err != nil {
		return err
	}
	vid, err := strconv.Atoi(v["vid"])
	if err != nil || vid < 1 {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "no such version")
	}
	res, err := s.Store.ReadResourceVersion(r.Context(), v["type"], v["id"], vid)
	if err != nil {
		return err
	}
	writeResource(w, res)
	return nil
}

// handleHistory answers GET /fhir/{type}/{id}/_history with a history Bundle.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) error {
	v := mux.Vars(r)
	if err := s.checkType(v["type"]); err != nil {
		return err
	}
	versions, err := s.Store.ResourceHistory(r.Context(), v["type"], v["id"])
	if err != nil {
		return err
	}
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("history"), Total: &dpb.UnsignedInt{Value: uint32(len(versions))}}
	entries := make([]bundleEntry, len(versions))
	base := s.baseURL(r)
	for i, res := range versions {
		method := &rpb.Bundle_Entry_Request_MethodCode{}
		m, st := "put", "200 OK"
		if res.VersionID == 1 {
			m, st = "post", "201 Created"
		}
		fhirmap.SetCode(method, m)
		entries[i] = bundleEntry{raw: res.Body, entry: &rpb.Bundle_Entry{
			FullUrl:  &dpb.Uri{Value: base + "/" + res.Type + "/" + res.ID},
			Request:  &rpb.Bundle_Entry_Request{Method: method, Url: &dpb.Uri{Value: res.Type + "/" + res.ID}},
			Response: responseEntry(res, st).Response,
		}}
	}
	return s.writeBundle(w, b, entries)
}

// handleSearch answers GET /fhir/{type}?... with a searchset Bundle.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) error {
	typ := mux.Vars(r)["type"]
	if err := s.checkType(typ); err != nil {
		return err
	}
	raw := r.URL.RawQuery
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			return linkbridge.Errorf(linkbridge.EINVALID, "could not read the search form")
		}
		raw = r.PostForm.Encode()
	}
	ctx := r.Context()
	q, err := s.parseSearch(typ, raw)
	if err != nil {
		return err
	}
	vals, _ := url.ParseQuery(raw)
	// Chained search: patient.identifier=system|value resolves the Patients
	// first, then filters by them.
	if chain := vals.Get("patient.identifier"); chain != "" {
		if !slices.Contains(searchable[typ], "patient") {
			return linkbridge.Errorf(linkbridge.EINVALID, "%s has no patient search parameter", typ).At("patient.identifier")
		}
		pats, err := s.Store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Patient", Params: []linkbridge.ParamFilter{{Name: "identifier", Values: splitComma(chain)}}, Count: maxCount})
		if err != nil {
			return err
		}
		refs := []string{}
		for _, p := range pats.Resources {
			refs = append(refs, "Patient/"+p.ID)
		}
		if len(refs) == 0 {
			refs = []string{"Patient/-"} // matches nothing
		}
		q.Params = append(q.Params, linkbridge.ParamFilter{Name: "patient", Values: refs})
	}
	res, err := s.Store.SearchResources(ctx, q)
	if err != nil {
		return err
	}
	base := s.baseURL(r)
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("searchset")}
	if res.TotalExact {
		// A total the store stopped counting (no _total=accurate) is left
		// out; it is still past the page, so pageLinks can tell a next page.
		b.Total = &dpb.UnsignedInt{Value: uint32(res.Total)}
	}
	b.Link = pageLinks(base+"/"+typ, vals, q, res.Total)
	entries := make([]bundleEntry, 0, len(res.Resources))
	seen := map[string]bool{}
	for _, m := range res.Resources {
		seen[m.Reference()] = true
		entries = append(entries, searchEntry(base, m, "match"))
	}
	for _, inc := range vals["_include"] {
		param, ok := includes[inc]
		if !ok || !strings.HasPrefix(inc, typ+":") {
			return linkbridge.Errorf(linkbridge.EINVALID, "_include=%s is not supported", inc).At("_include")
		}
		for _, m := range res.Resources {
			ref := referenceIn(m.Body, param)
			if ref == "" || seen[ref] {
				continue
			}
			t, id, _ := strings.Cut(ref, "/")
			inc, err := s.Store.ReadResource(ctx, t, id)
			if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND || linkbridge.ErrorCode(err) == linkbridge.EINVALID {
				continue // a logical or external reference: nothing here to include
			} else if err != nil {
				return err
			}
			seen[ref] = true
			entries = append(entries, searchEntry(base, inc, "include"))
		}
	}
	return s.writeBundle(w, b, entries)
}

func searchEntry(base string, m *linkbridge.Resource, mode string) bundleEntry {
	sm := &rpb.Bundle_Entry_Search_ModeCode{}
	fhirmap.SetCode(sm, mode)
	return bundleEntry{raw: m.Body, entry: &rpb.Bundle_Entry{
		FullUrl: &dpb.Uri{Value: base + "/" + m.Type + "/" + m.ID},
		Search:  &rpb.Bundle_Entry_Search{Mode: sm},
	}}
}

// pageLinks builds self, first, previous and next links for a page.
func pageLinks(base string, vals url.Values, q *linkbridge.ResourceQuery, total int) []*rpb.Bundle_Link {
	link := func(rel string, offset int) *rpb.Bundle_Link {
		v := url.Values{}
		for k, vs := range vals {
			if k == "_offset" || k == "_count" {
				continue
			}
			v[k] = vs
		}
		v.Set("_count", strconv.Itoa(q.Count))
		v.Set("_offset", strconv.Itoa(offset))
		return &rpb.Bundle_Link{Relation: &dpb.String{Value: rel}, Url: &dpb.Uri{Value: base + "?" + v.Encode()}}
	}
	links := []*rpb.Bundle_Link{link("self", q.Offset), link("first", 0)}
	if q.Offset > 0 {
		links = append(links, link("previous", max(q.Offset-q.Count, 0)))
	}
	if q.Offset+q.Count < total {
		links = append(links, link("next", q.Offset+q.Count))
	}
	return links
}

// searchControls are the parameters every search takes besides its
// type's search parameters (parseSearch and handleSearch apply or
// knowingly ignore them): FHIR R4 result parameters and _format/_pretty.
// _id and _lastUpdated are search parameters of every type, in the table
// (fhirmap.SearchParameters).
var searchControls = []string{"_count", "_offset", "_include", "_format", "_pretty", "_summary", "_elements", "_total"}

// knownSearchParam reports whether a search of typ supports a parameter
// name: a control, the type's search parameters (bare or with
// :identifier) and, where the type has a patient, patient.identifier.
// parseSearch ignores every other name (lenient handling).
func knownSearchParam(typ, name string) bool {
	if slices.Contains(searchControls, name) {
		return true
	}
	if name == "patient.identifier" {
		_, ok := fhirmap.LookupSearchParameter(typ, "patient")
		return ok
	}
	base, modifier, _ := strings.Cut(name, ":")
	_, ok := fhirmap.LookupSearchParameter(typ, base)
	return ok && (modifier == "" || modifier == "identifier")
}

// parseSearch turns a query string into a ResourceQuery for typ.
func (s *Server) parseSearch(typ, raw string) (*linkbridge.ResourceQuery, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "malformed query string")
	}
	q := &linkbridge.ResourceQuery{Type: typ, Count: defaultCount}
	for k, vs := range vals {
		switch k {
		case "_count":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 0 {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "_count must be a non-negative integer").At("_count")
			}
			if n > maxCount {
				n = maxCount
			}
			if n == 0 {
				n = 1 // a page still needs a size; total is what the caller wants
				q.AccurateTotal = true
			}
			q.Count = n
		case "_total":
			switch vs[0] {
			case "accurate":
				q.AccurateTotal = true
			case "none", "estimate":
				// a bounded count: Bundle.total only when it counted every match
			default:
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "_total must be none, estimate or accurate").At("_total")
			}
		case "_offset":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 0 {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "_offset must be a non-negative integer").At("_offset")
			}
			q.Offset = n
		case "_id":
			for _, v := range vs {
				q.IDs = append(q.IDs, splitComma(v)...)
			}
		case "_lastUpdated":
			for _, v := range vs {
				fs, err := parseDateFilter(v)
				if err != nil {
					return nil, err
				}
				q.LastUpdated = append(q.LastUpdated, fs...)
			}
		case "_include", "_format", "_pretty", "_summary", "_elements", "patient.identifier":
			// handled by the caller or ignored (JSON is the only format)
		default:
			name := k
			base, modifier, _ := strings.Cut(k, ":")
			p, ok := fhirmap.LookupSearchParameter(typ, base)
			if !ok || p.Field == "" {
				// Unknown parameters are ignored, as FHIR allows by default
				// (Prefer: handling=lenient); so are _id and _lastUpdated
				// with a modifier.
				continue
			}
			if modifier != "" && modifier != "identifier" {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "search modifier :%s is not supported", modifier).At(k)
			}
			for _, v := range vs {
				values := splitComma(v)
				if modifier == "" && p.Type == fhirmap.SearchReference {
					values = expandRefs(p, values)
					if t := targetType(values); t != "" {
						name = fhirmap.ReferenceIndexName(typ, base, t) // a Patient subject is indexed as patient
					}
				}
				q.Params = append(q.Params, linkbridge.ParamFilter{Name: name, Values: values})
			}
		}
	}
	return q, nil
}

// expandRefs normalises reference search values to Type/id: absolute URLs
// lose their base, bare ids become every Type/id the parameter targets.
func expandRefs(p fhirmap.SearchParameter, values []string) []string {
	var out []string
	for _, v := range values {
		v = normaliseRef(v)
		if strings.Contains(v, "/") {
			out = append(out, v)
			continue
		}
		for _, t := range p.Targets {
			out = append(out, t+"/"+v)
		}
	}
	return out
}

// targetType returns the resource type every Type/id value names, or ""
// when they name several (or none).
func targetType(values []string) string {
	typ := ""
	for i, v := range values {
		t, _, _ := strings.Cut(v, "/")
		if i > 0 && t != typ {
			return ""
		}
		typ = t
	}
	return typ
}

// normaliseRef turns an absolute reference into Type/id.
func normaliseRef(v string) string {
	if i := strings.Index(v, "/fhir/"); i >= 0 && strings.HasPrefix(v, "http") {
		return v[i+len("/fhir/"):]
	}
	return v
}

// parseDateFilter parses a FHIR date search value with an optional prefix.
// A value of partial precision is a range: eq matches within it, gt after
// it, lt before it.
func parseDateFilter(v string) ([]linkbridge.DateFilter, error) {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	start, end, err := parseFHIRDate(v)
	if err != nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "_lastUpdated value is not a FHIR date or dateTime").At("_lastUpdated")
	}
	switch prefix {
	case "eq":
		return []linkbridge.DateFilter{{Prefix: "ge", Time: start}, {Prefix: "lt", Time: end}}, nil
	case "gt":
		return []linkbridge.DateFilter{{Prefix: "ge", Time: end}}, nil
	case "ge":
		return []linkbridge.DateFilter{{Prefix: "ge", Time: start}}, nil
	case "lt":
		return []linkbridge.DateFilter{{Prefix: "lt", Time: start}}, nil
	case "le":
		return []linkbridge.DateFilter{{Prefix: "lt", Time: end}}, nil
	}
	return nil, linkbridge.Errorf(linkbridge.EINVALID, "date prefix %q is not supported (eq, gt, ge, lt, le)", prefix).At("_lastUpdated")
}

// parseFHIRDate returns the half-open range [start, end) a FHIR date or
// dateTime value covers.
func parseFHIRDate(v string) (time.Time, time.Time, error) {
	layouts := []struct {
		layout string
		step   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05Z07:00", func(t time.Time) time.Time { return t.Add(time.Second) }},
	}
	for _, l := range layouts {
		if t, err := time.Parse(l.layout, v); err == nil {
			return t.UTC(), l.step(t).UTC(), nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), t.Add(time.Microsecond).UTC(), nil
	}
	return time.Time{}, time.Time{}, fmt.Errorf("bad date %q", v)
}

// queryInts reads non-negative integer query parameters (name →
// destination); a value that is not one is EINVALID naming the parameter.
func queryInts(q url.Values, dst map[string]*int) error {
	for name, p := range dst {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return linkbridge.Errorf(linkbridge.EINVALID, "%s must be a non-negative integer", name).At(name)
			}
			*p = n
		}
	}
	return nil
}

func splitComma(v string) []string {
	parts := strings.Split(v, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// referenceIn reads the literal "Type/id" reference of one top-level
// element of stored resource JSON, without a FHIR parse: the stored bytes
// were rendered by google/fhir, so the element is a plain Reference.
func referenceIn(body []byte, element string) string {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return ""
	}
	var ref struct {
		Reference string `json:"reference"`
	}
	if err := json.Unmarshal(doc[element], &ref); err != nil {
		return ""
	}
	if t, id, ok := strings.Cut(ref.Reference, "/"); ok && t != "" && id != "" && !strings.Contains(id, "/") {
		return ref.Reference
	}
	return ""
}
