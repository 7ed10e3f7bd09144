package fhirmap

import (
	"slices"
	"time"

	"github.com/linkbridge/linkbridge"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	procedurepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/procedure_go_proto"
)

// CodedEntry is one coded entry the FHIR view of a case writes to the GP
// record: a Procedure or an Observation with its code. It is what the MDT
// page lists under "written to the GP record", read from the same view
// the write-back sends, so the two cannot differ.
type CodedEntry struct {
	// Type and ID name the resource ("Procedure", "Observation").
	Type, ID string
	// System, Code and Display are the entry's first coding; Display may
	// be empty (ONS4 has no total and so no code of its own: its entry
	// carries the local ONS4 code system's item codes as components).
	System, Code, Display string
	// When is the entry's date: the Procedure's performed time (its
	// start), the Observation's effective time.
	When time.Time
}

// CodedEntries lists the coded entries of the case's FHIR view (CaseView),
// oldest first: the referral coded when the person agreed, or declined;
// each did-not-attend; each outcome measure. Entries withdrawn as entered
// in error and everything consent withholds are left out, as the GP record
// no longer holds them.
func (s Systems) CodedEntries(cr *linkbridge.CaseRecord) []CodedEntry {
	var out []CodedEntry
	for _, g := range s.CaseView(cr) {
		e := CodedEntry{Type: g.Type, ID: g.ID}
		var code *dpb.CodeableConcept
		switch r := g.Resource.(type) {
		case *procedurepb.Procedure:
			if r.GetStatus().GetValue() == cpb.EventStatusCode_ENTERED_IN_ERROR {
				continue
			}
			code = r.Code
			switch p := r.GetPerformed().GetChoice().(type) {
			case *procedurepb.Procedure_PerformedX_DateTime:
				e.When = DateTimeToTime(p.DateTime)
			case *procedurepb.Procedure_PerformedX_Period:
				e.When = DateTimeToTime(p.Period.GetStart())
			}
		case *observationpb.Observation:
			if r.GetStatus().GetValue() == cpb.ObservationStatusCode_ENTERED_IN_ERROR {
				continue
			}
			code = r.Code
			if dt, ok := r.GetEffective().GetChoice().(*observationpb.Observation_EffectiveX_DateTime); ok {
				e.When = DateTimeToTime(dt.DateTime)
			}
		default:
			continue
		}
		if cs := code.GetCoding(); len(cs) > 0 {
			e.System, e.Code, e.Display = cs[0].GetSystem().GetValue(), cs[0].GetCode().GetValue(), cs[0].GetDisplay().GetValue()
		}
		if e.Display == "" {
			e.Display = code.GetText().GetValue()
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b CodedEntry) int { return a.When.Compare(b.When) })
	return out
}
