package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// TestIntakeStoresReceivedBytes sends every valid fixture to two gateways
// with the same ids and clock: one stores received bytes stamped with id
// and meta, the other marshals every resource with jsonformat. Every stored
// resource must mean the same on both; and the received-bytes path must
// actually be taken for the plain transaction, and for resources whose
// references gained an identifier.
func TestIntakeStoresReceivedBytes(t *testing.T) {
	t.Parallel()
	fixtures := []struct {
		file, path string
		h          hdr
	}{
		{fixReferralTxn, "", nil},
		{fixRoleTxn, "", nil},
		{fixSRContained, "/ServiceRequest", nil},
		{fixSRByNHS, "/ServiceRequest", nil},
		{fixTaskContained, "/Task", nil},
		{fixMsgNew, "/$process-message", barsHeaders("3b1f2a5e-0000-4c2d-9e0f-000000000001", "3b1f2a5e-0000-4c2d-9e0f-000000000002")},
	}
	ids := func() func() string {
		n := 0
		return func() string { n++; return fmt.Sprintf("id-%04d", n) }
	}
	stamped := newTestServer(t, func(s *httpapi.Server) { s.NewID = ids() })
	marshalled := newTestServer(t, func(s *httpapi.Server) { s.NewID = ids(); httpapi.MarshalAll(s) })
	for _, f := range fixtures {
		body := mustRead(t, f.file)
		a, b := stamped.post(f.path, body, f.h), marshalled.post(f.path, body, f.h)
		if a.Status >= 300 || a.Status != b.Status {
			t.Fatalf("POST %s: status %d and %d, want the same 2xx", f.file, a.Status, b.Status)
		}
	}
	ctx := context.Background()
	verbatim := 0
	// The fixture's PractitionerRole and HealthcareService refer to an
	// Organization entry: their references gain its identifier
	// (fhirmap.IdentifyReferences), which fhirjson.StampIdentified writes
	// into the received bytes.
	identifiedRefs := map[string]bool{"PractitionerRole": true, "HealthcareService": true}
	for _, typ := range []string{"Patient", "ServiceRequest", "Task", "Organization", "Practitioner", "PractitionerRole", "HealthcareService", "Condition", "Consent"} {
		q := &linkbridge.ResourceQuery{Type: typ, Count: 100}
		got, err := stamped.Store.SearchResources(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := marshalled.Store.SearchResources(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != want.Total {
			t.Fatalf("%s: %d stored, want %d", typ, got.Total, want.Total)
		}
		for i, r := range got.Resources {
			w := want.Resources[i]
			if r.ID != w.ID {
				t.Fatalf("%s[%d]: id %s, want %s", typ, i, r.ID, w.ID)
			}
			if diff := cmp.Diff(marshalled.mustFHIR(w.Body, "marshalled"), stamped.mustFHIR(r.Body, "stamped"), protocmp.Transform()); diff != "" {
				t.Errorf("%s/%s stored from received bytes differs (-marshalled +stamped):\n%s", typ, r.ID, diff)
			}
			if !bytes.Equal(r.Body, w.Body) {
				verbatim++
			} else if identifiedRefs[typ] {
				t.Errorf("%s/%s was re-marshalled: its references to the message's Organization take the ODS code in the received bytes too", typ, r.ID)
			}
		}
	}
	t.Logf("%d resources stored from received bytes", verbatim)
	if verbatim == 0 {
		t.Error("no resource was stored from its received bytes")
	}
	// Reads serve the stored bytes.
	res := stamped.get("/Patient/id-0001")
	wantStatus(t, res, http.StatusOK)
	stored, err := stamped.Store.ReadResource(ctx, "Patient", "id-0001")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Body, stored.Body) {
		t.Errorf("GET Patient/id-0001 does not serve the stored bytes")
	}
}

// TestIntakeLinksKnownPerson sends each referral shape twice with different
// referral identifiers: the second referral must link to the person the
// first created (the store's unique NHS number turns the optimistic "new
// person" attempt into a retry) while keeping a Patient of its own, and
// every reference it stores must point at a resource the gateway holds.
func TestIntakeLinksKnownPerson(t *testing.T) {
	t.Parallel()
	for _, f := range []struct{ file, path string }{
		{fixReferralTxn, ""},
		{fixSRContained, "/ServiceRequest"},
		{fixSRByNHS, "/ServiceRequest"},
		{fixTaskContained, "/Task"},
	} {
		t.Run(filepath.Base(f.file), func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			body := mustRead(t, f.file)
			created := http.StatusCreated
			if f.path == "" {
				created = http.StatusOK // a transaction-response
			}
			wantStatus(t, ts.post(f.path, body, nil), created)
			first := matchIDs(ts.search("ServiceRequest", nil))
			if len(first) != 1 {
				t.Fatalf("ServiceRequests after the first referral: %v", first)
			}
			// The same person, open beside the first as its sender says
			// (docs/domain.md#one-open-referral).
			wantStatus(t, ts.post(f.path, following(t, sameIdentifierPerson(t, body, "second-"+filepath.Base(f.file)), strings.TrimPrefix(first[0], "ServiceRequest/")), nil), created)
			if n := ts.total("Patient", nil); n != 2 {
				t.Fatalf("%d Patients stored, want one per referral", n)
			}
			ctx := context.Background()
			for _, typ := range []string{"ServiceRequest", "Task"} {
				res, err := ts.Store.SearchResources(ctx, &linkbridge.ResourceQuery{Type: typ, Count: 10})
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != 2 {
					t.Fatalf("%d %s stored, want 2", res.Total, typ)
				}
				for _, r := range res.Resources {
					for _, ref := range references(mustParseJSON(t, r.Body)) {
						typ, id, ok := strings.Cut(ref, "/")
						if !ok {
							t.Errorf("%s/%s keeps the local reference %q", typ, r.ID, ref)
							continue
						}
						if _, err := ts.Store.ReadResource(ctx, typ, id); err != nil {
							t.Errorf("%s/%s refers to %s: %v", r.Type, r.ID, ref, err)
						}
					}
					if bytes.Contains(r.Body, []byte(`"#`)) || bytes.Contains(r.Body, []byte(`urn:uuid:`)) {
						t.Errorf("%s/%s keeps a local reference: %s", typ, r.ID, r.Body)
					}
				}
			}
		})
	}
}

// references lists every reference string in a JSON document.
func references(v any) []string {
	var out []string
	switch v := v.(type) {
	case jsonDoc:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "reference" {
				out = append(out, s)
				continue
			}
			out = append(out, references(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, references(x)...)
		}
	}
	return out
}

// TestReadyzAnswersFromTheStore: ready while the store answers, 503 once it
// does not.
func TestReadyzAnswersFromTheStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ready.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	api, err := httpapi.NewServer(store, codec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		rec := httptest.NewRecorder()
		api.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if code := get(); code != http.StatusOK {
		t.Errorf("GET /readyz = %d with the store open, want 200", code)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz = %d with the store closed, want 503", code)
	}
}
