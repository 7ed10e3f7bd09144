// Package pgtest gives tests a PostgreSQL schema of their own on the test
// server. Import it only from tests.
//
// The server is LINKBRIDGE_TEST_POSTGRES_URL, or DefaultURL when that is not
// set. Without the variable and without a server at DefaultURL the test is
// skipped, except under CI=true, where a missing server fails the test: CI
// must run the PostgreSQL tests.
package pgtest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge/adapter/postgres"
)

// DefaultURL is the server the tests use when LINKBRIDGE_TEST_POSTGRES_URL
// is not set: a local PostgreSQL with trust authentication.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// server is the outcome of the first connection attempt, shared by the
// tests of one package.
var server struct {
	once sync.Once
	url  string
	err  error
	skip bool
}

// ServerURL returns the test server's URL, checking on first use that it
// answers; it skips or fails the test as the package documentation says
// when it does not.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	server.once.Do(func() {
		server.url = os.Getenv("LINKBRIDGE_TEST_POSTGRES_URL")
		explicit := server.url != ""
		if !explicit {
			server.url = DefaultURL
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var conn *pgx.Conn
		if conn, server.err = pgx.Connect(ctx, server.url); server.err == nil {
			server.err = conn.Ping(ctx)
			_ = conn.Close(ctx)
		}
		server.skip = server.err != nil && !explicit && os.Getenv("CI") != "true"
	})
	switch {
	case server.skip:
		tb.Skipf("no PostgreSQL at %s (set LINKBRIDGE_TEST_POSTGRES_URL; under CI=true this fails): %v", DefaultURL, server.err)
	case server.err != nil:
		tb.Fatalf("PostgreSQL test server (LINKBRIDGE_TEST_POSTGRES_URL): %v", server.err)
	}
	return server.url
}

// NewSchema creates an empty schema (postgres.CreateSchema), dropped with
// everything in it when the test ends, and returns the test server's URL
// with search_path set to it. Each test gets its own, so tests run in
// parallel and leave nothing behind; stores opened on the same URL share
// it, as replicas share a database.
func NewSchema(tb testing.TB) string {
	tb.Helper()
	u, drop, err := postgres.CreateSchema(context.Background(), ServerURL(tb), "lb_test")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := drop(context.Background()); err != nil {
			tb.Error(err)
		}
	})
	return u
}
