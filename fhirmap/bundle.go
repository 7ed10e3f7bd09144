package fhirmap

import (
	"fmt"
	"slices"
	"strings"

	"github.com/linkbridge/linkbridge"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	mhpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/message_header_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
)

// BaRS message vocabulary (docs/referral-exchange.md#bars-messages).
const (
	// BaRSEventSystem is the BaRS message event code system.
	BaRSEventSystem = "https://fhir.nhs.uk/CodeSystem/message-events-bars"
	// BaRSReasonSystem is the BaRS message reason code system.
	BaRSReasonSystem = "https://fhir.nhs.uk/CodeSystem/message-reason-bars"
	// EventServiceRequestRequest is the BaRS event of a referral request.
	EventServiceRequestRequest = "servicerequest-request"
)

// TransactionEntries checks a transaction Bundle (every entry a POST of a
// resource, url naming its type) and returns its entries.
func TransactionEntries(b *rpb.Bundle) ([]*Entry, error) {
	if t := Code(b.GetType()); t != "transaction" {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "Bundle.type must be transaction, not %q", t).At("Bundle.type")
	}
	if len(b.GetEntry()) == 0 {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "transaction Bundle has no entries").At("Bundle.entry")
	}
	entries := make([]*Entry, 0, len(b.GetEntry()))
	for i, be := range b.GetEntry() {
		path := fmt.Sprintf("Bundle.entry[%d]", i)
		res := Unwrap(be.GetResource())
		if res == nil {
			return nil, linkbridge.Errorf(linkbridge.EINVALID, "transaction entry has no resource").At(path + ".resource")
		}
		req := be.GetRequest()
		if req == nil {
			return nil, linkbridge.Errorf(linkbridge.EINVALID, "transaction entry has no request").At(path + ".request")
		}
		if m := Code(req.GetMethod()); m != "post" {
			return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "linkbridge accepts referral transactions of POST entries only, not %s", strings.ToUpper(m)).At(path + ".request.method")
		}
		url := req.GetUrl().GetValue()
		if typ := TypeName(res); strings.TrimSuffix(url, "/") != typ {
			return nil, linkbridge.Errorf(linkbridge.EINVALID, "entry request.url %q does not match its %s resource", url, typ).At(path + ".request.url")
		}
		entries = append(entries, &Entry{FullURL: be.GetFullUrl().GetValue(), Resource: res, Path: path})
	}
	return entries, nil
}

// BaRSMessageDefinitionPrefix begins the canonical URL of every BaRS
// service request MessageDefinition (a referral:
// .../bars-message-servicerequest-request-referral; a cancellation and
// other use cases follow the same stem).
const BaRSMessageDefinitionPrefix = "https://fhir.nhs.uk/MessageDefinition/bars-message-servicerequest-request"

// Message is a BaRS-style message Bundle after its header is checked.
type Message struct {
	// Header is the MessageHeader (the first entry).
	Header *mhpb.MessageHeader
	// Event is the eventCoding code, Reason the reason code (new, update,
	// delete).
	Event, Reason string
	// Entries are the other entries; Focus is the ServiceRequest the header
	// focuses on.
	Entries []*Entry
	Focus   *Entry
}

// MapMessage checks a message Bundle: type message, MessageHeader first, a
// known event and reason, and a focus that resolves to a ServiceRequest in
// the Bundle (BaRS: docs/referral-exchange.md#bars-messages;
// docs/conformance.md rows 3 and 5).
func MapMessage(b *rpb.Bundle) (*Message, error) {
	if t := Code(b.GetType()); t != "message" {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "Bundle.type must be message, not %q", t).At("Bundle.type")
	}
	if len(b.GetEntry()) == 0 {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "message Bundle has no entries").At("Bundle.entry")
	}
	mh := b.GetEntry()[0].GetResource().GetMessageHeader()
	if mh == nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "the first entry of a message Bundle must be a MessageHeader").At("Bundle.entry[0].resource")
	}
	msg := &Message{Header: mh}
	ev := mh.GetEvent().GetCoding()
	msg.Event = ev.GetCode().GetValue()
	if ev.GetSystem().GetValue() != BaRSEventSystem || msg.Event != EventServiceRequestRequest {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "MessageHeader.eventCoding must be %s#%s", BaRSEventSystem, EventServiceRequestRequest).At("MessageHeader.eventCoding").AsInvariant()
	}
	for _, c := range mh.GetReason().GetCoding() {
		if c.GetSystem().GetValue() == BaRSReasonSystem {
			msg.Reason = c.GetCode().GetValue()
		}
	}
	switch msg.Reason {
	case "new", "update":
	default:
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "MessageHeader.reason must be %s new or update, not %q", BaRSReasonSystem, msg.Reason).At("MessageHeader.reason").AsInvariant()
	}
	// BaRS: the header names the MessageDefinition its payload follows,
	// and every resource of a message carries meta.lastUpdated.
	if def := mh.GetDefinition().GetValue(); def != "" && !strings.HasPrefix(def, BaRSMessageDefinitionPrefix) {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "MessageHeader.definition %q is not a BaRS service request MessageDefinition (%s...)", def, BaRSMessageDefinitionPrefix).At("MessageHeader.definition").AsInvariant()
	}
	if mh.GetMeta().GetLastUpdated() == nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "a BaRS message's resources carry meta.lastUpdated; the MessageHeader has none").At("MessageHeader.meta.lastUpdated")
	}
	for i, be := range b.GetEntry()[1:] {
		res := Unwrap(be.GetResource())
		if res == nil {
			return nil, linkbridge.Errorf(linkbridge.EINVALID, "message entry has no resource").At(fmt.Sprintf("Bundle.entry[%d].resource", i+1))
		}
		msg.Entries = append(msg.Entries, &Entry{FullURL: be.GetFullUrl().GetValue(), Resource: res, Path: fmt.Sprintf("Bundle.entry[%d]", i+1)})
	}
	if len(mh.GetFocus()) == 0 {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "MessageHeader.focus is required").At("MessageHeader.focus")
	}
	ix := newIndex(msg.Entries)
	msg.Focus = ix.resolve(mh.GetFocus()[0])
	if msg.Focus == nil {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "MessageHeader.focus does not resolve to an entry of the Bundle").At("MessageHeader.focus")
	}
	if _, ok := msg.Focus.Resource.(*srpb.ServiceRequest); !ok {
		return nil, linkbridge.Errorf(linkbridge.EINVALID, "MessageHeader.focus must be a ServiceRequest, not %s", TypeName(msg.Focus.Resource)).At("MessageHeader.focus")
	}
	return msg, nil
}

// ReceiverODS is the ODS code of the organisation the message names as its
// receiver (MessageHeader.destination.receiver: by ODS identifier on the
// reference, or an Organization, PractitionerRole or HealthcareService
// among the message's entries), "" when it names none.
func (m *Message) ReceiverODS() string {
	ix := newIndex(ExpandContained(slices.Clip(m.Entries)))
	for _, d := range m.Header.GetDestination() {
		if ods := odsOf(d.GetReceiver(), ix, 0); ods != "" {
			if code, err := linkbridge.NormalizeODSCode(ods); err == nil {
				return code
			}
		}
	}
	return ""
}
