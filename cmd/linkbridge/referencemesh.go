package main

import (
	"context"
	"errors"
	"flag"
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
	env := func(name, def string) string {
		if v := c.Getenv("LINKBRIDGE_REFMESH_" + name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("reference-mesh", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	addr := fs.String("addr", env("ADDR", "127.0.0.1:8092"), "listen address (LINKBRIDGE_REFMESH_ADDR)")
	db := fs.String("db", env("DB", "reference-mesh.db"), "SQLite file of mailboxes and messages (LINKBRIDGE_REFMESH_DB)")
	key := fs.String("shared-key", env("SHARED_KEY", "TestKey"), "the environment's shared key of the authentication HMAC (LINKBRIDGE_REFMESH_SHARED_KEY)")
	boxes := fs.String("mailboxes", env("MAILBOXES", ""), "mailboxes to create, id=password,... (LINKBRIDGE_REFMESH_MAILBOXES)")
	gpBox := fs.String("gp-mailbox", env("GP_MAILBOX", ""), "mailbox of the reference GP document inbox (created with password gp-password unless listed); empty: no inbox (LINKBRIDGE_REFMESH_GP_MAILBOX)")
	gpODS := fs.String("gp-ods", env("GP_ODS", "A81001"), "ODS code of the reference practice (LINKBRIDGE_REFMESH_GP_ODS)")
	catchAll := fs.Bool("gp-catch-all", env("GP_CATCH_ALL", "true") == "true", "route every unregistered GPPROVIDER_ address to the GP inbox (demo); false sends non-delivery reports (LINKBRIDGE_REFMESH_GP_CATCH_ALL)")
	poll := fs.Duration("gp-poll", 500*time.Millisecond, "how often the GP inbox reads its mailbox")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(c.Stderr, nil))
	srv, err := refmesh.Open(*db, *key)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()
	srv.Logger = logger
	pw := map[string]string{}
	for _, b := range strings.Split(*boxes, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		id, p, ok := strings.Cut(b, "=")
		if !ok {
			return fmt.Errorf("--mailboxes: %q is not id=password", b)
		}
		pw[id] = p
	}
	if *gpBox != "" && pw[*gpBox] == "" {
		pw[*gpBox] = "gp-password"
	}
	for id, p := range pw {
		if err := srv.AddMailbox(id, p); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	if *gpBox != "" {
		if *catchAll {
			srv.CatchAll = *gpBox
		}
		client, err := mesh.New(mesh.Config{BaseURL: base, Mailbox: *gpBox, Password: pw[*gpBox], SharedKey: *key, Logger: logger})
		if err != nil {
			return err
		}
		inbox, err := srv.NewGPInbox(client, senddoc.Party{ODS: *gpODS})
		if err != nil {
			return err
		}
		inbox.Logger = logger
		go inbox.Run(ctx, *poll)
	}
	logger.Info("reference MESH serving", slog.String("url", base), slog.String("gp_mailbox", *gpBox))
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
