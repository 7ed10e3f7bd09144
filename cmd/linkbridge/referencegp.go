package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/linkbridge/linkbridge/refgp"
)

// ReferenceGPCommand runs the reference GP record endpoint: a FHIR R4
// server on its own SQLite file that stores what a GP record receives;
// strict (its own ids, referential integrity enforced) unless
// --allow-client-ids.
type ReferenceGPCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Ready, if set, receives the listening address.
	Ready chan<- string
}

// Run parses flags and serves until ctx ends.
func (c *ReferenceGPCommand) Run(ctx context.Context, args []string) (err error) {
	fs := newFlags("reference-gp", c.Getenv, c.Stderr)
	fs.synopsis = "reference-gp [--addr 127.0.0.1:8090] [--db FILE] [flags]"
	var addr, db, token, level string
	var allow, noDelete bool
	fs.str(&addr, "addr", "REFGP_ADDR", "127.0.0.1:8090", "listen address")
	fs.str(&db, "db", "REFGP_DB", "reference-gp.db", "SQLite file of the GP record (created when missing)")
	fs.secretStr(&token, "token", "REFGP_TOKEN", "", "require this bearer token on every request")
	fs.boolean(&allow, "allow-client-ids", "REFGP_ALLOW_CLIENT_IDS", false,
		"lenient: accept client-assigned ids (update-as-create) and references that do not resolve; the default is strict: the endpoint's own ids, referential integrity enforced")
	fs.boolean(&noDelete, "no-delete", "REFGP_NO_DELETE", false, "do not support delete: 405, and left out of /metadata")
	fs.str(&level, "log-level", "REFGP_LOG_LEVEL", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("reference-gp takes no arguments, got %q", fs.Args())
	}
	logger, err := newLogger(c.Stderr, level, "text")
	if err != nil {
		return err
	}
	gp, err := refgp.Open(ctx, db, refgp.Options{Token: token, AllowClientIDs: allow, NoDelete: noDelete, Logger: logger})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, gp.Close()) }()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: gp.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Informational: the endpoint serves whether or not stdout takes it.
	_, _ = fmt.Fprintf(c.Stdout, "reference GP record endpoint: FHIR base http://%s/fhir, patient pages http://%s/\n", ln.Addr(), ln.Addr())
	if c.Ready != nil {
		c.Ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
