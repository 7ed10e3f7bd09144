package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge/adapter/postgres"
)

// TestAnalyze: Analyze gives every table of the store's schema planner
// statistics (pg_class.reltuples is -1 for a table never analyzed), and
// only those of its schema.
func TestAnalyze(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newSchema(t)
	db := mustOpenURL(t, url)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	unanalyzed := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.reltuples < 0`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := unanalyzed(); n == 0 {
		t.Fatal("a new store's tables already have statistics: the test cannot tell")
	}
	if err := db.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	if n := unanalyzed(); n != 0 {
		t.Errorf("%d tables of the store's schema without statistics after Analyze", n)
	}
}

// TestAnalyzeWithoutStatementTimeout: Analyze and Checkpoint are
// maintenance, run without
// the connections' statement_timeout (a seed failed when ANALYZE of its
// 389,000 referrals outlasted the default 30 s): with a timeout of a
// millisecond, shorter than ANALYZE of every table takes, they still
// succeed.
func TestAnalyzeWithoutStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := newSchema(t)
	mustOpenURL(t, url) // migrate
	db := postgres.NewDB(url)
	db.StatementTimeout = time.Millisecond
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if err := db.Analyze(ctx); err != nil {
		t.Fatalf("Analyze with a 1 ms statement_timeout: %v", err)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint with a 1 ms statement_timeout: %v", err)
	}
}
