package refgp

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"
	"google.golang.org/protobuf/proto"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
)

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 4 << 20

// VersionHeader carries the sender's version of a written resource
// (linkbridge's relay sends it); an older version than the one held is not
// stored.
const VersionHeader = "X-Linkbridge-Version"

// Handler returns the HTTP handler: the FHIR API under /fhir, the patient
// pages under /patients and an index at /.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	r.Use(s.authenticate)
	r.HandleFunc("/", s.handleIndex).Methods(http.MethodGet)
	r.HandleFunc("/patients/{id}", s.handlePatientPage).Methods(http.MethodGet)
	r.HandleFunc("/fhir/metadata", s.handleMetadata).Methods(http.MethodGet)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}", s.handleCreate).Methods(http.MethodPost)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}", s.handleConditionalUpdate).Methods(http.MethodPut)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}", s.handleSearch).Methods(http.MethodGet)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}/{id}", s.handleUpdate).Methods(http.MethodPut)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}/{id}", s.handleRead).Methods(http.MethodGet)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}/{id}", s.handleDelete).Methods(http.MethodDelete)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}/{id}/_history", s.handleHistory).Methods(http.MethodGet)
	r.HandleFunc("/fhir/{type:[A-Z][A-Za-z]+}/{id}/_history/{vid}", s.handleVRead).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.ENOTFOUND, "no such endpoint"))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EMETHOD, "%s is not supported here", r.Method))
	})
	return r
}

// authenticate requires the configured bearer token.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="reference-gp"`)
				s.writeError(w, r, linkbridge.Errorf(linkbridge.EUNAUTHORIZED, "a valid bearer token is required").At("Authorization"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// base is the FHIR base URL as the client reached it.
func base(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir"
}

func (s *Server) typeOf(r *http.Request) (string, error) {
	typ := mux.Vars(r)["type"]
	if !supported(typ) {
		return "", linkbridge.Errorf(linkbridge.ENOTFOUND, "resource type %s is not supported by this endpoint (see /metadata)", typ)
	}
	return typ, nil
}

// decodeBody reads and validates a resource of type typ.
func (s *Server) decodeBody(r *http.Request, typ string) (*decoded, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/fhir+json" && mt != "application/json" {
			return nil, linkbridge.Errorf(linkbridge.EUNSUPPORTED, "Content-Type must be application/fhir+json")
		}
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "unreadable request body")
	}
	if len(b) > MaxBodyBytes {
		return nil, linkbridge.Errorf(linkbridge.ETOOLARGE, "request body exceeds %d bytes", MaxBodyBytes)
	}
	cr, err := s.codec.Decode(b)
	if err != nil {
		return nil, err
	}
	res := fhirmap.Unwrap(cr)
	if got := fhirmap.TypeName(res); got != typ {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "the body is a %s but the URL names %s", got, typ).At("resourceType")
	}
	return &decoded{res: res, id: fhirmap.ID(res)}, nil
}

type decoded struct {
	res proto.Message
	id  string
}

func sourceVersion(r *http.Request) int {
	v, _ := strconv.Atoi(r.Header.Get(VersionHeader))
	return v
}

// handleUpdate is PUT Type/id: update; update-as-create with a client id
// only with AllowClientIDs (else 405).
func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request) {
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	d, err := s.decodeBody(r, typ)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if d.id != id {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "the resource id must equal the id in the URL").At(typ+".id"))
		return
	}
	strict := !s.opts.AllowClientIDs
	res, err := s.put(r.Context(), &write{typ: typ, id: id, res: d.res, ifMatch: r.Header.Get("If-Match"),
		sourceVersion: sourceVersion(r), noCreate: strict, enforceRefs: strict})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeResult(w, r, res)
}

// criterion reads the one criterion of a conditional update or
// If-None-Exist: identifier=system|value, or _tag=system|code (a meta.tag;
// every resource type has _tag, so it also keys types without an
// identifier element, such as Provenance).
func criterion(typ string, v url.Values, where string) (*Query, string, error) {
	if len(v) == 1 {
		for _, p := range []string{"identifier", "_tag"} {
			if val := v.Get(p); val != "" {
				q := &Query{Type: typ, Count: 2}
				if p == "identifier" {
					if !hasIdentifier(typ) {
						return nil, "", noIdentifier(typ)
					}
					q.Identifier = val
				} else {
					q.Tag = val
				}
				return q, p, nil
			}
		}
	}
	return nil, "", linkbridge.Errorf(linkbridge.EINVALID, "%s takes exactly one criterion: identifier=system|value or _tag=system|code", where).At("identifier")
}

// hasIdentifier tells whether a type has an identifier element, and so the
// identifier search parameter (for the types held here, exactly the types
// linkbridge keys by identifier; Provenance has neither).
func hasIdentifier(typ string) bool { return fhirmap.WritebackKeyParam(typ) == "identifier" }

func noIdentifier(typ string) error {
	return linkbridge.Errorf(linkbridge.EINVALID, "%s has no identifier element and no identifier search parameter; use _tag (meta.tag)", typ).At("identifier")
}

// handleConditionalUpdate is PUT Type?identifier=system|value or
// PUT Type?_tag=system|code, as R4 (http.html#cond-update) sets out: one
// match is updated (400 if the body's id is another); no match creates,
// with the endpoint's id when the body has none, and with the body's id
// (update-as-create) only with AllowClientIDs, else 400 at Type.id;
// several matches are 412.
func (s *Server) handleConditionalUpdate(w http.ResponseWriter, r *http.Request) {
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cq, param, err := criterion(typ, r.URL.Query(), "a conditional update")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.decodeBody(r, typ)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	found, total, err := s.search(r.Context(), cq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var id string
	switch {
	case total > 1:
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EPRECONDITION, "%d resources match the condition: it is not selective enough", total).At(param))
		return
	case total == 1:
		id = found[0].ID
		if d.id != "" && d.id != id {
			s.writeError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "the resource id %s differs from the id of the matching resource %s/%s", d.id, typ, id).At(typ+".id"))
			return
		}
	case d.id == "":
		// No match and no id: create, with the endpoint's id.
	case !s.opts.AllowClientIDs:
		// No match and an id: update-as-create, which this endpoint does
		// not do, so R4 has it "reject" the request. 400 at Type.id rather
		// than PUT Type/id's 405: the method is supported, the id in the
		// body is what is refused (as with one match and another id).
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "no %s matches the condition, and this endpoint assigns its own ids: it does not create a resource with a client-assigned id (leave %s.id out to create one)", typ, typ).At(typ+".id"))
		return
	default:
		// No match and an id: update-as-create, unless the id is taken by
		// another resource.
		if _, err := s.read(r.Context(), typ, d.id); err == nil {
			s.writeError(w, r, linkbridge.Errorf(linkbridge.ECONFLICT, "the id is held by a resource that does not match the condition").At(typ+".id"))
			return
		}
		id = d.id
	}
	res, err := s.put(r.Context(), &write{typ: typ, id: id, res: d.res, ifMatch: r.Header.Get("If-Match"), sourceVersion: sourceVersion(r),
		enforceRefs: !s.opts.AllowClientIDs})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeResult(w, r, res)
}

// handleCreate is POST Type (server-assigned id: an id in the body is
// ignored, as R4 requires), with If-None-Exist.
func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.decodeBody(r, typ)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ine := r.Header.Get("If-None-Exist"); ine != "" {
		v, err := url.ParseQuery(strings.TrimPrefix(ine, "?"))
		cq, _, cerr := criterion(typ, v, "If-None-Exist")
		if err != nil || cerr != nil {
			s.writeError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "If-None-Exist takes exactly one criterion: identifier=system|value or _tag=system|code").At("If-None-Exist"))
			return
		}
		found, total, err := s.search(r.Context(), cq)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if total > 1 {
			s.writeError(w, r, linkbridge.Errorf(linkbridge.EPRECONDITION, "%d resources match If-None-Exist", total).At("If-None-Exist"))
			return
		}
		if total == 1 {
			s.writeResult(w, r, &writeResult{st: found[0]})
			return
		}
	}
	res, err := s.put(r.Context(), &write{typ: typ, res: d.res, sourceVersion: sourceVersion(r), enforceRefs: !s.opts.AllowClientIDs})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeResult(w, r, res)
}

func (s *Server) handleRead(w http.ResponseWriter, r *http.Request) {
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.read(r.Context(), typ, mux.Vars(r)["id"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeStored(w, r, http.StatusOK, st)
}

// handleDelete is DELETE Type/id: 200 with an OperationOutcome saying what
// happened, also when the resource is not held or was already deleted (R4
// allows either); 409 while another held resource references it, unless
// AllowClientIDs; 405 with NoDelete.
func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if s.opts.NoDelete {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EMETHOD, "this endpoint does not support delete (see /metadata)"))
		return
	}
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := mux.Vars(r)["id"]
	res, err := s.remove(r.Context(), typ, id, r.Header.Get("If-Match"), !s.opts.AllowClientIDs)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var msg string
	switch {
	case res.version > 0:
		s.log.InfoContext(r.Context(), "deleted", slog.String("type", typ), slog.String("id", id), slog.Int("version", res.version))
		msg = fmt.Sprintf("%s/%s deleted (version %d)", typ, id, res.version)
	case res.already:
		msg = fmt.Sprintf("%s/%s was already deleted: nothing to do", typ, id)
	default:
		msg = fmt.Sprintf("%s/%s is not held here: nothing to delete", typ, id)
	}
	b, err := s.codec.Encode(fhirjson.InformationOutcome(msg))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *Server) handleVRead(w http.ResponseWriter, r *http.Request) {
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := strconv.Atoi(mux.Vars(r)["vid"])
	if err != nil || v < 1 {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.ENOTFOUND, "no such version"))
		return
	}
	st, err := s.vread(r.Context(), typ, mux.Vars(r)["id"], v)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeStored(w, r, http.StatusOK, st)
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	all, err := s.history(r.Context(), typ, mux.Vars(r)["id"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b := base(r)
	entries := make([]any, 0, len(all))
	for i, st := range all {
		e := map[string]any{
			"fullUrl":  b + "/" + st.Type + "/" + st.ID,
			"request":  map[string]any{"method": "PUT", "url": st.Type + "/" + st.ID},
			"response": map[string]any{"status": "200 OK", "etag": st.ETag(), "lastModified": st.LastUpdated.Format(time.RFC3339Nano)},
		}
		// all is newest first: all[i+1] is the version before st.
		switch {
		case st.Deleted: // a delete has no resource
			e["request"].(map[string]any)["method"] = "DELETE"
		case st.Version == 1 || (i+1 < len(all) && all[i+1].Deleted):
			e["response"].(map[string]any)["status"] = "201 Created"
			e["resource"] = json.RawMessage(st.Body)
		default:
			e["resource"] = json.RawMessage(st.Body)
		}
		entries = append(entries, e)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"resourceType": "Bundle", "type": "history", "total": len(all), "entry": entries})
}

// handleSearch is GET Type?params. Unknown parameters are refused (400),
// so a client never mistakes an unfiltered result for a filtered one.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	typ, err := s.typeOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q, err := ParseQuery(typ, r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	found, total, err := s.search(r.Context(), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b := base(r)
	entries := make([]any, 0, len(found))
	for _, st := range found {
		entries = append(entries, map[string]any{
			"fullUrl":  b + "/" + st.Type + "/" + st.ID,
			"resource": json.RawMessage(st.Body),
			"search":   map[string]any{"mode": "match"},
		})
	}
	self := b + "/" + typ
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	bundle := map[string]any{"resourceType": "Bundle", "type": "searchset", "total": total,
		"link": []any{map[string]any{"relation": "self", "url": self}}}
	if len(entries) > 0 { // FHIR JSON has no empty arrays
		bundle["entry"] = entries
	}
	s.writeJSON(w, http.StatusOK, bundle)
}

// SearchParams are the search parameters the endpoint supports (every type;
// patient, subject and their identifier forms are not offered on Patient,
// identifier not on a type without an identifier element such as
// Provenance; _tag searches meta.tag on every type).
var SearchParams = []string{"_id", "identifier", "_tag", "patient", "subject", "patient.identifier", "patient:identifier", "subject:identifier", "_lastUpdated", "_count"}

// ParseQuery reads a search query string. Unknown parameters are EINVALID,
// naming the parameter.
func ParseQuery(typ string, v url.Values) (*Query, error) {
	q := &Query{Type: typ}
	for name, vals := range v {
		if len(vals) == 0 {
			continue
		}
		val := vals[0]
		switch name {
		case "_id":
			q.IDs = strings.Split(val, ",")
		case "identifier":
			if !hasIdentifier(typ) {
				return nil, noIdentifier(typ)
			}
			q.Identifier = val
		case "_tag":
			q.Tag = val
		case "patient", "subject":
			if typ == "Patient" {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "Patient has no %s search parameter", name).At(name)
			}
			id := val
			if i := strings.LastIndex(val, "Patient/"); i >= 0 {
				id = val[i+len("Patient/"):]
			} else if strings.Contains(val, "/") {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "%s must reference a Patient", name).At(name)
			}
			q.Patient = id
		case "patient.identifier", "patient:identifier", "subject:identifier":
			if typ == "Patient" {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "use Patient?identifier=").At(name)
			}
			sys, nhs, ok := strings.Cut(val, "|")
			if !ok {
				nhs, sys = val, linkbridge.NHSNumberSystem
			}
			if sys != linkbridge.NHSNumberSystem {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "patients are identified by NHS number (%s)", linkbridge.NHSNumberSystem).At(name)
			}
			q.NHSNumber = nhs
		case "_lastUpdated":
			q.LastUpdated = vals
			for _, lu := range vals {
				if _, _, err := parseDateParam(lu); err != nil {
					return nil, err
				}
			}
		case "_count":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "_count must be a number").At("_count")
			}
			q.Count = n
		case "_format":
		default:
			return nil, linkbridge.Errorf(linkbridge.EINVALID, "search parameter %q is not supported (see /metadata)", name).At(name)
		}
	}
	return q, nil
}

// writeResult answers a write: 201 for a new resource, 200 otherwise.
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, res *writeResult) {
	status := http.StatusOK
	if res.created {
		status = http.StatusCreated
	}
	if res.changed {
		s.log.InfoContext(r.Context(), "stored", slog.String("type", res.st.Type), slog.String("id", res.st.ID), slog.Int("version", res.st.Version))
	}
	w.Header().Set("Location", base(r)+"/"+res.st.Type+"/"+res.st.ID+"/_history/"+strconv.Itoa(res.st.Version))
	if strings.Contains(r.Header.Get("Prefer"), "return=minimal") {
		w.Header().Set("ETag", res.st.ETag())
		w.Header().Set("Last-Modified", res.st.LastUpdated.UTC().Format(http.TimeFormat))
		w.WriteHeader(status)
		return
	}
	s.writeStored(w, r, status, res.st)
}

func (s *Server) writeStored(w http.ResponseWriter, _ *http.Request, status int, st *Stored) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("ETag", st.ETag())
	w.Header().Set("Last-Modified", st.LastUpdated.UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_, _ = w.Write(st.Body)
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// issueProcessing is the issue type of a reference that does not resolve:
// the content is valid FHIR, this endpoint cannot process it (the issue
// type HAPI FHIR gives its invalid-request errors).
const issueProcessing = cpb.IssueTypeCode_PROCESSING

// outcomeError is an application error answered with another
// OperationOutcome issue type than its code's (and, when status is set,
// another HTTP status and BaRS code; httpCode "" leaves details out).
type outcomeError struct {
	err      *linkbridge.Error
	issue    cpb.IssueTypeCode_Value
	status   int
	httpCode string
}

func (e *outcomeError) Error() string { return e.err.Error() }
func (e *outcomeError) Unwrap() error { return e.err }

// gone is the error for a read of a deleted resource (or of the version
// recording the delete): 410 Gone, issue type "deleted". The BaRS code
// system has no code for 410, so the issue has no details.
func gone(typ, id string, version int, when string) error {
	at := when
	if t, err := time.Parse(timeLayout, when); err == nil {
		at = t.Format(time.RFC3339)
	}
	return &outcomeError{err: linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s was deleted (version %d, %s)", typ, id, version, at),
		issue: cpb.IssueTypeCode_DELETED, status: http.StatusGone}
}

// writeError answers with an OperationOutcome and the status of the error
// code; internal errors are logged, never sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	// Mapped as linkbridge's own API maps them, from the one table.
	code := linkbridge.ErrorCode(err)
	status, httpCode := httpapi.ErrorStatusCode(code), httpapi.BaRSErrorCode(code)
	var oe *outcomeError
	if errors.As(err, &oe) && oe.status != 0 {
		status, httpCode = oe.status, oe.httpCode
	}
	var ae *linkbridge.Error
	if status >= 500 || !errors.As(err, &ae) {
		s.log.ErrorContext(r.Context(), "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	} else {
		s.log.InfoContext(r.Context(), "request refused", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", status))
	}
	oo := fhirjson.OutcomeFromError(err, status, httpCode)
	if oe != nil {
		for _, is := range oo.GetIssue() {
			is.Code = &oopb.OperationOutcome_Issue_CodeType{Value: oe.issue}
			if httpCode == "" {
				is.Details = nil
			}
		}
	}
	b, encErr := s.codec.Encode(oo)
	if encErr != nil {
		b = []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
