package fhirmap

import (
	"strconv"
	"time"

	"github.com/linkbridge/linkbridge"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	provenancepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/provenance_go_proto"
)

// ProvenanceID is the id of the Provenance written back with the change
// that moved a referral to a version: stable, so a re-sent write-back is
// the same resource.
func ProvenanceID(referralID string, version int) string {
	return referralID + "-v" + strconv.Itoa(version)
}

// WriteBackProvenance is the Provenance that accompanies one case-record
// change written back to the GP record: it targets every resource version
// the change writes, by a versioned literal reference (Type/id/_history/v,
// which the relay rewrites to the endpoint's own id and version) beside
// the resource's write-back identifier, names the link worker as author (Practitioner by SDS user id or
// link-worker identifier) acting for the social prescribing service (Organization by
// ODS code) — or the service itself before a link worker is assigned; the
// referrer's organisation for the requester's own changes — and
// records the change's action as activity text. It carries its write-back
// key as a meta.tag (Provenance has no identifier element; see
// SetWritebackKey). It carries no patient data.
func (s Systems) WriteBackProvenance(r *linkbridge.Referral, version int, targets []*linkbridge.Resource, action string, actor linkbridge.Actor, now time.Time) *provenancepb.Provenance {
	id := ProvenanceID(r.ID, version)
	p := &provenancepb.Provenance{
		Id: fhirID(id),
		// Provenance has no identifier element: its write-back key is the
		// meta.tag SetWritebackKey would add, found with _tag.
		Meta:     &dpb.Meta{Tag: []*dpb.Coding{coding(s.Writeback(), "Provenance/"+id, "")}},
		Occurred: &provenancepb.Provenance_OccurredX{Choice: &provenancepb.Provenance_OccurredX_DateTime{DateTime: DateTime(now)}},
		Recorded: recordedInstant(now),
		Activity: &dpb.CodeableConcept{
			Coding: []*dpb.Coding{coding("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "UPDATE", "revise")},
			Text:   fhirString(action),
		},
	}
	for _, t := range targets {
		ref := logicalRef(t.Type, s.Writeback(), t.Type+"/"+t.ID)
		setVersionedRefTarget(ref, t.Type, t.ID, t.VersionID)
		ref.Display = fhirString(t.Type + " version " + strconv.Itoa(t.VersionID))
		p.Target = append(p.Target, ref)
	}
	author := &provenancepb.Provenance_Agent{
		Type: concept(coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author")),
		Who:  logicalRef("Organization", linkbridge.ODSSystem, r.ServiceODS),
	}
	switch {
	case actor == linkbridge.ActorRequester:
		author.Who = logicalRef("Organization", linkbridge.ODSSystem, r.ReferrerODS)
	case r.LinkWorker.ID != "":
		author.Who = s.linkWorkerRef(r.LinkWorker)
		author.OnBehalfOf = logicalRef("Organization", linkbridge.ODSSystem, r.ServiceODS)
	}
	p.Agent = []*provenancepb.Provenance_Agent{author}
	return p
}

// recordedInstant is now as Provenance.recorded has always been written:
// to the nanosecond with trailing zeros dropped (RFC 3339), which
// google/fhir reads as second precision when there is no fraction,
// millisecond for up to three digits, else microsecond (truncated).
func recordedInstant(now time.Time) *dpb.Instant {
	ns := now.Nanosecond()
	precision := dpb.Instant_MICROSECOND
	switch {
	case ns == 0:
		precision = dpb.Instant_SECOND
	case ns%int(time.Millisecond) == 0:
		precision = dpb.Instant_MILLISECOND
	}
	return &dpb.Instant{ValueUs: now.Unix()*1e6 + int64(ns/1e3), Timezone: "Z", Precision: precision}
}
