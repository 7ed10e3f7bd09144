package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/gpfhir/gpfhirtest"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
	"github.com/linkbridge/linkbridge/bench"
)

// balancer is the load balancer in front of the replicas, as an
// http.RoundTripper: requests go to the replicas in turn, and a request that
// cannot reach its replica (connection refused: the process is dead) goes to
// the next one. A request whose replica dies while answering fails, as it
// would behind a real load balancer; the client decides what to do.
type balancer struct {
	backends []string // host:port
	next     atomic.Uint64
	tr       *http.Transport
}

// RoundTrip sends req to a live replica.
func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	var err error
	start := b.next.Add(1)
	for i := range b.backends {
		r := req.Clone(req.Context())
		r.URL.Host = b.backends[(int(start)+i)%len(b.backends)]
		if req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		var resp *http.Response
		resp, err = b.tr.RoundTrip(r)
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || op.Op != "dial" {
			return resp, err
		}
	}
	return nil, err
}

// replica is one "linkbridge serve" process of the test.
type replica struct {
	t    *testing.T
	bin  string
	args []string
	addr string
	logs *syncBuffer
	cmd  *exec.Cmd
}

// start starts the process and waits until it is ready.
func (r *replica) start() {
	r.t.Helper()
	r.cmd = startProcess(r.t, r.bin, r.args, r.logs)
	if !waitReady("http://"+r.addr, 20*time.Second) {
		_ = r.cmd.Process.Kill()
		r.t.Fatalf("replica %s not ready\n%s", r.addr, r.logs)
	}
}

// kill SIGKILLs the process.
func (r *replica) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
}

// delivered reads the replica's count of write-backs delivered since it
// started, from /metrics (-1 when it does not answer).
func (r *replica) delivered() int {
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "linkbridge_writeback_delivered_total{") {
			var v int
			if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
				n += v
			}
		}
	}
	return n
}

// TestReplicasShareDelivery runs two "linkbridge serve" processes on one
// PostgreSQL database behind a load balancer, both relays on, and sends
// referrals and case changes through both. Each referral is posted to both
// replicas at once (idempotent intake must create it once). Mid-burst one
// replica is SIGKILLed, and restarted later. At the end the GP side holds
// the gateway's current version of every resource, no version after a newer
// one, every repeated write identical to the first (so in effect once), and
// each person's writes in the order of their outbox ids.
func TestReplicasShareDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("process crash test skipped in -short mode")
	}
	dbURL := pgtest.NewSchema(t)
	gp, err := gpfhirtest.New(gpfhirtest.Options{Patients: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gp.Close)
	bin := buildBinary(t)

	reps := make([]*replica, 2)
	for i := range reps {
		addr := freeAddr(t)
		reps[i] = &replica{t: t, bin: bin, addr: addr, logs: &syncBuffer{}, args: []string{"--addr", addr, "--db", dbURL,
			"--service-ods", "Y02662", "--gp-base", gp.URL + "/fhir", "--gp-timeout", "1s", "--rescue-after", "2s",
			"--relay-worker", fmt.Sprintf("replica-%d", i), "--log-level", "warn"}}
		if (&ServeCommand{Getenv: noEnv, Stderr: io.Discard}).flags(&ServeConfig{}).Lookup("dev") != nil {
			reps[i].args = append(reps[i].args, "--dev") // authentication is not what this test is about
		}
	}
	// Both at once: they migrate the empty schema together.
	var wg sync.WaitGroup
	for _, r := range reps {
		wg.Go(func() { r.cmd = startProcess(t, r.bin, r.args, r.logs) })
	}
	wg.Wait()
	for _, r := range reps {
		if !waitReady("http://"+r.addr, 20*time.Second) {
			t.Fatalf("replica %s not ready\n%s", r.addr, r.logs)
		}
	}
	t.Cleanup(func() {
		for _, r := range reps {
			if r.cmd != nil && r.cmd.ProcessState == nil {
				r.kill()
			}
		}
	})
	lb := &balancer{backends: []string{reps[0].addr, reps[1].addr}, tr: &http.Transport{}}
	t.Cleanup(lb.tr.CloseIdleConnections)
	g := &gatewayClient{t: t, base: "http://lb", client: &http.Client{Timeout: 5 * time.Second, Transport: lb}}

	// Intake: the same referral to both replicas at the same moment.
	gen := bench.NewReferralGen()
	const n = 8
	ids := make([]string, 0, n)
	for len(ids) < n {
		body, _ := gen.Next(nil, gen.Rand())
		got := make([]string, 2)
		var wg sync.WaitGroup
		for i, r := range reps {
			wg.Go(func() { got[i] = postReferralTo(t, "http://"+r.addr, body) })
		}
		wg.Wait()
		if got[0] == "" || got[0] != got[1] {
			t.Fatalf("the same referral posted to both replicas: ServiceRequests %q and %q, want one, the same", got[0], got[1])
		}
		ids = append(ids, got[0])
	}
	var inbox struct {
		Total int `json:"total"`
	}
	if st, _ := g.do(http.MethodGet, "/sp/v1/referrals?limit=1", "", nil, &inbox); st != 200 || inbox.Total != n {
		t.Fatalf("inbox = %d, total %d; want %d referrals (one per double post)", st, inbox.Total, n)
	}

	// The burst: every referral's journey at once, through the balancer.
	deadline := time.Now().Add(40 * time.Second)
	now := time.Now().UTC().Truncate(time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				for _, step := range journey(id, now) {
					g.change(id, step.method, step.path, step.body, deadline)
				}
			})
		}
		wg.Wait()
	}()
	// Kill replica 0 once the GP side has seen part of the burst; replica
	// 1 carries on alone, rescues what replica 0 held, then replica 0
	// comes back.
	// (Both relays take part: wait, up to the deadline, for replica 0 to
	// have delivered something itself.)
	deliveredBefore := 0
	for time.Now().Before(deadline) {
		if deliveredBefore = reps[0].delivered(); deliveredBefore > 0 && len(gp.Writes()) >= 2*n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	reps[0].kill()
	time.Sleep(2500 * time.Millisecond) // longer than --rescue-after
	reps[0].start()
	<-done
	if t.Failed() {
		t.FailNow()
	}

	waitDelivered(t, g, gp, ids, 20*time.Second)
	if r := gp.Regressions(); len(r) > 0 {
		t.Fatalf("older versions written after newer ones: %v", r)
	}
	checkWritesInOrder(t, gp, dbURL)
	if deliveredBefore+reps[0].delivered() <= 0 || reps[1].delivered() <= 0 {
		t.Errorf("delivered by replica 0: %d before the kill, %d after; by replica 1: %d; want both replicas to deliver",
			deliveredBefore, reps[0].delivered(), reps[1].delivered())
	}
	for _, id := range ids {
		var cv caseView
		g.do(http.MethodGet, "/sp/v1/referrals/"+id, "", nil, &cv)
		if w, ok := gp.Current("Task", cv.Referral.TaskID); cv.Referral.Status != "completed" || !ok ||
			!strings.Contains(string(w.Body), `"status":"completed"`) {
			t.Errorf("referral %s: gateway status %s, GP Task found %v; want completed on both sides", id, cv.Referral.Status, ok)
		}
	}
	t.Logf("replica 0 delivered %d before its kill and %d after its restart, replica 1 %d; the GP side received %d writes for %d resources",
		deliveredBefore, reps[0].delivered(), reps[1].delivered(), len(gp.Writes()), len(gp.All()))
}

// serviceRequestLocation finds the ServiceRequest's location in a
// transaction-response Bundle.
var serviceRequestLocation = regexp.MustCompile(`"location"\s*:\s*"ServiceRequest/([^/"]+)`)

// postReferralTo posts a referral bundle to one replica and returns the id of
// the ServiceRequest it answers with ("" on failure).
func postReferralTo(t *testing.T, base string, body []byte) string {
	t.Helper()
	resp, err := http.Post(base+"/fhir", "application/fhir+json", bytes.NewReader(body))
	if err != nil {
		t.Errorf("POST %s/fhir: %v", base, err)
		return ""
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	m := serviceRequestLocation.FindSubmatch(b)
	if resp.StatusCode != 200 || m == nil {
		t.Errorf("POST %s/fhir = %d without a ServiceRequest location: %.300s", base, resp.StatusCode, b)
		return ""
	}
	return string(m[1])
}

// checkWritesInOrder checks the GP side's writes against the outbox: every
// write is a delivered outbox message; a version written twice (a rescued
// message sent again) has the same body both times, so it takes effect once;
// and each person's writes arrive in the order of their outbox ids, never a
// later message before an earlier one.
func checkWritesInOrder(t *testing.T, gp *gpfhirtest.Server, dbURL string) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), []string{"outbox", "list", "--db", dbURL, "--state", "delivered", "--limit", "100000", "--json"},
		noEnv, &out, io.Discard)
	if err != nil {
		t.Fatalf("outbox list: %v", err)
	}
	var msgs []struct {
		ID           int64  `json:"id"`
		OrderKey     string `json:"orderKey"`
		ResourceType string `json:"resourceType"`
		ResourceID   string `json:"resourceId"`
		Version      int    `json:"version"`
	}
	if err := json.Unmarshal(out.Bytes(), &msgs); err != nil || len(msgs) == 0 {
		t.Fatalf("outbox list: %d delivered messages, %v", len(msgs), err)
	}
	type key struct {
		typ, id string
		version int
	}
	type msg struct {
		id       int64
		orderKey string
	}
	byVersion := make(map[key]msg, len(msgs))
	for _, m := range msgs {
		byVersion[key{m.ResourceType, m.ResourceID, m.Version}] = msg{m.ID, m.OrderKey}
	}
	first := map[key][]byte{}
	last := map[string]int64{} // order key → outbox id of its latest write
	repeats := 0
	for _, w := range gp.Writes() {
		k := key{w.Type, w.ID, w.Version}
		m, ok := byVersion[k]
		if !ok {
			t.Fatalf("the GP side received %s/%s v%d, which is no delivered outbox message", w.Type, w.ID, w.Version)
		}
		if b, seen := first[k]; seen {
			repeats++
			if !bytes.Equal(b, w.Body) {
				t.Fatalf("%s/%s v%d was written twice with different bodies", w.Type, w.ID, w.Version)
			}
		} else {
			first[k] = w.Body
		}
		if m.id < last[m.orderKey] {
			t.Fatalf("person %s: outbox message %d (%s/%s v%d) written after message %d", m.orderKey, m.id, w.Type, w.ID, w.Version, last[m.orderKey])
		}
		last[m.orderKey] = m.id
	}
	if len(first) != len(msgs) {
		t.Fatalf("%d delivered outbox messages, but the GP side received %d distinct versions", len(msgs), len(first))
	}
	t.Logf("%d writes, %d distinct versions, %d repeated (rescued and sent again)", len(gp.Writes()), len(first), repeats)
}
