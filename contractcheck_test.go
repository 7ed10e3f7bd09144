package linkbridge_test

import (
	"testing"

	"github.com/linkbridge/linkbridge"
)

func TestReferralFilterValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit, offset int
		ok            bool
	}{{1, 0, true}, {50, 100, true}, {0, 0, false}, {-1, 0, false}, {10, -1, false}}
	for _, tt := range tests {
		err := linkbridge.ReferralFilter.Validate(linkbridge.ReferralFilter{Limit: tt.limit, Offset: tt.offset})
		if tt.ok != (err == nil) || !tt.ok && linkbridge.ErrorCode(err) != linkbridge.EINVALID {
			t.Errorf("CheckReferralFilter(limit %d, offset %d) = %v", tt.limit, tt.offset, err)
		}
	}
}

func TestSupersededBy(t *testing.T) {
	t.Parallel()
	head := linkbridge.OutboxHead{ID: 10, ResourceType: "Task", ResourceID: "t1", Version: 2}
	tests := []struct {
		name string
		next *linkbridge.OutboxHead
		want bool
	}{
		{"NothingBehind", nil, false},
		{"LaterVersion", &linkbridge.OutboxHead{ID: 11, ResourceType: "Task", ResourceID: "t1", Version: 3}, true},
		{"SameVersion", &linkbridge.OutboxHead{ID: 11, ResourceType: "Task", ResourceID: "t1", Version: 2}, false},
		{"EarlierVersion", &linkbridge.OutboxHead{ID: 11, ResourceType: "Task", ResourceID: "t1", Version: 1}, false},
		{"OtherResource", &linkbridge.OutboxHead{ID: 11, ResourceType: "Task", ResourceID: "t2", Version: 3}, false},
		{"OtherType", &linkbridge.OutboxHead{ID: 11, ResourceType: "Goal", ResourceID: "t1", Version: 3}, false},
	}
	for _, tt := range tests {
		if got := head.SupersededBy(tt.next); got != tt.want {
			t.Errorf("%s: SupersededBy = %t, want %t", tt.name, got, tt.want)
		}
	}
}

func TestClaimable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state        string
		blocked, due bool
		want         bool
	}{
		{"pending", false, true, true},
		{"pending", true, true, false},
		{"pending", false, false, false},
		{"inflight", false, true, false},
		{"superseded", false, true, false},
		{"dead", false, true, false},
	}
	for _, tt := range tests {
		if got := linkbridge.OutboxClaimable(tt.state, tt.blocked, tt.due); got != tt.want {
			t.Errorf("Claimable(%s, blocked %t, due %t) = %t, want %t", tt.state, tt.blocked, tt.due, got, tt.want)
		}
	}
	for _, tt := range []struct {
		worker string
		limit  int
		ok     bool
	}{{"w1", 1, true}, {"", 1, false}, {"w1", 0, false}} {
		if err := linkbridge.ValidateClaim(tt.worker, tt.limit); tt.ok != (err == nil) {
			t.Errorf("CheckClaim(%q, %d) = %v", tt.worker, tt.limit, err)
		}
	}
}

func TestAuditFilterValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		limit, offset int
		ok            bool
	}{{1, 0, true}, {0, 0, false}, {5, -1, false}} {
		if err := (linkbridge.AuditFilter{Limit: tt.limit, Offset: tt.offset}).Validate(); tt.ok != (err == nil) {
			t.Errorf("CheckAuditFilter(%d, %d) = %v", tt.limit, tt.offset, err)
		}
	}
}
