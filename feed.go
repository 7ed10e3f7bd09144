package linkbridge

import "context"

// ReferralNotice says that a referral was created or changed and the change
// has committed. It carries ids and organisation codes only, never
// personal data: whoever receives it reads the referral again, through
// the authorising store, to learn what changed.
type ReferralNotice struct {
	// ReferralID is the referral (its ServiceRequest id); "" means that
	// notices may have been missed (the feed lost its connection and is
	// back): every referral a follower shows should be read again.
	ReferralID string `json:"referral,omitempty"`
	// Version is the referral's version after the change.
	Version int `json:"version,omitempty"`
	// ReferrerODS and ServiceODS are the referral's organisations: who may
	// be told about it (NoticeFor).
	ReferrerODS string `json:"referrer,omitempty"`
	ServiceODS  string `json:"service,omitempty"`
}

// Resync reports whether the notice stands for changes that may have been
// missed rather than for one referral.
func (n ReferralNotice) Resync() bool { return n.ReferralID == "" }

// NoticeFor reports whether the principal may be told about the notice's
// referral: it is one of the referrals its organisation reads (a GP its
// own, a service those addressed to it, an MDT viewer its practices'). A
// resync notice is for everyone; a nil principal (authentication off)
// hears everything. A referral's status does not matter here: one marked
// entered in error is still announced to its parties, whose pages then
// drop it.
func (p *Principal) NoticeFor(n ReferralNotice) bool {
	if p == nil || n.Resync() {
		return true
	}
	rf := &Referral{ReferrerODS: n.ReferrerODS, ServiceODS: n.ServiceODS}
	return p.CanRead(rf)
}

// ReferralFeed is implemented by stores that announce each referral change
// once it has committed: the live MDT pages follow it (adapter/mdtweb).
// The SQLite store announces its own commits (one process per file); the
// PostgreSQL store announces every replica's, through LISTEN/NOTIFY.
type ReferralFeed interface {
	// FollowReferrals calls fn with a notice for every referral created or
	// changed after it started following, until ctx ends; then it returns
	// ctx's error. fn is called from one goroutine at a time and must not
	// block for long. A notice with no ReferralID (Resync) follows a gap:
	// the feed lost its connection and notices may have been missed.
	// ready, when not nil, is closed once following has started, so that
	// a change committed after it is announced.
	FollowReferrals(ctx context.Context, ready chan<- struct{}, fn func(ReferralNotice)) error
}
