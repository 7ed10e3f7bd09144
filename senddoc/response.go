package senddoc

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

// Message definitions that tell an infrastructure acknowledgement from a
// business one (docs/send-document.md#acknowledgements).
const (
	MessageDefinitionInfAck = "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-InfrastructureResponse-MessageDefinition-Instance-1"
	MessageDefinitionBusAck = "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-BusinessResponse-MessageDefinition-Instance-1"
)

// ITK3 response codes used (ITK-ResponseCodes-1).
const (
	CodeSuccess           = "20013" // processed successfully
	CodeHandlingError     = "10001" // handling specification error
	CodeUnreadable        = "10009" // unreadable message received
	CodeHeaderInvalid     = "20006" // ITK3 header validation failure
	CodePayloadInvalid    = "20009" // payload validation failure
	CodeUnknownRecipient  = "20002" // unrecognised recipient organisation
	CodeUnknownPatient    = "200001"
	codeDisplaySuccess    = "Success"
	codeDisplayValidation = "Payload validation failure"
)

// Response is an ITK3 response to a message.
type Response struct {
	// ForMessageID is the MessageHeader.id of the message answered.
	ForMessageID string
	// Business marks a business acknowledgement (else infrastructure).
	Business bool
	// OK is a positive acknowledgement.
	OK bool
	// Code and Diagnostics are the OperationOutcome issue's ITK3 response
	// code and text.
	Code, Diagnostics string
	// Outcome is the OperationOutcome (STU3 JSON) as received.
	Outcome []byte
}

// BuildResponse renders r as an ITK3 response message (ITK008M) from the
// receiver to the sender, with id as its message id.
func BuildResponse(r Response, id string, from, to Party, now time.Time) ([]byte, error) {
	def := MessageDefinitionInfAck
	if r.Business {
		def = MessageDefinitionBusAck
	}
	code, sev, issue, display := "ok", "information", "informational", codeDisplaySuccess
	if !r.OK {
		code, sev, issue, display = "fatal-error", "fatal", "invalid", codeDisplayValidation
	}
	ooID, fromID, toID := subID(id, 1), subID(id, 2), subID(id, 3)
	oo := obj{"resourceType": "OperationOutcome", "id": ooID, "issue": []obj{{
		"severity": sev, "code": issue,
		"details":     obj{"coding": []obj{{"system": CSResponseCodes, "code": r.Code, "display": display}}},
		"diagnostics": r.Diagnostics,
	}}}
	if r.Diagnostics == "" {
		delete(oo["issue"].([]obj)[0], "diagnostics")
	}
	org := func(oid string, p Party) obj {
		return obj{"resourceType": "Organization", "id": oid, "meta": meta(ProfileOrganization),
			"identifier": []obj{{"system": SystemODS, "value": p.ODS}}}
	}
	ts := now.UTC().Format(time.RFC3339)
	header := obj{"resourceType": "MessageHeader", "id": id, "meta": meta(ProfileMessageHeader),
		"extension": []obj{
			handling("BusAckRequested", obj{"valueBoolean": false}),
			handling("InfAckRequested", obj{"valueBoolean": false}),
			handling("RecipientType", obj{"valueCoding": obj{"system": CSRecipientType, "code": "FI", "display": "For Information"}}),
			handling("MessageDefinition", obj{"valueReference": ref(def)}),
			handling("SenderReference", obj{"valueString": "None"}),
			handling("LocalExtension", obj{"valueString": "None"}),
		},
		"event":       obj{"system": CSMessageEvent, "code": EventResponse, "display": "ITK Response"},
		"destination": []obj{{"endpoint": EndpointODS + to.ODS}},
		"receiver":    ref(urn(toID)), "sender": ref(urn(fromID)), "timestamp": ts,
		"source":   obj{"endpoint": EndpointODS + from.ODS},
		"response": obj{"identifier": r.ForMessageID, "code": code, "details": ref(urn(ooID))},
	}
	msg := obj{"resourceType": "Bundle", "id": id, "meta": meta(ProfileMessageBundle),
		"identifier": obj{"system": SystemUUID, "value": id}, "type": "message",
		"entry": []obj{
			{"fullUrl": urn(id), "resource": header},
			{"fullUrl": urn(ooID), "resource": oo},
			{"fullUrl": urn(fromID), "resource": org(fromID, from)},
			{"fullUrl": urn(toID), "resource": org(toID, to)},
		}}
	return canonical(msg)
}

// ParseResponse reads an ITK3 response message, JSON or XML (validated by
// google/fhir's STU3 protos).
func ParseResponse(b []byte) (*Response, error) {
	b, err := asJSON(b)
	if err != nil {
		return nil, fmt.Errorf("senddoc: response is not STU3 XML: %w", err)
	}
	if _, err := ParseSTU3(b); err != nil {
		return nil, fmt.Errorf("senddoc: response is not STU3: %w", err)
	}
	j := fhirjson.ParseJSON(b)
	h := j.Get(`entry.#(resource.resourceType=="MessageHeader").resource`)
	if h.Get("event.code").String() != EventResponse {
		return nil, fmt.Errorf("senddoc: not an ITK3 response (event %q)", h.Get("event.code").String())
	}
	r := &Response{ForMessageID: h.Get("response.identifier").String(), OK: h.Get("response.code").String() == "ok"}
	for _, e := range h.Get("extension").Array() {
		if e.Get(`extension.#(url=="key").valueCoding.code`).String() == "MessageDefinition" {
			r.Business = e.Get(`extension.#(url=="value").valueReference.reference`).String() == MessageDefinitionBusAck
		}
	}
	details := h.Get("response.details.reference").String()
	for _, e := range j.Get("entry").Array() {
		if e.Get("fullUrl").String() == details && e.Get("resource.resourceType").String() == "OperationOutcome" {
			oo := e.Get("resource")
			r.Outcome = []byte(oo.Raw)
			r.Code = oo.Get(`issue.0.details.coding.0.code`).String()
			r.Diagnostics = oo.Get("issue.0.diagnostics").String()
		}
	}
	if r.ForMessageID == "" {
		return nil, fmt.Errorf("senddoc: response names no message")
	}
	return r, nil
}

// Received is a validated Send Document message as a GP inbox files it.
type Received struct {
	MessageID, DocumentID string
	SenderODS, NHSNumber  string
	Title                 string
	BusAck, InfAck        bool
	PDF                   []byte
	// Replaces is the DocumentID the document replaces, if any.
	Replaces string
}

// Invalid is a validation failure with its ITK3 response code.
type Invalid struct {
	MessageID, Code, Diagnostics string
}

func (e *Invalid) Error() string { return "senddoc: " + e.Code + ": " + e.Diagnostics }

// Validate checks a received Send Document message, JSON or XML, as a GP
// inbox does: it parses as STU3 (10009), its header is an ITK3 header with the handling
// specification and event ITK007C (20006, 10001), its focus is an
// ITK-Document-Bundle whose CareConnect-Composition names custodian,
// subject and author and whose first section's entry is a Base64 PDF
// attachment, and its profiles are the iteration's (20009).
func Validate(b []byte) (*Received, error) {
	b, err := asJSON(b)
	if err != nil {
		return nil, &Invalid{Code: CodeUnreadable, Diagnostics: "not readable FHIR STU3 XML: " + err.Error()}
	}
	if _, err := ParseSTU3(b); err != nil {
		return nil, &Invalid{Code: CodeUnreadable, Diagnostics: "not a readable FHIR STU3 resource: " + err.Error()}
	}
	j := fhirjson.ParseJSON(b)
	h := j.Get("entry.0.resource")
	id := h.Get("id").String()
	bad := func(code, f string, a ...any) error {
		return &Invalid{MessageID: id, Code: code, Diagnostics: fmt.Sprintf(f, a...)}
	}
	if j.Get("resourceType").String() != "Bundle" || j.Get("type").String() != "message" {
		return nil, bad(CodeHeaderInvalid, "Bundle.type must be message")
	}
	if h.Get("resourceType").String() != "MessageHeader" || id == "" {
		return nil, bad(CodeHeaderInvalid, "Bundle.entry[0] must be the MessageHeader")
	}
	if !hasProfile(j, ProfileMessageBundle) || !hasProfile(h, ProfileMessageHeader) {
		return nil, bad(CodeHeaderInvalid, "the Bundle and MessageHeader must claim ITK-Message-Bundle-1 and ITK-MessageHeader-2")
	}
	if h.Get("event.system").String() != CSMessageEvent || h.Get("event.code").String() != EventSendDocument {
		return nil, bad(CodeHeaderInvalid, "MessageHeader.event must be ITK007C")
	}
	keys := map[string]fhirjson.JSONValue{}
	for _, e := range h.Get("extension").Array() {
		if e.Get("url").String() == ExtMessageHandling {
			keys[e.Get(`extension.#(url=="key").valueCoding.code`).String()] = e.Get(`extension.#(url=="value")`)
		}
	}
	for _, k := range []string{"BusAckRequested", "InfAckRequested", "RecipientType", "MessageDefinition", "SenderReference", "LocalExtension"} {
		if !keys[k].Exists() {
			return nil, bad(CodeHandlingError, "MessageHeader handling specification %s is missing", k)
		}
	}
	if keys["MessageDefinition"].Get("valueReference.reference").String() != MessageDefinitionSendDocument {
		return nil, bad("10004", "MessageDefinition is not the Send Document message definition")
	}
	rec := &Received{MessageID: id, BusAck: keys["BusAckRequested"].Get("valueBoolean").Bool(), InfAck: keys["InfAckRequested"].Get("valueBoolean").Bool()}
	rec.SenderODS = strings.TrimPrefix(h.Get("source.endpoint").String(), EndpointODS)
	focus := h.Get("focus.0.reference").String()
	var doc fhirjson.JSONValue
	for _, e := range j.Get("entry").Array() {
		if e.Get("fullUrl").String() == focus {
			doc = e.Get("resource")
		}
	}
	if !doc.Exists() || doc.Get("type").String() != "document" || !hasProfile(doc, ProfileDocumentBundle) {
		return nil, bad(CodePayloadInvalid, "MessageHeader.focus must reference an ITK-Document-Bundle-1 in the message")
	}
	rec.DocumentID = doc.Get("identifier.value").String()
	entries := map[string]fhirjson.JSONValue{}
	for _, e := range doc.Get("entry").Array() {
		entries[e.Get("fullUrl").String()] = e.Get("resource")
		if p := e.Get("resource.meta.profile.0").String(); !allowedProfiles[p] {
			return nil, bad(CodePayloadInvalid, "profile %q is not one of this iteration's", p)
		}
	}
	comp := doc.Get("entry.0.resource")
	if comp.Get("resourceType").String() != "Composition" {
		return nil, bad(CodePayloadInvalid, "the document Bundle's first entry must be the Composition")
	}
	for _, f := range []string{"custodian", "subject", "author.0"} {
		if _, ok := entries[comp.Get(f+".reference").String()]; !ok {
			return nil, bad(CodePayloadInvalid, "Composition.%s must reference a resource in the document", strings.TrimSuffix(f, ".0"))
		}
	}
	pat := entries[comp.Get("subject.reference").String()]
	rec.NHSNumber = pat.Get(`identifier.#(system=="` + SystemNHSNumber + `").value`).String()
	if rec.NHSNumber == "" {
		return nil, bad(CodePayloadInvalid, "the subject has no NHS number")
	}
	rec.Title = comp.Get("title").String()
	bin := entries[comp.Get("section.0.entry.0.reference").String()]
	if bin.Get("resourceType").String() != "Binary" || bin.Get("contentType").String() != "application/pdf" {
		return nil, bad(CodePayloadInvalid, "the first section must reference the primary attachment, a PDF Binary")
	}
	pdf, err := base64.StdEncoding.DecodeString(bin.Get("content").String())
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
		return nil, bad(CodePayloadInvalid, "the primary attachment is not Base64 PDF")
	}
	rec.PDF = pdf
	if rt := comp.Get(`relatesTo.#(code=="replaces")`); rt.Exists() {
		rec.Replaces = rt.Get("targetIdentifier.value").String()
	}
	return rec, nil
}

var allowedProfiles = map[string]bool{ProfileComposition: true, ProfilePatient: true, ProfileOrganization: true,
	ProfilePractitioner: true, ProfileBinary: true, ProfileObservation: true}

func hasProfile(r fhirjson.JSONValue, p string) bool {
	for _, v := range r.Get("meta.profile").Array() {
		if v.String() == p {
			return true
		}
	}
	return false
}

// Address is the automatic-routing address of a message's patient,
// GPPROVIDER_<NHS number>_<DDMMYYYY>_<surname>, read from the message.
func Address(body []byte) (string, error) {
	j := fhirjson.ParseJSON(body)
	doc := j.Get("entry.1.resource")
	comp := doc.Get("entry.0.resource")
	subj := comp.Get("subject.reference").String()
	var pat fhirjson.JSONValue
	for _, e := range doc.Get("entry").Array() {
		if e.Get("fullUrl").String() == subj {
			pat = e.Get("resource")
		}
	}
	nhs := pat.Get(`identifier.#(system=="` + SystemNHSNumber + `").value`).String()
	dob, err := time.Parse("2006-01-02", pat.Get("birthDate").String())
	family := pat.Get("name.0.family").String()
	if nhs == "" || err != nil || family == "" {
		return "", fmt.Errorf("senddoc: the message's patient lacks an NHS number, birth date or family name")
	}
	surname := strings.Map(func(r rune) rune {
		if r == ' ' || r == '_' {
			return -1
		}
		return r
	}, family)
	return "GPPROVIDER_" + nhs + "_" + dob.Format("02012006") + "_" + surname, nil
}

// Header reads the message id and the practice's ODS code of a message.
func Header(body []byte) (messageID, practiceODS string) {
	h := fhirjson.ParseJSON(body).Get("entry.0.resource")
	return h.Get("id").String(), strings.TrimPrefix(h.Get("destination.0.endpoint").String(), EndpointODS)
}
