package mdtweb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/linkbridge/linkbridge"
)

// Live pages (docs/mdt.md#live-updates). Every open page keeps an
// EventSource on /mdt/events. The server follows the store's referral feed
// (linkbridge.ReferralFeed: this process's commits on SQLite, every
// replica's through LISTEN/NOTIFY on PostgreSQL) and tells each stream the
// ids of the referrals its principal may read that changed, nothing more;
// the page then fetches its server-rendered fragment again, which is read
// through the authorising store and audited like the page itself.

// DefaultHeartbeat is how often an idle stream sends a comment, so that
// proxies keep it open and a dead client is noticed.
const DefaultHeartbeat = 20 * time.Second

// streamBuffer is how many notices a stream may fall behind by before it
// is owed a resync instead.
const streamBuffer = 64

// broker fans the feed's notices out to the open streams.
type broker struct {
	mu      sync.Mutex
	streams map[*stream]struct{}
}

// stream is one open event stream.
type stream struct {
	p      *linkbridge.Principal
	ch     chan linkbridge.ReferralNotice
	resync chan struct{}
}

func (b *broker) add(p *linkbridge.Principal) *stream {
	st := &stream{p: p, ch: make(chan linkbridge.ReferralNotice, streamBuffer), resync: make(chan struct{}, 1)}
	b.mu.Lock()
	if b.streams == nil {
		b.streams = map[*stream]struct{}{}
	}
	b.streams[st] = struct{}{}
	b.mu.Unlock()
	return st
}

func (b *broker) remove(st *stream) {
	b.mu.Lock()
	delete(b.streams, st)
	b.mu.Unlock()
}

// publish passes a notice to every stream whose principal may hear it,
// never blocking: a full stream gets a resync.
func (b *broker) publish(n linkbridge.ReferralNotice) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for st := range b.streams {
		if !st.p.NoticeFor(n) {
			continue
		}
		if n.Resync() {
			select {
			case st.resync <- struct{}{}:
			default:
			}
			continue
		}
		select {
		case st.ch <- n:
		default:
			select {
			case st.resync <- struct{}{}:
			default:
			}
		}
	}
}

// Start follows the store's referral feed until ctx ends, so that open
// pages hear of changes. It returns once following has started (an error
// when the feed cannot be followed at all); without a feed, the pages are
// not live and it returns nil. Event streams still open when ctx ends are
// closed (the pages reconnect to another replica, or after a restart).
func (s *Server) Start(ctx context.Context) error {
	s.stop = ctx.Done() // open streams end with ctx, so that a shutdown does not wait for them
	if s.Feed == nil {
		return nil
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		err := s.Feed.FollowReferrals(ctx, ready, s.broker.publish)
		if err != nil && ctx.Err() == nil {
			s.Logger.Error("MDT pages: the referral feed stopped: pages are no longer live", slog.Any("error", err))
		}
		done <- err
	}()
	select {
	case <-ready:
		return nil
	case err := <-done:
		return fmt.Errorf("mdtweb: follow the referral feed: %w", err)
	}
}

// handleEvents is /mdt/events: a text/event-stream of "referral" events,
// each naming one referral the principal may read that changed, and
// "resync" events when changes may have been missed.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, p *linkbridge.Principal) {
	rc := http.NewResponseController(w)
	// The server's write timeout bounds ordinary answers; a stream lives
	// as long as the page (and the session) does.
	_ = rc.SetWriteDeadline(time.Time{})
	st := s.broker.add(p)
	defer s.broker.remove(st)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The page reconnects 2 s after a drop.
	if _, err := fmt.Fprint(w, "retry: 2000\n: live\n\n"); err != nil {
		return
	}
	_ = rc.Flush()
	beat := s.Heartbeat
	if beat <= 0 {
		beat = DefaultHeartbeat
	}
	tick := time.NewTicker(beat)
	defer tick.Stop()
	var expires <-chan time.Time
	if ss, err := s.readSession(r); err == nil {
		// The stream ends with the session; the page's reconnection then
		// finds it signed out.
		t := time.NewTimer(time.Until(time.Unix(ss.Expires, 0)))
		defer t.Stop()
		expires = t.C
	}
	for {
		var msg string
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case <-expires:
			return
		case <-tick.C:
			msg = ": keep-alive\n\n"
		case <-st.resync:
			msg = "event: resync\ndata: {}\n\n"
		case n := <-st.ch:
			b, _ := json.Marshal(map[string]string{"referral": n.ReferralID})
			msg = "event: referral\ndata: " + string(b) + "\n\n"
		}
		if _, err := fmt.Fprint(w, msg); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
