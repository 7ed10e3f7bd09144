// Package access is the authorising store: every store call a use case
// makes for an authenticated caller is limited to what that caller's
// organisation may see or change, and every resource a request discloses or
// writes is noted for its audit record (Trail).
package access

import (
	"context"
	"strconv"

	"github.com/linkbridge/linkbridge"
)

// Store enforces per-organisation authorisation at the store
// boundary: every store call a use case makes with an authenticated request
// context is limited to the caller's referrals (linkbridge.Principal). A
// referral or resource outside the caller's scope is ENOTFOUND with the
// message a missing one gets, so the two cannot be told apart. It also
// notes, for the audit trail, every resource the request read or wrote, and
// the audit record that committed with a write.
// Without a principal in the context (authentication off, background work)
// calls pass through unchanged.
type Store struct {
	linkbridge.Store
	// Cases is the case-record side of the same store (may be nil when
	// the store has none).
	Cases linkbridge.CaseStore
}

// NewStore wraps store (and its case-record side, when it has one).
func NewStore(store linkbridge.Store) *Store {
	s := &Store{Store: store}
	if cs, ok := store.(linkbridge.CaseStore); ok {
		s.Cases = cs
	}
	return s
}

var (
	_ linkbridge.Store     = (*Store)(nil)
	_ linkbridge.CaseStore = (*Store)(nil)
)

func notFound(format string, args ...any) error {
	return linkbridge.Errorf(linkbridge.ENOTFOUND, format, args...)
}

// visible reports whether the principal's access keys reach a resource.
func (s *Store) visible(ctx context.Context, p *linkbridge.Principal, typ, id string) (bool, error) {
	res, err := s.Store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, IDs: []string{id}, Count: 1, Access: p.Access()})
	if err != nil {
		return false, err
	}
	return res.Total > 0, nil
}

// CreateReferral stores a referral only from the organisation it names as
// referrer (a GP system's client), or, for a referral from no organisation
// with an ODS code (a self-referral, a voluntary-sector organisation),
// from the service it is addressed to: such a referral is the service's
// alone. A duplicate referral identifier (EDUPLICATE naming a
// ServiceRequest) is always the caller's own referral's: identifiers are
// unique per referring organisation, so another organisation's referral
// with the same identifier neither collides nor is disclosed.
func (s *Store) CreateReferral(ctx context.Context, in *linkbridge.Intake) error {
	p := linkbridge.PrincipalFromContext(ctx)
	if p != nil && in != nil && in.Referral != nil {
		rf := in.Referral
		switch {
		case rf.Link.Kind == linkbridge.LinkReopened:
			// A service reopens an episode of its own: the new referral
			// keeps the earlier one's person, referrer and service.
			earlier, err := s.Store.FindReferral(ctx, rf.Link.ReferralID)
			if err != nil && linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
				return err
			}
			if err != nil || p.Role != linkbridge.RoleService || rf.ServiceODS != p.ODS || earlier.ServiceODS != p.ODS ||
				earlier.PersonID != rf.PersonID || earlier.ReferrerODS != rf.ReferrerODS {
				return linkbridge.Errorf(linkbridge.EFORBIDDEN, "only the service of a referral reopens it, for its person and referrer").At("action")
			}
		case rf.ReferrerODS == "" && rf.Source.WithoutODS():
			if p.Role != linkbridge.RoleService || rf.ServiceODS != p.ODS {
				return linkbridge.Errorf(linkbridge.EFORBIDDEN, "a referral from no organisation with an ODS code (%s) is received by the service it is addressed to, not the authenticated organisation %s", rf.Source, p.ODS).At("ServiceRequest.requester")
			}
		case p.Role != linkbridge.RoleGP || rf.ReferrerODS != p.ODS:
			return linkbridge.Errorf(linkbridge.EFORBIDDEN, "the referral's requester is not the authenticated organisation %s", p.ODS).At("ServiceRequest.requester")
		}
	}
	err := s.Store.CreateReferral(ctx, in)
	if err == nil && in != nil {
		for _, r := range in.Resources {
			Note(ctx, r.Reference())
		}
		MarkCommitted(ctx, in.Audit)
	}
	return err
}

// UpdateReferral changes only a referral the caller may change.
func (s *Store) UpdateReferral(ctx context.Context, ch *linkbridge.ReferralChange) error {
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
			Note(ctx, r.Reference())
		}
		MarkCommitted(ctx, ch.Audit)
	}
	return err
}

func (s *Store) readable(ctx context.Context, rf *linkbridge.Referral, err error, msg string) (*linkbridge.Referral, error) {
	if err != nil {
		return nil, err
	}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && !p.CanRead(rf) {
		return nil, notFound("%s", msg)
	}
	Note(ctx, "ServiceRequest/"+rf.ID)
	return rf, nil
}

// FindReferral returns a referral the caller may read.
func (s *Store) FindReferral(ctx context.Context, id string) (*linkbridge.Referral, error) {
	rf, err := s.Store.FindReferral(ctx, id)
	return s.readable(ctx, rf, err, "referral "+id+" not found")
}

// FindReferralByTaskID returns a referral the caller may read.
func (s *Store) FindReferralByTaskID(ctx context.Context, taskID string) (*linkbridge.Referral, error) {
	rf, err := s.Store.FindReferralByTaskID(ctx, taskID)
	return s.readable(ctx, rf, err, "referral of Task "+taskID+" not found")
}

// FindReferralByIdentifier returns the referral that referrerODS made with
// a business identifier, when the caller may read it.
func (s *Store) FindReferralByIdentifier(ctx context.Context, referrerODS string, id linkbridge.Identifier) (*linkbridge.Referral, error) {
	rf, err := s.Store.FindReferralByIdentifier(ctx, referrerODS, id)
	return s.readable(ctx, rf, err, "referral with this identifier not found")
}

// FindPersonByNHSNumber is not scoped, and grants nothing: an intake links
// a referral to the person its NHS number names, internally. The person's
// Patient resources stay each their own referral's (an NHS number is not a
// secret: knowing one opens nothing).
func (s *Store) FindPersonByNHSNumber(ctx context.Context, nhsNumber string) (*linkbridge.Person, error) {
	return s.Store.FindPersonByNHSNumber(ctx, nhsNumber)
}

// FindPerson returns a person whose Patient the caller may read.
func (s *Store) FindPerson(ctx context.Context, id string) (*linkbridge.Person, error) {
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
func (s *Store) check(ctx context.Context, typ, id, msg string) error {
	p := linkbridge.PrincipalFromContext(ctx)
	if p == nil {
		return nil
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
func (s *Store) ReadResource(ctx context.Context, typ, id string) (*linkbridge.Resource, error) {
	if err := s.check(ctx, typ, id, typ+"/"+id+" not found"); err != nil {
		return nil, err
	}
	res, err := s.Store.ReadResource(ctx, typ, id)
	if err == nil {
		Note(ctx, res.Reference())
	}
	return res, err
}

// ReadResourceVersion returns a version of a resource the caller may read.
func (s *Store) ReadResourceVersion(ctx context.Context, typ, id string, version int) (*linkbridge.Resource, error) {
	if err := s.check(ctx, typ, id, typ+"/"+id+" version "+strconv.Itoa(version)+" not found"); err != nil {
		return nil, err
	}
	res, err := s.Store.ReadResourceVersion(ctx, typ, id, version)
	if err == nil {
		Note(ctx, res.Reference())
	}
	return res, err
}

// ResourceHistory returns the history of a resource the caller may read.
func (s *Store) ResourceHistory(ctx context.Context, typ, id string) ([]*linkbridge.Resource, error) {
	if err := s.check(ctx, typ, id, typ+"/"+id+" not found"); err != nil {
		return nil, err
	}
	res, err := s.Store.ResourceHistory(ctx, typ, id)
	if err == nil {
		Note(ctx, typ+"/"+id)
	}
	return res, err
}

// SearchResources limits a search to the caller's access keys, so totals
// and pages count only what the caller may see.
func (s *Store) SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error) {
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && q != nil && q.Access == nil {
		scoped := *q
		scoped.Access = p.Access()
		q = &scoped
	}
	res, err := s.Store.SearchResources(ctx, q)
	if err == nil {
		for _, r := range res.Resources {
			Note(ctx, r.Reference())
		}
	}
	return res, err
}

// GetCaseRecord returns a case record the caller may read.
func (s *Store) GetCaseRecord(ctx context.Context, referralID string) (*linkbridge.CaseRecord, error) {
	cr, err := s.Cases.GetCaseRecord(ctx, referralID)
	if err != nil {
		return nil, err
	}
	if p := linkbridge.PrincipalFromContext(ctx); p != nil && !p.CanRead(cr.Referral) {
		return nil, notFound("referral %s not found", referralID)
	}
	Note(ctx, "ServiceRequest/"+cr.Referral.ID, "Patient/"+cr.Referral.Patient())
	return cr, nil
}

// ListReferrals lists only the caller's referrals: a service's inbox is
// its own whatever service it asks for; a GP's its own referrals.
func (s *Store) ListReferrals(ctx context.Context, f linkbridge.ReferralFilter) ([]*linkbridge.Referral, int, error) {
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
	refs, total, err := s.Cases.ListReferrals(ctx, f)
	for _, rf := range refs {
		Note(ctx, "ServiceRequest/"+rf.ID)
	}
	return refs, total, err
}

// CountContacts counts contacts of referrals the caller listed.
func (s *Store) CountContacts(ctx context.Context, referralIDs []string) (map[string]int, error) {
	return s.Cases.CountContacts(ctx, referralIDs)
}

// ReportReferrals streams only the caller's referrals
// (Principal.ReportScopeFor): naming another organisation is EFORBIDDEN.
// A report discloses figures and referral ids, not resources: the request's
// audit record names the report, not every referral it counted.
func (s *Store) ReportReferrals(ctx context.Context, q linkbridge.ReportQuery, fn func([]*linkbridge.ReportReferral) error) error {
	if p := linkbridge.PrincipalFromContext(ctx); p != nil {
		scope, err := p.ReportScopeFor(q.ReportScope)
		if err != nil {
			return err
		}
		q.ReportScope = scope
	}
	return s.Cases.ReportReferrals(ctx, q, fn)
}
