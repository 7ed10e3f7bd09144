package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/adapter/gpfhir/gpfhirtest"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/outbox"
)

// --- fixture -------------------------------------------------------------

// env is a real SQLite store, a recording GP endpoint and a Sender.
type env struct {
	db     *sqlite.DB
	srv    *gpfhirtest.Server
	sender *gpfhir.Sender
	nhs    func() string
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "outbox.db"), nil)
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	srv, err := gpfhirtest.New(gpfhirtest.Options{})
	if err != nil {
		tb.Fatalf("gpfhirtest.New: %v", err)
	}
	tb.Cleanup(srv.Close)
	// RetryMax 0: every failure goes back to the relay, so the outbox row
	// records each attempt.
	c, err := gpfhir.New(gpfhir.Config{BaseURL: srv.URL, Mode: gpfhir.ModeClientID, RetryMax: 0, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatalf("gpfhir.New: %v", err)
	}
	return &env{db: db, srv: srv, sender: &gpfhir.Sender{Client: c}, nhs: nhsNumbers()}
}

// relay returns an unstarted relay over the env with fast test settings.
func (e *env) relay() *outbox.Relay {
	return &outbox.Relay{
		Store: e.db, Sender: e.sender, Worker: "test",
		PollInterval: 20 * time.Millisecond,
		Backoff:      func(int) time.Duration { return 5 * time.Millisecond },
	}
}

func start(tb testing.TB, r *outbox.Relay) {
	tb.Helper()
	if err := r.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(r.Stop)
}

// person is a referred person with one referral (copied in miniature from
// storetest's obPerson).
type person struct {
	e   *env
	p   *linkbridge.Person
	ref *linkbridge.Referral
}

func (e *env) newPerson(tb testing.TB, name string) *person {
	tb.Helper()
	t0 := time.Now().UTC()
	p := &linkbridge.Person{ID: "p-" + name, NHSNumber: e.nhs(), BirthDate: "1956-07-21", GPODS: "Y01234", CreatedAt: t0}
	r := &linkbridge.Referral{
		ID: "sr-" + name, TaskID: "task-" + name, PersonID: p.ID,
		Identifier:    linkbridge.Identifier{System: "https://fhir.example-gp.nhs.uk/Id/referral", Value: "REF-" + name},
		Status:        linkbridge.TaskRequested,
		RequestStatus: "active", Priority: "routine", ReferrerODS: "Y01234", ServiceODS: "RAT01",
		Reasons: []linkbridge.Coding{{System: linkbridge.SNOMEDSystem, Code: linkbridge.SCTReferralToSocialPrescribing,
			Display: "Referral to social prescribing service"}},
		AuthoredOn: t0.Add(-time.Hour), ReceivedAt: t0, UpdatedAt: t0, Version: 1,
	}
	res := func(typ, id, extra string) *linkbridge.Resource {
		body := fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"versionId":"1","lastUpdated":%q}%s}`,
			typ, id, t0.Format(time.RFC3339Nano), extra)
		return &linkbridge.Resource{Type: typ, ID: id, VersionID: 1, LastUpdated: t0, Body: []byte(body),
			Params: []linkbridge.SearchParam{}}
	}
	in := &linkbridge.Intake{
		Person: p, NewPerson: true, Referral: r,
		Resources: []*linkbridge.Resource{
			res("Patient", p.ID, `,"birthDate":"1956-07-21"`),
			res("ServiceRequest", r.ID, `,"status":"active","intent":"order"`),
			res("Task", r.TaskID, `,"status":"requested","intent":"order"`),
		},
		MessageID: "msg-" + name,
	}
	if err := e.db.CreateReferral(context.Background(), in); err != nil {
		tb.Errorf("CreateReferral(%s): %v", name, err)
		return nil
	}
	return &person{e: e, p: p, ref: r}
}

// mustPerson is newPerson for the test goroutine: fatal on error.
func (e *env) mustPerson(tb testing.TB, name string) *person {
	tb.Helper()
	p := e.newPerson(tb, name)
	if p == nil {
		tb.FailNow()
	}
	return p
}

// pad makes message bodies about 1 KB, like a real Task write-back.
var pad = strings.Repeat("Patient attended the first link worker session; agreed goals around social contact and activity. ", 8)

// msg builds a message writing version v of Task/id for the person.
func (p *person) msg(id string, v int) *linkbridge.OutboxMessage {
	body := fmt.Sprintf(`{"resourceType":"Task","id":%q,"meta":{"versionId":"%d"},"status":"in-progress","intent":"order",`+
		`"businessStatus":{"text":"step %d"},"description":%q,`+
		`"for":{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":%q}},`+
		`"owner":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RAT01"}},`+
		`"note":[{"text":%q}]}`, id, v, v, "Social prescribing referral "+p.ref.ID, p.p.NHSNumber, pad)
	return &linkbridge.OutboxMessage{
		OrderKey: p.p.ID, ReferralID: p.ref.ID, ResourceType: "Task", ResourceID: id, Version: v,
		Body: []byte(body), NHSNumber: p.p.NHSNumber,
	}
}

// enqueue commits the person's next referral version carrying msgs and
// returns when the change is committed.
func (p *person) enqueue(tb testing.TB, msgs ...*linkbridge.OutboxMessage) {
	tb.Helper()
	c := *p.ref
	c.Version++
	c.UpdatedAt = time.Now().UTC()
	c.BusinessStatus = "step-" + strconv.Itoa(c.Version)
	if err := p.e.db.UpdateReferral(context.Background(), &linkbridge.ReferralChange{Referral: &c, Outbox: msgs}); err != nil {
		tb.Errorf("UpdateReferral(%s v%d): %v", c.ID, c.Version, err)
		return
	}
	p.ref = &c
	for _, m := range msgs {
		if m.ID == 0 {
			tb.Errorf("UpdateReferral left %s/%s without an outbox id", m.ResourceType, m.ResourceID)
		}
	}
}

// nhsNumbers generates distinct valid NHS numbers (copied from storetest;
// safe for concurrent use).
func nhsNumbers() func() string {
	stem := 900000000
	var mu sync.Mutex
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		for {
			s := strconv.Itoa(stem)
			stem++
			if check, ok := linkbridge.NHSCheckDigit(s); ok {
				return s + strconv.Itoa(check)
			}
		}
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(tb testing.TB, e *env, id int64) *linkbridge.OutboxMessage {
	tb.Helper()
	m, err := e.db.GetOutbox(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetOutbox(%d): %v", id, err)
	}
	return m
}

func stateIs(tb testing.TB, e *env, id int64, st linkbridge.OutboxState) func() bool {
	return func() bool { return get(tb, e, id).State == st }
}

// countState counts messages in a state.
func countState(tb testing.TB, e *env, st linkbridge.OutboxState) int {
	tb.Helper()
	s, err := e.db.OutboxStats(context.Background())
	if err != nil {
		tb.Fatalf("OutboxStats: %v", err)
	}
	return s.Counts[st]
}

// enqueueMany gives each of persons msgsPer messages, perChange per change,
// alternating two Tasks per person (a-1, b-1, a-2, b-2, ...) so versions
// move forward and none is superseded (a different resource sits between
// two versions of one). It returns the expected write order per person as
// "Task/id/version". Persons are filled concurrently (the writer batches).
func enqueueMany(tb testing.TB, persons []*person, msgsPer, perChange int) map[string][]string {
	want := make(map[string][]string, len(persons))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, p := range persons {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var seq []string
			var batch []*linkbridge.OutboxMessage
			for i := 0; i < msgsPer; i++ {
				id := p.p.ID + "-" + string(rune('a'+i%2))
				v := i/2 + 1
				batch = append(batch, p.msg(id, v))
				seq = append(seq, fmt.Sprintf("Task/%s/%d", id, v))
				if len(batch) == perChange || i == msgsPer-1 {
					p.enqueue(tb, batch...)
					batch = nil
				}
			}
			mu.Lock()
			want[p.p.ID] = seq
			mu.Unlock()
		}()
	}
	wg.Wait()
	return want
}

// ownerOf is the person id a write's resource id starts with ("p-N-a").
func ownerOf(w gpfhirtest.Write) string { return w.ID[:strings.LastIndexByte(w.ID, '-')] }

// --- tests ---------------------------------------------------------------

func TestRelayDeliversAllInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var persons []*person
	for i := range 20 {
		persons = append(persons, e.mustPerson(t, strconv.Itoa(i)))
	}
	want := enqueueMany(t, persons, 12, 3)
	r := e.relay()
	r.Batch, r.Concurrency = 8, 4 // several claims, several sends at once
	start(t, r)
	const total = 20 * 12
	waitFor(t, 30*time.Second, "all delivered", func() bool { return countState(t, e, linkbridge.OutboxDelivered) == total })

	if reg := e.srv.Regressions(); len(reg) != 0 {
		t.Errorf("Regressions() = %v, want none", reg)
	}
	got := map[string][]string{}
	for _, w := range e.srv.Writes() {
		got[ownerOf(w)] = append(got[ownerOf(w)], fmt.Sprintf("%s/%s/%d", w.Type, w.ID, w.Version))
	}
	for k, seq := range want {
		if !slices.Equal(got[k], seq) {
			t.Errorf("writes for %s arrived as\n%v\nwant enqueue order\n%v", k, got[k], seq)
		}
	}
	if n := len(e.srv.Writes()); n != total {
		t.Errorf("recorder got %d writes, want %d (each exactly once)", n, total)
	}
}

func TestRelayRetries503ThenDelivers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.mustPerson(t, "a")
	m := p.msg("p-a-a", 1)
	p.enqueue(t, m)
	e.srv.Script(gpfhirtest.Reply{Status: http.StatusServiceUnavailable})
	start(t, e.relay())
	waitFor(t, 30*time.Second, "delivered", stateIs(t, e, m.ID, linkbridge.OutboxDelivered))
	got := get(t, e, m.ID)
	if got.Attempts != 1 || got.DeliveredAt.IsZero() {
		t.Errorf("after 503 then 201: Attempts = %d, DeliveredAt = %v; want 1 failed attempt and a delivery time", got.Attempts, got.DeliveredAt)
	}
	if w, ok := e.srv.Current("Task", "p-a-a"); !ok || w.Version != 1 {
		t.Errorf("recorder Current(Task/p-a-a) = %+v, %v; want version 1", w, ok)
	}
}

func TestRelayDeadLetters400AndMovesOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.mustPerson(t, "a")
	bad, next := p.msg("p-a-a", 1), p.msg("p-a-b", 1)
	p.enqueue(t, bad, next)
	oo := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"unknown patient"}]}`
	e.srv.Script(gpfhirtest.Reply{Status: http.StatusBadRequest, Body: oo})
	start(t, e.relay())
	waitFor(t, 30*time.Second, "later message delivered", stateIs(t, e, next.ID, linkbridge.OutboxDelivered))
	got := get(t, e, bad.ID)
	if got.State != linkbridge.OutboxDead || got.LastStatus != 400 || !bytes.Equal(got.LastOutcome, []byte(oo)) {
		t.Errorf("refused message: State %s, LastStatus %d, LastOutcome %s; want dead, 400, the endpoint's OperationOutcome",
			got.State, got.LastStatus, got.LastOutcome)
	}
	if !strings.Contains(got.LastError, "unknown patient") {
		t.Errorf("LastError = %q, want the outcome's diagnostics", got.LastError)
	}
	if _, ok := e.srv.Current("Task", "p-a-a"); ok {
		t.Error("the refused write was recorded")
	}
}

func TestRelayRetryAfterIsScheduledNotSlept(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.mustPerson(t, "a"), e.mustPerson(t, "b")
	m := a.msg("p-a-a", 1)
	a.enqueue(t, m)
	e.srv.Script(gpfhirtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: "30"})
	before := time.Now()
	r := e.relay()
	start(t, r)
	waitFor(t, 30*time.Second, "the 429 recorded", func() bool { return get(t, e, m.ID).Attempts == 1 })
	got := get(t, e, m.ID)
	if got.State != linkbridge.OutboxPending || got.LastStatus != 429 || got.AvailableAt.Before(before.Add(30*time.Second)) {
		t.Errorf("after 429 Retry-After: 30: State %s, LastStatus %d, AvailableAt %s (now+%s); want pending, 429, at least 30s on",
			got.State, got.LastStatus, got.AvailableAt.Format(time.RFC3339Nano), got.AvailableAt.Sub(before))
	}
	// The relay is free meanwhile: another person's message goes at once.
	other := b.msg("p-b-a", 1)
	b.enqueue(t, other)
	r.Notify()
	waitFor(t, 5*time.Second, "another person's message delivered", stateIs(t, e, other.ID, linkbridge.OutboxDelivered))
	if st := get(t, e, m.ID).State; st != linkbridge.OutboxPending {
		t.Errorf("rescheduled message is %s before its Retry-After elapsed, want pending", st)
	}
	t0 := time.Now()
	r.Stop()
	if d := time.Since(t0); d > 900*time.Millisecond {
		t.Errorf("Stop took %s, want prompt (no goroutine sleeping on Retry-After)", d)
	}
}

func TestRelayRescuesCrashedClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.mustPerson(t, "a")
	m := p.msg("p-a-a", 1)
	p.enqueue(t, m)
	claimed, err := e.db.ClaimOutbox(context.Background(), linkbridge.ChannelWriteBack, "crashed", 10, time.Now())
	if err != nil || len(claimed) != 1 || claimed[0].ID != m.ID {
		t.Fatalf("ClaimOutbox(crashed) = %v, %v; want message %d", claimed, err, m.ID)
	}
	r := e.relay()
	// Long enough that a send (cut off at RescueAfter/2) finishes on a
	// loaded CI machine: a cut-off send that reached the GP side would be
	// sent again, and this test counts writes.
	r.RescueAfter = 2 * time.Second
	start(t, r)
	waitFor(t, 30*time.Second, "rescued and delivered", stateIs(t, e, m.ID, linkbridge.OutboxDelivered))
	if n := len(e.srv.Writes()); n != 1 {
		t.Errorf("recorder got %d writes, want 1", n)
	}
}

// --- benchmarks ----------------------------------------------------------

// BenchmarkDrain times a relay draining a backlog of 5,000 ~1 KB Task
// write-backs over 500 persons.
func BenchmarkDrain(b *testing.B) {
	const persons, perPerson = 500, 10
	for range b.N {
		b.StopTimer()
		e := newEnv(b)
		ps := make([]*person, persons)
		var wg sync.WaitGroup
		for i := range ps {
			wg.Add(1)
			go func() { defer wg.Done(); ps[i] = e.newPerson(b, strconv.Itoa(i)) }()
		}
		wg.Wait()
		if slices.Contains(ps, nil) {
			b.FailNow()
		}
		enqueueMany(b, ps, perPerson, 2)
		total := persons * perPerson
		r := e.relay()
		r.PollInterval = 0 // production default (250ms)
		r.Batch, r.Concurrency = 128, 32
		b.StartTimer()
		t0 := time.Now()
		if err := r.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		// Delivered means recorded as delivered in the outbox (a write the
		// endpoint took but the relay has not completed yet is not).
		waitFor(b, 60*time.Second, "drain", func() bool {
			return len(e.srv.Writes()) >= total && countState(b, e, linkbridge.OutboxDelivered) == total
		})
		d := time.Since(t0)
		b.StopTimer()
		r.Stop()
		if reg := e.srv.Regressions(); len(reg) != 0 {
			b.Errorf("regressions: %v", reg[:min(5, len(reg))])
		}
		if n := countState(b, e, linkbridge.OutboxDelivered); n != total {
			b.Errorf("delivered = %d, want %d", n, total)
		}
		b.ReportMetric(float64(total)/d.Seconds(), "resources/s")
		b.ReportMetric(d.Seconds()*1000, "drain-ms")
	}
}

// BenchmarkChangeToDelivered commits 100 changes/s (1-3 write-backs each,
// Notify after commit, as the server does) for 5 s and measures each
// write-back's latency from commit to the endpoint receiving it.
func BenchmarkChangeToDelivered(b *testing.B) {
	const rate, dur, persons = 100, 5 * time.Second, 200
	for range b.N {
		b.StopTimer()
		e := newEnv(b)
		ps := make([]*person, persons)
		for i := range ps {
			ps[i] = e.mustPerson(b, strconv.Itoa(i))
		}
		r := e.relay()
		r.PollInterval = 0 // production default (250ms): Notify must do the work
		r.Backoff = nil
		r.Batch, r.Concurrency = 128, 32
		if err := r.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		committed := map[string]time.Time{}
		vers := map[string]int{}
		rng := rand.New(rand.NewPCG(1, 2))
		tick := time.NewTicker(time.Second / rate)
		n := rate * int(dur/time.Second)
		for i := 0; i < n; i++ {
			<-tick.C
			p := ps[rng.IntN(persons)]
			var msgs []*linkbridge.OutboxMessage
			for j := range 1 + rng.IntN(3) {
				id := p.p.ID + "-" + string(rune('a'+j))
				vers[id]++
				msgs = append(msgs, p.msg(id, vers[id]))
			}
			p.enqueue(b, msgs...)
			at := time.Now()
			r.Notify()
			for _, m := range msgs {
				committed[fmt.Sprintf("%s/%s/%d", m.ResourceType, m.ResourceID, m.Version)] = at
			}
		}
		tick.Stop()
		// Some versions may be superseded by a later one queued behind
		// them before they are sent; they are never written.
		waitFor(b, 10*time.Second, "all settled", func() bool {
			s, err := e.db.OutboxStats(context.Background())
			return err == nil && s.Counts[linkbridge.OutboxPending]+s.Counts[linkbridge.OutboxInflight] == 0
		})
		b.StopTimer()
		r.Stop()
		var lat []time.Duration
		for _, w := range e.srv.Writes() {
			if c, ok := committed[fmt.Sprintf("%s/%s/%d", w.Type, w.ID, w.Version)]; ok {
				lat = append(lat, max(0, w.At.Sub(c)))
			}
		}
		if len(lat) == 0 {
			b.Fatal("no writes recorded")
		}
		if reg := e.srv.Regressions(); len(reg) != 0 {
			b.Errorf("regressions: %v", reg[:min(5, len(reg))])
		}
		slices.Sort(lat)
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
		b.ReportMetric(q(0.50), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
		b.ReportMetric(float64(len(lat)), "writes")
		b.ReportMetric(float64(len(committed)), "enqueued")
	}
}
