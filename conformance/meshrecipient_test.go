package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
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
	for _, tc := range []struct {
		name, to string
		format   senddoc.Format
	}{{"Mailbox", gpMailbox, ""}, {"AutomaticRouting", regAddress, ""}, {"XML", gpMailbox, senddoc.FormatXML}} {
		t.Run(tc.name, func(t *testing.T) {
			m := startMESH(t, nil, nil)
			cfg := meshConfig(m, tc.to, time.Minute)
			cfg.MESH.Format = tc.format
			rep, out := runKit(t, cfg)
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
			if ch := result(t, rep, "mesh-chunked"); !strings.Contains(strings.Join(ch.Steps, "\n"), tc.format.ContentType()+" in 3 chunk(s)") {
				t.Errorf("mesh-chunked did not send three chunks of %s: %q", tc.format.ContentType(), ch.Steps)
			}
		})
	}
}

// laxInbox is a broken GP document inbox: it answers every Send Document
// message without the checks a GP inbox must make. acceptAll acknowledges
// everything positively (infrastructure and business); otherwise it
// validates (senddoc.Validate) and answers an invalid message with the
// negative response, then a positive business acknowledgement anyway.
// workflow is the workflow id of its answers.
type laxInbox struct {
	acceptAll bool
	workflow  string
}

func (l laxInbox) run(ctx context.Context, c *mesh.Client) {
	for ctx.Err() == nil {
		ids, _ := c.Inbox(ctx)
		for _, id := range ids {
			in, err := c.Download(ctx, id)
			if err != nil {
				continue
			}
			if !in.Report() && in.Header.Get(mesh.HeaderWorkflowID) == mesh.WorkflowSendDocument {
				msgID, _ := senddoc.Header(in.Body)
				var answers []senddoc.Response
				_, err := senddoc.Validate(in.Body)
				var inv *senddoc.Invalid
				switch {
				case l.acceptAll || err == nil:
					answers = []senddoc.Response{{ForMessageID: msgID, OK: true, Code: senddoc.CodeSuccess},
						{ForMessageID: msgID, Business: true, OK: true, Code: senddoc.CodeSuccess}}
				case errors.As(err, &inv):
					answers = []senddoc.Response{{ForMessageID: msgID, Code: inv.Code, Diagnostics: inv.Diagnostics},
						{ForMessageID: msgID, Business: true, OK: true, Code: senddoc.CodeSuccess}}
				}
				for _, r := range answers {
					body, err := senddoc.BuildResponse(r, uuid.NewString(), senddoc.Party{ODS: "A81001"}, senddoc.Party{ODS: "Y02662"}, time.Now())
					if err != nil {
						panic(err)
					}
					_, _ = c.Send(ctx, mesh.Outgoing{To: in.Header.Get(mesh.HeaderFrom), WorkflowID: l.workflow, Body: body}, mesh.Progress{},
						func(mesh.Progress) error { return nil })
				}
			}
			_ = c.Acknowledge(ctx, id)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// resign replaces a request's MESH authentication with a valid token of
// the kit's mailbox (a MESH server that does not check what it was given).
func resign(r *http.Request) {
	r.Header.Set("Authorization", mesh.AuthToken(kitMailbox, kitPassword, meshKey, uuid.NewString(), 0, time.Now()))
}

// readBody reads a request's body and puts it back.
func readBody(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	return b
}

func fakeSent(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"message_id": strings.ToUpper(strings.ReplaceAll(uuid.NewString(), "-", ""))})
}

// TestMeshRecipientDetectsFaults: each broken MESH server or GP inbox
// makes the scenario that checks the broken behaviour fail, with the
// reason and an exchange.
func TestMeshRecipientDetectsFaults(t *testing.T) {
	kitBox := "/messageexchange/" + kitMailbox
	gpBox := "/messageexchange/" + gpMailbox
	for _, tc := range []struct {
		name  string
		setup func(*refmesh.Server)
		fault func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
		inbox func(ctx context.Context, c *mesh.Client)
		run   string
		// scenarios lists the scenarios one of which must fail with a
		// reason holding every word of reason.
		scenarios []string
		reason    []string
	}{
		{name: "AcceptsStaleTimestamp", setup: func(s *refmesh.Server) { s.MaxSkew = 48 * time.Hour },
			run: "^mesh-authentication$", scenarios: []string{"mesh-authentication"}, reason: []string{"24 hours old", "got 200"}},
		{name: "IgnoresPassword",
			fault: func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				// Checks the timestamp, not the HMAC: any fresh token passes.
				if a, err := mesh.ParseAuth(r.Header.Get("Authorization")); err == nil && strings.HasPrefix(r.URL.Path, kitBox) {
					if ts, err := time.Parse(mesh.TimestampLayout, a.Timestamp); err == nil && time.Since(ts) < time.Hour {
						resign(r)
					}
				}
				return false
			},
			run: "^mesh-authentication$", scenarios: []string{"mesh-authentication"}, reason: []string{"wrong password", "got 200"}},
		{name: "DeliversRefusedMessages",
			fault: func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				// Answers 401 to a bad token but delivers the message.
				if r.Method == http.MethodPost && r.URL.Path == kitBox+"/outbox" {
					a, _ := mesh.ParseAuth(r.Header.Get("Authorization"))
					if a.Verify(kitPassword, meshKey, time.Now(), 2*time.Hour) != nil {
						resign(r)
						next.ServeHTTP(httptest.NewRecorder(), r)
						http.Error(w, "authentication failed", http.StatusUnauthorized)
						return true
					}
				}
				return false
			},
			run: "^mesh-authentication$", scenarios: []string{"mesh-authentication"}, reason: []string{"refused, was delivered"}},
		{name: "NeverSendsBusinessAcks",
			fault: func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				// The GP side's business acknowledgements are lost.
				if r.Method == http.MethodPost && r.URL.Path == gpBox+"/outbox" && bytes.Contains(readBody(r), []byte(senddoc.MessageDefinitionBusAck)) {
					fakeSent(w)
					return true
				}
				return false
			},
			run: "^mesh-send-document$", scenarios: []string{"mesh-send-document"}, reason: []string{"no positive business", "received for it: positive infrastructure"}},
		{name: "AcceptsInvalidPayloads", inbox: laxInbox{acceptAll: true, workflow: mesh.WorkflowSendDocumentAck}.run,
			run: "^mesh-invalid-payload$", scenarios: []string{"mesh-invalid-payload"}, reason: []string{"positive ITK3", "whose payload is invalid"}},
		{name: "BusinessAckAfterNegative", inbox: laxInbox{workflow: mesh.WorkflowSendDocumentAck}.run,
			run: "^mesh-(invalid-payload|no-stray-acks)$", scenarios: []string{"mesh-invalid-payload", "mesh-no-stray-acks"}, reason: []string{"business", "invalid"}},
		{name: "AcksOnTheDocumentWorkflow", inbox: laxInbox{workflow: mesh.WorkflowSendDocument}.run,
			run: "^mesh-send-document$", scenarios: []string{"mesh-send-document"}, reason: []string{"workflow id", mesh.WorkflowSendDocumentAck}},
		{name: "KeepsAcknowledgedMessages",
			fault: func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, kitBox+"/inbox/") {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{}`))
					return true
				}
				return false
			},
			run: "^mesh-send-document$", scenarios: []string{"mesh-send-document"}, reason: []string{"still in the kit's inbox"}},
		{name: "LosesChunks",
			fault: func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, kitBox+"/outbox/") {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusAccepted)
					_, _ = w.Write([]byte(`{}`))
					return true
				}
				return false
			},
			run: "^mesh-chunked$", scenarios: []string{"mesh-chunked"}, reason: []string{"no positive business", "received for it: nothing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := startMESH(t, tc.setup, tc.inbox)
			m.setFault(tc.fault)
			cfg := meshConfig(m, gpMailbox, 2*time.Second)
			cfg.Run = tc.run
			rep, out := runKit(t, cfg)
			if rep.OK() {
				t.Fatalf("the kit passed a broken target:\n%s", out)
			}
			var res *conformance.Result
			for _, id := range tc.scenarios {
				if r := result(t, rep, id); r.Status == conformance.Fail {
					res = &r
					break
				}
			}
			if res == nil {
				t.Fatalf("none of %v failed:\n%s", tc.scenarios, out)
			}
			for _, w := range tc.reason {
				if !strings.Contains(res.Reason, w) {
					t.Errorf("%s failed with %q, want a reason mentioning %q\n%s", res.ID, res.Reason, w, out)
				}
			}
			if res.Failed == nil || !strings.Contains(out, "reason: ") || !strings.Contains(out, "> "+res.Failed.Method) {
				t.Errorf("the failure does not show its exchange:\n%s", out)
			}
			if strings.Contains(out, kitPassword) {
				t.Errorf("the output shows the kit's password")
			}
		})
	}
}
