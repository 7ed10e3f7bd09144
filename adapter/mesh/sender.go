package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/outbox"
	"github.com/linkbridge/linkbridge/senddoc"
)

// Sender delivers send-document outbox messages over MESH
// (docs/send-document.md#delivery). An outbox message stays pending until
// its business acknowledgement comes: each attempt uploads what is not yet
// uploaded (resuming a chunked send from the recorded progress), then
// waits for the acknowledgements the Poller records, asking the relay to
// look again after AckPoll. A negative acknowledgement or a MESH
// non-delivery report dead-letters the message with its reason; no
// business acknowledgement within BusinessAckTimeout dead-letters it too,
// which alerts the operator (a dead letter is on /metrics and in
// `linkbridge outbox list`). Requeueing a dead letter sends the document
// again after a failure, or waits again after a timeout.
type Sender struct {
	Client *Client
	Store  linkbridge.DocumentDeliveryStore
	// Routes gives a practice's configured mailbox ("" addresses the
	// document by automatic routing).
	Routes *linkbridge.WriteBackRoutes
	// AckPoll is how soon the relay looks again at a message awaiting
	// acknowledgement (default 30s).
	AckPoll time.Duration
	// BusinessAckTimeout flags a message whose business acknowledgement has
	// not come this long after it was sent (default 72h).
	BusinessAckTimeout time.Duration
	// Format is how messages travel: FHIR STU3 JSON ("", the default) or
	// XML.
	Format senddoc.Format
	Logger *slog.Logger
	Now    func() time.Time
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Sender) wait(d *linkbridge.DocumentDelivery) error {
	p := s.AckPoll
	if p <= 0 {
		p = 30 * time.Second
	}
	return &outbox.RetryableError{Status: http.StatusAccepted, After: p, Fixed: true,
		Err: fmt.Errorf("awaiting ITK3 acknowledgements (%s)", d.State)}
}

// DocumentOutgoing is the MESH message that carries a Send Document
// message (body: the FHIR STU3 JSON senddoc.Build renders) to an address
// in a format, as the Sender sends it: the Send Document workflow id, the
// ITK3 message id as Mex-LocalID, the document title as Mex-Subject, the
// format's Mex-Content-Type (docs/send-document.md#routes-used). The
// conformance kit's mesh-recipient role sends through it too.
func DocumentOutgoing(to string, body []byte, f senddoc.Format) (Outgoing, error) {
	msgID, _ := senddoc.Header(body)
	enc, err := senddoc.Encode(body, f)
	if err != nil {
		return Outgoing{}, err
	}
	return Outgoing{To: to, WorkflowID: WorkflowSendDocument, LocalID: msgID, Subject: senddoc.Title,
		ContentType: f.ContentType(), Body: enc}, nil
}

// Send implements outbox.Sender.
func (s *Sender) Send(ctx context.Context, m *linkbridge.OutboxMessage) (int, error) {
	msgID, practice := senddoc.Header(m.Body)
	if msgID == "" {
		return 0, &outbox.PermanentError{Err: errors.New("the outbox message is not an ITK3 message")}
	}
	d, err := s.Store.DocumentDelivery(ctx, m.ID)
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		d = &linkbridge.DocumentDelivery{OutboxID: m.ID, MessageID: msgID, State: linkbridge.DeliverySending}
	} else if err != nil {
		return 0, err
	}
	timeout := s.BusinessAckTimeout
	if timeout <= 0 {
		timeout = 72 * time.Hour
	}
	switch d.State {
	case linkbridge.DeliveryAcked:
		return http.StatusOK, nil
	case linkbridge.DeliveryFailed:
		d.State = linkbridge.DeliveryDead
		if err := s.Store.SaveDocumentDelivery(ctx, d); err != nil {
			return 0, err
		}
		return 0, &outbox.PermanentError{Status: http.StatusUnprocessableEntity, Outcome: d.Outcome, Err: errors.New(d.Reason)}
	case linkbridge.DeliveryDead:
		// An operator requeued the dead letter: send the document again.
		*d = linkbridge.DocumentDelivery{OutboxID: m.ID, MessageID: msgID, State: linkbridge.DeliverySending}
	case linkbridge.DeliveryOverdue:
		// Requeued after the timeout: wait again (the acknowledgement may
		// still come).
		d.State, d.SentAt = linkbridge.DeliverySent, s.now()
		if err := s.Store.SaveDocumentDelivery(ctx, d); err != nil {
			return 0, err
		}
		return 0, s.wait(d)
	case linkbridge.DeliverySent, linkbridge.DeliveryInfAcked:
		if s.now().Sub(d.SentAt) > timeout {
			d.State = linkbridge.DeliveryOverdue
			d.Reason = fmt.Sprintf("no business acknowledgement within %s of sending (MESH message %s)", timeout, d.MeshMessageID)
			if err := s.Store.SaveDocumentDelivery(ctx, d); err != nil {
				return 0, err
			}
			return 0, &outbox.PermanentError{Status: http.StatusGatewayTimeout, Err: errors.New(d.Reason)}
		}
		return 0, s.wait(d)
	}
	// Sending: upload what is not uploaded yet.
	to := ""
	if s.Routes != nil {
		to = s.Routes.For(practice).Mailbox
	}
	if to == "" {
		if to, err = senddoc.Address(m.Body); err != nil {
			return 0, &outbox.PermanentError{Err: err}
		}
	}
	prog := Progress{MeshMessageID: d.MeshMessageID, ChunksSent: d.ChunksSent, ChunksTotal: d.ChunksTotal}
	// The outbox keeps the JSON; XML renders the same bytes every attempt,
	// so a resumed upload continues the same body.
	out, err := DocumentOutgoing(to, m.Body, s.Format)
	if err != nil {
		return 0, &outbox.PermanentError{Err: err}
	}
	_, err = s.Client.Send(ctx, out, prog, func(p Progress) error {
		d.MeshMessageID, d.ChunksSent, d.ChunksTotal = p.MeshMessageID, p.ChunksSent, p.ChunksTotal
		return s.Store.SaveDocumentDelivery(ctx, d)
	})
	if err != nil {
		var me *Error
		if errors.As(err, &me) && !me.Temporary() {
			if me.Status == http.StatusNotFound && d.MeshMessageID != "" {
				// MESH no longer knows the half-uploaded message: start
				// again.
				*d = linkbridge.DocumentDelivery{OutboxID: m.ID, MessageID: msgID, State: linkbridge.DeliverySending}
				if err := s.Store.SaveDocumentDelivery(ctx, d); err != nil {
					return 0, err
				}
				return me.Status, &outbox.RetryableError{Status: me.Status, Err: err}
			}
			return me.Status, &outbox.PermanentError{Status: me.Status, Err: err}
		}
		st := 0
		if me != nil {
			st = me.Status
		}
		return st, &outbox.RetryableError{Status: st, Err: err}
	}
	d.State, d.SentAt = linkbridge.DeliverySent, s.now()
	if err := s.Store.SaveDocumentDelivery(ctx, d); err != nil {
		return 0, err
	}
	if s.Logger != nil {
		s.Logger.InfoContext(ctx, "send-document uploaded to MESH", slog.Int64("outbox_id", m.ID), slog.String("mesh_message_id", d.MeshMessageID),
			slog.Int("chunks", d.ChunksTotal))
	}
	return 0, s.wait(d)
}

// Poller reads the sender's MESH inbox: ITK3 acknowledgements and MESH
// non-delivery reports of send-document messages. It records each in the
// DocumentDeliveryStore before acknowledging the read (a crash in between
// reads it again, which records the same thing), then calls OnChange (it
// wakes the relay).
type Poller struct {
	Client   *Client
	Store    linkbridge.DocumentDeliveryStore
	OnChange func()
	Logger   *slog.Logger
	Now      func() time.Time
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// Poll reads every waiting message and reports how many it recorded.
func (p *Poller) Poll(ctx context.Context) (int, error) {
	ids, err := p.Client.Inbox(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		in, err := p.Client.Download(ctx, id)
		if err != nil {
			return n, err
		}
		changed, err := p.record(ctx, in)
		if err != nil {
			return n, err
		}
		if err := p.Client.Acknowledge(ctx, id); err != nil {
			return n, err
		}
		if changed {
			n++
		}
	}
	if n > 0 && p.OnChange != nil {
		p.OnChange()
	}
	return n, nil
}

// Run polls every interval until ctx ends, logging failures (the next poll
// tries again; a message stays in the inbox until recorded).
func (p *Poller) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := p.Poll(ctx); err != nil && ctx.Err() == nil && p.Logger != nil {
			p.Logger.Warn("MESH inbox poll failed", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// record applies one inbox message to its delivery; an unrelated message
// changes nothing.
func (p *Poller) record(ctx context.Context, in *Incoming) (bool, error) {
	now := p.now()
	if in.Report() {
		linked := in.Header.Get(HeaderLinkedMsgID)
		d, err := p.Store.FindDocumentDelivery(ctx, "", linked)
		if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
			return false, nil
		} else if err != nil {
			return false, err
		}
		if strings.EqualFold(in.Header.Get(HeaderStatusSuccess), "SUCCESS") || d.State == linkbridge.DeliveryAcked {
			return false, nil
		}
		d.State = linkbridge.DeliveryFailed
		d.Reason = fmt.Sprintf("MESH non-delivery report %s: %s", in.Header.Get(HeaderStatusCode), in.Header.Get(HeaderStatusDesc))
		d.UpdatedAt = now
		return true, p.Store.SaveDocumentDelivery(ctx, d)
	}
	if in.Header.Get(HeaderWorkflowID) != WorkflowSendDocumentAck {
		return false, nil
	}
	r, err := senddoc.ParseResponse(in.Body)
	if err != nil {
		if p.Logger != nil {
			p.Logger.Warn("unreadable ITK3 response on MESH", slog.String("mesh_message_id", in.ID), slog.String("error", err.Error()))
		}
		return false, nil
	}
	d, err := p.Store.FindDocumentDelivery(ctx, r.ForMessageID, "")
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	switch {
	case d.State == linkbridge.DeliveryAcked || d.State == linkbridge.DeliveryFailed || d.State == linkbridge.DeliveryDead:
		return false, nil
	case !r.OK:
		d.State = linkbridge.DeliveryFailed
		kind := "infrastructure"
		if r.Business {
			kind = "business"
		}
		d.Reason = fmt.Sprintf("negative ITK3 %s acknowledgement %s: %s", kind, r.Code, r.Diagnostics)
		d.Outcome = r.Outcome
	case r.Business:
		d.State, d.BusAckAt = linkbridge.DeliveryAcked, now
		if d.InfAckAt.IsZero() {
			d.InfAckAt = now
		}
	default:
		d.InfAckAt = now
		if d.State == linkbridge.DeliverySent || d.State == linkbridge.DeliverySending {
			d.State = linkbridge.DeliveryInfAcked
		}
	}
	d.UpdatedAt = now
	return true, p.Store.SaveDocumentDelivery(ctx, d)
}
