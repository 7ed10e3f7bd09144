package conformance_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/conformance"
	"github.com/linkbridge/linkbridge/refmesh"
	"github.com/linkbridge/linkbridge/senddoc"
)

const (
	meshKey     = "TestKey"
	kitMailbox  = "KIT001OT001"
	kitPassword = "kit-password"
	gpMailbox   = "A81001OT001"
	gpPassword  = "gp-password"
	// A test patient registered with the reference MESH for automatic
	// routing.
	regNHS, regBirth, regSurname = "9434765919", "1950-07-02", "Jones"
	regAddress                   = "GPPROVIDER_9434765919_02071950_Jones"
)

// meshTarget is the reference MESH server and GP inbox on loopback (real
// SQLite file), with hooks to break either.
type meshTarget struct {
	srv   *refmesh.Server
	inbox *refmesh.GPInbox // nil when replaced
	url   string
	// fault, if set, may answer a MESH request itself (true) instead of
	// the server.
	mu    sync.Mutex
	fault func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func (m *meshTarget) setFault(f func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

// startMESH runs the reference MESH server with the kit's and the GP's
// mailboxes and a registered patient; inbox, if set, replaces the
// reference GP inbox (a broken peer) and is run instead.
func startMESH(t *testing.T, setup func(*refmesh.Server), inbox func(ctx context.Context, c *mesh.Client)) *meshTarget {
	t.Helper()
	srv, err := refmesh.Open(filepath.Join(t.TempDir(), "mesh.db"), meshKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, b := range [][2]string{{kitMailbox, kitPassword}, {gpMailbox, gpPassword}} {
		if err := srv.AddMailbox(b[0], b[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Register(regNHS, regBirth, regSurname, gpMailbox); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	mt := &meshTarget{srv: srv}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt.mu.Lock()
		f := mt.fault
		mt.mu.Unlock()
		if f != nil && f(w, r, h) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	mt.url = ts.URL
	gc, err := mesh.New(mesh.Config{BaseURL: ts.URL, Mailbox: gpMailbox, Password: gpPassword, SharedKey: meshKey,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if inbox == nil {
		if mt.inbox, err = srv.NewGPInbox(gc, senddoc.Party{ODS: "A81001"}); err != nil {
			t.Fatal(err)
		}
		inbox = func(ctx context.Context, _ *mesh.Client) { mt.inbox.Run(ctx, 20*time.Millisecond) }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inbox(ctx, gc)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return mt
}

func meshConfig(m *meshTarget, to string, ackTimeout time.Duration) conformance.Config {
	return conformance.Config{Target: m.url, Role: conformance.RoleMeshRecipient,
		MESH: conformance.MESHConfig{Mailbox: kitMailbox, Password: kitPassword, SharedKey: meshKey, To: to, AckTimeout: ackTimeout}}
}

// TestMeshRecipientAgainstReference: every mesh-recipient scenario passes
// against the reference MESH server and GP inbox, addressed by mailbox id
// and by automatic routing; the inbox filed every valid document once
// (the replacement naming the document it replaces) and none invalid, and
// the kit's mailbox is left empty.
func TestMeshRecipientAgainstReference(t *testing.T) {
	for _, tc := range []struct{ name, to string }{{"Mailbox", gpMailbox}, {"AutomaticRouting", regAddress}} {
		t.Run(tc.name, func(t *testing.T) {
			m := startMESH(t, nil, nil)
			rep, out := runKit(t, meshConfig(m, tc.to, time.Minute))
			n := len(conformance.Scenarios(conformance.RoleMeshRecipient))
			if !rep.OK() || rep.Passed != n {
				t.Fatalf("mesh-recipient run: %d passed, %d failed, %d skipped of %d\n%s", rep.Passed, rep.Failed, rep.Skipped, n, out)
			}
			// Delivered by the reference: send-document, chunked, the
			// original and the replacement; nothing refused or invalid.
			delivered, err := m.srv.Delivered(context.Background(), gpMailbox, mesh.WorkflowSendDocument)
			if err != nil || delivered != 5 {
				t.Errorf("the GP mailbox received %d messages (%v), want 3 valid and 2 invalid", delivered, err)
			}
			kitClient, err := mesh.New(mesh.Config{BaseURL: m.url, Mailbox: kitMailbox, Password: kitPassword, SharedKey: meshKey})
			if err != nil {
				t.Fatal(err)
			}
			if ids, err := kitClient.Inbox(context.Background()); err != nil || len(ids) != 0 {
				t.Errorf("the kit left %v in its inbox (%v)", ids, err)
			}
			docs, err := m.inbox.Filed(context.Background())
			if err != nil || len(docs) != 3 {
				t.Fatalf("the GP inbox filed %d documents (%v), want 3", len(docs), err)
			}
			if docs[2].Replaces != docs[0].DocumentID || docs[1].Replaces != "" {
				t.Errorf("filed replaces %q, %q, %q; want the third to replace the first", docs[0].Replaces, docs[1].Replaces, docs[2].Replaces)
			}
			if tc.to == regAddress && docs[0].NHSNumber != regNHS {
				t.Errorf("the document is about NHS number %s, want the registered patient's", docs[0].NHSNumber)
			}
			if ch := result(t, rep, "mesh-chunked"); !strings.Contains(strings.Join(ch.Steps, "\n"), "in 3 chunk(s)") {
				t.Errorf("mesh-chunked did not send three chunks: %q", ch.Steps)
			}
		})
	}
}
