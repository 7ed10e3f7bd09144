package fhirmap_test

import (
	"errors"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// TestMapReferralReferrer: who referred, from every valid shape
// (docs/referral-exchange.md#who-referred): the requester chain, a
// Practitioner's PractitionerRole, the Task's requester, the one other
// organisation named, the authenticated sender, the Patient's practice;
// self-referrals and organisations without an ODS code; the service from
// the message's receiver.
func TestMapReferralReferrer(t *testing.T) {
	t.Parallel()
	c := mustCodec(t)
	base := mustReadFile(t, baseReferralFile)
	const (
		pracURL = "urn:uuid:00000000-0000-4000-8000-0000000000b1"
		roleURL = "urn:uuid:00000000-0000-4000-8000-0000000000b2"
		orgURL  = "urn:uuid:00000000-0000-4000-8000-0000000000b3"
		rpURL   = "urn:uuid:00000000-0000-4000-8000-0000000000b4"
	)
	ods := func(code string) jsonDoc {
		return jsonDoc{"system": linkbridge.ODSSystem, "value": code}
	}
	practitioner := func(b jsonDoc) {
		addEntry(b, pracURL, jsonDoc{"resourceType": "Practitioner", "name": []any{jsonDoc{"family": "Jones"}}})
		bundleResource(t, b, "ServiceRequest")["requester"] = jsonDoc{"reference": pracURL}
	}
	noTaskRequesterODS := func(b jsonDoc) {
		bundleResource(t, b, "Task")["requester"] = jsonDoc{"display": "Dr Jones"}
	}
	noPatientGP := func(b jsonDoc) {
		delete(bundleResource(t, b, "Patient"), "generalPractitioner")
	}
	tests := []struct {
		name        string
		mutate      func(b jsonDoc)
		hints       fhirmap.Hints
		wantODS     string
		wantSource  linkbridge.ReferralSource
		wantService string
		wantErrAt   string
	}{
		{name: "OrganizationByODS", mutate: func(jsonDoc) {}, wantODS: "A81001", wantSource: linkbridge.SourceGPPractice},
		{name: "PractitionerWithRole", mutate: func(b jsonDoc) {
			practitioner(b)
			noTaskRequesterODS(b)
			noPatientGP(b)
			addEntry(b, roleURL, jsonDoc{"resourceType": "PractitionerRole", "practitioner": jsonDoc{"reference": pracURL},
				"organization": jsonDoc{"identifier": ods("B82005")}})
		}, wantODS: "B82005", wantSource: linkbridge.SourceGPPractice},
		{name: "PractitionerTaskRequester", mutate: func(b jsonDoc) {
			practitioner(b)
			noPatientGP(b)
		}, wantODS: "A81001", wantSource: linkbridge.SourceGPPractice},
		{name: "PractitionerOtherOrganization", mutate: func(b jsonDoc) {
			practitioner(b)
			noTaskRequesterODS(b)
			noPatientGP(b)
			addEntry(b, orgURL, jsonDoc{"resourceType": "Organization", "identifier": []any{ods("FA123")}, "name": "High Street Pharmacy"})
		}, wantODS: "FA123", wantSource: linkbridge.SourcePharmacy},
		{name: "PractitionerAuthenticatedSender", mutate: func(b jsonDoc) {
			practitioner(b)
			noTaskRequesterODS(b)
			noPatientGP(b)
		}, hints: fhirmap.Hints{ClientODS: "RXH"}, wantODS: "RXH", wantSource: linkbridge.SourceOtherStatutory},
		{name: "PractitionerPatientPractice", mutate: func(b jsonDoc) {
			practitioner(b)
			noTaskRequesterODS(b)
		}, wantODS: "A81001", wantSource: linkbridge.SourceGPPractice},
		{name: "ContainedOrganization", mutate: func(b jsonDoc) {
			sr := bundleResource(t, b, "ServiceRequest")
			sr["contained"] = []any{jsonDoc{"resourceType": "Organization", "id": "ref", "identifier": []any{ods("C84001")}}}
			sr["requester"] = jsonDoc{"reference": "#ref"}
		}, wantODS: "C84001", wantSource: linkbridge.SourceGPPractice},
		{name: "SelfReferral", mutate: func(b jsonDoc) {
			bundleResource(t, b, "ServiceRequest")["requester"] = jsonDoc{"reference": "urn:uuid:2a1a779b-15ef-410b-b927-318d36ec955a"}
		}, wantODS: "", wantSource: linkbridge.SourceSelf},
		{name: "RelatedPerson", mutate: func(b jsonDoc) {
			addEntry(b, rpURL, jsonDoc{"resourceType": "RelatedPerson", "patient": jsonDoc{"reference": "urn:uuid:2a1a779b-15ef-410b-b927-318d36ec955a"}})
			bundleResource(t, b, "ServiceRequest")["requester"] = jsonDoc{"reference": rpURL}
		}, wantODS: "", wantSource: linkbridge.SourceSelf},
		{name: "VoluntaryWithoutODS", mutate: func(b jsonDoc) {
			addEntry(b, orgURL, jsonDoc{"resourceType": "Organization", "name": "Parkside Befriending",
				"identifier": []any{jsonDoc{"system": "https://register-of-charities.charitycommission.gov.uk", "value": "1234567"}}})
			bundleResource(t, b, "ServiceRequest")["requester"] = jsonDoc{"reference": orgURL}
		}, wantODS: "", wantSource: linkbridge.SourceVoluntary},
		{name: "CommunityGroupWithODS", mutate: func(b jsonDoc) {
			addEntry(b, orgURL, jsonDoc{"resourceType": "Organization", "identifier": []any{ods("8JX12")},
				"type": []any{jsonDoc{"coding": []any{jsonDoc{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "cg"}}}}})
			bundleResource(t, b, "ServiceRequest")["requester"] = jsonDoc{"reference": orgURL}
		}, wantODS: "8JX12", wantSource: linkbridge.SourceVoluntary},
		{name: "ServiceFromReceiver", mutate: func(b jsonDoc) {
			delete(bundleResource(t, b, "ServiceRequest"), "performer")
			delete(bundleResource(t, b, "Task"), "owner")
		}, hints: fhirmap.Hints{ReceiverODS: "Y09999"}, wantODS: "A81001", wantSource: linkbridge.SourceGPPractice, wantService: "Y09999"},
		{name: "ErrReceiverNotService", mutate: func(jsonDoc) {},
			hints: fhirmap.Hints{ReceiverODS: "Y09999"}, wantErrAt: "MessageHeader.destination.receiver"},
		{name: "ErrNobody", mutate: func(b jsonDoc) {
			bundleResource(t, b, "ServiceRequest")["requester"] = jsonDoc{"display": "Someone"}
			noTaskRequesterODS(b)
			noPatientGP(b)
		}, wantErrAt: "ServiceRequest.requester"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := mustParseJSON(t, base)
			tt.mutate(doc)
			ref, err := fhirmap.MapReferralWith(mustEntries(t, c, mustMarshalJSON(t, doc)), tt.hints)
			if tt.wantErrAt != "" {
				var le *linkbridge.Error
				if !errors.As(err, &le) || le.Code != linkbridge.EUNPROCESSABLE || len(le.Expression) == 0 || le.Expression[0] != tt.wantErrAt {
					t.Fatalf("MapReferralWith() error = %v, want 422 at %s", err, tt.wantErrAt)
				}
				return
			}
			if err != nil {
				t.Fatalf("MapReferralWith() = %v", err)
			}
			r := ref.Referral
			if r.ReferrerODS != tt.wantODS || r.Source != tt.wantSource {
				t.Errorf("referrer %q source %q, want %q %q", r.ReferrerODS, r.Source, tt.wantODS, tt.wantSource)
			}
			want := tt.wantService
			if want == "" {
				want = "Y02662"
			}
			if r.ServiceODS != want {
				t.Errorf("service %q, want %q", r.ServiceODS, want)
			}
		})
	}
}
