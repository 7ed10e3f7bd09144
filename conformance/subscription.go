package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Subscription scenario (docs/conformance.md §8.13): the kit is the
// subscriber, with a rest-hook endpoint of its own on loopback. A target
// that refuses that endpoint (a production gateway allows only its
// configured https endpoints) skips the scenario with the target's reason.

const (
	backportSD      = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
	sdohTaskTopic   = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"
	extTopicCanonic = backportSD + "capabilitystatement-subscriptiontopic-canonical"
)

// hookNote is one notification the kit's rest-hook endpoint received.
type hookNote struct {
	Type, Status string
	Since, Event int64
	Focus        string
	BundleType   string
	FirstIsParam bool
}

// hookEndpoint is the kit's rest-hook receiver.
type hookEndpoint struct {
	url   string
	srv   *http.Server
	mu    sync.Mutex
	notes []hookNote
}

func startHook() (*hookEndpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &hookEndpoint{url: "http://" + ln.Addr().String() + "/hook"}
	h.srv = &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return
		}
	}()
	return h, nil
}

func (h *hookEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	var doc J
	if json.Unmarshal(b, &doc) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	n := hookNote{BundleType: doc.Str("type")}
	if entries := doc.List("entry"); len(entries) > 0 {
		st := entries[0].Obj("resource")
		n.FirstIsParam = st.Str("resourceType") == "Parameters"
		for _, p := range st.List("parameter") {
			switch p.Str("name") {
			case "type":
				n.Type = p.Str("valueCode")
			case "status":
				n.Status = p.Str("valueCode")
			case "events-since-subscription-start":
				n.Since, _ = strconv.ParseInt(p.Str("valueString"), 10, 64)
			case "notification-event":
				for _, part := range p.List("part") {
					switch part.Str("name") {
					case "event-number":
						n.Event, _ = strconv.ParseInt(part.Str("valueString"), 10, 64)
					case "focus":
						n.Focus = part.Obj("valueReference").Str("reference")
					}
				}
			}
		}
	}
	h.mu.Lock()
	h.notes = append(h.notes, n)
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hookEndpoint) received() []hookNote {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookNote(nil), h.notes...)
}

func (h *hookEndpoint) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
}

// waitFor polls the received notifications until ok holds or 20 s pass.
func (h *hookEndpoint) waitFor(t *T, what string, ok func([]hookNote) bool) []hookNote {
	deadline := time.Now().Add(20 * time.Second)
	for {
		notes := h.received()
		if ok(notes) {
			return notes
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rest-hook endpoint did not receive %s (received %+v)", what, notes)
		}
		time.Sleep(t.kit.cfg.PollInterval)
	}
}

// scSubscription: CapabilityStatement declares the backport Subscription
// and the SDOH Task topic; POST Subscription (SDOH Task topic, rest-hook,
// id-only, heartbeat 1 s) → 201 requested; the handshake arrives first
// (history Bundle, Parameters first) and the subscription turns active;
// accepting a referral notifies the Task with event numbers from 1 without
// gaps; heartbeats arrive; $status counts the events; $events replays
// them; DELETE ends it.
func scSubscription(t *T) {
	cs := t.Do(Request{Method: http.MethodGet, URL: "metadata"})
	t.ExpectStatus(cs, http.StatusOK)
	var sub J
	for _, rest := range cs.Doc.List("rest") {
		for _, res := range rest.List("resource") {
			if res.Str("type") == "Subscription" {
				sub = res
			}
		}
	}
	if sub == nil {
		t.Skipf("the CapabilityStatement lists no Subscription")
	}
	profiles, _ := sub["supportedProfile"].([]any)
	hasProfile := false
	for _, p := range profiles {
		hasProfile = hasProfile || p == backportSD+"backport-subscription"
	}
	t.Check(hasProfile, "Subscription supports the backport-subscription profile")
	topics := map[string]bool{}
	for _, e := range sub.List("extension") {
		if e.Str("url") == extTopicCanonic {
			topics[e.Str("valueCanonical")] = true
		}
	}
	t.Check(topics[sdohTaskTopic], "the SDOH Task topic is advertised (capabilitystatement-subscriptiontopic-canonical)")

	hook, err := startHook()
	if err != nil {
		t.Fatalf("start the rest-hook endpoint: %v", err)
	}
	defer hook.close()
	body, _ := json.Marshal(map[string]any{
		"resourceType": "Subscription", "status": "requested", "reason": "conformance kit", "criteria": sdohTaskTopic,
		"channel": map[string]any{
			"extension": []any{map[string]any{"url": backportSD + "backport-heartbeat-period", "valueUnsignedInt": 1}},
			"type":      "rest-hook", "endpoint": hook.url, "payload": "application/fhir+json",
			"_payload": map[string]any{"extension": []any{map[string]any{"url": backportSD + "backport-payload-content", "valueCode": "id-only"}}},
		},
	})
	created := t.Do(Request{Method: http.MethodPost, URL: "Subscription", Body: body})
	if created.Status == http.StatusUnprocessableEntity {
		t.Skipf("the target refuses the kit's loopback rest-hook endpoint (%s): run it in development mode, or allow the endpoint",
			strings.TrimSpace(string(created.Body)))
	}
	t.ExpectStatus(created, http.StatusCreated)
	id := created.Doc.Str("id")
	t.Check(created.Doc.Str("status") == "requested", "a new Subscription is requested (got %q)", created.Doc.Str("status"))
	defer t.Do(Request{Method: http.MethodDelete, URL: "Subscription/" + id})

	notes := hook.waitFor(t, "the handshake", func(n []hookNote) bool { return len(n) > 0 })
	first := notes[0]
	t.Check(first.BundleType == "history" && first.FirstIsParam, "a notification is a history Bundle whose first entry is the Parameters status")
	t.Check(first.Type == "handshake", "the first notification is the handshake (got %q)", first.Type)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := t.Do(Request{Method: http.MethodGet, URL: "Subscription/" + id})
		t.ExpectStatus(st, http.StatusOK)
		if st.Doc.Str("status") == "active" {
			t.Step("the Subscription is active after its handshake")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Subscription is %q, not active, after its handshake", st.Doc.Str("status"))
		}
		time.Sleep(t.kit.cfg.PollInterval)
	}

	r := newTransactionReferral(t)
	t.kit.lw.perform(t, r, stepAccept)
	waitTask(t, r, "accepted")
	notes = hook.waitFor(t, "the accepted Task's event", func(n []hookNote) bool {
		events := 0
		for _, x := range n {
			if x.Type == "event-notification" {
				events++
			}
		}
		return events >= 2 // created, accepted
	})
	var last int64
	for _, n := range notes {
		if n.Type != "event-notification" {
			continue
		}
		t.Check(n.Event == last+1 || n.Event == last, "event numbers run from 1 without gaps (%d after %d)", n.Event, last)
		t.Check(strings.HasSuffix(n.Focus, "Task/"+r.TaskID), "an id-only event names its focus (%s)", n.Focus)
		last = n.Event
	}
	hook.waitFor(t, "a heartbeat", func(n []hookNote) bool {
		for _, x := range n {
			if x.Type == "heartbeat" {
				return true
			}
		}
		return false
	})
	t.Step("heartbeats arrive on the idle subscription")
	status := t.Do(Request{Method: http.MethodGet, URL: "Subscription/" + id + "/$status"})
	t.ExpectStatus(status, http.StatusOK)
	var count string
	for _, e := range status.Doc.List("entry") {
		for _, p := range e.Obj("resource").List("parameter") {
			if p.Str("name") == "events-since-subscription-start" {
				count = p.Str("valueString")
			}
		}
	}
	t.Check(count == strconv.FormatInt(last, 10), "$status counts the events delivered (%s, last %d)", count, last)
	events := t.Do(Request{Method: http.MethodGet, URL: "Subscription/" + id + "/$events?eventsSinceNumber=1"})
	t.ExpectStatus(events, http.StatusOK)
	t.Check(events.Doc.Str("type") == "history" && len(events.Doc.List("entry")) == int(last)+1,
		"$events replays the %d events after the status", last)
	del := t.Do(Request{Method: http.MethodDelete, URL: "Subscription/" + id})
	t.ExpectStatus(del, http.StatusOK, http.StatusNoContent)
	gone := t.Do(Request{Method: http.MethodGet, URL: "Subscription/" + id})
	t.ExpectStatus(gone, http.StatusNotFound, http.StatusGone)
}
