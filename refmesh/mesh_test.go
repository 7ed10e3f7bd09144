package refmesh_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/outbox"
	"github.com/linkbridge/linkbridge/refmesh"
	"github.com/linkbridge/linkbridge/senddoc"
)

const (
	sharedKey   = "TestKey"
	spMailbox   = "SPS001OT001"
	gpMailbox   = "A81001OT001"
	spPassword  = "sp-password"
	gpPassword  = "gp-password"
	nhsNumber   = "9434765919"
	birthDate   = "1950-07-02"
	familyName  = "Jones"
	documentID  = "9e0f5d1c-2b4a-4e77-8a31-5d6c7b8a0002"
	messageID   = "3b7c64a4-6f1e-4c52-9d7b-0c1f5e0a0001"
	smallChunks = 4096
)

// The MESH client, Sender and Poller (adapter/mesh) against the reference
// server and GP inbox on loopback, with linkbridge's SQLite store.

// fault lets a test break the MESH server's answers.
type fault struct {
	mu sync.Mutex
	// fn, if set, may answer a request itself (returning true).
	fn func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func (f *fault) set(fn func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	f.mu.Lock()
	f.fn = fn
	f.mu.Unlock()
}

type env struct {
	srv    *refmesh.Server
	url    string
	fault  *fault
	store  *sqlite.DB
	inbox  *refmesh.GPInbox
	poller *mesh.Poller
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	srv, err := refmesh.Open(filepath.Join(dir, "mesh.db"), sharedKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, mb := range [][2]string{{spMailbox, spPassword}, {gpMailbox, gpPassword}} {
		if err := srv.AddMailbox(mb[0], mb[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Register(nhsNumber, birthDate, familyName, gpMailbox); err != nil {
		t.Fatal(err)
	}
	f := &fault{}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		fn := f.fn
		f.mu.Unlock()
		if fn != nil && fn(w, r, h) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "lb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := &env{srv: srv, url: ts.URL, fault: f, store: store}
	gp, err := srv.NewGPInbox(e.client(t, gpMailbox, gpPassword, 0), senddoc.Party{ODS: "A81001"})
	if err != nil {
		t.Fatal(err)
	}
	e.inbox = gp
	e.poller = &mesh.Poller{Client: e.client(t, spMailbox, spPassword, 0), Store: store}
	return e
}

func (e *env) client(t *testing.T, box, pw string, chunk int, opts ...func(*mesh.Config)) *mesh.Client {
	t.Helper()
	cfg := mesh.Config{BaseURL: e.url, Mailbox: box, Password: pw, SharedKey: sharedKey, ChunkSize: chunk,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := mesh.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) sender(t *testing.T, chunk int) *mesh.Sender {
	return &mesh.Sender{Client: e.client(t, spMailbox, spPassword, chunk), Store: e.store, AckPoll: time.Millisecond}
}

func caseRecord() *linkbridge.CaseRecord {
	done := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	return &linkbridge.CaseRecord{
		Referral: &linkbridge.Referral{ID: "ref-1", PersonID: "p-1", Status: "completed", BusinessStatus: linkbridge.BusinessDischarged,
			ServiceODS: "SPS001", Consent: linkbridge.ConsentFull, DischargeReason: "goals-met",
			LinkWorker: linkbridge.LinkWorker{ID: "lw-1", Name: "Sam Link"},
			ReceivedAt: done.AddDate(0, -3, 0), AcceptedAt: done.AddDate(0, -3, 1), CompletedAt: done},
		Person: &linkbridge.Person{ID: "p-1", NHSNumber: nhsNumber, BirthDate: birthDate, GPODS: "A81001"},
	}
}

// message renders an outbox message holding a Send Document message for
// the registered patient (family is the surname in the message).
func message(t *testing.T, id int64, family string) *linkbridge.OutboxMessage {
	t.Helper()
	in := &senddoc.Input{Case: caseRecord(),
		Patient: senddoc.Patient{NHSNumber: nhsNumber, Family: family, Given: "Ada", BirthDate: birthDate},
		Trigger: senddoc.TriggerDischarged, Service: senddoc.Party{ODS: "SPS001"}, Practice: senddoc.Party{ODS: "A81001"},
		MessageID: messageID[:35] + string(rune('0'+id%10)), DocumentID: documentID, Version: 1,
		Now: time.Date(2025, 4, 1, 12, 5, 0, 0, time.UTC)}
	msg, err := senddoc.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	return &linkbridge.OutboxMessage{ID: id, OrderKey: "p-1", ResourceType: linkbridge.SendDocumentType, ResourceID: documentID,
		Version: 1, Body: msg.Body, State: linkbridge.OutboxInflight}
}

// deliver runs the exchange until the sender's answer is final: send, the
// GP inbox reads and acknowledges, the poller records; at most rounds
// times (each round makes progress or the test fails).
func deliver(t *testing.T, e *env, s *mesh.Sender, m *linkbridge.OutboxMessage) error {
	t.Helper()
	ctx := context.Background()
	for range 5 {
		_, err := s.Send(ctx, m)
		var retry *outbox.RetryableError
		if !errors.As(err, &retry) {
			return err
		}
		if _, err := e.inbox.Poll(ctx); err != nil {
			t.Fatalf("GP inbox poll: %v", err)
		}
		if _, err := e.poller.Poll(ctx); err != nil {
			t.Fatalf("sender inbox poll: %v", err)
		}
	}
	t.Fatal("no final answer after 5 rounds")
	return nil
}

func filed(t *testing.T, e *env) []refmesh.FiledDocument {
	t.Helper()
	docs, err := e.inbox.Filed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestSendDocumentDelivered: a chunked Send Document message reaches the
// registered practice by automatic routing, is filed once, and its
// infrastructure and business acknowledgements complete the outbox
// message.
func TestSendDocumentDelivered(t *testing.T) {
	e := newEnv(t)
	m := message(t, 1, familyName)
	s := e.sender(t, smallChunks)
	if err := deliver(t, e, s, m); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	d, err := e.store.DocumentDelivery(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != linkbridge.DeliveryAcked || d.InfAckAt.IsZero() || d.BusAckAt.IsZero() {
		t.Errorf("delivery = %+v, want acked with both acknowledgements", d)
	}
	if d.ChunksTotal < 2 || d.ChunksSent != d.ChunksTotal {
		t.Errorf("chunks %d/%d: the message should have been chunked", d.ChunksSent, d.ChunksTotal)
	}
	docs := filed(t, e)
	if len(docs) != 1 || docs[0].NHSNumber != nhsNumber || !strings.HasPrefix(string(docs[0].PDF), "%PDF-") {
		t.Fatalf("filed %d documents, want the one PDF", len(docs))
	}
	// Both inboxes are empty: every read was acknowledged.
	for _, c := range []*mesh.Client{e.client(t, gpMailbox, gpPassword, 0), e.client(t, spMailbox, spPassword, 0)} {
		ids, err := c.Inbox(context.Background())
		if err != nil || len(ids) != 0 {
			t.Errorf("%s inbox holds %v (%v)", c.Mailbox(), ids, err)
		}
	}
}

// TestSendDocumentXML: with Format xml the message travels as FHIR STU3
// XML (Mex-Content-Type application/fhir+xml); the GP inbox reads it,
// files the same PDF, and answers in XML, which the poller reads.
func TestSendDocumentXML(t *testing.T) {
	e := newEnv(t)
	var contentTypes sync.Map
	e.fault.set(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/outbox") {
			contentTypes.Store(r.Header.Get(mesh.HeaderFrom), r.Header.Get(mesh.HeaderContentType))
		}
		return false
	})
	m := message(t, 1, familyName)
	s := e.sender(t, smallChunks)
	s.Format = senddoc.FormatXML
	if err := deliver(t, e, s, m); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	d, err := e.store.DocumentDelivery(context.Background(), 1)
	if err != nil || d.State != linkbridge.DeliveryAcked || d.BusAckAt.IsZero() {
		t.Fatalf("delivery = %+v, %v; want acked", d, err)
	}
	for box, want := range map[string]string{spMailbox: "application/fhir+xml", gpMailbox: "application/fhir+xml"} {
		if ct, _ := contentTypes.Load(box); ct != want {
			t.Errorf("%s sent Mex-Content-Type %v, want %s", box, ct, want)
		}
	}
	docs := filed(t, e)
	want, _ := senddoc.Validate(m.Body)
	if len(docs) != 1 || string(docs[0].PDF) != string(want.PDF) || docs[0].Title != want.Title {
		t.Fatalf("filed %d documents; want the JSON message's PDF and title", len(docs))
	}
}

// TestStaleTimestamp: a request whose authentication timestamp is outside
// the window is refused 401, and a fresh one is accepted.
func TestStaleTimestamp(t *testing.T) {
	e := newEnv(t)
	stale := e.client(t, spMailbox, spPassword, 0, func(c *mesh.Config) {
		c.Now = func() time.Time { return time.Now().Add(-3 * time.Hour) }
		c.RetryMax = -1
	})
	err := stale.Handshake(context.Background())
	var me *mesh.Error
	if !errors.As(err, &me) || me.Status != http.StatusUnauthorized {
		t.Fatalf("stale handshake: %v, want 401", err)
	}
	wrong := e.client(t, spMailbox, "not-the-password", 0, func(c *mesh.Config) { c.RetryMax = -1 })
	if err := wrong.Handshake(context.Background()); !errors.As(err, &me) || me.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v, want 401", err)
	}
	if err := e.client(t, spMailbox, spPassword, 0).Handshake(context.Background()); err != nil {
		t.Fatalf("fresh handshake: %v", err)
	}
	// The stale client's send is retryable for the outbox (a clock put
	// right, or a password rotated, lets it through later).
	s := &mesh.Sender{Client: stale, Store: e.store}
	_, err = s.Send(context.Background(), message(t, 7, familyName))
	var retry *outbox.RetryableError
	if !errors.As(err, &retry) || retry.Status != http.StatusUnauthorized {
		t.Fatalf("stale send: %v, want retryable 401", err)
	}
}

// TestFaults: 503s, a chunk whose answer is lost after MESH stored it, and
// failing inbox polls end in one filed document.
func TestFaults(t *testing.T) {
	e := newEnv(t)
	var n503, lost, polls atomic.Int32
	e.fault.set(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/outbox") && n503.Add(1) <= 2:
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/3") && lost.Add(1) == 1:
			next.ServeHTTP(httptest.NewRecorder(), r) // stored, answer lost
			http.Error(w, "gateway", http.StatusBadGateway)
			return true
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, spMailbox+"/inbox") && polls.Add(1) <= 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	m := message(t, 2, familyName)
	if err := deliver(t, e, e.sender(t, smallChunks), m); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	if n503.Load() < 3 || lost.Load() < 1 || polls.Load() < 1 {
		t.Fatalf("faults not exercised: 503 %d, lost %d, polls %d", n503.Load(), lost.Load(), polls.Load())
	}
	if docs := filed(t, e); len(docs) != 1 {
		t.Fatalf("filed %d documents, want 1", len(docs))
	}
}

// TestInterruptedChunkedSend: a send cut off between chunks (the process
// dies) resumes from the recorded progress with a new client: one MESH
// message, one filed document.
func TestInterruptedChunkedSend(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	e.fault.set(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/3") {
			cancel() // the process dies before chunk 3 is stored
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	m := message(t, 3, familyName)
	if _, err := e.sender(t, smallChunks).Send(ctx, m); err == nil {
		t.Fatal("interrupted send succeeded")
	}
	d, err := e.store.DocumentDelivery(context.Background(), 3)
	if err != nil || d.ChunksSent != 2 || d.MeshMessageID == "" {
		t.Fatalf("progress after the interruption = %+v, %v; want 2 chunks of a MESH message", d, err)
	}
	e.fault.set(nil)
	if err := deliver(t, e, e.sender(t, smallChunks), m); err != nil {
		t.Fatalf("resumed delivery: %v", err)
	}
	after, _ := e.store.DocumentDelivery(context.Background(), 3)
	if after.MeshMessageID != d.MeshMessageID {
		t.Errorf("resumed into MESH message %s, want %s", after.MeshMessageID, d.MeshMessageID)
	}
	if n, err := e.srv.Delivered(context.Background(), gpMailbox, mesh.WorkflowSendDocument); err != nil || n != 1 {
		t.Errorf("MESH delivered %d messages, want 1 (%v)", n, err)
	}
	if docs := filed(t, e); len(docs) != 1 {
		t.Fatalf("filed %d documents, want 1", len(docs))
	}
}

// TestNegativeAcknowledgement: an invalid message draws a negative ITK3
// acknowledgement that dead-letters the outbox message with the reason
// and the OperationOutcome.
func TestNegativeAcknowledgement(t *testing.T) {
	e := newEnv(t)
	m := message(t, 4, familyName)
	// Break the payload: the primary attachment is no PDF.
	m.Body = []byte(strings.Replace(string(m.Body), `"contentType":"application/pdf"`, `"contentType":"text/plain"`, 1))
	err := deliver(t, e, e.sender(t, 0), m)
	var perm *outbox.PermanentError
	if !errors.As(err, &perm) {
		t.Fatalf("delivery: %v, want a permanent failure", err)
	}
	if !strings.Contains(perm.Error(), senddoc.CodePayloadInvalid) || !strings.Contains(string(perm.Outcome), senddoc.CodePayloadInvalid) {
		t.Errorf("dead letter %v with outcome %s, want ITK3 code 20009", perm, perm.Outcome)
	}
	if docs := filed(t, e); len(docs) != 0 {
		t.Errorf("an invalid message was filed")
	}
}

// TestNonDelivery: a patient automatic routing cannot place draws a MESH
// non-delivery report, which dead-letters the message.
func TestNonDelivery(t *testing.T) {
	e := newEnv(t)
	err := deliver(t, e, e.sender(t, 0), message(t, 5, "Unregistered"))
	var perm *outbox.PermanentError
	if !errors.As(err, &perm) || !strings.Contains(perm.Error(), "non-delivery") {
		t.Fatalf("delivery: %v, want a dead letter naming the non-delivery report", err)
	}
}

// TestBusinessAckOverdue: a message whose business acknowledgement does
// not come in time is dead-lettered (the alert); a requeue waits again.
func TestBusinessAckOverdue(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	s := e.sender(t, 0)
	s.BusinessAckTimeout = time.Hour
	s.Now = func() time.Time { return now }
	m := message(t, 6, familyName)
	var retry *outbox.RetryableError
	if _, err := s.Send(context.Background(), m); !errors.As(err, &retry) {
		t.Fatalf("send: %v", err)
	}
	now = now.Add(2 * time.Hour) // nobody reads the GP inbox
	_, err := s.Send(context.Background(), m)
	var perm *outbox.PermanentError
	if !errors.As(err, &perm) || !strings.Contains(perm.Error(), "no business acknowledgement") {
		t.Fatalf("overdue: %v, want a dead letter", err)
	}
	if _, err := s.Send(context.Background(), m); !errors.As(err, &retry) {
		t.Fatalf("requeued: %v, want waiting again", err)
	}
	if err := deliver(t, e, s, m); err != nil {
		t.Fatalf("late acknowledgement: %v", err)
	}
}
