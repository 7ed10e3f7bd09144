package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir/gpfhirtest"
	"github.com/linkbridge/linkbridge/outbox"
)

// gatedSender holds the send of one message until released, then sends it
// for real: a relay that is slow on it, without depending on how slow.
type gatedSender struct {
	outbox.Sender
	id      int64
	sending chan struct{} // closed when the held send starts
	release chan struct{} // closed to let it go on
}

func (g *gatedSender) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	if m.ID == g.id {
		close(g.sending)
		select {
		case <-g.release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return g.Sender.Send(ctx, m)
}

// logBuf collects a relay's JSON log lines; safe for concurrent use.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records returns the log records whose msg contains substr.
func (l *logBuf) records(tb testing.TB, substr string) []map[string]any {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, substr) {
			out = append(out, rec)
		}
	}
	return out
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestRelayClaimLost: relay A is sending a person's first message when it is
// rescued and claimed by worker B (another replica). Whatever the GP answers
// A (delivered, refused, unavailable), A's completion, dead-letter or
// reschedule is refused and logged at WARN; B's claim stays intact, and the
// person's next message waits for B, then goes.
func TestRelayClaimLost(t *testing.T) {
	t.Parallel()
	oo := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"unknown patient"}]}`
	for _, tc := range []struct {
		name  string
		reply []gpfhirtest.Reply // the GP's answer to A's send (none: accepted)
		op    string
	}{
		{"Delivered", nil, "complete"},
		{"Refused", []gpfhirtest.Reply{{Status: http.StatusBadRequest, Body: oo}}, "dead-letter"},
		{"Unavailable", []gpfhirtest.Reply{{Status: http.StatusServiceUnavailable}}, "reschedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t)
			p := e.mustPerson(t, "a")
			first, next := p.msg("p-a-a", 1), p.msg("p-a-b", 1)
			p.enqueue(t, first, next)
			e.srv.Script(tc.reply...)

			gate := &gatedSender{Sender: e.sender, id: first.ID, sending: make(chan struct{}), release: make(chan struct{})}
			logs := &logBuf{}
			r := e.relay()
			r.Worker, r.Sender = "A", gate
			r.RescueAfter = time.Hour // its own rescuer stays out of the way
			// One slot: while A's send is held its window is full, so A
			// cannot claim the message back between the rescue and B's
			// claim below.
			r.Concurrency = 1
			r.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			start(t, r)
			select {
			case <-gate.sending:
			case <-time.After(30 * time.Second):
				t.Fatal("relay A never sent the first message")
			}

			// Another replica's rescuer returns it to pending; B claims it.
			if n, err := e.db.RescueOutbox(ctx, linkbridge.ChannelWriteBack, time.Now().Add(time.Second)); err != nil || n != 1 {
				t.Fatalf("RescueOutbox = %d, %v; want 1", n, err)
			}
			claimed, err := e.db.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "B", 10, time.Now())
			if err != nil || len(claimed) != 1 || claimed[0].ID != first.ID {
				t.Fatalf("ClaimOutbox(B) = %v, %v; want message %d", claimed, err, first.ID)
			}
			byB := claimed[0]

			// A's send goes on and is answered; its answer is refused.
			close(gate.release)
			waitFor(t, 30*time.Second, "A's claim-lost warning", func() bool { return len(logs.records(t, "claim lost")) > 0 })
			recs := logs.records(t, "claim lost")
			rec := recs[0]
			if rec["level"] != "WARN" || rec["op"] != tc.op || rec["outbox_id"] != float64(first.ID) || rec["worker"] != "A" {
				t.Errorf("claim-lost record = %v; want WARN, op %s, outbox_id %d, worker A", rec, tc.op, first.ID)
			}
			if strings.Contains(logs.String(), p.p.NHSNumber) {
				t.Error("the relay's log carries the NHS number")
			}
			got := get(t, e, first.ID)
			if got.State != linkbridge.OutboxInflight || got.Claim() != byB.Claim() || got.Attempts != 0 || got.LastStatus != 0 {
				t.Fatalf("message after A's refused %s = %+v; want inflight under B's claim %+v, no attempt recorded", tc.op, got, byB.Claim())
			}
			if st := get(t, e, next.ID).State; st != linkbridge.OutboxPending {
				t.Fatalf("the person's next message is %s while the first is B's, want pending", st)
			}

			// B delivers; the person's next message then goes through A.
			if err := e.db.CompleteOutbox(ctx, byB.Claim(), 200, time.Now()); err != nil {
				t.Fatalf("CompleteOutbox(B) returned unexpected error: %v", err)
			}
			r.Notify()
			waitFor(t, 30*time.Second, "the next message delivered", stateIs(t, e, next.ID, linkbridge.OutboxDelivered))
			if n := len(logs.records(t, "claim lost")); n != 1 {
				t.Errorf("%d claim-lost records, want 1", n)
			}
			if got := get(t, e, first.ID); got.State != linkbridge.OutboxDelivered || got.Attempts != 0 {
				t.Errorf("first message = %+v; want delivered by B, no failed attempt", got)
			}
		})
	}
}
