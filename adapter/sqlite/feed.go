package sqlite

import (
	"context"
	"sync"

	"github.com/linkbridge/linkbridge"
)

var _ linkbridge.ReferralFeed = (*DB)(nil)

// followerBuffer is how many notices a follower may fall behind by before
// the feed drops them and owes it a resync notice instead.
const followerBuffer = 1024

// feed fans the notices of this store's commits out to its followers. A
// SQLite file has one writing process, so every change of the data passes
// through here.
type feed struct {
	mu        sync.Mutex
	followers map[*follower]struct{}
}

// follower is one FollowReferrals call: a buffered queue its own goroutine
// drains, so that fn is called from one goroutine at a time and a slow
// follower never holds up a commit.
type follower struct {
	ch chan linkbridge.ReferralNotice
	// missed is set when a notice was dropped on a full queue; the
	// follower then gets a resync notice.
	missed chan struct{}
}

// publish announces notices to every follower, never blocking.
func (f *feed) publish(ns ...linkbridge.ReferralNotice) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fl := range f.followers {
		for _, n := range ns {
			select {
			case fl.ch <- n:
			default:
				select {
				case fl.missed <- struct{}{}:
				default:
				}
			}
		}
	}
}

// FollowReferrals calls fn for every referral this store creates or
// changes from now until ctx ends (linkbridge.ReferralFeed). A follower
// that falls more than followerBuffer notices behind gets one resync
// notice in place of those it missed.
func (db *DB) FollowReferrals(ctx context.Context, ready chan<- struct{}, fn func(linkbridge.ReferralNotice)) error {
	fl := &follower{ch: make(chan linkbridge.ReferralNotice, followerBuffer), missed: make(chan struct{}, 1)}
	db.feed.mu.Lock()
	if db.feed.followers == nil {
		db.feed.followers = map[*follower]struct{}{}
	}
	db.feed.followers[fl] = struct{}{}
	db.feed.mu.Unlock()
	defer func() {
		db.feed.mu.Lock()
		delete(db.feed.followers, fl)
		db.feed.mu.Unlock()
	}()
	if ready != nil {
		close(ready)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case n := <-fl.ch:
			fn(n)
		case <-fl.missed:
			fn(linkbridge.ReferralNotice{})
		}
	}
}

// noticeOf is the notice of a referral's committed version.
func noticeOf(rf *linkbridge.Referral) linkbridge.ReferralNotice {
	return linkbridge.ReferralNotice{ReferralID: rf.ID, Version: rf.Version, ReferrerODS: rf.ReferrerODS, ServiceODS: rf.ServiceODS}
}
