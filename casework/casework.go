// Package casework is the one builder of every change to a referral: the
// link workers' case-record changes (/sp/v1: lifecycle actions, contacts,
// measures, the plan, consent, corrections), the FHIR Task updates of either party, and
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
	"slices"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/access"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
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
	// Own, when set, reads the resources of a referral a change was
	// authorised for (its Task and the FHIR view generated for it) by
	// primary key, without a per-resource access check: the caller's right
	// to the referral was checked when its case record was read, and the
	// referral's own resources carry its access keys. Nil reads through
	// Store.
	Own linkbridge.Store
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
	// Routes are the practices' write-back routes (nil: every practice
	// the FHIR route).
	Routes *linkbridge.WriteBackRoutes
	// Documents configures the send-document route (nil: no documents).
	Documents *Documents
	// OnWriteBack, if set, is called after a change with write-backs
	// commits (it wakes the relay).
	OnWriteBack func()
	// Systems are the deployment's URIs (serve --system-base): the code
	// systems, extensions and identifier systems of the FHIR view, and the
	// write-back key. The zero value is the default base.
	Systems fhirmap.Systems
}

// own is the store that reads a referral's own resources (see Own).
func (s *Service) own() linkbridge.Store {
	if s.Own != nil {
		return s.Own
	}
	return s.Store
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
	// the stored Task with the case's workflow state applied. stored is a
	// copy of the stored version, which task may change and return.
	task func(stored *taskpb.Task, cr *linkbridge.CaseRecord, view []fhirmap.Generated, now time.Time) (*taskpb.Task, error)
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
	// erase marks a withheld version (fhirmap.Withhold): the consent no
	// longer allows the resource on the GP record, which must delete it
	// (or, where it cannot, keep only this version).
	erase bool
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
	// The FHIR view before the change: what it no longer holds is
	// withdrawn on the GP record (see render).
	before := s.Systems.CaseView(cr)
	prevStatus := cr.Referral.Status
	prevRef := *cr.Referral
	var prevAgreed *time.Time
	if a := cr.Plan.AgreedAt; a != nil {
		t := *a
		prevAgreed = &t
	}
	next := *cr.Referral
	cr.Referral = &next
	ch := &linkbridge.ReferralChange{Referral: &next, MessageID: c.messageID}
	if err := c.edit(cr, ch, now); err != nil {
		return nil, nil, err
	}
	next.Version++
	next.UpdatedAt = now
	versions, err := s.render(ctx, cr, c, before, now)
	if err != nil {
		return nil, nil, err
	}
	var mine []*linkbridge.Resource // the referral's own view, not the referrer's resources
	for _, v := range versions {
		ch.Resources = append(ch.Resources, v.res)
		if !v.own {
			mine = append(mine, v.res)
		}
	}
	// Subscription topic events: recorded, numbered and queued with the
	// change (docs/subscriptions.md).
	ch.Events = s.Systems.TopicEvents(mine, prevStatus != next.Status)
	if s.WriteBack {
		route := s.Routes.For(practiceODS(cr))
		if route.FHIR {
			if ch.Outbox, err = s.writeBacks(ctx, cr, versions, c, now); err != nil {
				return nil, nil, err
			}
		}
		if route.SendDocument {
			doc, err := s.document(ctx, cr, &prevRef, prevAgreed, c.action, now)
			if err != nil {
				return nil, nil, err
			}
			if doc != nil {
				ch.Outbox = append(ch.Outbox, doc)
			}
		}
	}
	var occurred time.Time
	if ch.Event != nil { // set by edit: when the change happened
		occurred = ch.Event.OccurredAt
	}
	ch.Event = &linkbridge.ReferralEvent{ReferralID: next.ID, Version: next.Version, At: now, OccurredAt: occurred,
		Action: c.action, Actor: actorName(&next, c.actor), Status: next.Status}
	ch.Audit = access.ForWrite(ctx, ch.Resources)
	if err := s.Store.UpdateReferral(ctx, ch); err != nil {
		return nil, nil, err
	}
	cr.Events = append(cr.Events, ch.Event)
	if (len(ch.Outbox) > 0 || len(ch.Events) > 0) && s.OnWriteBack != nil {
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
// Every new version of a generated resource is validated by google/fhir
// before it is stored (an unchanged one renders as the stored version,
// which was validated when it was written).
//
// FHIR JSON work per resource, each change (encode: a jsonformat marshal,
// ~0.1 ms; decode: a validating parse, ~0.2 ms; measured in
// BenchmarkCaseChangeWriteBack's resources):
//   - a generated resource: 1 encode, with the stored meta, compared with
//     the stored bytes; a new version keeps those bytes with its own meta
//     (fhirjson.SetVersionMeta) and is validated on them
//     (Codec.ValidateEncoded), so it costs no second encode;
//   - the referral Task: 1 decode of the stored version (which the change
//     edits), compared with the next content as protos (sameContent, no
//     encode); 1 encode when it changed;
//   - a resource of the referrer's (also): 1 encode, as a generated one,
//     not validated (it was decoded from the stored version).
//
// writeBacks then encodes each new version once more in its GP form, and
// the Provenance once. So a written-back resource version costs 2 encodes
// and no decode (the Task: 2 encodes, 1 decode; the Provenance: 1 encode),
// and the relay sends the stored body (gpfhir.Sender edits its JSON to
// link the GP's Patient). Before, a generated resource version cost a
// json.Marshal, 1 decode and 3 encodes (probe, store, GP form); the Task
// 1 decode and 3 encodes; the Provenance a json.Marshal, 1 decode and
// 1 encode; and the relay added 1 decode and 1 encode to each when it
// linked the GP's Patient.
func (s *Service) render(ctx context.Context, cr *linkbridge.CaseRecord, c change, before []fhirmap.Generated, now time.Time) ([]version, error) {
	view := s.Systems.CaseView(cr)
	var out []version
	for _, g := range view {
		res, err := s.versionIfChanged(ctx, g.Resource, now, true)
		if err != nil {
			return nil, err // a generated resource that fails validation is our bug
		}
		if res != nil {
			out = append(out, version{res: res, msg: g.Resource})
		}
	}
	// A goal or onward referral the plan no longer holds is withdrawn
	// (Goal cancelled, ServiceRequest revoked), so the GP record stops
	// showing it as current. (When the consent withholds the whole view,
	// nothing is withdrawn here: that is the consent's change, not the
	// plan's.)
	if len(view) > 0 {
		kept := make(map[string]bool, len(view))
		for _, g := range view {
			kept[g.Reference()] = true
		}
		for _, g := range before {
			if kept[g.Reference()] || !fhirmap.Withdrawable(g) {
				continue
			}
			cur, err := s.own().ReadResource(ctx, g.Type, g.ID)
			if err != nil {
				return nil, err
			}
			msg, err := s.Codec.DecodeResource(cur.Body)
			if err != nil {
				return nil, err
			}
			fhirmap.Withdraw(msg)
			res, err := s.versionIfChanged(ctx, msg, now, true)
			if err != nil {
				return nil, err
			}
			if res != nil {
				out = append(out, version{res: res, msg: msg})
			}
		}
	}
	// The referral Task carries the workflow state and the outputs.
	cur, err := s.own().ReadResource(ctx, "Task", cr.Referral.TaskID)
	if err != nil {
		return nil, err
	}
	stored, err := s.Codec.DecodeResource(cur.Body)
	if err != nil {
		return nil, err
	}
	st := stored.(*taskpb.Task)
	next := proto.Clone(st).(*taskpb.Task)
	var t *taskpb.Task
	if c.task != nil {
		if t, err = c.task(next, cr, view, now); err != nil {
			return nil, err
		}
	} else {
		s.Systems.ApplyCaseToTask(next, cr.Referral, view, now)
		t = next
	}
	if !sameContent(t, st) {
		res, err := s.renderVersion(t, cur.VersionID+1, now)
		if err != nil {
			return nil, err
		}
		out = append(out, version{res: res, msg: t})
	}
	// The consent withholds the whole view now: every resource it held,
	// and every goal and onward referral a plan ever listed, is withheld
	// (after the Task, which stops naming them as outputs).
	if len(view) == 0 && len(before) > 0 {
		erased, err := s.withhold(ctx, cr, before, now)
		if err != nil {
			return nil, err
		}
		out = append(out, erased...)
	}
	for _, m := range c.also {
		res, err := s.versionIfChanged(ctx, m, now, false)
		if err != nil {
			return nil, err
		}
		if res != nil {
			out = append(out, version{res: res, msg: m, own: true})
		}
	}
	return out, nil
}

// withhold renders the withheld version (fhirmap.Withhold) of every
// resource the view held before (before) and of every Goal and
// ServiceRequest any version of the CarePlan listed (withdrawn ones, no
// longer in the view, are on the GP record too), CarePlan first: on an
// endpoint that enforces references, nothing may still point at what is
// deleted after it.
func (s *Service) withhold(ctx context.Context, cr *linkbridge.CaseRecord, before []fhirmap.Generated, now time.Time) ([]version, error) {
	refs := make([]string, 0, len(before))
	seen := map[string]bool{}
	add := func(ref string) {
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	add("CarePlan/" + fhirmap.CarePlanID(cr.Referral.ID))
	for _, g := range before {
		add(g.Reference())
	}
	hist, err := s.own().ResourceHistory(ctx, "CarePlan", fhirmap.CarePlanID(cr.Referral.ID))
	if err != nil && linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		return nil, err
	}
	for _, h := range hist {
		lrs, err := fhirjson.LiteralReferences(h.Body)
		if err != nil {
			return nil, err
		}
		for _, lr := range lrs {
			if lr.Type == "Goal" || lr.Type == "ServiceRequest" && lr.ID != cr.Referral.ID {
				add(lr.Key())
			}
		}
	}
	// Read them all, then withhold each before what it references (a
	// follow-up measure before its baseline, a DNA entry before its
	// Encounter): an endpoint that enforces references refuses to delete
	// a resource another still points at.
	stored := make(map[string]*linkbridge.Resource, len(refs))
	var held []string
	for _, ref := range refs {
		typ, id, _ := strings.Cut(ref, "/")
		cur, err := s.own().ReadResource(ctx, typ, id)
		if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, err
		}
		stored[ref] = cur
		held = append(held, ref)
	}
	order, err := referrersFirst(held, stored)
	if err != nil {
		return nil, err
	}
	var out []version
	for _, ref := range order {
		cur := stored[ref]
		msg, err := s.Codec.DecodeResource(cur.Body)
		if err != nil {
			return nil, err
		}
		w := fhirmap.Withhold(msg)
		if w == nil {
			continue
		}
		res, err := s.versionIfChanged(ctx, w, now, true)
		if err != nil {
			return nil, err
		}
		if res != nil {
			out = append(out, version{res: res, msg: w, erase: true})
		}
	}
	return out, nil
}

// referrersFirst orders refs so that a resource comes before every
// resource of refs its stored body references (Kahn's algorithm on the
// reference graph, stable: otherwise in the order given; a cycle, which
// the FHIR view never makes, keeps the order given for what is left).
func referrersFirst(refs []string, stored map[string]*linkbridge.Resource) ([]string, error) {
	in := make(map[string]bool, len(refs))
	for _, r := range refs {
		in[r] = true
	}
	targets := make(map[string][]string, len(refs))
	referrers := make(map[string]int, len(refs))
	for _, r := range refs {
		lrs, err := fhirjson.LiteralReferences(stored[r].Body)
		if err != nil {
			return nil, err
		}
		for _, lr := range lrs {
			if k := lr.Key(); in[k] && k != r && !slices.Contains(targets[r], k) {
				targets[r] = append(targets[r], k)
				referrers[k]++
			}
		}
	}
	out := make([]string, 0, len(refs))
	done := make(map[string]bool, len(refs))
	for len(out) < len(refs) {
		progressed := false
		for _, r := range refs {
			if done[r] || referrers[r] > 0 {
				continue
			}
			done[r], progressed = true, true
			out = append(out, r)
			for _, t := range targets[r] {
				referrers[t]--
			}
		}
		if !progressed { // a cycle: the rest in the order given
			for _, r := range refs {
				if !done[r] {
					done[r] = true
					out = append(out, r)
				}
			}
		}
	}
	return out, nil
}

// versionIfChanged renders msg as the next version of its stored resource,
// or returns nil when its content equals the stored version: rendered with
// the stored meta, it is the stored body byte for byte (google/fhir renders
// a proto deterministically). A new version reuses that rendering with its
// own meta, and is checked with Codec.ValidateEncoded first when validate
// is set. msg's meta is left set for the version (or the stored one).
func (s *Service) versionIfChanged(ctx context.Context, msg proto.Message, now time.Time, validate bool) (*linkbridge.Resource, error) {
	typ, id := fhirmap.TypeName(msg), fhirmap.ID(msg)
	cur, err := s.own().ReadResource(ctx, typ, id)
	var body []byte
	version := 1
	switch {
	case linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND:
		fhirmap.SetMeta(msg, version, now)
		if body, err = s.Codec.Encode(msg); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		fhirmap.SetMeta(msg, cur.VersionID, cur.LastUpdated)
		if body, err = s.Codec.Encode(msg); err != nil {
			return nil, err
		}
		if bytes.Equal(body, cur.Body) {
			return nil, nil
		}
		version = cur.VersionID + 1
		fhirmap.SetMeta(msg, version, now)
		if body, err = fhirjson.SetVersionMeta(body, version, now); err != nil {
			return nil, err
		}
	}
	if validate {
		if err := s.Codec.ValidateEncoded(msg, body); err != nil {
			return nil, err
		}
	}
	return &linkbridge.Resource{Type: typ, ID: id, VersionID: version, LastUpdated: now, Body: body, Params: fhirmap.SearchParams(msg)}, nil
}

// sameContent tells whether the Task next says what stored says, apart
// from meta.versionId, meta.lastUpdated and lastModified (a new
// lastModified alone is no change). It compares the two protos' binary
// encodings, deterministic for messages without maps, as FHIR's are: about
// 10 µs for two Tasks where proto.Equal's reflective walk takes 40 µs and a
// jsonformat encode 100 µs. Equal protos render as equal JSON; unlike a
// comparison of the renderings, a stored body kept as the GP sent it
// (fhirjson.Stamp, other member order) is no change either. The fields
// it ignores are set aside and put back on both Tasks.
func sameContent(next, stored *taskpb.Task) bool {
	a, errA := contentBytes(next)
	b, errB := contentBytes(stored)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}

// contentBytes is t's binary encoding without meta.versionId,
// meta.lastUpdated and lastModified.
func contentBytes(t *taskpb.Task) ([]byte, error) {
	meta, lastModified := t.Meta, t.LastModified
	defer func() { t.Meta, t.LastModified = meta, lastModified }()
	t.LastModified = nil
	if meta != nil {
		m := proto.Clone(meta).(*dpb.Meta)
		m.VersionId, m.LastUpdated = nil, nil
		t.Meta = m
		if proto.Size(m) == 0 {
			t.Meta = nil
		}
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(t)
}

// renderVersion sets meta and renders a version of a resource.
func (s *Service) renderVersion(res proto.Message, version int, now time.Time) (*linkbridge.Resource, error) {
	fhirmap.SetMeta(res, version, now)
	body, err := s.Codec.Encode(res)
	if err != nil {
		return nil, err
	}
	return &linkbridge.Resource{Type: fhirmap.TypeName(res), ID: fhirmap.ID(res), VersionID: version, LastUpdated: now, Body: body, Params: fhirmap.SearchParams(res)}, nil
}

// writeBacks renders the outbox messages of a change: each new resource
// version as the GP record should hold it (patient by NHS number, the
// referral by the referrer's identifier), then the Provenance naming the
// change's author, queued after the resources it targets in the same order
// key. Each is rendered by google/fhir now, in the transaction of the
// change, and sent as stored.
func (s *Service) writeBacks(ctx context.Context, cr *linkbridge.CaseRecord, versions []version, c change, now time.Time) ([]*linkbridge.OutboxMessage, error) {
	nhs := ""
	if cr.Person != nil {
		nhs = cr.Person.NHSNumber
	}
	msg := func(typ, id string, version int, body []byte) *linkbridge.OutboxMessage {
		if body == nil {
			body = []byte{}
		}
		return &linkbridge.OutboxMessage{
			OrderKey: cr.Referral.PersonID, ReferralID: cr.Referral.ID,
			ResourceType: typ, ResourceID: id, Version: version,
			Body: body, NHSNumber: nhs, State: linkbridge.OutboxPending,
			AvailableAt: now, CreatedAt: now,
		}
	}
	var out []*linkbridge.OutboxMessage
	var targets []*linkbridge.Resource
	logical := s.newLogicalRefs(ctx, cr, versions)
	var erased []*linkbridge.OutboxMessage
	for _, v := range versions {
		if v.own {
			continue
		}
		body, err := s.Codec.Encode(s.Systems.ForGPRecord(v.msg, cr.Referral, nhs, logical.ref))
		if err != nil {
			return nil, err
		}
		if logical.err != nil {
			return nil, logical.err
		}
		m := msg(v.res.Type, v.res.ID, v.res.VersionID, body)
		if v.erase {
			m.Erase = true
			erased = append(erased, m)
			continue
		}
		out = append(out, m)
		targets = append(targets, v.res)
	}
	if len(erased) > 0 {
		// The Provenance of every earlier change names what is withheld
		// now: it goes before them (deleted where the endpoint can; an
		// endpoint that cannot keeps it, pointing at withheld versions).
		for _, e := range cr.Events {
			if e.Version < cr.Referral.Version {
				m := msg("Provenance", fhirmap.ProvenanceID(cr.Referral.ID, e.Version), 2, nil)
				m.Erase = true
				out = append(out, m)
			}
		}
		out = append(out, erased...)
	}
	if len(targets) == 0 {
		return out, nil
	}
	// The Provenance is its own GP form: it names no patient and carries
	// its write-back key (a meta.tag) from WriteBackProvenance.
	prov := s.Systems.WriteBackProvenance(cr.Referral, cr.Referral.Version, targets, c.action, c.actor, now)
	body, err := s.Codec.Encode(prov)
	if err != nil {
		return nil, err
	}
	if err := s.Codec.ValidateEncoded(prov, body); err != nil {
		return nil, err // a generated resource that fails validation is our bug
	}
	return append(out, msg("Provenance", fhirmap.ID(prov), 1, body)), nil
}

// logicalRefs is how a change's write-backs refer to resources: the
// resources linkbridge writes back for the referral (its FHIR view, the
// referral Task, and every version of the change) keep their literal
// references, which the relay rewrites to the endpoint's ids; any other
// (the referrer's PractitionerRole, Organization, Condition...) becomes a
// logical reference built from the stored resource (fhirmap.LogicalRef),
// because the GP endpoint does not hold it. A resource not in the store is
// named by type and a display only. Each is read and decoded once a change;
// a store error is kept in err (ForGPRecord's walk cannot return one).
type logicalRefs struct {
	s       *Service
	ctx     context.Context
	written map[string]bool
	cache   map[string]*dpb.Reference
	err     error
}

func (s *Service) newLogicalRefs(ctx context.Context, cr *linkbridge.CaseRecord, versions []version) *logicalRefs {
	written := map[string]bool{"Task/" + cr.Referral.TaskID: true}
	for _, g := range s.Systems.CaseView(cr) {
		written[g.Reference()] = true
	}
	for _, v := range versions {
		written[v.res.Type+"/"+v.res.ID] = true
	}
	return &logicalRefs{s: s, ctx: ctx, written: written, cache: map[string]*dpb.Reference{}}
}

// ref is a fhirmap.LogicalRefs.
func (l *logicalRefs) ref(typ, id string) *dpb.Reference {
	key := typ + "/" + id
	if l.written[key] || l.err != nil {
		return nil
	}
	if ref, ok := l.cache[key]; ok {
		return proto.Clone(ref).(*dpb.Reference)
	}
	ref := &dpb.Reference{Type: &dpb.Uri{Value: typ}, Display: &dpb.String{Value: typ + " not held in this record"}}
	cur, err := l.s.own().ReadResource(l.ctx, typ, id)
	switch {
	case err == nil:
		res, derr := l.s.Codec.DecodeResource(cur.Body)
		if derr != nil {
			l.err = derr
			return nil
		}
		ref = fhirmap.LogicalRef(res)
	case linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND:
		l.err = err
		return nil
	}
	l.cache[key] = ref
	return proto.Clone(ref).(*dpb.Reference)
}
