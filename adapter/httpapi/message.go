package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	mhpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/message_header_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
)

// handleProcessMessage answers POST /fhir/$process-message with a BaRS-style
// message Bundle: a new referral (reason new) or a cancellation (reason
// update, focus ServiceRequest revoked). X-Request-Id and X-Correlation-Id
// are required; a replayed X-Request-Id is refused with 409 duplicate and
// has no second effect.
func (s *Server) handleProcessMessage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	reqID, corrID := r.Header.Get("X-Request-Id"), r.Header.Get("X-Correlation-Id")
	if reqID == "" || corrID == "" {
		s.writeError(w, r, linkbridge.Errorf(linkbridge.EINVALID, "X-Request-Id and X-Correlation-Id headers are required"))
		return
	}
	b, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// BaRS: a message already processed is refused as a duplicate, with no
	// second effect. (Two copies racing are settled by the store's unique
	// constraint on the request id.)
	if seen, err := s.Store.MessageProcessed(ctx, reqID); err != nil {
		s.writeError(w, r, err)
		return
	} else if seen {
		s.writeError(w, r, duplicateMessage())
		return
	}
	res, err := s.decode(b)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	bundle, err := expect[*rpb.Bundle](res, "$process-message", "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	msg, err := fhirmap.MapMessage(bundle)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	attachRaw(b, msg.Entries, 1)
	var out *intakeResult
	switch msg.Reason {
	case "new":
		out, err = s.intake(ctx, msg.Entries, reqID)
		if err == nil && !out.Created {
			// Same referral under a new X-Request-Id: record nothing new,
			// answer with what is held.
			err = nil
		}
	case "update":
		sr := msg.Focus.Resource.(*srpb.ServiceRequest)
		out, err = s.cancelByMessage(r, sr, reqID)
	}
	var le *linkbridge.Error
	if errors.As(err, &le) && le.Code == linkbridge.EDUPLICATE && strings.HasPrefix(le.Existing, "MessageHeader/") {
		err = duplicateMessage()
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeMessageResponse(w, r, msg, out)
}

// cancelByMessage applies a BaRS cancellation: the focus ServiceRequest must
// be a referral the gateway holds (by id, or by business identifier).
func (s *Server) cancelByMessage(r *http.Request, sr *srpb.ServiceRequest, reqID string) (*intakeResult, error) {
	ctx := r.Context()
	var rf *linkbridge.Referral
	var err error
	for _, id := range sr.GetIdentifier() {
		rf, err = s.Store.FindReferralByIdentifier(ctx, linkbridge.Identifier{System: id.GetSystem().GetValue(), Value: id.GetValue().GetValue()})
		if err == nil {
			break
		}
	}
	if rf == nil {
		if rf, err = s.Store.FindReferral(ctx, fhirmap.ID(sr)); err != nil {
			return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "the ServiceRequest to cancel is not held by this server").At("ServiceRequest.identifier")
		}
	}
	cur, err := s.Store.ReadResource(ctx, "ServiceRequest", rf.ID)
	if err != nil {
		return nil, err
	}
	srRes, err := s.revoke(ctx, rf.ID, sr, cur, reqID)
	if err != nil {
		return nil, err
	}
	task, err := s.Store.ReadResource(ctx, "Task", rf.TaskID)
	if err != nil {
		return nil, err
	}
	return &intakeResult{ServiceRequest: srRes, Task: task, Referral: rf}, nil
}

// writeMessageResponse answers a message synchronously with a response
// message Bundle: a MessageHeader (event servicerequest-response, response
// code ok, focus the Task) followed by the Task and ServiceRequest as
// stored.
func (s *Server) writeMessageResponse(w http.ResponseWriter, r *http.Request, msg *fhirmap.Message, out *intakeResult) {
	base := s.baseURL(r)
	respCode := &mhpb.MessageHeader_Response_CodeType{}
	fhirmap.SetCode(respCode, "ok")
	mh := &mhpb.MessageHeader{
		Id: &dpb.Id{Value: s.newID()},
		Event: &mhpb.MessageHeader_EventX{Choice: &mhpb.MessageHeader_EventX_Coding{Coding: &dpb.Coding{
			System: &dpb.Uri{Value: fhirmap.BaRSEventSystem}, Code: &dpb.Code{Value: "servicerequest-response"},
		}}},
		Source:   &mhpb.MessageHeader_MessageSource{Endpoint: &dpb.Url{Value: base}},
		Response: &mhpb.MessageHeader_Response{Identifier: &dpb.Id{Value: fhirmap.ID(msg.Header)}, Code: respCode},
		Focus:    []*dpb.Reference{fhirmap.NewRef("Task", out.Task.ID)},
	}
	if mh.Response.Identifier.Value == "" {
		mh.Response.Identifier.Value = r.Header.Get("X-Request-Id")
	}
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("message"), Timestamp: instantNow(s.now())}
	entries := []bundleEntry{
		{entry: &rpb.Bundle_Entry{FullUrl: &dpb.Uri{Value: "urn:uuid:" + mh.Id.Value}, Resource: fhirmap.Wrap(mh)}},
		{raw: out.Task.Body, entry: &rpb.Bundle_Entry{FullUrl: &dpb.Uri{Value: base + "/Task/" + out.Task.ID}}},
		{raw: out.ServiceRequest.Body, entry: &rpb.Bundle_Entry{FullUrl: &dpb.Uri{Value: base + "/ServiceRequest/" + out.ServiceRequest.ID}}},
	}
	s.writeBundle(w, r, b, entries)
}

// duplicateMessage is the BaRS REC_CONFLICT answer to a replayed message.
func duplicateMessage() error {
	return linkbridge.Errorf(linkbridge.EDUPLICATE, "this message (X-Request-Id) has already been processed")
}
