package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// The social prescribing API (/sp/v1) is the link workers' own JSON API on
// the native case-record model. Every change is a versioned change of the
// referral: ETag W/"<version>" on reads, If-Match honoured on writes (412 on
// a stale version), and the FHIR view for the GP record is regenerated,
// validated and stored in the same transaction.

// registerSPRoutes adds /sp/v1 to the router.
func (s *Server) registerSPRoutes(r *mux.Router) {
	sp := r.PathPrefix("/sp/v1").Subrouter()
	sp.HandleFunc("/openapi.json", s.handleOpenAPI).Methods(http.MethodGet)
	sp.HandleFunc("/referrals", s.handleListReferrals).Methods(http.MethodGet)
	sp.HandleFunc("/referrals/{id}", s.handleGetCase).Methods(http.MethodGet)
	sp.HandleFunc("/referrals/{id}/actions", s.handleAction).Methods(http.MethodPost)
	sp.HandleFunc("/referrals/{id}/contacts", s.handleAddContact).Methods(http.MethodPost)
	sp.HandleFunc("/referrals/{id}/measures", s.handleAddMeasure).Methods(http.MethodPost)
	sp.HandleFunc("/referrals/{id}/plan", s.handlePutPlan).Methods(http.MethodPut)
	sp.HandleFunc("/referrals/{id}/consent", s.handlePutConsent).Methods(http.MethodPut)
	sp.HandleFunc("/caseload", s.handleCaseload).Methods(http.MethodGet)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// readJSON decodes a JSON request body strictly (unknown fields refused).
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		return linkbridge.Errorf(linkbridge.EUNSUPPORTED, "Content-Type must be application/json")
	}
	limit := s.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return linkbridge.Errorf(linkbridge.ETOOLARGE, "request body is larger than %d bytes", limit)
		}
		return linkbridge.Errorf(linkbridge.EINVALID, "could not read request body")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return linkbridge.Errorf(linkbridge.EINVALID, "invalid JSON body: %s", jsonErrorText(err))
	}
	return nil
}

// jsonErrorText describes a JSON decode error without echoing values.
func jsonErrorText(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return "field " + ute.Field + " has the wrong type"
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ")
	}
	return "malformed JSON"
}

// CaseView is the /sp/v1 representation of a case record.
type CaseView struct {
	Referral *linkbridge.Referral        `json:"referral"`
	Person   *linkbridge.Person          `json:"person"`
	Plan     linkbridge.Plan             `json:"plan"`
	Contacts []*linkbridge.Contact       `json:"contacts"`
	Measures []*linkbridge.Measure       `json:"measures"`
	History  []*linkbridge.ReferralEvent `json:"history"`
	// FHIR lists the FHIR resources that show this case in the GP record.
	FHIR []string `json:"fhir"`
}

func (s *Server) caseView(cr *linkbridge.CaseRecord) *CaseView {
	v := &CaseView{Referral: cr.Referral, Person: cr.Person, Plan: cr.Plan, Contacts: cr.Contacts, Measures: cr.Measures, History: cr.Events}
	if v.Contacts == nil {
		v.Contacts = []*linkbridge.Contact{}
	}
	if v.Measures == nil {
		v.Measures = []*linkbridge.Measure{}
	}
	v.FHIR = []string{"ServiceRequest/" + cr.Referral.ID, "Task/" + cr.Referral.TaskID}
	for _, g := range fhirmap.CaseView(cr) {
		v.FHIR = append(v.FHIR, g.Reference())
	}
	return v
}

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPIDocument returns the OpenAPI 3 description of /sp/v1.
func OpenAPIDocument() []byte { return openAPIDoc }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(openAPIDoc)
}

func (s *Server) handleGetCase(w http.ResponseWriter, r *http.Request) {
	cr, err := s.work.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(cr.Referral.Version))
	writeJSON(w, http.StatusOK, s.caseView(cr))
}

// ReferralPage is one page of the referral inbox.
type ReferralPage struct {
	Items  []*linkbridge.Referral `json:"items"`
	Total  int                    `json:"total"`
	Limit  int                    `json:"limit"`
	Offset int                    `json:"offset"`
}

func (s *Server) handleListReferrals(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := linkbridge.ReferralFilter{ServiceODS: strings.ToUpper(q.Get("service")), LinkWorkerID: q.Get("linkWorker"), Limit: 50}
	for _, st := range splitComma(q.Get("status")) {
		if !linkbridge.TaskStatus(st).Valid() {
			s.writeSPError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "unknown status %q", st).At("status"))
			return
		}
		f.Statuses = append(f.Statuses, linkbridge.TaskStatus(st))
	}
	for name, dst := range map[string]*time.Time{"receivedFrom": &f.ReceivedFrom, "receivedTo": &f.ReceivedTo} {
		if v := q.Get(name); v != "" {
			t, _, err := parseFHIRDate(v)
			if err != nil {
				s.writeSPError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "%s must be a date or dateTime", name).At(name))
				return
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int{"limit": &f.Limit, "offset": &f.Offset} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				s.writeSPError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "%s must be a non-negative integer", name).At(name))
				return
			}
			*dst = n
		}
	}
	if f.Limit < 1 || f.Limit > maxCount {
		f.Limit = maxCount
	}
	items, total, err := s.Cases.ListReferrals(r.Context(), f)
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	if items == nil {
		items = []*linkbridge.Referral{}
	}
	writeJSON(w, http.StatusOK, ReferralPage{Items: items, Total: total, Limit: f.Limit, Offset: f.Offset})
}

func (s *Server) writeCase(w http.ResponseWriter, status int, cr *linkbridge.CaseRecord) {
	w.Header().Set("ETag", etag(cr.Referral.Version))
	writeJSON(w, status, s.caseView(cr))
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	var cmd linkbridge.LifecycleCommand
	s.spChange(w, r, http.StatusOK, &cmd, func(ctx context.Context, id string, ifMatch int) (*linkbridge.CaseRecord, error) {
		return s.work.Act(ctx, id, ifMatch, cmd)
	})
}

func (s *Server) handleAddContact(w http.ResponseWriter, r *http.Request) {
	var c linkbridge.Contact
	s.spChange(w, r, http.StatusCreated, &c, func(ctx context.Context, id string, ifMatch int) (*linkbridge.CaseRecord, error) {
		return s.work.AddContact(ctx, id, ifMatch, c)
	})
}

func (s *Server) handleAddMeasure(w http.ResponseWriter, r *http.Request) {
	var m linkbridge.Measure
	s.spChange(w, r, http.StatusCreated, &m, func(ctx context.Context, id string, ifMatch int) (*linkbridge.CaseRecord, error) {
		return s.work.AddMeasure(ctx, id, ifMatch, m)
	})
}

func (s *Server) handlePutPlan(w http.ResponseWriter, r *http.Request) {
	var p linkbridge.Plan
	s.spChange(w, r, http.StatusOK, &p, func(ctx context.Context, id string, ifMatch int) (*linkbridge.CaseRecord, error) {
		return s.work.SetPlan(ctx, id, ifMatch, p)
	})
}

// spChange is every /sp/v1 change: decode the JSON body into body, read
// If-Match, make one casework call, answer the case record with status.
func (s *Server) spChange(w http.ResponseWriter, r *http.Request, status int, body any, call func(ctx context.Context, id string, ifMatch int) (*linkbridge.CaseRecord, error)) {
	if err := s.readJSON(w, r, body); err != nil {
		s.writeSPError(w, r, err)
		return
	}
	ifMatch, err := ifMatchVersion(r)
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	cr, err := call(r.Context(), mux.Vars(r)["id"], ifMatch)
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	s.writeCase(w, status, cr)
}

// ConsentRequest sets the consent to share with the GP record.
type ConsentRequest struct {
	Consent linkbridge.ConsentLevel `json:"consent"`
}

func (s *Server) handlePutConsent(w http.ResponseWriter, r *http.Request) {
	var req ConsentRequest
	s.spChange(w, r, http.StatusOK, &req, func(ctx context.Context, id string, ifMatch int) (*linkbridge.CaseRecord, error) {
		return s.work.SetConsent(ctx, id, ifMatch, req.Consent)
	})
}

// CaseloadRow is one link worker's caseload against the national norms.
type CaseloadRow = linkbridge.CaseloadRow

func (s *Server) handleCaseload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rows, err := s.work.Caseload(r.Context(), strings.ToUpper(q.Get("service")), q.Get("linkWorker"))
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"norms": map[string]int{"peoplePerYearLow": linkbridge.CaseloadYearLow, "peoplePerYearHigh": linkbridge.CaseloadYearHigh,
			"contactsPerPersonLow": linkbridge.ContactsPerPersonLow, "contactsPerPersonHigh": linkbridge.ContactsPerPersonMax},
		"linkWorkers": rows,
	})
}
