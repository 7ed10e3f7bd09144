package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// errDatePrefix is parseDateFilter's error for a prefix it does not
// support (ne, sa, eb, ap): an unsupported search, which lenient handling
// ignores, rather than a malformed one.
var errDatePrefix = errors.New("date prefix not supported")

// parseDateFilter parses a FHIR date search value with an optional prefix.
// A value of partial precision is a range: eq matches within it, gt after
// it, lt before it. A prefix other than eq, gt, ge, lt and le is
// errDatePrefix.
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
	return nil, fmt.Errorf("%w: %q (eq, gt, ge, lt, le)", errDatePrefix, prefix)
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
