package fhirmap

import (
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
)

// ClientIDSystem is the identifier system of registered client ids in
// AuditEvent.agent.who, under DefaultSystemBase (a deployment's own:
// Systems.Client).
const ClientIDSystem = DefaultSystemBase + pathClient

// interactions maps audit operations to FHIR restful-interaction codes.
var interactions = map[string]string{
	"read": "read", "vread": "vread", "history": "history-instance", "search": "search-type",
	"create": "create", "update": "update", "process-message": "operation",
	"sp-read": "read", "sp-list": "search-type", "sp-change": "update", "audit-search": "search-type",
}

// AuditEvent maps an audit record to a FHIR R4 AuditEvent (as JSON, for the
// validating codec): a RESTful operation by the client (agent, with its
// role and source address) for its organisation (a second agent by ODS
// code), naming every resource the request disclosed or wrote, and the
// names, never the values, of the search parameters it used.
func (s Systems) AuditEvent(rec *linkbridge.AuditRecord) map[string]any {
	at := rec.Recorded.UTC()
	who := map[string]any{"display": "unauthenticated caller"}
	if rec.ClientID != "" {
		who = map[string]any{"identifier": map[string]any{"system": s.Client(), "value": rec.ClientID}}
	}
	agent := map[string]any{
		"type":      map[string]any{"coding": []any{map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110153", "display": "Source Role ID"}}},
		"who":       who,
		"requestor": true,
	}
	if rec.Role != "" {
		agent["role"] = []any{map[string]any{"text": string(rec.Role)}}
	}
	if rec.Source != "" {
		agent["network"] = map[string]any{"address": rec.Source, "type": "2"}
	}
	agents := []any{agent}
	if rec.ODS != "" {
		agents = append(agents, map[string]any{
			"type":      map[string]any{"text": "organisation the client acts for"},
			"who":       map[string]any{"identifier": map[string]any{"system": linkbridge.ODSSystem, "value": rec.ODS}},
			"requestor": false,
		})
	}
	var entities []any
	for _, e := range rec.Entities {
		entities = append(entities, map[string]any{"what": map[string]any{"reference": e}})
	}
	if len(rec.Query) > 0 {
		entities = append(entities, map[string]any{
			"type":        map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
			"description": "search parameters used (values not recorded): " + strings.Join(rec.Query, ", "),
		})
	}
	doc := map[string]any{
		"resourceType": "AuditEvent",
		"id":           rec.ID,
		"meta":         map[string]any{"versionId": "1", "lastUpdated": at.Format(time.RFC3339Nano)},
		"type":         map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
		"action":       rec.Action,
		"recorded":     at.Format(time.RFC3339Nano),
		"outcome":      strconv.Itoa(rec.Outcome),
		"outcomeDesc":  "HTTP " + strconv.Itoa(rec.Status) + " " + rec.Method + " " + rec.Route,
		"agent":        agents,
		"source": map[string]any{
			"observer": map[string]any{"display": "linkbridge"},
			"type":     []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}},
		},
	}
	if code, ok := interactions[rec.Operation]; ok {
		doc["subtype"] = []any{map[string]any{"system": "http://hl7.org/fhir/restful-interaction", "code": code}}
	}
	if entities != nil {
		doc["entity"] = entities
	}
	return doc
}
