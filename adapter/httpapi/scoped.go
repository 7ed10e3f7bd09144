package httpapi

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/linkbridge/linkbridge"
)

// scopedStore enforces per-organisation authorisation at the store
// boundary: every store call a handler makes with an authenticated request
// context is limited to the caller's referrals (linkbridge.Principal). A
// referral or resource outside the caller's scope is ENOTFOUND with the
// message a missing one gets, so the two cannot be told apart. It also
// notes, for the audit trail, every resource the request read or wrote, and
// the audit record that committed with a write.
// Without a principal in the context (authentication off, background work)
// calls pass through unchanged.
type scopedStore struct {
	linkbridge.Store
	cases linkbridge.CaseStore
}

var (
	_ linkbridge.Store     = (*scopedStore)(nil)
	_ linkbridge.CaseStore = (*scopedStore)(nil)
)

// requestState is per-request security state carried in the context: the
// audit note and the people an intake may link to.
type requestState struct {
	mu       sync.Mutex
	entities []string
	seen     map[string]bool
	// linking is the person an intake found by NHS number: the GP naming a
	// person's NHS number in a referral links to them, and the Patient
	// gains the GP's access when the referral is stored.
	linking string
	// clientID is the authenticated client, for the request log line.
	clientID string
	// writeAudit, set by the security layer when the audit trail is kept
	// in the store the handlers write to, builds the audit record a write
	// carries (see auditWrite) from the entities it touches.
	writeAudit func(entities []string) *linkbridge.AuditRecord
	// committed is the audit record that committed with the request's
	// write: the after-handler audit then writes none of its own.
	committed *linkbridge.AuditRecord
}

// markCommitted notes that rec committed with the request's write; nothing
// for nil.
func markCommitted(ctx context.Context, rec *linkbridge.AuditRecord) {
	st := stateFrom(ctx)
	if st == nil || rec == nil {
		return
	}
	st.mu.Lock()
	st.committed = rec
	st.mu.Unlock()
}

// client returns the authenticated client id, or "".
func (st *requestState) client() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.clientID
}

type stateKey struct{}

func withState(ctx context.Context, st *requestState) context.Context {
	return context.WithValue(ctx, stateKey{}, st)
}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

// maxAuditEntities bounds the resources an audit record names: enough for
// the largest answer, a search page (maxCount) with as many resources
// included by each of the four _include values of a Task search, and the
// Patients a chained patient.identifier search found.
const maxAuditEntities = maxCount * 6

// note records resources the request touched ("Type/id"), at most
// maxAuditEntities.
func note(ctx context.Context, refs ...string) {
	st := stateFrom(ctx)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.seen == nil {
		st.seen = map[string]bool{}
	}
	for _, r := range refs {
		if !st.seen[r] && len(st.entities) < maxAuditEntities {
			st.seen[r] = true
			st.entities = append(st.entities, r)
		}
	}
}

func notFound(format string, args ...any) error {
	return linkbridge.Errorf(linkbridge.ENOTFOUND, format, args...)
}

// visible reports whether the principal's access keys reach a resource.
func (s *scopedStore) visible(ctx context.Context, p *linkbridge.Principal, typ, id string) (bool, error) {
	res, err := s.Store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, IDs: []string{id}, Count: 1, Access: p.Access()})
	if err != nil {
		return false, err
	}
	return res.Total > 0, nil
}

// CreateReferral stores a referral only from the GP organisation it names
// as requester.
func (s *scopedStore) CreateReferral(ctx context.Context, in *linkbridge.Intake) error {
	p := linkbridge.PrincipalFromContext(ctx)
	if p != nil && in != nil && in.Referral != nil {
		if p.Role != linkbridge.RoleGP || in.Referral.ReferrerODS != p.ODS {
			return linkbridge.Errorf(linkbridge.EFORBIDDEN, "the referral's requester is not the authenticated organisation %s", p.ODS).At("ServiceRequest.requester")
		}
	}
	err := s.Store.CreateReferral(ctx, in)
	var le *linkbridge.Error
	if p != nil && errors.As(err, &le) && le.Code == linkbridge.EDUPLICATE && strings.HasPrefix(le.Existing, "ServiceRequest/") {
		// The identifier is another organisation's referral's: say it is
		// taken, without answering with that referral.
		if rf, ferr := s.Store.FindReferral(ctx, strings.TrimPrefix(le.Existing, "ServiceRequest/")); ferr == nil && !p.CanRead(rf) {
			return linkbridge.Errorf(linkbridge.ECONFLICT, "the referral identifier is already in use").At("ServiceRequest.identifier")
		}
	}
	if err == nil && in != nil {
		for _, r := range in.Resources {
			note(ctx, r.Reference())
		}
		markCommitted(ctx, in.Audit)
	}
	return err
}

// UpdateReferral changes only a referral the caller may change.
func (s *scopedStore) UpdateReferral(ctx context.Context, ch *linkbridge.ReferralChange) error {
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && ch != nil && ch.Referral != nil {
		stored, err := s.Store.FindReferral(ctx, ch.Referral.ID)
		if err != nil {
			return err
		}
		if !p.CanChange(stored) {
			return notFound("referral %s not found", ch.Referral.ID)
		}
	}
	err := s.Store.UpdateReferral(ctx, ch)
	if err == nil && ch != nil {
		for _, r := range ch.Resources {
			note(ctx, r.Reference())
		}
		markCommitted(ctx, ch.Audit)
	}
	return err
}

func (s *scopedStore) readable(ctx context.Context, rf *linkbridge.Referral, err error, msg string) (*linkbridge.Referral, error) {
	if err != nil {
		return nil, err
	}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && !p.CanRead(rf) {
		return nil, notFound("%s", msg)
	}
	note(ctx, "ServiceRequest/"+rf.ID)
	return rf, nil
}

// FindReferral returns a referral the caller may read.
func (s *scopedStore) FindReferral(ctx context.Context, id string) (*linkbridge.Referral, error) {
	rf, err := s.Store.FindReferral(ctx, id)
	return s.readable(ctx, rf, err, "referral "+id+" not found")
}

// FindReferralByTaskID returns a referral the caller may read.
func (s *scopedStore) FindReferralByTaskID(ctx context.Context, taskID string) (*linkbridge.Referral, error) {
	rf, err := s.Store.FindReferralByTaskID(ctx, taskID)
	return s.readable(ctx, rf, err, "referral of Task "+taskID+" not found")
}

// FindReferralByIdentifier returns a referral the caller may read.
func (s *scopedStore) FindReferralByIdentifier(ctx context.Context, id linkbridge.Identifier) (*linkbridge.Referral, error) {
	rf, err := s.Store.FindReferralByIdentifier(ctx, id)
	return s.readable(ctx, rf, err, "referral with this identifier not found")
}

// FindPersonByNHSNumber is not scoped: an intake links a referral to the
// person its NHS number names. The person found may then be read by this
// request (the referral gives the caller access to them).
func (s *scopedStore) FindPersonByNHSNumber(ctx context.Context, nhsNumber string) (*linkbridge.Person, error) {
	per, err := s.Store.FindPersonByNHSNumber(ctx, nhsNumber)
	if err == nil {
		if st := stateFrom(ctx); st != nil {
			st.mu.Lock()
			st.linking = per.ID
			st.mu.Unlock()
		}
	}
	return per, err
}

// FindPerson returns a person whose Patient the caller may read.
func (s *scopedStore) FindPerson(ctx context.Context, id string) (*linkbridge.Person, error) {
	per, err := s.Store.FindPerson(ctx, id)
	if err != nil {
		return nil, err
	}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil {
		ok, err := s.visible(ctx, p, "Patient", id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound("person %s not found", id)
		}
	}
	return per, nil
}

// check returns ENOTFOUND (msg) when the caller may not read typ/id.
func (s *scopedStore) check(ctx context.Context, typ, id, msg string) error {
	p := linkbridge.PrincipalFromContext(ctx)
	if p == nil {
		return nil
	}
	if typ == "Patient" {
		if st := stateFrom(ctx); st != nil {
			st.mu.Lock()
			linking := st.linking
			st.mu.Unlock()
			if linking == id {
				return nil
			}
		}
	}
	ok, err := s.visible(ctx, p, typ, id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("%s", msg)
	}
	return nil
}

// ReadResource returns a resource the caller may read.
func (s *scopedStore) ReadResource(ctx context.Context, typ, id string) (*linkbridge.Resource, error) {
	if err := s.check(ctx, typ, id, typ+"/"+id+" not found"); err != nil {
		return nil, err
	}
	res, err := s.Store.ReadResource(ctx, typ, id)
	if err == nil {
		note(ctx, res.Reference())
	}
	return res, err
}

// ReadResourceVersion returns a version of a resource the caller may read.
func (s *scopedStore) ReadResourceVersion(ctx context.Context, typ, id string, version int) (*linkbridge.Resource, error) {
	if err := s.check(ctx, typ, id, typ+"/"+id+" version "+strconv.Itoa(version)+" not found"); err != nil {
		return nil, err
	}
	res, err := s.Store.ReadResourceVersion(ctx, typ, id, version)
	if err == nil {
		note(ctx, res.Reference())
	}
	return res, err
}

// ResourceHistory returns the history of a resource the caller may read.
func (s *scopedStore) ResourceHistory(ctx context.Context, typ, id string) ([]*linkbridge.Resource, error) {
	if err := s.check(ctx, typ, id, typ+"/"+id+" not found"); err != nil {
		return nil, err
	}
	res, err := s.Store.ResourceHistory(ctx, typ, id)
	if err == nil {
		note(ctx, typ+"/"+id)
	}
	return res, err
}

// SearchResources limits a search to the caller's access keys, so totals
// and pages count only what the caller may see.
func (s *scopedStore) SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error) {
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && q != nil && q.Access == nil {
		scoped := *q
		scoped.Access = p.Access()
		q = &scoped
	}
	res, err := s.Store.SearchResources(ctx, q)
	if err == nil {
		for _, r := range res.Resources {
			note(ctx, r.Reference())
		}
	}
	return res, err
}

// GetCaseRecord returns a case record the caller may read.
func (s *scopedStore) GetCaseRecord(ctx context.Context, referralID string) (*linkbridge.CaseRecord, error) {
	cr, err := s.cases.GetCaseRecord(ctx, referralID)
	if err != nil {
		return nil, err
	}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && !p.CanRead(cr.Referral) {
		return nil, notFound("referral %s not found", referralID)
	}
	note(ctx, "ServiceRequest/"+cr.Referral.ID, "Patient/"+cr.Referral.PersonID)
	return cr, nil
}

// ListReferrals lists only the caller's referrals: a service's inbox is
// its own whatever service it asks for; a GP's its own referrals.
func (s *scopedStore) ListReferrals(ctx context.Context, f linkbridge.ReferralFilter) ([]*linkbridge.Referral, int, error) {
	if p := linkbridge.PrincipalFromContext(ctx); p != nil {
		switch p.Role {
		case linkbridge.RoleService:
			if f.ServiceODS != "" && f.ServiceODS != p.ODS {
				return nil, 0, nil
			}
			f.ServiceODS = p.ODS
		case linkbridge.RoleGP:
			if f.ReferrerODS != "" && f.ReferrerODS != p.ODS {
				return nil, 0, nil
			}
			f.ReferrerODS = p.ODS
		default:
			return nil, 0, linkbridge.Errorf(linkbridge.EFORBIDDEN, "this client may not list referrals")
		}
	}
	refs, total, err := s.cases.ListReferrals(ctx, f)
	for _, rf := range refs {
		note(ctx, "ServiceRequest/"+rf.ID)
	}
	return refs, total, err
}

// CountContacts counts contacts of referrals the caller listed.
func (s *scopedStore) CountContacts(ctx context.Context, referralIDs []string) (map[string]int, error) {
	return s.cases.CountContacts(ctx, referralIDs)
}
