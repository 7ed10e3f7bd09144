package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Setting returns the value recorded under name in the store settings
// table (migration 011), "" when none is.
func (db *DB) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := db.pool.QueryRow(ctx, `SELECT value FROM store_setting WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("postgres: read setting %s: %w", name, err)
	}
	return v, nil
}

// InitSetting records value under name unless a value is recorded
// already, and returns the value recorded. The read is a statement of its
// own: under READ COMMITTED it sees the row of a process that recorded
// first (the insert waits for it, then does nothing).
func (db *DB) InitSetting(ctx context.Context, name, value string) (string, error) {
	if _, err := db.pool.Exec(ctx, `INSERT INTO store_setting (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
		return "", fmt.Errorf("postgres: record setting %s: %w", name, err)
	}
	return db.Setting(ctx, name)
}
