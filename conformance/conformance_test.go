package conformance_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/refgp"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/conformance"
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
	t.Cleanup(func() { db.Close() })
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.NewServer(db, codec, logger)
	if err != nil {
		t.Fatalf("httpapi.NewServer() = %v", err)
	}
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
	t.Cleanup(func() { gp.Close() })
	srv := httptest.NewServer(gp.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func runKit(t *testing.T, cfg conformance.Config) (*conformance.Report, string) {
	t.Helper()
	var out bytes.Buffer
	cfg.Progress = &out
	cfg.ManualTimeout = 3 * time.Second
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
		{"ClientIDs", refgp.Options{}},
		{"ConditionalOnly", refgp.Options{RefuseClientIDs: true}},
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
