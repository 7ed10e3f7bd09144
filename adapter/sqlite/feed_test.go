package sqlite_test

import (
	"testing"

	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// TestReferralFeed: the store announces its own committed referral changes.
func TestReferralFeed(t *testing.T) {
	t.Parallel()
	storetest.RunReferralFeed(t, func(t *testing.T) storetest.FeedStore { return mustOpen(t) }, nil)
}
