package postgres_test

import (
	"testing"

	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// TestReferralFeed: a follower on one replica hears the referral changes
// another replica on the same database commits (LISTEN/NOTIFY), and only
// its own schema's (every test runs in a schema of its own, in parallel
// with others that notify on the same channel).
func TestReferralFeed(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	storetest.RunReferralFeed(t,
		func(t *testing.T) storetest.FeedStore { return mustOpenURL(t, u) },
		func(t *testing.T, _ storetest.FeedStore) storetest.FeedStore { return mustOpenURL(t, u) })
}
