package sqlshared_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

func TestNewOutboxRows(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 9, 0, 0, 123456789, time.UTC)
	given := now.Add(time.Hour)
	msgs := []*linkbridge.OutboxMessage{
		{OrderKey: "p1", ResourceType: "Task", ResourceID: "t1", Version: 2, Body: []byte(`{}`), NHSNumber: "9434765919"},
		{OrderKey: "p1", ResourceType: "Goal", ResourceID: "g1", Version: 1, Body: []byte(`{}`), AvailableAt: given, Erase: true},
	}
	ch := &linkbridge.ReferralChange{Referral: &linkbridge.Referral{ID: "r1"}, Outbox: msgs}
	if o := sqlshared.NewOutboxRows(&linkbridge.ReferralChange{Referral: ch.Referral}, now, nativeColumns); o != nil {
		t.Fatalf("NewOutboxRows without messages = %+v, want nil", o)
	}
	(*sqlshared.OutboxRows)(nil).Stored() // does nothing

	o := sqlshared.NewOutboxRows(ch, now, nativeColumns)
	stored := now.Truncate(time.Microsecond)
	want := [][]any{
		{"p1", "r1", "Task", "t1", 2, []byte(`{}`), "9434765919", false, stored, stored},
		{"p1", "r1", "Goal", "g1", 1, []byte(`{}`), "", true, given.Truncate(time.Microsecond), stored},
	}
	if diff := cmp.Diff(want, o.Args); diff != "" {
		t.Errorf("Args mismatch (-want +got):\n%s", diff)
	}
	o.IDs[0], o.IDs[1] = 7, 8
	o.Stored()
	for i, m := range msgs {
		if m.ID != o.IDs[i] || m.State != linkbridge.OutboxPending || m.ReferralID != "r1" || !m.CreatedAt.Equal(stored) {
			t.Errorf("message %d after Stored = %+v", i, m)
		}
	}
	if !msgs[1].AvailableAt.Equal(given.Truncate(time.Microsecond)) {
		t.Errorf("AvailableAt = %v, want %v", msgs[1].AvailableAt, given.Truncate(time.Microsecond))
	}

	// Text columns keep nanoseconds.
	o = sqlshared.NewOutboxRows(&linkbridge.ReferralChange{Referral: ch.Referral,
		Outbox: []*linkbridge.OutboxMessage{{OrderKey: "p2"}}}, now, textColumns)
	if got := o.Args[0][9]; got != "2025-03-01T09:00:00.123456789Z" || !o.Created[0].Equal(now) {
		t.Errorf("created = %v, %v; want now at full precision", got, o.Created[0])
	}
}

func TestOutboxListLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    linkbridge.OutboxFilter
		want int
		ok   bool
	}{
		{"Default", linkbridge.OutboxFilter{}, sqlshared.DefaultOutboxListLimit, true},
		{"Negative", linkbridge.OutboxFilter{Limit: -3}, sqlshared.DefaultOutboxListLimit, true},
		{"Given", linkbridge.OutboxFilter{Limit: 5, States: sqlshared.OutboxStates}, 5, true},
		{"UnknownState", linkbridge.OutboxFilter{States: []linkbridge.OutboxState{"pending", "lost"}}, 0, false},
	}
	for _, tt := range tests {
		got, err := sqlshared.OutboxListLimit(tt.f)
		if got != tt.want || tt.ok != (err == nil) || !tt.ok && linkbridge.ErrorCode(err) != linkbridge.EINVALID {
			t.Errorf("%s: OutboxListLimit = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	st := sqlshared.NewOutboxStats()
	if len(st.Counts) != len(sqlshared.OutboxStates) {
		t.Errorf("NewOutboxStats counts %v, want every state at 0", st.Counts)
	}
	if c := linkbridge.ErrorCode(linkbridge.OutboxWrongState("discard", 3, "inflight", "pending or dead")); c != linkbridge.ECONFLICT {
		t.Errorf("OutboxWrongState code = %q, want ECONFLICT", c)
	}
	if c := linkbridge.ErrorCode(linkbridge.OutboxNotFound(3)); c != linkbridge.ENOTFOUND {
		t.Errorf("OutboxNotFound code = %q, want ENOTFOUND", c)
	}
}
