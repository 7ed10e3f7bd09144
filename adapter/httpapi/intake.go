package httpapi

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

// handleTransaction answers POST /fhir with a referral transaction Bundle.
func (s *Server) handleTransaction(w http.ResponseWriter, r *http.Request) error {
	bundle, body, err := readAs[*rpb.Bundle](s, w, r, "POST to the base URL", "")
	if err != nil {
		return err
	}
	entries, err := fhirmap.TransactionEntries(bundle)
	if err != nil {
		return err
	}
	attachRaw(body, entries, 0)
	out, err := s.in.Receive(r.Context(), entries, "")
	if err != nil {
		return err
	}
	resp := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("transaction-response"), Timestamp: fhirmap.Instant(s.now())}
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
	return s.writeBundle(w, resp, be)
}

// handleCreate answers POST /fhir/{typ}: for ServiceRequest a referral
// without a Task (the gateway creates the referral Task itself); for Task
// (SDOH "direct") a Task whose focus ServiceRequest is contained in it or
// already held by the gateway.
func (s *Server) handleCreate(typ string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		res, raw, err := s.readResource(w, r)
		if err != nil {
			return err
		}
		if got := fhirmap.TypeName(res); got != typ {
			return linkbridge.Errorf(linkbridge.EINVALID, "POST /%s takes a %s, not %s", typ, typ, got).At(got)
		}
		ctx := r.Context()
		// Conditional create (If-None-Exist): one match returns it, several 412.
		if cond := r.Header.Get("If-None-Exist"); cond != "" {
			found, err := s.conditionalMatch(ctx, typ, cond)
			if err != nil {
				return err
			}
			if found != nil {
				return s.writeWriteResult(w, r, found, http.StatusOK, "Resource already exists; nothing was created.")
			}
		}
		if t, ok := res.(*taskpb.Task); ok {
			// A Task whose focus is a ServiceRequest this gateway holds
			// tracks a referral that already has its Task: answer with that
			// Task.
			found, err := s.in.TaskOf(ctx, t)
			if err != nil {
				return err
			}
			if found != nil {
				return s.writeWriteResult(w, r, found, http.StatusOK, "The referral already has a Task; nothing was created.")
			}
		}
		out, err := s.in.Receive(ctx, []*fhirmap.Entry{{Resource: res, Path: typ, Raw: raw}}, "")
		if err != nil {
			return err
		}
		stored := out.ServiceRequest
		if typ == "Task" {
			stored = out.Task
		}
		if !out.Created {
			return s.writeWriteResult(w, r, stored, http.StatusOK, "The referral is already held; nothing was created.")
		}
		return s.writeWriteResult(w, r, stored, http.StatusCreated, "Referral created.")
	}
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
	sr, err := parseSearch(typ, vals, false)
	if err != nil {
		return nil, err
	}
	q := sr.q
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
