package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
)

// SubscriptionStore is a store with case records, the outbox and
// subscriptions.
type SubscriptionStore interface {
	linkbridge.Store
	linkbridge.OutboxStore
	linkbridge.SubscriptionStore
}

// RunSubscriptionStore runs the subscription suite. open must return a new,
// empty store and close it when the test ends. Subtests run in parallel,
// each on its own store.
//
// The suite fixes these semantics:
//   - CreateSubscription stores a subscription requested, at version 1, and
//     queues its handshake on the rest-hook channel (never claimed by the
//     write-back channel); a taken id is ECONFLICT.
//   - CreateReferral and UpdateReferral record their topic events for each
//     live subscription of the topic whose owner may read the referral and
//     whose filters let the focus through, numbered 1, 2, ... per
//     subscription without gaps (a change that fails records nothing), and
//     queue one notification each, claimed in number order after the
//     handshake, one at a time per subscription.
//   - SetSubscriptionStatus counts a version only when status or error
//     changes; DeleteSubscription discards the pending notifications.
//   - QueueHeartbeats queues a heartbeat for an active subscription idle
//     for its period with nothing queued, once a period, and turns off a
//     subscription whose end has passed.
func RunSubscriptionStore(t *testing.T, open func(t *testing.T) SubscriptionStore) {
	t.Run("CreateReadDelete", func(t *testing.T) { t.Parallel(); testSubscriptionCRUD(t, open) })
	t.Run("EventsInOrder", func(t *testing.T) { t.Parallel(); testSubscriptionEvents(t, open) })
	t.Run("EventRollsBackWithTheChange", func(t *testing.T) { t.Parallel(); testSubscriptionEventRollback(t, open) })
	t.Run("Heartbeats", func(t *testing.T) { t.Parallel(); testSubscriptionHeartbeats(t, open) })
	t.Run("ConcurrentEventsHaveNoGaps", func(t *testing.T) { t.Parallel(); testSubscriptionConcurrent(t, open) })
}

const (
	topicA = "https://linkbridge.example/fhir/SubscriptionTopic/a"
	topicB = "https://linkbridge.example/fhir/SubscriptionTopic/b"
)

// newSubscription builds a subscription of topic owned by a GP practice.
func newSubscription(id, topic, ods string, filters ...linkbridge.SubscriptionFilter) *linkbridge.Subscription {
	return &linkbridge.Subscription{
		ID: id, Owner: linkbridge.SubscriptionOwner{ClientID: "client-" + ods, Role: linkbridge.RoleGP, ODS: ods},
		Topic: topic, Filters: filters, Endpoint: "https://hooks.example/" + id, PayloadType: "application/fhir+json",
		Content: linkbridge.ContentIDOnly, Base: "https://lb.example/fhir",
	}
}

func mustCreateSubscription(t *testing.T, s SubscriptionStore, sub *linkbridge.Subscription, now time.Time) {
	t.Helper()
	if err := s.CreateSubscription(context.Background(), sub, now); err != nil {
		t.Fatalf("CreateSubscription(%s) returned unexpected error: %v", sub.ID, err)
	}
}

// notifications is what a rest-hook claim at at returns, as
// "sub#type#number", completing each so the next of its key follows.
func drainNotifications(t *testing.T, s SubscriptionStore, at time.Time) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for range 100 {
		msgs, err := s.ClaimOutbox(ctx, linkbridge.ChannelRestHook, "w", 10, at)
		if err != nil {
			t.Fatalf("ClaimOutbox(rest-hook) returned unexpected error: %v", err)
		}
		if len(msgs) == 0 {
			return out
		}
		for _, m := range msgs {
			if m.Channel != linkbridge.ChannelRestHook || m.ResourceType != "Subscription" || m.Version != 0 {
				t.Fatalf("claimed notification %+v: want channel rest-hook, Subscription at version 0", m)
			}
			out = append(out, fmt.Sprintf("%s#%s#%d", m.ResourceID, m.Notification, m.EventNumber))
			if err := s.CompleteOutbox(ctx, m.Claim(), 200, at); err != nil {
				t.Fatalf("CompleteOutbox(%d) returned unexpected error: %v", m.ID, err)
			}
		}
	}
	t.Fatal("notifications kept coming")
	return nil
}

func testSubscriptionCRUD(t *testing.T, open func(t *testing.T) SubscriptionStore) {
	s := open(t)
	ctx := context.Background()
	sub := newSubscription("sub-1", topicA, "Y01234", linkbridge.SubscriptionFilter{ResourceType: "Task", Name: "status", Values: []string{"accepted"}})
	sub.FilterCriteria = []string{"Task?status=accepted"}
	sub.Headers = []string{"Authorization: Bearer x"}
	sub.HeartbeatPeriod = time.Minute
	mustCreateSubscription(t, s, sub, t0)
	if sub.Status != linkbridge.SubscriptionRequested || sub.Version != 1 || !sub.CreatedAt.Equal(t0) {
		t.Fatalf("created subscription = %+v, want requested at version 1, created %s", sub, t0)
	}
	got, err := s.GetSubscription(ctx, "sub-1")
	if err != nil {
		t.Fatalf("GetSubscription returned unexpected error: %v", err)
	}
	if diff := cmp.Diff(sub, got); diff != "" {
		t.Fatalf("GetSubscription mismatch (-want +got):\n%s", diff)
	}
	checkError(t, s.CreateSubscription(ctx, newSubscription("sub-1", topicA, "Y01234"), t0), linkbridge.ECONFLICT, "")
	mustCreateSubscription(t, s, newSubscription("sub-2", topicB, "B82002"), t0.Add(time.Second))

	list, err := s.ListSubscriptions(ctx, linkbridge.SubscriptionQuery{OwnerODS: "Y01234"})
	if err != nil || len(list) != 1 || list[0].ID != "sub-1" {
		t.Fatalf("ListSubscriptions(Y01234) = %v, %v; want sub-1 alone", list, err)
	}
	list, err = s.ListSubscriptions(ctx, linkbridge.SubscriptionQuery{AnyOwner: true, Topic: topicB})
	if err != nil || len(list) != 1 || list[0].ID != "sub-2" {
		t.Fatalf("ListSubscriptions(topic b) = %v, %v; want sub-2 alone", list, err)
	}

	// The handshakes are the rest-hook channel's, never the write-back's.
	if msgs, err := s.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "w", 10, tClaim); err != nil || len(msgs) != 0 {
		t.Fatalf("ClaimOutbox(write-back) = %v, %v; want nothing", msgs, err)
	}
	if err := s.SetSubscriptionStatus(ctx, "sub-1", linkbridge.SubscriptionError, "HTTP 503", t0.Add(time.Minute)); err != nil {
		t.Fatalf("SetSubscriptionStatus returned unexpected error: %v", err)
	}
	if err := s.SetSubscriptionStatus(ctx, "sub-1", linkbridge.SubscriptionError, "HTTP 503", t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("SetSubscriptionStatus returned unexpected error: %v", err)
	}
	if got, _ := s.GetSubscription(ctx, "sub-1"); got.Status != linkbridge.SubscriptionError || got.Error != "HTTP 503" || got.Version != 2 {
		t.Fatalf("after two identical errors: %s %q version %d; want error, HTTP 503, version 2 (one change)", got.Status, got.Error, got.Version)
	}
	checkError(t, s.SetSubscriptionStatus(ctx, "nope", linkbridge.SubscriptionActive, "", t0), linkbridge.ENOTFOUND, "")
	checkError(t, s.SetSubscriptionStatus(ctx, "sub-1", linkbridge.SubscriptionOff, "", t0), linkbridge.EINVALID, "")

	if err := s.DeleteSubscription(ctx, "sub-1"); err != nil {
		t.Fatalf("DeleteSubscription returned unexpected error: %v", err)
	}
	checkError(t, s.DeleteSubscription(ctx, "sub-1"), linkbridge.ENOTFOUND, "")
	if _, err := s.GetSubscription(ctx, "sub-1"); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		t.Fatalf("GetSubscription(deleted) = %v, want ENOTFOUND", err)
	}
	// Its handshake was discarded; the other's is delivered.
	if got := drainNotifications(t, s, tClaim); !slices.Equal(got, []string{"sub-2#handshake#0"}) {
		t.Fatalf("notifications after the delete = %v, want sub-2's handshake alone", got)
	}
}

// taskEvent is a topic event about version v of a referral's Task.
func taskEvent(topic string, r *linkbridge.Referral, res *linkbridge.Resource) *linkbridge.TopicEvent {
	return &linkbridge.TopicEvent{Topic: topic, Focus: res}
}

func testSubscriptionEvents(t *testing.T, open func(t *testing.T) SubscriptionStore) {
	s := open(t)
	ctx := context.Background()
	// sub-all: every Task event of topic a the practice reads; sub-acc:
	// only accepted Tasks; sub-other: another practice's; sub-b: topic b.
	mustCreateSubscription(t, s, newSubscription("sub-all", topicA, "Y01234"), t0.Add(-time.Hour))
	mustCreateSubscription(t, s, newSubscription("sub-acc", topicA, "Y01234",
		linkbridge.SubscriptionFilter{ResourceType: "Task", Name: "status", Values: []string{"accepted"}}), t0.Add(-time.Hour))
	mustCreateSubscription(t, s, newSubscription("sub-other", topicA, "B82002"), t0.Add(-time.Hour))
	mustCreateSubscription(t, s, newSubscription("sub-b", topicB, "Y01234"), t0.Add(-time.Hour))
	mdt := newSubscription("sub-mdt", topicA, "U12345")
	mdt.Owner = linkbridge.SubscriptionOwner{ClientID: "mdt", Role: linkbridge.RoleMDT, ODS: "U12345", Practices: []string{"Y01234"}}
	mustCreateSubscription(t, s, mdt, t0.Add(-time.Hour))

	in := newIntake("ev", nhsNumbers()())
	task1 := in.Resources[2]
	in.Events = []*linkbridge.TopicEvent{taskEvent(topicA, in.Referral, task1)}
	mustCreate(t, s, in)

	r2 := nextVersion(in.Referral, t0.Add(time.Minute), func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
	task2 := taskResource(r2, 2, r2.UpdatedAt)
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: r2, Resources: []*linkbridge.Resource{task2},
		Events: []*linkbridge.TopicEvent{taskEvent(topicA, r2, task2)}})

	got := drainNotifications(t, s, tClaim)
	want := map[string][]string{
		"sub-all":   {"handshake#0", "event-notification#1", "event-notification#2"},
		"sub-acc":   {"handshake#0", "event-notification#1"},
		"sub-other": {"handshake#0"},
		"sub-b":     {"handshake#0"},
		"sub-mdt":   {"handshake#0", "event-notification#1", "event-notification#2"},
	}
	per := map[string][]string{}
	for _, n := range got {
		var id, rest string
		for i := range n {
			if n[i] == '#' {
				id, rest = n[:i], n[i+1:]
				break
			}
		}
		per[id] = append(per[id], rest)
	}
	if diff := cmp.Diff(want, per); diff != "" {
		t.Fatalf("notifications per subscription, in claim order (-want +got):\n%s", diff)
	}

	evs, err := s.SubscriptionEvents(ctx, "sub-all", 1, 0, 10)
	if err != nil {
		t.Fatalf("SubscriptionEvents returned unexpected error: %v", err)
	}
	wantEvs := []*linkbridge.SubscriptionEvent{
		{SubscriptionID: "sub-all", Number: 1, Topic: topicA, FocusType: "Task", FocusID: "task-ev", FocusVersion: 1, ReferralID: "sr-ev", At: t0},
		{SubscriptionID: "sub-all", Number: 2, Topic: topicA, FocusType: "Task", FocusID: "task-ev", FocusVersion: 2, ReferralID: "sr-ev", At: t0.Add(time.Minute)},
	}
	if diff := cmp.Diff(wantEvs, evs); diff != "" {
		t.Fatalf("SubscriptionEvents(sub-all) mismatch (-want +got):\n%s", diff)
	}
	if ev, err := s.SubscriptionEvent(ctx, "sub-acc", 1); err != nil || ev.FocusVersion != 2 {
		t.Fatalf("SubscriptionEvent(sub-acc, 1) = %+v, %v; want the accepted Task, version 2", ev, err)
	}
	checkError(t, func() error { _, err := s.SubscriptionEvent(ctx, "sub-acc", 2); return err }(), linkbridge.ENOTFOUND, "")
	checkError(t, func() error { _, err := s.SubscriptionEvents(ctx, "nope", 1, 0, 10); return err }(), linkbridge.ENOTFOUND, "")
	if got, _ := s.GetSubscription(ctx, "sub-all"); got.EventsSinceStart != 2 {
		t.Fatalf("sub-all EventsSinceStart = %d, want 2", got.EventsSinceStart)
	}
}

func testSubscriptionEventRollback(t *testing.T, open func(t *testing.T) SubscriptionStore) {
	s := open(t)
	ctx := context.Background()
	mustCreateSubscription(t, s, newSubscription("sub", topicA, "Y01234"), t0.Add(-time.Hour))
	in := newIntake("rb", nhsNumbers()())
	mustCreate(t, s, in)
	r2 := nextVersion(in.Referral, t0.Add(time.Minute), func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
	task2 := taskResource(r2, 2, r2.UpdatedAt)
	// A change at a stale version fails: its event must not be recorded.
	stale := *r2
	stale.Version = 5
	err := s.UpdateReferral(ctx, &linkbridge.ReferralChange{Referral: &stale, Resources: []*linkbridge.Resource{task2},
		Events: []*linkbridge.TopicEvent{taskEvent(topicA, &stale, task2)}})
	checkError(t, err, linkbridge.EPRECONDITION, "")
	mustUpdate(t, s, &linkbridge.ReferralChange{Referral: r2, Resources: []*linkbridge.Resource{task2},
		Events: []*linkbridge.TopicEvent{taskEvent(topicA, r2, task2)}})
	if got := drainNotifications(t, s, tClaim); !slices.Equal(got, []string{"sub#handshake#0", "sub#event-notification#1"}) {
		t.Fatalf("notifications = %v, want the handshake, then event 1 (the failed change's number is not used)", got)
	}
}

func testSubscriptionHeartbeats(t *testing.T, open func(t *testing.T) SubscriptionStore) {
	s := open(t)
	ctx := context.Background()
	sub := newSubscription("hb", topicA, "Y01234")
	sub.HeartbeatPeriod = time.Minute
	sub.End = t0.Add(time.Hour)
	mustCreateSubscription(t, s, sub, t0)
	// Requested (its handshake is queued): no heartbeat.
	if n, err := s.QueueHeartbeats(ctx, t0.Add(2*time.Minute)); err != nil || n != 0 {
		t.Fatalf("QueueHeartbeats(requested) = %d, %v; want 0", n, err)
	}
	if got := drainNotifications(t, s, t0.Add(2*time.Minute)); !slices.Equal(got, []string{"hb#handshake#0"}) {
		t.Fatalf("notifications = %v, want the handshake", got)
	}
	if err := s.SetSubscriptionStatus(ctx, "hb", linkbridge.SubscriptionActive, "", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Due since a minute after its creation, and idle now.
	if n, err := s.QueueHeartbeats(ctx, t0.Add(150*time.Second)); err != nil || n != 1 {
		t.Fatalf("QueueHeartbeats(due) = %d, %v; want 1", n, err)
	}
	if n, err := s.QueueHeartbeats(ctx, t0.Add(150*time.Second)); err != nil || n != 0 {
		t.Fatalf("QueueHeartbeats(again) = %d, %v; want 0: one a period", n, err)
	}
	// Not delivered yet: a period later the subscription is not idle.
	if n, err := s.QueueHeartbeats(ctx, t0.Add(4*time.Minute)); err != nil || n != 0 {
		t.Fatalf("QueueHeartbeats(heartbeat queued) = %d, %v; want 0", n, err)
	}
	if got := drainNotifications(t, s, t0.Add(4*time.Minute)); !slices.Equal(got, []string{"hb#heartbeat#0"}) {
		t.Fatalf("notifications = %v, want one heartbeat", got)
	}
	if n, err := s.QueueHeartbeats(ctx, t0.Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("QueueHeartbeats(past the end) = %d, %v; want 0", n, err)
	}
	if got, _ := s.GetSubscription(ctx, "hb"); got.Status != linkbridge.SubscriptionOff {
		t.Fatalf("status past the end = %s, want off", got.Status)
	}
}

func testSubscriptionConcurrent(t *testing.T, open func(t *testing.T) SubscriptionStore) {
	s := open(t)
	mustCreateSubscription(t, s, newSubscription("c", topicA, "Y01234"), t0.Add(-time.Hour))
	const n = 8
	next := nhsNumbers()
	var intakes []*linkbridge.Intake
	for i := range n {
		in := newIntake(fmt.Sprintf("c%d", i), next())
		mustCreate(t, s, in)
		intakes = append(intakes, in)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, in := range intakes {
		wg.Go(func() {
			r2 := nextVersion(in.Referral, t0.Add(time.Minute), func(r *linkbridge.Referral) { r.Status = linkbridge.TaskAccepted })
			task2 := taskResource(r2, 2, r2.UpdatedAt)
			errs <- s.UpdateReferral(context.Background(), &linkbridge.ReferralChange{Referral: r2,
				Resources: []*linkbridge.Resource{task2}, Events: []*linkbridge.TopicEvent{taskEvent(topicA, r2, task2)}})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent UpdateReferral returned unexpected error: %v", err)
		}
	}
	want := []string{"c#handshake#0"}
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("c#event-notification#%d", i))
	}
	if got := drainNotifications(t, s, tClaim); !slices.Equal(got, want) {
		t.Fatalf("notifications = %v, want the handshake then events 1..%d in order", got, n)
	}
}
