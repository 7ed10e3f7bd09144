package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Setting returns the value recorded under name in the store settings
// table (migration 011), "" when none is.
func (db *DB) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := db.read.QueryRowContext(ctx, `SELECT value FROM store_setting WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("sqlite: read setting %s: %w", name, err)
	}
	return v, nil
}

// InitSetting records value under name unless a value is recorded
// already, and returns the value recorded.
func (db *DB) InitSetting(ctx context.Context, name, value string) (string, error) {
	var v string
	err := db.w.do(ctx, func(w *writer) error {
		if _, err := w.exec(`INSERT INTO store_setting (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING`, name, value); err != nil {
			return fmt.Errorf("sqlite: record setting %s: %w", name, err)
		}
		if err := w.queryRow(`SELECT value FROM store_setting WHERE name = ?`, []any{name}, &v); err != nil {
			return fmt.Errorf("sqlite: read setting %s: %w", name, err)
		}
		return nil
	})
	return v, err
}
