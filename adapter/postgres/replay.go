package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// MigrationReplay is what ReplayMigrations measured of one migration: each
// statement, its time on the store, or why it was not replayed.
type MigrationReplay = sqlshared.MigrationReplay

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
	applied := func(ctx context.Context, name string) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&ok)
		return ok, err
	}
	begin := func(ctx context.Context) (sqlshared.ReplayTx, error) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return sqlshared.ReplayTx{}, err
		}
		rollback := func() error { return tx.Rollback(context.WithoutCancel(ctx)) }
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", timeout.Milliseconds())); err != nil {
			return sqlshared.ReplayTx{}, errors.Join(err, rollback())
		}
		return sqlshared.ReplayTx{Rollback: rollback, Exec: func(ctx context.Context, stmt string, _ bool) error {
			_, err := tx.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
			return err
		}}, nil
	}
	out, err := sqlshared.ReplayMigrations(ctx, migrationFS, applied, begin, done)
	if err != nil {
		return out, fmt.Errorf("postgres: replay migrations: %w", err)
	}
	return out, nil
}
