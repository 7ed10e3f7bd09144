package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// Searches never lie (FHIR R4 search.html#errors): a parameter, modifier,
// prefix or value of a result parameter the server does not apply is
// refused with 400 naming it (handling=strict, the default), or, when the
// caller asks for Prefer: handling=lenient, ignored and left out of the
// Bundle's links, which carry only the parameters the search used
// (docs/referral-exchange.md#search-parameters).

// searchControls are the parameters every search takes besides its type's
// search parameters: FHIR R4 result parameters and _format/_pretty.
// parseSearch applies each (_format is negotiated by requireFormat first). _id
// and _lastUpdated are search parameters of every type, in the table
// (fhirmap.SearchParameters).
var searchControls = []string{"_count", "_offset", "_total", "_sort", "_summary", "_elements", "_include", "_revinclude", "_format", "_pretty"}

// sortKeys are the _sort values supported: the date parameters of the
// table, which are _lastUpdated only, ascending or descending; id breaks
// ties, in the same direction.
var sortKeys = map[string]bool{"_lastUpdated": false, "-_lastUpdated": true}

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

// revIncludes maps each searched type to the _revinclude values it
// supports, sorted: Type:param for every reference parameter of the table
// that may point at it (its Targets). Provenance is not among them: the
// gateway holds none (each change's Provenance is written to the GP
// record), so _revinclude=Provenance:target is refused, not answered
// with nothing.
var revIncludes = func() map[string][]string {
	out := map[string][]string{}
	for _, src := range fhirmap.SearchTypes() {
		for _, p := range fhirmap.SearchParameters(src) {
			if p.Type != fhirmap.SearchReference {
				continue
			}
			for _, t := range p.Targets {
				if _, ok := searchable[t]; ok {
					out[t] = append(out[t], src+":"+p.Name)
				}
			}
		}
	}
	for t := range out {
		sort.Strings(out[t])
	}
	return out
}()

// searchRequest is a search as parseSearch read it: the store query and
// what handleSearch does around it.
type searchRequest struct {
	q *linkbridge.ResourceQuery
	// used are the parameters the search applies, with the values it
	// applies: the links carry these and no others.
	used url.Values
	// chain are the values of patient.identifier (a chained search
	// handleSearch resolves to patient references first).
	chain []string
	// include and revInclude are the _include and _revinclude values,
	// Type:param.
	include, revInclude []string
	// summary is the _summary value applied: "" or "false" (whole
	// resources), "count" (the total only) or "data" (without text).
	summary string
	// elements are the _elements asked for; nil for whole resources.
	elements []string
}

// lenient reads the Prefer header's handling preference: lenient only
// when asked for (FHIR R4 search.html#errors), strict otherwise.
func lenient(r *http.Request) bool {
	for _, p := range strings.Split(r.Header.Get("Prefer"), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.TrimSpace(k) == "handling" {
			return strings.Trim(strings.TrimSpace(v), `"`) == "lenient"
		}
	}
	return false
}

// handleSearch answers GET /fhir/{type}?... (and POST /fhir/{type}/_search)
// with a searchset Bundle.
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
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return linkbridge.Errorf(linkbridge.EINVALID, "malformed query string")
	}
	ctx := r.Context()
	sr, err := parseSearch(typ, vals, lenient(r))
	if err != nil {
		return err
	}
	if err := canRevInclude(r, sr); err != nil {
		return err
	}
	q := sr.q
	// Chained search: patient.identifier=system|value resolves the Patients
	// first, then filters by them.
	if len(sr.chain) > 0 {
		pats, err := s.Store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Patient", Params: []linkbridge.ParamFilter{{Name: "identifier", Values: sr.chain}}, Count: maxCount})
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
	if sr.summary == "count" {
		// The total alone (search.html#summary): no entries, one link.
		b.Link = pageLinks(base+"/"+typ, sr.used, q, 0)[:1]
		return s.writeBundle(w, b, nil)
	}
	b.Link = pageLinks(base+"/"+typ, sr.used, q, res.Total)
	entries := make([]bundleEntry, 0, len(res.Resources))
	seen := map[string]bool{}
	for _, m := range res.Resources {
		seen[m.Reference()] = true
		e := searchEntry(base, m, "match")
		if e.raw, err = subset(m.Body, sr); err != nil {
			return err
		}
		entries = append(entries, e)
	}
	for _, inc := range sr.include {
		element := includes[inc]
		for _, m := range res.Resources {
			ref := referenceIn(m.Body, element)
			if ref == "" || seen[ref] {
				continue
			}
			t, id, _ := strings.Cut(ref, "/")
			if p := linkbridge.PrincipalFromContext(ctx); p != nil && !p.HasScope(t, linkbridge.ScopeRead) {
				return linkbridge.Errorf(linkbridge.EFORBIDDEN, "the token's scopes do not allow read on %s (_include=%s)", t, inc).At("_include")
			}
			inc, err := s.Store.ReadResource(ctx, t, id)
			if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND || linkbridge.ErrorCode(err) == linkbridge.EINVALID {
				continue // a logical or external reference, or not the caller's: nothing to include
			} else if err != nil {
				return err
			}
			seen[ref] = true
			entries = append(entries, searchEntry(base, inc, "include"))
		}
	}
	if len(sr.revInclude) > 0 && len(res.Resources) > 0 {
		refs := make([]string, len(res.Resources))
		for i, m := range res.Resources {
			refs[i] = m.Reference()
		}
		for _, rev := range sr.revInclude {
			src, param, _ := strings.Cut(rev, ":")
			// The store's access wrapper scopes this search like any
			// other: only the caller's organisations' resources come back.
			found, err := s.Store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: src, Count: maxCount,
				Params: []linkbridge.ParamFilter{{Name: fhirmap.ReferenceIndexName(src, param, typ), Values: refs}}})
			if err != nil {
				return err
			}
			for _, inc := range found.Resources {
				if seen[inc.Reference()] {
					continue
				}
				seen[inc.Reference()] = true
				entries = append(entries, searchEntry(base, inc, "include"))
			}
		}
	}
	return s.writeBundle(w, b, entries)
}

// canRevInclude applies to _revinclude the rule every read follows
// (authorizeRoute): the caller's scopes must allow reading the type it
// adds to the Bundle (_include checks each included resource's type as it
// reads it). Which of those resources the caller reaches is the store's to
// decide, as for any search (access.Store).
func canRevInclude(r *http.Request, sr *searchRequest) error {
	p := linkbridge.PrincipalFromContext(r.Context())
	if p == nil {
		return nil
	}
	for _, rev := range sr.revInclude {
		typ, _, _ := strings.Cut(rev, ":")
		if !p.HasScope(typ, linkbridge.ScopeRead) {
			return linkbridge.Errorf(linkbridge.EFORBIDDEN, "the token's scopes do not allow read on %s (_revinclude=%s)", typ, rev).At("_revinclude")
		}
	}
	return nil
}

func searchEntry(base string, m *linkbridge.Resource, mode string) bundleEntry {
	sm := &rpb.Bundle_Entry_Search_ModeCode{}
	fhirmap.SetCode(sm, mode)
	return bundleEntry{raw: m.Body, entry: &rpb.Bundle_Entry{
		FullUrl: &dpb.Uri{Value: base + "/" + m.Type + "/" + m.ID},
		Search:  &rpb.Bundle_Entry_Search{Mode: sm},
	}}
}

// pageLinks builds self, first, previous and next links for a page, each
// with the parameters used (and no others) and its own _count and _offset.
func pageLinks(base string, used url.Values, q *linkbridge.ResourceQuery, total int) []*rpb.Bundle_Link {
	link := func(rel string, offset int) *rpb.Bundle_Link {
		v := url.Values{}
		for k, vs := range used {
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

// knownSearchParam reports whether a search of typ supports a parameter
// name (whatever its values): a control, one of the type's search
// parameters bare or with a modifier it supports, and, where the type has
// a patient, patient.identifier. A search refuses every other name, or
// with handling=lenient ignores it.
func knownSearchParam(typ, name string) bool {
	return unsupportedName(typ, name) == ""
}

// unsupportedName returns why a search of typ cannot apply a parameter
// name, or "" when it can.
func unsupportedName(typ, name string) string {
	if slices.Contains(searchControls, name) {
		return ""
	}
	if name == "patient.identifier" {
		if _, ok := fhirmap.LookupSearchParameter(typ, "patient"); !ok {
			return typ + " has no patient search parameter"
		}
		return ""
	}
	base, modifier, hasModifier := strings.Cut(name, ":")
	p, ok := fhirmap.LookupSearchParameter(typ, base)
	switch {
	case !ok:
		return "unknown search parameter for " + typ
	case !hasModifier:
		return ""
	case p.Field == "":
		return "search modifier :" + modifier + " is not supported on " + base
	case modifier == "missing":
		return ""
	case modifier == "identifier" && p.Type == fhirmap.SearchReference:
		return ""
	}
	return "search modifier :" + modifier + " is not supported on " + base
}

// parseSearch reads the query of a search of typ. A parameter (or one
// value of it) that the search cannot apply is refused with EINVALID
// naming every such parameter, or, when lenient, left out of the query
// and of used. A value that is malformed (a _count that is no number, a
// date that is no date) is refused either way.
func parseSearch(typ string, vals url.Values, lenient bool) (*searchRequest, error) {
	sr := &searchRequest{q: &linkbridge.ResourceQuery{Type: typ, Count: defaultCount}, used: url.Values{}}
	q := sr.q
	var refused []string
	var why []string
	refuse := func(name, reason string) {
		if !slices.Contains(refused, name) {
			refused = append(refused, name)
			why = append(why, name+" ("+reason+")")
		}
	}
	use := func(name, value string) { sr.used[name] = append(sr.used[name], value) }
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		vs := vals[k]
		if reason := unsupportedName(typ, k); reason != "" {
			refuse(k, reason)
			continue
		}
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
			use(k, vs[0])
		case "_offset":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 0 {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "_offset must be a non-negative integer").At("_offset")
			}
			q.Offset = n
		case "_format":
			// The URL's is negotiated by requireFormat; a POSTed form's is
			// checked here (it cannot change the answer's format).
			if _, err := formatParam(vs[0]); err != nil {
				return nil, err
			}
			use(k, vs[0])
		case "_pretty":
			use(k, vs[0])
		case "_sort":
			desc, ok := sortKeys[vs[0]]
			if !ok || len(vs) > 1 {
				refuse(k, "only _lastUpdated and -_lastUpdated are supported")
				continue
			}
			q.Descending = desc
			use(k, vs[0])
		case "_summary":
			switch vs[0] {
			case "count":
				q.AccurateTotal = true
				sr.summary = "count"
			case "false", "data":
				sr.summary = vs[0]
			default:
				refuse(k, "only count, data and false are supported")
				continue
			}
			use(k, vs[0])
		case "_elements":
			for _, v := range vs {
				sr.elements = append(sr.elements, splitComma(v)...)
			}
			if len(sr.elements) == 0 {
				sr.elements = nil
				continue
			}
			use(k, strings.Join(sr.elements, ","))
		case "_include":
			for _, v := range vs {
				if _, ok := includes[v]; !ok || !strings.HasPrefix(v, typ+":") {
					refuse(k, v+" is not supported")
					continue
				}
				sr.include = append(sr.include, v)
				use(k, v)
			}
		case "_revinclude":
			for _, v := range vs {
				if !slices.Contains(revIncludes[typ], v) {
					refuse(k, v+" is not supported")
					continue
				}
				sr.revInclude = append(sr.revInclude, v)
				use(k, v)
			}
		case "_id":
			for _, v := range vs {
				q.IDs = append(q.IDs, splitComma(v)...)
				use(k, v)
			}
		case "_lastUpdated":
			for _, v := range vs {
				fs, err := parseDateFilter(v)
				if errors.Is(err, errDatePrefix) {
					refuse(k, err.Error())
					continue
				} else if err != nil {
					return nil, err
				}
				q.LastUpdated = append(q.LastUpdated, fs...)
				use(k, v)
			}
		case "patient.identifier":
			for _, v := range vs {
				sr.chain = append(sr.chain, searchValues(v)...)
				use(k, v)
			}
		default:
			base, modifier, _ := strings.Cut(k, ":")
			p, _ := fhirmap.LookupSearchParameter(typ, base)
			for _, v := range vs {
				if modifier == "missing" {
					if v != "true" && v != "false" {
						return nil, linkbridge.Errorf(linkbridge.EINVALID, "%s must be true or false", k).At(k)
					}
					q.Missing = append(q.Missing, linkbridge.MissingFilter{Names: fhirmap.IndexNames(typ, base), Missing: v == "true"})
					use(k, v)
					continue
				}
				name, values := k, searchValues(v)
				if (p.Type == fhirmap.SearchToken || modifier == "identifier") && slices.ContainsFunc(values, anyInSystem) {
					refuse(k, "system| (any value in a system) is not supported")
					continue
				}
				if modifier == "" && p.Type == fhirmap.SearchReference {
					values = expandRefs(p, values)
					if t := targetType(values); t != "" {
						name = fhirmap.ReferenceIndexName(typ, base, t) // a Patient subject is indexed as patient
					}
				}
				q.Params = append(q.Params, linkbridge.ParamFilter{Name: name, Values: values})
				use(k, v)
			}
		}
	}
	if len(refused) > 0 && !lenient {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "unsupported search parameters: %s; nothing was searched (Prefer: handling=lenient ignores them)",
			strings.Join(why, ", ")).At(refused...)
	}
	if sr.summary == "count" {
		q.Count, q.Offset = 1, 0
	}
	return sr, nil
}

// searchValues splits a parameter's value at its unescaped commas (FHIR
// comma = OR), dropping empty values; each keeps its escapes, which the
// store reads (linkbridge.CutToken).
func searchValues(v string) []string {
	return slices.DeleteFunc(linkbridge.SplitSearchValues(v), func(s string) bool { return s == "" })
}

// anyInSystem reports whether a token value is "system|": any value in a
// system (FHIR R4 search.html#token), which the index cannot find by its
// key (it starts with the value: docs/referral-exchange.md#search-parameters).
func anyInSystem(v string) bool {
	sys, val, ok := linkbridge.CutToken(v)
	return ok && sys != "" && val == ""
}

// subsettedTag is the meta.tag of a resource returned without some of its
// elements (FHIR R4 search.html#elements and #summary: SUBSETTED).
var subsettedTag = json.RawMessage(`{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED","display":"subsetted"}`)

// subset returns a stored resource's JSON as the search asks for it: whole,
// or with only the top-level _elements asked for (with their "_" primitive
// extensions, and a choice element's typed forms: "value" keeps
// valueQuantity) besides resourceType, id and meta, or without text for
// _summary=data; a subset carries the SUBSETTED tag.
func subset(body []byte, sr *searchRequest) ([]byte, error) {
	if sr.elements == nil && sr.summary != "data" {
		return body, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("subset stored resource: %w", err)
	}
	keep := func(k string) bool {
		k = strings.TrimPrefix(k, "_")
		if sr.summary == "data" && k == "text" {
			return false
		}
		if sr.elements == nil {
			return true
		}
		for _, e := range sr.elements {
			if k == e || strings.HasPrefix(k, e) && len(k) > len(e) && k[len(e)] >= 'A' && k[len(e)] <= 'Z' {
				return true
			}
		}
		return false
	}
	for k := range doc {
		if k != "resourceType" && k != "id" && k != "meta" && !keep(k) {
			delete(doc, k)
		}
	}
	meta := map[string]json.RawMessage{}
	if m, ok := doc["meta"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, fmt.Errorf("subset stored resource: meta: %w", err)
		}
	}
	var tags []json.RawMessage
	if t, ok := meta["tag"]; ok {
		if err := json.Unmarshal(t, &tags); err != nil {
			return nil, fmt.Errorf("subset stored resource: meta.tag: %w", err)
		}
	}
	var err error
	if meta["tag"], err = json.Marshal(append(tags, subsettedTag)); err != nil {
		return nil, err
	}
	if doc["meta"], err = json.Marshal(meta); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}
