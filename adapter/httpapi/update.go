package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/fhirmap"

	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
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
func (s *Server) handleUpdateTask(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	res, ok := s.readResource(w, r)
	if !ok {
		return
	}
	t, err := expect[*taskpb.Task](res, "PUT /Task/"+id, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rf, err := s.Store.FindReferralByTaskID(ctx, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cur, err := s.Store.ReadResource(ctx, "Task", id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkIfMatch(r, cur.VersionID); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The referral's identity may not change: same focus, subject, intent.
	if ftyp, fid := fhirmap.RefTarget(t.GetFocus()); ftyp != "ServiceRequest" || fid != rf.ID {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Task.focus cannot change: it must stay ServiceRequest/%s", rf.ID).At("Task.focus"))
		return
	}
	if ptyp, pid := fhirmap.RefTarget(t.GetForValue()); ptyp != "Patient" || pid != rf.PersonID {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Task.for cannot change: it must stay Patient/%s", rf.PersonID).At("Task.for"))
		return
	}
	if fhirmap.Code(t.GetIntent()) != "order" {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "referral Task.intent must be order").At("Task.intent"))
		return
	}
	to := fhirmap.TaskStatusOf(t)
	if err := linkbridge.CheckTaskTransition(rf.Status, to, actorFromRequest(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	next := *rf
	next.Status = to
	next.StatusReason = t.GetStatusReason().GetText().GetValue()
	next.BusinessStatus = t.GetBusinessStatus().GetText().GetValue()
	if to == linkbridge.TaskCancelled && next.StatusReason == "" {
		next.StatusReason = "Cancelled by the referrer"
	}
	fhirmap.ApplyReferralToTask(t, &next, s.now())
	stored, err := s.changeReferral(ctx, &next, cur, t, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeWriteResult(w, r, stored, http.StatusOK, "Task updated.")
}

// handleUpdateServiceRequest answers PUT /fhir/ServiceRequest/{id}: the GP
// revokes a referral (status revoked or entered-in-error), which cancels
// its Task.
func (s *Server) handleUpdateServiceRequest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	res, ok := s.readResource(w, r)
	if !ok {
		return
	}
	sr, err := expect[*srpb.ServiceRequest](res, "PUT /ServiceRequest/"+id, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cur, err := s.Store.ReadResource(ctx, "ServiceRequest", id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkIfMatch(r, cur.VersionID); err != nil {
		s.writeError(w, r, err)
		return
	}
	stored, err := s.revoke(ctx, id, sr, cur, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeWriteResult(w, r, stored, http.StatusOK, "ServiceRequest updated.")
}

// revoke applies a requester's ServiceRequest update that revokes the
// referral (BaRS cancellation): the ServiceRequest gets the new status and
// the Task becomes cancelled (entered-in-error when the SR was raised in
// error).
func (s *Server) revoke(ctx context.Context, id string, sr *srpb.ServiceRequest, cur *linkbridge.Resource, messageID string) (*linkbridge.Resource, error) {
	rf, err := s.Store.FindReferral(ctx, id)
	if err != nil {
		return nil, err
	}
	status := fhirmap.Code(sr.GetStatus())
	var to linkbridge.TaskStatus
	switch status {
	case "revoked":
		to = linkbridge.TaskCancelled
	case "entered-in-error":
		to = linkbridge.TaskEnteredInError
	default:
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "a referral update may only revoke it (status revoked or entered-in-error), not set %q", status).At("ServiceRequest.status")
	}
	if rf.RequestStatus != "active" {
		return nil, linkbridge.Errorf(linkbridge.ECONFLICT, "the ServiceRequest is %s, not active: it cannot be revoked", rf.RequestStatus).At("ServiceRequest.status")
	}
	if err := linkbridge.CheckTaskTransition(rf.Status, to, linkbridge.ActorRequester); err != nil {
		return nil, err
	}
	if ptyp, pid := fhirmap.RefTarget(sr.GetSubject()); ptyp == "Patient" && pid != rf.PersonID {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject cannot change").At("ServiceRequest.subject")
	}
	taskRes, err := s.Store.ReadResource(ctx, "Task", rf.TaskID)
	if err != nil {
		return nil, err
	}
	taskMsg, err := s.decode(taskRes.Body)
	if err != nil {
		return nil, err
	}
	next := *rf
	next.Status, next.RequestStatus = to, status
	next.StatusReason = "Referral revoked by the referrer"
	now := s.now()
	fhirmap.ApplyReferralToTask(taskMsg.(*taskpb.Task), &next, now)

	// The stored ServiceRequest takes the new status; a revocation changes
	// nothing else (BaRS cancellation carries the same referral).
	storedSR, err := s.decode(cur.Body)
	if err != nil {
		return nil, err
	}
	srNext := storedSR.(*srpb.ServiceRequest)
	fhirmap.SetCode(srNext.Status, status)
	next.Version = rf.Version + 1
	next.UpdatedAt = now
	srRes, err := s.renderVersion(srNext, cur.VersionID+1, now)
	if err != nil {
		return nil, err
	}
	taskNext, err := s.renderVersion(taskMsg, taskRes.VersionID+1, now)
	if err != nil {
		return nil, err
	}
	ch := &linkbridge.ReferralChange{Referral: &next, Resources: []*linkbridge.Resource{srRes, taskNext}, MessageID: messageID}
	ch.Audit = access.ForWrite(ctx, ch.Resources)
	if err := s.Store.UpdateReferral(ctx, ch); err != nil {
		return nil, err
	}
	s.Logger.InfoContext(ctx, "referral revoked", slog.String("referral_id", rf.ID), slog.String("task_status", string(to)))
	return srRes, nil
}

// changeReferral stores a new Task version with the referral's new state.
func (s *Server) changeReferral(ctx context.Context, next *linkbridge.Referral, cur *linkbridge.Resource, t proto.Message, messageID string) (*linkbridge.Resource, error) {
	now := s.now()
	next.Version++
	next.UpdatedAt = now
	res, err := s.renderVersion(t, cur.VersionID+1, now)
	if err != nil {
		return nil, err
	}
	ch := &linkbridge.ReferralChange{Referral: next, Resources: []*linkbridge.Resource{res}, MessageID: messageID}
	ch.Audit = access.ForWrite(ctx, ch.Resources)
	if err := s.Store.UpdateReferral(ctx, ch); err != nil {
		return nil, err
	}
	s.Logger.InfoContext(ctx, "referral task changed", slog.String("referral_id", next.ID), slog.String("task_id", next.TaskID), slog.String("status", string(next.Status)))
	return res, nil
}

// renderVersion sets meta and renders a new version of a resource.
func (s *Server) renderVersion(res proto.Message, version int, now time.Time) (*linkbridge.Resource, error) {
	fhirmap.SetMeta(res, version, now)
	params := fhirmap.SearchParams(res) // before Encode, which denormalises references in place
	body, err := s.Codec.Encode(res)
	if err != nil {
		return nil, err
	}
	return &linkbridge.Resource{Type: fhirmap.TypeName(res), ID: fhirmap.ID(res), VersionID: version, LastUpdated: now, Body: body, Params: params}, nil
}

// checkIfMatch compares If-Match (when sent) with the current version.
func checkIfMatch(r *http.Request, current int) error {
	im := r.Header.Get("If-Match")
	if im == "" {
		return nil
	}
	v, ok := parseETag(im)
	if !ok {
		return linkbridge.Errorf(linkbridge.EINVALID, `If-Match must be a version ETag such as W/"3"`)
	}
	if v != current {
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "If-Match version %d is stale: the current version is %d", v, current)
	}
	return nil
}
