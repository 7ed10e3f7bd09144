package fhirmap_test

import (
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	srpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/service_request_go_proto"
)

func mustBundle(t *testing.T, body []byte) *rpb.Bundle {
	t.Helper()
	cr, err := mustCodec(t).Decode(body)
	if err != nil {
		t.Fatalf("Decode() returned unexpected error: %v", err)
	}
	b := cr.GetBundle()
	if b == nil {
		t.Fatalf("fixture is not a Bundle")
	}
	return b
}

func TestTransactionEntries(t *testing.T) {
	t.Parallel()
	base := mustReadFile(t, baseReferralFile)

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		entries, err := fhirmap.TransactionEntries(mustBundle(t, base))
		if err != nil {
			t.Fatalf("TransactionEntries() returned unexpected error: %v", err)
		}
		want := []struct{ path, typ, url string }{
			{"Bundle.entry[0]", "Patient", "urn:uuid:2a1a779b-15ef-410b-b927-318d36ec955a"},
			{"Bundle.entry[1]", "ServiceRequest", "urn:uuid:3741a7a4-3a54-4ec2-b2d0-6b3697f7d130"},
			{"Bundle.entry[2]", "Task", "urn:uuid:91294318-9d8c-4718-a5de-9593dd0cc420"},
		}
		if len(entries) != len(want) {
			t.Fatalf("got %d entries, want %d", len(entries), len(want))
		}
		for i, w := range want {
			e := entries[i]
			if e.Path != w.path || fhirmap.TypeName(e.Resource) != w.typ || e.FullURL != w.url || e.Contained {
				t.Errorf("entry %d = {%s %s %s %v}, want {%s %s %s false}", i, e.Path, fhirmap.TypeName(e.Resource), e.FullURL, e.Contained, w.path, w.typ, w.url)
			}
		}
	})

	tests := []struct {
		name     string
		mutate   func(t *testing.T, b jsonDoc)
		wantCode string
		wantExpr string
	}{
		{"ErrNotTransaction", func(t *testing.T, b jsonDoc) { b["type"] = "batch" }, linkbridge.EINVALID, "Bundle.type"},
		{"ErrNoEntries", func(t *testing.T, b jsonDoc) { delete(b, "entry") }, linkbridge.EINVALID, "Bundle.entry"},
		{"ErrEntryWithoutResource", func(t *testing.T, b jsonDoc) {
			delete(b["entry"].([]any)[1].(jsonDoc), "resource")
		}, linkbridge.EINVALID, "Bundle.entry[1].resource"},
		{"ErrEntryWithoutRequest", func(t *testing.T, b jsonDoc) {
			delete(b["entry"].([]any)[2].(jsonDoc), "request")
		}, linkbridge.EINVALID, "Bundle.entry[2].request"},
		{"ErrPutEntry", func(t *testing.T, b jsonDoc) {
			b["entry"].([]any)[1].(jsonDoc)["request"] = jsonDoc{"method": "PUT", "url": "ServiceRequest/x"}
		}, linkbridge.EUNPROCESSABLE, "Bundle.entry[1].request.method"},
		{"ErrURLDoesNotMatchType", func(t *testing.T, b jsonDoc) {
			b["entry"].([]any)[0].(jsonDoc)["request"] = jsonDoc{"method": "POST", "url": "Task"}
		}, linkbridge.EINVALID, "Bundle.entry[0].request.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := mustParseJSON(t, base)
			tt.mutate(t, doc)
			_, err := fhirmap.TransactionEntries(mustBundle(t, mustMarshalJSON(t, doc)))
			assertAppError(t, err, tt.wantCode, tt.wantExpr)
		})
	}
}

func TestMapMessage(t *testing.T) {
	t.Parallel()
	newMsg := mustReadFile(t, filepath.Join(corpusDir, "valid", "message-referral-new.json"))
	cancelMsg := mustReadFile(t, filepath.Join(corpusDir, "valid", "message-referral-cancel.json"))

	t.Run("OKNew", func(t *testing.T) {
		t.Parallel()
		msg, err := fhirmap.MapMessage(mustBundle(t, newMsg))
		if err != nil {
			t.Fatalf("MapMessage() returned unexpected error: %v", err)
		}
		if msg.Event != fhirmap.EventServiceRequestRequest || msg.Reason != "new" {
			t.Errorf("event, reason = %q, %q; want servicerequest-request, new", msg.Event, msg.Reason)
		}
		if len(msg.Entries) != 5 {
			t.Errorf("got %d entries, want 5 (all but the MessageHeader)", len(msg.Entries))
		}
		if _, ok := msg.Focus.Resource.(*srpb.ServiceRequest); !ok || msg.Focus.Path != "Bundle.entry[4]" {
			t.Errorf("focus = %s %s, want the ServiceRequest at Bundle.entry[4]", fhirmap.TypeName(msg.Focus.Resource), msg.Focus.Path)
		}
	})
	t.Run("OKCancel", func(t *testing.T) {
		t.Parallel()
		msg, err := fhirmap.MapMessage(mustBundle(t, cancelMsg))
		if err != nil {
			t.Fatalf("MapMessage() returned unexpected error: %v", err)
		}
		if msg.Reason != "update" {
			t.Errorf("reason = %q, want update", msg.Reason)
		}
		if got := fhirmap.Code(msg.Focus.Resource.(*srpb.ServiceRequest).GetStatus()); got != "revoked" {
			t.Errorf("focus status = %q, want revoked", got)
		}
	})

	header := func(b jsonDoc) jsonDoc { return b["entry"].([]any)[0].(jsonDoc)["resource"].(jsonDoc) }
	tests := []struct {
		name     string
		mutate   func(b jsonDoc)
		wantExpr string
	}{
		{"ErrNotMessage", func(b jsonDoc) { b["type"] = "collection" }, "Bundle.type"},
		{"ErrNoEntries", func(b jsonDoc) { delete(b, "entry") }, "Bundle.entry"},
		{"ErrHeaderNotFirst", func(b jsonDoc) {
			e := b["entry"].([]any)
			e[0], e[1] = e[1], e[0]
		}, "Bundle.entry[0].resource"},
		{"ErrUnknownEvent", func(b jsonDoc) {
			header(b)["eventCoding"] = jsonDoc{"system": "https://fhir.nhs.uk/CodeSystem/message-events-bars", "code": "booking-request"}
		}, "MessageHeader.eventCoding"},
		{"ErrEventWrongSystem", func(b jsonDoc) {
			header(b)["eventCoding"] = jsonDoc{"system": "http://example.org/events", "code": "servicerequest-request"}
		}, "MessageHeader.eventCoding"},
		{"ErrReasonDelete", func(b jsonDoc) {
			header(b)["reason"] = jsonDoc{"coding": []any{jsonDoc{"system": fhirmap.BaRSReasonSystem, "code": "delete"}}}
		}, "MessageHeader.reason"},
		{"ErrNoReason", func(b jsonDoc) { delete(header(b), "reason") }, "MessageHeader.reason"},
		{"ErrNoFocus", func(b jsonDoc) { delete(header(b), "focus") }, "MessageHeader.focus"},
		{"ErrFocusNotInBundle", func(b jsonDoc) {
			header(b)["focus"] = []any{jsonDoc{"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}}
		}, "MessageHeader.focus"},
		{"ErrFocusIsPatient", func(b jsonDoc) {
			header(b)["focus"] = []any{jsonDoc{"reference": "urn:uuid:7c9f3f0e-1b1a-4d8e-8f8e-6a1d0c5b2e02"}}
		}, "MessageHeader.focus"},
		{"ErrEntryWithoutResource", func(b jsonDoc) {
			delete(b["entry"].([]any)[2].(jsonDoc), "resource")
		}, "Bundle.entry[2].resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := mustParseJSON(t, newMsg)
			tt.mutate(doc)
			_, err := fhirmap.MapMessage(mustBundle(t, mustMarshalJSON(t, doc)))
			assertAppError(t, err, linkbridge.EINVALID, tt.wantExpr)
		})
	}
}

func assertAppError(t *testing.T, err error, wantCode, wantExpr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %s at %s", wantCode, wantExpr)
	}
	if got := linkbridge.ErrorCode(err); got != wantCode {
		t.Errorf("code = %q, want %q (err %v)", got, wantCode, err)
	}
	if got := linkbridge.ErrorExpression(err); len(got) == 0 || got[0] != wantExpr {
		t.Errorf("expression = %q, want [%q] (err %v)", got, wantExpr, err)
	}
}
