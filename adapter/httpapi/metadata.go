package httpapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/linkbridge/linkbridge/fhirmap"
)

// renderCapabilityStatement builds the CapabilityStatement from the routes
// and the search parameter table (fhirmap.SearchParameters; _include and
// _revinclude from includes and revIncludes, read from it too), parses it with google/fhir (so it is checked like any
// resource) and renders it once (docs/referral-exchange.md#capabilitystatement).
func (s *Server) renderCapabilityStatement() ([]byte, error) {
	type param struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	type interaction struct {
		Code string `json:"code"`
	}
	type resource struct {
		Type              string        `json:"type"`
		Interaction       []interaction `json:"interaction"`
		Versioning        string        `json:"versioning"`
		ReadHistory       bool          `json:"readHistory"`
		UpdateCreate      bool          `json:"updateCreate"`
		ConditionalCreate bool          `json:"conditionalCreate,omitempty"`
		ConditionalUpdate bool          `json:"conditionalUpdate"`
		SearchInclude     []string      `json:"searchInclude,omitempty"`
		SearchRevInclude  []string      `json:"searchRevInclude,omitempty"`
		SearchParam       []param       `json:"searchParam"`
	}
	var resources []any
	for _, t := range fhirmap.SearchTypes() {
		res := resource{Type: t, Versioning: "versioned", ReadHistory: true,
			Interaction: []interaction{{"read"}, {"vread"}, {"history-instance"}, {"search-type"}}}
		switch t {
		case "ServiceRequest", "Task":
			res.Interaction = append(res.Interaction, interaction{"create"}, interaction{"update"})
			res.ConditionalCreate = true
		}
		for inc := range includes {
			if strings.HasPrefix(inc, t+":") {
				res.SearchInclude = append(res.SearchInclude, inc)
			}
		}
		sort.Strings(res.SearchInclude)
		res.SearchRevInclude = revIncludes[t]
		for _, p := range fhirmap.SearchParameters(t) {
			res.SearchParam = append(res.SearchParam, param{p.Name, string(p.Type)})
		}
		resources = append(resources, res)
	}
	if s.Audit != nil {
		resources = append(resources, resource{Type: "AuditEvent", Versioning: "no-version",
			Interaction: []interaction{{"read"}, {"search-type"}},
			SearchParam: []param{{"date", "date"}, {"agent", "token"}, {"entity", "reference"}, {"outcome", "token"}, {"organization", "token"}}})
	}
	if s.Subscriptions != nil {
		resources = append(resources, s.subscriptionCapabilities()...)
	}
	rest := map[string]any{
		"mode":        "server",
		"resource":    resources,
		"interaction": []interaction{{"transaction"}},
		"operation": []any{map[string]any{
			"name":       "process-message",
			"definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
		}},
	}
	if s.Auth != nil {
		rest["security"] = map[string]any{
			"service": []any{map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}}}},
			"description": "OAuth2 bearer JWTs (SMART Backend Services: RS256/ES256, system/ scopes) or TLS client certificates, " +
				"each mapped to a registered client, its organisation (ODS code) and role; resources outside the caller's organisations are not found.",
		}
	}
	cs := map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2026-11-22",
		"publisher":    "linkbridge",
		"kind":         "instance",
		"software":     map[string]any{"name": "linkbridge"},
		"implementation": map[string]any{
			"description": "linkbridge: GP referrals to social prescribing, and the link worker's record back to the GP record",
		},
		"fhirVersion":  "4.0.1",
		"instantiates": s.instantiates(),
		"format":       []string{"application/fhir+json", "json", "application/fhir+xml", "xml"},
		"rest":         []any{rest},
	}
	raw, err := json.Marshal(cs)
	if err != nil {
		return nil, err
	}
	cr, err := s.Codec.Decode(raw)
	if err != nil {
		return nil, err
	}
	return s.Codec.Encode(cr)
}

// instantiates names the CapabilityStatements the server meets: the
// Subscriptions Backport IG's R4 server when it serves subscriptions.
func (s *Server) instantiates() []string {
	if s.Subscriptions == nil {
		return nil
	}
	return []string{"http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4"}
}

// subscriptionCapabilities declares Subscription (the backport profile,
// its interactions, search parameters and operations, and the topics as
// capabilitystatement-subscriptiontopic-canonical extensions) and Basic
// (the topics, read and searched), docs/subscriptions.md.
func (s *Server) subscriptionCapabilities() []any {
	var topics []any
	for _, t := range s.Systems.Topics() {
		topics = append(topics, map[string]any{"url": fhirmap.ExtTopicCanonical, "valueCanonical": t.URL})
	}
	code := func(c string) map[string]any { return map[string]any{"code": c} }
	return []any{
		map[string]any{
			"type": "Subscription", "extension": topics,
			"supportedProfile": []string{fhirmap.ProfileBackportSubscription},
			"interaction":      []any{code("create"), code("read"), code("delete"), code("search-type")},
			"versioning":       "versioned", "readHistory": false, "updateCreate": false,
			"searchParam": []any{
				map[string]any{"name": "_id", "type": "token"},
				map[string]any{"name": "status", "type": "token", "definition": "http://hl7.org/fhir/SearchParameter/Subscription-status"},
				map[string]any{"name": "url", "type": "uri", "definition": "http://hl7.org/fhir/SearchParameter/Subscription-url"},
				map[string]any{"name": "criteria", "type": "string", "definition": "http://hl7.org/fhir/SearchParameter/Subscription-criteria"},
			},
			"operation": []any{
				map[string]any{"name": "status", "definition": fhirmap.OpStatus},
				map[string]any{"name": "events", "definition": fhirmap.OpEvents},
			},
		},
		map[string]any{
			"type": "Basic", "profile": "http://hl7.org/fhir/StructureDefinition/Basic",
			"documentation": "linkbridge's subscription topics, as the Subscriptions Backport IG represents a SubscriptionTopic in R4 (code fhir-types#SubscriptionTopic)",
			"interaction":   []any{code("read"), code("search-type")},
			"searchParam": []any{
				map[string]any{"name": "code", "type": "token"}, map[string]any{"name": "url", "type": "uri"},
				map[string]any{"name": "_id", "type": "token"},
			},
		},
	}
}

// handleMetadata answers GET /fhir/metadata.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", ContentTypeFHIR)
	_, _ = w.Write(s.capability)
}
