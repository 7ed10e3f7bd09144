package httpapi

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"

	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

// actorFromRequest is the side of the referral the caller acts for: an
// authenticated caller's by its role (GP systems the requester, services the
// performer); otherwise as set by WithActor, by default the requester.
func actorFromRequest(r *http.Request) linkbridge.Actor {
	if p := linkbridge.PrincipalFromContext(r.Context()); p != nil {
		return p.Actor()
	}
	if a, ok := r.Context().Value(actorKey{}).(linkbridge.Actor); ok {
		return a
	}
	return linkbridge.ActorRequester
}

type actorKey struct{}

// WithActor returns a context whose FHIR writes act for a.
func WithActor(ctx context.Context, a linkbridge.Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// handleUpdateTask answers PUT /fhir/Task/{id}: a status change to the
// referral Task (e.g. the GP cancelling), checked against the SDOH state
// machine. If-Match is honoured (412 on a stale version).
func (s *Server) handleUpdateTask(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	t, _, err := readAs[*taskpb.Task](s, w, r, "PUT /Task/"+id, id)
	if err != nil {
		return err
	}
	ifMatch, err := ifMatchVersion(r)
	if err != nil {
		return err
	}
	stored, err := s.work.UpdateTask(r.Context(), id, t, actorFromRequest(r), ifMatch)
	if err != nil {
		return err
	}
	return s.writeWriteResult(w, r, stored, http.StatusOK, "Task updated.")
}

// handleUpdateServiceRequest answers PUT /fhir/ServiceRequest/{id}: the GP
// revokes a referral (status revoked or entered-in-error), which cancels
// its Task.
func (s *Server) handleUpdateServiceRequest(w http.ResponseWriter, r *http.Request) error {
	id := mux.Vars(r)["id"]
	sr, _, err := readAs[*srpb.ServiceRequest](s, w, r, "PUT /ServiceRequest/"+id, id)
	if err != nil {
		return err
	}
	ifMatch, err := ifMatchVersion(r)
	if err != nil {
		return err
	}
	out, err := s.work.Revoke(r.Context(), id, sr, ifMatch, "")
	if err != nil {
		return err
	}
	return s.writeWriteResult(w, r, out.ServiceRequest, http.StatusOK, "ServiceRequest updated.")
}

// ifMatchVersion returns the version If-Match names, or 0 when none is sent.
func ifMatchVersion(r *http.Request) (int, error) {
	im := r.Header.Get("If-Match")
	if im == "" {
		return 0, nil
	}
	v, ok := parseETag(im)
	if !ok {
		return 0, linkbridge.Errorf(linkbridge.EINVALID, `If-Match must be a version ETag such as W/"3"`)
	}
	return v, nil
}
