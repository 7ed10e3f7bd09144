package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// MigrationReplay is what ReplayMigrations measured of one migration: each
// statement, its time on the store, or why it was not replayed.
type MigrationReplay = sqlshared.MigrationReplay

// ReplayMigrations times every embedded migration on the populated SQLite
// store at path, as an upgrade of a store of that size would run it: each
// migration's statements run in a transaction of their own that is rolled
// back, so the store is left as it was (docs/performance.md, "Migrations on
// a large store"). A CREATE INDEX is timed after dropping the index it
// rebuilds; a statement that no longer applies to the current schema is
// noted, not timed. A statement that runs longer than timeout (if
// positive) is interrupted and ends its migration's replay. done, if set,
// is called after each migration.
//
// It takes the store's write lock for each migration: run it on a store no
// gateway is using. The file must exist and hold every migration.
func ReplayMigrations(ctx context.Context, path string, timeout time.Duration, done func(MigrationReplay)) ([]MigrationReplay, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: replay migrations: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// As the migrations run (sqlite.go, migrate): foreign key enforcement
	// off, the write lock taken at BEGIN. The temporary store stays on
	// disk: a savepoint over a large rewrite journals every page it
	// changes.
	h, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {"busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")", "foreign_keys(0)", "journal_mode(WAL)", cachePragma(DefaultWriteCacheMiB * 1024)},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: replay migrations: %w", err)
	}
	defer func() { _ = h.Close() }()
	conn, err := h.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: replay migrations: %w", err)
	}
	defer func() { _ = conn.Close() }()
	applied := func(ctx context.Context, name string) (bool, error) {
		var n int
		err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM migrations WHERE name = ?`, name).Scan(&n)
		return n > 0, err
	}
	exec := func(ctx context.Context, stmt string, measured bool) error {
		if measured && timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		_, err := conn.ExecContext(ctx, stmt)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("stopped after %s: %w", timeout, err)
		}
		return err
	}
	begin := func(ctx context.Context) (sqlshared.ReplayTx, error) {
		_, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`)
		return sqlshared.ReplayTx{Exec: exec, Rollback: func() error {
			// An interrupted statement may have rolled the transaction
			// back already; nothing else may.
			_, err := conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
			if err != nil && strings.Contains(err.Error(), "no transaction is active") {
				return nil
			}
			return err
		}}, err
	}
	out, err := sqlshared.ReplayMigrations(ctx, migrationFS, applied, begin, done)
	if err != nil {
		return out, fmt.Errorf("sqlite: replay migrations: %w", err)
	}
	return out, nil
}
