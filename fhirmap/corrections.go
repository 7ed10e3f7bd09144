package fhirmap

import (
	"github.com/linkbridge/linkbridge"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	encounterpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/encounter_go_proto"
	goalpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/goal_go_proto"
	observationpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
	"google.golang.org/protobuf/proto"
)

// Corrections in the FHIR view (docs/domain.md#corrections): an amended
// entry is a new version of its resource, a withdrawn one a new version
// with status entered-in-error. Each is written back like any change, so
// the GP copy follows.

// correctEncounter marks the Encounter of a contact withdrawn as entered in
// error. (An amended contact's Encounter keeps its status: R4 Encounter
// has none for a correction; the new version is the correction.)
func correctEncounter(enc *encounterpb.Encounter, c *linkbridge.Contact) {
	if c.Withdrawn() {
		enc.Status = &encounterpb.Encounter_StatusCode{Value: cpb.EncounterStatusCode_ENTERED_IN_ERROR}
	}
}

// correctObservation gives the Observation of a corrected measure its
// status: entered-in-error when withdrawn, corrected when amended (R4
// observation-status: modified after it was final, to correct an error).
func correctObservation(obs *observationpb.Observation, m *linkbridge.Measure) {
	switch {
	case m.Withdrawn():
		obs.Status = &observationpb.Observation_StatusCode{Value: cpb.ObservationStatusCode_ENTERED_IN_ERROR}
	case m.Amended():
		obs.Status = &observationpb.Observation_StatusCode{Value: cpb.ObservationStatusCode_CORRECTED}
	}
}

// EnteredInError reports whether a resource of the FHIR view is a
// withdrawn entry: an Encounter, Observation or Goal of status
// entered-in-error.
func EnteredInError(res proto.Message) bool {
	switch r := res.(type) {
	case *encounterpb.Encounter:
		return r.GetStatus().GetValue() == cpb.EncounterStatusCode_ENTERED_IN_ERROR
	case *observationpb.Observation:
		return r.GetStatus().GetValue() == cpb.ObservationStatusCode_ENTERED_IN_ERROR
	case *goalpb.Goal:
		return r.GetLifecycleStatus().GetValue() == cpb.GoalLifecycleStatusCode_ENTERED_IN_ERROR
	}
	return false
}
