package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/casework"
	"github.com/linkbridge/linkbridge/outbox"
	"github.com/linkbridge/linkbridge/senddoc"
)

// MeshConfig is the send-document write-back route's configuration
// (docs/send-document.md#configuration).
type MeshConfig struct {
	// Route is the default route of every practice (fhir, send-document,
	// both); RoutesFile maps practices to their own (JSON).
	Route, RoutesFile string
	// Triggers are the points a document is sent at (comma-separated).
	Triggers    string
	ServiceName string
	// MESH API.
	URL, Mailbox, Password, SharedKey string
	ClientCert, ClientKey, CACert     string
	ChunkSize                         int
	// Format is the messages' format on MESH: json or xml.
	Format                   string
	Poll, BusinessAckTimeout time.Duration
}

func (c *ServeCommand) meshFlags(fs *commandFlags, m *MeshConfig) {
	fs.str(&m.Route, "writeback-route", "WRITEBACK_ROUTE", "fhir", "every practice's write-back route unless --writeback-routes names its own: fhir, send-document (GP Connect Send Document over MESH) or both")
	fs.str(&m.RoutesFile, "writeback-routes", "WRITEBACK_ROUTES", "", `JSON file of per-practice routes, {"default": "fhir", "practices": {"A81001": {"route": "send-document", "mailbox": ""}}}`)
	fs.str(&m.Triggers, "send-document-triggers", "SEND_DOCUMENT_TRIGGERS", "accepted,declined,discharged", "points that send the practice a document: accepted, declined, plan-agreed, discharged")
	fs.str(&m.ServiceName, "service-name", "SERVICE_NAME", "", "the social prescribing service's name on documents")
	fs.url(&m.URL, "mesh-url", "MESH_URL", "", "MESH API base URL")
	fs.str(&m.Mailbox, "mesh-mailbox", "MESH_MAILBOX", "", "the service's MESH mailbox id")
	fs.secretStr(&m.Password, "mesh-password", "MESH_PASSWORD", "", "the mailbox password")
	fs.secretStr(&m.SharedKey, "mesh-shared-key", "MESH_SHARED_KEY", "", "the MESH environment's shared key of the authentication HMAC")
	fs.str(&m.ClientCert, "mesh-client-cert", "MESH_CLIENT_CERT", "", "client certificate (PEM) MESH requires")
	fs.str(&m.ClientKey, "mesh-client-key", "MESH_CLIENT_KEY", "", "its key (PEM)")
	fs.str(&m.CACert, "mesh-ca", "MESH_CA", "", "CA certificate (PEM) to trust for MESH")
	fs.oneOf(&m.Format, "mesh-format", "MESH_FORMAT", "json", []string{"json", "xml"}, "format of the Send Document messages on MESH: json or xml (FHIR STU3)")
	fs.integer(&m.ChunkSize, "mesh-chunk-size", "MESH_CHUNK_SIZE", mesh.DefaultChunkSize, "bytes of one MESH chunk; larger messages are chunked")
	fs.duration(&m.Poll, "mesh-poll", "MESH_POLL", 30*time.Second, "how often the MESH inbox is read for acknowledgements")
	fs.duration(&m.BusinessAckTimeout, "mesh-business-ack-timeout", "MESH_BUSINESS_ACK_TIMEOUT", 72*time.Hour, "dead-letter (alert) a document whose business acknowledgement has not come this long after sending")
}

// meshRoute is the wired send-document route.
type meshRoute struct {
	routes    *linkbridge.WriteBackRoutes
	documents *casework.Documents
	sender    *mesh.Sender
	poller    *mesh.Poller
	poll      time.Duration
}

// setupMesh reads the routes and, when any practice sends documents,
// builds the MESH client, Sender and Poller (nil route: FHIR only).
func setupMesh(m *MeshConfig, store any, logger *slog.Logger) (*meshRoute, error) {
	var file []byte
	if m.RoutesFile != "" {
		b, err := os.ReadFile(m.RoutesFile)
		if err != nil {
			return nil, fmt.Errorf("--writeback-routes: %w", err)
		}
		file = b
	}
	routes, err := linkbridge.ParseWriteBackRoutes(file, m.Route)
	if err != nil {
		return nil, err
	}
	if !routes.Any() {
		return &meshRoute{routes: routes}, nil
	}
	triggers, err := senddoc.ParseTriggers(m.Triggers)
	if err != nil {
		return nil, err
	}
	format, err := senddoc.ParseFormat(m.Format)
	if err != nil {
		return nil, fmt.Errorf("--mesh-format: %w", err)
	}
	ds, ok := store.(linkbridge.DocumentDeliveryStore)
	if !ok {
		return nil, errors.New("send-document route: this store keeps no document deliveries")
	}
	sent, ok := store.(linkbridge.OutboxStore)
	if !ok {
		return nil, errors.New("send-document route: this store has no outbox")
	}
	if m.URL == "" || m.Mailbox == "" {
		return nil, errors.New("send-document route: --mesh-url and --mesh-mailbox are required")
	}
	cfg := mesh.Config{BaseURL: m.URL, Mailbox: m.Mailbox, Password: m.Password, SharedKey: m.SharedKey,
		ChunkSize: m.ChunkSize, Logger: logger}
	tc, err := clientTLS("mesh", m.ClientCert, m.ClientKey, m.CACert)
	if err != nil {
		return nil, err
	}
	cfg.TLS = tc
	client, err := mesh.New(cfg)
	if err != nil {
		return nil, err
	}
	poll := m.Poll
	if poll <= 0 {
		poll = 30 * time.Second
	}
	return &meshRoute{routes: routes, poll: poll,
		documents: &casework.Documents{Triggers: triggers, ServiceName: m.ServiceName, Sent: sent},
		sender:    &mesh.Sender{Client: client, Store: ds, Routes: routes, AckPoll: poll, BusinessAckTimeout: m.BusinessAckTimeout, Format: format, Logger: logger},
		poller:    &mesh.Poller{Client: client, Store: ds, Logger: logger}}, nil
}

// enabled reports whether documents are sent.
func (r *meshRoute) enabled() bool { return r != nil && r.sender != nil }

// wrap routes send-document messages to MESH and the rest to fhir (nil:
// no FHIR endpoint).
func (r *meshRoute) wrap(fhir outbox.Sender) outbox.Sender {
	if !r.enabled() {
		return fhir
	}
	return outbox.ByType{Default: fhir, Types: map[string]outbox.Sender{linkbridge.SendDocumentType: r.sender}}
}

// start runs the acknowledgement poller until ctx ends (after a
// handshake, which MESH asks for at the start of a session; a failed one
// is logged, and polling tries again).
func (r *meshRoute) start(ctx context.Context, relay *outbox.Relay, logger *slog.Logger) {
	if !r.enabled() {
		return
	}
	r.poller.OnChange = relay.Notify
	if err := r.sender.Client.Handshake(ctx); err != nil {
		logger.Warn("MESH handshake failed", slog.String("error", err.Error()))
	}
	go r.poller.Run(ctx, r.poll)
	logger.Info("send-document route started", slog.String("mesh_mailbox", r.sender.Client.Mailbox()))
}
