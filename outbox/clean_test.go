package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/outbox"
)

// cleanSignals is an outbox.Metrics that reports each cleaner run's count
// on a channel, so that tests wait on the run itself, not on a sleep.
type cleanSignals struct{ cleaned chan int }

func (cleanSignals) Delivered(string, time.Duration) {}
func (cleanSignals) Retried(string)                  {}
func (cleanSignals) DeadLettered(string)             {}
func (s cleanSignals) Cleaned(n int) {
	select {
	case s.cleaned <- n:
	default: // a run nobody waits for
	}
}

// nextClean waits for the next cleaner run and returns its count.
func (s cleanSignals) nextClean(tb testing.TB) int {
	tb.Helper()
	select {
	case n := <-s.cleaned:
		return n
	case <-time.After(30 * time.Second):
		tb.Fatalf("the cleaner did not run within 30s")
		return 0
	}
}

func TestRelayCleansFinished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a, b, c := e.mustPerson(t, "a"), e.mustPerson(t, "b"), e.mustPerson(t, "c")
	// a: delivered two hours ago; b: dead-lettered two hours ago (a dead
	// letter waits for an operator, whatever its age).
	old := time.Now().Add(-2 * time.Hour)
	ma, mb := a.msg("p-a-a", 1), b.msg("p-b-b", 1)
	a.enqueue(t, ma)
	b.enqueue(t, mb)
	claimed, err := e.db.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "earlier", 10, time.Now())
	if err != nil || len(claimed) != 2 {
		t.Fatalf("ClaimOutbox = %v, %v; want 2 messages", claimed, err)
	}
	if err := e.db.CompleteOutbox(ctx, claimed[0].Claim(), 200, old); err != nil {
		t.Fatalf("CompleteOutbox: %v", err)
	}
	if err := e.db.DeadLetterOutbox(ctx, claimed[1].Claim(), 422, "refused", nil); err != nil {
		t.Fatalf("DeadLetterOutbox: %v", err)
	}

	sig := cleanSignals{cleaned: make(chan int, 1)}
	r := e.relay()
	r.Retention, r.CleanInterval, r.CleanBatch, r.Metrics = time.Hour, 20*time.Millisecond, 1, sig
	start(t, r)
	// The run at Start deletes a's old delivery, and only that.
	if n := sig.nextClean(t); n != 1 {
		t.Fatalf("first cleaner run deleted %d, want 1", n)
	}
	if _, err := e.db.GetOutbox(ctx, ma.ID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
		t.Fatalf("GetOutbox(delivered 2h ago) error %v, want ENOTFOUND", err)
	}
	if st := get(t, e, mb.ID).State; st != linkbridge.OutboxDead {
		t.Fatalf("dead letter is %s after the clean-up, want dead", st)
	}

	// c: delivered by the relay just now, within the retention: the runs
	// after it keep it.
	mc := c.msg("p-c-c", 1)
	c.enqueue(t, mc)
	r.Notify()
	waitFor(t, 30*time.Second, "c delivered", stateIs(t, e, mc.ID, linkbridge.OutboxDelivered))
	sig.nextClean(t) // a run that may have started before the delivery
	if n := sig.nextClean(t); n != 0 {
		t.Fatalf("cleaner run after a fresh delivery deleted %d, want 0", n)
	}
	for id, st := range map[int64]linkbridge.OutboxState{mb.ID: linkbridge.OutboxDead, mc.ID: linkbridge.OutboxDelivered} {
		if got := get(t, e, id).State; got != st {
			t.Fatalf("message %d is %s, want %s", id, got, st)
		}
	}
}

func TestRelayStopWithoutStartWithCleaner(t *testing.T) {
	t.Parallel()
	r := &outbox.Relay{Retention: time.Hour}
	r.Stop()
	r.Stop()
}
