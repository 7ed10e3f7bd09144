// Package casework is the one builder of every change to a referral: the
// link workers' case-record changes (/sp/v1: lifecycle actions, contacts,
// measures, the plan, consent), the FHIR Task updates of either party, and
// the referrer's revocation (PUT ServiceRequest or a BaRS cancellation
// message). Each change is applied to the domain (the rules are methods on
// the root types), then, in one store transaction: the referral's new
// version, its history event, every regenerated FHIR resource whose content
// changed, the write-backs of those resources to the GP record with the
// Provenance naming their author, and the request's audit record.
//
// casework knows nothing of HTTP: callers pass preconditions (If-Match) as
// versions and get application errors (linkbridge.Error codes) back.
package casework

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
	"google.golang.org/protobuf/proto"
)

// Service applies changes to referrals. Configure the fields, then share
// it; it is safe for concurrent use.
type Service struct {
	// Store is the social prescribing store, usually an access.Store so
	// that every call is limited to the caller.
	Store linkbridge.Store
	// Cases is the case-record side of Store.
	Cases linkbridge.CaseStore
	// Codec parses and renders FHIR JSON; build it once and share it.
	Codec *fhirjson.Codec
	// Logger receives structured logs (ids only, never personal data).
	Logger *slog.Logger
	// Now returns the current time; defaults to time.Now.
	Now func() time.Time
	// NewID returns a new id for a contact, measure or plan item.
	NewID func() string
	// WriteBack enqueues every change's new resource versions for delivery
	// to the GP record (set when a GP-side endpoint is configured).
	WriteBack bool
	// OnWriteBack, if set, is called after a change with write-backs
	// commits (it wakes the relay).
	OnWriteBack func()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// CheckVersion is the If-Match precondition: nil when want is 0 (none
// given) or equals current, EPRECONDITION otherwise.
func CheckVersion(want, current int) error {
	if want != 0 && want != current {
		return linkbridge.Errorf(linkbridge.EPRECONDITION, "If-Match version %d is stale: the current version is %d", want, current)
	}
	return nil
}

// change is one change to a referral, applied by Service.apply.
type change struct {
	referralID string
	// action names the change in the history and the Provenance.
	action string
	// actor is the side making the change; a performer's change is
	// attributed to the link worker holding the case.
	actor linkbridge.Actor
	// messageID is the BaRS message the change came in (for replay checks).
	messageID string
	// check runs on the stored record before anything changes
	// (preconditions).
	check func(cr *linkbridge.CaseRecord) error
	// edit changes the record (cr.Referral is a copy) and the change's
	// case-record rows.
	edit func(cr *linkbridge.CaseRecord, ch *linkbridge.ReferralChange, now time.Time) error
	// task, when set, returns the referral Task's next content; by default
	// the stored Task with the case's workflow state applied.
	task func(stored *taskpb.Task, cr *linkbridge.CaseRecord, view []fhirmap.Generated, now time.Time) (proto.Message, error)
	// also are further resources the change versions (the revoked
	// ServiceRequest); they are stored but not written back: they are the
	// referrer's own.
	also []proto.Message
}

// version is a new resource version with the proto it was rendered from.
type version struct {
	res *linkbridge.Resource
	msg proto.Message
	// own marks a resource of the referrer's, not written back.
	own bool
}

// apply is the one way a referral changes: load, check, edit, regenerate
// the FHIR view, and store everything in one transaction.
func (s *Service) apply(ctx context.Context, c change) (*linkbridge.CaseRecord, []version, error) {
	cr, err := s.Cases.GetCaseRecord(ctx, c.referralID)
	if err != nil {
		return nil, nil, err
	}
	if c.check != nil {
		if err := c.check(cr); err != nil {
			return nil, nil, err
		}
	}
	now := s.now()
	next := *cr.Referral
	cr.Referral = &next
	ch := &linkbridge.ReferralChange{Referral: &next, MessageID: c.messageID}
	if err := c.edit(cr, ch, now); err != nil {
		return nil, nil, err
	}
	next.Version++
	next.UpdatedAt = now
	versions, err := s.render(ctx, cr, c, now)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range versions {
		ch.Resources = append(ch.Resources, v.res)
	}
	if s.WriteBack {
		if ch.Outbox, err = s.writeBacks(cr, versions, c, now); err != nil {
			return nil, nil, err
		}
	}
	ch.Event = &linkbridge.ReferralEvent{ReferralID: next.ID, Version: next.Version, At: now, Action: c.action, Actor: actorName(&next, c.actor), Status: next.Status}
	ch.Audit = access.ForWrite(ctx, ch.Resources)
	if err := s.Store.UpdateReferral(ctx, ch); err != nil {
		return nil, nil, err
	}
	cr.Events = append(cr.Events, ch.Event)
	if len(ch.Outbox) > 0 && s.OnWriteBack != nil {
		s.OnWriteBack()
	}
	s.Logger.InfoContext(ctx, "referral changed", slog.String("referral_id", next.ID), slog.String("action", c.action),
		slog.String("actor", string(c.actor)), slog.Int("version", next.Version), slog.String("status", string(next.Status)),
		slog.Int("fhir_versions", len(versions)), slog.Int("write_backs", len(ch.Outbox)))
	return cr, versions, nil
}

// actorName is who the history says made a change: the link worker
// holding the case for the performer's changes, else the side.
func actorName(r *linkbridge.Referral, a linkbridge.Actor) string {
	if a == linkbridge.ActorRequester {
		return string(a)
	}
	if r.LinkWorker.ID != "" {
		return r.LinkWorker.ID
	}
	return string(linkbridge.ActorPerformer)
}

// render regenerates the FHIR view of a case and returns a new version of
// every resource whose content changed (and version 1 of new ones): the
// generated resources, the referral Task, and the change's own resources.
// Each is validated by google/fhir before it is stored.
func (s *Service) render(ctx context.Context, cr *linkbridge.CaseRecord, c change, now time.Time) ([]version, error) {
	view := fhirmap.CaseView(cr)
	var out []version
	for _, g := range view {
		if err := s.Codec.Validate(g.Resource); err != nil {
			return nil, err // a generated resource that fails validation is our bug
		}
		res, err := s.versionIfChanged(ctx, g.Resource, now, nil)
		if err != nil {
			return nil, err
		}
		if res != nil {
			out = append(out, version{res: res, msg: g.Resource})
		}
	}
	// The referral Task carries the workflow state and the outputs.
	cur, err := s.Store.ReadResource(ctx, "Task", cr.Referral.TaskID)
	if err != nil {
		return nil, err
	}
	stored, err := s.Codec.DecodeResource(cur.Body)
	if err != nil {
		return nil, err
	}
	st := stored.(*taskpb.Task)
	storedLastModified := st.GetLastModified()
	var t proto.Message
	if c.task != nil {
		if t, err = c.task(st, cr, view, now); err != nil {
			return nil, err
		}
	} else {
		fhirmap.ApplyCaseToTask(st, cr.Referral, view, now)
		t = st
	}
	res, err := s.versionIfChanged(ctx, t, now, func(p proto.Message) {
		p.(*taskpb.Task).LastModified = storedLastModified // a new lastModified alone is no change
	})
	if err != nil {
		return nil, err
	}
	if res != nil {
		out = append(out, version{res: res, msg: t})
	}
	for _, m := range c.also {
		res, err := s.versionIfChanged(ctx, m, now, nil)
		if err != nil {
			return nil, err
		}
		if res != nil {
			out = append(out, version{res: res, msg: m, own: true})
		}
	}
	return out, nil
}

// versionIfChanged renders msg as the next version of its stored resource,
// or returns nil when its content equals the stored version. Content is
// compared by rendering it with the stored meta: google/fhir renders a
// proto deterministically. probe, if set, adjusts the copy used for the
// comparison (e.g. to ignore a Task's lastModified).
func (s *Service) versionIfChanged(ctx context.Context, msg proto.Message, now time.Time, probe func(proto.Message)) (*linkbridge.Resource, error) {
	typ, id := fhirmap.TypeName(msg), fhirmap.ID(msg)
	cur, err := s.Store.ReadResource(ctx, typ, id)
	switch {
	case linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND:
		return s.renderVersion(msg, 1, now)
	case err != nil:
		return nil, err
	}
	p := proto.Clone(msg)
	fhirmap.SetMeta(p, cur.VersionID, cur.LastUpdated)
	if probe != nil {
		probe(p)
	}
	body, err := s.Codec.Encode(p)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(body, cur.Body) {
		return nil, nil
	}
	return s.renderVersion(msg, cur.VersionID+1, now)
}

// renderVersion sets meta and renders a version of a resource.
func (s *Service) renderVersion(res proto.Message, version int, now time.Time) (*linkbridge.Resource, error) {
	fhirmap.SetMeta(res, version, now)
	params := fhirmap.SearchParams(res) // before Encode, which denormalises references in place
	body, err := s.Codec.Encode(res)
	if err != nil {
		return nil, err
	}
	return &linkbridge.Resource{Type: fhirmap.TypeName(res), ID: fhirmap.ID(res), VersionID: version, LastUpdated: now, Body: body, Params: params}, nil
}

// writeBacks renders the outbox messages of a change: each new resource
// version as the GP record should hold it (patient by NHS number, the
// referral by the referrer's identifier), then the Provenance naming the
// change's author, queued after the resources it targets in the same order
// key. Each is rendered by google/fhir now, in the transaction of the
// change, and sent as stored.
func (s *Service) writeBacks(cr *linkbridge.CaseRecord, versions []version, c change, now time.Time) ([]*linkbridge.OutboxMessage, error) {
	nhs := ""
	if cr.Person != nil {
		nhs = cr.Person.NHSNumber
	}
	msg := func(typ, id string, version int, body []byte) *linkbridge.OutboxMessage {
		return &linkbridge.OutboxMessage{
			OrderKey: cr.Referral.PersonID, ReferralID: cr.Referral.ID,
			ResourceType: typ, ResourceID: id, Version: version,
			Body: body, NHSNumber: nhs, State: linkbridge.OutboxPending,
			AvailableAt: now, CreatedAt: now,
		}
	}
	var out []*linkbridge.OutboxMessage
	var targets []*linkbridge.Resource
	for _, v := range versions {
		if v.own {
			continue
		}
		body, err := s.Codec.Encode(fhirmap.ForGPRecord(v.msg, cr.Referral, nhs))
		if err != nil {
			return nil, err
		}
		out = append(out, msg(v.res.Type, v.res.ID, v.res.VersionID, body))
		targets = append(targets, v.res)
	}
	if len(targets) == 0 {
		return out, nil
	}
	prov := fhirmap.WriteBackProvenance(cr.Referral, cr.Referral.Version, targets, c.action, c.actor, now)
	if err := s.Codec.Validate(prov); err != nil {
		return nil, err // a generated resource that fails validation is our bug
	}
	body, err := s.Codec.Encode(prov)
	if err != nil {
		return nil, err
	}
	return append(out, msg("Provenance", fhirmap.ID(prov), 1, body)), nil
}
