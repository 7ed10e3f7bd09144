package httpapi_test

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// TestWriteBackProvenance: every change written back to the GP record is
// followed, in the same transaction and order, by a Provenance naming the
// link worker as author on behalf of the service, and targeting exactly the
// resource versions written.
func TestWriteBackProvenance(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(s *httpapi.Server) { s.WriteBack = true })
	c := ts.intake(t, mustRead(t, fixReferralTxn))
	lw := linkbridge.LinkWorker{ID: "lw-0042", Name: "Sam Okafor"}
	c.action(linkbridge.LifecycleCommand{Action: linkbridge.ActionAccept, LinkWorker: &lw})

	msgs, err := ts.Store.ListOutbox(context.Background(), linkbridge.OutboxFilter{ReferralID: c.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("outbox has %d messages, want the accepted resources and their Provenance", len(msgs))
	}
	// The Provenance is enqueued after the resources it targets.
	slices.SortFunc(msgs, func(a, b *linkbridge.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	last := msgs[len(msgs)-1]
	if last.ResourceType != "Provenance" || last.ResourceID != fhirmap.ProvenanceID(c.ID, 2) || last.Version != 1 {
		t.Fatalf("last outbox message = %s/%s v%d, want Provenance/%s v1", last.ResourceType, last.ResourceID, last.Version, fhirmap.ProvenanceID(c.ID, 2))
	}
	prov := mustParseJSON(t, last.Body)
	ts.mustFHIR(last.Body, "Provenance")
	agent := at(prov, "agent", 0)
	if str(prov, "agent", 0, "who", "identifier", "value") != lw.ID || str(prov, "agent", 0, "who", "identifier", "system") != fhirmap.LinkWorkerSystem ||
		str(prov, "agent", 0, "onBehalfOf", "identifier", "value") != "Y02662" || str(prov, "agent", 0, "type", "coding", 0, "code") != "author" {
		t.Errorf("Provenance.agent = %v, want the link worker as author for Y02662", agent)
	}
	if str(prov, "activity", "text") != "accept" {
		t.Errorf("Provenance.activity = %v, want accept", prov["activity"])
	}
	targets, _ := prov["target"].([]any)
	if len(targets) != len(msgs)-1 {
		t.Fatalf("Provenance targets %d resources, the change wrote %d", len(targets), len(msgs)-1)
	}
	for i, m := range msgs[:len(msgs)-1] {
		if got, want := str(prov, "target", i, "identifier", "value"), m.ResourceType+"/"+m.ResourceID; got != want {
			t.Errorf("target %d = %s, want %s", i, got, want)
		}
		if m.OrderKey != last.OrderKey {
			t.Errorf("Provenance order key %s differs from %s's %s", last.OrderKey, m.ResourceType, m.OrderKey)
		}
	}
	// A change before a link worker is assigned names the service.
	c2 := ts.intake(t, withIdentifier(t, mustRead(t, fixReferralTxn), "PROV-2"))
	c2.write(http.MethodPost, "/actions", linkbridge.LifecycleCommand{Action: linkbridge.ActionDecline, ReasonCode: "person-declined"}, http.StatusOK)
	msgs, err = ts.Store.ListOutbox(context.Background(), linkbridge.OutboxFilter{ReferralID: c2.ID, Limit: 100})
	if err != nil || len(msgs) == 0 {
		t.Fatalf("outbox of the declined referral: %v %v", msgs, err)
	}
	slices.SortFunc(msgs, func(a, b *linkbridge.OutboxMessage) int { return cmp.Compare(a.ID, b.ID) })
	prov = mustParseJSON(t, msgs[len(msgs)-1].Body)
	if str(prov, "agent", 0, "who", "identifier", "value") != "Y02662" || str(prov, "agent", 0, "who", "type") != "Organization" {
		t.Errorf("Provenance without a link worker: agent %v, want the service", prov["agent"])
	}
}
