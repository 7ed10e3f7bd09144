package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// renderAuditEvent renders an audit record as a FHIR R4 AuditEvent
// (fhirmap.Systems.AuditEvent), parsed and rendered by google/fhir (so it is
// checked like any resource).
func (s *Server) renderAuditEvent(rec *linkbridge.AuditRecord) (*linkbridge.Resource, error) {
	doc := s.Systems.AuditEvent(rec)
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	msg, err := s.decode(raw)
	if err != nil {
		return nil, err
	}
	body, err := s.Codec.Encode(msg)
	if err != nil {
		return nil, err
	}
	return &linkbridge.Resource{Type: "AuditEvent", ID: rec.ID, VersionID: 1, LastUpdated: rec.Recorded.UTC(), Body: body}, nil
}

// handleAuditRead answers GET /fhir/AuditEvent/{id} (administrators only).
func (s *Server) handleAuditRead(w http.ResponseWriter, r *http.Request) error {
	if s.Audit == nil {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "this server keeps no audit trail")
	}
	rec, err := s.Audit.ReadAudit(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	res, err := s.renderAuditEvent(rec)
	if err != nil {
		return err
	}
	writeResource(w, res)
	return nil
}

// handleAuditSearch answers GET /fhir/AuditEvent (administrators only),
// newest first: date (prefixes eq, gt, ge, lt, le), agent (client id),
// organization (ODS code of the client's organisation), entity (Type/id),
// outcome (0, 4, 8), _count, _offset.
func (s *Server) handleAuditSearch(w http.ResponseWriter, r *http.Request) error {
	if s.Audit == nil {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "this server keeps no audit trail")
	}
	vals := r.URL.Query()
	f := linkbridge.AuditFilter{Limit: defaultCount, ClientID: vals.Get("agent"), ODS: strings.ToUpper(vals.Get("organization")), Entity: normaliseRef(vals.Get("entity"))}
	for _, v := range vals["date"] {
		fs, err := parseDateFilter(v)
		if err != nil {
			return linkbridge.Errorf(linkbridge.EINVALID, "date must be a FHIR date or dateTime with an optional prefix").At("date")
		}
		for _, d := range fs {
			if d.Prefix == "ge" && (f.From.IsZero() || d.Time.After(f.From)) {
				f.From = d.Time
			}
			if d.Prefix == "lt" && (f.To.IsZero() || d.Time.Before(f.To)) {
				f.To = d.Time
			}
		}
	}
	if v := vals.Get("outcome"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && n != 4 && n != 8 && n != 12) {
			return linkbridge.Errorf(linkbridge.EINVALID, "outcome must be 0, 4, 8 or 12").At("outcome")
		}
		f.Outcome = &n
	}
	if err := queryInts(vals, map[string]*int{"_count": &f.Limit, "_offset": &f.Offset}); err != nil {
		return err
	}
	f.Limit = min(max(f.Limit, 1), maxCount)
	recs, total, err := s.Audit.SearchAudit(r.Context(), f)
	if err != nil {
		return err
	}
	base := s.baseURL(r)
	b := &rpb.Bundle{Id: &dpb.Id{Value: s.newID()}, Type: bundleType("searchset"), Total: &dpb.UnsignedInt{Value: uint32(total)}}
	b.Link = pageLinks(base+"/AuditEvent", vals, &linkbridge.ResourceQuery{Count: f.Limit, Offset: f.Offset}, total)
	entries := make([]bundleEntry, 0, len(recs))
	for _, rec := range recs {
		res, err := s.renderAuditEvent(rec)
		if err != nil {
			return err
		}
		entries = append(entries, searchEntry(base, res, "match"))
	}
	return s.writeBundle(w, b, entries)
}
