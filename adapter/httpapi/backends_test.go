package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/httpapi"
	"github.com/linkbridge/linkbridge/adapter/postgres"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// forBackends runs an HTTP test on each store: SQLite, and PostgreSQL
// (skipped without a server, except under CI=true). The test calls store(t)
// for each server it starts and passes the result to newTestServer or
// newSecServer as an option: on PostgreSQL each server gets a schema of its
// own.
func forBackends(t *testing.T, run func(t *testing.T, store func(t *testing.T) func(*httpapi.Server))) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		run(t, func(*testing.T) func(*httpapi.Server) { return func(*httpapi.Server) {} })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		run(t, onPostgres)
	})
}

// onPostgres puts the server on a fresh PostgreSQL schema: its store, case
// records and (when it keeps one) audit trail.
func onPostgres(t *testing.T) func(*httpapi.Server) {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.NewSchema(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return func(s *httpapi.Server) {
		s.Store, s.Cases = db, db
		if s.Audit != nil {
			s.Audit = db
		}
	}
}
