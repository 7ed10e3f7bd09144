package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/bench"
)

// hookNote is what the rest-hook receiver reads of one notification.
type hookNote struct {
	Type        string
	Status      string
	SinceStart  int64
	EventNumber int64 // 0: none
	Focus       string
	Entries     int
	HasResource bool
	ContentType string
}

// hookReceiver is a subscriber's rest-hook endpoint: it records every
// notification POSTed to it, per path (one path per subscription), and
// checks each is an R4 notification Bundle.
type hookReceiver struct {
	t     *testing.T
	mu    sync.Mutex
	notes map[string][]hookNote
}

func newHookReceiver(t *testing.T) (*hookReceiver, *httptest.Server) {
	h := &hookReceiver{t: t, notes: map[string][]hookNote{}}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
			Request  struct {
				Method string `json:"method"`
			} `json:"request"`
		} `json:"entry"`
	}
	if r.Method != http.MethodPost || json.Unmarshal(b, &bundle) != nil || bundle.ResourceType != "Bundle" || bundle.Type != "history" || len(bundle.Entry) == 0 {
		h.t.Errorf("rest-hook received %s %s: not a history Bundle: %.200s", r.Method, r.URL.Path, b)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var status struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name           string `json:"name"`
			ValueString    string `json:"valueString"`
			ValueCode      string `json:"valueCode"`
			ValueReference struct {
				Reference string `json:"reference"`
			} `json:"valueReference"`
			Part []struct {
				Name           string `json:"name"`
				ValueString    string `json:"valueString"`
				ValueReference struct {
					Reference string `json:"reference"`
				} `json:"valueReference"`
			} `json:"part"`
		} `json:"parameter"`
	}
	if json.Unmarshal(bundle.Entry[0].Resource, &status) != nil || status.ResourceType != "Parameters" {
		h.t.Errorf("rest-hook: the first entry is not the Parameters status: %.200s", b)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	n := hookNote{Entries: len(bundle.Entry), ContentType: r.Header.Get("Content-Type")}
	for _, p := range status.Parameter {
		switch p.Name {
		case "type":
			n.Type = p.ValueCode
		case "status":
			n.Status = p.ValueCode
		case "events-since-subscription-start":
			n.SinceStart, _ = strconv.ParseInt(p.ValueString, 10, 64)
		case "notification-event":
			for _, part := range p.Part {
				switch part.Name {
				case "event-number":
					n.EventNumber, _ = strconv.ParseInt(part.ValueString, 10, 64)
				case "focus":
					n.Focus = part.ValueReference.Reference
				}
			}
		}
	}
	for _, e := range bundle.Entry[1:] {
		if len(e.Resource) > 0 {
			n.HasResource = true
		}
	}
	h.mu.Lock()
	h.notes[r.URL.Path] = append(h.notes[r.URL.Path], n)
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) get(path string) []hookNote {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.notes[path])
}

// createSubscription POSTs a backport Subscription and returns its id.
func createSubscription(t *testing.T, g *gatewayClient, topic, endpoint, content string, heartbeat int, filters ...string) string {
	t.Helper()
	var crit []any
	for _, f := range filters {
		crit = append(crit, map[string]any{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria", "valueString": f})
	}
	sub := map[string]any{
		"resourceType": "Subscription", "status": "requested", "reason": "MDT live view", "criteria": topic,
		"channel": map[string]any{
			"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
			"_payload": map[string]any{"extension": []any{map[string]any{
				"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content", "valueCode": content}}},
		},
	}
	if len(crit) > 0 {
		sub["_criteria"] = map[string]any{"extension": crit}
	}
	if heartbeat > 0 {
		sub["channel"].(map[string]any)["extension"] = []any{map[string]any{
			"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period", "valueUnsignedInt": heartbeat}}
	}
	b, _ := json.Marshal(sub)
	req, _ := http.NewRequest(http.MethodPost, g.base+"/fhir/Subscription", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Status != "requested" {
		t.Fatalf("POST /fhir/Subscription = %d %s; want 201, requested", resp.StatusCode, body)
	}
	return out.ID
}

// subscriptionStatus reads $status: the subscription's status and the
// number of its last event.
func subscriptionStatus(g *gatewayClient, id string) (string, int64, bool) {
	var b struct {
		Entry []struct {
			Resource struct {
				Parameter []struct {
					Name        string `json:"name"`
					ValueCode   string `json:"valueCode"`
					ValueString string `json:"valueString"`
				} `json:"parameter"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if st, _ := g.do(http.MethodGet, "/fhir/Subscription/"+id+"/$status", "", nil, &b); st != 200 || len(b.Entry) != 1 {
		return "", 0, false
	}
	var status string
	var n int64
	for _, p := range b.Entry[0].Resource.Parameter {
		switch p.Name {
		case "status":
			status = p.ValueCode
		case "events-since-subscription-start":
			n, _ = strconv.ParseInt(p.ValueString, 10, 64)
		}
	}
	return status, n, true
}

// checkStream checks one subscription's notifications as received: the
// handshake first; event numbers 1..want in order, each once, but for a
// redelivery of the number just received (a crash after the endpoint
// answered and before the outbox recorded it: docs/subscriptions.md#delivery);
// heartbeats only between events. It returns the number of redeliveries.
func checkStream(t *testing.T, name string, notes []hookNote, want int64, content string) int {
	t.Helper()
	if len(notes) == 0 || notes[0].Type != "handshake" || notes[0].Status != "requested" {
		t.Fatalf("%s: first notification %+v, want the handshake (status requested)", name, notes)
	}
	var last int64
	dups := 0
	for i, n := range notes {
		if !strings.HasPrefix(n.ContentType, "application/fhir+json") {
			t.Errorf("%s: notification %d Content-Type %q", name, i, n.ContentType)
		}
		switch n.Type {
		case "handshake":
			if last != 0 {
				t.Errorf("%s: a handshake after event %d", name, last)
			}
		case "heartbeat":
			if n.SinceStart < last {
				t.Errorf("%s: heartbeat reports %d events after event %d was delivered", name, n.SinceStart, last)
			}
		case "event-notification":
			switch {
			case n.EventNumber == last+1:
				last = n.EventNumber
			case n.EventNumber == last:
				dups++
			default:
				t.Fatalf("%s: event %d after event %d: lost or out of order (all: %+v)", name, n.EventNumber, last, notes)
			}
			if n.SinceStart != n.EventNumber {
				t.Errorf("%s: event %d reports events-since-subscription-start %d", name, n.EventNumber, n.SinceStart)
			}
			switch content {
			case "id-only":
				if n.Focus == "" || n.HasResource || n.Entries != 2 {
					t.Errorf("%s: id-only event %d: focus %q, resource %v, %d entries; want a focus and an entry without resource", name, n.EventNumber, n.Focus, n.HasResource, n.Entries)
				}
			case "full-resource":
				if n.Focus == "" || !n.HasResource {
					t.Errorf("%s: full-resource event %d carries no resource", name, n.EventNumber)
				}
			case "empty":
				if n.Focus != "" || n.Entries != 1 {
					t.Errorf("%s: empty event %d names %q, %d entries", name, n.EventNumber, n.Focus, n.Entries)
				}
			}
		default:
			t.Errorf("%s: notification type %q", name, n.Type)
		}
	}
	if last != want {
		t.Fatalf("%s: received events 1..%d, want 1..%d", name, last, want)
	}
	return dups
}

// TestSubscriptionsSurviveCrashes runs referrals through their whole
// journey while SIGKILLing the gateway (serve --dev on a SQLite file,
// restarted on it each time), with three subscriptions to a rest-hook
// receiver on loopback: referral status id-only with heartbeats, case
// record full-resource, and the SDOH Task topic with an empty payload. Each
// subscriber receives its handshake first, then every event of the
// journeys, numbered 1..n as $status counts them, none lost and none out of
// order; payloads are shaped by content level.
func TestSubscriptionsSurviveCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test skipped in -short mode")
	}
	recv, hook := newHookReceiver(t)
	bin := buildBinary(t)
	db := filepath.Join(t.TempDir(), "lb.db")
	addr := freeAddr(t)
	base := "http://" + addr
	args := []string{"--addr", addr, "--db", db, "--service-ods", "Y02662", "--rescue-after", "2s",
		"--subscription-timeout", "1s", "--heartbeat-interval", "200ms", "--log-level", "warn"}
	logs := &syncBuffer{}
	start := func() *exec.Cmd {
		cmd := startProcess(t, bin, args, logs)
		if !waitReady(base, 20*time.Second) {
			_ = cmd.Process.Kill()
			t.Fatalf("gateway not ready\n%s", logs)
		}
		return cmd
	}
	cmd := start()
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	g := &gatewayClient{t: t, base: base, client: &http.Client{Timeout: 5 * time.Second}}
	topics := base + "/fhir/Basic?code=SubscriptionTopic"
	var tb struct {
		Entry []struct {
			Resource struct {
				ID        string `json:"id"`
				Extension []struct {
					URL      string `json:"url"`
					ValueURI string `json:"valueUri"`
				} `json:"extension"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if st, _ := g.do(http.MethodGet, strings.TrimPrefix(topics, base), "", nil, &tb); st != 200 || len(tb.Entry) != 3 {
		t.Fatalf("topics = %d, %+v", st, tb)
	}
	url := map[string]string{}
	for _, e := range tb.Entry {
		for _, x := range e.Resource.Extension {
			if strings.HasSuffix(x.URL, "SubscriptionTopic.url") {
				url[e.Resource.ID] = x.ValueURI
			}
		}
	}
	subs := []struct{ name, topic, content string }{
		{"status", url["referral-status"], "id-only"},
		{"record", url["case-record"], "full-resource"},
		{"sdoh", url["sdoh-task"], "empty"},
	}
	ids := map[string]string{}
	for _, s := range subs {
		hb := 0
		if s.name == "status" {
			hb = 1
		}
		ids[s.name] = createSubscription(t, g, s.topic, hook.URL+"/"+s.name, s.content, hb)
	}
	// The handshakes activate them.
	deadline := time.Now().Add(time.Minute)
	for _, s := range subs {
		for {
			if st, _, _ := subscriptionStatus(g, ids[s.name]); st == "active" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not active after its handshake; received %+v\n%s", s.name, recv.get("/"+s.name), logs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	gen := bench.NewReferralGen()
	const n = 4
	var refs []string
	for len(refs) < n {
		if id, ok := g.postReferral(gen); ok {
			refs = append(refs, id)
		}
	}
	// Deadlines, not timings: each returns as soon as its condition holds
	// (generous for a loaded CI machine).
	jdeadline := time.Now().Add(4 * time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		now := time.Now().UTC().Truncate(time.Second)
		var wg sync.WaitGroup
		for _, id := range refs {
			wg.Go(func() {
				for _, step := range journey(id, now) {
					g.change(id, step.method, step.path, step.body, jdeadline)
				}
			})
		}
		wg.Wait()
	}()
	kills := 0
	for running := true; running; {
		if kills >= 6 {
			<-done // enough crashes mid-journey: let it finish
			break
		}
		select {
		case <-done:
			running = false
		case <-time.After(time.Duration(150+kills*41%200) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			kills++
			cmd = start()
		}
	}
	for i := 0; i < 3 || kills < 5; i++ {
		time.Sleep(time.Duration(120+i*60) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		cmd = start()
	}

	// Every subscription receives every event $status counts (a deadline
	// that returns as soon as they have arrived).
	wdeadline := time.Now().Add(3 * time.Minute)
	dups := 0
	for _, s := range subs {
		var want int64
		for {
			_, events, ok := subscriptionStatus(g, ids[s.name])
			notes := recv.get("/" + s.name)
			var got int64
			for _, nt := range notes {
				got = max(got, nt.EventNumber)
			}
			if ok && events > 0 && got == events {
				want = events
				break
			}
			if time.Now().After(wdeadline) {
				t.Fatalf("%s: received up to event %d of %d\n%s", s.name, got, events, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
		dups += checkStream(t, s.name, recv.get("/"+s.name), want, s.content)
		t.Logf("%s: %d events delivered in order", s.name, want)
	}
	// The referral-status topic: each referral's Task created
	// (requested), accepted, in progress (the first contact) and
	// completed.
	if _, st, _ := subscriptionStatus(g, ids["status"]); st != 4*n {
		t.Errorf("referral-status events = %d, want %d (requested, accepted, in-progress, completed per referral)", st, 4*n)
	}
	// Heartbeats arrive on the idle heartbeat subscription.
	hbDeadline := time.Now().Add(time.Minute)
	for {
		beats := 0
		for _, nt := range recv.get("/status") {
			if nt.Type == "heartbeat" {
				beats++
			}
		}
		if beats > 0 {
			break
		}
		if time.Now().After(hbDeadline) {
			t.Fatalf("no heartbeat on a subscription with a 1 s heartbeat period")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// $events replays what was delivered.
	var ev struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if st, _ := g.do(http.MethodGet, "/fhir/Subscription/"+ids["record"]+"/$events?eventsSinceNumber=1&eventsUntilNumber=3", "", nil, &ev); st != 200 || len(ev.Entry) != 4 {
		t.Fatalf("$events 1..3 = %d with %d entries, want 200 with the status and 3 resources", st, len(ev.Entry))
	}
	t.Logf("%d kills; %d notifications redelivered after a crash", kills, dups)
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("gateway panicked:\n%s", logs)
	}
}
