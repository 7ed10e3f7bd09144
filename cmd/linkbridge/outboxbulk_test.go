package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/gpfhir/gpfhirtest"
	"github.com/linkbridge/linkbridge/conformance"
)

// TestOutboxBulkRetry is the expired-credential morning: the GP endpoint
// refuses writes for good, so write-backs are
// dead-lettered (one per scripted refusal). The operator counts them (nothing changes without
// --yes), retries one person's, then the rest by time, and everything
// reaches the GP record.
func TestOutboxBulkRetry(t *testing.T) {
	t.Parallel()
	people := map[string]string{} // NHS number -> GP patient id
	for i, first9 := range []string{"943476591", "943476592", "943476593"} {
		d, ok := linkbridge.NHSCheckDigit(first9)
		if !ok {
			continue
		}
		people[fmt.Sprintf("%s%d", first9, d)] = fmt.Sprintf("gp-pat-%d", i)
	}
	if len(people) < 2 {
		t.Fatalf("want two valid NHS numbers, have %v", people)
	}
	gp, err := gpfhirtest.New(gpfhirtest.Options{Patients: people})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gp.Close)
	oo := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"security","diagnostics":"client credential expired"}]}`
	for range people {
		gp.Script(gpfhirtest.Reply{Status: 400, Body: oo})
	}
	db := filepath.Join(t.TempDir(), "lb.db")
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(withReady(context.Background(), ready))
	logs := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"serve", "--create-db", "--dev", "--addr", "127.0.0.1:0", "--db", db, "--service-ods", "Y02662",
			"--gp-base", gp.URL + "/fhir", "--gp-timeout", "2s", "--rescue-after", "5s", "--log-level", "warn"}, noEnv, logs, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var addr string
	select {
	case addr = <-ready:
	case err := <-errc:
		t.Fatalf("serve: %v\n%s", err, logs)
	}
	g := &gatewayClient{t: t, base: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
	deadline := time.Now().Add(60 * time.Second)
	var ids []string
	n := 0
	for nhs := range people {
		n++
		req, _ := http.NewRequest(http.MethodPost, g.base+"/fhir", bytes.NewReader(conformance.TransactionReferral(nhs, fmt.Sprintf("bulk-%d", n), "Y02662")))
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := g.client.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("referral: %v %v", resp, err)
		}
		_ = resp.Body.Close()
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if st, _ := g.do(http.MethodGet, "/sp/v1/referrals?service=Y02662", "", nil, &page); st != 200 || len(page.Items) != len(people) {
		t.Fatalf("inbox = %d, %+v", st, page)
	}
	for _, it := range page.Items {
		ids = append(ids, it.ID)
		g.change(it.ID, "POST", "/sp/v1/referrals/"+it.ID+"/actions", map[string]any{"action": "accept", "linkWorker": map[string]string{"id": "lw-1"}}, deadline)
	}

	outbox := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"outbox"}, append(args, "--db", db)...), noEnv, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	type row struct {
		ID       int64  `json:"id"`
		OrderKey string `json:"orderKey"`
		State    string `json:"state"`
	}
	deadRows := func() []row {
		out, err := outbox("list", "--state", "dead", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var rows []row
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return rows
	}
	var dead []row
	for time.Now().Before(deadline) {
		if dead = deadRows(); len(dead) == len(people) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(dead) != len(people) {
		t.Fatalf("dead letters = %+v, want one per scripted refusal (%d)", dead, len(people))
	}
	ofFirst := 0 // the dead messages of the first one's person
	for _, d := range dead {
		if d.OrderKey == dead[0].OrderKey {
			ofFirst++
		}
	}

	// No filter: refused, saying what to add.
	if out, err := outbox("retry", "--state", "dead"); err == nil || !strings.Contains(err.Error(), "--all") {
		t.Fatalf("retry --state dead without a filter = %v %s", err, out)
	}
	// Without --yes: a count, nothing changed.
	out, err := outbox("retry", "--state", "dead", "--all")
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d dead messages would be queued", len(people))) || !strings.Contains(out, "--yes") {
		t.Fatalf("dry run = %v %q", err, out)
	}
	if got := deadRows(); len(got) != len(people) {
		t.Fatalf("the dry run changed the outbox: %d dead, want %d", len(got), len(people))
	}
	// One person's, the flags after the subcommand's own.
	out, err = outbox("retry", "--person", dead[0].OrderKey, "--state", "dead", "--yes")
	if want := fmt.Sprintf("%d dead messages queued", ofFirst); err != nil || !strings.HasPrefix(out, want) {
		t.Fatalf("retry --person = %v %q", err, out)
	}
	// The rest, by time.
	out, err = outbox("retry", "--state", "dead", "--since", "1h", "--yes")
	if want := fmt.Sprintf("%d dead messages queued", len(people)-ofFirst); err != nil || !strings.HasPrefix(out, want) {
		t.Fatalf("retry --since = %v %q, want %q", err, out, want)
	}
	waitDelivered(t, g, gp, ids, 90*time.Second)
	if got := deadRows(); len(got) != 0 {
		t.Fatalf("dead after the retries: %+v", got)
	}
}
