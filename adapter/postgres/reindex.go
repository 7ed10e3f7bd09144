package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
	err := db.pool.QueryRow(ctx, `SELECT value FROM store_setting WHERE name = $1`, settingSearchIndex).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("postgres: read search index version: %w", err)
	}
	return v, nil
}

// SetSearchIndexVersion records the version the index is now built with.
func (db *DB) SetSearchIndexVersion(ctx context.Context, version string) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO store_setting (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, settingSearchIndex, version); err != nil {
		return fmt.Errorf("postgres: record search index version: %w", err)
	}
	return nil
}

// CurrentResources returns up to limit current resource versions with
// their stored Params, in (type, id) order after (afterType, afterID).
func (db *DB) CurrentResources(ctx context.Context, afterType, afterID string, limit int) ([]*linkbridge.Resource, error) {
	rows, err := db.pool.Query(ctx, `SELECT type, id, version_id, last_updated, body, params::text FROM resource
		WHERE (type, id) > ($1, $2) ORDER BY type, id LIMIT $3`, afterType, afterID, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("postgres: list resources: %w", err)
	}
	defer rows.Close()
	var out []*linkbridge.Resource
	for rows.Next() {
		r := &linkbridge.Resource{}
		var params string
		if err := rows.Scan(&r.Type, &r.ID, &r.VersionID, &r.LastUpdated, &r.Body, &params); err != nil {
			return nil, fmt.Errorf("postgres: list resources: %w", err)
		}
		r.LastUpdated = utc(r.LastUpdated)
		if r.Params, err = sqlshared.DecodeParams(params); err != nil {
			return nil, fmt.Errorf("postgres: %s/%s: %w", r.Type, r.ID, err)
		}
		if err := sqlshared.DecodeBody(r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list resources: %w", err)
	}
	return out, nil
}

// ReindexResource replaces the indexed search parameter values of the
// current version of r.Type/r.ID with r.Params, unless the resource has
// moved on from r.VersionID (false). The resource row is locked, so a
// concurrent new version waits or is waited for.
func (db *DB) ReindexResource(ctx context.Context, r *linkbridge.Resource) (bool, error) {
	encoded, err := sqlshared.EncodeParams(r.Params)
	if err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	var done bool
	err = retryTx(ctx, func() error {
		done = false
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			var (
				stored    int
				oldParams string
			)
			err := tx.QueryRow(ctx, lockResource, r.Type, r.ID).
				Scan(&stored, &oldParams)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return nil
			case err != nil:
				return fmt.Errorf("postgres: reindex %s/%s: %w", r.Type, r.ID, err)
			case stored != r.VersionID:
				return nil
			}
			if _, err := tx.Exec(ctx, `UPDATE resource SET params = $1::jsonb WHERE type = $2 AND id = $3`, encoded, r.Type, r.ID); err != nil {
				return fmt.Errorf("postgres: reindex %s/%s: %w", r.Type, r.ID, err)
			}
			del, had, err := sqlshared.ParamChanges(oldParams, r.Params)
			if err != nil {
				return fmt.Errorf("postgres: reindex %s/%s: %w", r.Type, r.ID, err)
			}
			for _, p := range del {
				if _, err := tx.Exec(ctx, delParam, r.Type, p.Name, p.Value, r.ID, p.System); err != nil {
					return fmt.Errorf("postgres: reindex %s/%s: %w", r.Type, r.ID, err)
				}
			}
			if args, ok := paramArrays([]resourceRow{{Type: r.Type, ID: r.ID, Params: sqlshared.NormalizeParams(r.Params)}}, had); ok {
				if _, err := tx.Exec(ctx, insParams, args...); err != nil {
					return fmt.Errorf("postgres: reindex %s/%s: %w", r.Type, r.ID, err)
				}
			}
			done = true
			return nil
		})
	})
	return done, err
}

// Analyze refreshes the planner's statistics of the store's tables
// (ANALYZE), as PostgreSQL's documentation asks after a bulk load: until
// autovacuum gets to a freshly filled table, the planner guesses its row
// counts, and on a seeded store it probed a filter's resources through
// resource_last_updated's whole date range instead of by key (a poll of a
// service's Tasks 39 ms instead of 13 on 3,000 referrals).
// Only the tables of the store's schema are analyzed, not the whole
// database, and without the connections' statement_timeout (as
// migrations run): on a store of 389,000 seeded referrals ANALYZE took
// longer than the default 30 s and failed the seed.
func (db *DB) Analyze(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		var tables string
		if err := tx.QueryRow(ctx, `SELECT coalesce(string_agg(format('%I.%I', schemaname, tablename), ', '), '')
			FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil || tables == "" {
			return err
		}
		_, err := tx.Exec(ctx, `ANALYZE `+tables)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: analyze: %w", err)
	}
	return nil
}

// Checkpoint runs CHECKPOINT: the server writes out now the pages a bulk
// load dirtied, rather than its checkpointer doing so during whatever runs
// next ("linkbridge bench scale" measures a freshly seeded store). It needs
// a superuser or, from PostgreSQL 15, the pg_checkpoint role. Like
// Analyze it runs without the connections' statement_timeout: after a
// large load it may write for longer.
func (db *DB) Checkpoint(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CHECKPOINT`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: checkpoint: %w", err)
	}
	return nil
}

// CountResources returns the number of current resource versions the store
// holds: what a re-index parses (intake.Reindex).
func (db *DB) CountResources(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM resource`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count resources: %w", err)
	}
	return n, nil
}

// Settings returns the server's version and the settings that bear on a
// bulk load's and a benchmark's figures, for reports beside them:
// "PostgreSQL 15.5, shared_buffers 128MB, max_wal_size 1GB,
// checkpoint_timeout 5min, autovacuum on" (docs/performance.md, the runs at
// a million).
func (db *DB) Settings(ctx context.Context) (string, error) {
	names := []string{"shared_buffers", "max_wal_size", "checkpoint_timeout", "autovacuum"}
	var version string
	vals := make([]string, len(names))
	dest := []any{&version}
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	if err := db.pool.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting($1), current_setting($2),
		current_setting($3), current_setting($4)`, names[0], names[1], names[2], names[3]).Scan(dest...); err != nil {
		return "", fmt.Errorf("postgres: settings: %w", err)
	}
	out := "PostgreSQL " + version
	for i, n := range names {
		out += ", " + n + " " + vals[i]
	}
	return out, nil
}
