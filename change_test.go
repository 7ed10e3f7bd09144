package linkbridge_test

import (
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

func TestIntakeValidate(t *testing.T) {
	t.Parallel()
	ref := func(v int) *linkbridge.Referral { return &linkbridge.Referral{ID: "r1", Version: v} }
	res := func(typ, id string, v int) *linkbridge.Resource {
		return &linkbridge.Resource{Type: typ, ID: id, VersionID: v}
	}
	tests := []struct {
		name string
		in   *linkbridge.Intake
		ok   bool
	}{
		{"Nil", nil, false},
		{"NoReferral", &linkbridge.Intake{}, false},
		{"NewPersonMissing", &linkbridge.Intake{Referral: ref(1), NewPerson: true}, false},
		{"Version2", &linkbridge.Intake{Referral: ref(2)}, false},
		{"ResourceWithoutID", &linkbridge.Intake{Referral: ref(1), Resources: []*linkbridge.Resource{res("Task", "", 1)}}, false},
		{"NilResource", &linkbridge.Intake{Referral: ref(1), Resources: []*linkbridge.Resource{nil}}, false},
		{"ResourceTwice", &linkbridge.Intake{Referral: ref(1), Resources: []*linkbridge.Resource{res("Task", "t", 1), res("Task", "t", 1)}}, false},
		{"ResourceVersion2", &linkbridge.Intake{Referral: ref(1), Resources: []*linkbridge.Resource{res("Task", "t", 2)}}, false},
		{"OK", &linkbridge.Intake{Referral: ref(1), NewPerson: true, Person: &linkbridge.Person{ID: "p"},
			Resources: []*linkbridge.Resource{res("Task", "t", 1), res("Patient", "t", 1)}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.in.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate returned unexpected error: %v", err)
			}
			if !tt.ok && linkbridge.ErrorCode(err) != linkbridge.EINVALID {
				t.Fatalf("Validate = %v, want EINVALID", err)
			}
		})
	}
}

func TestReferralChangeValidate(t *testing.T) {
	t.Parallel()
	change := func(edit func(ch *linkbridge.ReferralChange)) *linkbridge.ReferralChange {
		ch := &linkbridge.ReferralChange{
			Referral:  &linkbridge.Referral{ID: "r1", Version: 4},
			Resources: []*linkbridge.Resource{{Type: "Task", ID: "t", VersionID: 4}, {Type: "Goal", ID: "g", VersionID: 1}},
			Contacts:  []*linkbridge.Contact{{ID: "c1"}, {ID: "c2", ReferralID: "r1"}},
			Measures:  []*linkbridge.Measure{{ID: "m1"}},
			Event:     &linkbridge.ReferralEvent{Action: "contact"},
			Outbox: []*linkbridge.OutboxMessage{{OrderKey: "p1", ResourceType: "Task", ResourceID: "t", Version: 4,
				Body: []byte(`{}`)}},
		}
		if edit != nil {
			edit(ch)
		}
		return ch
	}
	tests := []struct {
		name string
		ch   *linkbridge.ReferralChange
		ok   bool
	}{
		{"OK", change(nil), true},
		{"Nil", nil, false},
		{"NoReferral", &linkbridge.ReferralChange{}, false},
		{"ResourceVersion0", change(func(ch *linkbridge.ReferralChange) { ch.Resources[0].VersionID = 0 }), false},
		{"ResourceTwice", change(func(ch *linkbridge.ReferralChange) { ch.Resources[1].Type = "Task"; ch.Resources[1].ID = "t" }), false},
		{"ContactWithoutID", change(func(ch *linkbridge.ReferralChange) { ch.Contacts[0].ID = "" }), false},
		{"ContactOfAnotherReferral", change(func(ch *linkbridge.ReferralChange) { ch.Contacts[1].ReferralID = "r2" }), false},
		{"NilMeasure", change(func(ch *linkbridge.ReferralChange) { ch.Measures[0] = nil }), false},
		{"MeasureOfAnotherReferral", change(func(ch *linkbridge.ReferralChange) { ch.Measures[0].ReferralID = "r2" }), false},
		{"EventOfAnotherReferral", change(func(ch *linkbridge.ReferralChange) { ch.Event.ReferralID = "r2" }), false},
		{"EventOfAnotherVersion", change(func(ch *linkbridge.ReferralChange) { ch.Event.Version = 3 }), false},
		{"EventOfThisVersion", change(func(ch *linkbridge.ReferralChange) { ch.Event.Version = 4 }), true},
		{"EventWithoutAction", change(func(ch *linkbridge.ReferralChange) { ch.Event.Action = "" }), false},
		{"NilOutbox", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0] = nil }), false},
		{"OutboxOfAnotherReferral", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].ReferralID = "r2" }), false},
		{"OutboxWithoutKey", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].OrderKey = "" }), false},
		{"OutboxWithoutResource", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].ResourceID = "" }), false},
		{"OutboxVersion0", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].Version = 0 }), false},
		{"OutboxWithoutBody", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].Body = nil }), false},
		{"EraseWithoutBody", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].Body, ch.Outbox[0].Erase = nil, true }), true},
		{"OutboxNotNew", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].State = linkbridge.OutboxDead }), false},
		{"OutboxPending", change(func(ch *linkbridge.ReferralChange) { ch.Outbox[0].State = linkbridge.OutboxPending }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.ch.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate returned unexpected error: %v", err)
			}
			if !tt.ok && linkbridge.ErrorCode(err) != linkbridge.EINVALID {
				t.Fatalf("Validate = %v, want EINVALID", err)
			}
		})
	}
}

func TestStoredEvent(t *testing.T) {
	t.Parallel()
	updated := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	at := updated.Add(-time.Hour)
	ref := &linkbridge.Referral{ID: "r1", Version: 5, UpdatedAt: updated, Status: linkbridge.TaskStatus("in-progress")}
	tests := []struct {
		name string
		ev   *linkbridge.ReferralEvent
		want *linkbridge.ReferralEvent
	}{
		{"None", nil, nil},
		{"Defaults", &linkbridge.ReferralEvent{Action: "plan", Actor: "lw1"},
			&linkbridge.ReferralEvent{ReferralID: "r1", Version: 5, At: updated, Action: "plan", Actor: "lw1", Status: "in-progress"}},
		{"Given", &linkbridge.ReferralEvent{Action: "accept", At: at, Status: "accepted"},
			&linkbridge.ReferralEvent{ReferralID: "r1", Version: 5, At: at, Action: "accept", Status: "accepted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ch := &linkbridge.ReferralChange{Referral: ref, Event: tt.ev}
			got := ch.StoredEvent()
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Fatalf("StoredEvent = %+v, want %+v", got, tt.want)
			}
			if got != nil && got == tt.ev {
				t.Fatal("StoredEvent returned the change's own event, not a copy")
			}
		})
	}
	rv := linkbridge.ReceivedEvent(&linkbridge.Referral{ID: "r2", ReceivedAt: at, Status: "requested", Version: 1})
	if want := (linkbridge.ReferralEvent{ReferralID: "r2", Version: 1, At: at, Action: "received", Actor: "requester", Status: "requested"}); *rv != want {
		t.Errorf("ReceivedEvent = %+v, want %+v", *rv, want)
	}
}

func TestEnqueueTimes(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	c, a := now.Add(-time.Minute), now.Add(time.Minute)
	tests := []struct {
		name                   string
		m                      linkbridge.OutboxMessage
		wantCreated, wantAvail time.Time
	}{
		{"Zero", linkbridge.OutboxMessage{}, now, now},
		{"CreatedOnly", linkbridge.OutboxMessage{CreatedAt: c}, c, c},
		{"AvailableOnly", linkbridge.OutboxMessage{AvailableAt: a}, now, a},
		{"Both", linkbridge.OutboxMessage{CreatedAt: c, AvailableAt: a}, c, a},
	}
	for _, tt := range tests {
		created, available := tt.m.EnqueueTimes(now)
		if !created.Equal(tt.wantCreated) || !available.Equal(tt.wantAvail) {
			t.Errorf("%s: EnqueueTimes = %v, %v; want %v, %v", tt.name, created, available, tt.wantCreated, tt.wantAvail)
		}
	}
}
