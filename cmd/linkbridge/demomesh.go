package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/refmesh"
	"github.com/linkbridge/linkbridge/senddoc"
)

// The demo's MESH parties: the social prescribing service's mailbox and
// the practice's, where the demo person is registered for automatic
// routing (docs/send-document.md#mesh).
const (
	demoServiceMailbox  = "Y02662OT001"
	demoPracticeMailbox = "A81001OT001"
	demoPracticeODS     = "A81001"
)

// demoMESH is the reference MESH server and the practice's GP document
// inbox behind it, run in process for "demo --route send-document".
type demoMESH struct {
	srv                   *refmesh.Server
	inbox                 *refmesh.GPInbox
	hs                    *http.Server
	base                  string
	spBox, gpBox          string
	spPassword, sharedKey string
	// gatewayDB is the gateway's store, read for the acknowledgements
	// its MESH poller records (opened at the first wait).
	gatewayDB string
	store     appStore
	stop      context.CancelFunc
}

// startDemoMESH opens the reference MESH on path, with fresh secrets,
// both mailboxes, the demo person registered at the practice, and the
// practice's document inbox reading its mailbox.
func startDemoMESH(ctx context.Context, path, addr, gatewayDB string) (*demoMESH, error) {
	m := &demoMESH{spBox: demoServiceMailbox, gpBox: demoPracticeMailbox, spPassword: randomSecret(), sharedKey: randomSecret(), gatewayDB: gatewayDB}
	srv, err := refmesh.Open(path, m.sharedKey)
	if err != nil {
		return nil, err
	}
	m.srv = srv
	gpPassword := randomSecret()
	err = errors.Join(srv.AddMailbox(m.spBox, m.spPassword), srv.AddMailbox(m.gpBox, gpPassword),
		// The demo person's registration, as PDS would give it.
		srv.Register(demoNHS, "1956-03-14", "XXTESTPATIENT-SOCPRESC", m.gpBox))
	if err != nil {
		return nil, errors.Join(err, srv.Close())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("demo: listen: %w", err), srv.Close())
	}
	m.hs = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.hs.Serve(ln) }()
	m.base = "http://" + ln.Addr().String()
	client, err := mesh.New(mesh.Config{BaseURL: m.base, Mailbox: m.gpBox, Password: gpPassword, SharedKey: m.sharedKey})
	if err == nil {
		m.inbox, err = srv.NewGPInbox(client, senddoc.Party{ODS: demoPracticeODS})
	}
	if err != nil {
		return nil, errors.Join(err, m.close())
	}
	ictx, stop := context.WithCancel(ctx)
	m.stop = stop
	go m.inbox.Run(ictx, 50*time.Millisecond)
	return m, nil
}

// serveArgs are the gateway's flags for the route: its MESH mailbox, read
// often so the demo sees acknowledgements at once, and a document at
// every point of the episode.
func (m *demoMESH) serveArgs(route linkbridge.WriteBackRoute) []string {
	return []string{"--writeback-route", route.String(), "--mesh-url", m.base, "--mesh-mailbox", m.spBox,
		"--mesh-password", m.spPassword, "--mesh-shared-key", m.sharedKey, "--mesh-poll", "100ms",
		"--send-document-triggers", "accepted,declined,plan-agreed,discharged", "--service-name", "Parkside social prescribing (demo)"}
}

// DemoDocument is a document the practice's inbox filed, with what the
// gateway recorded of its delivery.
type DemoDocument struct {
	Title     string
	PDF       []byte
	MessageID string
	// InfAck and BusAck are when the gateway read the infrastructure and
	// business acknowledgements.
	InfAck, BusAck time.Time
}

// String renders the document as the demo shows it.
func (d *DemoDocument) String() string {
	return fmt.Sprintf("   GP document inbox: filed %q (PDF, %s KB) from MESH\n   gateway: ITK3 infrastructure acknowledgement read %s, business acknowledgement %s: delivered\n",
		d.Title, strconv.FormatFloat(float64(len(d.PDF))/1024, 'f', 1, 64), d.InfAck.Local().Format("15:04:05.000"), d.BusAck.Local().Format("15:04:05.000"))
}

// waitDocument waits until the inbox has filed its nth document and the
// gateway has read both acknowledgements of it back from its mailbox.
func (m *demoMESH) waitDocument(ctx context.Context, n int) (*DemoDocument, error) {
	deadline := time.Now().Add(15 * time.Second)
	state := "not filed"
	for {
		doc, err := m.document(ctx, n)
		if err != nil {
			return nil, err
		}
		if doc != nil && !doc.BusAck.IsZero() {
			return doc, nil
		}
		if doc != nil {
			state = "filed, acknowledgements not yet read by the gateway"
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("document %d: %s within 15 s", n, state)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// document returns the inbox's nth filed document with its delivery as
// the gateway's store records it (nil before it is filed).
func (m *demoMESH) document(ctx context.Context, n int) (*DemoDocument, error) {
	filed, err := m.inbox.Filed(ctx)
	if err != nil || len(filed) < n {
		return nil, err
	}
	f := filed[n-1]
	doc := &DemoDocument{Title: f.Title, PDF: f.PDF, MessageID: f.MessageID}
	if m.store == nil {
		if m.store, err = openExistingStore(ctx, m.gatewayDB, nil); err != nil {
			return nil, err
		}
	}
	ds, ok := m.store.(linkbridge.DocumentDeliveryStore)
	if !ok {
		return nil, errors.New("demo: the gateway's store keeps no document deliveries")
	}
	dd, err := ds.FindDocumentDelivery(ctx, f.MessageID, "")
	if linkbridge.ErrorCode(err) == linkbridge.ENOTFOUND {
		return doc, nil
	} else if err != nil {
		return nil, err
	}
	if dd.State == linkbridge.DeliveryFailed || dd.State == linkbridge.DeliveryDead {
		return nil, fmt.Errorf("document %q was refused: %s", f.Title, dd.Reason)
	}
	if dd.State == linkbridge.DeliveryAcked {
		doc.InfAck, doc.BusAck = dd.InfAckAt, dd.BusAckAt
	}
	return doc, nil
}

// close stops the inbox and the server.
func (m *demoMESH) close() error {
	if m.stop != nil {
		m.stop()
	}
	var err error
	if m.store != nil {
		err = m.store.Close()
	}
	if m.hs != nil {
		err = errors.Join(err, m.hs.Close())
	}
	return errors.Join(err, m.srv.Close())
}

// randomSecret is a fresh password or key for the demo's MESH.
func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}
