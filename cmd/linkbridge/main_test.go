package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// TestServe runs the real command line ("linkbridge serve" on port 0 over a
// new SQLite file), sends a referral, then cancels the context (as SIGTERM
// does) and checks the graceful shutdown and the database file's mode.
func TestServe(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(dir, "linkbridge.db")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
	t.Cleanup(cancel)

	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"serve", "--create-db", "--dev", "--addr", "127.0.0.1:0", "--db", db, "--log-level", "info", "--shutdown-timeout", "5s"}, noEnv, stdout, stderr)
	}()

	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("serve returned before it was ready: %v\nstderr: %s", err, stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve not ready after 20s\nstderr: %s", stderr)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("ready address = %q, want 127.0.0.1:<port>", addr)
	}
	base := "http://" + addr

	client := &http.Client{Timeout: 10 * time.Second}
	for _, p := range []string{"/healthz", "/readyz", "/fhir/metadata"} {
		resp, err := client.Get(base + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, resp.StatusCode)
		}
	}

	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "fhir", "r4", "bundle-referral-transaction.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(base+"/fhir", "application/fhir+json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /fhir: %v", err)
	}
	rb, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(rb), `"transaction-response"`) || strings.Count(string(rb), `"201 Created"`) != 3 {
		t.Fatalf("POST /fhir = %d, want 200 transaction-response with three 201 entries; body: %s", resp.StatusCode, rb)
	}
	resp, err = client.Get(base + "/fhir/Task?status=requested")
	if err != nil {
		t.Fatalf("GET Task: %v", err)
	}
	rb, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(rb), `"total":1`) {
		t.Errorf("Task?status=requested: want total 1; body: %s", rb)
	}

	// Graceful shutdown.
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("serve returned %v after cancel, want nil\nstderr: %s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop within 20s of cancel\nstderr: %s", stderr)
	}
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Errorf("server still answers after shutdown")
	}

	// The database holds patient data: file 0600, directory 0700.
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatalf("stat db: %v", err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("db mode = %o, want 600", got)
	}
	for _, side := range []string{db + "-wal", db + "-shm"} {
		if fi, err := os.Stat(side); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(side), fi.Mode().Perm())
		}
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("db directory mode = %v (%v), want 700", di.Mode().Perm(), err)
	}

	// Logs carry no patient identifiers.
	logs := stderr.String()
	if !strings.Contains(logs, "linkbridge serving") || !strings.Contains(logs, "stopped") {
		t.Errorf("logs lack the serving/stopped lines:\n%s", logs)
	}
	for _, pii := range []string{"9434765919", "XXTESTPATIENT"} {
		if strings.Contains(logs, pii) {
			t.Errorf("logs contain %q:\n%s", pii, logs)
		}
	}
}

func TestServeReopensDatabase(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "linkbridge.db")
	for i := 0; i < 2; i++ {
		ready := make(chan string, 1)
		ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
		errc := make(chan error, 1)
		go func() {
			errc <- run(ctx, []string{"serve", "--create-db", "--dev", "--addr", "127.0.0.1:0", "--db", db}, noEnv, io.Discard, io.Discard)
		}()
		select {
		case <-ready:
		case err := <-errc:
			cancel()
			t.Fatalf("start %d: serve returned %v", i+1, err)
		case <-time.After(20 * time.Second):
			cancel()
			t.Fatalf("start %d: not ready", i+1)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("start %d: shutdown returned %v", i+1, err)
		}
	}
}

func TestRunCommandLine(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; "" for nil
		isHelp  bool
	}{
		{"ErrNoCommand", nil, "no command given", false},
		{"Help", []string{"help"}, "", false},
		{"ErrUnknownCommand", []string{"frobnicate"}, "unknown command", false},
		{"ErrPostgresUnreachable", []string{"serve", "--create-db", "--dev", "--db", "postgres://lb:secret@127.0.0.1:1/x?connect_timeout=2", "--addr", "127.0.0.1:0"}, "postgres: open", false},
		{"ErrMaxBody", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "a.db"), "--max-body", "0"}, "max-body", false},
		{"ErrMaxBundleEntries", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "a.db"), "--max-bundle-entries", "0"}, "max-bundle-entries", false},
		{"ErrRequestTimeoutLong", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "a.db"), "--request-timeout", "31s"}, "request-timeout", false},
		{"ErrMaxInFlight", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "a.db"), "--max-in-flight-per-client", "0"}, "max-in-flight-per-client", false},
		{"ErrMaxConnections", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "a.db"), "--max-connections", "-1"}, "max-connections", false},
		{"ErrServiceODS", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "b.db"), "--service-ods", "not-an-ods!"}, "service-ods", false},
		{"ErrLogLevel", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "c.db"), "--log-level", "chatty"}, "log-level", false},
		{"ErrLogFormat", []string{"serve", "--create-db", "--db", filepath.Join(tmp, "d.db"), "--log-format", "xml"}, "log-format", false},
		{"ErrBadAddr", []string{"serve", "--create-db", "--dev", "--db", filepath.Join(tmp, "e.db"), "--addr", "256.0.0.1:99999"}, "listen", false},
		{"ErrUnknownFlag", []string{"serve", "--create-db", "--bogus"}, "bogus", false},
		{"ServeHelp", []string{"serve", "--create-db", "-h"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, tt.args, noEnv, &out, &errOut)
			switch {
			case tt.isHelp:
				if !errors.Is(err, flag.ErrHelp) {
					t.Errorf("run(%q) = %v, want flag.ErrHelp", tt.args, err)
				}
			case tt.wantErr == "":
				if err != nil {
					t.Errorf("run(%q) = %v, want nil", tt.args, err)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("run(%q) = %v, want an error mentioning %q (stderr: %s)", tt.args, err, tt.wantErr, errOut.String())
				}
			}
		})
	}
}

func TestServeConfigFromEnvironment(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "env.db")
	env := map[string]string{"LINKBRIDGE_DEV": "true", "LINKBRIDGE_CREATE_DB": "true", "LINKBRIDGE_ADDR": "127.0.0.1:0", "LINKBRIDGE_DB": db, "LINKBRIDGE_SERVICE_ODS": "Y02662", "LINKBRIDGE_LOG_FORMAT": "json"}
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
	defer cancel()
	stderr := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, io.Discard, stderr)
	}()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("serve returned %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("LINKBRIDGE_DB not used: %v", err)
	}
	if !strings.Contains(stderr.String(), `"msg":"linkbridge serving"`) {
		t.Errorf("LINKBRIDGE_LOG_FORMAT=json not used: %s", stderr)
	}
}
