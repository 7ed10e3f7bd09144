package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// newSchema creates an empty schema for the test (see pgtest.NewSchema) and
// returns its URL.
func newSchema(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewSchema(tb)
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
