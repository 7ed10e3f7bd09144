package access

import (
	"context"
	"slices"
	"sync"

	"github.com/linkbridge/linkbridge"
)

// MaxPage is the largest search page the API serves (FHIR _count).
const MaxPage = 200

// MaxAuditEntities bounds the resources an audit record names: enough for
// the largest answer, a search page (MaxPage) with as many resources
// included by each of the four _include values of a Task search, and the
// Patients a chained patient.identifier search found.
const MaxAuditEntities = MaxPage * 6

// Trail is the per-request access state carried in the context: the
// resources the request disclosed or wrote (for its audit record), the
// authenticated client, and the audit
// record that committed with the request's write. The transport creates one
// per request (WithTrail); Store and the use cases fill it. Safe for
// concurrent use.
type Trail struct {
	mu       sync.Mutex
	entities []string
	seen     map[string]bool
	// clientID is the authenticated client, for the request log line.
	clientID string
	// writeAudit builds the audit record a write carries (see ForWrite)
	// from the entities it touches; set only when the audit trail is kept
	// in the store the use cases write to.
	writeAudit func(entities []string) *linkbridge.AuditRecord
	// committed is the audit record that committed with the request's
	// write: the after-handler audit then writes none of its own.
	committed *linkbridge.AuditRecord
}

type trailKey struct{}

// WithTrail returns a context carrying t.
func WithTrail(ctx context.Context, t *Trail) context.Context {
	return context.WithValue(ctx, trailKey{}, t)
}

// TrailFrom returns the context's Trail, or nil.
func TrailFrom(ctx context.Context) *Trail {
	t, _ := ctx.Value(trailKey{}).(*Trail)
	return t
}

// Client returns the authenticated client id, or "".
func (t *Trail) Client() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clientID
}

// SetClient records the authenticated client id.
func (t *Trail) SetClient(id string) {
	t.mu.Lock()
	t.clientID = id
	t.mu.Unlock()
}

// SetWriteAudit sets how a write's audit record is built (see ForWrite).
func (t *Trail) SetWriteAudit(build func(entities []string) *linkbridge.AuditRecord) {
	t.mu.Lock()
	t.writeAudit = build
	t.mu.Unlock()
}

// Snapshot returns the audit record that committed with the request's write
// (nil when none did) and a copy of the entities noted so far.
func (t *Trail) Snapshot() (committed *linkbridge.AuditRecord, entities []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.committed, slices.Clone(t.entities)
}

// MarkCommitted notes that rec committed with the request's write; nothing
// for nil.
func MarkCommitted(ctx context.Context, rec *linkbridge.AuditRecord) {
	t := TrailFrom(ctx)
	if t == nil || rec == nil {
		return
	}
	t.mu.Lock()
	t.committed = rec
	t.mu.Unlock()
}

// Note records resources the request touched ("Type/id"), at most
// MaxAuditEntities.
func Note(ctx context.Context, refs ...string) {
	t := TrailFrom(ctx)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]bool{}
	}
	for _, r := range refs {
		if !t.seen[r] && len(t.entities) < MaxAuditEntities {
			t.seen[r] = true
			t.entities = append(t.entities, r)
		}
	}
}

// ForWrite returns the audit record a write carries (Intake.Audit,
// ReferralChange.Audit), so that it commits with the write: the request's
// record as it will be when the write succeeds (the route's success
// status, the entities noted so far and those the write stores). Nil when
// the request's record is written after the handler instead (no audit
// trail, or one kept in another store). Store marks the record committed
// when the write succeeds; when it fails, nothing of it is stored and the
// after-handler audit records the failure.
func ForWrite(ctx context.Context, written []*linkbridge.Resource) *linkbridge.AuditRecord {
	t := TrailFrom(ctx)
	if t == nil {
		return nil
	}
	t.mu.Lock()
	build, entities := t.writeAudit, slices.Clone(t.entities)
	t.mu.Unlock()
	if build == nil {
		return nil
	}
	// As Note would add them, had the write succeeded.
	for _, r := range written {
		if ref := r.Reference(); len(entities) < MaxAuditEntities && !slices.Contains(entities, ref) {
			entities = append(entities, ref)
		}
	}
	return build(entities)
}
