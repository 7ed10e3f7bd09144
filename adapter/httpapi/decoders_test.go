package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge/adapter/httpapi"
)

// TestDecodersBounded: with MaxDecoders parses in progress, a request body
// waits for one to end before it is parsed, and is then received as usual.
func TestDecodersBounded(t *testing.T) {
	ts := newTestServer(t, func(s *httpapi.Server) { s.MaxDecoders = 1 })
	release := httpapi.HoldDecoder(ts.API)
	body := mustRead(t, fixReferralTxn)
	done := make(chan *response, 1)
	go func() { done <- ts.post("", body, nil) }()
	// Unparsed, the referral cannot be stored: it must still be waiting.
	// (On a slow machine this waits longer, never wrongly fails.)
	select {
	case r := <-done:
		t.Fatalf("POST answered %d while every parse token was held", r.Status)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	select {
	case r := <-done:
		if r.Status != http.StatusOK {
			t.Fatalf("POST after the token was released: %d %s", r.Status, r.Body)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("POST still waiting after the token was released")
	}
}
