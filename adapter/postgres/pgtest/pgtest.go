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
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultURL is the server the tests use when LINKBRIDGE_TEST_POSTGRES_URL
// is not set: a local PostgreSQL with trust authentication.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// admin is the pool that creates and drops the tests' schemas, shared by the
// tests of one package.
var admin struct {
	once sync.Once
	url  string
	pool *pgxpool.Pool
	err  error
	skip bool
}

// ServerURL returns the test server's URL, connecting on first use; it skips
// or fails the test as the package documentation says when there is none.
func ServerURL(tb testing.TB) string {
	tb.Helper()
	admin.once.Do(func() {
		admin.url = os.Getenv("LINKBRIDGE_TEST_POSTGRES_URL")
		explicit := admin.url != ""
		if !explicit {
			admin.url = DefaultURL
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		admin.pool, admin.err = pgxpool.New(ctx, admin.url)
		if admin.err == nil {
			admin.err = admin.pool.Ping(ctx)
		}
		admin.skip = admin.err != nil && !explicit && os.Getenv("CI") != "true"
	})
	switch {
	case admin.skip:
		tb.Skipf("no PostgreSQL at %s (set LINKBRIDGE_TEST_POSTGRES_URL; under CI=true this fails): %v", DefaultURL, admin.err)
	case admin.err != nil:
		tb.Fatalf("PostgreSQL test server (LINKBRIDGE_TEST_POSTGRES_URL): %v", admin.err)
	}
	return admin.url
}

// NewSchema creates an empty schema, dropped with everything in it when the
// test ends, and returns the test server's URL with search_path set to it.
// Each test gets its own, so tests run in parallel and leave nothing behind;
// stores opened on the same URL share it, as replicas share a database.
func NewSchema(tb testing.TB) string {
	tb.Helper()
	base := ServerURL(tb)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "lb_test_" + hex.EncodeToString(b)
	if _, err := admin.pool.Exec(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := admin.pool.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("LINKBRIDGE_TEST_POSTGRES_URL is not a URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
