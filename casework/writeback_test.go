package casework_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/casework"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/intake"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// referralTxn is a complete referral transaction from the shared corpus.
var referralTxn = filepath.Join("..", "testdata", "fhir", "r4", "bundle-referral-transaction.json")

// benchCase is a case in progress on a real SQLite store: accepted by a
// link worker, with full consent, four contacts and four outcome measures,
// and a casework.Service that writes every change back.
type benchCase struct {
	svc   *casework.Service
	store *sqlite.DB
	id    string
}

// newBenchCase receives the corpus referral through the FHIR API, then
// builds the case with the casework service.
func newBenchCase(tb testing.TB) *benchCase {
	tb.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "linkbridge.db"), logger)
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	codec, err := fhirjson.New()
	if err != nil {
		tb.Fatal(err)
	}
	body, err := os.ReadFile(referralTxn)
	if err != nil {
		tb.Fatal(err)
	}
	// The referral arrives as a GP sends it, through the intake use case.
	res, err := codec.DecodeResource(body)
	if err != nil {
		tb.Fatal(err)
	}
	entries, err := fhirmap.TransactionEntries(res.(*rpb.Bundle))
	if err != nil {
		tb.Fatal(err)
	}
	var seq atomic.Int64
	in := &intake.Service{Store: store, Codec: codec, Logger: logger, NewID: func() string { return fmt.Sprintf("in-%d", seq.Add(1)) }}
	if _, err := in.Receive(ctx, entries, ""); err != nil {
		tb.Fatalf("intake: %v", err)
	}
	refs, _, err := store.ListReferrals(ctx, linkbridge.ReferralFilter{Limit: 10})
	if err != nil || len(refs) != 1 {
		tb.Fatalf("ListReferrals = %d, %v; want the one referral", len(refs), err)
	}
	var n atomic.Int64
	// The link worker records the case on 1 December: acceptance and
	// contacts back to 21 November.
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	clock := now.AddDate(0, 0, 10)
	svc := &casework.Service{
		Store: store, Cases: store, Codec: codec, Logger: logger,
		Now:       func() time.Time { return clock.Add(time.Duration(n.Load()) * time.Second) },
		NewID:     func() string { return fmt.Sprintf("id-%d", n.Add(1)) },
		WriteBack: true,
	}
	c := &benchCase{svc: svc, store: store, id: refs[0].ID}
	lw := linkbridge.LinkWorker{ID: "lw-0042", Name: "Sam Okafor"}
	if _, err := svc.Act(ctx, c.id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw, At: &now}); err != nil {
		tb.Fatalf("accept: %v", err)
	}
	if _, err := svc.SetConsent(ctx, c.id, 0, linkbridge.ConsentFull); err != nil {
		tb.Fatalf("consent: %v", err)
	}
	modes := []linkbridge.ContactMode{linkbridge.ContactPhone, linkbridge.ContactFaceToFace, linkbridge.ContactVideo, linkbridge.ContactGroup}
	for i, m := range modes {
		ct := linkbridge.Contact{At: now.Add(time.Duration(i) * 24 * time.Hour), Mode: m, Minutes: 30 + 5*i, Attended: true}
		if i == 2 {
			ct.Minutes, ct.Attended = 0, false // did not attend
		}
		if _, err := svc.AddContact(ctx, c.id, 0, ct); err != nil {
			tb.Fatalf("contact: %v", err)
		}
	}
	for _, m := range []linkbridge.Measure{
		{Instrument: linkbridge.SWEMWBS, Timepoint: linkbridge.TimepointBaseline, Items: []int{2, 3, 3, 2, 3, 2, 3}},
		{Instrument: linkbridge.ONS4, Timepoint: linkbridge.TimepointBaseline, Items: []int{5, 6, 4, 7}},
		// No UCLA3 baseline: TestLateBaselineWriteBackOrder records one late
		// (a second baseline would be refused).
		{Instrument: linkbridge.WEMWBS, Timepoint: linkbridge.TimepointBaseline, Items: []int{3, 3, 2, 3, 3, 2, 3, 3, 2, 3, 3, 2, 3, 3}},
	} {
		m.TakenAt = now
		if _, err := svc.AddMeasure(ctx, c.id, 0, m); err != nil {
			tb.Fatalf("measure: %v", err)
		}
	}
	return c
}

// benchPlan is a plan with three goals, two actions, an onward referral and
// a signpost; odd flips the first goal's status and an action's status, so
// consecutive plans differ in the CarePlan and one Goal.
func benchPlan(odd bool) linkbridge.Plan {
	status, action := linkbridge.GoalActive, "scheduled"
	if odd {
		status, action = linkbridge.GoalOnHold, "in-progress"
	}
	sent := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	return linkbridge.Plan{
		WhatMatters: "Getting back to the allotment with my neighbour",
		Goals: []linkbridge.Goal{
			{ID: "goal-1", Description: "Join the Tuesday walking group", Importance: 8, Confidence: 6, Status: status},
			{ID: "goal-2", Description: "Meet my old colleague for coffee every week", Importance: 9, Confidence: 4, Status: linkbridge.GoalActive},
			{ID: "goal-3", Description: "Sort out the pension credit claim", Importance: 10, Confidence: 7, Status: linkbridge.GoalActive},
		},
		Actions: []linkbridge.PlanAction{
			{ID: "action-1", Description: "Ring the walking group leader", Due: "2026-12-05", Status: action},
			{ID: "action-2", Description: "Find a tablet loan scheme", Status: "not-started"},
		},
		OnwardReferrals: []linkbridge.OnwardReferral{{ID: "onward-1", Service: "Age UK Befriending", OrganisationODS: "X9A3B", Status: "sent", SentAt: sent}},
		Signposts:       []linkbridge.Signpost{{ID: "signpost-1", To: "Citizens Advice", At: sent}},
	}
}

// BenchmarkCaseChangeWriteBack applies a plan change with write-back on to
// a case of 4 contacts and 4 measures on SQLite: the view is regenerated
// (14 resources and the Task compared with their stored versions), the
// CarePlan and one Goal get new versions, and each is queued for the GP
// record with a Provenance, in one transaction.
func BenchmarkCaseChangeWriteBack(b *testing.B) {
	c := newBenchCase(b)
	ctx := context.Background()
	if _, err := c.svc.SetPlan(ctx, c.id, 0, benchPlan(false)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	i := 0
	for b.Loop() {
		i++
		if _, err := c.svc.SetPlan(ctx, c.id, 0, benchPlan(i%2 == 1)); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time is steadier than wall time on a shared machine, where the
	// wall time also waits for fsync and for other processes.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(i), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCaseChangeWriteBack: the benchmark's change writes back exactly the
// resources whose content changed (the CarePlan and the first Goal), then
// the Provenance naming them; the unchanged view and Task stay as stored.
func TestCaseChangeWriteBack(t *testing.T) {
	t.Parallel()
	c := newBenchCase(t)
	ctx := context.Background()
	if _, err := c.svc.SetPlan(ctx, c.id, 0, benchPlan(false)); err != nil {
		t.Fatal(err)
	}
	before, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.svc.SetPlan(ctx, c.id, 0, benchPlan(true))
	if err != nil {
		t.Fatal(err)
	}
	after, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, m := range before {
		seen[m.ID] = true
	}
	var got []string
	for _, m := range after {
		if !seen[m.ID] {
			got = append(got, fmt.Sprintf("%s/%s", m.ResourceType, m.ResourceID))
		}
	}
	want := []string{"CarePlan/careplan-" + c.id, "Goal/goal-1", "Provenance/" + fmt.Sprintf("%s-v%d", c.id, cr.Referral.Version)}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("write-backs of a plan change = %v, want %v", got, want)
	}
}

// TestConsentWithdrawnErases: consent lowered to none withholds the whole
// FHIR view on the GP record. The change writes the Task first (it stops
// naming the outputs), then erases the Provenance of every earlier change,
// then the CarePlan before the resources it lists, and every goal and
// onward referral a plan ever listed (a withdrawn goal too); each erased
// resource gets a withheld version (entered-in-error, no content) in the
// store, which is the body an endpoint without delete receives. Consent
// given again writes the full resources back.
func TestConsentWithdrawnErases(t *testing.T) {
	t.Parallel()
	c := newBenchCase(t)
	ctx := context.Background()
	if _, err := c.svc.SetPlan(ctx, c.id, 0, benchPlan(false)); err != nil {
		t.Fatal(err)
	}
	// A plan without its third goal: goal-3 is withdrawn (cancelled).
	p := benchPlan(false)
	p.Goals = p.Goals[:2]
	if _, err := c.svc.SetPlan(ctx, c.id, 0, p); err != nil {
		t.Fatal(err)
	}
	before, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.svc.SetConsent(ctx, c.id, 0, linkbridge.ConsentNone)
	if err != nil {
		t.Fatal(err)
	}
	after, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, m := range before {
		seen[m.ID] = true
	}
	var msgs []*linkbridge.OutboxMessage
	for _, m := range after {
		if !seen[m.ID] {
			msgs = append(msgs, m)
		}
	}
	slices.SortFunc(msgs, func(a, b *linkbridge.OutboxMessage) int { return int(a.ID - b.ID) })
	if len(msgs) < 3 || msgs[0].ResourceType != "Task" || msgs[0].Erase {
		t.Fatalf("first write-back = %+v, want the Task's new version", msgs[0])
	}
	if last := msgs[len(msgs)-1]; last.ResourceType != "Provenance" || last.Erase {
		t.Errorf("last write-back = %s/%s erase=%v, want this change's Provenance", last.ResourceType, last.ResourceID, last.Erase)
	}
	erased := map[string]bool{}
	order := []string{}
	for _, m := range msgs[1 : len(msgs)-1] {
		if !m.Erase {
			t.Errorf("%s/%s is written, not erased", m.ResourceType, m.ResourceID)
		}
		erased[m.ResourceType+"/"+m.ResourceID] = true
		order = append(order, m.ResourceType)
	}
	for _, want := range []string{"CarePlan/careplan-" + c.id, "Goal/goal-1", "Goal/goal-3", "Procedure/accepted-" + c.id,
		fmt.Sprintf("Provenance/%s-v%d", c.id, cr.Referral.Version-1)} {
		if !erased[want] {
			t.Errorf("%s not erased; erased %v", want, order)
		}
	}
	cp := slices.Index(order, "CarePlan")
	if i := slices.Index(order, "Goal"); cp < 0 || i < cp || slices.Index(order, "Provenance") > cp {
		t.Errorf("erase order %v: want the Provenances, then the CarePlan, then what it lists", order)
	}
	goal, err := c.store.ReadResource(ctx, "Goal", "goal-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(goal.Body), `"entered-in-error"`) || strings.Contains(string(goal.Body), "achievementStatus") {
		t.Errorf("withheld Goal = %s, want entered-in-error and no content", goal.Body)
	}
	// Consent given again: the full resources come back as new versions.
	if _, err := c.svc.SetConsent(ctx, c.id, 0, linkbridge.ConsentFull); err != nil {
		t.Fatal(err)
	}
	goal2, err := c.store.ReadResource(ctx, "Goal", "goal-1")
	if err != nil {
		t.Fatal(err)
	}
	if goal2.VersionID != goal.VersionID+1 || strings.Contains(string(goal2.Body), "entered-in-error") {
		t.Errorf("Goal after consent given again = v%d %s, want v%d with its content", goal2.VersionID, goal2.Body, goal.VersionID+1)
	}
}

// TestLateBaselineWriteBackOrder: a baseline recorded after a follow-up it
// precedes in time gives the follow-up its change from baseline (a new
// version naming the baseline in derivedFrom). The change queues the
// baseline's Observation before the follow-up's new version, so the GP
// endpoint holds the target of derivedFrom before the reference to it
// (the relay waits for a reference's target: in the other order the
// follow-up would wait behind itself).
func TestLateBaselineWriteBackOrder(t *testing.T) {
	t.Parallel()
	c := newBenchCase(t)
	ctx := context.Background()
	taken := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	cr, err := c.svc.AddMeasure(ctx, c.id, 0, linkbridge.Measure{Instrument: linkbridge.UCLA3, Timepoint: linkbridge.TimepointFinal, Items: []int{1, 2, 1}, TakenAt: taken})
	if err != nil {
		t.Fatal(err)
	}
	final := cr.Measures[len(cr.Measures)-1].ID
	before, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	cr, err = c.svc.AddMeasure(ctx, c.id, 0, linkbridge.Measure{Instrument: linkbridge.UCLA3, Timepoint: linkbridge.TimepointBaseline, Items: []int{3, 3, 2}, TakenAt: taken.AddDate(0, 0, -1)})
	if err != nil {
		t.Fatal(err)
	}
	baseline := cr.Measures[len(cr.Measures)-1].ID
	after, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, m := range before {
		seen[m.ID] = true
	}
	var got []string
	var followUp *linkbridge.OutboxMessage
	slices.SortFunc(after, func(a, b *linkbridge.OutboxMessage) int { return int(a.ID - b.ID) })
	for _, m := range after {
		if seen[m.ID] || m.ResourceType != "Observation" {
			continue
		}
		got = append(got, fmt.Sprintf("%s/%s v%d", m.ResourceType, m.ResourceID, m.Version))
		if m.ResourceID == final {
			followUp = m
		}
	}
	want := []string{"Observation/" + baseline + " v1", "Observation/" + final + " v2"}
	if !slices.Equal(got, want) {
		t.Fatalf("Observation write-backs = %v, want %v (the baseline first)", got, want)
	}
	if !bytes.Contains(followUp.Body, []byte(`"derivedFrom":[{"reference":"Observation/`+baseline+`"}]`)) ||
		!bytes.Contains(followUp.Body, []byte(`"code":"change-from-baseline"`)) {
		t.Errorf("follow-up write-back = %s, want its change and derivedFrom the baseline", followUp.Body)
	}
}

// TestDNAEntryFollowsCorrections: a contact not attended has its coded
// DNA Observation; amended to attended, that Observation becomes
// entered-in-error (a new version, written back), as it does for a
// withdrawn one (docs/domain.md#corrections).
func TestDNAEntryFollowsCorrections(t *testing.T) {
	t.Parallel()
	c := newBenchCase(t)
	ctx := context.Background()
	cr, err := c.svc.Get(ctx, c.id)
	if err != nil {
		t.Fatal(err)
	}
	var dna *linkbridge.Contact
	for _, ct := range cr.Contacts {
		if !ct.Attended {
			dna = ct
		}
	}
	if dna == nil {
		t.Fatal("the bench case has no DNA contact")
	}
	status := func() (string, int) {
		t.Helper()
		r, err := c.store.ReadResource(ctx, "Observation", fhirmap.DNAID(dna.ID))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Status string `json:"status"`
			Code   struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"code"`
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Code.Coding) == 0 || doc.Code.Coding[0].Code != fhirmap.SCTDidNotAttend {
			t.Fatalf("DNA entry codes %v", doc.Code.Coding)
		}
		return doc.Status, r.VersionID
	}
	if s, v := status(); s != "final" || v != 1 {
		t.Fatalf("DNA entry = %s v%d, want final v1", s, v)
	}
	amended := *dna
	amended.Attended, amended.Minutes = true, 25
	if _, err := c.svc.AmendContact(ctx, c.id, dna.ID, 0, amended); err != nil {
		t.Fatal(err)
	}
	if s, v := status(); s != "entered-in-error" || v != 2 {
		t.Fatalf("DNA entry after the contact was amended to attended = %s v%d, want entered-in-error v2", s, v)
	}
	msgs, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	written := false
	for _, m := range msgs {
		written = written || m.ResourceType == "Observation" && m.ResourceID == fhirmap.DNAID(dna.ID) && m.Version == 2
	}
	if !written {
		t.Error("the withdrawn DNA entry was not queued for the GP record")
	}
}

// TestConsentWithdrawnErasesReferrersFirst: when consent is withdrawn, a
// follow-up measure (derivedFrom its baseline) and a DNA entry (naming its
// Encounter) are erased before what they reference, so that an endpoint
// enforcing references lets each delete through.
func TestConsentWithdrawnErasesReferrersFirst(t *testing.T) {
	t.Parallel()
	c := newBenchCase(t)
	ctx := context.Background()
	cr, err := c.svc.AddMeasure(ctx, c.id, 0, linkbridge.Measure{Instrument: linkbridge.SWEMWBS, Timepoint: linkbridge.TimepointReview,
		Items: []int{3, 3, 3, 3, 3, 3, 3}, TakenAt: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var baseline, review, dna, encounter string
	for _, m := range cr.Measures {
		if m.Instrument == linkbridge.SWEMWBS {
			if m.Timepoint == linkbridge.TimepointBaseline {
				baseline = "Observation/" + m.ID
			} else {
				review = "Observation/" + m.ID
			}
		}
	}
	for _, ct := range cr.Contacts {
		if !ct.Attended {
			dna, encounter = "Observation/"+fhirmap.DNAID(ct.ID), "Encounter/"+ct.ID
		}
	}
	if _, err := c.svc.SetConsent(ctx, c.id, 0, linkbridge.ConsentNone); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.store.ListOutbox(ctx, linkbridge.OutboxFilter{ReferralID: c.id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// In the order enqueued (ListOutbox answers newest first).
	slices.SortFunc(msgs, func(a, b *linkbridge.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	pos := map[string]int{}
	for i, m := range msgs {
		if m.Erase {
			pos[m.ResourceType+"/"+m.ResourceID] = i + 1
		}
	}
	for _, pair := range [][2]string{{review, baseline}, {dna, encounter}} {
		if pos[pair[0]] == 0 || pos[pair[1]] == 0 || pos[pair[0]] > pos[pair[1]] {
			t.Errorf("erase of %s at %d, of %s at %d: want the referrer first", pair[0], pos[pair[0]], pair[1], pos[pair[1]])
		}
	}
}
