package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
	"github.com/linkbridge/linkbridge/adapter/postgres"
)

// taskSearch is a service's Task search, as the slow ones were.
var taskSearch = &linkbridge.ResourceQuery{Type: "Task", Count: 10,
	Access: &linkbridge.Access{Keys: []string{linkbridge.ServiceAccessKey("SVC01")}}}

// lockSearchTables opens a connection to the schema at u that holds an
// ACCESS EXCLUSIVE lock on the tables a search reads, so that a search
// waits in the server until it is cancelled. It returns the connection's
// backend pid and a function that releases the lock (called at cleanup
// too).
func lockSearchTables(t *testing.T, u string) (uint32, func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release := func() {
		_ = tx.Rollback(context.Background())
		_ = conn.Close(context.Background())
	}
	t.Cleanup(release)
	if _, err := tx.Exec(ctx, `LOCK TABLE resource, search_param, resource_access IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	return conn.PgConn().PID(), release
}

// blockedBy waits until a backend waits for the locker's lock and returns
// its pid.
func blockedBy(t *testing.T, u string, locker uint32) uint32 {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var pid uint32
		err := pgxQueryRow(ctx, u, `SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1`, []any{int32(locker)}, &pid)
		if err == nil {
			return pid
		} else if !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no search waited for the lock")
	return 0
}

// stillActive reports whether backend pid is still running a statement.
func stillActive(t *testing.T, u string, pid uint32) bool {
	t.Helper()
	var active bool
	err := pgxQueryRow(context.Background(), u, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1 AND state = 'active')`, []any{int32(pid)}, &active)
	if err != nil {
		t.Fatal(err)
	}
	return active
}

// pgxQueryRow runs one query on a connection of its own.
func pgxQueryRow(ctx context.Context, u, sql string, args []any, dest ...any) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	return conn.QueryRow(ctx, sql, args...).Scan(dest...)
}

// gone waits up to a second for backend pid to stop running its statement.
func gone(t *testing.T, u string, pid uint32) time.Duration {
	t.Helper()
	start := time.Now()
	for stillActive(t, u, pid) {
		if time.Since(start) > time.Second {
			t.Fatalf("backend %d still runs the search a second after it was cancelled", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestSearchCancelled cancels a search that waits in the server (for a
// lock, as a slow search would run): the store returns at once, within a
// second the statement no longer runs in PostgreSQL (pg_stat_activity), and
// its connection is still there, because pgx sent a cancel request rather
// than closing the connection. The pool serves searches afterwards.
func TestSearchCancelled(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	db := mustOpenURL(t, u)
	locker, release := lockSearchTables(t, u)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := db.SearchResources(ctx, taskSearch)
		done <- err
	}()
	pid := blockedBy(t, u, locker)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled search returned %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("cancelled search did not return within a second")
	}
	t.Logf("backend stopped %v after the store returned", gone(t, u, pid))
	var alive bool
	if err := pgxQueryRow(context.Background(), u, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)`, []any{int32(pid)}, &alive); err != nil {
		t.Fatal(err)
	}
	if !alive {
		t.Error("the cancelled search's connection was closed; want it kept (cancel request, not a closed socket)")
	}

	release()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	for range 3 {
		if _, err := db.SearchResources(ctx2, taskSearch); err != nil {
			t.Fatalf("search after a cancelled search: %v", err)
		}
	}
}

// TestStatementTimeout: a search that runs longer than DB.StatementTimeout
// is cancelled by PostgreSQL itself (SQLSTATE 57014), whatever its context
// says, and migrations run without the timeout.
func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	u := newSchema(t)
	first := postgres.NewDB(u)
	first.Logger = sqlsharedtest.NewLogger(t)
	first.StatementTimeout = 20 * time.Millisecond // less than migrations take
	if err := first.Open(context.Background()); err != nil {
		t.Fatalf("Open with a 20 ms statement timeout: %v", err)
	}
	_ = first.Close()
	db := postgres.NewDB(u)
	db.Logger = sqlsharedtest.NewLogger(t)
	db.StatementTimeout = 200 * time.Millisecond
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	locker, _ := lockSearchTables(t, u)
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := db.SearchResources(context.Background(), taskSearch)
		done <- err
	}()
	pid := blockedBy(t, u, locker)
	select {
	case err := <-done:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("search past the statement timeout returned %v, want SQLSTATE 57014", err)
		}
		if linkbridge.ErrorCode(err) != linkbridge.ETIMEOUT {
			t.Errorf("search past the statement timeout: code %q, want ETIMEOUT (408, retry later)", linkbridge.ErrorCode(err))
		}
		t.Logf("search cancelled by the server after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("search past the statement timeout still runs after 5 s")
	}
	gone(t, u, pid)
}
