// Package resthook delivers subscription notifications (FHIR R4
// Subscriptions Backport IG, rest-hook channel; docs/subscriptions.md): it
// is the outbox.Sender of the rest-hook channel, rendering each queued
// notification (handshake, heartbeat or event) from the subscription and
// its event log and POSTing it to the subscriber's endpoint through
// go-retryablehttp, within the endpoint policy. It records the outcome on
// the subscription (active, or error with the reason). A Heartbeats loop
// queues heartbeat notifications for idle subscriptions.
package resthook

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/outbox"
)

// Store is what the sender reads: subscriptions and their events, and the
// resource versions a full-resource notification carries (read without
// access restriction: the subscription's owner was checked when the event
// was recorded).
type Store interface {
	linkbridge.SubscriptionStore
	ReadResourceVersion(ctx context.Context, typ, id string, version int) (*linkbridge.Resource, error)
}

// XMLConverter renders FHIR JSON as FHIR XML (adapter/fhirxml), for
// subscriptions whose payload is application/fhir+xml.
type XMLConverter interface {
	FromJSON(json []byte) ([]byte, error)
}

// Config configures a Sender.
type Config struct {
	Store  Store
	Codec  *fhirjson.Codec
	XML    XMLConverter
	Policy Policy
	Logger *slog.Logger
	// Timeout bounds one attempt (default 10s); a subscription's own
	// timeout (backport-timeout) shortens it.
	Timeout time.Duration
	// RetryMax, RetryWaitMin and RetryWaitMax bound the in-process retries
	// of one send (defaults 2, 100ms, 2s); the outbox retries later.
	RetryMax                   int
	RetryWaitMin, RetryWaitMax time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Transport replaces the HTTP transport (tests); its dialer must apply
	// the policy itself.
	Transport http.RoundTripper
}

// Sender is the outbox.Sender of the rest-hook channel.
type Sender struct {
	cfg  Config
	http *retryablehttp.Client
}

var _ outbox.Sender = (*Sender)(nil)

// New builds a Sender. Its HTTP client dials only addresses the policy
// allows (Policy.DialControl), uses no proxy (a proxy would make the
// address check moot), follows no redirect, and retries in process a
// little (network errors, 408, 429 and 5xx); the outbox retries later.
func New(cfg Config) (*Sender, error) {
	if cfg.Store == nil || cfg.Codec == nil {
		return nil, fmt.Errorf("resthook: a store and a codec are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 2
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = 100 * time.Millisecond
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cleanhttp.DefaultPooledClient()
	if cfg.Transport != nil {
		hc.Transport = cfg.Transport
	} else {
		tr := hc.Transport.(*http.Transport)
		tr.Proxy = nil
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: cfg.Policy.DialControl}).DialContext
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	rc := retryablehttp.NewClient()
	rc.HTTPClient = hc
	rc.Logger = hostLogger{cfg.Logger}
	rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax = cfg.RetryMax, cfg.RetryWaitMin, cfg.RetryWaitMax
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	rc.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil && strings.Contains(err.Error(), ErrAddressRefused.Error()) {
			return false, nil // the address will not change its nature
		}
		if resp != nil && resp.StatusCode == http.StatusRequestTimeout {
			return true, nil
		}
		return retryablehttp.ErrorPropagatedRetryPolicy(ctx, resp, err)
	}
	return &Sender{cfg: cfg, http: rc}, nil
}

// hostLogger is retryablehttp's logger: URLs are logged as their host
// alone (an endpoint's path or query may hold a token).
type hostLogger struct{ l *slog.Logger }

func (h hostLogger) Error(msg string, kv ...any) { h.l.Error(msg, hostKV(kv)...) }
func (h hostLogger) Info(msg string, kv ...any)  { h.l.Debug(msg, hostKV(kv)...) }
func (h hostLogger) Debug(msg string, kv ...any) { h.l.Debug(msg, hostKV(kv)...) }
func (h hostLogger) Warn(msg string, kv ...any)  { h.l.Warn(msg, hostKV(kv)...) }

func hostKV(kv []any) []any {
	out := make([]any, len(kv))
	for i, v := range kv {
		switch x := v.(type) {
		case *url.URL:
			out[i] = x.Host
		case string:
			if u, err := url.Parse(x); err == nil && u.IsAbs() && u.Host != "" {
				out[i] = u.Host
				continue
			}
			out[i] = x
		default:
			out[i] = v
		}
	}
	return out
}

// newID returns a random UUID (version 4) for a notification's Bundle and
// status.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Render renders a notification of sub as the subscription's payload MIME
// type asks: the FHIR JSON notification Bundle, parsed and rendered by
// jsonformat (which checks it), as XML for application/fhir+xml.
func Render(codec *fhirjson.Codec, xml XMLConverter, n fhirmap.Notification) ([]byte, error) {
	raw, err := fhirmap.NotificationJSON(n)
	if err != nil {
		return nil, err
	}
	cr, err := codec.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("resthook: notification Bundle: %w", err)
	}
	out, err := codec.EncodeContained(cr)
	if err != nil {
		return nil, err
	}
	if n.Sub.PayloadType == "application/fhir+xml" && xml != nil {
		return xml.FromJSON(out)
	}
	return out, nil
}

// Notification builds the notification an outbox message stands for, from
// the subscription and (for an event) its event log; full-resource events
// carry the focus's version.
func (s *Sender) Notification(ctx context.Context, sub *linkbridge.Subscription, m *linkbridge.OutboxMessage) (fhirmap.Notification, error) {
	n := fhirmap.Notification{Sub: sub, Type: m.Notification, Status: sub.Status, EventsSinceStart: sub.EventsSinceStart,
		BundleID: newID(), StatusID: newID(), Timestamp: s.cfg.Now().UTC()}
	switch m.Notification {
	case linkbridge.NotificationHandshake:
		if n.Status != linkbridge.SubscriptionActive {
			n.Status = linkbridge.SubscriptionRequested // the handshake is what activates it
		}
	case linkbridge.NotificationHeartbeat:
	case linkbridge.NotificationEvent:
		ev, err := s.cfg.Store.SubscriptionEvent(ctx, sub.ID, m.EventNumber)
		if err != nil {
			return n, err
		}
		// The count as the event was recorded, inclusive of it.
		n.EventsSinceStart = ev.Number
		if n.Status == linkbridge.SubscriptionRequested || n.Status == linkbridge.SubscriptionError {
			// The notification is the delivery that makes it active.
			n.Status = linkbridge.SubscriptionActive
		}
		ne := fhirmap.NotificationEvent{Event: ev}
		if sub.Content == linkbridge.ContentFullResource {
			res, err := s.cfg.Store.ReadResourceVersion(ctx, ev.FocusType, ev.FocusID, ev.FocusVersion)
			if err != nil && linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
				return n, err
			}
			ne.Resource = res // nil if gone: the entry keeps its request and response
		}
		n.Events = []fhirmap.NotificationEvent{ne}
	default:
		return n, fmt.Errorf("resthook: unknown notification type %q", m.Notification)
	}
	return n, nil
}

// Send renders and POSTs one notification. 2xx: delivered, and the
// subscription is active. A network error, 408, 429 or 5xx: retryable, and
// the subscription is in error until a delivery succeeds. Any other answer,
// or an endpoint the policy no longer allows: permanent (dead-lettered),
// and the subscription is in error. A deleted subscription's notification
// is permanent too.
func (s *Sender) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	sub, err := s.cfg.Store.GetSubscription(ctx, m.ResourceID)
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		return 0, &outbox.PermanentError{Err: fmt.Errorf("subscription %s was deleted", m.ResourceID)}
	} else if err != nil {
		return 0, err
	}
	log := s.cfg.Logger.With(slog.String("subscription_id", sub.ID), slog.String("notification", m.Notification),
		slog.Int64("event_number", m.EventNumber))
	n, err := s.Notification(ctx, sub, m)
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		return 0, &outbox.PermanentError{Err: err}
	} else if err != nil {
		return 0, err
	}
	body, err := Render(s.cfg.Codec, s.cfg.XML, n)
	if err != nil {
		return 0, &outbox.PermanentError{Err: err}
	}
	fail := func(status int, reason string, permanent bool) (int, error) {
		if serr := s.cfg.Store.SetSubscriptionStatus(context.WithoutCancel(ctx), sub.ID, linkbridge.SubscriptionError, reason, s.cfg.Now()); serr != nil {
			log.WarnContext(ctx, "subscription status not recorded", slog.Any("error", serr))
		}
		e := fmt.Errorf("%s", reason)
		if permanent {
			return status, &outbox.PermanentError{Status: status, Err: e}
		}
		return status, &outbox.RetryableError{Status: status, Err: e}
	}
	if err := s.cfg.Policy.CheckEndpoint(sub.Endpoint); err != nil {
		return fail(0, "endpoint not allowed: "+linkbridge.ErrorMessage(err), true)
	}
	timeout := s.cfg.Timeout
	if sub.Timeout > 0 && sub.Timeout < timeout {
		timeout = sub.Timeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout*time.Duration(s.cfg.RetryMax+1))
	defer cancel()
	req, err := retryablehttp.NewRequestWithContext(actx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return fail(0, "bad endpoint URL", true)
	}
	for _, h := range sub.Headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	req.Header.Set("Content-Type", sub.PayloadType+"; charset=utf-8")
	req.Header.Set("User-Agent", "linkbridge-subscriptions")
	resp, err := s.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		reason := "no answer from the endpoint"
		if strings.Contains(err.Error(), ErrAddressRefused.Error()) {
			return fail(0, "endpoint resolves to an address the gateway does not reach", true)
		}
		if actx.Err() != nil {
			reason = "the endpoint did not answer in time"
		}
		log.InfoContext(ctx, "notification not delivered: will retry", slog.String("reason", reason))
		return fail(0, reason, false)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch st := resp.StatusCode; {
	case st >= 200 && st < 300:
		if err := s.cfg.Store.SetSubscriptionStatus(context.WithoutCancel(ctx), sub.ID, linkbridge.SubscriptionActive, "", s.cfg.Now()); err != nil &&
			linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			log.WarnContext(ctx, "subscription status not recorded", slog.Any("error", err))
		}
		log.DebugContext(ctx, "notification delivered", slog.Int("status", st))
		return st, nil
	case st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500:
		log.InfoContext(ctx, "notification refused for now: will retry", slog.Int("status", st))
		return fail(st, fmt.Sprintf("the endpoint answered HTTP %d", st), false)
	default:
		log.WarnContext(ctx, "notification refused", slog.Int("status", st))
		return fail(st, fmt.Sprintf("the endpoint refused the notification: HTTP %d", st), true)
	}
}

// Heartbeats queues heartbeat notifications (linkbridge.SubscriptionStore
// QueueHeartbeats) every Interval until stopped, and wakes the relay when
// it queued any. Configure the fields, then Start; Stop ends it.
type Heartbeats struct {
	Store    linkbridge.SubscriptionStore
	Interval time.Duration
	Notify   func()
	Logger   *slog.Logger
	Now      func() time.Time

	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

// Start runs the loop until ctx ends or Stop is called.
func (h *Heartbeats) Start(ctx context.Context) {
	if h.Interval <= 0 {
		h.Interval = time.Second
	}
	if h.Logger == nil {
		h.Logger = slog.New(slog.DiscardHandler)
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	ctx, h.stop = context.WithCancel(ctx)
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		tick := time.NewTicker(h.Interval)
		defer tick.Stop()
		for {
			n, err := h.Store.QueueHeartbeats(ctx, h.Now())
			switch {
			case err != nil && ctx.Err() == nil:
				h.Logger.WarnContext(ctx, "queueing heartbeats failed", slog.Any("error", err))
			case n > 0 && h.Notify != nil:
				h.Notify()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// Stop ends the loop and waits for it; safe without Start and twice.
func (h *Heartbeats) Stop() {
	h.once.Do(func() {
		if h.stop != nil {
			h.stop()
			<-h.done
		}
	})
}
