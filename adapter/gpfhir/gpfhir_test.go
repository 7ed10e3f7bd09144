package gpfhir_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/gpfhir"
	"github.com/linkbridge/linkbridge/adapter/gpfhir/gpfhirtest"
)

const taskBody = `{"resourceType":"Task","id":"t1","status":"accepted","intent":"order","for":{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}}}`

func setup(t *testing.T, opts gpfhirtest.Options, mode gpfhir.Mode) (*gpfhir.Client, *gpfhirtest.Server) {
	t.Helper()
	srv, err := gpfhirtest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	c, err := gpfhir.New(gpfhir.Config{BaseURL: srv.URL + "/fhir", Mode: mode, RetryMax: 2,
		RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond, MaxInProcessWait: 200 * time.Millisecond, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func TestPut(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		c, srv := setup(t, gpfhirtest.Options{}, gpfhir.ModeClientID)
		res, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody))
		if err != nil || (res.Status != 201 && res.Status != 200) {
			t.Fatalf("Put = %v, %v; want 201 (or 200 after a retry)", res, err)
		}
		// Delivery is at least once: on a loaded machine the first attempt
		// can outlast the client's timeout after the endpoint stored it, and
		// the retry then finds the resource (200). What is guaranteed is one
		// resource at the version written; a 200 is only right when an
		// earlier attempt got through.
		if n := len(srv.Writes()); res.Status == 200 && n < 2 {
			t.Fatalf("first Put answered 200 after %d accepted attempt(s); want 201, or 200 only on a retry", n)
		}
		if w, ok := srv.Current("Task", "t1"); !ok || w.Version != 1 {
			t.Fatalf("recorded %+v, %v", w, ok)
		}
		// The same write again has one effect (idempotent PUT).
		if res, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody)); err != nil || res.Status != 200 {
			t.Fatalf("second Put = %v, %v; want 200", res, err)
		}
		if n := len(srv.All()); n != 1 {
			t.Fatalf("resources = %d, want 1", n)
		}
	})
	t.Run("RetriesTransientInProcess", func(t *testing.T) {
		c, srv := setup(t, gpfhirtest.Options{}, gpfhir.ModeClientID)
		srv.Script(gpfhirtest.Reply{Status: 503}, gpfhirtest.Reply{Status: 408})
		if _, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody)); err != nil {
			t.Fatalf("Put after 503, 408 = %v, want success on the third attempt", err)
		}
	})
	t.Run("ErrLongRetryAfterGoesToOutbox", func(t *testing.T) {
		c, srv := setup(t, gpfhirtest.Options{}, gpfhir.ModeClientID)
		srv.Script(gpfhirtest.Reply{Status: 429, RetryAfter: "3600"})
		start := time.Now()
		_, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody))
		var re *gpfhir.RetryableError
		if !errors.As(err, &re) || re.Status != 429 || re.After != time.Hour {
			t.Fatalf("err = %v, want RetryableError 429 after 1h", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Put slept %v on a long Retry-After; the outbox must schedule it", d)
		}
	})
	t.Run("ErrPermanentKeepsOutcome", func(t *testing.T) {
		c, srv := setup(t, gpfhirtest.Options{}, gpfhir.ModeClientID)
		oo := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"unknown patient"}]}`
		srv.Script(gpfhirtest.Reply{Status: 422, Body: oo})
		_, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody))
		var pe *gpfhir.PermanentError
		if !errors.As(err, &pe) || pe.Status != 422 || string(pe.Outcome) != oo || !strings.Contains(pe.Err.Error(), "unknown patient") {
			t.Fatalf("err = %v, want PermanentError 422 with the outcome", err)
		}
	})
	t.Run("ErrTimeoutIsRetryable", func(t *testing.T) {
		c, srv := setup(t, gpfhirtest.Options{}, gpfhir.ModeClientID)
		srv.Script(gpfhirtest.Reply{Delay: 500 * time.Millisecond, Status: 200}, gpfhirtest.Reply{Delay: 500 * time.Millisecond, Status: 200}, gpfhirtest.Reply{Delay: 500 * time.Millisecond, Status: 200})
		_, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody))
		var re *gpfhir.RetryableError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want RetryableError", err)
		}
	})
	t.Run("TimeoutAfterStoreIsOneResource", func(t *testing.T) {
		// The endpoint stores the write, then answers after the client's
		// timeout: the retry sees the resource already there (200). The
		// write took effect once, at the version sent.
		c, srv := setup(t, gpfhirtest.Options{}, gpfhir.ModeClientID)
		srv.Script(gpfhirtest.Reply{Store: true, Delay: 600 * time.Millisecond})
		res, err := c.Put(ctx, "Task", "t1", 4, []byte(taskBody))
		if err != nil || res.Status != 200 {
			t.Fatalf("Put = %v, %v; want 200 from the retry", res, err)
		}
		if n, all := len(srv.Writes()), srv.All(); n != 2 || len(all) != 1 || all["Task/t1"].Version != 4 {
			t.Fatalf("%d writes, resources %v; want 2 attempts making one Task at version 4", n, all)
		}
	})
	t.Run("ErrConnectionRefusedIsRetryable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		c, err := gpfhir.New(gpfhir.Config{BaseURL: "http://" + addr + "/fhir", Mode: gpfhir.ModeClientID, RetryMax: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Put(ctx, "Task", "t1", 1, []byte(taskBody))
		var re *gpfhir.RetryableError
		if !errors.As(err, &re) {
			t.Fatalf("err = %v, want RetryableError", err)
		}
	})
	t.Run("AutoPicksConditional", func(t *testing.T) {
		c, srv := setup(t, gpfhirtest.Options{ConditionalOnly: true}, gpfhir.ModeAuto)
		if _, err := c.Put(ctx, "Task", "t1", 1, []byte(taskBody)); err != nil {
			t.Fatalf("Put = %v, want a conditional update", err)
		}
		if _, ok := srv.Current("Task", "t1"); !ok {
			t.Fatal("conditional write not recorded")
		}
	})
}

func TestSenderLinksPatient(t *testing.T) {
	c, srv := setup(t, gpfhirtest.Options{Patients: map[string]string{"9434765919": "gp-pat-7"}}, gpfhir.ModeClientID)
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	s := &gpfhir.Sender{Client: c, Codec: codec, LinkPatients: true}
	m := &linkbridge.OutboxMessage{ResourceType: "Task", ResourceID: "t1", Version: 3, Body: []byte(taskBody), NHSNumber: "9434765919"}
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	w, _ := srv.Current("Task", "t1")
	if !strings.Contains(string(w.Body), `"reference":"Patient/gp-pat-7"`) || !strings.Contains(string(w.Body), `"value":"9434765919"`) {
		t.Fatalf("body %s: want the GP's Patient reference beside the NHS number", w.Body)
	}
	if w.Version != 3 {
		t.Fatalf("version = %d, want 3", w.Version)
	}
}

const provBody = `{"resourceType":"Provenance","id":"r1-v2",` + provMeta + `"target":[{"type":"Task","identifier":{"system":"https://linkbridge.example.org/Id/writeback","value":"Task/t1"}}],` +
	`"recorded":"2026-11-22T10:00:00Z","agent":[{"who":{"display":"Link worker"}}]}`

const provMeta = `"meta":{"tag":[{"system":"https://linkbridge.example.org/Id/writeback","code":"Provenance/r1-v2"}]},`

const taskKeyed = `{"resourceType":"Task","id":"t1","identifier":[{"system":"https://linkbridge.example.org/Id/writeback","value":"Task/t1"}],"status":"accepted","intent":"order"}`

// TestPutConditionalURL: in conditional mode a type with an identifier
// element is written on identifier=, a type without one (Provenance) on
// _tag=, both with the token writeback-system|Type/id that the body
// carries; the same write twice is one resource.
func TestPutConditionalURL(t *testing.T) {
	ctx := context.Background()
	const sys = "https%3A%2F%2Flinkbridge.example.org%2FId%2Fwriteback%7C"
	for _, tc := range []struct {
		typ, id, body, query string
	}{
		{"Task", "t1", taskKeyed, "identifier=" + sys + "Task%2Ft1"},
		{"Provenance", "r1-v2", provBody, "_tag=" + sys + "Provenance%2Fr1-v2"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			c, srv := setup(t, gpfhirtest.Options{ConditionalOnly: true}, gpfhir.ModeConditional)
			if got, want := c.PutURL(gpfhir.ModeConditional, tc.typ, tc.id), srv.URL+"/fhir/"+tc.typ+"?"+tc.query; got != want {
				t.Errorf("PutURL = %s, want %s", got, want)
			}
			if got, want := c.PutURL(gpfhir.ModeClientID, tc.typ, tc.id), srv.URL+"/fhir/"+tc.typ+"/"+tc.id; got != want {
				t.Errorf("PutURL(client-id) = %s, want %s", got, want)
			}
			for i := 0; i < 2; i++ {
				if _, err := c.Put(ctx, tc.typ, tc.id, 1, []byte(tc.body)); err != nil {
					t.Fatalf("Put #%d = %v", i+1, err)
				}
			}
			ws := srv.Writes()
			if len(ws) != 2 || len(srv.All()) != 1 {
				t.Fatalf("%d writes making %d resources, want 2 making 1", len(ws), len(srv.All()))
			}
			for _, w := range ws {
				if w.Query != tc.query || !w.Keyed {
					t.Errorf("sent ?%s (body carries the key: %v), want ?%s carried by the body", w.Query, w.Keyed, tc.query)
				}
			}
		})
	}
}

// TestAutoModePerType: ModeAuto decides per type. On an endpoint that
// refuses client ids and lists only identifier among its search
// parameters, a Task is written conditionally; a Provenance cannot be
// (no _tag search), and client ids are not offered, so it is written in
// the create mode, which searches by the key first: this endpoint refuses
// that search (404), a permanent failure, and nothing is written (never
// a client id, never a conditional write that could duplicate it).
func TestAutoModePerType(t *testing.T) {
	ctx := context.Background()
	c, srv := setup(t, gpfhirtest.Options{ConditionalOnly: true, SearchParams: []string{"_id", "identifier"}}, gpfhir.ModeAuto)
	if _, err := c.Put(ctx, "Task", "t1", 1, []byte(taskKeyed)); err != nil {
		t.Fatalf("Task = %v, want a conditional update", err)
	}
	_, err := c.Put(ctx, "Provenance", "r1-v2", 1, []byte(provBody))
	var pe *gpfhir.PermanentError
	if !errors.As(err, &pe) || pe.Status != 404 {
		t.Fatalf("Provenance = %v, want PermanentError 404 (the create mode's search refused)", err)
	}
	if m, _ := c.ModeFor(ctx, "Provenance"); m != gpfhir.ModeCreate {
		t.Fatalf("ModeFor(Provenance) = %s, want create", m)
	}
	if ws := srv.Writes(); len(ws) != 1 || ws[0].Type != "Task" || !strings.HasPrefix(ws[0].Query, "identifier=") || !ws[0].Keyed {
		t.Fatalf("writes %s, want one conditional update of the Task on identifier", summary(ws))
	}
	// With _tag listed, Provenance is written conditionally on it.
	c, srv = setup(t, gpfhirtest.Options{ConditionalOnly: true, SearchParams: []string{"identifier", "_tag"}}, gpfhir.ModeAuto)
	if _, err := c.Put(ctx, "Provenance", "r1-v2", 1, []byte(provBody)); err != nil {
		t.Fatalf("Provenance = %v, want a conditional update on _tag", err)
	}
	if ws := srv.Writes(); len(ws) != 1 || !strings.HasPrefix(ws[0].Query, "_tag=") || !ws[0].Keyed {
		t.Fatalf("writes %s, want one conditional update on _tag", summary(ws))
	}
}

// TestSenderKeysQueuedProvenance: a Provenance queued before it carried
// its write-back tag gets the tag on the way out, so a resend matches it.
func TestSenderKeysQueuedProvenance(t *testing.T) {
	c, srv := setup(t, gpfhirtest.Options{ConditionalOnly: true}, gpfhir.ModeConditional)
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	s := &gpfhir.Sender{Client: c, Codec: codec}
	old := strings.Replace(provBody, provMeta, "", 1)
	m := &linkbridge.OutboxMessage{ResourceType: "Provenance", ResourceID: "r1-v2", Version: 1, Body: []byte(old)}
	for i := 0; i < 2; i++ {
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	ws := srv.Writes()
	if len(ws) != 2 || len(srv.All()) != 1 || !ws[0].Keyed || !ws[1].Keyed {
		t.Fatalf("writes %s making %d resources; want two conditional writes carrying the tag, one resource", summary(ws), len(srv.All()))
	}
}

// summary lists writes by criterion, without bodies.
func summary(ws []gpfhirtest.Write) string {
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "[%s/%s ?%s keyed=%v] ", w.Type, w.ID, w.Query, w.Keyed)
	}
	return b.String()
}
