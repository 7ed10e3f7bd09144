package refgp

import (
	"net/http"
)

// CapabilityStatement describes exactly what the endpoint implements in its
// mode; the gateway's write-back client reads updateCreate and
// conditionalUpdate to pick its write mode. Per type: updateCreate only
// with AllowClientIDs; conditionalCreate and conditionalUpdate always;
// conditionalDelete not-supported; the delete interaction unless NoDelete;
// referencePolicy literal and logical, and enforced unless AllowClientIDs.
// It declares neither resolves (the endpoint does not turn a logical
// reference into a literal one) nor local (it accepts absolute references
// to other servers, unchecked).
func (s *Server) CapabilityStatement(baseURL string) map[string]any {
	var params []any
	for _, p := range SearchParams {
		typ := "token"
		switch p {
		case "patient", "subject":
			typ = "reference"
		case "_lastUpdated":
			typ = "date"
		case "_count":
			typ = "number"
		}
		params = append(params, map[string]any{"name": p, "type": typ})
	}
	policy := []any{"literal", "logical"}
	if !s.opts.AllowClientIDs {
		policy = append(policy, "enforced")
	}
	var resources []any
	for _, t := range Types {
		inter := []any{}
		codes := []string{"read", "vread", "update", "history-instance", "create", "search-type"}
		if !s.opts.NoDelete {
			codes = append(codes, "delete")
		}
		for _, c := range codes {
			inter = append(inter, map[string]any{"code": c})
		}
		ps := []any{}
		for _, p := range params {
			switch p.(map[string]any)["name"] {
			case "patient", "subject", "patient.identifier", "patient:identifier", "subject:identifier":
				if t == "Patient" {
					continue
				}
			case "identifier":
				if !hasIdentifier(t) { // Provenance: keyed and found by _tag
					continue
				}
			}
			ps = append(ps, p)
		}
		resources = append(resources, map[string]any{
			"type":              t,
			"interaction":       inter,
			"versioning":        "versioned-update",
			"readHistory":       true,
			"updateCreate":      s.opts.AllowClientIDs,
			"conditionalCreate": true,
			"conditionalUpdate": true,
			"conditionalDelete": "not-supported",
			"referencePolicy":   policy,
			"searchParam":       ps,
		})
	}
	security := map[string]any{"cors": false}
	if s.opts.Token != "" {
		security["service"] = []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}}}}
		security["description"] = "Bearer token required"
	}
	return map[string]any{
		"resourceType": "CapabilityStatement",
		"status":       "active",
		"date":         "2026-11-22",
		"kind":         "instance",
		"software":     map[string]any{"name": "linkbridge reference GP record endpoint"},
		"implementation": map[string]any{
			"description": "Reference GP record endpoint (linkbridge reference-gp)",
			"url":         baseURL,
		},
		"fhirVersion": "4.0.1",
		"format":      []any{"application/fhir+json"},
		"rest": []any{map[string]any{
			"mode":     "server",
			"security": security,
			"resource": resources,
		}},
	}
}

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, s.CapabilityStatement(base(r)))
}
