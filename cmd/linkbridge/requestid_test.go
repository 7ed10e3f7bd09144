package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// TestRequestIDs: a request without X-Request-Id gets one, returned as
// X-Request-Id and carried by its log line and its audit record; a
// caller's own id is kept.
func TestRequestIDs(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "lb.db")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
	defer cancel()
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"serve", "--create-db", "--dev", "--addr", "127.0.0.1:0", "--db", db, "--log-format", "json"}, noEnv, io.Discard, logs)
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}
	get := func(path, id string) string {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.Header.Get("X-Request-Id")
	}
	made := get("/fhir/Task/some-task", "")
	if len(made) != 36 {
		t.Fatalf("X-Request-Id = %q, want a new UUID", made)
	}
	made2 := get("/nowhere", "")
	if made2 == "" || made2 == made {
		t.Fatalf("X-Request-Id of an unmatched route = %q (first %q), want a new one", made2, made)
	}
	if got := get("/fhir/Task/some-task", "caller-id-1"); got != "caller-id-1" {
		t.Fatalf("X-Request-Id = %q, want the caller's", got)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The log lines of the requests carry their ids.
	want := map[string]bool{made: false, made2: false, "caller-id-1": false}
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" {
			if _, ok := want[rec.RequestID]; ok {
				want[rec.RequestID] = true
			}
		}
	}
	for id, seen := range want {
		if !seen {
			t.Errorf("no request log line with request_id %q:\n%s", id, logs)
		}
	}
	// So do their audit records.
	store, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	recs, _, err := store.SearchAudit(context.Background(), linkbridge.AuditFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.RequestID] = true
	}
	if !ids[made] || !ids["caller-id-1"] {
		t.Errorf("audit records' request ids = %v, want %q and caller-id-1", ids, made)
	}
}
