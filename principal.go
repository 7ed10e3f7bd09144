package linkbridge

import (
	"context"
	"slices"
	"strings"
)

// Role is what a client of the gateway is: it decides which referrals the
// client may see and what it may do with them.
type Role string

// Client roles.
const (
	// RoleGP is a GP clinical system: it sends referrals and sees and
	// changes only the referrals its organisation made.
	RoleGP Role = "gp"
	// RoleService is a social prescribing service: it sees and works only
	// the referrals addressed to it (FHIR and /sp/v1).
	RoleService Role = "sp-service"
	// RoleMDT is a multidisciplinary team viewer (e.g. a primary care
	// network): it reads, never writes, the referrals of a set of practices.
	RoleMDT Role = "mdt"
	// RoleAdmin is an administrator: it reads the audit trail and no
	// personal data.
	RoleAdmin Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleGP, RoleService, RoleMDT, RoleAdmin:
		return true
	}
	return false
}

// Principal is an authenticated caller: a registered client acting for one
// organisation, with the scopes both its registration and its token allow.
type Principal struct {
	// ClientID is the registered client (JWT sub/client_id, or the client a
	// certificate maps to).
	ClientID string
	// Role is the client's role.
	Role Role
	// ODS is the ODS code of the client's organisation.
	ODS string
	// Practices are the practices' ODS codes an MDT viewer reads.
	Practices []string
	// Scopes are SMART Backend Services scopes, e.g. "system/Task.read",
	// "system/*.write" (SMART v2 "system/Task.rs" and "system/*.cruds" are
	// understood too; see ScopeGrants).
	Scopes []string
	// Method is how the caller authenticated: "jwt", "mtls" or "dev".
	Method string
}

// Scope operations: reading (read, search, history) or writing (create,
// update).
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// HasScope reports whether the principal's scopes allow op (ScopeRead or
// ScopeWrite) on a resource type (see ScopeGrants).
func (p *Principal) HasScope(resourceType, op string) bool {
	for _, s := range p.Scopes {
		typ, read, write := ScopeGrants(s)
		if typ != "*" && typ != resourceType {
			continue
		}
		if op == ScopeRead && read || op == ScopeWrite && write {
			return true
		}
	}
	return false
}

// ScopeGrants parses a SMART Backend Services scope strictly and returns
// the resource type it is for ("*" for all; "" when it grants nothing) and
// whether it allows reading and writing. It must be
// "system/<Type|*>.<permissions>" with the SMART v1 permissions "read",
// "write" or "*", or SMART v2 permissions: a non-empty subsequence of
// "cruds" in that order. Reading (read, search, history) needs v2 "r" and
// "s"; writing (create and update) needs "c" and "u": a narrower v2 scope
// would be over-granted by ScopeRead/ScopeWrite, so it grants nothing
// there. Anything else grants nothing: other contexts (patient/, user/),
// unknown permission strings ("search", "rw", "sr"), and v2 scopes with a
// query restriction ("system/Observation.rs?category=…"), which the
// gateway does not enforce and so refuses rather than over-grants.
func ScopeGrants(scope string) (resourceType string, read, write bool) {
	rest, ok := strings.CutPrefix(scope, "system/")
	if !ok || strings.ContainsAny(rest, "?#") {
		return "", false, false
	}
	typ, perm, ok := strings.Cut(rest, ".")
	if !ok || !validScopeType(typ) {
		return "", false, false
	}
	switch perm {
	case "read":
		return typ, true, false
	case "write":
		return typ, false, true
	case "*":
		return typ, true, true
	}
	// SMART v2: each of c, r, u, d, s at most once, in that order.
	const order = "cruds"
	i := 0
	for _, c := range []byte(perm) {
		j := strings.IndexByte(order[i:], c)
		if j < 0 {
			return "", false, false
		}
		i += j + 1
	}
	if perm == "" {
		return "", false, false
	}
	has := func(c string) bool { return strings.Contains(perm, c) }
	return typ, has("r") && has("s"), has("c") && has("u")
}

// validScopeType reports whether t is "*" or a resource type name (an
// upper-case ASCII letter, then ASCII letters).
func validScopeType(t string) bool {
	if t == "*" {
		return true
	}
	if t == "" || t[0] < 'A' || t[0] > 'Z' {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// CanRead reports whether the principal may read a referral (and every
// resource of it): a GP its organisation's referrals, a service those
// addressed to it, an MDT viewer its practices'; nobody one entered in
// error. Administrators read none.
func (p *Principal) CanRead(rf *Referral) bool {
	if rf.Status == TaskEnteredInError || rf.RequestStatus == "entered-in-error" {
		return false // a referral raised in error gives access to no one (docs/referral-exchange.md#disclosure)
	}
	switch p.Role {
	case RoleGP:
		return rf.ReferrerODS != "" && rf.ReferrerODS == p.ODS
	case RoleService:
		return rf.ServiceODS != "" && rf.ServiceODS == p.ODS
	case RoleMDT:
		return rf.ReferrerODS != "" && slices.Contains(p.Practices, rf.ReferrerODS)
	}
	return false
}

// CanChange reports whether the principal may change a referral: the GP
// that made it, or the service it is addressed to. MDT viewers and
// administrators change nothing.
func (p *Principal) CanChange(rf *Referral) bool {
	switch p.Role {
	case RoleGP, RoleService:
		return p.CanRead(rf)
	}
	return false
}

// Actor is the side of the referral the principal acts for in the SDOH
// state machine: GP systems are the requester, services the performer.
func (p *Principal) Actor() Actor {
	if p.Role == RoleService {
		return ActorPerformer
	}
	return ActorRequester
}

// Access returns the store access scope of the principal's reads: the
// access keys of the referrals it may read (see ReferralAccessKeys). An
// administrator's scope is empty: it matches nothing.
func (p *Principal) Access() *Access {
	a := &Access{Keys: []string{}}
	switch p.Role {
	case RoleGP:
		a.Keys = append(a.Keys, ReferrerAccessKey(p.ODS))
	case RoleService:
		a.Keys = append(a.Keys, ServiceAccessKey(p.ODS))
	case RoleMDT:
		for _, ods := range p.Practices {
			a.Keys = append(a.Keys, ReferrerAccessKey(ods))
		}
	}
	return a
}

// Access restricts a store read to resources carrying at least one of Keys.
// A nil *Access means unrestricted (in-process use and authentication off);
// an Access with no keys matches nothing.
type Access struct {
	Keys []string
}

// ReferrerAccessKey is the access key of resources of referrals made by an
// organisation.
func ReferrerAccessKey(ods string) string { return "referrer|" + ods }

// ServiceAccessKey is the access key of resources of referrals addressed to
// a social prescribing service.
func ServiceAccessKey(ods string) string { return "service|" + ods }

// ReferralAccessKeys are the access keys a store attaches to every resource
// written by a referral's intake or change (and to the referred person's
// Patient): one for the referrer, one for the service. Keys are only ever
// added, so a Patient referred by two practices is visible to both.
func ReferralAccessKeys(rf *Referral) []string {
	if rf.ReferrerODS == "" {
		return []string{ServiceAccessKey(rf.ServiceODS)} // no referring organisation: the service's alone
	}
	return []string{ReferrerAccessKey(rf.ReferrerODS), ServiceAccessKey(rf.ServiceODS)}
}

type principalKey struct{}

// NewContextWithPrincipal returns a context carrying the authenticated
// caller.
func NewContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the authenticated caller, or nil when the
// request was not authenticated (authentication off).
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
