package linkbridge

import (
	"context"
	"time"
)

// DocumentDeliveryState is where a GP Connect Send Document message stands
// on MESH (docs/send-document.md#delivery).
type DocumentDeliveryState string

// Document delivery states.
const (
	// DeliverySending: chunks are being uploaded (ChunksSent of them so far,
	// into MeshMessageID once the first was accepted).
	DeliverySending DocumentDeliveryState = "sending"
	// DeliverySent: MESH holds the whole message; acknowledgements are
	// awaited.
	DeliverySent DocumentDeliveryState = "sent"
	// DeliveryInfAcked: the practice's system acknowledged receipt
	// (infrastructure acknowledgement); the business one is awaited.
	DeliveryInfAcked DocumentDeliveryState = "inf-acked"
	// DeliveryAcked: the business acknowledgement came: the document was
	// filed. The outbox message is delivered.
	DeliveryAcked DocumentDeliveryState = "acked"
	// DeliveryFailed: a negative acknowledgement or a MESH non-delivery
	// report came (Reason, Outcome); the outbox message is dead-lettered at
	// its next attempt.
	DeliveryFailed DocumentDeliveryState = "failed"
	// DeliveryOverdue: no business acknowledgement came in time; the
	// outbox message was dead-lettered to alert a person.
	DeliveryOverdue DocumentDeliveryState = "overdue"
	// DeliveryDead: a failure was reported to the outbox (dead letter); an
	// operator's requeue sends the message again.
	DeliveryDead DocumentDeliveryState = "dead"
)

// DocumentDelivery is the MESH side of one send-document outbox message.
type DocumentDelivery struct {
	OutboxID int64
	// MessageID is the ITK3 message id (MessageHeader.id), which
	// acknowledgements name.
	MessageID string
	// MeshMessageID is the id MESH gave the message ("" before the first
	// chunk was accepted), which non-delivery reports name.
	MeshMessageID string
	ChunksSent    int
	ChunksTotal   int
	State         DocumentDeliveryState
	// Reason and Outcome describe a failure (Outcome: the ITK3 response's
	// OperationOutcome, STU3 JSON).
	Reason  string
	Outcome []byte
	// SentAt is when MESH held the whole message; InfAckAt and BusAckAt
	// when the acknowledgements arrived.
	SentAt, InfAckAt, BusAckAt time.Time
	UpdatedAt                  time.Time
}

// DocumentDeliveryStore keeps DocumentDelivery records (migration 019).
type DocumentDeliveryStore interface {
	// SaveDocumentDelivery stores d, replacing the record of its OutboxID.
	SaveDocumentDelivery(ctx context.Context, d *DocumentDelivery) error
	// DocumentDelivery returns the record of an outbox message, ENOTFOUND
	// when there is none.
	DocumentDelivery(ctx context.Context, outboxID int64) (*DocumentDelivery, error)
	// FindDocumentDelivery returns the record whose ITK3 message id is
	// messageID, or (when messageID is "") whose MESH message id is
	// meshID; ENOTFOUND when there is none.
	FindDocumentDelivery(ctx context.Context, messageID, meshID string) (*DocumentDelivery, error)
}
