package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// The store settings table (migration 011) holds the search index version
// under this name.
const settingSearchIndex = "search-index-version"

// SearchIndexVersion returns the version of the search parameter table
// the stored index was built with, "" when none was recorded.
func (db *DB) SearchIndexVersion(ctx context.Context) (string, error) {
	var v string
	err := db.read.QueryRowContext(ctx, `SELECT value FROM store_setting WHERE name = ?`, settingSearchIndex).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("sqlite: read search index version: %w", err)
	}
	return v, nil
}

// SetSearchIndexVersion records the version the index is now built with.
func (db *DB) SetSearchIndexVersion(ctx context.Context, version string) error {
	return db.w.do(ctx, func(w *writer) error {
		if _, err := w.exec(`INSERT INTO store_setting (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, settingSearchIndex, version); err != nil {
			return fmt.Errorf("sqlite: record search index version: %w", err)
		}
		return nil
	})
}

// CurrentResources returns up to limit current resource versions with
// their stored Params, in (type, id) order after (afterType, afterID).
func (db *DB) CurrentResources(ctx context.Context, afterType, afterID string, limit int) ([]*linkbridge.Resource, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT type, id, version_id, last_updated, body, params FROM resource
		WHERE (type, id) > (?, ?) ORDER BY type, id LIMIT ?`, afterType, afterID, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list resources: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*linkbridge.Resource
	for rows.Next() {
		r := &linkbridge.Resource{}
		var lastUpdated, params string
		if err := rows.Scan(&r.Type, &r.ID, &r.VersionID, &lastUpdated, &r.Body, &params); err != nil {
			return nil, fmt.Errorf("sqlite: list resources: %w", err)
		}
		if err := sqlshared.DecodeBody(r); err != nil {
			return nil, err
		}
		if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
			return nil, err
		}
		if r.Params, err = sqlshared.DecodeParams(params); err != nil {
			return nil, fmt.Errorf("sqlite: %s/%s: %w", r.Type, r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list resources: %w", err)
	}
	return out, nil
}

// ReindexResource replaces the indexed search parameter values of the
// current version of r.Type/r.ID with r.Params, unless the resource has
// moved on from r.VersionID (false).
func (db *DB) ReindexResource(ctx context.Context, r *linkbridge.Resource) (bool, error) {
	encoded, err := sqlshared.EncodeParams(r.Params)
	if err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	row := resourceRow{Type: r.Type, ID: r.ID, VersionID: r.VersionID, Params: sqlshared.NormalizeParams(r.Params), ParamsJSON: encoded}
	done := false
	err = db.w.do(ctx, func(w *writer) error {
		var (
			stored    int
			oldParams string
		)
		switch err := w.selResource.QueryRowContext(bg, r.Type, r.ID).Scan(&stored, &oldParams); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return fmt.Errorf("sqlite: reindex %s/%s: %w", r.Type, r.ID, err)
		case stored != r.VersionID:
			return nil
		}
		if _, err := w.exec(`UPDATE resource SET params = ? WHERE type = ? AND id = ?`, encoded, r.Type, r.ID); err != nil {
			return fmt.Errorf("sqlite: reindex %s/%s: %w", r.Type, r.ID, err)
		}
		del, had, err := sqlshared.ParamChanges(oldParams, r.Params)
		if err != nil {
			return fmt.Errorf("sqlite: reindex %s/%s: %w", r.Type, r.ID, err)
		}
		for _, p := range del {
			if _, err := w.delParam.ExecContext(bg, r.Type, p.Name, p.Value, r.ID, p.System); err != nil {
				return fmt.Errorf("sqlite: reindex %s/%s: %w", r.Type, r.ID, err)
			}
		}
		if err := w.insertParams([]resourceRow{row}, had); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done, err
}

// CountResources returns the number of current resource versions the store
// holds: what a re-index parses (intake.Reindex).
func (db *DB) CountResources(ctx context.Context) (int64, error) {
	var n int64
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM resource`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count resources: %w", err)
	}
	return n, nil
}
