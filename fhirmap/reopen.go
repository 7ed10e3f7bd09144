package fhirmap

import (
	"github.com/linkbridge/linkbridge"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
)

// sdohTemporaryCodes is the SDOH Clinical Care IG's temporary code system,
// whose contacting-subject-prohibited says the person must not be
// contacted (docs/referral-exchange.md).
const sdohTemporaryCodes = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"

// ReopenedServiceRequest builds the ServiceRequest of an episode a link
// worker reopened (docs/domain.md#one-open-referral): r is the new
// referral, earlierID the closed referral it continues. It is requested by
// the service itself (requester and performer its Organization by ODS
// code), authored when the episode was reopened, identified under the
// deployment's referral system (Systems.Referral), for the same Patient,
// with the earlier referral's reasons and priority, and it replaces the
// earlier ServiceRequest (R4 ServiceRequest.replaces: the completed or
// terminated request whose function this one takes).
func (s Systems) ReopenedServiceRequest(r *linkbridge.Referral, earlierID string) *srpb.ServiceRequest {
	sr := &srpb.ServiceRequest{
		Identifier: []*dpb.Identifier{{System: &dpb.Uri{Value: s.Referral()}, Value: &dpb.String{Value: r.Identifier.Value}}},
		Replaces:   []*dpb.Reference{NewRef("ServiceRequest", earlierID)},
		Status:     &srpb.ServiceRequest_StatusCode{Value: cpb.RequestStatusCode_ACTIVE},
		Intent:     &srpb.ServiceRequest_IntentCode{Value: cpb.RequestIntentCode_ORDER},
		Code: &dpb.CodeableConcept{Coding: []*dpb.Coding{
			coding(linkbridge.SNOMEDSystem, linkbridge.SCTReferralToSocialPrescribing, "Referral to social prescribing service"),
		}},
		Subject:    NewRef("Patient", r.Patient()),
		AuthoredOn: DateTime(r.AuthoredOn),
		Requester:  odsRef(r.ServiceODS),
		Performer:  []*dpb.Reference{odsRef(r.ServiceODS)},
	}
	if p := r.Priority; p != "" {
		sr.Priority = &srpb.ServiceRequest_PriorityCode{}
		if !SetCode(sr.Priority, p) {
			sr.Priority = nil
		}
	}
	for _, c := range r.Reasons {
		if c.Code == "" {
			sr.ReasonCode = append(sr.ReasonCode, conceptText(c.Display))
			continue
		}
		sr.ReasonCode = append(sr.ReasonCode, &dpb.CodeableConcept{Coding: []*dpb.Coding{coding(c.System, c.Code, c.Display)}})
	}
	if r.DoNotContact {
		sr.OrderDetail = []*dpb.CodeableConcept{{Coding: []*dpb.Coding{
			coding(sdohTemporaryCodes, "contacting-subject-prohibited", "Contacting subject prohibited"),
		}}}
	}
	return sr
}
