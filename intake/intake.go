// Package intake receives referrals: a GP system's transaction Bundle, a
// lone ServiceRequest or Task (SDOH "direct" and "indirect" patterns), or
// a BaRS message. It maps them to the domain (fhirmap), gives every stored
// resource its server id and rewrites references to match, keeps the bytes
// received where only id, meta and references changed, and stores the
// referral, its person, its Task and its resources in one transaction. It
// knows nothing of HTTP.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	orgpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/organization_go_proto"
	patpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/patient_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// Service receives referrals into the store. Configure the fields, then
// share it; it is safe for concurrent use.
type Service struct {
	// Store is the social prescribing store, usually an access.Store so
	// that a referral is stored only from the organisation it names.
	Store linkbridge.Store
	// Codec renders resources the gateway built or changed.
	Codec *fhirjson.Codec
	// Logger receives structured logs (ids only, never personal data).
	Logger *slog.Logger
	// Now returns the current time; defaults to time.Now.
	Now func() time.Time
	// NewID returns a new resource id.
	NewID func() string
	// DefaultServiceODS is the ODS code of the social prescribing service
	// referrals are addressed to when they name none (optional).
	DefaultServiceODS string
	// MaxEntries caps the resources of one referral, contained resources
	// included (ETOOLARGE above it); 0 means
	// linkbridge.DefaultMaxReferralEntries.
	MaxEntries int
	// AnyNHSNumberRange accepts an NHS number that passes Modulus 11 in any
	// range; by default one in a range where none is issued is refused
	// (linkbridge.NHSNumberRangeOf).
	AnyNHSNumberRange bool
	// Systems are the deployment's URIs (serve --system-base): the
	// identifier system of the referrals the service opens itself.
	Systems fhirmap.Systems
	// Episodes, when set, is the unscoped case store in which a known
	// person's earlier referrals are found, so that a re-referral is
	// linked to the episode it follows (docs/domain.md#one-open-referral).
	// The link is the service's record; the sender learns nothing from it.
	Episodes linkbridge.CaseStore
	// MarshalAll turns off storing received bytes: every resource is
	// rendered by jsonformat (tests compare the two paths).
	MarshalAll bool
	// Metrics, if set, counts the referrals received (adapter/prom).
	Metrics Metrics
}

// Metrics receives the outcome of each referral received.
type Metrics interface {
	// Referral counts one referral: via "rest" or "message"; outcome
	// "created", "existing" (idempotent re-send) or the error code it
	// was refused with (linkbridge.ErrorCode).
	Referral(via, outcome string)
}

// count reports a referral's outcome to s.Metrics.
func (s *Service) count(via string, res *Result, err error) {
	if s.Metrics == nil {
		return
	}
	switch {
	case err != nil:
		s.Metrics.Referral(via, linkbridge.ErrorCode(err))
	case res.Created:
		s.Metrics.Referral(via, "created")
	default:
		s.Metrics.Referral(via, "existing")
	}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) newID() string { return s.NewID() }

// TaskOf answers a lone Task (SDOH "direct") whose focus is a
// ServiceRequest the gateway holds: that referral already has its Task,
// which it returns. EUNPROCESSABLE when the focus is a ServiceRequest this
// server does not hold; nil, nil when the Task names no ServiceRequest
// focus (it must then contain its ServiceRequest, see Receive).
func (s *Service) TaskOf(ctx context.Context, t *taskpb.Task) (*linkbridge.Resource, error) {
	ftyp, fid := fhirmap.RefTarget(t.GetFocus())
	if ftyp != "ServiceRequest" {
		return nil, nil
	}
	rf, err := s.Store.FindReferral(ctx, fid)
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "Task.focus ServiceRequest/%s is not held by this server; contain the ServiceRequest or send a transaction", fid).At("Task.focus")
	}
	if err != nil {
		return nil, err
	}
	return s.Store.ReadResource(ctx, "Task", rf.TaskID)
}

// Result says what an intake stored (or found already stored).
type Result struct {
	// Created is false when the referral was already stored (idempotent
	// re-send): the resources are then the stored ones.
	Created        bool
	Patient        *linkbridge.Resource
	ServiceRequest *linkbridge.Resource
	Task           *linkbridge.Resource
	// ByEntry maps each request entry to the resource it became (nil for
	// contained resources and for entries of an already-stored referral).
	ByEntry  map[*fhirmap.Entry]*linkbridge.Resource
	Referral *linkbridge.Referral
}

// Receive validates, maps and stores one inbound referral: the entries of
// a transaction or message Bundle, or a lone ServiceRequest or Task.
// messageID is the BaRS message it came in ("" over REST). It is
// idempotent: a referral whose ServiceRequest identifier is stored already
// returns the stored referral with Created false.
func (s *Service) Receive(ctx context.Context, entries []*fhirmap.Entry, messageID string) (*Result, error) {
	res, err := s.receive(ctx, entries, messageID, "")
	s.count("rest", res, err)
	return res, err
}

// ReceiveMessage receives the referral a BaRS message carries, as Receive
// does; the organisation the MessageHeader names as receiver is the service
// the referral is addressed to when the referral itself names none.
func (s *Service) ReceiveMessage(ctx context.Context, msg *fhirmap.Message, messageID string) (*Result, error) {
	res, err := s.receive(ctx, msg.Entries, messageID, msg.ReceiverODS())
	s.count("message", res, err)
	return res, err
}

func (s *Service) receive(ctx context.Context, entries []*fhirmap.Entry, messageID, receiverODS string) (*Result, error) {
	max := s.MaxEntries
	if max <= 0 {
		max = linkbridge.DefaultMaxReferralEntries
	}
	if n := countWithContained(entries); n > max {
		return nil, linkbridge.Errorf(linkbridge.ETOOLARGE, "a referral carries at most %d resources, contained ones included, not %d", max, n).At("Bundle.entry")
	}
	// The authenticated sender names the referring organisation when the
	// referral itself does not lead to one (docs/referral-exchange.md#who-referred).
	hints := fhirmap.Hints{ReceiverODS: receiverODS}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && p.Role == linkbridge.RoleGP {
		hints.ClientODS = p.ODS
	}
	ref, err := fhirmap.MapReferralWith(entries, hints)
	if err != nil {
		return nil, err
	}
	if n := ref.Person.NHSNumber; n != "" && !s.AnyNHSNumberRange && linkbridge.NHSNumberRangeOf(n) == linkbridge.NHSRangeNotIssued {
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "the NHS number is not in a range where NHS numbers are issued (docs/identifiers.md)").At("Patient.identifier")
	}
	// Idempotency: the same referral identifier is the same referral. The
	// store's unique constraint decides (no read-then-write race); the
	// duplicate answer is then read back.
	// The first attempt takes the person to be new and lets the store's
	// unique NHS number decide (most referrals are of people the service
	// has not met); a duplicate is retried linked to the stored person.
	given := &assigned{entry: map[*fhirmap.Entry]string{}}
	for attempt := 0; ; attempt++ {
		given.retry = attempt > 0
		res, err := s.store(ctx, ref, messageID, given)
		var le *linkbridge.Error
		if errors.As(err, &le) && le.Code == linkbridge.EDUPLICATE {
			switch {
			case strings.HasPrefix(le.Existing, "ServiceRequest/"):
				// Lost a race with an identical referral: answer with it.
				// The identifier is unique per referrer, and the referrer
				// is the caller (the scoped store stores a referral only
				// from the organisation it names), so the stored referral
				// is the caller's own.
				out, ferr := s.existingReferral(ctx, ref.Referral.ReferrerODS, ref.Referral.Identifier)
				if linkbridge.ErrorCode(ferr) == linkbridge.ENOTFOUND {
					// Held, but not found by this caller: never answer a
					// create with 404, nor with nothing.
					return nil, linkbridge.Errorf(linkbridge.ECONFLICT, "the referral identifier is already in use").At("ServiceRequest.identifier")
				}
				return out, ferr
			case strings.HasPrefix(le.Existing, "Patient/") && attempt == 0:
				// The person is known (or was created concurrently):
				// link to them.
				continue
			}
		}
		if errors.As(err, &le) && le.Rule == linkbridge.RuleOpenReferral && given.link == nil {
			// The person has an open referral to the service: refused
			// naming it, or stored beside it (openReferralLink).
			link, lerr := s.openReferralLink(ctx, ref, strings.TrimPrefix(le.Existing, "ServiceRequest/"), le)
			if lerr != nil {
				return nil, lerr
			}
			given.link = link
			continue
		}
		return res, err
	}
}

// openReferralLink decides what becomes of a referral whose person has an
// open referral, openID, to the same service (docs/domain.md#one-open-referral).
// A sender who may read the open referral is answered with conflict (409
// naming it), unless the referral says it goes with it (basedOn or
// replaces names it): then it is stored beside it, related. A sender who
// may not read it is not told it exists: the referral is stored beside it
// as concurrent, for the link worker, who sees both, to resolve.
func (s *Service) openReferralLink(ctx context.Context, ref *fhirmap.Referral, openID string, conflict error) (*linkbridge.ReferralLink, error) {
	open, err := s.Store.FindReferral(ctx, openID)
	switch {
	case linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND:
		return &linkbridge.ReferralLink{ReferralID: openID, Kind: linkbridge.LinkConcurrent}, nil
	case err != nil:
		return nil, err
	}
	for _, f := range ref.Follows {
		if f.Names(open) {
			return &linkbridge.ReferralLink{ReferralID: openID, Kind: linkbridge.LinkRelated}, nil
		}
	}
	return nil, conflict
}

// earlierEpisode links a new referral of a known person to the person's
// latest closed referral to the same service (completed, failed,
// cancelled or declined): a re-referral follows the earlier episode. Nil
// when there is none, or Episodes is unset. (An open one is the store's
// one-open-referral rule's to decide.)
func (s *Service) earlierEpisode(ctx context.Context, personID, serviceODS string) (*linkbridge.ReferralLink, error) {
	if s.Episodes == nil {
		return nil, nil
	}
	closed := []linkbridge.TaskStatus{linkbridge.TaskCompleted, linkbridge.TaskFailed, linkbridge.TaskCancelled, linkbridge.TaskRejected}
	refs, _, err := s.Episodes.ListReferrals(ctx, linkbridge.ReferralFilter{PersonID: personID, ServiceODS: serviceODS, Statuses: closed, Limit: 1})
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	return &linkbridge.ReferralLink{ReferralID: refs[0].ID, Kind: linkbridge.LinkReReferral}, nil
}

// existingReferral returns the stored referral that referrerODS made with a
// business identifier: never nil without an error; ENOTFOUND when there is
// none the caller may read.
func (s *Service) existingReferral(ctx context.Context, referrerODS string, id linkbridge.Identifier) (*Result, error) {
	rf, err := s.Store.FindReferralByIdentifier(ctx, referrerODS, id)
	if err != nil {
		return nil, err
	}
	out := &Result{Referral: rf, ByEntry: map[*fhirmap.Entry]*linkbridge.Resource{}}
	if out.ServiceRequest, err = s.Store.ReadResource(ctx, "ServiceRequest", rf.ID); err != nil {
		return nil, err
	}
	if out.Task, err = s.Store.ReadResource(ctx, "Task", rf.TaskID); err != nil {
		return nil, err
	}
	if out.Patient, err = s.Store.ReadResource(ctx, "Patient", rf.Patient()); err != nil {
		return nil, err
	}
	return out, nil
}

// assigned are the ids an intake attempt gave out. A retry keeps them, so
// that references the first attempt rewrote in place stay right: the
// referral's Patient keeps its id when the person turns out to be known
// (only the person's id changes, to the stored person's).
type assigned struct {
	// retry is set on the attempt after a duplicate NHS number: the person
	// is looked up, and the resources were changed by the first attempt.
	retry                           bool
	person, patient, referral, task string
	// link, when set, links the referral beside the person's open one.
	link  *linkbridge.ReferralLink
	entry map[*fhirmap.Entry]string
}

// get returns *id, giving it a new id first if it has none.
func (s *Service) get(id *string) string {
	if *id == "" {
		*id = s.newID()
	}
	return *id
}

// store assigns ids, rewrites references, renders and stores.
func (s *Service) store(ctx context.Context, ref *fhirmap.Referral, messageID string, ids *assigned) (*Result, error) {
	lookup := ids.retry
	now := s.now()
	person := ref.Person
	newPerson := true
	var existing *linkbridge.Person
	var err error
	switch {
	case ref.SubjectID != "":
		existing, err = s.personOfPatient(ctx, ref.SubjectID)
	case lookup:
		existing, err = s.Store.FindPersonByNHSNumber(ctx, person.NHSNumber)
		if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	if existing != nil {
		person = *existing
		newPerson = false
	} else {
		person.ID = s.get(&ids.person)
		person.CreatedAt = now
	}
	// The referral's own Patient: what this referrer sent about the person
	// (docs/referral-exchange.md#disclosure). A new person's first Patient
	// takes the person's id; a known person gets a Patient of this
	// referral's (on a retry, the id the first attempt gave it, so that the
	// references it rewrote stay right); a subject given as a Patient the
	// referrer already holds is that Patient.
	patientID := ref.SubjectID
	if patientID == "" {
		if ids.patient == "" {
			ids.patient = person.ID
		}
		patientID = ids.patient
	}

	rf := ref.Referral
	rf.ID = s.get(&ids.referral)
	rf.PersonID, rf.PatientID = person.ID, patientID
	rf.ReceivedAt, rf.UpdatedAt, rf.Version = now, now, 1
	if rf.ServiceODS == "" {
		rf.ServiceODS = s.DefaultServiceODS
	}
	if rf.Status == "" {
		rf.Status = linkbridge.TaskRequested
	}
	switch {
	case ids.link != nil:
		rf.Link = *ids.link
	case !newPerson:
		link, err := s.earlierEpisode(ctx, person.ID, rf.ServiceODS)
		if err != nil {
			return nil, err
		}
		if link != nil {
			rf.Link = *link
		}
	}

	// Assign ids to every stored entry; the ServiceRequest's id is the
	// referral id.
	type idPair struct{ typ, id string }
	newIDs := map[string]idPair{} // old reference or fullUrl -> new
	// The referral's own ServiceRequest and Patient are stored as resources
	// of their own even when they arrive contained: they are lifted out of
	// their container and "#id" references to them are repointed.
	lifted := func(e *fhirmap.Entry) bool {
		return !e.Contained || e == ref.ServiceRequest || e == ref.Patient
	}
	dropContained := map[string]bool{}
	for _, e := range ref.Entries {
		if !lifted(e) {
			continue
		}
		typ := fhirmap.TypeName(e.Resource)
		var id string
		switch {
		case e == ref.ServiceRequest:
			id = rf.ID
		case e == ref.Patient:
			id = patientID
		default:
			id = ids.entry[e]
			if id == "" {
				id = s.newID()
				ids.entry[e] = id
			}
		}
		if e.FullURL != "" {
			newIDs[e.FullURL] = idPair{typ, id}
		}
		if old := fhirmap.ID(e.Resource); old != "" {
			if e.Contained {
				newIDs["#"+old] = idPair{typ, id}
				dropContained[old] = true
			}
			if !e.Contained {
				newIDs[typ+"/"+old] = idPair{typ, id}
			}
		}
	}
	resolve := func(typ, id string) (string, string, bool) {
		key := id
		switch typ {
		case "":
		case "#":
			key = "#" + id
		default:
			key = typ + "/" + id
		}
		if p, ok := newIDs[key]; ok {
			return p.typ, p.id, true
		}
		return "", "", false
	}

	in := &linkbridge.Intake{Person: &person, NewPerson: newPerson, MessageID: messageID}
	out := &Result{Created: true, ByEntry: map[*fhirmap.Entry]*linkbridge.Resource{}}
	// refs are the reference rewrites as JSON strings, for Stamp.
	refs := make(map[string]string, len(newIDs))
	for from, to := range newIDs {
		if !strings.HasPrefix(from, "#") {
			refs[from] = to.typ + "/" + to.id
		}
	}
	// idents are the identifiers references to the referral's
	// organisations are given (orgs, below), as JSON for the received
	// bytes (fhirjson.StampIdentified).
	idents := map[string][]byte{}
	// render gives a resource its id and meta and the bytes to store. A
	// resource received as JSON and changed only in its references is
	// stored as received (Stamp); one the gateway built or changed
	// otherwise is marshalled.
	// identified is the number of references IdentifyReferences gave an
	// identifier, which the stamped bytes must carry too (idents).
	render := func(res proto.Message, id string, raw []byte, rewrote, identified int) (*linkbridge.Resource, error) {
		fhirmap.SetID(res, id)
		fhirmap.SetMeta(res, 1, now)
		params := fhirmap.SearchParams(res) // before Encode, which denormalises references in place
		var body []byte
		if raw != nil && !s.MarshalAll {
			var with map[string][]byte
			if identified > 0 {
				with = idents
			}
			if b, n, m, err := fhirjson.StampIdentified(raw, id, 1, now, refs, with); err == nil && n == rewrote && m == identified {
				body = b
			}
		}
		if body == nil {
			var err error
			if body, err = s.Codec.Encode(res); err != nil {
				return nil, fmt.Errorf("intake: render %s: %w", fhirmap.TypeName(res), err)
			}
		}
		return &linkbridge.Resource{Type: fhirmap.TypeName(res), ID: id, VersionID: 1, LastUpdated: now, Body: body, Params: params}, nil
	}

	// orgs are the ODS codes of the organisations stored with the
	// referral, by their new "Organization/id": references to them carry
	// the code too (fhirmap.IdentifyReferences), so that a referral whose
	// requester and owner arrive as Organization entries (a BaRS message)
	// is found by requester:identifier and owner:identifier like one that
	// names them by ODS code.
	orgs := map[string]*dpb.Identifier{}
	for _, e := range ref.Entries {
		o, ok := e.Resource.(*orgpb.Organization)
		if !ok || !lifted(e) {
			continue
		}
		for _, id := range o.GetIdentifier() {
			if id.GetSystem().GetValue() == linkbridge.ODSSystem && id.GetValue().GetValue() != "" {
				key := "Organization/" + ids.entry[e]
				orgs[key] = &dpb.Identifier{System: id.GetSystem(), Value: id.GetValue()}
				idents[key] = fhirjson.IdentifierJSON(id.GetSystem().GetValue(), id.GetValue().GetValue())
				break
			}
		}
	}

	var srRequester *dpb.Reference
	for _, e := range ref.Entries {
		if !lifted(e) {
			continue
		}
		rewrote := fhirmap.RewriteReferences(e.Resource, resolve)
		identified := fhirmap.IdentifyReferences(e.Resource, orgs)
		// raw stays set only while the received bytes still say what the
		// resource now says, apart from id, meta, references and the
		// identifiers given to them.
		raw := e.Raw
		if fhirmap.DropContained(e.Resource, dropContained) || e.Normalised || e.Contained || lookup {
			raw = nil // changed beyond references, possibly by an earlier attempt
		}
		if e == ref.ServiceRequest {
			sr := e.Resource.(*srpb.ServiceRequest)
			srRequester = sr.GetRequester()
			if typ, id := fhirmap.RefTarget(sr.GetSubject()); typ == "" && id == "" {
				// Named by NHS number only: point at the referral's Patient too.
				fhirmap.PointAt(sr.Subject, "Patient", patientID)
				raw = nil
			}
		}
		if e == ref.Task {
			t := e.Resource.(*taskpb.Task)
			if t.GetLastModified() == nil {
				t.LastModified = fhirmap.DateTime(now)
				raw = nil
			}
			if typ, id := fhirmap.RefTarget(t.GetForValue()); typ == "" && id == "" {
				fhirmap.PointAt(t.ForValue, "Patient", patientID)
				raw = nil
			}
		}
		id := ids.entry[e]
		switch e {
		case ref.ServiceRequest:
			id = rf.ID
		case ref.Patient:
			id = patientID
		}
		r, err := render(e.Resource, id, raw, rewrote, identified)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, r)
		out.ByEntry[e] = r
		switch e {
		case ref.ServiceRequest:
			out.ServiceRequest = r
		case ref.Task:
			out.Task = r
			rf.TaskID = r.ID
		case ref.Patient:
			out.Patient = r
		}
	}
	if ref.Patient == nil && ref.SubjectID == "" {
		// Named only by NHS number: the gateway keeps a minimal Patient of
		// this referral's.
		p := &patpb.Patient{Identifier: []*dpb.Identifier{{
			System: &dpb.Uri{Value: linkbridge.NHSNumberSystem}, Value: &dpb.String{Value: person.NHSNumber},
		}}}
		r, err := render(p, patientID, nil, 0, 0)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, r)
		out.Patient = r
	}
	if ref.Task == nil {
		rf.TaskID = s.get(&ids.task)
		t := fhirmap.NewReferralTask(&rf, srRequester, now)
		r, err := render(t, rf.TaskID, nil, 0, 0)
		if err != nil {
			return nil, err
		}
		in.Resources = append(in.Resources, r)
		out.Task = r
	}
	if err := rf.Validate(); err != nil {
		return nil, err
	}
	if out.Patient == nil {
		if out.Patient, err = s.Store.ReadResource(ctx, "Patient", patientID); err != nil {
			return nil, err
		}
	}
	in.Referral = &rf
	// Subscription topic events of the new referral (its Task): recorded
	// with the intake (docs/subscriptions.md).
	in.Events = s.Systems.TopicEvents([]*linkbridge.Resource{out.Task}, false)
	in.Audit = access.ForWrite(ctx, in.Resources)
	if err := s.Store.CreateReferral(ctx, in); err != nil {
		return nil, err
	}
	out.Referral = &rf
	s.Logger.InfoContext(ctx, "referral stored", slog.String("referral_id", rf.ID), slog.String("task_id", rf.TaskID),
		slog.String("person_id", person.ID), slog.Bool("new_person", newPerson), slog.String("referrer_ods", rf.ReferrerODS), slog.String("service_ods", rf.ServiceODS))
	return out, nil
}

// countWithContained counts entries and the resources they contain.
func countWithContained(entries []*fhirmap.Entry) int {
	n := len(entries)
	for _, e := range entries {
		n += len(fhirmap.Contained(e.Resource))
	}
	return n
}

// personOfPatient returns the person of a Patient the caller already holds
// (a referral whose subject is "Patient/<id>"): read through the store as
// the caller may (EUNPROCESSABLE when it may not, or there is none), then
// found by its NHS number.
func (s *Service) personOfPatient(ctx context.Context, id string) (*linkbridge.Person, error) {
	notHeld := linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "ServiceRequest.subject Patient/%s is not held by this server", id).At("ServiceRequest.subject")
	res, err := s.Store.ReadResource(ctx, "Patient", id)
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		return nil, notHeld
	}
	if err != nil {
		return nil, err
	}
	msg, err := s.Codec.DecodeResource(res.Body)
	if err != nil {
		return nil, err
	}
	p, ok := msg.(*patpb.Patient)
	if !ok {
		return nil, notHeld
	}
	for _, ident := range p.GetIdentifier() {
		if ident.GetSystem().GetValue() == linkbridge.NHSNumberSystem {
			per, err := s.Store.FindPersonByNHSNumber(ctx, ident.GetValue().GetValue())
			if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
				return nil, notHeld
			}
			return per, err
		}
	}
	return nil, notHeld
}

// Reopen opens a new episode for the person of the closed referral
// earlier, at the link worker's request (docs/domain.md#one-open-referral):
// a new referral linked to it (LinkReopened), in the service's inbox
// (requested), with its own ServiceRequest (fhirmap ReopenedServiceRequest,
// which replaces the earlier one) and Task. It keeps what the earlier
// referral established: the person and their Patient, the referring
// organisation and source (the referrer keeps sight of the episode it
// started), the service, the reasons, priority, do-not-contact and the
// consent to share. at is when it was reopened (not in the future, not
// before the earlier episode closed). Only a completed, failed or
// cancelled referral can be reopened (ECONFLICT otherwise), and only while
// the person has no open referral to the service (ECONFLICT naming it).
func (s *Service) Reopen(ctx context.Context, earlier *linkbridge.Referral, at time.Time) (*Result, error) {
	if err := earlier.Reopenable(); err != nil {
		return nil, err
	}
	now := s.now()
	if at.IsZero() {
		at = now
	}
	at = at.UTC()
	switch {
	case at.After(now.Add(linkbridge.MaxClockSkew)):
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "at is in the future").At("at")
	case at.Before(earlier.CompletedAt):
		return nil, linkbridge.Errorf(linkbridge.EUNPROCESSABLE, "at is before the earlier episode closed (%s)", earlier.CompletedAt.Format(time.RFC3339)).At("at")
	}
	person, err := s.Store.FindPerson(ctx, earlier.PersonID)
	if err != nil {
		return nil, err
	}
	rf := linkbridge.Referral{
		ID: s.newID(), TaskID: s.newID(), PersonID: earlier.PersonID, PatientID: earlier.Patient(),
		Status: linkbridge.TaskRequested, RequestStatus: "active", Priority: earlier.Priority,
		ReferrerODS: earlier.ReferrerODS, Source: earlier.Source, ServiceODS: earlier.ServiceODS,
		Reasons: earlier.Reasons, DoNotContact: earlier.DoNotContact, Consent: earlier.Consent,
		Link:       linkbridge.ReferralLink{ReferralID: earlier.ID, Kind: linkbridge.LinkReopened},
		AuthoredOn: at, ReceivedAt: now, UpdatedAt: now, Version: 1,
	}
	rf.Identifier = linkbridge.Identifier{System: s.Systems.Referral(), Value: rf.ID}
	if err := rf.Validate(); err != nil {
		return nil, err
	}
	out := &Result{Created: true, Referral: &rf, ByEntry: map[*fhirmap.Entry]*linkbridge.Resource{}}
	render := func(res proto.Message, id string) (*linkbridge.Resource, error) {
		fhirmap.SetID(res, id)
		fhirmap.SetMeta(res, 1, now)
		params := fhirmap.SearchParams(res) // before Encode, which denormalises references in place
		body, err := s.Codec.Encode(res)
		if err != nil {
			return nil, fmt.Errorf("intake: render %s: %w", fhirmap.TypeName(res), err)
		}
		return &linkbridge.Resource{Type: fhirmap.TypeName(res), ID: id, VersionID: 1, LastUpdated: now, Body: body, Params: params}, nil
	}
	sr := s.Systems.ReopenedServiceRequest(&rf, earlier.ID)
	if out.ServiceRequest, err = render(sr, rf.ID); err != nil {
		return nil, err
	}
	if out.Task, err = render(fhirmap.NewReferralTask(&rf, sr.GetRequester(), now), rf.TaskID); err != nil {
		return nil, err
	}
	in := &linkbridge.Intake{Person: person, Referral: &rf, Resources: []*linkbridge.Resource{out.ServiceRequest, out.Task}}
	in.Audit = access.ForWrite(ctx, in.Resources)
	if err := s.Store.CreateReferral(ctx, in); err != nil {
		return nil, err
	}
	if out.Patient, err = s.Store.ReadResource(ctx, "Patient", rf.Patient()); err != nil {
		return nil, err
	}
	s.Logger.InfoContext(ctx, "episode reopened", slog.String("referral_id", rf.ID), slog.String("task_id", rf.TaskID),
		slog.String("earlier_referral_id", earlier.ID), slog.String("person_id", rf.PersonID), slog.String("service_ods", rf.ServiceODS))
	return out, nil
}
