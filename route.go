package linkbridge

import (
	"encoding/json"
	"fmt"
	"strings"
)

// SendDocumentType is the ResourceType of a send-document outbox message:
// its Body is an ITK3 message (FHIR STU3) for MESH, not an R4 resource.
const SendDocumentType = "SendDocument"

// WriteBackRoute is how one practice's record is written back to
// (docs/send-document.md#routes).
type WriteBackRoute struct {
	// FHIR writes each resource version to the GP-side FHIR endpoint.
	FHIR bool `json:"fhir"`
	// SendDocument sends a GP Connect Send Document message over MESH at
	// the configured points of the referral.
	SendDocument bool `json:"sendDocument"`
	// Mailbox, when set, addresses the documents to this MESH mailbox
	// instead of by automatic routing to the registered practice.
	Mailbox string `json:"mailbox,omitempty"`
}

// ParseRoute parses a route name: fhir, send-document or both.
func ParseRoute(s string) (WriteBackRoute, error) {
	switch s {
	case "fhir":
		return WriteBackRoute{FHIR: true}, nil
	case "send-document":
		return WriteBackRoute{SendDocument: true}, nil
	case "both":
		return WriteBackRoute{FHIR: true, SendDocument: true}, nil
	}
	return WriteBackRoute{}, Errorf(EINVALID, "write-back route %q is not fhir, send-document or both", s)
}

// String names the route.
func (r WriteBackRoute) String() string {
	switch {
	case r.FHIR && r.SendDocument:
		return "both"
	case r.SendDocument:
		return "send-document"
	case r.FHIR:
		return "fhir"
	}
	return "none"
}

// WriteBackRoutes maps practices (ODS codes) to their routes.
type WriteBackRoutes struct {
	Default   WriteBackRoute
	Practices map[string]WriteBackRoute
}

// For returns the route of a practice.
func (r *WriteBackRoutes) For(ods string) WriteBackRoute {
	if r == nil {
		return WriteBackRoute{FHIR: true}
	}
	if p, ok := r.Practices[strings.ToUpper(ods)]; ok {
		return p
	}
	return r.Default
}

// Any reports whether any practice uses the send-document route.
func (r *WriteBackRoutes) Any() bool {
	if r == nil {
		return false
	}
	if r.Default.SendDocument {
		return true
	}
	for _, p := range r.Practices {
		if p.SendDocument {
			return true
		}
	}
	return false
}

// ParseWriteBackRoutes reads the routes file:
//
//	{"default": "fhir", "practices": {"A81001": {"route": "send-document", "mailbox": "X26OT181"}}}
//
// defaultRoute applies when the file names no default.
func ParseWriteBackRoutes(b []byte, defaultRoute string) (*WriteBackRoutes, error) {
	var f struct {
		Default   string `json:"default"`
		Practices map[string]struct {
			Route   string `json:"route"`
			Mailbox string `json:"mailbox"`
		} `json:"practices"`
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("write-back routes: %w", err)
		}
	}
	if f.Default == "" {
		f.Default = defaultRoute
	}
	def, err := ParseRoute(f.Default)
	if err != nil {
		return nil, err
	}
	out := &WriteBackRoutes{Default: def, Practices: map[string]WriteBackRoute{}}
	for ods, p := range f.Practices {
		r, err := ParseRoute(p.Route)
		if err != nil {
			return nil, fmt.Errorf("practice %s: %w", ods, err)
		}
		if p.Mailbox != "" && !r.SendDocument {
			return nil, Errorf(EINVALID, "practice %s: a mailbox needs the send-document route", ods)
		}
		r.Mailbox = p.Mailbox
		out.Practices[strings.ToUpper(ods)] = r
	}
	return out, nil
}
