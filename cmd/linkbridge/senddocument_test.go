package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir/gpfhirtest"
	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/bench"
	"github.com/linkbridge/linkbridge/refmesh"
	"github.com/linkbridge/linkbridge/senddoc"
)

// TestWriteBackBothRoutes: with --writeback-route both, a referral's
// journey reaches the GP record through the FHIR relay and, at acceptance
// and discharge, as two Send Document messages through the reference MESH
// server to the reference GP inbox, which files both PDFs and acknowledges
// them; both send-document outbox messages end delivered.
func TestWriteBackBothRoutes(t *testing.T) {
	dir := t.TempDir()
	const key, spBox = testMESHKey, testMESHServiceBox
	m := newTestMESH(t, dir, nil)
	inbox, ms := m.inbox, m.server
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go inbox.Run(ctx, 20*time.Millisecond)

	gp, err := gpfhirtest.New(gpfhirtest.Options{Patients: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gp.Close)

	db := filepath.Join(dir, "lb.db")
	ready := make(chan string, 1)
	sctx, stop := context.WithCancel(withReady(ctx, ready))
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(sctx, []string{"serve", "--dev", "--addr", "127.0.0.1:0", "--db", db, "--create-db", "--service-ods", "Y02662", "--log-level", "warn",
			"--gp-base", gp.URL + "/fhir", "--writeback-route", "both", "--mesh-url", ms.URL, "--mesh-mailbox", spBox,
			"--mesh-password", spBox + "-pw", "--mesh-shared-key", key, "--mesh-chunk-size", "8192", "--mesh-poll", "50ms"}, noEnv, stdout, stderr)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("serve: %v\n%s", err, stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve not ready\n%s", stderr)
	}
	g := &gatewayClient{t: t, base: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
	id, ok := g.postReferral(bench.NewReferralGen())
	if !ok {
		t.Fatal("referral refused")
	}
	now := time.Now().UTC().Truncate(time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for _, step := range journey(id, now) {
		g.change(id, step.method, step.path, step.body, deadline)
	}
	waitDelivered(t, g, gp, []string{id}, 60*time.Second)
	var docs []refmesh.FiledDocument
	for time.Now().Before(deadline) {
		if docs, err = inbox.Filed(ctx); err != nil {
			t.Fatal(err)
		}
		if len(docs) >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(docs) != 2 {
		t.Fatalf("GP inbox filed %d documents, want 2 (accepted, discharged)\n%s", len(docs), stderr)
	}
	if !strings.Contains(docs[0].Title, "accepted") || !strings.Contains(docs[1].Title, "Discharged") {
		t.Errorf("documents %q, %q: want the acceptance then the discharge", docs[0].Title, docs[1].Title)
	}
	// A measure withdrawn as entered in error after discharge changes what
	// the discharge document said: a replacement is sent, naming the
	// discharge document it replaces (Composition.relatesTo).
	var cv struct {
		Measures []struct {
			ID string `json:"id"`
		} `json:"measures"`
	}
	g.do(http.MethodGet, "/sp/v1/referrals/"+id, "", nil, &cv)
	if len(cv.Measures) != 1 {
		t.Fatalf("case view measures %+v", cv.Measures)
	}
	g.change(id, http.MethodPost, "/sp/v1/referrals/"+id+"/measures/"+cv.Measures[0].ID+"/withdraw", map[string]any{"reason": "recorded for the wrong person"}, deadline)
	for time.Now().Before(deadline) {
		if docs, err = inbox.Filed(ctx); err != nil {
			t.Fatal(err)
		}
		if len(docs) >= 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(docs) != 3 || !strings.Contains(docs[2].Title, "Discharged") || docs[2].Replaces != docs[1].DocumentID {
		t.Fatalf("after the correction the inbox filed %+v, want a third document replacing %s", titles(docs), docs[1].DocumentID)
	}
	// The relay completes the send-document messages once the business
	// acknowledgements are read back.
	var delivered int
	for time.Now().Before(deadline) {
		delivered = countDelivered(t, db)
		if delivered == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if delivered != 3 {
		t.Fatalf("%d send-document messages delivered, want 3\n%s", delivered, stderr)
	}
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// countDelivered counts delivered send-document outbox messages with both
// acknowledgements recorded (read beside the running server).
func countDelivered(t *testing.T, path string) int {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	msgs, err := db.ListOutbox(context.Background(), linkbridge.OutboxFilter{States: []linkbridge.OutboxState{linkbridge.OutboxDelivered}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.ResourceType != linkbridge.SendDocumentType {
			continue
		}
		d, err := db.DocumentDelivery(context.Background(), m.ID)
		if err == nil && d.State == linkbridge.DeliveryAcked && !d.InfAckAt.IsZero() && !d.BusAckAt.IsZero() {
			n++
		}
	}
	return n
}

// titles lists filed documents for a failure message.
func titles(docs []refmesh.FiledDocument) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Title+" (document "+d.DocumentID+", replaces "+d.Replaces+")")
	}
	return out
}

// The reference MESH of the send-document process tests: the service's
// mailbox and a practice's, to which every GPPROVIDER_ address goes (the
// generated patients are registered nowhere), with its GP document inbox.
const (
	testMESHKey         = "TestKey"
	testMESHServiceBox  = "Y02662OT001"
	testMESHPracticeBox = "GPPRACTICEOT1"
)

// testMESH is the reference MESH on loopback with the practice's inbox
// (not yet reading: the test runs it).
type testMESH struct {
	srv    *refmesh.Server
	server *httptest.Server
	inbox  *refmesh.GPInbox
}

// newTestMESH opens the reference MESH in dir; wrap, if set, wraps its
// handler (a test's faults).
func newTestMESH(t *testing.T, dir string, wrap func(http.Handler) http.Handler) *testMESH {
	t.Helper()
	srv, err := refmesh.Open(filepath.Join(dir, "mesh.db"), testMESHKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.CatchAll = testMESHPracticeBox
	for _, b := range []string{testMESHServiceBox, testMESHPracticeBox} {
		if err := srv.AddMailbox(b, b+"-pw"); err != nil {
			t.Fatal(err)
		}
	}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ms := httptest.NewServer(h)
	t.Cleanup(ms.Close)
	gc, err := mesh.New(mesh.Config{BaseURL: ms.URL, Mailbox: testMESHPracticeBox, Password: testMESHPracticeBox + "-pw", SharedKey: testMESHKey})
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := srv.NewGPInbox(gc, senddoc.Party{ODS: "GPPRACTICE"})
	if err != nil {
		t.Fatal(err)
	}
	return &testMESH{srv: srv, server: ms, inbox: inbox}
}
