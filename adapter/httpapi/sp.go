package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/casework"
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
	sp.Handle("/referrals", s.sp(s.handleListReferrals)).Methods(http.MethodGet)
	sp.Handle("/referrals/{id}", s.sp(s.handleGetCase)).Methods(http.MethodGet)
	sp.Handle("/referrals/{id}/actions", s.sp(spChange(s, http.StatusOK, (*casework.Service).Act))).Methods(http.MethodPost)
	sp.Handle("/referrals/{id}/contacts", s.sp(spChange(s, http.StatusCreated, (*casework.Service).AddContact))).Methods(http.MethodPost)
	sp.Handle("/referrals/{id}/measures", s.sp(spChange(s, http.StatusCreated, (*casework.Service).AddMeasure))).Methods(http.MethodPost)
	sp.Handle("/referrals/{id}/plan", s.sp(spChange(s, http.StatusOK, (*casework.Service).SetPlan))).Methods(http.MethodPut)
	// Corrections (docs/domain.md#corrections).
	sp.Handle("/referrals/{id}/contacts/{contactId}", s.sp(spEntryChange(s, "contactId", (*casework.Service).AmendContact))).Methods(http.MethodPut)
	sp.Handle("/referrals/{id}/contacts/{contactId}/withdraw", s.sp(spEntryChange(s, "contactId", (*casework.Service).WithdrawContact))).Methods(http.MethodPost)
	sp.Handle("/referrals/{id}/measures/{measureId}", s.sp(spEntryChange(s, "measureId", (*casework.Service).AmendMeasure))).Methods(http.MethodPut)
	sp.Handle("/referrals/{id}/measures/{measureId}/withdraw", s.sp(spEntryChange(s, "measureId", (*casework.Service).WithdrawMeasure))).Methods(http.MethodPost)
	sp.Handle("/referrals/{id}/goals/{goalId}/withdraw", s.sp(spEntryChange(s, "goalId", (*casework.Service).WithdrawGoal))).Methods(http.MethodPost)
	sp.Handle("/referrals/{id}/consent", s.sp(spChange(s, http.StatusOK, setConsent))).Methods(http.MethodPut)
	sp.Handle("/referrals/{id}/reopen", s.sp(s.handleReopen)).Methods(http.MethodPost)
	sp.Handle("/caseload", s.sp(s.handleCaseload)).Methods(http.MethodGet)
	sp.Handle("/reports/caseload", s.sp(s.handleCaseload)).Methods(http.MethodGet)
	sp.Handle("/reports/period", s.sp(s.handlePeriodReport)).Methods(http.MethodGet)
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
	b, err := s.readLimited(w, r)
	if err != nil {
		return err
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
	Measures []*MeasureView              `json:"measures"`
	History  []*linkbridge.ReferralEvent `json:"history"`
	// FHIR lists the FHIR resources that show this case in the GP record.
	FHIR []string `json:"fhir"`
	// Contact is the person's name and contact details, from the Patient
	// the referrer sent (absent when it holds none).
	Contact *fhirmap.PersonContact `json:"contact,omitempty"`
	// Flags are what the link worker should look at
	// (linkbridge.CaseRecord.Flags): dna-review, do-not-contact,
	// safeguarding, review-overdue.
	Flags []string `json:"flags"`
}

// MeasureView is an outcome measure in the case view: the measure as
// stored, and for a follow-up with a baseline its change from it, computed
// when the case is read (docs/domain.md#change-from-baseline).
type MeasureView struct {
	*linkbridge.Measure
	ChangeFromBaseline *linkbridge.ScoreChange `json:"changeFromBaseline,omitempty"`
}

func (s *Server) caseView(cr *linkbridge.CaseRecord) *CaseView {
	v := &CaseView{Referral: cr.Referral, Person: cr.Person, Plan: cr.Plan, Contacts: cr.Contacts, Measures: []*MeasureView{}, History: cr.Events,
		Flags: cr.Flags(s.now(), s.DNAReviewAfter)}
	if v.Contacts == nil {
		v.Contacts = []*linkbridge.Contact{}
	}
	changes := linkbridge.ChangesFromBaseline(cr.Measures)
	for _, m := range cr.Measures {
		v.Measures = append(v.Measures, &MeasureView{Measure: m, ChangeFromBaseline: changes[m.ID]})
	}
	v.FHIR = []string{"ServiceRequest/" + cr.Referral.ID, "Task/" + cr.Referral.TaskID}
	for _, g := range s.Systems.CaseView(cr) {
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

func (s *Server) handleGetCase(w http.ResponseWriter, r *http.Request) error {
	cr, err := s.work.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	s.writeCase(w, r, http.StatusOK, cr)
	return nil
}

// ReferralPage is one page of the referral inbox.
type ReferralPage struct {
	Items  []*linkbridge.Referral `json:"items"`
	Total  int                    `json:"total"`
	Limit  int                    `json:"limit"`
	Offset int                    `json:"offset"`
}

func (s *Server) handleListReferrals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := linkbridge.ReferralFilter{ServiceODS: strings.ToUpper(q.Get("service")), LinkWorkerID: q.Get("linkWorker"), Limit: 50}
	for _, st := range splitComma(q.Get("status")) {
		if !linkbridge.TaskStatus(st).Valid() {
			return linkbridge.Errorf(linkbridge.EINVALID, "unknown status %q", st).At("status")
		}
		f.Statuses = append(f.Statuses, linkbridge.TaskStatus(st))
	}
	for name, dst := range map[string]*time.Time{"receivedFrom": &f.ReceivedFrom, "receivedTo": &f.ReceivedTo} {
		if v := q.Get(name); v != "" {
			t, _, err := parseFHIRDate(v)
			if err != nil {
				return linkbridge.Errorf(linkbridge.EINVALID, "%s must be a date or dateTime", name).At(name)
			}
			*dst = t
		}
	}
	if err := queryInts(q, map[string]*int{"limit": &f.Limit, "offset": &f.Offset}); err != nil {
		return err
	}
	if f.Limit < 1 || f.Limit > maxCount {
		f.Limit = maxCount
	}
	items, total, err := s.Cases.ListReferrals(r.Context(), f)
	if err != nil {
		return err
	}
	if items == nil {
		items = []*linkbridge.Referral{}
	}
	writeJSON(w, http.StatusOK, ReferralPage{Items: items, Total: total, Limit: f.Limit, Offset: f.Offset})
	return nil
}

func (s *Server) writeCase(w http.ResponseWriter, r *http.Request, status int, cr *linkbridge.CaseRecord) {
	w.Header().Set("ETag", etag(cr.Referral.Version))
	v := s.caseView(cr)
	v.Contact = s.personContact(r.Context(), cr.Referral)
	writeJSON(w, status, v)
}

// personContact reads the person's name and contact details from the
// Patient the referrer sent with this referral (the case record keeps
// them there, not in its own tables). A Patient that cannot be read
// leaves them out: the case view does not fail for want of them.
func (s *Server) personContact(ctx context.Context, rf *linkbridge.Referral) *fhirmap.PersonContact {
	res, err := s.Store.ReadResource(ctx, "Patient", rf.Patient())
	if err != nil {
		return nil
	}
	msg, err := s.Codec.DecodeResource(res.Body)
	if err != nil {
		return nil
	}
	return fhirmap.PersonContactOf(msg)
}

// spChange is every /sp/v1 change: decode the JSON body into a T, read
// If-Match, make one casework call, answer the case record with status.
func spChange[T any](s *Server, status int, call func(*casework.Service, context.Context, string, int, T) (*linkbridge.CaseRecord, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body T
		if err := s.readJSON(w, r, &body); err != nil {
			return err
		}
		ifMatch, err := ifMatchVersion(r)
		if err != nil {
			return err
		}
		cr, err := call(s.work, r.Context(), mux.Vars(r)["id"], ifMatch, body)
		if err != nil {
			return err
		}
		s.writeCase(w, r, status, cr)
		return nil
	}
}

// spEntryChange is spChange for a change to one entry of the case record
// (a contact, a measure, a goal), named by the path variable entryVar: it
// answers 200 with the case record.
func spEntryChange[T any](s *Server, entryVar string, call func(*casework.Service, context.Context, string, string, int, T) (*linkbridge.CaseRecord, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		entry := mux.Vars(r)[entryVar]
		return spChange(s, http.StatusOK, func(work *casework.Service, ctx context.Context, id string, ifMatch int, body T) (*linkbridge.CaseRecord, error) {
			return call(work, ctx, id, entry, ifMatch, body)
		})(w, r)
	}
}

// ReopenRequest reopens a closed episode (docs/domain.md#one-open-referral).
type ReopenRequest struct {
	// At is when the episode was reopened; absent means now.
	At *time.Time `json:"at,omitempty"`
	// LinkWorker takes the new episode on; absent: the link worker who
	// held the earlier one.
	LinkWorker *linkbridge.LinkWorker `json:"linkWorker,omitempty"`
}

// handleReopen opens a new episode for the person of a closed referral,
// linked to it, and accepts it for the link worker: 201 with the new case
// record and its address. The new referral is stored first; should the
// acceptance then fail, it waits in the service's inbox, requested.
func (s *Server) handleReopen(w http.ResponseWriter, r *http.Request) error {
	var req ReopenRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	cr, err := s.work.Get(ctx, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if err := cr.Referral.Reopenable(); err != nil {
		return err
	}
	lw := req.LinkWorker
	if lw == nil && cr.Referral.LinkWorker.ID != "" {
		held := cr.Referral.LinkWorker
		lw = &held
	}
	if lw == nil || lw.ID == "" {
		return linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "the earlier episode had no link worker: name the one who takes the new episode on (linkWorker.id)").At("linkWorker.id")
	}
	var at time.Time
	if req.At != nil {
		at = *req.At
	}
	res, err := s.in.Reopen(ctx, cr.Referral, at)
	if err != nil {
		return err
	}
	at = res.Referral.AuthoredOn
	reopened, err := s.work.Act(ctx, res.Referral.ID, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: lw, At: &at})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/sp/v1/referrals/"+reopened.Referral.ID)
	s.writeCase(w, r, http.StatusCreated, reopened)
	return nil
}

// ConsentRequest sets the consent to share with the GP record.
type ConsentRequest struct {
	Consent linkbridge.ConsentLevel `json:"consent"`
}

// setConsent is casework's SetConsent taking the /sp/v1 request body.
func setConsent(work *casework.Service, ctx context.Context, id string, ifMatch int, req ConsentRequest) (*linkbridge.CaseRecord, error) {
	return work.SetConsent(ctx, id, ifMatch, req.Consent)
}

// CaseloadRow is one link worker's caseload against the national norms.
type CaseloadRow = linkbridge.CaseloadRow

// reportScope reads the scope of a report from the query: service,
// practice (comma-separated referring practices) and linkWorker.
func reportScope(q url.Values) linkbridge.ReportScope {
	sc := linkbridge.ReportScope{ServiceODS: strings.ToUpper(q.Get("service")), LinkWorkerID: q.Get("linkWorker")}
	for _, ods := range splitComma(q.Get("practice")) {
		sc.ReferrerODS = append(sc.ReferrerODS, strings.ToUpper(ods))
	}
	return sc
}

// handleCaseload answers /sp/v1/reports/caseload (and /sp/v1/caseload,
// its earlier name): linkbridge.CaseloadReport.
func (s *Server) handleCaseload(w http.ResponseWriter, r *http.Request) error {
	rep, err := s.work.Caseload(r.Context(), reportScope(r.URL.Query()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// handlePeriodReport answers /sp/v1/reports/period?from=&to=:
// linkbridge.PeriodReport.
func (s *Server) handlePeriodReport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, to, err := linkbridge.ParseReportPeriod(q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	rep, err := s.work.PeriodReport(r.Context(), reportScope(q), from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
