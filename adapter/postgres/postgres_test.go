package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// defaultTestURL is the server the tests use when LINKBRIDGE_TEST_POSTGRES_URL
// is not set: a local PostgreSQL with trust authentication.
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// admin is the pool that creates and drops the tests' schemas.
var admin struct {
	once sync.Once
	url  string
	pool *pgxpool.Pool
	err  error
}

// serverURL returns the test server's URL, connecting the admin pool on
// first use. Without LINKBRIDGE_TEST_POSTGRES_URL and without a server at the
// default URL, the test is skipped, except under CI=true, where a missing
// server is a failure: CI must run these tests.
func serverURL(tb testing.TB) string {
	tb.Helper()
	admin.once.Do(func() {
		admin.url = os.Getenv("LINKBRIDGE_TEST_POSTGRES_URL")
		explicit := admin.url != ""
		if !explicit {
			admin.url = defaultTestURL
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		admin.pool, admin.err = pgxpool.New(ctx, admin.url)
		if admin.err == nil {
			admin.err = admin.pool.Ping(ctx)
		}
		if admin.err != nil && !explicit && os.Getenv("CI") != "true" {
			admin.err = &skipError{admin.err}
		}
	})
	if se, ok := admin.err.(*skipError); ok {
		tb.Skipf("no PostgreSQL at %s (set LINKBRIDGE_TEST_POSTGRES_URL; under CI=true this fails): %v", defaultTestURL, se.err)
	}
	if admin.err != nil {
		tb.Fatalf("PostgreSQL test server: %v", admin.err)
	}
	return admin.url
}

// skipError marks a missing server that skips the tests.
type skipError struct{ err error }

func (e *skipError) Error() string { return e.err.Error() }

// newSchema creates an empty schema, dropped with everything in it when the
// test ends, and returns the URL of the test server with search_path set to
// it. Each test has its own schema, so tests run in parallel and leave
// nothing behind.
func newSchema(tb testing.TB) string {
	tb.Helper()
	base := serverURL(tb)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "lb_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := admin.pool.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
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

// testLogger returns a logger writing to t.Log.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tLogWriter writes to a test's log.
type tLogWriter struct{ tb testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(string(p))
	return len(p), nil
}

// mustOpen opens a store on a new, empty schema and closes it at cleanup.
func mustOpen(tb testing.TB) *postgres.DB {
	tb.Helper()
	return mustOpenURL(tb, newSchema(tb))
}

// mustOpenURL opens a store on url (another "replica" when the schema is
// shared) and closes it at cleanup. Fatal on error.
func mustOpenURL(tb testing.TB, u string) *postgres.DB {
	tb.Helper()
	db := postgres.NewDB(u)
	db.Logger = testLogger(tb)
	db.MaxConns = 8
	if err := db.Open(context.Background()); err != nil {
		tb.Fatalf("Open returned unexpected error: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close returned unexpected error: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) linkbridge.Store { return mustOpen(t) })
}

func TestCaseStore(t *testing.T) {
	t.Parallel()
	storetest.RunCaseStore(t, func(t *testing.T) storetest.CaseStore { return mustOpen(t) })
}

func TestOutboxStore(t *testing.T) {
	t.Parallel()
	storetest.RunOutboxStore(t, func(t *testing.T) storetest.OutboxStore { return mustOpen(t) })
}

func TestAccess(t *testing.T) {
	t.Parallel()
	storetest.RunAccess(t, func(t *testing.T) linkbridge.Store { return mustOpen(t) })
}

func TestAuditStore(t *testing.T) {
	t.Parallel()
	storetest.RunAuditStore(t, func(t *testing.T) storetest.AuditStore { return mustOpen(t) })
}
