package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/resthook"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/conformance"
	"github.com/linkbridge/linkbridge/outbox"
	"github.com/linkbridge/linkbridge/refgp"
)

// startLinkbridge runs the real gateway (SQLite temp file) on loopback.
func startLinkbridge(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkbridge.db"), logger)
	if err != nil {
		t.Fatalf("sqlite.Open() = %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.NewServer(db, codec, logger)
	if err != nil {
		t.Fatalf("httpapi.NewServer() = %v", err)
	}
	// Subscriptions, as serve --dev wires them: loopback endpoints, the
	// rest-hook relay and heartbeats.
	policy := resthook.Policy{DevLoopback: true}
	sender, err := resthook.New(resthook.Config{Store: db, Codec: codec, Policy: policy, Logger: logger, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hooks := &outbox.Relay{Store: db, Sender: sender, Channel: linkbridge.ChannelRestHook, Logger: logger, Worker: "kit-test",
		PollInterval: 20 * time.Millisecond}
	beats := &resthook.Heartbeats{Store: db, Interval: 100 * time.Millisecond, Notify: hooks.Notify}
	api.SubscriptionEndpoints, api.OnSubscription, api.OnWriteBack = policy, hooks.Notify, hooks.Notify
	if err := hooks.Start(ctx); err != nil {
		t.Fatal(err)
	}
	beats.Start(ctx)
	t.Cleanup(func() { beats.Stop(); hooks.Stop() })
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// startRefGP runs the reference GP endpoint on loopback.
func startRefGP(t *testing.T, opts refgp.Options) string {
	t.Helper()
	gp, err := refgp.Open(context.Background(), filepath.Join(t.TempDir(), "gp.db"), opts)
	if err != nil {
		t.Fatalf("refgp.Open() = %v", err)
	}
	t.Cleanup(func() {
		if err := gp.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	srv := httptest.NewServer(gp.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func runKit(t *testing.T, cfg conformance.Config) (*conformance.Report, string) {
	t.Helper()
	var out bytes.Buffer
	cfg.Progress = &out
	if cfg.ManualTimeout == 0 {
		cfg.ManualTimeout = 3 * time.Second
	}
	cfg.PollInterval = 20 * time.Millisecond
	rep, err := conformance.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	return rep, out.String()
}

func TestReceiverAgainstLinkbridge(t *testing.T) {
	base := startLinkbridge(t)
	rep, out := runKit(t, conformance.Config{Target: base + "/fhir", Role: conformance.RoleReceiver})
	if !rep.OK() || rep.Passed != len(conformance.Scenarios(conformance.RoleReceiver)) {
		t.Fatalf("receiver run: %d passed, %d failed, %d skipped of %d\n%s", rep.Passed, rep.Failed, rep.Skipped,
			len(conformance.Scenarios(conformance.RoleReceiver)), out)
	}
	if !strings.Contains(rep.LinkWork, "/sp/v1") {
		t.Errorf("link worker steps = %q, want the /sp/v1 API", rep.LinkWork)
	}
}

func TestGPEndpointAgainstReferenceGP(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts refgp.Options
	}{
		// Lenient: takes client ids (updateCreate), accepts any reference.
		{"ClientIDs", refgp.Options{AllowClientIDs: true}},
		// Strict, as production servers: its own ids, conditional update
		// only, references enforced, delete.
		{"Strict", refgp.Options{}},
		// Strict without delete.
		{"StrictNoDelete", refgp.Options{NoDelete: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := startRefGP(t, tc.opts)
			rep, out := runKit(t, conformance.Config{Target: base + "/fhir", Role: conformance.RoleGPEndpoint})
			if !rep.OK() || rep.Skipped > 0 {
				t.Fatalf("gp-endpoint run: %d passed, %d failed, %d skipped\n%s", rep.Passed, rep.Failed, rep.Skipped, out)
			}
		})
	}
}

func TestGPEndpointBearerToken(t *testing.T) {
	base := startRefGP(t, refgp.Options{Token: "s3cret"})
	rep, _ := runKit(t, conformance.Config{Target: base + "/fhir", Role: conformance.RoleGPEndpoint, Run: "^gp-capability"})
	if rep.OK() {
		t.Fatalf("without the token the run passed; want a 401 failure")
	}
	if !strings.Contains(rep.Results[0].Reason, "401") || rep.Results[0].Failed == nil || rep.Results[0].Failed.Status != http.StatusUnauthorized {
		t.Errorf("failure = %q (exchange %+v), want the 401 reported", rep.Results[0].Reason, rep.Results[0].Failed)
	}
	rep, out := runKit(t, conformance.Config{Target: base + "/fhir", Role: conformance.RoleGPEndpoint,
		Header: http.Header{"Authorization": {"Bearer s3cret"}}})
	if !rep.OK() {
		t.Fatalf("with the token: %d failed\n%s", rep.Failed, out)
	}
	if h := rep.Results[0]; strings.Contains(out, "s3cret") {
		t.Errorf("the token leaked into the output (%s)", h.ID)
	}
}

// personAt plays the person at a foreign system: when the kit prompts for a
// step, it does it (through /sp/v1, which the kit was told not to use).
type personAt struct {
	base string
	mu   sync.Mutex
	seen bytes.Buffer
}

var promptTask = regexp.MustCompile(`ACCEPT the referral \S+ \(NHS number \d+, Task ([^)]+)\)`)

func (p *personAt) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen.Write(b)
	if m := promptTask.FindSubmatch(b); m != nil {
		go func(taskID string) {
			time.Sleep(100 * time.Millisecond) // the kit is already waiting
			resp, err := http.Get(p.base + "/fhir/Task/" + taskID)
			if err != nil {
				return
			}
			var task struct {
				Focus struct {
					Reference string `json:"reference"`
				} `json:"focus"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&task)
			_ = resp.Body.Close()
			sr := strings.TrimPrefix(task.Focus.Reference, "ServiceRequest/")
			r, err := http.Post(p.base+"/sp/v1/referrals/"+sr+"/actions", "application/json",
				strings.NewReader(`{"action":"accept","linkWorker":{"id":"lw-1","name":"A Person"}}`))
			if err == nil {
				_ = r.Body.Close()
			}
		}(string(m[1]))
	}
	return len(b), nil
}

func TestManualSteps(t *testing.T) {
	base := startLinkbridge(t)
	t.Run("PersonActs", func(t *testing.T) {
		person := &personAt{base: base}
		rep, out := runKit(t, conformance.Config{Target: base + "/fhir", Role: conformance.RoleReceiver, Manual: true, Prompt: person, Run: "^accept$"})
		if !rep.OK() || rep.Passed != 1 {
			t.Fatalf("manual accept: %d passed %d failed\n%s", rep.Passed, rep.Failed, out)
		}
		if !strings.Contains(rep.LinkWork, "person") || !strings.Contains(person.seen.String(), "Waiting up to") {
			t.Errorf("no prompt shown (%q):\n%s", rep.LinkWork, person.seen.String())
		}
	})
	t.Run("ErrNobodyActs", func(t *testing.T) {
		var prompt bytes.Buffer
		rep, _ := runKit(t, conformance.Config{Target: base + "/fhir", Role: conformance.RoleReceiver, Manual: true, Prompt: &prompt, Run: "^reject$",
			ManualTimeout: 300 * time.Millisecond})
		if rep.OK() || !strings.Contains(rep.Results[0].Reason, "timed out") || !strings.Contains(prompt.String(), "DECLINE") {
			t.Fatalf("reason %q, prompt %q: want a timeout after a DECLINE prompt", rep.Results[0].Reason, prompt.String())
		}
	})
}
