package httpapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
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

// spError is the JSON error body of /sp/v1.
type spError struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Fields  []string `json:"fields,omitempty"`
}

// writeSPError sends an application error as JSON with its HTTP status.
func (s *Server) writeSPError(w http.ResponseWriter, r *http.Request, err error) {
	code := linkbridge.ErrorCode(err)
	status := fhirjson.StatusForCode(code)
	if code == linkbridge.EINTERNAL {
		s.Logger.ErrorContext(r.Context(), "internal error", slog.Any("error", err), slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	writeJSON(w, status, spError{Code: code, Message: linkbridge.ErrorMessage(err), Fields: linkbridge.ErrorExpression(err)})
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
	cr, err := s.Cases.GetCaseRecord(r.Context(), mux.Vars(r)["id"])
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

// caseChange is one change to a case record, built by a handler.
type caseChange func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) (action string, err error)

// changeCase applies a change to a case record: checks If-Match, applies
// the change to the domain, regenerates and validates the FHIR view, and
// stores the referral, case-record rows, changed resources and history
// event in one transaction.
func (s *Server) changeCase(ctx context.Context, r *http.Request, id string, change caseChange) (*linkbridge.CaseRecord, error) {
	cr, err := s.Cases.GetCaseRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := checkIfMatch(r, cr.Referral.Version); err != nil {
		return nil, err
	}
	now := s.now()
	next := *cr.Referral
	cr.Referral = &next
	ch := &linkbridge.ReferralChange{Referral: &next}
	action, err := change(cr, ch, now)
	if err != nil {
		return nil, err
	}
	next.Version++
	next.UpdatedAt = now
	versions, err := s.renderCase(ctx, cr, now)
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		ch.Resources = append(ch.Resources, v.res)
	}
	if s.WriteBack {
		if ch.Outbox, err = s.writeBacks(cr, versions, now); err != nil {
			return nil, err
		}
		if ch.Outbox, err = s.withProvenance(ch.Outbox, cr, versions, action, now); err != nil {
			return nil, err
		}
	}
	ch.Event = &linkbridge.ReferralEvent{ReferralID: next.ID, Version: next.Version, At: now, Action: action, Actor: actorName(&next), Status: next.Status}
	ch.Audit = access.ForWrite(ctx, ch.Resources)
	if err := s.Store.UpdateReferral(ctx, ch); err != nil {
		return nil, err
	}
	cr.Events = append(cr.Events, ch.Event)
	if len(ch.Outbox) > 0 && s.OnWriteBack != nil {
		s.OnWriteBack()
	}
	s.Logger.InfoContext(ctx, "case record changed", slog.String("referral_id", next.ID), slog.String("action", action),
		slog.Int("version", next.Version), slog.String("status", string(next.Status)), slog.Int("fhir_versions", len(versions)))
	return cr, nil
}

// writeBacks renders the outbox messages of a change: each new resource
// version as the GP record should hold it (patient by NHS number, the
// referral by the referrer's identifier), parsed and rendered by google/fhir
// now, in the transaction of the change.
func (s *Server) writeBacks(cr *linkbridge.CaseRecord, versions []version, now time.Time) ([]*linkbridge.OutboxMessage, error) {
	nhs := ""
	if cr.Person != nil {
		nhs = cr.Person.NHSNumber
	}
	out := make([]*linkbridge.OutboxMessage, 0, len(versions))
	for _, v := range versions {
		res := v.res
		body, err := s.Codec.Encode(fhirmap.ForGPRecord(v.msg, cr.Referral, nhs))
		if err != nil {
			return nil, err
		}
		out = append(out, &linkbridge.OutboxMessage{
			OrderKey: cr.Referral.PersonID, ReferralID: cr.Referral.ID,
			ResourceType: res.Type, ResourceID: res.ID, Version: res.VersionID,
			Body: body, NHSNumber: nhs, State: linkbridge.OutboxPending,
			AvailableAt: now, CreatedAt: now,
		})
	}
	return out, nil
}

func actorName(r *linkbridge.Referral) string {
	if r.LinkWorker.ID != "" {
		return r.LinkWorker.ID
	}
	return string(linkbridge.ActorPerformer)
}

// renderCase regenerates the FHIR view of a case and returns a new version
// of every resource whose content changed (and version 1 of new ones).
// Each is parsed and validated by google/fhir before it is stored.
func (s *Server) renderCase(ctx context.Context, cr *linkbridge.CaseRecord, now time.Time) ([]version, error) {
	view := fhirmap.CaseView(cr)
	var out []version
	for _, g := range view {
		g.Doc["id"] = g.ID
		raw, err := json.Marshal(g.Doc)
		if err != nil {
			return nil, err
		}
		msg, err := s.decode(raw)
		if err != nil {
			return nil, err // a generated resource that fails validation is our bug
		}
		res, err := s.versionIfChanged(ctx, msg, now, nil)
		if err != nil {
			return nil, err
		}
		if res != nil {
			out = append(out, version{res, msg})
		}
	}
	// The referral Task carries the workflow state and the outputs.
	cur, err := s.Store.ReadResource(ctx, "Task", cr.Referral.TaskID)
	if err != nil {
		return nil, err
	}
	tmsg, err := s.decode(cur.Body)
	if err != nil {
		return nil, err
	}
	t := tmsg.(*taskpb.Task)
	storedLastModified := t.GetLastModified()
	fhirmap.ApplyCaseToTask(t, cr.Referral, view, now)
	res, err := s.versionIfChanged(ctx, t, now, func(p proto.Message) {
		p.(*taskpb.Task).LastModified = storedLastModified // a new lastModified alone is no change
	})
	if err != nil {
		return nil, err
	}
	if res != nil {
		out = append(out, version{res, t})
	}
	return out, nil
}

// version is a new resource version with the proto it was rendered from.
type version struct {
	res *linkbridge.Resource
	msg proto.Message
}

// versionIfChanged renders msg as the next version of its stored resource,
// or returns nil when its content equals the stored version. Content is
// compared by rendering it with the stored meta: google/fhir renders a
// proto deterministically. probe, if set, adjusts the copy used for the
// comparison (e.g. to ignore a Task's lastModified).
func (s *Server) versionIfChanged(ctx context.Context, msg proto.Message, now time.Time, probe func(proto.Message)) (*linkbridge.Resource, error) {
	typ, id := fhirmap.TypeName(msg), fhirmap.ID(msg)
	cur, err := s.Store.ReadResource(ctx, typ, id)
	switch {
	case linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND:
		return s.renderVersion(msg, 1, now)
	case err != nil:
		return nil, err
	}
	p := proto.Clone(msg)
	fhirmap.SetMeta(p, cur.VersionID, cur.LastUpdated)
	if probe != nil {
		probe(p)
	}
	body, err := s.Codec.Encode(p)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(body, cur.Body) {
		return nil, nil
	}
	return s.renderVersion(msg, cur.VersionID+1, now)
}

func (s *Server) writeCase(w http.ResponseWriter, status int, cr *linkbridge.CaseRecord) {
	w.Header().Set("ETag", etag(cr.Referral.Version))
	writeJSON(w, status, s.caseView(cr))
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	var cmd linkbridge.LifecycleCommand
	if err := s.readJSON(w, r, &cmd); err != nil {
		s.writeSPError(w, r, err)
		return
	}
	cr, err := s.changeCase(r.Context(), r, mux.Vars(r)["id"], func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) (string, error) {
		return cmd.Action, cr.Referral.Apply(&cmd, now)
	})
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	s.writeCase(w, http.StatusOK, cr)
}

func (s *Server) handleAddContact(w http.ResponseWriter, r *http.Request) {
	var c linkbridge.Contact
	if err := s.readJSON(w, r, &c); err != nil {
		s.writeSPError(w, r, err)
		return
	}
	cr, err := s.changeCase(r.Context(), r, mux.Vars(r)["id"], func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) (string, error) {
		rf := cr.Referral
		switch rf.Status {
		case linkbridge.TaskAccepted, linkbridge.TaskInProgress, linkbridge.TaskOnHold:
		default:
			return "", linkbridge.Errorf(linkbridge.ECONFLICT, "contacts are recorded on accepted or active referrals; this one is %s", rf.Status).At("status")
		}
		c.ID, c.ReferralID, c.CreatedAt = s.newID(), rf.ID, now
		c.At = c.At.UTC()
		if err := c.Validate(); err != nil {
			return "", err
		}
		// The first attended contact starts the work (accepted → in-progress).
		if rf.Status == linkbridge.TaskAccepted && c.Attended {
			if err := rf.Apply(&linkbridge.LifecycleCommand{Action: linkbridge.ActionStart}, now); err != nil {
				return "", err
			}
		}
		ch.Contacts = append(ch.Contacts, &c)
		cr.Contacts = append(cr.Contacts, &c)
		return "contact", nil
	})
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	s.writeCase(w, http.StatusCreated, cr)
}

func (s *Server) handleAddMeasure(w http.ResponseWriter, r *http.Request) {
	var m linkbridge.Measure
	if err := s.readJSON(w, r, &m); err != nil {
		s.writeSPError(w, r, err)
		return
	}
	cr, err := s.changeCase(r.Context(), r, mux.Vars(r)["id"], func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) (string, error) {
		if cr.Referral.AcceptedAt.IsZero() || cr.Referral.Status.Terminal() && cr.Referral.Status != linkbridge.TaskCompleted {
			return "", linkbridge.Errorf(linkbridge.ECONFLICT, "outcome measures are recorded on accepted referrals; this one is %s", cr.Referral.Status).At("status")
		}
		m.ID, m.ReferralID, m.CreatedAt = s.newID(), cr.Referral.ID, now
		m.TakenAt = m.TakenAt.UTC()
		if err := m.Score(); err != nil {
			return "", err
		}
		ch.Measures = append(ch.Measures, &m)
		cr.Measures = append(cr.Measures, &m)
		return "measure", nil
	})
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	s.writeCase(w, http.StatusCreated, cr)
}

func (s *Server) handlePutPlan(w http.ResponseWriter, r *http.Request) {
	var p linkbridge.Plan
	if err := s.readJSON(w, r, &p); err != nil {
		s.writeSPError(w, r, err)
		return
	}
	cr, err := s.changeCase(r.Context(), r, mux.Vars(r)["id"], func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) (string, error) {
		if cr.Referral.AcceptedAt.IsZero() || cr.Referral.Status.Terminal() {
			return "", linkbridge.Errorf(linkbridge.ECONFLICT, "the plan is written for accepted, open referrals; this one is %s", cr.Referral.Status).At("status")
		}
		// New items get ids from the gateway; existing ones keep theirs.
		for i := range p.Goals {
			if p.Goals[i].ID == "" {
				p.Goals[i].ID = s.newID()
			}
		}
		for i := range p.Actions {
			if p.Actions[i].ID == "" {
				p.Actions[i].ID = s.newID()
			}
		}
		for i := range p.OnwardReferrals {
			o := &p.OnwardReferrals[i]
			if o.ID == "" {
				o.ID = s.newID()
			}
			if o.SentAt.IsZero() {
				o.SentAt = now
			}
			o.OrganisationODS = strings.ToUpper(o.OrganisationODS)
		}
		for i := range p.Signposts {
			if p.Signposts[i].ID == "" {
				p.Signposts[i].ID = s.newID()
			}
			if p.Signposts[i].At.IsZero() {
				p.Signposts[i].At = now
			}
		}
		if err := p.Validate(); err != nil {
			return "", err
		}
		if p.AgreedAt == nil && len(p.Goals) > 0 {
			t := now
			p.AgreedAt = &t
			cr.Referral.BusinessStatus = linkbridge.BusinessPlanAgreed
		}
		cr.Plan = p
		ch.Plan = &p
		return "plan", nil
	})
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	s.writeCase(w, http.StatusOK, cr)
}

// ConsentRequest sets the consent to share with the GP record.
type ConsentRequest struct {
	Consent linkbridge.ConsentLevel `json:"consent"`
}

func (s *Server) handlePutConsent(w http.ResponseWriter, r *http.Request) {
	var req ConsentRequest
	if err := s.readJSON(w, r, &req); err != nil {
		s.writeSPError(w, r, err)
		return
	}
	cr, err := s.changeCase(r.Context(), r, mux.Vars(r)["id"], func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) (string, error) {
		if !req.Consent.Valid() {
			return "", linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "consent must be full, codes-only or none").At("consent")
		}
		cr.Referral.Consent = req.Consent
		return "consent", nil
	})
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	s.writeCase(w, http.StatusOK, cr)
}

// CaseloadRow is one link worker's caseload against the national norms.
type CaseloadRow struct {
	LinkWorker linkbridge.LinkWorker `json:"linkWorker"`
	// Active counts referrals accepted, in progress or on hold.
	Active int `json:"active"`
	// TakenOnLast12Months counts referrals accepted in the last 12 months
	// (norm 200–250 a year).
	TakenOnLast12Months int  `json:"takenOnLast12Months"`
	OverYearNorm        bool `json:"overYearNorm"`
	// People lists active referrals whose attended contacts exceed the
	// 6–12 norm.
	OverContactNorm []string `json:"overContactNorm"`
	// AverageContacts is the mean attended contacts per referral taken on.
	AverageContacts float64 `json:"averageContacts"`
}

func (s *Server) handleCaseload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.now()
	f := linkbridge.ReferralFilter{ServiceODS: strings.ToUpper(r.URL.Query().Get("service")), LinkWorkerID: r.URL.Query().Get("linkWorker"), Limit: 100000}
	f.Statuses = []linkbridge.TaskStatus{linkbridge.TaskAccepted, linkbridge.TaskInProgress, linkbridge.TaskOnHold, linkbridge.TaskCompleted, linkbridge.TaskFailed, linkbridge.TaskCancelled}
	refs, _, err := s.Cases.ListReferrals(ctx, f)
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	ids := make([]string, 0, len(refs))
	for _, rf := range refs {
		ids = append(ids, rf.ID)
	}
	counts, err := s.Cases.CountContacts(ctx, ids)
	if err != nil {
		s.writeSPError(w, r, err)
		return
	}
	rows := map[string]*CaseloadRow{}
	var order []string
	totals := map[string]int{}
	yearAgo := now.AddDate(-1, 0, 0)
	for _, rf := range refs {
		if rf.LinkWorker.ID == "" || rf.AcceptedAt.IsZero() {
			continue
		}
		row := rows[rf.LinkWorker.ID]
		if row == nil {
			row = &CaseloadRow{LinkWorker: rf.LinkWorker, OverContactNorm: []string{}}
			rows[rf.LinkWorker.ID] = row
			order = append(order, rf.LinkWorker.ID)
		}
		switch rf.Status {
		case linkbridge.TaskAccepted, linkbridge.TaskInProgress, linkbridge.TaskOnHold:
			row.Active++
			if counts[rf.ID] > linkbridge.ContactsPerPersonMax {
				row.OverContactNorm = append(row.OverContactNorm, rf.ID)
			}
		}
		if rf.AcceptedAt.After(yearAgo) {
			row.TakenOnLast12Months++
			totals[rf.LinkWorker.ID] += counts[rf.ID]
		}
	}
	out := make([]*CaseloadRow, 0, len(order))
	for _, id := range order {
		row := rows[id]
		row.OverYearNorm = row.TakenOnLast12Months > linkbridge.CaseloadYearHigh
		if row.TakenOnLast12Months > 0 {
			row.AverageContacts = float64(totals[id]) / float64(row.TakenOnLast12Months)
		}
		out = append(out, row)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"norms": map[string]int{"peoplePerYearLow": linkbridge.CaseloadYearLow, "peoplePerYearHigh": linkbridge.CaseloadYearHigh,
			"contactsPerPersonLow": linkbridge.ContactsPerPersonLow, "contactsPerPersonHigh": linkbridge.ContactsPerPersonMax},
		"linkWorkers": out,
	})
}
