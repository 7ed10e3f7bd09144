package mdtweb

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// TestPlainWords: every code the domain defines has plain words, never
// the code itself.
func TestPlainWords(t *testing.T) {
	check := func(kind, code, words string) {
		t.Helper()
		if words == "" || words == code {
			t.Errorf("%s %q reads %q: want plain words", kind, code, words)
		}
	}
	for _, c := range linkbridge.DischargeReasons {
		check("discharge reason", c, dischargeWords(c))
	}
	for _, c := range linkbridge.DeclineReasons {
		check("decline reason", c, declineWords(c))
	}
	for _, m := range []linkbridge.ContactMode{linkbridge.ContactFaceToFace, linkbridge.ContactPhone, linkbridge.ContactVideo, linkbridge.ContactHomeVisit, linkbridge.ContactGroup} {
		check("contact mode", string(m), contactModeWords(m))
	}
	for _, s := range linkbridge.ReferralSources {
		check("referral source", string(s), sourceWords(s))
	}
	for _, i := range linkbridge.ONS4Items {
		check("ONS4 item", i, ons4ItemWords(i))
	}
	for _, g := range []string{linkbridge.GoalActive, linkbridge.GoalOnHold, linkbridge.GoalAchieved, linkbridge.GoalNotAchieved, linkbridge.GoalCancelled} {
		check("goal status", g, goalWords(g))
	}
	for _, s := range linkbridge.OnwardStatuses {
		check("onward referral status", s, onwardWords(s))
	}
	for _, st := range []linkbridge.TaskStatus{linkbridge.TaskRequested, linkbridge.TaskAccepted, linkbridge.TaskInProgress, linkbridge.TaskOnHold,
		linkbridge.TaskCompleted, linkbridge.TaskFailed, linkbridge.TaskRejected, linkbridge.TaskCancelled} {
		check("status", string(st), statusWords(&linkbridge.Referral{Status: st}))
	}
}

// TestHumanDates: dates as people write them, in UK time (BST in summer).
func TestHumanDates(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		date string
		when string
	}{
		{time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC), "4 December 2026", "4 December 2026 at 10:00"},
		// 23:30 UTC on 31 May is 00:30 on 1 June in London (BST).
		{time.Date(2026, 5, 31, 23, 30, 0, 0, time.UTC), "1 June 2026", "1 June 2026 at 00:30"},
	} {
		if got := humanDate(tc.at); got != tc.date {
			t.Errorf("humanDate(%s) = %q, want %q", tc.at, got, tc.date)
		}
		if got := humanDateTime(tc.at); got != tc.when {
			t.Errorf("humanDateTime(%s) = %q, want %q", tc.at, got, tc.when)
		}
	}
	if got := humanDay("2099-01-01"); got != "1 January 2099" {
		t.Errorf("humanDay = %q", got)
	}
}

// TestBrokerScope: a stream hears only of referrals its principal reads
// (an MDT viewer its practices'), and every stream hears a resync.
func TestBrokerScope(t *testing.T) {
	var b broker
	mdt := b.add(&linkbridge.Principal{Role: linkbridge.RoleMDT, Practices: []string{"A81001"}})
	other := b.add(&linkbridge.Principal{Role: linkbridge.RoleGP, ODS: "B82002"})
	b.publish(linkbridge.ReferralNotice{ReferralID: "r1", ReferrerODS: "A81001", ServiceODS: "Y02662"})
	select {
	case n := <-mdt.ch:
		if n.ReferralID != "r1" {
			t.Errorf("MDT stream heard %+v", n)
		}
	default:
		t.Error("the MDT viewer of A81001 did not hear of A81001's referral")
	}
	select {
	case n := <-other.ch:
		t.Errorf("practice B82002 heard of A81001's referral: %+v", n)
	default:
	}
	b.publish(linkbridge.ReferralNotice{})
	for _, st := range []*stream{mdt, other} {
		select {
		case <-st.resync:
		default:
			t.Error("a stream missed a resync")
		}
	}
}

// fakeClients is the client registry of the session tests.
type fakeClients map[string]*linkbridge.Principal

func (f fakeClients) Principal(id string, scopes []string, method string) (*linkbridge.Principal, bool) {
	p, ok := f[id]
	return p, ok
}

// TestSession: a signed cookie resumes its client; a cookie altered,
// signed with another key, expired, or naming a client no longer
// registered does not.
func TestSession(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	clients := fakeClients{"pcn": {ClientID: "pcn", Role: linkbridge.RoleMDT, Practices: []string{"A81001"}, Scopes: []string{"system/*.read"}}}
	s := &Server{SessionKey: []byte(strings.Repeat("k", 32)), Clients: clients, Now: func() time.Time { return now }, Auth: nil}
	cookie := func(srv *Server, client string) *http.Cookie {
		rec := httptest.NewRecorder()
		if err := srv.startSession(rec, &linkbridge.Principal{ClientID: client, Scopes: []string{"system/*.read"}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == sessionCookie {
				if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || !c.Secure || c.Path != "/mdt" {
					t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Secure, Path /mdt", c)
				}
				return c
			}
		}
		t.Fatal("no session cookie set")
		return nil
	}
	resume := func(c *http.Cookie) error {
		r := httptest.NewRequest(http.MethodGet, "/mdt", nil)
		r.AddCookie(c)
		ss, err := s.readSession(r)
		if err != nil {
			return err
		}
		_, err = s.principalOf(ss)
		return err
	}
	good := cookie(s, "pcn")
	if err := resume(good); err != nil {
		t.Fatalf("a fresh session does not resume: %v", err)
	}
	altered := *good
	altered.Value = "x" + good.Value[1:]
	otherKey := cookie(&Server{SessionKey: []byte(strings.Repeat("o", 32)), Now: s.Now}, "pcn")
	gone := cookie(s, "removed-client")
	for name, c := range map[string]*http.Cookie{"altered": &altered, "another key": otherKey, "unregistered client": gone} {
		if err := resume(c); err == nil {
			t.Errorf("a session cookie with %s resumed", name)
		}
	}
	now = now.Add(DefaultSessionTTL + time.Second)
	if err := resume(good); err == nil {
		t.Error("an expired session resumed")
	}
}
