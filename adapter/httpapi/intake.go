package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// intakeResult says what an intake stored (or found already stored).
type intakeResult struct {
	// Created is false when the referral was already stored (idempotent
	// re-send): the resources are then the stored ones.
	Created bool
	// PersonCreated is false when the Patient already existed.
	PersonCreated  bool
	Patient        *linkbridge.Resource
	ServiceRequest *linkbridge.Resource
	Task           *linkbridge.Resource
	// ByEntry maps each request entry to the resource it became (nil for
	// contained resources and for entries of an already-stored referral).
	ByEntry  map[*fhirmap.Entry]*linkbridge.Resource
	Referral *linkbridge.Referral
}

// intake validates, maps and stores one inbound referral. It is idempotent:
// a referral whose ServiceRequest identifier is stored already returns the
// stored referral with Created false.
func (s *Server) intake(ctx context.Context, entries []*fhirmap.Entry, messageID string) (*intakeResult, error) {
	ref, err := fhirmap.MapReferral(entries)
	if err != nil {
		return nil, err
	}
	// Idempotency: the same referral identifier is the same referral. The
	// store's unique constraint decides (no read-then-write race); the
	// duplicate answer is then read back.
	// The first attempt takes the person to be new and lets the store's
	// unique NHS number decide (most referrals are of people the service
	// has not met); a duplicate is retried linked to the stored person.
	ids := &intakeIDs{entry: map[*fhirmap.Entry]string{}}
	for attempt := 0; ; attempt++ {
		ids.retry = attempt > 0
		res, err := s.storeIntake(ctx, ref, messageID, ids)
		var le *linkbridge.Error
		if errors.As(err, &le) && le.Code == linkbridge.EDUPLICATE {
			switch {
			case strings.HasPrefix(le.Existing, "ServiceRequest/"):
				// Lost a race with an identical referral: answer with it.
				out, ferr := s.existingReferral(ctx, ref.Referral.Identifier)
				if linkbridge.ErrorCode(ferr) == linkbridge.ENOTFOUND {
					// Held, but not found by this caller (the scoped store
					// usually answers ECONFLICT before this): never answer
					// a create with 404, nor with nothing.
					return nil, linkbridge.Errorf(linkbridge.ECONFLICT, "the referral identifier is already in use").At("ServiceRequest.identifier")
				}
				return out, ferr
			case strings.HasPrefix(le.Existing, "Patient/") && attempt == 0:
				// The person is known (or was created concurrently):
				// link to them.
				continue
			}
		}
		return res, err
	}
}

// existingReferral returns the stored referral with a business identifier:
// never nil without an error; ENOTFOUND when there is none the caller may
// read.
func (s *Server) existingReferral(ctx context.Context, id linkbridge.Identifier) (*intakeResult, error) {
	rf, err := s.Store.FindReferralByIdentifier(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &intakeResult{Referral: rf, ByEntry: map[*fhirmap.Entry]*linkbridge.Resource{}}
	if out.ServiceRequest, err = s.Store.ReadResource(ctx, "ServiceRequest", rf.ID); err != nil {
		return nil, err
	}
	if out.Task, err = s.Store.ReadResource(ctx, "Task", rf.TaskID); err != nil {
		return nil, err
	}
	if out.Patient, err = s.Store.ReadResource(ctx, "Patient", rf.PersonID); err != nil {
		return nil, err
	}
	return out, nil
}

// intakeIDs are the ids an intake attempt gave out. A retry keeps them, so
// that references the first attempt rewrote in place stay right; only the
// person's id changes, to the stored person's.
type intakeIDs struct {
	// retry is set on the attempt after a duplicate NHS number: the person
	// is looked up, and the resources were changed by the first attempt.
	retry                  bool
	person, referral, task string
	entry                  map[*fhirmap.Entry]string
}

// get returns *id, giving it a new id first if it has none.
func (s *Server) get(id *string) string {
	if *id == "" {
		*id = s.newID()
	}
	return *id
}

// storeIntake assigns ids, rewrites references, renders and stores.
func (s *Server) storeIntake(ctx context.Context, ref *fhirmap.Referral, messageID string, ids *intakeIDs) (*intakeResult, error) {
	lookup := ids.retry
	now := s.now()
	person := ref.Person
	newPerson := true
	var existing *linkbridge.Person
	var err error
	switch {
	case ref.SubjectID != "":
		existing, err = s.Store.FindPerson(ctx, ref.SubjectID)
		if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
			return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject Patient/%s is not held by this server", ref.SubjectID).At("ServiceRequest.subject")
		}
	case lookup:
		existing, err = s.Store.FindPersonByNHSNumber(ctx, person.NHSNumber)
		if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	firstPersonID := ids.person
	if existing != nil {
		person = *existing
		newPerson = false
	} else {
		person.ID = s.get(&ids.person)
		person.CreatedAt = now
	}

	rf := ref.Referral
	rf.ID = s.get(&ids.referral)
	rf.PersonID = person.ID
	rf.ReceivedAt, rf.UpdatedAt, rf.Version = now, now, 1
	if rf.ServiceODS == "" {
		rf.ServiceODS = s.DefaultServiceODS
	}
	if rf.Status == "" {
		rf.Status = linkbridge.TaskRequested
	}

	// Assign ids to every stored entry; the ServiceRequest's id is the
	// referral id.
	type idPair struct{ typ, id string }
	newIDs := map[string]idPair{} // old reference or fullUrl -> new
	if ids.retry && firstPersonID != "" && firstPersonID != person.ID {
		// The first attempt pointed references at the person it took to
		// be new.
		newIDs["Patient/"+firstPersonID] = idPair{"Patient", person.ID}
	}
	// The referral's own ServiceRequest and Patient are stored as resources
	// of their own even when they arrive contained: they are lifted out of
	// their container and "#id" references to them are repointed.
	lifted := func(e *fhirmap.Entry) bool {
		return !e.Contained || e == ref.ServiceRequest || e == ref.Patient
	}
	dropContained := map[string]bool{}
	for _, e := range ref.Entries {
		if !lifted(e) {
			continue
		}
		typ := fhirmap.TypeName(e.Resource)
		var id string
		switch {
		case e == ref.ServiceRequest:
			id = rf.ID
		case e == ref.Patient:
			id = person.ID
		default:
			id = ids.entry[e]
			if id == "" {
				id = s.newID()
				ids.entry[e] = id
			}
		}
		if e.FullURL != "" {
			newIDs[e.FullURL] = idPair{typ, id}
		}
		if old := fhirmap.ID(e.Resource); old != "" {
			if e.Contained {
				newIDs["#"+old] = idPair{typ, id}
				dropContained[old] = true
			}
			if !e.Contained {
				newIDs[typ+"/"+old] = idPair{typ, id}
			}
		}
	}
	resolve := func(typ, id string) (string, string, bool) {
		key := id
		switch typ {
		case "":
		case "#":
			key = "#" + id
		default:
			key = typ + "/" + id
		}
		if p, ok := newIDs[key]; ok {
			return p.typ, p.id, true
		}
		return "", "", false
	}

	in := &linkbridge.Intake{Person: &person, NewPerson: newPerson, MessageID: messageID}
	out := &intakeResult{Created: true, PersonCreated: newPerson, ByEntry: map[*fhirmap.Entry]*linkbridge.Resource{}}
	// refs are the reference rewrites as JSON strings, for Stamp.
	refs := make(map[string]string, len(newIDs))
	for from, to := range newIDs {
		if !strings.HasPrefix(from, "#") {
			refs[from] = to.typ + "/" + to.id
		}
	}
	// render gives a resource its id and meta and the bytes to store. A
	// resource received as JSON and changed only in its references is
	// stored as received (Stamp); one the gateway built or changed
	// otherwise is marshalled.
	render := func(res proto.Message, id string, raw []byte, rewrote int) (*linkbridge.Resource, error) {
		fhirmap.SetID(res, id)
		fhirmap.SetMeta(res, 1, now)
		params := fhirmap.SearchParams(res) // before Encode, which denormalises references in place
		var body []byte
		if raw != nil && !s.marshalAll {
			if b, n, err := fhirjson.Stamp(raw, id, 1, now, refs); err == nil && n == rewrote {
				body = b
			}
		}
		if body == nil {
			var err error
			if body, err = s.Codec.Encode(res); err != nil {
				return nil, fmt.Errorf("httpapi: render %s: %w", fhirmap.TypeName(res), err)
			}
		}
		return &linkbridge.Resource{Type: fhirmap.TypeName(res), ID: id, VersionID: 1, LastUpdated: now, Body: body, Params: params}, nil
	}

	var srRequester *dpb.Reference
	for _, e := range ref.Entries {
		if !lifted(e) {
			continue
		}
		if e == ref.Patient && !newPerson {
			continue // link to the stored person; their record is not replaced
		}
		rewrote := fhirmap.RewriteReferences(e.Resource, resolve)
		// raw stays set only while the received bytes still say what the
		// resource now says, apart from id, meta and references.
		raw := e.Raw
		if fhirmap.DropContained(e.Resource, dropContained) || e.Normalised || e.Contained || lookup {
			raw = nil // changed beyond references, possibly by an earlier attempt
		}
		if e == ref.ServiceRequest {
			sr := e.Resource.(*srpb.ServiceRequest)
			srRequester = sr.GetRequester()
			if typ, id := fhirmap.RefTarget(sr.GetSubject()); typ == "" && id == "" {
				// Named by NHS number only: point at the person's Patient too.
				fhirmap.PointAt(sr.Subject, "Patient", person.ID)
				raw = nil
			}
		}
		if e == ref.Task {
			t := e.Resource.(*taskpb.Task)
			if t.GetLastModified() == nil {
				t.LastModified = fhirmap.DateTime(now)
				raw = nil
			}
			if typ, id := fhirmap.RefTarget(t.GetForValue()); typ == "" && id == "" {
				fhirmap.PointAt(t.ForValue, "Patient", person.ID)
				raw = nil
			}
		}
		id := ids.entry[e]
		switch e {
		case ref.ServiceRequest:
			id = rf.ID
		case ref.Patient:
			id = person.ID
		}
		r, err := render(e.Resource, id, raw, rewrote)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, r)
		out.ByEntry[e] = r
		switch e {
		case ref.ServiceRequest:
			out.ServiceRequest = r
		case ref.Task:
			out.Task = r
			rf.TaskID = r.ID
		case ref.Patient:
			out.Patient = r
		}
	}
	if newPerson && ref.Patient == nil {
		// Named only by NHS number: the gateway keeps a minimal Patient.
		p := &patpb.Patient{Identifier: []*dpb.Identifier{{
			System: &dpb.Uri{Value: linkbridge.NHSNumberSystem}, Value: &dpb.String{Value: person.NHSNumber},
		}}}
		r, err := render(p, person.ID, nil, 0)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, r)
		out.Patient = r
	}
	if ref.Task == nil {
		rf.TaskID = s.get(&ids.task)
		t := fhirmap.NewReferralTask(&rf, srRequester, now)
		r, err := render(t, rf.TaskID, nil, 0)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, r)
		out.Task = r
	}
	if err := rf.Validate(); err != nil {
		return nil, err
	}
	if out.Patient == nil {
		if out.Patient, err = s.Store.ReadResource(ctx, "Patient", person.ID); err != nil {
			return nil, err
		}
	}
	in.Referral = &rf
	in.Audit = access.ForWrite(ctx, in.Resources)
	if err := s.Store.CreateReferral(ctx, in); err != nil {
		return nil, err
	}
	out.Referral = &rf
	s.Logger.InfoContext(ctx, "referral stored", slog.String("referral_id", rf.ID), slog.String("task_id", rf.TaskID),
		slog.String("person_id", person.ID), slog.Bool("new_person", newPerson), slog.String("referrer_ods", rf.ReferrerODS), slog.String("service_ods", rf.ServiceODS))
	return out, nil
}

// handleTransaction answers POST /fhir with a referral transaction Bundle.
func (s *Server) handleTransaction(w http.ResponseWriter, r *http.Request) {
	res, body, ok := s.readResourceRaw(w, r)
	if !ok {
		return
	}
	bundle, err := expect[*rpb.Bundle](res, "POST to the base URL", "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	entries, err := fhirmap.TransactionEntries(bundle)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	attachRaw(body, entries, 0)
	out, err := s.intake(r.Context(), entries, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("transaction-response"), Timestamp: instantNow(s.now())}
	be := make([]bundleEntry, len(entries))
	for i, e := range entries {
		stored := out.ByEntry[e]
		status := "201 Created"
		if !out.Created {
			status = "200 OK"
			switch e.Resource.(type) {
			case *srpb.ServiceRequest:
				stored = out.ServiceRequest
			case *taskpb.Task:
				stored = out.Task
			case *patpb.Patient:
				stored = out.Patient
			}
		} else if _, isPatient := e.Resource.(*patpb.Patient); isPatient && !out.PersonCreated {
			status, stored = "200 OK", out.Patient
		}
		if stored == nil {
			be[i] = bundleEntry{entry: &rpb.Bundle_Entry{Response: &rpb.Bundle_Entry_Response{Status: &dpb.String{Value: status}}}}
			continue
		}
		be[i] = bundleEntry{entry: responseEntry(stored, status)}
		if preferReturn(r) != "minimal" {
			be[i].raw = stored.Body
			be[i].entry.FullUrl = &dpb.Uri{Value: s.baseURL(r) + "/" + stored.Type + "/" + stored.ID}
		}
	}
	respBody, err := s.renderBundle(resp, be)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(respBody)
}

// handleCreateServiceRequest answers POST /fhir/ServiceRequest: a referral
// without a Task; the gateway creates the referral Task itself.
func (s *Server) handleCreateServiceRequest(w http.ResponseWriter, r *http.Request) {
	s.handleCreate(w, r, "ServiceRequest")
}

// handleCreateTask answers POST /fhir/Task (SDOH "direct"): the Task's
// focus ServiceRequest is contained in it or already held by the gateway.
func (s *Server) handleCreateTask(w http.ResponseWriter, r *http.Request) {
	s.handleCreate(w, r, "Task")
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, typ string) {
	res, raw, ok := s.readResourceRaw(w, r)
	if !ok {
		return
	}
	if got := fhirmap.TypeName(res); got != typ {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "POST /%s takes a %s, not %s", typ, typ, got).At(got))
		return
	}
	ctx := r.Context()
	// Conditional create (If-None-Exist): one match returns it, several 412.
	if cond := r.Header.Get("If-None-Exist"); cond != "" {
		found, err := s.conditionalMatch(ctx, typ, cond)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if found != nil {
			s.writeWriteResult(w, r, found, http.StatusOK, "Resource already exists; nothing was created.")
			return
		}
	}
	if t, ok := res.(*taskpb.Task); ok {
		// A Task whose focus is a ServiceRequest this gateway holds tracks
		// a referral that already has its Task: answer with that Task.
		if ftyp, fid := fhirmap.RefTarget(t.GetFocus()); ftyp == "ServiceRequest" {
			rf, err := s.Store.FindReferral(ctx, fid)
			if err == nil {
				found, err := s.Store.ReadResource(ctx, "Task", rf.TaskID)
				if err != nil {
					s.writeError(w, r, err)
					return
				}
				s.writeWriteResult(w, r, found, http.StatusOK, "The referral already has a Task; nothing was created.")
				return
			} else if linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
				s.writeError(w, r, err)
				return
			}
			s.writeError(w, r, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Task.focus ServiceRequest/%s is not held by this server; contain the ServiceRequest or send a transaction", fid).At("Task.focus"))
			return
		}
	}
	out, err := s.intake(ctx, []*fhirmap.Entry{{Resource: res, Path: typ, Raw: raw}}, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stored := out.ServiceRequest
	if typ == "Task" {
		stored = out.Task
	}
	if !out.Created {
		s.writeWriteResult(w, r, stored, http.StatusOK, "The referral is already held; nothing was created.")
		return
	}
	s.writeWriteResult(w, r, stored, http.StatusCreated, "Referral created.")
}

// conditionalMatch runs an If-None-Exist query ("identifier=system|value").
// Its criteria must all be applied: a parameter the search would ignore
// (unknown, unsupported for the type such as patient.identifier, or a
// result parameter such as _count) or one without a value is refused with
// EINVALID naming it, since ignoring it could match an unrelated resource
// and answer "already exists" (FHIR R4 http.html#ccreate; strict search
// handling).
func (s *Server) conditionalMatch(ctx context.Context, typ, cond string) (*linkbridge.Resource, error) {
	vals, err := url.ParseQuery(cond)
	if err != nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "If-None-Exist is not a valid query string").At("If-None-Exist")
	}
	if len(vals) == 0 {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "If-None-Exist has no search criteria").At("If-None-Exist")
	}
	names := slices.Sorted(maps.Keys(vals))
	for _, k := range names {
		// Filters only: _id, _lastUpdated and the type's own parameters.
		// (patient.identifier is a chained search handleSearch resolves;
		// parseSearch does not apply it.)
		filter := k == "_id" || k == "_lastUpdated" ||
			!slices.Contains(searchControls, k) && k != "patient.identifier" && knownSearchParam(typ, k)
		if !filter {
			return nil, linkbridge.Errorf(linkbridge.EINVALID, "If-None-Exist: search parameter %q is not supported for a conditional create of %s", k, typ).At(k)
		}
		for _, v := range vals[k] {
			if len(splitComma(v)) == 0 {
				return nil, linkbridge.Errorf(linkbridge.EINVALID, "If-None-Exist: search parameter %q has no value", k).At(k)
			}
		}
	}
	q, err := s.parseSearch(typ, cond)
	if err != nil {
		return nil, err
	}
	q.Count, q.Offset = 2, 0
	res, err := s.Store.SearchResources(ctx, q)
	if err != nil {
		return nil, err
	}
	switch res.Total {
	case 0:
		return nil, nil
	case 1:
		return res.Resources[0], nil
	}
	return nil, linkbridge.Errorf(linkbridge.EPRECONDITION, "If-None-Exist matched %d resources", res.Total)
}

// baseURL is the absolute base of the FHIR API as the caller reached it.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir"
}
