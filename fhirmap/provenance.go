package fhirmap

import (
	"strconv"
	"time"

	"github.com/linkbridge/linkbridge"
)

// ProvenanceID is the id of the Provenance written back with the change
// that moved a referral to a version: stable, so a re-sent write-back is
// the same resource.
func ProvenanceID(referralID string, version int) string {
	return referralID + "-v" + strconv.Itoa(version)
}

// WriteBackProvenance is the Provenance that accompanies one case-record
// change written back to the GP record: it targets every resource version
// the change writes (by their writeback identifiers, which hold in both
// write modes), names the link worker as author (Practitioner by link-worker
// identifier) acting for the social prescribing service (Organization by
// ODS code) — or the service itself before a link worker is assigned; the
// referrer's organisation for the requester's own changes — and
// records the change's action as activity text. It carries its write-back
// key as a meta.tag (Provenance has no identifier element; see
// SetWritebackKey). It carries no patient data.
func WriteBackProvenance(r *linkbridge.Referral, version int, targets []*linkbridge.Resource, action string, actor linkbridge.Actor, now time.Time) JSON {
	var tg []any
	for _, t := range targets {
		tg = append(tg, JSON{"type": t.Type, "identifier": JSON{"system": WritebackIdentifierSystem, "value": t.Type + "/" + t.ID},
			"display": t.Type + " version " + strconv.Itoa(t.VersionID)})
	}
	service := JSON{"type": "Organization", "identifier": JSON{"system": linkbridge.ODSSystem, "value": r.ServiceODS}}
	author := JSON{
		"type": JSON{"coding": []any{JSON{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author"}}},
		"who":  service,
	}
	switch {
	case actor == linkbridge.ActorRequester:
		author["who"] = JSON{"type": "Organization", "identifier": JSON{"system": linkbridge.ODSSystem, "value": r.ReferrerODS}}
	case r.LinkWorker.ID != "":
		author["who"] = linkWorkerRef(r.LinkWorker)
		author["onBehalfOf"] = service
	}
	id := ProvenanceID(r.ID, version)
	doc := JSON{
		"resourceType":     "Provenance",
		"id":               id,
		"target":           tg,
		"occurredDateTime": now.UTC().Format(time.RFC3339),
		"recorded":         now.UTC().Format(time.RFC3339Nano),
		"activity": JSON{"coding": []any{JSON{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "UPDATE", "display": "revise"}},
			"text": action},
		"agent": []any{author},
	}
	// Provenance has no identifier element: its write-back key is the
	// meta.tag SetWritebackKey would add, found with _tag.
	doc["meta"] = JSON{"tag": []any{JSON{"system": WritebackIdentifierSystem, "code": "Provenance/" + id}}}
	return doc
}
