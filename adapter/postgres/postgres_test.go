package postgres_test

import (
	"context"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// newSchema creates an empty schema for the test (see pgtest.NewSchema) and
// returns its URL.
func newSchema(tb testing.TB) string {
	tb.Helper()
	return pgtest.NewSchema(tb)
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
	db.Logger = sqlsharedtest.NewLogger(tb)
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

// TestSuites runs every adapter/storetest suite on PostgreSQL, each test
// in a schema of its own.
func TestSuites(t *testing.T) {
	t.Parallel()
	sqlsharedtest.RunSuites(t, mustOpen)
}
