package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/casework"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/intake"

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
func (s *Server) handleProcessMessage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	reqID, corrID := r.Header.Get("X-Request-Id"), r.Header.Get("X-Correlation-Id")
	if reqID == "" || corrID == "" {
		return linkbridge.Errorf(linkbridge.EINVALID, "X-Request-Id and X-Correlation-Id headers are required")
	}
	b, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	// BaRS: a message already processed is refused as a duplicate, with no
	// second effect. (Two copies racing are settled by the store's unique
	// constraint on the request id.) Request ids are the sender's: they are
	// kept per sending organisation, so reusing another organisation's id
	// neither collides nor tells that it was used.
	msgKey := messageKey(r, reqID)
	if seen, err := s.Store.MessageProcessed(ctx, msgKey); err != nil {
		return err
	} else if seen {
		return duplicateMessage()
	}
	res, err := s.decode(b)
	if err != nil {
		return err
	}
	bundle, err := expect[*rpb.Bundle](res, "$process-message", "")
	if err != nil {
		return err
	}
	msg, err := fhirmap.MapMessage(bundle)
	if err != nil {
		return err
	}
	attachRaw(b, msg.Entries, 1)
	var out *intake.Result
	switch msg.Reason {
	case "new":
		// The same referral under a new X-Request-Id records nothing new
		// and is answered with what is held.
		out, err = s.in.ReceiveMessage(ctx, msg, msgKey)
	case "update":
		var rv *casework.Revoked
		if rv, err = s.work.CancelByMessage(ctx, msg.Focus.Resource.(*srpb.ServiceRequest), msg.Entries, msgKey); err == nil {
			out = &intake.Result{ServiceRequest: rv.ServiceRequest, Task: rv.Task, Referral: rv.Referral}
		}
	}
	var le *linkbridge.Error
	if errors.As(err, &le) && le.Code == linkbridge.EDUPLICATE && strings.HasPrefix(le.Existing, "MessageHeader/") {
		return duplicateMessage()
	}
	if err != nil {
		return err
	}
	return s.writeMessageResponse(w, r, msg, out)
}

// writeMessageResponse answers a message synchronously with a response
// message Bundle: a MessageHeader (event servicerequest-response, response
// code ok, focus the Task) followed by the Task and ServiceRequest as
// stored.
func (s *Server) writeMessageResponse(w http.ResponseWriter, r *http.Request, msg *fhirmap.Message, out *intake.Result) error {
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
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("message"), Timestamp: fhirmap.Instant(s.now())}
	entries := []bundleEntry{
		{entry: &rpb.Bundle_Entry{FullUrl: &dpb.Uri{Value: "urn:uuid:" + mh.Id.Value}, Resource: fhirmap.Wrap(mh)}},
		{raw: out.Task.Body, entry: &rpb.Bundle_Entry{FullUrl: &dpb.Uri{Value: base + "/Task/" + out.Task.ID}}},
		{raw: out.ServiceRequest.Body, entry: &rpb.Bundle_Entry{FullUrl: &dpb.Uri{Value: base + "/ServiceRequest/" + out.ServiceRequest.ID}}},
	}
	return s.writeBundle(w, b, entries)
}

// duplicateMessage is the BaRS REC_CONFLICT answer to a replayed message.
func duplicateMessage() error {
	return linkbridge.Errorf(linkbridge.EDUPLICATE, "this message (X-Request-Id) has already been processed")
}

// messageKey is the key a message is kept under: the authenticated sender's
// ODS code and its X-Request-Id ("ODS|id"; the id alone without
// authentication). Messages stored before this kept the bare id.
func messageKey(r *http.Request, reqID string) string {
	if p := linkbridge.PrincipalFromContext(r.Context()); p != nil {
		return p.ODS + "|" + reqID
	}
	return reqID
}
