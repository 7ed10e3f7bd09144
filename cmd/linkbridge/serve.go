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

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// ServeConfig is the configuration of "linkbridge serve". Every flag has a
// LINKBRIDGE_* environment equivalent; a flag given on the command line wins.
type ServeConfig struct {
	Addr              string
	DB                string
	LogLevel          string
	LogFormat         string
	MaxBodyBytes      int64
	DefaultServiceODS string
	ShutdownTimeout   time.Duration
}

// Validate checks the configuration.
func (c *ServeConfig) Validate() error {
	if c.Addr == "" {
		return errors.New("--addr is required")
	}
	if c.DB == "" {
		return errors.New("--db is required")
	}
	if strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://") {
		return errors.New("--db: the PostgreSQL backend is not available in this build yet; use a SQLite file path")
	}
	if c.MaxBodyBytes <= 0 {
		return errors.New("--max-body must be positive")
	}
	if c.DefaultServiceODS != "" {
		if _, err := linkbridge.NormalizeODSCode(c.DefaultServiceODS); err != nil {
			return fmt.Errorf("--service-ods: %w", err)
		}
	}
	return nil
}

// ServeCommand runs the gateway until its context ends.
type ServeCommand struct {
	Getenv         func(string) string
	Stdout, Stderr io.Writer
	// Ready, if set, receives the listening address once the server
	// accepts connections (used by tests).
	Ready chan<- string
}

// readyKey is the context key of the Ready channel threaded through run().
type readyKey struct{}

// withReady returns a context under which "serve", started through run(),
// reports its listening address on ch as ServeCommand.Ready does. Tests use
// it to run the real command line on port 0.
func withReady(ctx context.Context, ch chan<- string) context.Context {
	return context.WithValue(ctx, readyKey{}, ch)
}

// flags binds the configuration to flags with env defaults.
func (c *ServeCommand) flags(cfg *ServeConfig) *flag.FlagSet {
	env := func(name, def string) string {
		if v := c.Getenv("LINKBRIDGE_" + name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	fs.StringVar(&cfg.Addr, "addr", env("ADDR", "127.0.0.1:8080"), "listen address (LINKBRIDGE_ADDR)")
	fs.StringVar(&cfg.DB, "db", env("DB", "linkbridge.db"), "SQLite database file (LINKBRIDGE_DB)")
	fs.StringVar(&cfg.LogLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LINKBRIDGE_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("LOG_FORMAT", "text"), "text or json (LINKBRIDGE_LOG_FORMAT)")
	maxBody := env("MAX_BODY", fmt.Sprint(httpapi.DefaultMaxBodyBytes))
	fs.Func("max-body", "request body limit in bytes (LINKBRIDGE_MAX_BODY, default "+maxBody+")", func(s string) error {
		_, err := fmt.Sscan(s, &cfg.MaxBodyBytes)
		return err
	})
	_, _ = fmt.Sscan(maxBody, &cfg.MaxBodyBytes)
	fs.StringVar(&cfg.DefaultServiceODS, "service-ods", env("SERVICE_ODS", ""), "ODS code of the social prescribing service for referrals that name none (LINKBRIDGE_SERVICE_ODS)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "time allowed for in-flight requests on shutdown")
	return fs
}

// Run parses flags, opens the store and serves until ctx ends, then shuts
// down in order: stop accepting, finish in-flight requests, close the store.
func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	var cfg ServeConfig
	if err := c.flags(&cfg).Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger, err := newLogger(c.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	codec, err := fhirjson.New()
	if err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, cfg.DB, logger)
	if err != nil {
		return err
	}
	defer db.Close()

	api, err := httpapi.NewServer(db, codec, logger)
	if err != nil {
		return err
	}
	api.MaxBodyBytes = cfg.MaxBodyBytes
	api.DefaultServiceODS = cfg.DefaultServiceODS

	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("linkbridge serving", slog.String("addr", ln.Addr().String()), slog.String("fhir_base", "http://"+ln.Addr().String()+"/fhir"), slog.String("db", cfg.DB))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready := c.Ready
	if ready == nil {
		ready, _ = ctx.Value(readyKey{}).(chan<- string)
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// newLogger builds the slog logger from level and format names.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}
