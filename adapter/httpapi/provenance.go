package httpapi

import (
	"encoding/json"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// withProvenance appends to a change's write-backs the Provenance naming
// the link worker as their author (fhirmap.WriteBackProvenance), parsed and
// rendered by google/fhir like every write-back. It is queued after the
// resources it targets, in the same transaction and order key.
func (s *Server) withProvenance(out []*linkbridge.OutboxMessage, cr *linkbridge.CaseRecord, versions []version, action string, now time.Time) ([]*linkbridge.OutboxMessage, error) {
	if len(versions) == 0 {
		return out, nil
	}
	targets := make([]*linkbridge.Resource, len(versions))
	for i, v := range versions {
		targets[i] = v.res
	}
	raw, err := json.Marshal(fhirmap.WriteBackProvenance(cr.Referral, cr.Referral.Version, targets, action, now))
	if err != nil {
		return nil, err
	}
	msg, err := s.decode(raw)
	if err != nil {
		return nil, err // a generated resource that fails validation is our bug
	}
	body, err := s.Codec.Encode(msg)
	if err != nil {
		return nil, err
	}
	nhs := ""
	if cr.Person != nil {
		nhs = cr.Person.NHSNumber
	}
	return append(out, &linkbridge.OutboxMessage{
		OrderKey: cr.Referral.PersonID, ReferralID: cr.Referral.ID,
		ResourceType: "Provenance", ResourceID: fhirmap.ID(msg), Version: 1,
		Body: body, NHSNumber: nhs, State: linkbridge.OutboxPending,
		AvailableAt: now, CreatedAt: now,
	}), nil
}
