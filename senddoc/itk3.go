package senddoc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"time"

	r3 "github.com/google/fhir/go/proto/google/fhir/proto/stu3/resources_go_proto"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
)

// ITK3 and CareConnect identifiers used by the message
// (docs/send-document.md#the-message).
const (
	ProfileMessageBundle  = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Message-Bundle-1"
	ProfileMessageHeader  = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-MessageHeader-2"
	ProfileDocumentBundle = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Document-Bundle-1"
	ProfileBinary         = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Attachment-Binary-1"
	ProfileComposition    = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Composition-1"
	ProfilePatient        = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1"
	ProfileOrganization   = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Organization-1"
	ProfilePractitioner   = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Practitioner-1"
	ProfileObservation    = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Observation-1"

	ExtMessageHandling = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-ITK-MessageHandling-2"
	CSMessageHandling  = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageHandling-2"
	CSMessageEvent     = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2"
	CSRecipientType    = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-RecipientType-1"
	CSResponseCodes    = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1"

	// EventSendDocument is the ITK3 event of a GP Connect Send Document
	// message; EventResponse that of an ITK3 response.
	EventSendDocument = "ITK007C"
	EventResponse     = "ITK008M"
	// MessageDefinitionSendDocument is the handling specification's
	// MessageDefinition of the message.
	MessageDefinitionSendDocument = "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-GPConnectSendDocument-MessageDefinition-Instance-1"

	SystemNHSNumber = "https://fhir.nhs.uk/Id/nhs-number"
	SystemODS       = "https://fhir.nhs.uk/Id/ods-organization-code"
	SystemUUID      = "https://tools.ietf.org/html/rfc4122"
	// EndpointODS prefixes an ODS code in MessageHeader endpoints.
	EndpointODS = "urn:nhs-uk:addressing:ods:"
)

// ContentType is the MIME type of the message body on MESH.
const ContentType = "application/fhir+json"

// ParseSTU3 parses and validates an STU3 resource (google/fhir's STU3
// protos, through adapter/fhirjson).
func ParseSTU3(b []byte) (*r3.ContainedResource, error) { return fhirjson.ParseSTU3(b) }

// EncodeSTU3 renders an STU3 resource as FHIR JSON.
func EncodeSTU3(cr *r3.ContainedResource) ([]byte, error) { return fhirjson.EncodeSTU3(cr) }

// canonical parses a resource built as JSON through google/fhir's STU3
// protos, which validates it, and renders it from the protos.
func canonical(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	cr, err := ParseSTU3(b)
	if err != nil {
		return nil, fmt.Errorf("senddoc: the message fails STU3 validation: %w", err)
	}
	return EncodeSTU3(cr)
}

// Message is a rendered ITK3 Send Document message.
type Message struct {
	// Body is the ITK3 message Bundle, FHIR STU3 JSON.
	Body []byte
	// PDF is the primary attachment.
	PDF                   []byte
	MessageID, DocumentID string
}

type obj = map[string]any

func ref(s string) obj { return obj{"reference": s} }

func meta(profile string) obj { return obj{"profile": []string{profile}} }

func handling(key string, value obj) obj {
	return obj{"url": ExtMessageHandling, "extension": []obj{
		{"url": "key", "valueCoding": obj{"system": CSMessageHandling, "code": key}},
		mergeObj(obj{"url": "value"}, value),
	}}
}

func mergeObj(a, b obj) obj {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func urn(id string) string { return "urn:uuid:" + id }

// Build renders the message: an ITK3 message Bundle whose MessageHeader
// (ITK007C, infrastructure and business acknowledgements requested)
// focuses on an ITK-Document-Bundle holding the CareConnect-Composition,
// its subject, author and custodian, the PDF as the primary attachment and
// the coded outcome measures.
func Build(in *Input) (*Message, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	pdf, err := PDF(in)
	if err != nil {
		return nil, err
	}
	c := render(in)
	ref0 := in.Case.Referral
	now := in.Now.UTC().Format(time.RFC3339)
	// Ids of the document's resources: derived from the document id so
	// that one input renders one message.
	rid := func(n int) string { return subID(in.DocumentID, n) }
	patientID, serviceID, practiceID, lwID, compID, binID := rid(1), rid(2), rid(3), rid(4), rid(5), rid(6)

	patient := obj{"resourceType": "Patient", "id": patientID, "meta": meta(ProfilePatient),
		"identifier": []obj{{"system": SystemNHSNumber, "value": in.Patient.NHSNumber}},
		"name":       []obj{nameOf(in.Patient)}, "birthDate": in.Patient.BirthDate,
		"generalPractitioner": []obj{ref(urn(practiceID))}}
	if in.Patient.Gender != "" {
		patient["gender"] = in.Patient.Gender
	}
	org := func(id string, p Party) obj {
		o := obj{"resourceType": "Organization", "id": id, "meta": meta(ProfileOrganization),
			"identifier": []obj{{"system": SystemODS, "value": p.ODS}}}
		if p.Name != "" {
			o["name"] = p.Name
		}
		return o
	}
	lwName := ref0.LinkWorker.Name
	if lwName == "" {
		lwName = "Social prescribing link worker"
	}
	practitioner := obj{"resourceType": "Practitioner", "id": lwID, "meta": meta(ProfilePractitioner),
		"name": []obj{{"text": lwName}}}
	if ref0.LinkWorker.SDSUserID != "" {
		practitioner["identifier"] = []obj{{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": ref0.LinkWorker.SDSUserID}}
	}
	binary := obj{"resourceType": "Binary", "id": binID, "meta": meta(ProfileBinary),
		"contentType": "application/pdf", "content": base64.StdEncoding.EncodeToString(pdf)}

	sections := []obj{{
		"title": Title + " (PDF)",
		"code":  obj{"coding": []obj{{"system": SCTSystem, "code": SCTClinicalConsultationReport, "display": "Clinical consultation report"}}},
		"text":  narrative("<p>" + html.EscapeString(c.title) + ": attached as PDF.</p>"),
		"entry": []obj{ref(urn(binID))},
	}}
	var observations []obj
	for i, s := range c.sections {
		sec := obj{"title": s.title, "text": narrative(table(s.rows))}
		if s.code != "" {
			sec["code"] = obj{"coding": []obj{{"system": SCTSystem, "code": s.code, "display": s.display}}}
		}
		if s.title == "Outcome measures" {
			var entries []obj
			for j, o := range measureObservations(in, patientID, lwID) {
				id := subID(in.DocumentID, 100+10*i+j)
				o["id"] = id
				observations = append(observations, o)
				entries = append(entries, ref(urn(id)))
			}
			if len(entries) > 0 {
				sec["entry"] = entries
			}
		}
		sections = append(sections, sec)
	}
	comp := obj{"resourceType": "Composition", "id": compID, "meta": meta(ProfileComposition),
		"identifier": obj{"system": SystemUUID, "value": in.DocumentID},
		"status":     "final",
		"type":       obj{"coding": []obj{{"system": SCTSystem, "code": SCTClinicalConsultationReport, "display": "Clinical consultation report"}}, "text": Title},
		"subject":    ref(urn(patientID)), "date": now,
		"author": []obj{ref(urn(serviceID)), ref(urn(lwID))},
		"title":  c.title, "confidentiality": "N",
		"custodian": ref(urn(serviceID)),
		"section":   sections}
	if in.Replaces != "" {
		comp["relatesTo"] = []obj{{"code": "replaces", "targetIdentifier": obj{"system": SystemUUID, "value": in.Replaces}}}
	}
	docEntries := []obj{
		{"fullUrl": urn(compID), "resource": comp},
		{"fullUrl": urn(patientID), "resource": patient},
		{"fullUrl": urn(serviceID), "resource": org(serviceID, in.Service)},
		{"fullUrl": urn(practiceID), "resource": org(practiceID, in.Practice)},
		{"fullUrl": urn(lwID), "resource": practitioner},
		{"fullUrl": urn(binID), "resource": binary},
	}
	for _, o := range observations {
		docEntries = append(docEntries, obj{"fullUrl": urn(o["id"].(string)), "resource": o})
	}
	docBundleID := subID(in.DocumentID, 0)
	doc := obj{"resourceType": "Bundle", "id": docBundleID, "meta": meta(ProfileDocumentBundle),
		"identifier": obj{"system": SystemUUID, "value": in.DocumentID}, "type": "document", "entry": docEntries}
	header := obj{"resourceType": "MessageHeader", "id": in.MessageID, "meta": meta(ProfileMessageHeader),
		"extension": []obj{
			handling("BusAckRequested", obj{"valueBoolean": true}),
			handling("InfAckRequested", obj{"valueBoolean": true}),
			handling("RecipientType", obj{"valueCoding": obj{"system": CSRecipientType, "code": "FI", "display": "For Information"}}),
			handling("MessageDefinition", obj{"valueReference": ref(MessageDefinitionSendDocument)}),
			handling("SenderReference", obj{"valueString": "None"}),
			handling("LocalExtension", obj{"valueString": "None"}),
		},
		"event":       obj{"system": CSMessageEvent, "code": EventSendDocument, "display": "ITK GP Connect Send Document"},
		"destination": []obj{{"endpoint": EndpointODS + in.Practice.ODS}},
		"receiver":    ref(urn(practiceID)),
		"sender":      ref(urn(serviceID)),
		"timestamp":   now,
		"source":      obj{"endpoint": EndpointODS + in.Service.ODS},
		"focus":       []obj{ref(urn(docBundleID))},
	}
	msg := obj{"resourceType": "Bundle", "id": in.MessageID, "meta": meta(ProfileMessageBundle),
		"identifier": obj{"system": SystemUUID, "value": in.MessageID}, "type": "message",
		"entry": []obj{
			{"fullUrl": urn(in.MessageID), "resource": header},
			{"fullUrl": urn(docBundleID), "resource": doc},
			// The focus's parties, as ITK3 places them beside the header.
			{"fullUrl": urn(serviceID), "resource": org(serviceID, in.Service)},
			{"fullUrl": urn(practiceID), "resource": org(practiceID, in.Practice)},
		}}
	body, err := canonical(msg)
	if err != nil {
		return nil, err
	}
	return &Message{Body: body, PDF: pdf, MessageID: in.MessageID, DocumentID: in.DocumentID}, nil
}

// measureObservations codes each recorded measure total as a
// CareConnect-Observation (the instruments whose totals have SNOMED
// codes).
func measureObservations(in *Input, patientID, lwID string) []obj {
	var out []obj
	for _, m := range in.Case.Measures {
		if m.Withdrawn() {
			continue
		}
		var code, display string
		switch m.Instrument {
		case "WEMWBS":
			code, display = "718426000", "Warwick-Edinburgh Mental Well-being Scale score"
		case "SWEMWBS":
			code, display = "718466001", "Short Warwick-Edinburgh Mental Well-being Scale score"
		default:
			continue
		}
		out = append(out, obj{"resourceType": "Observation", "meta": meta(ProfileObservation), "status": "final",
			"code":              obj{"coding": []obj{{"system": SCTSystem, "code": code, "display": display}}},
			"subject":           ref(urn(patientID)),
			"effectiveDateTime": m.TakenAt.UTC().Format(time.RFC3339),
			"performer":         []obj{ref(urn(lwID))},
			"valueQuantity":     obj{"value": scoreValue(m), "unit": "score"},
		})
	}
	return out
}

func nameOf(p Patient) obj {
	n := obj{"use": "official", "family": p.Family}
	if p.Given != "" {
		n["given"] = strings.Fields(p.Given)
	}
	return n
}

func narrative(xhtml string) obj {
	return obj{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">` + xhtml + `</div>`}
}

func table(rows []line) string {
	var b strings.Builder
	b.WriteString("<table><tbody>")
	for _, r := range rows {
		if r.value == "" {
			continue
		}
		b.WriteString("<tr><th>" + html.EscapeString(r.label) + "</th><td>" + html.EscapeString(r.value) + "</td></tr>")
	}
	b.WriteString("</tbody></table>")
	return b.String()
}

// subID derives the n-th resource id of a document from its UUID: the
// UUID with its last 4 hex digits replaced by n (mod 65536), so each
// resource has a stable UUID of its own.
func subID(docID string, n int) string {
	if len(docID) != 36 {
		return fmt.Sprintf("%s-%d", docID, n)
	}
	return docID[:32] + fmt.Sprintf("%04x", (n+1)&0xffff)
}
