package postgres_test

// Tests of what only PostgreSQL has to get right: several processes
// ("replicas", here each a DB with its own pool) sharing one database.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// t0 is the tests' reference time (whole microseconds, as stored).
var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// nhsNumber returns the i-th of a series of valid NHS numbers.
func nhsNumber(i int) string {
	for stem := 943000000 + i*3; ; stem++ {
		s := fmt.Sprint(stem)
		if check, ok := linkbridge.NHSCheckDigit(s); ok {
			return s + fmt.Sprint(check)
		}
	}
}

// intake builds the intake of referral "REF-<n>" for a new person with NHS
// number nhs, as replica rep would build it: the ids are the replica's own
// (each replica mints its own), the business identifier and the NHS number
// are the referral's.
func intake(rep string, n int, nhs, msgID string) *linkbridge.Intake {
	suffix := fmt.Sprintf("%s-%d", rep, n)
	p := &linkbridge.Person{ID: "p-" + suffix, NHSNumber: nhs, BirthDate: "1950-01-01", GPODS: "Y01234", CreatedAt: t0}
	r := &linkbridge.Referral{
		ID: "sr-" + suffix, TaskID: "task-" + suffix, PersonID: p.ID,
		Identifier:  linkbridge.Identifier{System: "https://fhir.example-gp.nhs.uk/Id/referral", Value: fmt.Sprintf("REF-%d", n)},
		Status:      linkbridge.TaskRequested,
		ReferrerODS: "Y01234", ServiceODS: "RAT01",
		AuthoredOn: t0.Add(-time.Hour), ReceivedAt: t0, UpdatedAt: t0, Version: 1,
	}
	res := func(typ, id string) *linkbridge.Resource {
		return &linkbridge.Resource{Type: typ, ID: id, VersionID: 1, LastUpdated: t0,
			Body:   fmt.Appendf(nil, `{"resourceType":%q,"id":%q}`, typ, id),
			Params: []linkbridge.SearchParam{{Name: "identifier", Value: r.Identifier.String()}}}
	}
	return &linkbridge.Intake{Person: p, NewPerson: true, Referral: r, MessageID: msgID,
		Resources: []*linkbridge.Resource{res("Patient", p.ID), res("ServiceRequest", r.ID), res("Task", r.TaskID)}}
}

// atOnce runs fn(0) ... fn(n-1) in goroutines released together, and
// waits for them all.
func atOnce(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// existing returns the Existing of an application error, or "".
func existing(err error) string {
	var e *linkbridge.Error
	if errors.As(err, &e) {
		return e.Existing
	}
	return ""
}

// TestIntakeAcrossReplicas posts each referral to two replicas at the same
// moment: exactly one creates it, the other answers EDUPLICATE naming the
// one that did, and nothing of the loser is stored. The unique constraints
// decide, not a read before the write.
func TestIntakeAcrossReplicas(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	a, b := mustOpenURL(t, u), mustOpenURL(t, u)
	ctx := context.Background()
	const rounds = 25
	for _, tc := range []struct {
		name string
		// msg is the message id both replicas record (BaRS: the same
		// X-Request-Id), or "" for RESTful creates.
		msg          func(n int) string
		wantExisting func(winner *linkbridge.Intake) string
	}{
		{"SameIdentifier", func(int) string { return "" },
			func(w *linkbridge.Intake) string { return "ServiceRequest/" + w.Referral.ID }},
		{"SameMessage", func(n int) string { return fmt.Sprintf("msg-%d", n) },
			func(w *linkbridge.Intake) string { return "MessageHeader/" + w.MessageID }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			off := 0
			if tc.name == "SameMessage" {
				off = rounds
			}
			for n := off; n < off+rounds; n++ {
				ins := []*linkbridge.Intake{intake("a", n, nhsNumber(n), tc.msg(n)), intake("b", n, nhsNumber(n), tc.msg(n))}
				errs := make([]error, 2)
				reps := []*postgres.DB{a, b}
				atOnce(2, func(i int) { errs[i] = reps[i].CreateReferral(ctx, ins[i]) })
				var winner, loser int
				switch {
				case errs[0] == nil && errs[1] != nil:
					winner, loser = 0, 1
				case errs[1] == nil && errs[0] != nil:
					winner, loser = 1, 0
				default:
					t.Fatalf("referral %d: errors %v and %v; want exactly one to succeed", n, errs[0], errs[1])
				}
				if code := linkbridge.ErrorCode(errs[loser]); code != linkbridge.EDUPLICATE {
					t.Fatalf("referral %d: loser's error %v (code %s), want EDUPLICATE", n, errs[loser], code)
				}
				if got, want := existing(errs[loser]), tc.wantExisting(ins[winner]); got != want {
					t.Fatalf("referral %d: Existing = %q, want %q", n, got, want)
				}
				// Both replicas read the winner; the loser's ids are absent.
				for _, s := range []*postgres.DB{a, b} {
					got, err := s.FindReferralByIdentifier(ctx, ins[winner].Referral.ReferrerODS, ins[winner].Referral.Identifier)
					if err != nil || got.ID != ins[winner].Referral.ID {
						t.Fatalf("referral %d: FindReferralByIdentifier = %v, %v; want %s", n, got, err, ins[winner].Referral.ID)
					}
					if _, err := s.FindPerson(ctx, ins[loser].Person.ID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
						t.Fatalf("referral %d: the loser's person: %v, want ENOTFOUND", n, err)
					}
					if _, err := s.ReadResource(ctx, "Task", ins[loser].Referral.TaskID); linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
						t.Fatalf("referral %d: the loser's Task: %v, want ENOTFOUND", n, err)
					}
				}
			}
		})
	}
}

// TestUpdateAcrossReplicas has two replicas apply the next version of one
// referral at once: one wins, the other gets EPRECONDITION, and the winner's
// change is what is stored.
func TestUpdateAcrossReplicas(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	a, b := mustOpenURL(t, u), mustOpenURL(t, u)
	ctx := context.Background()
	in := intake("a", 1, nhsNumber(1), "")
	if err := a.CreateReferral(ctx, in); err != nil {
		t.Fatalf("CreateReferral returned unexpected error: %v", err)
	}
	cur := in.Referral
	for v := 2; v <= 21; v++ {
		chs := make([]*linkbridge.ReferralChange, 2)
		for i := range chs {
			r := *cur
			r.Version, r.UpdatedAt, r.BusinessStatus = v, t0.Add(time.Duration(v)*time.Minute), fmt.Sprintf("by-%d", i)
			task := &linkbridge.Resource{Type: "Task", ID: r.TaskID, VersionID: v, LastUpdated: r.UpdatedAt,
				Body: fmt.Appendf(nil, `{"resourceType":"Task","by":%d}`, i)}
			chs[i] = &linkbridge.ReferralChange{Referral: &r, Resources: []*linkbridge.Resource{task},
				Event: &linkbridge.ReferralEvent{Action: "step", Actor: fmt.Sprint(i)}}
		}
		errs := make([]error, 2)
		reps := []*postgres.DB{a, b}
		atOnce(2, func(i int) { errs[i] = reps[i].UpdateReferral(ctx, chs[i]) })
		won := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		if won < 0 || errs[1-won] == nil || linkbridge.ErrorCode(errs[1-won]) != linkbridge.EPRECONDITION {
			t.Fatalf("version %d: errors %v; want one nil and one EPRECONDITION", v, errs)
		}
		got, err := b.FindReferral(ctx, cur.ID)
		if err != nil || got.Version != v || got.BusinessStatus != fmt.Sprintf("by-%d", won) {
			t.Fatalf("version %d: stored %+v, %v; want the winner's (by-%d)", v, got, err, won)
		}
		task, err := a.ReadResource(ctx, "Task", cur.TaskID)
		if err != nil || task.VersionID != v || string(task.Body) != string(chs[won].Resources[0].Body) {
			t.Fatalf("version %d: Task %+v, %v; want the winner's version %d", v, task, err, v)
		}
		cur = chs[won].Referral
	}
}

// TestClaimAcrossReplicas runs relays' claim loops on two replicas, several
// workers each, while the changes that enqueue keep coming through both
// replicas. No two messages of one person are ever inflight together, no
// message is claimed twice, every message is delivered, and each person's
// messages are delivered in id order.
func TestClaimAcrossReplicas(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	reps := []*postgres.DB{mustOpenURL(t, u), mustOpenURL(t, u)}
	ctx := context.Background()
	const (
		people    = 6
		referrals = 2 // per person: two referrals enqueue under one order key
		changes   = 12
	)
	type ref struct {
		cur *linkbridge.Referral
		key string
		nhs string
	}
	var refs []*ref
	for p := range people {
		for k := range referrals {
			n := p*referrals + k
			in := intake("a", n, nhsNumber(n), "")
			if k > 0 {
				// The person's second referral links the existing person.
				in.NewPerson = false
				in.Person = &linkbridge.Person{ID: refs[len(refs)-1].cur.PersonID}
				in.Referral.PersonID = in.Person.ID
				in.Resources = in.Resources[1:]
				// Beside the first, as its sender said (one open referral
				// per person and service otherwise).
				in.Referral.Link = linkbridge.ReferralLink{ReferralID: refs[len(refs)-1].cur.ID, Kind: linkbridge.LinkRelated}
			}
			if err := reps[0].CreateReferral(ctx, in); err != nil {
				t.Fatalf("CreateReferral(%d) returned unexpected error: %v", n, err)
			}
			refs = append(refs, &ref{cur: in.Referral, key: in.Referral.PersonID, nhs: nhsNumber(p * referrals)})
		}
	}

	var (
		mu        sync.Mutex
		inflight  = map[string]int64{} // order key → the message inflight
		delivered = map[string][]int64{}
		seen      = map[int64]bool{}
		failure   error
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if failure == nil {
			failure = fmt.Errorf(format, args...)
		}
	}
	total := len(refs) * changes
	done := make(chan struct{})
	var workers sync.WaitGroup
	for w := range 6 {
		s := reps[w%2]
		name := fmt.Sprintf("rep%d-w%d", w%2, w)
		workers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				msgs, err := s.ClaimOutbox(ctx, linkbridge.ChannelWriteBack, name, 3, time.Now().Add(time.Hour))
				if err != nil {
					fail("%s: ClaimOutbox: %v", name, err)
					return
				}
				mu.Lock()
				for _, m := range msgs {
					if other, busy := inflight[m.OrderKey]; busy {
						failure = fmt.Errorf("%s claimed %d while %d of the same person is inflight", name, m.ID, other)
					}
					if seen[m.ID] {
						failure = fmt.Errorf("%s claimed %d a second time", name, m.ID)
					}
					inflight[m.OrderKey], seen[m.ID] = m.ID, true
				}
				mu.Unlock()
				for _, m := range msgs {
					// Forget it before it is delivered: once the store says
					// delivered, the person's next message may be claimed.
					mu.Lock()
					delete(inflight, m.OrderKey)
					delivered[m.OrderKey] = append(delivered[m.OrderKey], m.ID)
					mu.Unlock()
					if err := s.CompleteOutbox(ctx, m.Claim(), 200, time.Now()); err != nil {
						fail("%s: CompleteOutbox(%d): %v", name, m.ID, err)
						return
					}
				}
				if len(msgs) == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		})
	}

	// Every referral's changes, each carrying two messages, through
	// alternating replicas, all referrals at once.
	var writers sync.WaitGroup
	for i, r := range refs {
		writers.Go(func() {
			for c := range changes {
				s := reps[(i+c)%2]
				next := *r.cur
				next.Version++
				next.UpdatedAt = t0.Add(time.Duration(next.Version) * time.Minute)
				msg := func(typ, id string) *linkbridge.OutboxMessage {
					return &linkbridge.OutboxMessage{OrderKey: r.key, ResourceType: typ, ResourceID: id, Version: next.Version,
						Body: []byte(`{}`), NHSNumber: r.nhs}
				}
				ch := &linkbridge.ReferralChange{Referral: &next,
					Outbox: []*linkbridge.OutboxMessage{msg("Task", next.TaskID), msg("CarePlan", "cp-"+next.ID)}}
				if err := s.UpdateReferral(ctx, ch); err != nil {
					fail("UpdateReferral(%s v%d): %v", next.ID, next.Version, err)
					return
				}
				r.cur = &next
			}
		})
	}
	writers.Wait()

	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := reps[0].OutboxStats(ctx)
		if err != nil {
			t.Fatalf("OutboxStats returned unexpected error: %v", err)
		}
		if st.Counts[linkbridge.OutboxDelivered]+st.Counts[linkbridge.OutboxSuperseded] == 2*total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained: %v", st.Counts)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	workers.Wait()
	if failure != nil {
		t.Fatal(failure)
	}
	for key, ids := range delivered {
		if !slices.IsSorted(ids) {
			t.Fatalf("person %s: delivered out of id order: %v", key, ids)
		}
	}
	all, err := reps[1].ListOutbox(ctx, linkbridge.OutboxFilter{Limit: 10 * total})
	if err != nil {
		t.Fatalf("ListOutbox returned unexpected error: %v", err)
	}
	for _, m := range all {
		if m.State == linkbridge.OutboxDelivered && !seen[m.ID] {
			t.Fatalf("message %d is delivered but was never claimed", m.ID)
		}
	}
}

// TestRescueAcrossReplicas runs the rescuer on several replicas at once:
// each stuck message is returned to the queue exactly once.
func TestRescueAcrossReplicas(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	reps := []*postgres.DB{mustOpenURL(t, u), mustOpenURL(t, u), mustOpenURL(t, u)}
	ctx := context.Background()
	const n = 40
	for i := range n {
		in := intake("a", i, nhsNumber(i), "")
		if err := reps[0].CreateReferral(ctx, in); err != nil {
			t.Fatalf("CreateReferral returned unexpected error: %v", err)
		}
		next := *in.Referral
		next.Version, next.UpdatedAt = 2, t0.Add(time.Minute)
		ch := &linkbridge.ReferralChange{Referral: &next, Outbox: []*linkbridge.OutboxMessage{{OrderKey: in.Person.ID,
			ResourceType: "Task", ResourceID: next.TaskID, Version: 2, Body: []byte(`{}`), CreatedAt: t0}}}
		if err := reps[1].UpdateReferral(ctx, ch); err != nil {
			t.Fatalf("UpdateReferral returned unexpected error: %v", err)
		}
	}
	claimed, err := reps[2].ClaimOutbox(ctx, linkbridge.ChannelWriteBack, "crashed", n, t0.Add(time.Hour))
	if err != nil || len(claimed) != n {
		t.Fatalf("ClaimOutbox = %d messages, %v; want %d", len(claimed), err, n)
	}
	counts := make([]int, len(reps))
	atOnce(len(reps), func(i int) {
		var err error
		if counts[i], err = reps[i].RescueOutbox(ctx, linkbridge.ChannelWriteBack, t0.Add(2*time.Hour)); err != nil {
			t.Errorf("RescueOutbox returned unexpected error: %v", err)
		}
	})
	sum := 0
	for _, c := range counts {
		sum += c
	}
	if sum != n {
		t.Fatalf("RescueOutbox counts %v sum to %d, want %d", counts, sum, n)
	}
	st, err := reps[0].OutboxStats(ctx)
	if err != nil || st.Counts[linkbridge.OutboxPending] != n || st.Counts[linkbridge.OutboxInflight] != 0 {
		t.Fatalf("OutboxStats = %+v, %v; want %d pending, none inflight", st, err, n)
	}
}

// TestMigrations: replicas starting at once on an empty schema migrate it
// once, and PostgreSQL reaches the same migrations as SQLite.
func TestMigrations(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	ctx := context.Background()
	dbs := make([]*postgres.DB, 4)
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() {
			db := postgres.NewDB(u)
			if err := db.Open(ctx); err != nil {
				t.Errorf("Open (replica %d) returned unexpected error: %v", i, err)
				return
			}
			dbs[i] = db
		})
	}
	wg.Wait()
	for _, db := range dbs {
		if db != nil {
			t.Cleanup(func() { _ = db.Close() })
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	got, err := dbs[0].Migrations(ctx)
	if err != nil {
		t.Fatalf("Migrations returned unexpected error: %v", err)
	}
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkbridge.db"), nil)
	if err != nil {
		t.Fatalf("sqlite.Open returned unexpected error: %v", err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	want, err := lite.Migrations(ctx)
	if err != nil {
		t.Fatalf("sqlite Migrations returned unexpected error: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("PostgreSQL migrations differ from SQLite's (-sqlite +postgres):\n%s", diff)
	}
	pv, err := dbs[1].MigrationVersion(ctx)
	if err != nil {
		t.Fatalf("MigrationVersion returned unexpected error: %v", err)
	}
	sv, err := lite.MigrationVersion(ctx)
	if err != nil || pv != sv {
		t.Fatalf("MigrationVersion: postgres %d, sqlite %d (%v); want equal", pv, sv, err)
	}
}
