package refmesh

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/senddoc"
)

const inboxSchema = `CREATE TABLE IF NOT EXISTS filed_document (message_id TEXT PRIMARY KEY, document_id TEXT NOT NULL,
	nhs_number TEXT NOT NULL, sender_ods TEXT NOT NULL, title TEXT NOT NULL, replaces TEXT NOT NULL, pdf BLOB NOT NULL,
	filed_at TEXT NOT NULL)`

// GPInbox is the reference GP document inbox: it reads a practice's MESH
// mailbox, validates each Send Document message (senddoc.Validate), files
// valid documents and answers every message with ITK3 acknowledgements as
// requested: an infrastructure acknowledgement on receipt (negative, with
// the ITK3 code, for an invalid message) and a business acknowledgement
// once filed.
type GPInbox struct {
	// Client reads the practice's mailbox and sends the acknowledgements.
	Client   *mesh.Client
	Practice senddoc.Party
	// DB holds the filed documents (the reference server's file will do).
	DB     *sql.DB
	Logger *slog.Logger
	Now    func() time.Time
}

// NewGPInbox returns an inbox filing into the server's database.
func (s *Server) NewGPInbox(c *mesh.Client, practice senddoc.Party) (*GPInbox, error) {
	if _, err := s.db.Exec(inboxSchema); err != nil {
		return nil, err
	}
	return &GPInbox{Client: c, Practice: practice, DB: s.db, Logger: slog.New(slog.DiscardHandler), Now: time.Now}, nil
}

// FiledDocument is a document the inbox filed.
type FiledDocument struct {
	MessageID, DocumentID, NHSNumber, SenderODS, Title, Replaces string
	PDF                                                          []byte
}

// Filed lists the filed documents, oldest first.
func (g *GPInbox) Filed(ctx context.Context) ([]FiledDocument, error) {
	rows, err := g.DB.QueryContext(ctx, `SELECT message_id, document_id, nhs_number, sender_ods, title, replaces, pdf FROM filed_document ORDER BY filed_at, message_id`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []FiledDocument
	for rows.Next() {
		var d FiledDocument
		if err := rows.Scan(&d.MessageID, &d.DocumentID, &d.NHSNumber, &d.SenderODS, &d.Title, &d.Replaces, &d.PDF); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Poll processes every message waiting in the inbox and reports how many.
func (g *GPInbox) Poll(ctx context.Context) (int, error) {
	ids, err := g.Client.Inbox(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if err := g.process(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Run polls every interval until ctx ends.
func (g *GPInbox) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := g.Poll(ctx); err != nil && ctx.Err() == nil {
			g.Logger.Warn("refmesh: GP inbox poll failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *GPInbox) process(ctx context.Context, id string) error {
	in, err := g.Client.Download(ctx, id)
	if err != nil {
		return err
	}
	from := in.Header.Get(mesh.HeaderFrom)
	if in.Report() || in.Header.Get(mesh.HeaderWorkflowID) != mesh.WorkflowSendDocument {
		return g.Client.Acknowledge(ctx, id) // not for this inbox
	}
	// Responses go back in the message's own format (JSON or XML).
	format := senddoc.FormatOf(in.Body)
	rec, err := senddoc.Validate(in.Body)
	var inv *senddoc.Invalid
	switch {
	case errors.As(err, &inv):
		g.Logger.Info("refmesh: invalid Send Document message", slog.String("mesh_id", id), slog.String("code", inv.Code))
		if inv.MessageID != "" {
			if err := g.respond(ctx, from, senddoc.Response{ForMessageID: inv.MessageID, Code: inv.Code, Diagnostics: inv.Diagnostics}, "", format); err != nil {
				return err
			}
		}
		return g.Client.Acknowledge(ctx, id)
	case err != nil:
		return err
	}
	if rec.InfAck {
		if err := g.respond(ctx, from, senddoc.Response{ForMessageID: rec.MessageID, OK: true, Code: senddoc.CodeSuccess}, rec.SenderODS, format); err != nil {
			return err
		}
	}
	// Filing is idempotent per message id: a message received twice is
	// acknowledged twice but filed once.
	if _, err := g.DB.ExecContext(ctx, `INSERT INTO filed_document (message_id, document_id, nhs_number, sender_ods, title, replaces, pdf, filed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING`, rec.MessageID, rec.DocumentID, rec.NHSNumber,
		rec.SenderODS, rec.Title, rec.Replaces, rec.PDF, g.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("refmesh: file document: %w", err)
	}
	if rec.BusAck {
		if err := g.respond(ctx, from, senddoc.Response{ForMessageID: rec.MessageID, Business: true, OK: true, Code: senddoc.CodeSuccess}, rec.SenderODS, format); err != nil {
			return err
		}
	}
	return g.Client.Acknowledge(ctx, id)
}

// respond sends an ITK3 response to the sender's mailbox with the
// acknowledgement workflow id.
func (g *GPInbox) respond(ctx context.Context, toMailbox string, r senddoc.Response, senderODS string, format senddoc.Format) error {
	if senderODS == "" {
		senderODS = toMailbox
	}
	body, err := senddoc.BuildResponse(r, uuid.NewString(), g.Practice, senddoc.Party{ODS: senderODS}, g.Now())
	if err == nil {
		body, err = senddoc.Encode(body, format)
	}
	if err != nil {
		return err
	}
	_, err = g.Client.Send(ctx, mesh.Outgoing{To: toMailbox, WorkflowID: mesh.WorkflowSendDocumentAck, LocalID: r.ForMessageID,
		ContentType: format.ContentType(), Body: body},
		mesh.Progress{}, func(mesh.Progress) error { return nil })
	return err
}
