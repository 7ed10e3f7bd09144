package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// MigrationReplay is what ReplayMigrations measured of one migration: each
// statement, its time on the store, or why it was not replayed.
type MigrationReplay = sqlshared.MigrationReplay

// StatementReplay is one statement of a MigrationReplay.
type StatementReplay = sqlshared.StatementReplay

// ReplayMigrations times every embedded migration on the populated store
// at url, as an upgrade of a store of that size would run it: each
// migration's statements run in a transaction of their own that is rolled
// back, so the store is left as it was (docs/performance.md, "Migrations on
// a large store"). A CREATE INDEX is timed after dropping the index it
// rebuilds; a statement that no longer applies to the current schema is
// noted, not timed. A statement that runs longer than timeout (if
// positive; PostgreSQL's statement_timeout) ends its migration's replay.
// done, if set, is called after each migration.
//
// Each migration's replay holds the locks its statements take until it
// rolls back: run it on a store no gateway is using. The store must hold
// every migration.
func ReplayMigrations(ctx context.Context, url string, timeout time.Duration, done func(MigrationReplay)) ([]MigrationReplay, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("postgres: replay migrations: the database URL cannot be parsed")
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("postgres: replay migrations: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	names, err := sqlshared.MigrationFiles(migrationFS)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		var applied bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, path.Base(name)).Scan(&applied); err != nil || !applied {
			return nil, fmt.Errorf("postgres: replay migrations: %s is not applied to this store: open it with this version first", path.Base(name))
		}
	}
	var out []MigrationReplay
	for _, name := range names {
		script, err := fs.ReadFile(migrationFS, name)
		if err != nil {
			return out, err
		}
		var m MigrationReplay
		tx, err := conn.Begin(ctx)
		if err != nil {
			return out, fmt.Errorf("postgres: replay %s: %w", path.Base(name), err)
		}
		if _, err = tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", timeout.Milliseconds())); err == nil {
			m, err = sqlshared.ReplayMigration(ctx, path.Base(name), string(script), func(ctx context.Context, stmt string, _ bool) error {
				_, err := tx.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
				return err
			})
		}
		if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if err != nil {
			return out, fmt.Errorf("postgres: replay migrations: %w", err)
		}
		out = append(out, m)
		if done != nil {
			done(m)
		}
	}
	return out, nil
}
