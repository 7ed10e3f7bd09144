package outbox_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/outbox"
)

// loadSender keeps the relay busy: before it answers a send of a busy
// person's message, it commits that person's next message, so every claim
// finds work and the relay is never idle. Once stopped it adds no more.
type loadSender struct {
	outbox.Sender
	tb   testing.TB
	busy map[string]*person // by order key

	mu      sync.Mutex // serialises the busy persons' enqueues
	next    map[string]int
	stopped atomic.Bool
	sends   atomic.Int64 // busy persons' sends answered
}

func (s *loadSender) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	st, err := s.Sender.Send(ctx, m)
	if p, ok := s.busy[m.OrderKey]; ok && err == nil {
		s.sends.Add(1)
		if !s.stopped.Load() {
			s.mu.Lock()
			s.next[m.OrderKey]++
			p.enqueue(s.tb, p.msg(p.p.ID+"-a", s.next[m.OrderKey]))
			s.mu.Unlock()
		}
	}
	return st, err
}

// TestRelayRescuesUnderLoad: messages left in flight by a dead worker (a
// claim never completed) are rescued and delivered within RescueAfter plus
// a small margin while other persons keep the relay continuously busy
// (every claim finds work). The rescuer runs on its own schedule, not only
// when a claim comes back empty.
func TestRelayRescuesUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	// Three persons with two messages each; the dead worker claims their
	// heads and never answers.
	var dead []*linkbridge.OutboxMessage
	for i := range 3 {
		d := e.mustPerson(t, "dead"+strconv.Itoa(i))
		first, second := d.msg(d.p.ID+"-a", 1), d.msg(d.p.ID+"-b", 1)
		d.enqueue(t, first, second)
		dead = append(dead, first, second)
	}
	claimed, err := e.db.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "dead-worker", 10, time.Now())
	if err != nil || len(claimed) != 3 {
		t.Fatalf("ClaimOutbox(dead-worker) = %d messages, %v; want the 3 heads", len(claimed), err)
	}
	claimedAt := time.Now()

	load := &loadSender{Sender: e.sender, tb: t, busy: map[string]*person{}, next: map[string]int{}}
	for i := range 8 {
		b := e.mustPerson(t, "busy"+strconv.Itoa(i))
		load.busy[b.p.ID] = b
		load.next[b.p.ID] = 1
		b.enqueue(t, b.msg(b.p.ID+"-a", 1))
	}
	t.Cleanup(func() { load.stopped.Store(true) })

	const rescueAfter = time.Second
	r := e.relay()
	r.Sender = load
	r.RescueAfter = rescueAfter
	r.Batch, r.Concurrency = 4, 4 // fewer slots than busy persons: there is always more to claim
	start(t, r)

	deadline := rescueAfter + 2*time.Second
	waitFor(t, time.Until(claimedAt.Add(deadline)), "the dead worker's messages rescued and delivered under load", func() bool {
		for _, m := range dead {
			if get(t, e, m.ID).State != linkbridge.OutboxDelivered {
				return false
			}
		}
		return true
	})
	busySends := load.sends.Load()
	load.stopped.Store(true)
	if busySends < 10 {
		t.Errorf("only %d busy sends while waiting: the relay was not kept busy", busySends)
	}
	if n := countState(t, e, linkbridge.OutboxPending); n == 0 {
		t.Errorf("no busy message pending when the rescued ones were delivered: the load had stopped")
	}
	// Each rescued person's writes came in their order, each once.
	byOwner := map[string][]string{}
	for _, w := range e.srv.Writes() {
		if o := ownerOf(w); strings.HasPrefix(o, "p-dead") {
			byOwner[o] = append(byOwner[o], w.ID)
		}
	}
	for i := range 3 {
		o := "p-dead" + strconv.Itoa(i)
		if got := strings.Join(byOwner[o], ","); got != o+"-a,"+o+"-b" {
			t.Errorf("writes for %s = %s, want %s-a then %s-b, each once", o, got, o, o)
		}
	}
}

// hangServer puts a handler in front of a recording GP endpoint that holds
// writes of one resource until released (or until the client gives up),
// and passes everything else on. With once, it holds only the first.
type hangServer struct {
	*httptest.Server
	entered  chan struct{} // closed when the first held request arrives
	release  chan struct{} // closed to let held requests go on
	gaveUp   chan struct{} // closed when a held request's client gave up
	held     atomic.Int32  // requests being held now
	holds    atomic.Int32  // requests held so far
	enterOne sync.Once
	gaveOne  sync.Once
}

func newHangServer(tb testing.TB, e *env, resourceID string, once bool) *hangServer {
	tb.Helper()
	h := &hangServer{entered: make(chan struct{}), release: make(chan struct{}), gaveUp: make(chan struct{})}
	next := e.srv.Config.Handler
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+resourceID) && (!once || h.holds.Add(1) == 1) {
			// Read the body first: the server notices a client that gave up
			// only once the request body has been read.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			h.held.Add(1)
			h.enterOne.Do(func() { close(h.entered) })
			select {
			case <-h.release:
				h.held.Add(-1)
			case <-r.Context().Done():
				h.held.Add(-1)
				h.gaveOne.Do(func() { close(h.gaveUp) })
				return
			}
		}
		next.ServeHTTP(w, r)
	}))
	tb.Cleanup(h.Close)
	tb.Cleanup(h.letGo) // before Close: a held request would hold Close up
	return h
}

func (h *hangServer) letGo() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// sender is a Sender to the hang server (no in-process retries).
func (h *hangServer) sender(tb testing.TB) *gpfhir.Sender {
	tb.Helper()
	c, err := gpfhir.New(gpfhir.Config{BaseURL: h.URL, Mode: gpfhir.ModeClientID, RetryMax: 0, Timeout: time.Hour})
	if err != nil {
		tb.Fatalf("gpfhir.New: %v", err)
	}
	return &gpfhir.Sender{Client: c}
}

func waitClosed(tb testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		tb.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// TestRelayHangingSendHoldsOnlyItsPerson: the GP endpoint holds one
// person's write and does not answer. Meanwhile other persons' messages,
// committed after the hang began, are all delivered, in order, long before
// the send timeout: one slow send takes one slot of the window, not the
// relay.
func TestRelayHangingSendHoldsOnlyItsPerson(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.mustPerson(t, "h")
	mh := h.msg("p-h-a", 1)
	h.enqueue(t, mh)
	hs := newHangServer(t, e, "p-h-a", false)

	r := e.relay()
	r.Sender = hs.sender(t)
	r.RescueAfter = time.Hour
	r.SendTimeout = time.Minute // far beyond the wait below
	r.Batch, r.Concurrency = 4, 4
	start(t, r)
	waitClosed(t, hs.entered, 30*time.Second, "the held send to reach the endpoint")

	var others []*person
	for i := range 10 {
		others = append(others, e.mustPerson(t, "o"+strconv.Itoa(i)))
	}
	want := enqueueMany(t, others, 3, 3)
	r.Notify()
	waitFor(t, 30*time.Second, "the other persons' messages delivered while one send hangs", func() bool {
		return countState(t, e, linkbridge.OutboxDelivered) == 30
	})
	if hs.held.Load() != 1 || get(t, e, mh.ID).State != linkbridge.OutboxInflight {
		t.Fatalf("the held send ended (held %d, state %s) before the others were delivered", hs.held.Load(), get(t, e, mh.ID).State)
	}
	got := map[string][]string{}
	for _, w := range e.srv.Writes() {
		got[ownerOf(w)] = append(got[ownerOf(w)], "Task/"+w.ID+"/"+strconv.Itoa(w.Version))
	}
	for k, seq := range want {
		if strings.Join(got[k], " ") != strings.Join(seq, " ") {
			t.Errorf("writes for %s = %v, want %v", k, got[k], seq)
		}
	}

	// Released, the held write goes through.
	hs.letGo()
	waitFor(t, 30*time.Second, "the held message delivered", stateIs(t, e, mh.ID, linkbridge.OutboxDelivered))
	if m := get(t, e, mh.ID); m.Attempts != 0 {
		t.Errorf("held message: Attempts = %d, want 0 (answered within the send timeout)", m.Attempts)
	}
}

// TestRelaySendTimeoutRetries: the endpoint holds a person's first write
// until the client gives up. The relay cuts the send off at SendTimeout,
// reschedules the message (an attempt counted, logged at WARN, not
// dead-lettered) and delivers it on the next attempt, once.
func TestRelaySendTimeoutRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := e.mustPerson(t, "h")
	mh := h.msg("p-h-a", 1)
	h.enqueue(t, mh)
	hs := newHangServer(t, e, "p-h-a", true)

	logs := &logBuf{}
	r := e.relay()
	r.Sender = hs.sender(t)
	r.RescueAfter = time.Hour
	// Short, but long enough for the next attempt to be answered in time
	// on a loaded machine (the test counts attempts and writes).
	r.SendTimeout = 2 * time.Second
	r.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	start(t, r)
	waitClosed(t, hs.gaveUp, 30*time.Second, "the relay to give up the held send")
	waitFor(t, 30*time.Second, "delivered on the next attempt", stateIs(t, e, mh.ID, linkbridge.OutboxDelivered))
	if m := get(t, e, mh.ID); m.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1 (the timed-out attempt)", m.Attempts)
	}
	recs := logs.records(t, "send timed out")
	if len(recs) != 1 || recs[0]["level"] != "WARN" || recs[0]["outbox_id"] != float64(mh.ID) {
		t.Errorf("timed-out records = %v, want one WARN for outbox_id %d", recs, mh.ID)
	}
	if n := len(e.srv.Writes()); n != 1 {
		t.Errorf("recorder got %d writes, want 1 (the held one never reached it)", n)
	}
}
