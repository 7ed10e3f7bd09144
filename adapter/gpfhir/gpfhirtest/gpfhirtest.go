// Package gpfhirtest is a recording GP-side FHIR endpoint for tests: it
// accepts write-backs (PUT Type/id and conditional PUT Type?identifier= or
// Type?_tag= on the write-back key),
// checks each body with google/fhir, keeps every write in order, answers
// Patient?identifier= lookups and /metadata, and can be scripted to fail
// (status codes, Retry-After, delays) to exercise the outbox.
package gpfhirtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
)

// VersionHeader is the header that carries the gateway's version.
const VersionHeader = gpfhir.VersionHeader

// Write is one accepted write.
type Write struct {
	Type, ID string
	// Version is the gateway's version (from VersionHeader; 0 if absent).
	Version int
	Body    []byte
	At      time.Time
	// Query is the conditional-update criterion as sent ("" for PUT
	// Type/id), e.g. "_tag=https%3A...%7CProvenance%2Fx".
	Query string
	// Keyed is false when a conditional write's body does not carry the
	// criterion it was matched on (an identifier=, or a meta.tag for
	// _tag=): a real server would not find it again, and a resend would
	// create a second resource. Always true for PUT Type/id.
	Keyed bool
}

// Reply scripts one answer instead of accepting a write.
type Reply struct {
	Status     int
	RetryAfter string
	Body       string
	// Delay holds the response (to trigger client timeouts).
	Delay time.Duration
	// Store accepts the write before the Delay (Status is then ignored):
	// the client times out on a write that took effect, as happens when a
	// slow server commits before the client gives up.
	Store bool
}

// Server is the recording endpoint.
type Server struct {
	*httptest.Server
	codec *fhirjson.Codec

	mu sync.Mutex
	// script answers the next writes, in order, before any is accepted.
	script   []Reply
	writes   []Write
	current  map[string]Write
	patients map[string]string // NHS number -> GP Patient id
	// Regressions counts writes whose version was lower than the stored one.
	regressions []string
	// ConditionalOnly makes the endpoint refuse client ids (405 on PUT
	// Type/id) and advertise conditional update only.
	conditionalOnly bool
	searchParams    []string
}

// Options configure a Server.
type Options struct {
	// Patients maps NHS numbers to the GP's own Patient ids.
	Patients map[string]string
	// ConditionalOnly refuses PUT Type/id (client ids).
	ConditionalOnly bool
	// SearchParams, if set, are listed as every type's searchParam in the
	// CapabilityStatement (none listed otherwise).
	SearchParams []string
	// Addr, if set, listens there (e.g. "127.0.0.1:0").
}

// New starts a recording endpoint on loopback.
func New(opts Options) (*Server, error) {
	codec, err := fhirjson.New()
	if err != nil {
		return nil, err
	}
	s := &Server{codec: codec, current: map[string]Write{}, patients: map[string]string{}, conditionalOnly: opts.ConditionalOnly, searchParams: opts.SearchParams}
	for k, v := range opts.Patients {
		s.patients[k] = v
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s, nil
}

// Script queues replies for the next writes.
func (s *Server) Script(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, r...)
}

// Writes returns every accepted write in order.
func (s *Server) Writes() []Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Write(nil), s.writes...)
}

// Current returns the latest accepted write of a resource.
func (s *Server) Current(typ, id string) (Write, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.current[typ+"/"+id]
	return w, ok
}

// All returns the latest write of every resource, keyed "Type/id".
func (s *Server) All() map[string]Write {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Write, len(s.current))
	for k, v := range s.current {
		out[k] = v
	}
	return out
}

// Regressions lists writes that carried an older version than the one
// already held (an ordering failure).
func (s *Server) Regressions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.regressions...)
}

func (s *Server) outcome(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{"severity": "error", "code": code, "diagnostics": msg}}})
	_, _ = w.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/fhir")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && path == "/metadata":
		s.metadata(w)
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "Patient":
		s.findPatient(w, r)
	case r.Method == http.MethodPut && (len(parts) == 2 || len(parts) == 1):
		s.put(w, r, parts)
	default:
		s.outcome(w, http.StatusNotFound, "not-found", "no such endpoint")
	}
}

func (s *Server) metadata(w http.ResponseWriter) {
	var res []any
	for _, t := range []string{"Task", "CarePlan", "Goal", "Encounter", "Observation", "Procedure", "ServiceRequest", "Provenance"} {
		r := map[string]any{"type": t, "interaction": []any{map[string]any{"code": "update"}},
			"updateCreate": !s.conditionalOnly, "conditionalUpdate": true}
		if len(s.searchParams) > 0 {
			var ps []any
			for _, p := range s.searchParams {
				ps = append(ps, map[string]any{"name": p, "type": "token"})
			}
			r["searchParam"] = ps
		}
		res = append(res, r)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_ = json.NewEncoder(w).Encode(map[string]any{"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
		"date": "2026-11-22", "fhirVersion": "4.0.1", "format": []string{"json"},
		"rest": []any{map[string]any{"mode": "server", "resource": res}}})
}

func (s *Server) findPatient(w http.ResponseWriter, r *http.Request) {
	_, nhs, _ := strings.Cut(r.URL.Query().Get("identifier"), "|")
	s.mu.Lock()
	id, ok := s.patients[nhs]
	s.mu.Unlock()
	entries := []any{}
	if ok {
		entries = append(entries, map[string]any{"resource": map[string]any{"resourceType": "Patient", "id": id,
			"identifier": []any{map[string]any{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}}}})
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	_ = json.NewEncoder(w).Encode(map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries})
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, parts []string) {
	s.mu.Lock()
	if len(s.script) > 0 {
		rep := s.script[0]
		s.script = s.script[1:]
		s.mu.Unlock()
		if rep.Store {
			s.accept(w, r, parts, rep.Delay)
			return
		}
		if rep.Delay > 0 {
			time.Sleep(rep.Delay)
		}
		if rep.RetryAfter != "" {
			w.Header().Set("Retry-After", rep.RetryAfter)
		}
		if rep.Body != "" {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(rep.Status)
			_, _ = io.WriteString(w, rep.Body)
			return
		}
		if rep.Status != 0 {
			s.outcome(w, rep.Status, "transient", http.StatusText(rep.Status))
			return
		}
	} else {
		s.mu.Unlock()
	}
	s.accept(w, r, parts, 0)
}

// accept stores one write and answers it after delay.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, parts []string, delay time.Duration) {
	typ := parts[0]
	var id, criterion, param, token string
	if len(parts) == 2 {
		if s.conditionalOnly {
			s.outcome(w, http.StatusMethodNotAllowed, "not-supported", "client-assigned ids are not accepted; use a conditional update")
			return
		}
		id = parts[1]
	} else {
		// Conditional update on the write-back key "Type/id": identifier=,
		// or _tag= for a type without an identifier element.
		q, _ := url.ParseQuery(r.URL.RawQuery)
		for _, p := range []string{"identifier", "_tag"} {
			if v := q.Get(p); v != "" && len(q) == 1 {
				param, token = p, v
			}
		}
		_, val, ok := strings.Cut(token, "|")
		if !ok {
			s.outcome(w, http.StatusBadRequest, "invalid", "conditional update needs one criterion: identifier=system|value or _tag=system|code")
			return
		}
		_, id, _ = strings.Cut(val, "/")
		criterion = r.URL.RawQuery
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		s.outcome(w, http.StatusBadRequest, "invalid", "unreadable body")
		return
	}
	cr, err := s.codec.Decode(body)
	if err != nil {
		s.outcome(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	_ = cr
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	_ = json.Unmarshal(body, &head)
	if head.ResourceType != typ || (len(parts) == 2 && head.ID != id) {
		s.outcome(w, http.StatusBadRequest, "invalid", "resource type or id does not match the URL")
		return
	}
	version, _ := strconv.Atoi(r.Header.Get(VersionHeader))
	s.mu.Lock()
	key := typ + "/" + id
	prev, existed := s.current[key]
	if existed && version > 0 && version < prev.Version {
		s.regressions = append(s.regressions, fmt.Sprintf("%s: v%d after v%d", key, version, prev.Version))
	}
	wr := Write{Type: typ, ID: id, Version: version, Body: body, At: time.Now(), Query: criterion, Keyed: criterion == "" || carries(body, param, token)}
	s.writes = append(s.writes, wr)
	if !existed || version >= prev.Version {
		s.current[key] = wr
	}
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Location", "/fhir/"+typ+"/"+id+"/_history/"+strconv.Itoa(max(version, 1)))
	if existed {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	_, _ = w.Write(body)
}

// carries tells whether a resource's JSON holds the token system|value of a
// conditional criterion: in identifier for identifier=, in meta.tag
// (system, code) for _tag=.
func carries(body []byte, param, token string) bool {
	sys, val, _ := strings.Cut(token, "|")
	var doc struct {
		Identifier []struct{ System, Value string }
		Meta       struct {
			Tag []struct{ System, Code string }
		}
	}
	if json.Unmarshal(body, &doc) != nil {
		return false
	}
	switch param {
	case "identifier":
		for _, id := range doc.Identifier {
			if id.System == sys && id.Value == val {
				return true
			}
		}
	case "_tag":
		for _, t := range doc.Meta.Tag {
			if t.System == sys && t.Code == val {
				return true
			}
		}
	}
	return false
}
