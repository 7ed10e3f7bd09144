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
	var resources []resource
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
		"fhirVersion": "4.0.1",
		"format":      []string{"application/fhir+json", "json", "application/fhir+xml", "xml"},
		"rest":        []any{rest},
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

// handleMetadata answers GET /fhir/metadata.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", ContentTypeFHIR)
	_, _ = w.Write(s.capability)
}
