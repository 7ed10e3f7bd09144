package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
)

// RunDocumentDeliveryStore runs the DocumentDeliveryStore suite: a record
// round-trips every field (zero times stay zero), a save replaces the
// record of its outbox message, lookups by ITK3 and MESH message id find
// it, and unknown ids are ENOTFOUND.
func RunDocumentDeliveryStore(t *testing.T, open func(t *testing.T) linkbridge.DocumentDeliveryStore) {
	ctx := context.Background()
	s := open(t)
	at := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	d := &linkbridge.DocumentDelivery{OutboxID: 42, MessageID: "msg-1", State: linkbridge.DeliverySending, UpdatedAt: at}
	if err := s.SaveDocumentDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.DocumentDelivery(ctx, 42)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != linkbridge.DeliverySending || !got.SentAt.IsZero() || got.Outcome != nil || !got.UpdatedAt.Equal(at) {
		t.Errorf("new record read back as %+v", got)
	}
	d.MeshMessageID, d.ChunksSent, d.ChunksTotal, d.State = "MESH1", 3, 3, linkbridge.DeliveryFailed
	d.SentAt, d.InfAckAt, d.Reason, d.Outcome = at, at.Add(time.Minute), "negative ITK3 acknowledgement 20009", []byte(`{"resourceType":"OperationOutcome"}`)
	if err := s.SaveDocumentDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, find := range []func() (*linkbridge.DocumentDelivery, error){
		func() (*linkbridge.DocumentDelivery, error) { return s.DocumentDelivery(ctx, 42) },
		func() (*linkbridge.DocumentDelivery, error) { return s.FindDocumentDelivery(ctx, "msg-1", "") },
		func() (*linkbridge.DocumentDelivery, error) { return s.FindDocumentDelivery(ctx, "", "MESH1") },
	} {
		got, err := find()
		if err != nil {
			t.Fatal(err)
		}
		if got.MeshMessageID != "MESH1" || got.ChunksSent != 3 || got.ChunksTotal != 3 || got.State != linkbridge.DeliveryFailed ||
			!got.SentAt.Equal(at) || !got.InfAckAt.Equal(at.Add(time.Minute)) || !got.BusAckAt.IsZero() ||
			got.Reason != d.Reason || string(got.Outcome) != string(d.Outcome) {
			t.Errorf("replaced record read back as %+v", got)
		}
	}
	for _, err := range []error{
		func() error { _, err := s.DocumentDelivery(ctx, 7); return err }(),
		func() error { _, err := s.FindDocumentDelivery(ctx, "nope", ""); return err }(),
		func() error { _, err := s.FindDocumentDelivery(ctx, "", ""); return err }(),
	} {
		if linkbridge.ErrorCode(err) != linkbridge.ENOTFOUND {
			t.Errorf("unknown id: %v, want ENOTFOUND", err)
		}
	}
	if err := s.SaveDocumentDelivery(ctx, &linkbridge.DocumentDelivery{OutboxID: 1}); linkbridge.ErrorCode(err) != linkbridge.EINVALID {
		t.Errorf("incomplete record: %v, want EINVALID", err)
	}
}
