package outbox_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/bench"
	"github.com/linkbridge/linkbridge/casework"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/intake"
	"github.com/linkbridge/linkbridge/outbox"
	"github.com/linkbridge/linkbridge/refgp"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
	taskpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/task_go_proto"
)

// The model-based test of the write-back (issue 12): random sequences of
// case operations, each on its own referral, are delivered by the real
// relay to the strict reference GP (own ids, no update-as-create,
// references enforced); after the drain the GP copy of every referral must
// equal the projection of its case. Flags: -model.seed picks the seed (0:
// from the clock, printed), -model.n the number of sequences per backend
// (0: 200; 40 in a -race build, where the race detector's instrumentation
// of the pure-Go SQLite makes the run about twelve times slower: .ci/run
// runs the full 200 without -race as its own step).
var (
	modelSeed = flag.Uint64("model.seed", 0, "seed of the write-back model test (0: from the clock)")
	modelN    = flag.Int("model.n", 0, "sequences per backend in the write-back model test (0: 200, or 40 under -race)")
)

// modelSequences is the number of sequences per backend (see modelN).
func modelSequences() int {
	switch {
	case *modelN > 0:
		return *modelN
	case raceEnabled:
		return 40
	}
	return 200
}

// modelStore is what the model test needs of a store.
type modelStore interface {
	linkbridge.Store
	linkbridge.CaseStore
	linkbridge.OutboxStore
	linkbridge.EndpointIdentityStore
}

// modelEnv is one run: a store, the case and intake services, the strict
// reference GP on loopback, and the relay writing to it.
type modelEnv struct {
	store modelStore
	svc   *casework.Service
	in    *intake.Service
	codec *fhirjson.Codec
	gpURL string
	relay *outbox.Relay
	gen   *bench.ReferralGen
	delet bool
}

// modelGP is the GP endpoint of a run: the strict reference GP with or
// without delete, written in the mode its statement implies or a forced
// one, or the lenient reference GP (client ids).
type modelGP struct {
	noDelete, lenient bool
	mode              gpfhir.Mode
}

// newModelEnv builds a run on a backend ("sqlite" or "postgres") against
// the GP endpoint gp.
// makes the GP endpoint one without the delete interaction.
func newModelEnv(t *testing.T, backend string, gpOpts modelGP) *modelEnv {
	noDelete := gpOpts.noDelete
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var store modelStore
	switch backend {
	case "sqlite":
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkbridge.db"), logger)
		if err != nil {
			t.Fatal(err)
		}
		store = db
	default:
		db, err := postgres.Open(ctx, pgtest.NewSchema(t), logger)
		if err != nil {
			t.Fatal(err)
		}
		store = db
	}
	t.Cleanup(func() { _ = store.Close() })
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	gp, err := refgp.Open(ctx, filepath.Join(t.TempDir(), "gp.db"), refgp.Options{NoDelete: noDelete, AllowClientIDs: gpOpts.lenient, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gp.Close() })
	srv := httptest.NewServer(gp.Handler())
	t.Cleanup(srv.Close)
	mode := gpOpts.mode
	if mode == "" {
		mode = gpfhir.ModeAuto
	}
	client, err := gpfhir.New(gpfhir.Config{BaseURL: srv.URL + "/fhir", Mode: mode, RetryMax: 1,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 10 * time.Millisecond, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	env := &modelEnv{store: store, codec: codec, gpURL: srv.URL + "/fhir", gen: bench.NewReferralGen(), delet: !noDelete}
	env.svc = &casework.Service{Store: store, Cases: store, Codec: codec, Logger: logger, WriteBack: true,
		NewID: func() string { return fmt.Sprintf("m%d", n.Add(1)) }}
	env.in = &intake.Service{Store: store, Codec: codec, Logger: logger, NewID: func() string { return fmt.Sprintf("in%d", n.Add(1)) }}
	env.relay = &outbox.Relay{Store: store, Worker: "model", Logger: logger,
		Sender:       &gpfhir.Sender{Client: client, Codec: codec, Identities: store},
		PollInterval: 10 * time.Millisecond, Concurrency: 8,
		Backoff: func(int) time.Duration { return 20 * time.Millisecond }}
	env.svc.OnWriteBack = env.relay.Notify
	return env
}

// modelOp is one case operation of a sequence.
type modelOp struct {
	Kind string
	// Arg varies by kind: a goal/onward set, a consent level, a reason.
	Arg string
}

func (o modelOp) String() string {
	if o.Arg == "" {
		return o.Kind
	}
	return o.Kind + "(" + o.Arg + ")"
}

var modelKinds = []string{"accept", "decline", "start", "hold", "resume", "contact", "plan", "measure", "consent", "gp-cancel", "put-task", "complete", "fail",
	"agree", "reassign", "person-declines", "amend-contact", "withdraw-contact", "amend-measure", "withdraw-measure", "withdraw-goal"}

// newSequence draws a sequence of 2 to 12 operations, most starting with
// accept.
func newSequence(rng *rand.Rand) []modelOp {
	n := 2 + rng.IntN(11)
	ops := []modelOp{{Kind: "accept"}}
	if rng.IntN(8) == 0 {
		ops[0] = newOp(rng, modelKinds[rng.IntN(len(modelKinds))])
	}
	for len(ops) < n {
		k := modelKinds[rng.IntN(len(modelKinds))]
		// The case-record operations come more often than the endings.
		if rng.IntN(3) > 0 {
			k = []string{"contact", "plan", "plan", "measure", "consent"}[rng.IntN(5)]
		}
		ops = append(ops, newOp(rng, k))
	}
	return ops
}

// newOp draws the argument of an operation of kind k.
func newOp(rng *rand.Rand, k string) modelOp {
	op := modelOp{Kind: k}
	switch k {
	case "plan":
		// Which of four goals and two onward referrals the plan holds (a
		// bit mask): an edit adds some and removes others.
		op.Arg = strconv.Itoa(rng.IntN(64))
	case "consent":
		op.Arg = string([]linkbridge.ConsentLevel{linkbridge.ConsentFull, linkbridge.ConsentCodesOnly, linkbridge.ConsentNone}[rng.IntN(3)])
	case "complete", "fail":
		op.Arg = linkbridge.DischargeReasons[rng.IntN(len(linkbridge.DischargeReasons))]
	case "put-task":
		op.Arg = []string{"in-progress", "on-hold"}[rng.IntN(2)]
	case "measure":
		op.Arg = string([]linkbridge.Timepoint{linkbridge.TimepointBaseline, linkbridge.TimepointReview}[rng.IntN(2)])
	case "reassign":
		op.Arg = []string{"lw-1", "lw-2"}[rng.IntN(2)]
	}
	return op
}

// receive makes a new referral through the intake use case and returns its
// id and the person's NHS number.
func (e *modelEnv) receive(t *testing.T, rng *rand.Rand) (string, string) {
	t.Helper()
	ctx := context.Background()
	body, _ := e.gen.Next(nil, rng)
	res, err := e.codec.DecodeResource(body)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fhirmap.TransactionEntries(res.(*rpb.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.in.Receive(ctx, entries, "")
	if err != nil {
		t.Fatalf("intake: %v", err)
	}
	r, err := e.store.FindReferral(ctx, out.ServiceRequest.ID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.store.FindPerson(ctx, r.PersonID)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID, p.NHSNumber
}

// apply performs one operation. A refusal the case rules give (an illegal
// move, a precondition) is part of the model: the case is unchanged. Any
// other error fails the test.
func (e *modelEnv) apply(ctx context.Context, id string, op modelOp) error {
	lw := &linkbridge.LinkWorker{ID: "lw-1", Name: "Sam Okafor"}
	var err error
	switch op.Kind {
	case "accept":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: lw})
	case "decline":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "out-of-area"})
	case "start", "resume":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: op.Kind})
	case "hold":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionHold, Reason: "in hospital"})
	case "complete", "fail":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: op.Kind, ReasonCode: op.Arg, Reason: "closing", Summary: "Joined a walking group."})
	case "contact":
		_, err = e.svc.AddContact(ctx, id, 0, linkbridge.Contact{At: time.Now().UTC(), Mode: linkbridge.ContactPhone, Minutes: 20, Attended: true, Notes: "talked about the garden"})
	case "measure":
		tp := linkbridge.Timepoint(op.Arg)
		if tp == "" {
			tp = linkbridge.TimepointBaseline
		}
		_, err = e.svc.AddMeasure(ctx, id, 0, linkbridge.Measure{Instrument: linkbridge.ONS4, Timepoint: tp, Items: []int{5, 6, 4, 7}, TakenAt: time.Now().UTC()})
	case "agree":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAgree})
	case "reassign":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionReassign, LinkWorker: &linkbridge.LinkWorker{ID: op.Arg, Name: "Link worker " + op.Arg}})
	case "person-declines":
		_, err = e.svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: linkbridge.DeclinePerson})
	case "consent":
		_, err = e.svc.SetConsent(ctx, id, 0, linkbridge.ConsentLevel(op.Arg))
	case "amend-contact", "withdraw-contact", "amend-measure", "withdraw-measure", "withdraw-goal":
		err = e.correct(ctx, id, op.Kind)
	case "plan":
		mask, _ := strconv.Atoi(op.Arg)
		p := linkbridge.Plan{WhatMatters: "Getting out of the house"}
		for i := range 4 {
			if mask&(1<<i) != 0 {
				p.Goals = append(p.Goals, linkbridge.Goal{ID: fmt.Sprintf("%s-goal-%d", id, i), Description: fmt.Sprintf("Goal %d", i), Importance: 5 + i, Confidence: 6, Status: linkbridge.GoalActive})
			}
		}
		for i := range 2 {
			if mask&(1<<(4+i)) != 0 {
				p.OnwardReferrals = append(p.OnwardReferrals, linkbridge.OnwardReferral{ID: fmt.Sprintf("%s-onward-%d", id, i), Service: "Walking group", Status: "sent", SentAt: time.Now().UTC()})
			}
		}
		_, err = e.svc.SetPlan(ctx, id, 0, p)
	case "gp-cancel":
		var cur *linkbridge.Resource
		if cur, err = e.store.ReadResource(ctx, "ServiceRequest", id); err != nil {
			return err
		}
		msg, derr := e.codec.DecodeResource(cur.Body)
		if derr != nil {
			return derr
		}
		sr := msg.(*srpb.ServiceRequest)
		fhirmap.SetCode(sr.Status, "revoked")
		_, err = e.svc.Revoke(ctx, id, sr, 0, "")
	case "put-task":
		r, ferr := e.store.FindReferral(ctx, id)
		if ferr != nil {
			return ferr
		}
		cur, rerr := e.store.ReadResource(ctx, "Task", r.TaskID)
		if rerr != nil {
			return rerr
		}
		msg, derr := e.codec.DecodeResource(cur.Body)
		if derr != nil {
			return derr
		}
		task := msg.(*taskpb.Task)
		fhirmap.SetCode(task.Status, op.Arg)
		if op.Arg == "on-hold" {
			task.StatusReason = &dpb.CodeableConcept{Text: &dpb.String{Value: "Waiting for a home visit"}}
		}
		_, err = e.svc.UpdateTask(ctx, r.TaskID, task, linkbridge.ActorPerformer, 0)
	}
	switch linkbridge.ErrorCode(err) {
	case "", linkbridge.ECONFLICT, linkbridge.EUNPROCESSABLE, linkbridge.EPRECONDITION, linkbridge.EFORBIDDEN:
		return nil
	}
	return err
}

// correct amends or withdraws the case's first entry of the kind that
// stands (docs/domain.md#corrections); none is no operation.
func (e *modelEnv) correct(ctx context.Context, id, kind string) error {
	cr, err := e.svc.Get(ctx, id)
	if err != nil {
		return err
	}
	w := linkbridge.Withdrawal{Reason: "recorded in error"}
	switch kind {
	case "amend-contact", "withdraw-contact":
		i := slices.IndexFunc(cr.Contacts, func(c *linkbridge.Contact) bool { return !c.Withdrawn() })
		if i < 0 {
			return nil
		}
		c := cr.Contacts[i]
		if kind == "withdraw-contact" {
			_, err = e.svc.WithdrawContact(ctx, id, c.ID, 0, w)
			return err
		}
		_, err = e.svc.AmendContact(ctx, id, c.ID, 0, linkbridge.Contact{At: c.At.Add(-time.Minute), Mode: linkbridge.ContactVideo, Minutes: c.Minutes + 5, Attended: true})
	case "amend-measure", "withdraw-measure":
		i := slices.IndexFunc(cr.Measures, func(m *linkbridge.Measure) bool { return !m.Withdrawn() })
		if i < 0 {
			return nil
		}
		m := cr.Measures[i]
		if kind == "withdraw-measure" {
			_, err = e.svc.WithdrawMeasure(ctx, id, m.ID, 0, w)
			return err
		}
		_, err = e.svc.AmendMeasure(ctx, id, m.ID, 0, linkbridge.Measure{Instrument: m.Instrument, Timepoint: m.Timepoint, Items: []int{7, 7, 6, 2}, TakenAt: m.TakenAt})
	case "withdraw-goal":
		i := slices.IndexFunc(cr.Plan.Goals, func(g linkbridge.Goal) bool { return g.Status != linkbridge.GoalEnteredInError })
		if i < 0 {
			return nil
		}
		_, err = e.svc.WithdrawGoal(ctx, id, cr.Plan.Goals[i].ID, 0, w)
	}
	return err
}

// drain runs the relay until the outbox has nothing pending or inflight.
func (e *modelEnv) drain(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	if err := e.relay.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.relay.Stop()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := e.store.OutboxStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Counts[linkbridge.OutboxPending]+st.Counts[linkbridge.OutboxInflight] == 0 {
			return
		}
		if time.Now().After(deadline) {
			waiting, _ := e.store.ListOutbox(ctx, linkbridge.OutboxFilter{States: []linkbridge.OutboxState{linkbridge.OutboxPending}, Limit: 5})
			for _, m := range waiting {
				t.Logf("still pending: %s/%s v%d attempts=%d: %s", m.ResourceType, m.ResourceID, m.Version, m.Attempts, m.LastError)
			}
			t.Fatalf("outbox not drained in 2 minutes: %v", st.Counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gpGet reads a GP endpoint URL into a JSON document.
func (e *modelEnv) gpGet(u string) (int, map[string]any, error) {
	resp, err := http.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, doc, nil
}

// gpByKey returns the GP's copies of linkbridge's Type/id, found by its
// write-back key.
func (e *modelEnv) gpByKey(typ, id string) ([]map[string]any, error) {
	u := e.gpURL + "/" + typ + "?" + fhirmap.WritebackKeyParam(typ) + "=" + url.QueryEscape(fhirmap.Systems{}.WritebackToken(typ, id))
	status, doc, err := e.gpGet(u)
	if err != nil || status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %v", u, status, err)
	}
	var out []map[string]any
	entries, _ := doc["entry"].([]any)
	for _, en := range entries {
		if res, ok := en.(map[string]any)["resource"].(map[string]any); ok {
			out = append(out, res)
		}
	}
	return out, nil
}

// writebackKey is the write-back key a GP copy carries ("Type/id" of
// linkbridge's), "" when none.
func writebackKey(res map[string]any) string {
	ids, _ := res["identifier"].([]any)
	for _, i := range ids {
		if m, ok := i.(map[string]any); ok && m["system"] == fhirmap.WritebackIdentifierSystem {
			s, _ := m["value"].(string)
			return s
		}
	}
	meta, _ := res["meta"].(map[string]any)
	tags, _ := meta["tag"].([]any)
	for _, tg := range tags {
		if m, ok := tg.(map[string]any); ok && m["system"] == fhirmap.WritebackIdentifierSystem {
			s, _ := m["code"].(string)
			return s
		}
	}
	return ""
}

// normalise is a resource's content without what the endpoint owns (id,
// meta), with every literal reference replaced by resolve's answer (the
// write-back key of its target, unversioned).
func normalise(v any, resolve func(ref string) string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			if k == "reference" {
				if s, ok := val.(string); ok {
					out[k] = resolve(s)
					continue
				}
			}
			out[k] = normalise(val, resolve)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = normalise(val, resolve)
		}
		return out
	}
	return v
}

func topLevel(res map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range res {
		if k != "id" && k != "meta" {
			out[k] = v
		}
	}
	return out
}

// check compares the GP copy of one referral with the projection of its
// case and returns the first difference ("" when they agree). siblings are
// the person's other referrals: the GP record may hold what they wrote back.
func (e *modelEnv) check(ctx context.Context, id, nhs string, siblings ...string) string {
	cr, err := e.svc.Get(ctx, id)
	if err != nil {
		return "reading the case: " + err.Error()
	}
	msgs, err := e.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: id, Limit: 10000})
	if err != nil {
		return "reading the outbox: " + err.Error()
	}
	// The last message of each resource: what the GP record must hold.
	last := map[string]*linkbridge.OutboxMessage{}
	for _, m := range msgs {
		if m.State == linkbridge.OutboxDead {
			return fmt.Sprintf("%s/%s v%d dead-lettered: %d %s", m.ResourceType, m.ResourceID, m.Version, m.LastStatus, m.LastError)
		}
		k := m.ResourceType + "/" + m.ResourceID
		if p := last[k]; p == nil || m.ID > p.ID {
			last[k] = m
		}
	}
	// The projection: the view the consent allows, and the Task once it
	// has changed (the Task as received is the GP's own).
	view := map[string]member{}
	for _, g := range (fhirmap.Systems{}).CaseView(cr) {
		view[g.Reference()] = member{}
	}
	task, err := e.store.ReadResource(ctx, "Task", cr.Referral.TaskID)
	if err != nil {
		return err.Error()
	}
	if task.VersionID > 1 {
		view["Task/"+cr.Referral.TaskID] = member{}
	}
	for k := range view {
		if last[k] == nil {
			return k + " is in the case's view but was never written back"
		}
	}
	present := map[string]bool{}
	endpointKey := map[string]string{} // "Type/endpoint id" -> write-back key
	copies := map[string]map[string]any{}
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := last[k]
		typ, rid, _ := strings.Cut(k, "/")
		got, err := e.gpByKey(typ, rid)
		if err != nil {
			return err.Error()
		}
		gone := m.Erase && (e.delet || len(m.Body) == 0)
		switch {
		case len(got) > 1:
			return fmt.Sprintf("%s: the GP record holds %d copies", k, len(got))
		case gone && len(got) == 1 && !(len(m.Body) == 0 && !e.delet):
			return fmt.Sprintf("%s: consent withheld it, but the GP record still holds it", k)
		case !gone && len(got) == 0:
			return fmt.Sprintf("%s: not on the GP record (last message %d, %s)", k, m.ID, m.State)
		}
		if len(got) == 1 {
			present[k] = true
			copies[k] = got[0]
			endpointKey[typ+"/"+got[0]["id"].(string)] = k
		}
		if _, inView := view[k]; !inView && typ != "Provenance" && !m.Erase {
			// Not in the view: a withdrawn goal or onward referral, which
			// the GP record keeps as cancelled or revoked.
			if typ != "Goal" && typ != "ServiceRequest" {
				return fmt.Sprintf("%s: on the GP record but not in the case's view", k)
			}
		}
		if m.Erase || typ == "Provenance" {
			continue
		}
		cur, err := e.store.ReadResource(ctx, typ, rid)
		if err != nil {
			return err.Error()
		}
		if cur.VersionID != m.Version {
			return fmt.Sprintf("%s: the store is at version %d but the last write-back is version %d", k, cur.VersionID, m.Version)
		}
	}
	// Content: every GP copy equals the last write-back, references
	// compared by their targets' write-back keys; every literal reference
	// resolves on the GP endpoint.
	for _, k := range keys {
		gpRes, ok := copies[k]
		if !ok || len(last[k].Body) == 0 {
			continue // an erase with nothing to write: the endpoint keeps what it had
		}
		var unresolved string
		resolveGP := func(ref string) string {
			parts := strings.Split(ref, "/")
			if len(parts) < 2 || parts[0] == "Patient" {
				return ref
			}
			key, ok := endpointKey[parts[0]+"/"+parts[1]]
			if !ok {
				status, _, _ := e.gpGet(e.gpURL + "/" + ref)
				if status != http.StatusOK {
					unresolved = fmt.Sprintf("%s: reference %s does not resolve on the GP endpoint (%d)", k, ref, status)
				}
				return "?" + ref
			}
			return key
		}
		got := normalise(topLevel(gpRes), resolveGP)
		if unresolved != "" {
			return unresolved
		}
		var sent map[string]any
		if err := json.Unmarshal(last[k].Body, &sent); err != nil {
			return err.Error()
		}
		want := normalise(topLevel(sent), func(ref string) string {
			parts := strings.Split(ref, "/")
			if len(parts) < 2 {
				return ref
			}
			return parts[0] + "/" + parts[1]
		})
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			return fmt.Sprintf("%s: the GP copy differs from the case\n got %s\nwant %s", k, g, w)
		}
	}
	// Nothing else of the person's: every GP resource that names the
	// person is one of the present copies (or a sibling referral's).
	for _, sib := range siblings {
		msgs, err := e.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: sib, Limit: 10000})
		if err != nil {
			return "reading the outbox: " + err.Error()
		}
		for _, m := range msgs {
			present[m.ResourceType+"/"+m.ResourceID] = true
		}
	}
	for _, typ := range []string{"Task", "CarePlan", "Goal", "Encounter", "Observation", "Procedure", "ServiceRequest"} {
		status, doc, err := e.gpGet(e.gpURL + "/" + typ + "?patient:identifier=" + url.QueryEscape(linkbridge.NHSNumberSystem+"|"+nhs))
		if err != nil || status != http.StatusOK {
			return fmt.Sprintf("search %s by patient: %d %v", typ, status, err)
		}
		entries, _ := doc["entry"].([]any)
		for _, en := range entries {
			res, _ := en.(map[string]any)["resource"].(map[string]any)
			if key := writebackKey(res); !present[key] {
				return fmt.Sprintf("the GP record holds %s/%v (key %q), which the case does not project", typ, res["id"], key)
			}
		}
	}
	if cr.Referral.Consent == linkbridge.ConsentNone {
		for k := range present {
			typ, _, _ := strings.Cut(k, "/")
			if typ != "Task" && typ != "Provenance" && e.delet {
				return fmt.Sprintf("%s: consent is none, but the GP record holds it", k)
			}
		}
	}
	return ""
}

// member is a set member.
type member struct{}

// runModel runs the sequences on a fresh environment and returns the index
// and failure of the first referral whose GP copy differs.
func runModel(t *testing.T, backend string, gp modelGP, seqs [][]modelOp, seed uint64) (int, string) {
	t.Helper()
	start := time.Now()
	e := newModelEnv(t, backend, gp)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0))
	ids := make([]string, len(seqs))
	nhs := make([]string, len(seqs))
	for i := range seqs {
		ids[i], nhs[i] = e.receive(t, rng)
	}
	// Interleave the sequences: operation j of every referral, then j+1,
	// so the relay delivers many people's changes at once.
	for j := 0; ; j++ {
		more := false
		for i, s := range seqs {
			if j < len(s) {
				more = true
				if err := e.apply(ctx, ids[i], s[j]); err != nil {
					t.Fatalf("sequence %d op %d %s: %v", i, j, s[j], err)
				}
			}
		}
		if !more {
			break
		}
	}
	applied := time.Now()
	e.drain(t)
	drained := time.Now()
	defer func() {
		t.Logf("%d sequences: applied in %s, drained in %s, checked in %s", len(seqs), applied.Sub(start).Round(time.Millisecond),
			drained.Sub(applied).Round(time.Millisecond), time.Since(drained).Round(time.Millisecond))
	}()
	for i := range seqs {
		if msg := e.check(ctx, ids[i], nhs[i]); msg != "" {
			return i, msg
		}
	}
	return -1, ""
}

// TestWriteBackModel: at least 200 seeded random sequences of case
// operations on each backend, delivered to the strict reference GP; after
// the drain the GP copy equals the projection of the case. On failure it
// prints the seed and the shortest failing prefix of the failing sequence.
func TestWriteBackModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	for _, tc := range []struct {
		name, backend string
		gp            modelGP
		n             int
	}{
		{"sqlite", "sqlite", modelGP{}, modelSequences()},
		{"postgres", "postgres", modelGP{}, modelSequences()},
		// An endpoint without delete: withheld versions.
		{"sqlite/no-delete", "sqlite", modelGP{noDelete: true}, modelSequences() / 5},
		// The create mode (search, POST, PUT by the endpoint's id), forced.
		{"sqlite/create-mode", "sqlite", modelGP{mode: gpfhir.ModeCreate}, modelSequences() / 5},
		// The lenient reference GP: client ids (updateCreate).
		{"sqlite/client-ids", "sqlite", modelGP{lenient: true}, modelSequences() / 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.backend == "postgres" {
				pgtest.ServerURL(t)
			}
			rng := rand.New(rand.NewPCG(seed, 1))
			seqs := make([][]modelOp, tc.n)
			for i := range seqs {
				seqs[i] = newSequence(rng)
			}
			i, msg := runModel(t, tc.backend, tc.gp, seqs, seed)
			if i < 0 {
				return
			}
			// Shrink: the shortest prefix of the failing sequence that
			// still fails on its own.
			shortest := seqs[i]
			for n := 1; n < len(seqs[i]); n++ {
				if j, m := runModel(t, tc.backend, tc.gp, [][]modelOp{seqs[i][:n]}, seed); j >= 0 {
					shortest, msg = seqs[i][:n], m
					break
				}
			}
			t.Fatalf("seed %d (rerun: go test ./outbox -run TestWriteBackModel -model.seed %d): sequence %d fails; shortest failing sequence %v:\n%s",
				seed, seed, i, shortest, msg)
		})
	}
}
