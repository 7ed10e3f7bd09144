package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/auth"
)

// TestServeReload: a reload (SIGHUP) replaces the client registry: a
// client removed from the file is refused from then on; a file that does
// not load leaves the registry in force.
func TestServeReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	devDir := filepath.Join(dir, "dev")
	keys, err := auth.EnsureDevKeys(devDir)
	if err != nil {
		t.Fatal(err)
	}
	gpTok, err := keys.Mint("dev-gp", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	spTok, err := keys.Mint("dev-sp", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	reloaded := make(chan error, 1)
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	serve := &ServeCommand{Getenv: noEnv, Stdout: io.Discard, Stderr: logs, Ready: ready, Reload: reload, Reloaded: reloaded}
	errc := make(chan error, 1)
	go func() {
		errc <- serve.Run(ctx, []string{"--create-db", "--dev-auth", "--dev-dir", devDir, "--addr", "127.0.0.1:0", "--db", filepath.Join(dir, "lb.db")})
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-errc:
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	status := func(tok string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/fhir/Task?status=requested", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if st := status(gpTok); st != http.StatusOK {
		t.Fatalf("before the reload: %d", st)
	}
	doReload := func() error {
		reload <- struct{}{}
		select {
		case err := <-reloaded:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("no reload")
			return nil
		}
	}
	// Remove dev-gp from the registry.
	raw, err := os.ReadFile(keys.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var kept []any
	for _, cl := range cfg["clients"].([]any) {
		if cl.(map[string]any)["id"] != "dev-gp" {
			kept = append(kept, cl)
		}
	}
	cfg["clients"] = kept
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(keys.ConfigPath(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := doReload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if st := status(gpTok); st != http.StatusUnauthorized {
		t.Errorf("a removed client after the reload: %d, want 401", st)
	}
	if st := status(spTok); st != http.StatusOK {
		t.Errorf("a kept client after the reload: %d, want 200", st)
	}
	// A broken file: the reload fails, the registry stays.
	if err := os.WriteFile(keys.ConfigPath(), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := doReload(); err == nil {
		t.Error("a broken registry reloaded")
	}
	if st := status(spTok); st != http.StatusOK {
		t.Errorf("after a failed reload: %d, want 200 (the previous registry in force)", st)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{`linkbridge_config_reloads_total{result="success"} 1`, `linkbridge_config_reloads_total{result="failure"} 1`} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(logs.String(), "reload failed: the previous client registry stays in force") {
		t.Errorf("no log of the failed reload:\n%s", logs)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestStartGate: while the store opens, /healthz answers and /readyz and
// the API say 503; once open the gateway answers; once stopping, the
// gateway's readiness check fails.
func TestStartGate(t *testing.T) {
	t.Parallel()
	g := &startGate{}
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if st, _ := get("/healthz"); st != http.StatusOK {
		t.Errorf("starting: /healthz = %d", st)
	}
	for _, p := range []string{"/readyz", "/fhir/metadata"} {
		if st, body := get(p); st != http.StatusServiceUnavailable || !strings.Contains(body, "migrations") {
			t.Errorf("starting: %s = %d %q, want 503", p, st, body)
		}
	}
	g.open(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	if st, _ := get("/readyz"); st != http.StatusTeapot {
		t.Errorf("open: /readyz = %d, want the gateway's", st)
	}
	if g.stopping() != nil {
		t.Error("ready before stop")
	}
	g.stop()
	if err := g.stopping(); err == nil || err.Error() != "shutting down" {
		t.Errorf("stopping() = %v", err)
	}
}

// TestHealthcheck: "linkbridge healthcheck" exits 0 against a ready
// gateway (an all-interfaces --addr asked on loopback) and 1 against none.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	}))
	defer srv.Close()
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "--addr", "0.0.0.0:" + port}, noEnv, &out, io.Discard); err != nil || out.String() != "ready\n" {
		t.Errorf("healthcheck of a ready gateway = %v %q", err, out.String())
	}
	srv.Close()
	err := run(context.Background(), []string{"healthcheck"}, func(k string) string {
		return map[string]string{"LINKBRIDGE_ADDR": "127.0.0.1:" + port}[k]
	}, io.Discard, io.Discard)
	if err == nil || exitCode(err, io.Discard) != 1 {
		t.Errorf("healthcheck of a stopped gateway = %v, want exit 1", err)
	}
}
