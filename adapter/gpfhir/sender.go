package gpfhir

import (
	"context"
	"encoding/json"
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
	Client       *Client
	Codec        *fhirjson.Codec
	LinkPatients bool
	PatientTTL   time.Duration

	mu       sync.Mutex
	patients map[string]patientEntry
}

type patientEntry struct {
	id      string
	fetched time.Time
}

// Send writes one message's resource version to the GP record. A body of a
// type keyed by meta.tag (no identifier element) that lacks its write-back
// key — a Provenance queued before the key was added — gets it first, so a
// conditional update of it finds it again on a resend.
func (s *Sender) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	body := m.Body
	if s.Codec != nil && fhirmap.WritebackKeyParam(m.ResourceType) == "_tag" && !hasWritebackTag(body) {
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
			cr, err := s.Codec.Decode(body)
			if err != nil {
				return 0, &PermanentError{Err: errors.New("stored write-back does not parse: " + err.Error())}
			}
			res := fhirmap.Unwrap(cr)
			fhirmap.PointPatientAt(res, m.NHSNumber, gpID)
			if body, err = s.Codec.Encode(res); err != nil {
				return 0, &PermanentError{Err: err}
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

// hasWritebackTag tells whether a resource's JSON carries a meta.tag in
// WritebackIdentifierSystem (a Provenance names other resources by their
// writeback identifiers, so the system alone is no sign of its own key).
func hasWritebackTag(body []byte) bool {
	var doc struct {
		Meta struct {
			Tag []struct {
				System string `json:"system"`
			} `json:"tag"`
		} `json:"meta"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return false
	}
	for _, t := range doc.Meta.Tag {
		if t.System == WritebackIdentifierSystem {
			return true
		}
	}
	return false
}
