package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/linkbridge/linkbridge"
)

var _ linkbridge.DocumentDeliveryStore = (*DB)(nil)

// The MESH side of send-document write-backs (migration
// 019_document_delivery.sql). Saves go through the writer; reads use the
// read pool.

const documentDeliveryColumns = `outbox_id, message_id, mesh_message_id, chunks_sent, chunks_total, state, reason, outcome,
	sent_at, inf_ack_at, bus_ack_at, updated_at`

// optTime stores a zero time as ”.
func optTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// SaveDocumentDelivery stores d through the writer, replacing the record of
// its outbox message. A zero UpdatedAt is recorded as now.
func (db *DB) SaveDocumentDelivery(ctx context.Context, d *linkbridge.DocumentDelivery) error {
	if d.OutboxID == 0 || d.MessageID == "" || d.State == "" {
		return linkbridge.Errorf(linkbridge.EINVALID, "document delivery needs an outbox id, a message id and a state")
	}
	up := d.UpdatedAt
	if up.IsZero() {
		up = db.Now()
	}
	var oc any
	if d.Outcome != nil {
		oc = d.Outcome
	}
	return db.w.do(ctx, func(w *writer) error {
		_, err := w.exec(`INSERT INTO document_delivery (`+documentDeliveryColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (outbox_id) DO UPDATE SET message_id = excluded.message_id, mesh_message_id = excluded.mesh_message_id,
				chunks_sent = excluded.chunks_sent, chunks_total = excluded.chunks_total, state = excluded.state,
				reason = excluded.reason, outcome = excluded.outcome, sent_at = excluded.sent_at,
				inf_ack_at = excluded.inf_ack_at, bus_ack_at = excluded.bus_ack_at, updated_at = excluded.updated_at`,
			d.OutboxID, d.MessageID, d.MeshMessageID, d.ChunksSent, d.ChunksTotal, string(d.State), d.Reason, oc,
			optTime(d.SentAt), optTime(d.InfAckAt), optTime(d.BusAckAt), formatTime(up))
		if err != nil {
			return fmt.Errorf("sqlite: save document delivery %d: %w", d.OutboxID, err)
		}
		return nil
	})
}

// DocumentDelivery returns the record of an outbox message, or ENOTFOUND.
func (db *DB) DocumentDelivery(ctx context.Context, outboxID int64) (*linkbridge.DocumentDelivery, error) {
	return db.documentDelivery(ctx, `outbox_id = ?`, outboxID)
}

// FindDocumentDelivery returns the record of an ITK3 message id, or (with
// messageID "") of a MESH message id; ENOTFOUND when there is none.
func (db *DB) FindDocumentDelivery(ctx context.Context, messageID, meshID string) (*linkbridge.DocumentDelivery, error) {
	if messageID != "" {
		return db.documentDelivery(ctx, `message_id = ? ORDER BY outbox_id DESC LIMIT 1`, messageID)
	}
	if meshID == "" {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "no document delivery without an id")
	}
	return db.documentDelivery(ctx, `mesh_message_id = ? ORDER BY outbox_id DESC LIMIT 1`, meshID)
}

func (db *DB) documentDelivery(ctx context.Context, where string, arg any) (*linkbridge.DocumentDelivery, error) {
	var (
		d                       linkbridge.DocumentDelivery
		state                   string
		sent, inf, bus, updated string
	)
	err := db.read.QueryRowContext(ctx, `SELECT `+documentDeliveryColumns+` FROM document_delivery WHERE `+where, arg).Scan(
		&d.OutboxID, &d.MessageID, &d.MeshMessageID, &d.ChunksSent, &d.ChunksTotal, &state, &d.Reason, &d.Outcome,
		&sent, &inf, &bus, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "document delivery not found")
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: read document delivery: %w", err)
	}
	d.State = linkbridge.DocumentDeliveryState(state)
	if err := parseTimes(storedTime{&d.SentAt, sent}, storedTime{&d.InfAckAt, inf}, storedTime{&d.BusAckAt, bus},
		storedTime{&d.UpdatedAt, updated}); err != nil {
		return nil, err
	}
	return &d, nil
}
