package gpfhir

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
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
	// Identities records where the endpoint holds each resource written
	// (its own id and version), and is read to rewrite references between
	// written-back resources to those ids. nil: nothing is recorded and
	// references keep linkbridge's ids, which is only right for an endpoint
	// written in ModeClientID.
	Identities linkbridge.EndpointIdentityStore
	// DependencyWait is how long a message whose reference target the
	// endpoint does not hold yet waits before it is tried again (default
	// 10 s, whatever the attempt count: the target is usually a dead
	// letter an operator is about to retry, and the wait must not grow to
	// the relay's ten-minute backoff cap meanwhile).
	DependencyWait time.Duration

	mu       sync.Mutex
	patients map[string]patientEntry
}

type patientEntry struct {
	id      string
	fetched time.Time
}

// Send writes one message's resource version to the GP record. The body
// is sent as stored: casework stores each write-back in its final GP form.
// Edits made on the JSON, none of which re-encodes the body but the first:
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
//   - Every other literal reference names a resource linkbridge writes
//     back (casework makes the rest logical): it is rewritten to the
//     endpoint's id of that resource (and, for a versioned one, to the
//     endpoint's version when the one recorded is the version named). A
//     target the endpoint does not hold yet makes the message wait (a
//     RetryableError): it is never sent with a dangling reference.
//   - The id: linkbridge's for ModeClientID, none for a conditional update
//     or a create, the endpoint's for an update in ModeCreate.
//
// An Erase message deletes the endpoint's copy where the endpoint offers
// delete for the type; otherwise its Body, a version without the withheld
// content, is written (an empty Body: nothing to write).
func (s *Sender) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	key := linkbridge.ResourceKey{Type: m.ResourceType, ID: m.ResourceID}
	if m.Erase {
		del, err := s.Client.SupportsDelete(ctx, m.ResourceType)
		if err != nil {
			return 0, err
		}
		if del {
			return s.erase(ctx, key, m)
		}
		if len(m.Body) == 0 {
			return 0, nil
		}
	}
	return s.put(ctx, m, m.Body)
}

// put writes body, the message's resource version, as Send describes.
func (s *Sender) put(ctx context.Context, m *linkbridge.OutboxMessage, body []byte) (int, error) {
	key := linkbridge.ResourceKey{Type: m.ResourceType, ID: m.ResourceID}
	if s.Codec != nil && fhirmap.WritebackKeyParam(m.ResourceType) == "_tag" && !fhirjson.HasMetaTag(body, s.Client.cfg.Systems.Writeback()) {
		cr, err := s.Codec.Decode(body)
		if err != nil {
			return 0, &PermanentError{Err: errors.New("stored write-back does not parse: " + err.Error())}
		}
		res := fhirmap.Unwrap(cr)
		s.Client.cfg.Systems.SetWritebackKey(res)
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
	known := ""
	if s.Identities != nil {
		var err error
		if body, known, err = s.rewriteReferences(ctx, key, body); err != nil {
			return 0, err
		}
	}
	res, err := s.Client.Write(ctx, Write{Type: m.ResourceType, ID: m.ResourceID, Version: m.Version, Body: body, Known: known})
	if err != nil {
		return 0, err
	}
	if s.Identities != nil && res.EndpointID != "" {
		if err := s.Identities.RecordEndpointIdentity(ctx, linkbridge.EndpointIdentity{
			Endpoint: s.Client.Endpoint(), ResourceType: m.ResourceType, ResourceID: m.ResourceID,
			EndpointID: res.EndpointID, EndpointVersion: res.EndpointVersion, Version: m.Version, UpdatedAt: time.Now(),
		}); err != nil {
			// Written but not recorded: a resend finds it by its key.
			return 0, &RetryableError{Status: res.Status, Err: fmt.Errorf("recording the endpoint's id: %w", err)}
		}
	}
	return res.Status, nil
}

// rewriteReferences points every literal reference of body (but the
// GP's own Patient) at the endpoint's id of its target, and returns the
// endpoint's id of the resource itself ("" when none is recorded).
func (s *Sender) rewriteReferences(ctx context.Context, self linkbridge.ResourceKey, body []byte) ([]byte, string, error) {
	refs, err := fhirjson.LiteralReferences(body)
	if err != nil {
		return nil, "", &PermanentError{Err: errors.New("stored write-back does not parse: " + err.Error())}
	}
	keys := []linkbridge.ResourceKey{self}
	var kept []fhirjson.LiteralRef
	for _, r := range refs {
		switch {
		case r.Type == "Patient":
			// the GP's own Patient (LinkPatients), found on the endpoint
		case !fhirmap.WrittenBack(r.Type):
			// A type linkbridge never writes back (only in a message queued
			// before casework made such references logical): the endpoint
			// cannot hold it, so its literal part is dropped.
			if body, err = fhirjson.DropLiteralReference(body, r.Path, r.Type+" not held in this record"); err != nil {
				return nil, "", &PermanentError{Err: err}
			}
		default:
			keys = append(keys, linkbridge.ResourceKey{Type: r.Type, ID: r.ID})
			kept = append(kept, r)
		}
	}
	refs = kept
	ids, err := s.Identities.EndpointIdentities(ctx, s.Client.Endpoint(), keys)
	if err != nil {
		return nil, "", &RetryableError{Err: fmt.Errorf("reading the endpoint's ids: %w", err)}
	}
	set := make(map[string]string, len(refs))
	for _, r := range refs {
		k := linkbridge.ResourceKey{Type: r.Type, ID: r.ID}
		id, ok := ids[k]
		if !ok {
			if id, ok, err = s.discover(ctx, k); err != nil {
				return nil, "", err
			}
			if !ok {
				wait := s.DependencyWait
				if wait <= 0 {
					wait = 10 * time.Second
				}
				return nil, "", &RetryableError{After: wait, Fixed: true, Err: fmt.Errorf("waiting for %s/%s: the endpoint does not hold it yet, and a reference to it would dangle", r.Type, r.ID)}
			}
			ids[k] = id
		}
		to := r.Type + "/" + id.EndpointID
		if r.Version != "" && id.EndpointVersion != "" && strconv.Itoa(id.Version) == r.Version {
			to += "/_history/" + id.EndpointVersion
		}
		set[r.Path] = to
	}
	if len(set) > 0 {
		if body, err = fhirjson.ForEndpoint(body, fhirjson.KeepID, set); err != nil {
			return nil, "", &PermanentError{Err: err}
		}
	}
	return body, ids[self].EndpointID, nil
}

// discover finds a reference's target that has no identity record: written
// by linkbridge's own id in ModeClientID, else looked up on the endpoint by
// its write-back key (written before identities were recorded, or recorded
// by a send whose answer was lost) and recorded.
func (s *Sender) discover(ctx context.Context, k linkbridge.ResourceKey) (linkbridge.EndpointIdentity, bool, error) {
	mode, err := s.Client.ModeFor(ctx, k.Type)
	if err != nil {
		return linkbridge.EndpointIdentity{}, false, err
	}
	if mode == ModeClientID {
		return linkbridge.EndpointIdentity{EndpointID: k.ID}, true, nil
	}
	id, ver, n, err := s.Client.FindByKey(ctx, k.Type, k.ID)
	switch {
	case err != nil:
		return linkbridge.EndpointIdentity{}, false, err
	case n > 1:
		return linkbridge.EndpointIdentity{}, false, &PermanentError{Err: fmt.Errorf("%d resources on the endpoint carry the write-back key of %s/%s: a reference to it would be ambiguous", n, k.Type, k.ID)}
	case n == 0:
		return linkbridge.EndpointIdentity{}, false, nil
	}
	rec := linkbridge.EndpointIdentity{Endpoint: s.Client.Endpoint(), ResourceType: k.Type, ResourceID: k.ID,
		EndpointID: id, EndpointVersion: ver, UpdatedAt: time.Now()}
	if err := s.Identities.RecordEndpointIdentity(ctx, rec); err != nil {
		return linkbridge.EndpointIdentity{}, false, &RetryableError{Err: fmt.Errorf("recording the endpoint's id: %w", err)}
	}
	return rec, true, nil
}

// erase deletes the endpoint's copies of a resource: the recorded id and
// every resource carrying its write-back key (a duplicate keeps no withheld
// content either); one the endpoint never held is already gone. An
// endpoint that refuses a delete (403, 405, or 409 because a resource of its
// own refers to it) gets the withheld version (body) written in its place
// instead; with nothing to write (body empty) the refusal stands.
func (s *Sender) erase(ctx context.Context, k linkbridge.ResourceKey, m *linkbridge.OutboxMessage) (int, error) {
	targets := map[string]bool{}
	if s.Identities != nil {
		ids, err := s.Identities.EndpointIdentities(ctx, s.Client.Endpoint(), []linkbridge.ResourceKey{k})
		if err != nil {
			return 0, &RetryableError{Err: fmt.Errorf("reading the endpoint's ids: %w", err)}
		}
		if id, ok := ids[k]; ok {
			targets[id.EndpointID] = true
		}
	}
	mode, err := s.Client.ModeFor(ctx, k.Type)
	if err != nil {
		return 0, err
	}
	if mode == ModeClientID {
		targets[k.ID] = true
	}
	found, err := s.Client.FindAllByKey(ctx, k.Type, k.ID)
	if err != nil {
		return 0, err
	}
	for _, id := range found {
		targets[id] = true
	}
	status := 0
	for id := range targets {
		st, err := s.Client.Delete(ctx, k.Type, id)
		var pe *PermanentError
		if errors.As(err, &pe) && (pe.Status == http.StatusForbidden || pe.Status == http.StatusMethodNotAllowed || pe.Status == http.StatusConflict) && len(m.Body) > 0 {
			// Refused: the withheld version takes the content's place.
			return s.put(ctx, m, m.Body)
		}
		if err != nil {
			return 0, err
		}
		status = st
	}
	if s.Identities != nil {
		if err := s.Identities.ForgetEndpointIdentity(ctx, s.Client.Endpoint(), k); err != nil {
			return 0, &RetryableError{Err: fmt.Errorf("forgetting the endpoint's id: %w", err)}
		}
	}
	return status, nil
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
