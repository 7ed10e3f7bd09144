package intake_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/casework"
	"github.com/linkbridge/linkbridge/fhirmap"
	"github.com/linkbridge/linkbridge/intake"
)

// reindexEnv is a real SQLite store holding a referral received by intake
// and worked by casework: its Patient, ServiceRequest, Task, CarePlan,
// Goals, Encounters and Observations, indexed as the gateway indexes them.
type reindexEnv struct {
	store *sqlite.DB
	codec *fhirjson.Codec
}

func newReindexEnv(t *testing.T) *reindexEnv {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "linkbridge.db"), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join("..", "testdata", "fhir", "r4", "bundle-referral-transaction.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := codec.DecodeResource(body)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fhirmap.TransactionEntries(res.(*rpb.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	var seq atomic.Int64
	newID := func() string { return fmt.Sprintf("id-%d", seq.Add(1)) }
	in := &intake.Service{Store: store, Codec: codec, Logger: logger, NewID: newID}
	r, err := in.Receive(ctx, entries, "")
	if err != nil {
		t.Fatalf("intake: %v", err)
	}
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	svc := &casework.Service{Store: store, Cases: store, Codec: codec, Logger: logger, NewID: newID,
		Now: func() time.Time { return now.Add(time.Duration(seq.Load()) * time.Second) }}
	id := r.Referral.ID
	lw := linkbridge.LinkWorker{ID: "lw-1"}
	if _, err := svc.Act(ctx, id, 0, linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw}); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if _, err := svc.AddContact(ctx, id, 0, linkbridge.Contact{At: now, Mode: linkbridge.ContactPhone, Minutes: 20, Attended: true}); err != nil {
		t.Fatalf("contact: %v", err)
	}
	plan := linkbridge.Plan{WhatMatters: "Getting out", Goals: []linkbridge.Goal{
		{Description: "Join a walking group", Importance: 8, Confidence: 6, Status: "active"},
		{Description: "See a debt adviser", Importance: 9, Confidence: 5, Status: "achieved"},
	}}
	if _, err := svc.SetPlan(ctx, id, 0, plan); err != nil {
		t.Fatalf("plan: %v", err)
	}
	if _, err := svc.AddMeasure(ctx, id, 0, linkbridge.Measure{Instrument: linkbridge.ONS4, Timepoint: linkbridge.TimepointBaseline,
		Items: []int{5, 6, 4, 7}, TakenAt: now}); err != nil {
		t.Fatalf("measure: %v", err)
	}
	return &reindexEnv{store: store, codec: codec}
}

// goals returns the ids of the Goals a search by lifecycle-status finds.
func (e *reindexEnv) goals(t *testing.T, status string) []string {
	t.Helper()
	res, err := e.store.SearchResources(context.Background(), &linkbridge.ResourceQuery{Type: "Goal", Count: 10,
		Params: []linkbridge.ParamFilter{{Name: "lifecycle-status", Values: []string{status}}}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res.Resources {
		out = append(out, r.ID)
	}
	return out
}

// TestReindexAgreesWithWrites: the index the gateway writes is the one
// Reindex computes from the stored bodies, resource by resource (so a
// re-index of a current store changes nothing), and the version is
// recorded once the pass is complete.
func TestReindexAgreesWithWrites(t *testing.T) {
	e := newReindexEnv(t)
	ctx := context.Background()
	st, err := intake.Reindex(ctx, e.store, e.codec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Scanned < 8 || st.Reindexed != 0 || st.Skipped != 0 {
		t.Fatalf("Reindex of a store written by this table = %+v; want every resource scanned (at least 8) and none changed", st)
	}
	if v, _ := e.store.SearchIndexVersion(ctx); v != fhirmap.SearchIndexVersion() {
		t.Fatalf("index version after Reindex = %q, want %q", v, fhirmap.SearchIndexVersion())
	}
	if st, err := intake.Reindex(ctx, e.store, e.codec, nil); err != nil || st.Scanned != 0 {
		t.Fatalf("second Reindex = %+v, %v; want nothing scanned", st, err)
	}
}

// TestReindexAddsNewParameters: a store indexed by an older table, which
// had no Goal lifecycle-status (as before issue 13), finds no Goal by it;
// after Reindex it finds each by its status, and only those changed.
func TestReindexAddsNewParameters(t *testing.T) {
	e := newReindexEnv(t)
	ctx := context.Background()
	if err := e.store.SetSearchIndexVersion(ctx, "older-table"); err != nil {
		t.Fatal(err)
	}
	// Take lifecycle-status out of every Goal's index.
	page, err := e.store.CurrentResources(ctx, "Goal", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	old := 0
	for _, r := range page {
		if r.Type != "Goal" {
			continue
		}
		var keep []linkbridge.SearchParam
		for _, p := range r.Params {
			if !strings.HasPrefix(p.Name, "lifecycle-status") {
				keep = append(keep, p)
			}
		}
		r.Params = keep
		if ok, err := e.store.ReindexResource(ctx, r); err != nil || !ok {
			t.Fatalf("simulate the older index of %s: %v, %v", r.Reference(), ok, err)
		}
		old++
	}
	if old != 2 {
		t.Fatalf("the case has %d Goals, want 2", old)
	}
	if got := e.goals(t, "active"); len(got) != 0 {
		t.Fatalf("older index: lifecycle-status=active found %v", got)
	}
	// ScanIndex finds the two Goals that would change and writes nothing;
	// with a limit it stops there.
	all, err := intake.ScanIndex(ctx, e.store, e.codec, 0)
	if err != nil || all.Scanned < 8 || all.Reindexed != 2 {
		t.Fatalf("ScanIndex = %+v, %v; want every resource scanned and the 2 Goals counted", all, err)
	}
	if got := e.goals(t, "active"); len(got) != 0 {
		t.Fatalf("ScanIndex wrote the index: lifecycle-status=active found %v", got)
	}
	if v, _ := e.store.SearchIndexVersion(ctx); v != "older-table" {
		t.Fatalf("ScanIndex recorded index version %q", v)
	}
	if some, err := intake.ScanIndex(ctx, e.store, e.codec, 3); err != nil || some.Scanned != 3 {
		t.Fatalf("ScanIndex with limit 3 = %+v, %v; want 3 scanned", some, err)
	}
	st, err := intake.Reindex(ctx, e.store, e.codec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Reindexed != 2 || st.Skipped != 0 {
		t.Fatalf("Reindex = %+v; want the 2 Goals re-indexed", st)
	}
	if got := e.goals(t, "active"); len(got) != 1 {
		t.Errorf("after Reindex: lifecycle-status=active found %v, want one Goal", got)
	}
	if got := e.goals(t, "completed"); len(got) != 1 {
		t.Errorf("after Reindex: lifecycle-status=completed found %v, want one Goal", got)
	}
}
