package gpfhir

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// Sender delivers outbox messages with a Client (it implements
// outbox.Sender). When LinkPatients is set it looks up the GP's own Patient
// by NHS number (Patient?identifier=) and adds a literal reference to it
// beside the NHS number identifier; lookups are cached for PatientTTL.
type Sender struct {
	// Client writes to the GP-side FHIR server.
	Client *Client
	// Codec re-keys an old Provenance row that lacks its write-back tag
	// (see Send); nil sends such a row as stored.
	Codec *fhirjson.Codec
	// LinkPatients adds the GP's own Patient to references by NHS number.
	LinkPatients bool
	// PatientTTL is how long a Patient lookup is cached; 10 minutes if 0.
	PatientTTL time.Duration

	mu       sync.Mutex
	patients map[string]patientEntry
}

type patientEntry struct {
	id      string
	fetched time.Time
}

// Send writes one message's resource version to the GP record. The body
// is sent as stored: casework stores each write-back in its final GP form.
// Two edits remain, neither of which re-encodes the body:
//   - A body of a type keyed by meta.tag (no identifier element) that lacks
//     its write-back key gets it first, so a conditional update of it finds
//     it again on a resend. Only a Provenance queued before
//     WriteBackProvenance carried its key lacks one; for such an old row
//     the body is decoded, keyed and encoded (no migration rewrites them:
//     the fallback costs nothing for the rows queued since).
//   - With LinkPatients, every logical reference to the person by NHS
//     number gets a literal reference to the GP's own Patient, set on the
//     JSON (fhirjson.SetReferenceByIdentifier, the JSON form of
//     fhirmap.PointPatientAt).
func (s *Sender) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	body := m.Body
	if s.Codec != nil && fhirmap.WritebackKeyParam(m.ResourceType) == "_tag" && !fhirjson.HasMetaTag(body, WritebackIdentifierSystem) {
		cr, err := s.Codec.Decode(body)
		if err != nil {
			return 0, &PermanentError{Err: errors.New("stored write-back does not parse: " + err.Error())}
		}
		res := fhirmap.Unwrap(cr)
		fhirmap.SetWritebackKey(res)
		if body, err = s.Codec.Encode(res); err != nil {
			return 0, &PermanentError{Err: err}
		}
	}
	if s.LinkPatients && m.NHSNumber != "" {
		gpID, err := s.patientID(ctx, m.NHSNumber)
		if err != nil {
			return 0, err
		}
		if gpID != "" {
			if body, _, err = fhirjson.SetReferenceByIdentifier(body, linkbridge.NHSNumberSystem, m.NHSNumber, "Patient/"+gpID); err != nil {
				return 0, &PermanentError{Err: errors.New("stored write-back does not parse: " + err.Error())}
			}
		}
	}
	res, err := s.Client.Put(ctx, m.ResourceType, m.ResourceID, m.Version, body)
	if err != nil {
		return 0, err
	}
	return res.Status, nil
}

func (s *Sender) patientID(ctx context.Context, nhs string) (string, error) {
	ttl := s.PatientTTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	s.mu.Lock()
	if s.patients == nil {
		s.patients = map[string]patientEntry{}
	}
	e, ok := s.patients[nhs]
	s.mu.Unlock()
	if ok && time.Since(e.fetched) < ttl {
		return e.id, nil
	}
	id, err := s.Client.FindPatient(ctx, nhs)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.patients[nhs] = patientEntry{id: id, fetched: time.Now()}
	s.mu.Unlock()
	return id, nil
}
