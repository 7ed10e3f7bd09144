package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge/adapter/mesh"
	"github.com/linkbridge/linkbridge/refmesh"
	"github.com/linkbridge/linkbridge/senddoc"
)

// ReferenceMESHCommand runs the reference MESH mailbox server and the
// reference GP document inbox behind it (docs/send-document.md#reference-mesh).
type ReferenceMESHCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Ready, if set, receives the listening address.
	Ready chan<- string
}

// Run serves until ctx ends.
func (c *ReferenceMESHCommand) Run(ctx context.Context, args []string) error {
	fs := newFlags("reference-mesh", c.Getenv, c.Stderr)
	fs.synopsis = "reference-mesh [--addr 127.0.0.1:8092] [--db reference-mesh.db] [--mailboxes id=password,...] [--gp-mailbox ID] [flags]"
	var (
		addr, db, key, boxes, gpBox, gpODS string
		catchAll                           bool
		poll                               time.Duration
	)
	fs.str(&addr, "addr", "REFMESH_ADDR", "127.0.0.1:8092", "listen address")
	fs.str(&db, "db", "REFMESH_DB", "reference-mesh.db", "SQLite file of mailboxes and messages (created when missing)")
	fs.secretStr(&key, "shared-key", "REFMESH_SHARED_KEY", "TestKey", "the environment's shared key of the authentication HMAC")
	fs.secretStr(&boxes, "mailboxes", "REFMESH_MAILBOXES", "", "mailboxes to create, id=password,...")
	fs.str(&gpBox, "gp-mailbox", "REFMESH_GP_MAILBOX", "", "mailbox of the reference GP document inbox (created with password gp-password unless listed); empty: no inbox")
	fs.str(&gpODS, "gp-ods", "REFMESH_GP_ODS", "A81001", "ODS code of the reference practice")
	fs.boolean(&catchAll, "gp-catch-all", "REFMESH_GP_CATCH_ALL", true, "route every unregistered GPPROVIDER_ address to the GP inbox (demo); false sends non-delivery reports")
	fs.duration(&poll, "gp-poll", "", 500*time.Millisecond, "how often the GP inbox reads its mailbox")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("reference-mesh takes no arguments, got %q", fs.Args())
	}
	logger := slog.New(slog.NewTextHandler(c.Stderr, nil))
	srv, err := refmesh.Open(db, key)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()
	srv.Logger = logger
	pw := map[string]string{}
	for _, b := range strings.Split(boxes, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		id, p, ok := strings.Cut(b, "=")
		if !ok {
			return fmt.Errorf("--mailboxes: %q is not id=password", b)
		}
		pw[id] = p
	}
	if gpBox != "" && pw[gpBox] == "" {
		pw[gpBox] = "gp-password"
	}
	for id, p := range pw {
		if err := srv.AddMailbox(id, p); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	if gpBox != "" {
		if catchAll {
			srv.CatchAll = gpBox
		}
		client, err := mesh.New(mesh.Config{BaseURL: base, Mailbox: gpBox, Password: pw[gpBox], SharedKey: key, Logger: logger})
		if err != nil {
			return err
		}
		inbox, err := srv.NewGPInbox(client, senddoc.Party{ODS: gpODS})
		if err != nil {
			return err
		}
		inbox.Logger = logger
		go inbox.Run(ctx, poll)
	}
	logger.Info("reference MESH serving", slog.String("url", base), slog.String("gp_mailbox", gpBox))
	if c.Ready != nil {
		c.Ready <- ln.Addr().String()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}
