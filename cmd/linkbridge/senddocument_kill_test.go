package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/bench"
	"github.com/linkbridge/linkbridge/refmesh"
)

// killPoint is where TestSendDocumentSurvivesKill kills the gateway: at
// the nth upload request of a kind (the first chunk creates the MESH
// message; later chunks go to /outbox/{id}/{n}), either before MESH
// processes it or after MESH stored it but before the answer reaches the
// gateway (the window in which MESH knows more than the gateway's store).
type killPoint struct {
	name  string
	first bool // the message's first chunk (POST /outbox)
	chunk string
	after bool
}

// TestSendDocumentSurvivesKill SIGKILLs the real gateway process in the
// middle of chunked Send Document uploads to the reference MESH, at each
// point of the upload, restarting it on the same database each time.
// Every document of every referral's journey (acceptance and discharge)
// is filed by the GP inbox exactly once, MESH delivered exactly one whole
// message per document (a half-uploaded message is never delivered), and
// every outbox message ends delivered with both acknowledgements read.
func TestSendDocumentSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test skipped in -short mode")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const key, spBox, gpBox = testMESHKey, testMESHServiceBox, testMESHPracticeBox

	points := []killPoint{
		{name: "after the first chunk was stored", first: true, after: true},
		{name: "before chunk 2", chunk: "2"},
		{name: "after chunk 3 was stored", chunk: "3", after: true},
		{name: "before the first chunk", first: true},
	}
	var (
		mu     sync.Mutex
		cmd    *exec.Cmd
		next   int
		killed = make(chan string, len(points))
	)
	kill := func(p killPoint) {
		if err := cmd.Process.Kill(); err != nil {
			t.Errorf("kill: %v", err)
		}
		killed <- p.name
	}
	m := newTestMESH(t, dir, func(handler http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			var p *killPoint
			if next < len(points) && r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/outbox") && strings.HasSuffix(r.URL.Path, "/outbox") == points[next].first {
				if pt := points[next]; pt.first || strings.HasSuffix(r.URL.Path, "/"+pt.chunk) {
					p = &pt
					next++
				}
			}
			if p == nil {
				mu.Unlock()
				handler.ServeHTTP(w, r)
				return
			}
			defer mu.Unlock()
			if !p.after {
				kill(*p) // MESH never sees the request
				http.Error(w, "the sender is gone", http.StatusServiceUnavailable)
				return
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, r) // MESH stores it
			if rec.Code/100 != 2 {
				t.Errorf("%s: MESH answered %d: %s", p.name, rec.Code, rec.Body)
			}
			kill(*p) // and the answer is lost with the process
			http.Error(w, "the sender is gone", http.StatusServiceUnavailable)
		})
	})
	srv, inbox, ms := m.srv, m.inbox, m.server
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go inbox.Run(ctx, 20*time.Millisecond)

	db := filepath.Join(dir, "lb.db")
	addr := freeAddr(t)
	base := "http://" + addr
	args := []string{"--addr", addr, "--db", db, "--service-ods", "Y02662", "--log-level", "warn", "--rescue-after", "2s",
		"--writeback-route", "send-document", "--mesh-url", ms.URL, "--mesh-mailbox", spBox, "--mesh-password", spBox + "-pw",
		"--mesh-shared-key", key, "--mesh-chunk-size", "1024", "--mesh-poll", "50ms"}
	logs := &syncBuffer{}
	// start starts the gateway; a restart is not waited for, since the
	// next kill point may come before it is ready (the journeys' changes
	// are retried until it answers).
	start := func() {
		mu.Lock()
		cmd = startProcess(t, bin, args, logs)
		mu.Unlock()
	}
	start()
	if !waitReady(base, 20*time.Second) {
		t.Fatalf("gateway not ready\n%s", logs)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = cmd.Process.Kill() // it may have exited already
		_ = cmd.Wait()
	})

	g := &gatewayClient{t: t, base: base, client: &http.Client{Timeout: 5 * time.Second}}
	gen := bench.NewReferralGen()
	const n = 3
	var ids []string
	for len(ids) < n {
		if id, ok := g.postReferral(gen); ok {
			ids = append(ids, id)
		}
	}
	// The journeys go on while the gateway is killed and restarted: a
	// change refused while it is down is sent again (gatewayClient.change).
	deadline := time.Now().Add(120 * time.Second)
	journeys := make(chan struct{})
	go func() {
		defer close(journeys)
		now := time.Now().UTC().Truncate(time.Second)
		for _, id := range ids {
			for _, step := range journey(id, now) {
				g.change(id, step.method, step.path, step.body, deadline)
			}
		}
	}()
	for kills := 0; kills < len(points); kills++ {
		select {
		case name := <-killed:
			mu.Lock()
			_ = cmd.Wait() // "signal: killed"
			mu.Unlock()
			t.Logf("killed %s", name)
			start()
		case <-time.After(time.Until(deadline)):
			t.Fatalf("only %d of %d kill points reached\n%s", kills, len(points), logs)
		}
	}
	<-journeys

	want := 2 * n // the acceptance and the discharge of each referral
	var (
		docs []refmesh.FiledDocument
		err  error
	)
	delivered := 0
	for time.Now().Before(deadline) {
		if docs, err = inbox.Filed(ctx); err != nil {
			t.Fatal(err)
		}
		if delivered = countDelivered(t, db); len(docs) >= want && delivered >= want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(docs) != want || delivered != want {
		t.Fatalf("GP inbox filed %d documents and the gateway recorded %d delivered, want %d each\n%s", len(docs), delivered, want, logs)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		if seen[d.DocumentID] {
			t.Errorf("document %s filed twice", d.DocumentID)
		}
		seen[d.DocumentID] = true
	}
	if got, err := srv.Delivered(ctx, gpBox, mesh.WorkflowSendDocument); err != nil || got != want {
		t.Errorf("MESH delivered %d whole Send Document messages to the practice, want %d (%v)", got, want, err)
	}
}
