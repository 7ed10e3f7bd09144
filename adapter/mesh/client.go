package mesh

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

// MESH headers the client sends and reads.
const (
	HeaderFrom          = "Mex-From"
	HeaderTo            = "Mex-To"
	HeaderWorkflowID    = "Mex-WorkflowID"
	HeaderChunkRange    = "Mex-Chunk-Range"
	HeaderLocalID       = "Mex-LocalID"
	HeaderSubject       = "Mex-Subject"
	HeaderMessageID     = "Mex-MessageID"
	HeaderMessageType   = "Mex-MessageType"
	HeaderLinkedMsgID   = "Mex-LinkedMsgID"
	HeaderStatusSuccess = "Mex-StatusSuccess"
	HeaderStatusCode    = "Mex-StatusCode"
	HeaderStatusDesc    = "Mex-StatusDescription"
	HeaderContentType   = "Mex-Content-Type"
	// AcceptV2 asks for version 2 of the API's JSON answers.
	AcceptV2 = "application/vnd.mesh.v2+json"
)

// The Send Document workflow ids (GP Connect Send Document 2.x; 1.x used
// GPFED_CONSULT_REPORT and GPFED_CONSULT_REPORT_ACK).
const (
	WorkflowSendDocument    = "GPCONNECT_SEND_DOCUMENT"
	WorkflowSendDocumentAck = "GPCONNECT_SEND_DOCUMENT_ACK"
)

// DefaultChunkSize is the largest chunk the client uploads (MESH accepts up
// to 100 MB a chunk; smaller chunks lose less to a dropped connection).
const DefaultChunkSize = 20 << 20

// Config configures a Client.
type Config struct {
	// BaseURL is the MESH API root (e.g. https://msg.intspineservices.nhs.uk).
	BaseURL string
	// Mailbox, Password and SharedKey authenticate (the shared key is the
	// environment's, not the mailbox's).
	Mailbox, Password, SharedKey string
	// TLS carries the client certificate MESH requires.
	TLS *tls.Config
	// ChunkSize splits larger messages (default DefaultChunkSize).
	ChunkSize int
	// RetryMax, RetryWaitMin and RetryWaitMax bound in-process retries of
	// one call (defaults 3, 200ms, 5s).
	RetryMax                   int
	RetryWaitMin, RetryWaitMax time.Duration
	// Timeout bounds one HTTP exchange (default 60s).
	Timeout time.Duration
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	Logger    *slog.Logger
	// Now is the clock of the authentication timestamp (default time.Now).
	Now func() time.Time
}

// Client calls the MESH API as one mailbox. Safe for concurrent use.
type Client struct {
	cfg Config
	rc  *retryablehttp.Client
}

// Error is a MESH API refusal.
type Error struct {
	Status int
	Body   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("mesh: HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500 ||
		e.Status == http.StatusUnauthorized // a clock out of step, or a rotated password being fixed
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" || cfg.Mailbox == "" {
		return nil, errors.New("mesh: base URL and mailbox are required")
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 3
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = 200 * time.Millisecond
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = cfg.Timeout
	if cfg.TLS != nil {
		hc.Transport.(*http.Transport).TLSClientConfig = cfg.TLS
	}
	if cfg.Transport != nil {
		hc.Transport = cfg.Transport
	}
	c := &Client{cfg: cfg}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = hc
	rc.Logger = nil
	rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax = cfg.RetryMax, cfg.RetryWaitMin, cfg.RetryWaitMax
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	// Every attempt carries a fresh nonce and timestamp: MESH refuses a
	// nonce it has seen.
	rc.PrepareRetry = func(req *http.Request) error {
		req.Header.Set("Authorization", c.token())
		return nil
	}
	c.rc = rc
	return c, nil
}

// Mailbox is the client's mailbox id.
func (c *Client) Mailbox() string { return c.cfg.Mailbox }

func (c *Client) token() string {
	return AuthToken(c.cfg.Mailbox, c.cfg.Password, c.cfg.SharedKey, uuid.NewString(), 0, c.cfg.Now())
}

func (c *Client) url(parts ...string) string {
	u := strings.TrimRight(c.cfg.BaseURL, "/") + "/messageexchange/" + url.PathEscape(c.cfg.Mailbox)
	for _, p := range parts {
		u += "/" + url.PathEscape(p)
	}
	return u
}

// do sends a request and returns the response with its body read; a status
// other than want is an *Error.
func (c *Client) do(ctx context.Context, method, u string, body []byte, hdr http.Header, want ...int) (*http.Response, []byte, error) {
	var rd any
	if body != nil {
		rd = body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", AcceptV2)
	req.Header.Set("Authorization", c.token())
	resp, err := c.rc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("mesh: %s %s: %w", method, redact(u), err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 200<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("mesh: read answer: %w", err)
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, b, nil
		}
	}
	return resp, b, &Error{Status: resp.StatusCode, Body: string(b)}
}

// redact keeps the path's route, not its ids.
func redact(u string) string {
	if i := strings.Index(u, "/messageexchange/"); i >= 0 {
		return u[:i] + "/messageexchange/…"
	}
	return u
}

// Handshake validates the mailbox (MESH asks clients to do so once a
// session, at start).
func (c *Client) Handshake(ctx context.Context) error {
	_, _, err := c.do(ctx, http.MethodGet, c.url(), nil, http.Header{}, http.StatusOK)
	return err
}

// Outgoing is a message to send.
type Outgoing struct {
	// To is the recipient mailbox, or the automatic-routing address
	// GPPROVIDER_<NHS number>_<DDMMYYYY>_<surname>.
	To, WorkflowID, Subject, LocalID string
	// ContentType is the body's media type, sent as Mex-Content-Type
	// ("" is application/fhir+json).
	ContentType string
	Body        []byte
}

// Progress is how far a chunked send came: the MESH message id (after the
// first chunk) and the chunks MESH accepted.
type Progress struct {
	MeshMessageID string
	ChunksSent    int
	ChunksTotal   int
}

// Chunks returns how many chunks a body of n bytes takes.
func (c *Client) Chunks(n int) int { return max(1, (n+c.cfg.ChunkSize-1)/c.cfg.ChunkSize) }

// Send uploads m from p (zero for a new message), calling record after
// each accepted chunk so that a caller who stores the progress durably
// resumes an interrupted send where it stopped rather than sending the
// message twice. A chunk MESH may have received but not answered is sent
// again: MESH (and the reference server) replace a chunk uploaded twice.
func (c *Client) Send(ctx context.Context, m Outgoing, p Progress, record func(Progress) error) (Progress, error) {
	total := c.Chunks(len(m.Body))
	p.ChunksTotal = total
	chunk := func(n int) []byte {
		start := (n - 1) * c.cfg.ChunkSize
		return m.Body[start:min(len(m.Body), start+c.cfg.ChunkSize)]
	}
	rng := func(n int) string { return strconv.Itoa(n) + ":" + strconv.Itoa(total) }
	if p.MeshMessageID == "" {
		hdr := http.Header{}
		hdr.Set(HeaderFrom, c.cfg.Mailbox)
		hdr.Set(HeaderTo, m.To)
		hdr.Set(HeaderWorkflowID, m.WorkflowID)
		if m.Subject != "" {
			hdr.Set(HeaderSubject, m.Subject)
		}
		if m.LocalID != "" {
			hdr.Set(HeaderLocalID, m.LocalID)
		}
		ct := m.ContentType
		if ct == "" {
			ct = "application/fhir+json"
		}
		hdr.Set(HeaderContentType, ct)
		hdr.Set("Content-Type", "application/octet-stream")
		hdr.Set(HeaderChunkRange, rng(1))
		_, b, err := c.do(ctx, http.MethodPost, c.url("outbox"), chunk(1), hdr, http.StatusAccepted, http.StatusOK)
		if err != nil {
			return p, err
		}
		var ans struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(b, &ans); err != nil || ans.MessageID == "" {
			return p, fmt.Errorf("mesh: send answer names no message id")
		}
		p.MeshMessageID, p.ChunksSent = ans.MessageID, 1
		if err := record(p); err != nil {
			return p, err
		}
	}
	for n := p.ChunksSent + 1; n <= total; n++ {
		hdr := http.Header{}
		hdr.Set("Content-Type", "application/octet-stream")
		hdr.Set(HeaderChunkRange, rng(n))
		if _, _, err := c.do(ctx, http.MethodPost, c.url("outbox", p.MeshMessageID, strconv.Itoa(n)), chunk(n), hdr,
			http.StatusAccepted, http.StatusOK); err != nil {
			return p, err
		}
		p.ChunksSent = n
		if err := record(p); err != nil {
			return p, err
		}
	}
	return p, nil
}

// Inbox lists the ids of the messages waiting in the mailbox.
func (c *Client) Inbox(ctx context.Context) ([]string, error) {
	_, b, err := c.do(ctx, http.MethodGet, c.url("inbox"), nil, http.Header{}, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Messages []string `json:"messages"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("mesh: inbox answer: %w", err)
	}
	return ans.Messages, nil
}

// Incoming is a downloaded message: its MESH headers and whole body.
type Incoming struct {
	ID     string
	Header http.Header
	Body   []byte
}

// Report reports whether the message is a MESH report (a non-delivery
// report names the undelivered message in LinkedMsgID).
func (m *Incoming) Report() bool { return strings.EqualFold(m.Header.Get(HeaderMessageType), "REPORT") }

// Download fetches a message, every chunk of it.
func (c *Client) Download(ctx context.Context, id string) (*Incoming, error) {
	resp, b, err := c.do(ctx, http.MethodGet, c.url("inbox", id), nil, http.Header{}, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return nil, err
	}
	in := &Incoming{ID: id, Header: resp.Header, Body: b}
	if resp.StatusCode == http.StatusPartialContent {
		_, total, err := parseRange(resp.Header.Get(HeaderChunkRange))
		if err != nil {
			return nil, err
		}
		for n := 2; n <= total; n++ {
			_, cb, err := c.do(ctx, http.MethodGet, c.url("inbox", id, strconv.Itoa(n)), nil, http.Header{}, http.StatusOK, http.StatusPartialContent)
			if err != nil {
				return nil, err
			}
			in.Body = append(in.Body, cb...)
		}
	}
	return in, nil
}

// Acknowledge removes a read message from the inbox.
func (c *Client) Acknowledge(ctx context.Context, id string) error {
	_, _, err := c.do(ctx, http.MethodPut, c.url("inbox", id, "status", "acknowledged"), []byte{}, http.Header{}, http.StatusOK)
	return err
}

// parseRange parses a Mex-Chunk-Range "n:total".
func parseRange(s string) (n, total int, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("mesh: chunk range %q is not n:total", s)
	}
	n, err1 := strconv.Atoi(a)
	total, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 1 || total < n || total > 10000 {
		return 0, 0, fmt.Errorf("mesh: chunk range %q is not n:total", s)
	}
	return n, total, nil
}

// ParseChunkRange parses a Mex-Chunk-Range header ("" is 1:1).
func ParseChunkRange(s string) (n, total int, err error) {
	if s == "" {
		return 1, 1, nil
	}
	return parseRange(s)
}
