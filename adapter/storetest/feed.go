package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// FeedStore is a store that announces its referral changes.
type FeedStore interface {
	linkbridge.Store
	linkbridge.ReferralFeed
}

// RunReferralFeed checks linkbridge.ReferralFeed: a follower hears every
// referral created and changed after it is ready, in commit order for one
// referral, with the referral's id, new version and organisations; a
// change that fails is not announced; and a follower stops when its
// context ends. open must return a new, empty store. When also is not
// nil, it opens a second store on the same data (another replica): its
// commits must reach a follower of the first.
func RunReferralFeed(t *testing.T, open func(t *testing.T) FeedStore, also func(t *testing.T, s FeedStore) FeedStore) {
	ctx := context.Background()
	s := open(t)
	writer := s
	if also != nil {
		writer = also(t, s)
	}
	fctx, stop := context.WithCancel(ctx)
	ready := make(chan struct{})
	got := make(chan linkbridge.ReferralNotice, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.FollowReferrals(fctx, ready, func(n linkbridge.ReferralNotice) { got <- n })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("FollowReferrals returned before it was ready: %v", err)
	}
	// next waits for the next notice; the deadline only bounds a broken
	// feed, it returns as soon as one arrives.
	next := func(what string) linkbridge.ReferralNotice {
		t.Helper()
		select {
		case n := <-got:
			return n
		case <-time.After(10 * time.Second):
			t.Fatalf("no notice of %s", what)
		}
		return linkbridge.ReferralNotice{}
	}

	in := newIntake("feed", "9000000009")
	in.Referral.ReferrerODS, in.Referral.ServiceODS = "A81001", "Y02662"
	mustCreate(t, writer, in)
	want := linkbridge.ReferralNotice{ReferralID: "sr-feed", Version: 1, ReferrerODS: "A81001", ServiceODS: "Y02662"}
	if n := next("the intake"); n != want {
		t.Fatalf("notice of the intake = %+v, want %+v", n, want)
	}

	// A stale change fails and is not announced; the next good one is.
	v2 := nextVersion(in.Referral, t0.Add(time.Minute), func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
	stale := *v2
	stale.Version = 5
	if err := writer.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: &stale}); err == nil {
		t.Fatal("UpdateReferral at a stale version returned no error")
	}
	mustUpdate(t, writer, &linkbridge.ReferralChange{Referral: v2, Resources: []*linkbridge.Resource{taskResource(v2, 2, v2.UpdatedAt)}})
	want.Version = 2
	if n := next("the change"); n != want {
		t.Fatalf("notice of the change = %+v, want %+v (a failed change must not be announced)", n, want)
	}

	stop()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("FollowReferrals returned nil when its context ended, want the context's error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("FollowReferrals did not return when its context ended")
	}
	select {
	case n := <-got:
		t.Fatalf("unexpected notice %+v", n)
	default:
	}
}
