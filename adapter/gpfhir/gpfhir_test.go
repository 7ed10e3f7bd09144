package gpfhir_test

import (
	"context"
	"errors"
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
		if err != nil || res.Status != 201 {
			t.Fatalf("Put = %v, %v; want 201", res, err)
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
	t.Run("ErrConnectionRefusedIsRetryable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
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
