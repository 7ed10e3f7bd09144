package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

var _ linkbridge.EndpointIdentityStore = (*DB)(nil)

// The endpoint's own identity of each resource written back (migration
// 009_endpoint_identity.sql): one row per endpoint and resource of
// linkbridge's, with the semantics of adapter/sqlite's endpoint_identity.go.
// The relays of several replicas record at once; see
// upsertEndpointIdentity.

// upsertEndpointIdentity stores a record, replacing the one of its key
// unless that one has a later version. INSERT ... ON CONFLICT DO UPDATE
// locks the conflicting row and evaluates the WHERE on its latest version
// (waiting for a concurrent upsert of the same key to commit), so of
// relays recording one resource at once the latest version wins, whatever
// the order of their answers.
const upsertEndpointIdentity = `INSERT INTO endpoint_identity (` + sqlshared.EndpointIdentityColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (endpoint, resource_type, resource_id) DO UPDATE SET endpoint_id = excluded.endpoint_id,
		endpoint_version = excluded.endpoint_version, version = excluded.version, updated_at = excluded.updated_at
	WHERE excluded.version >= endpoint_identity.version`

// EndpointIdentities returns the identities held on endpoint for keys,
// keyed by them; a key with none is absent. It reads up to
// sqlshared.EndpointIdentityChunk keys a query, passed as two arrays and
// joined to the primary key (a key given twice reads its row twice, into
// the same entry).
//
// The query is planned for each call (searchMode), not from a cached
// generic plan: the relay starts on an empty table and fills it, one row a
// delivered resource, and a generic plan made while it was empty hashes the
// whole table at every call (10 ms a call with 15,000 rows, most of the
// relay's time in a drain of a 100k store;
// docs/performance.md#the-relays-claim).
func (db *DB) EndpointIdentities(ctx context.Context, endpoint string, keys []linkbridge.ResourceKey) (map[linkbridge.ResourceKey]linkbridge.EndpointIdentity, error) {
	out := make(map[linkbridge.ResourceKey]linkbridge.EndpointIdentity)
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), sqlshared.EndpointIdentityChunk)]
		keys = keys[len(chunk):]
		types, ids := make([]string, len(chunk)), make([]string, len(chunk))
		for i, k := range chunk {
			types[i], ids[i] = k.Type, k.ID
		}
		err := queryRows(ctx, db.pool, `SELECT e.endpoint, e.resource_type, e.resource_id, e.endpoint_id,
				e.endpoint_version, e.version, e.updated_at
			FROM endpoint_identity e
			JOIN unnest($2::text[], $3::text[]) AS k (type, id) ON e.resource_type = k.type AND e.resource_id = k.id
			WHERE e.endpoint = $1`, []any{searchMode, endpoint, types, ids}, func(rows pgx.Rows) error {
			id, err := scanEndpointIdentity(rows)
			if err != nil {
				return err
			}
			out[linkbridge.ResourceKey{Type: id.ResourceType, ID: id.ResourceID}] = id
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("postgres: endpoint identities: %w", err)
		}
	}
	return out, nil
}

// RecordEndpointIdentity stores id, replacing the record of its endpoint
// and resource unless that one has a later Version (see
// upsertEndpointIdentity). A zero UpdatedAt is recorded as now (db.Now).
// It returns EINVALID when Endpoint, ResourceType, ResourceID or
// EndpointID is empty.
func (db *DB) RecordEndpointIdentity(ctx context.Context, id linkbridge.EndpointIdentity) error {
	args, err := sqlshared.EndpointIdentityArgs(id, db.Now(), columns)
	if err != nil {
		return err
	}
	if _, err := db.pool.Exec(ctx, upsertEndpointIdentity, args...); err != nil {
		return fmt.Errorf("postgres: record endpoint identity of %s/%s: %w", id.ResourceType, id.ResourceID, err)
	}
	return nil
}

// ForgetEndpointIdentity removes the record of key on endpoint; removing
// none is no error.
func (db *DB) ForgetEndpointIdentity(ctx context.Context, endpoint string, key linkbridge.ResourceKey) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM endpoint_identity WHERE endpoint = $1 AND resource_type = $2 AND resource_id = $3`,
		endpoint, key.Type, key.ID)
	if err != nil {
		return fmt.Errorf("postgres: forget endpoint identity of %s/%s: %w", key.Type, key.ID, err)
	}
	return nil
}

// scanEndpointIdentity reads a row of sqlshared.EndpointIdentityColumns.
func scanEndpointIdentity(row pgx.Row) (linkbridge.EndpointIdentity, error) {
	var (
		id linkbridge.EndpointIdentity
		at time.Time
	)
	if err := row.Scan(&id.Endpoint, &id.ResourceType, &id.ResourceID, &id.EndpointID, &id.EndpointVersion, &id.Version,
		&at); err != nil {
		return id, err
	}
	id.UpdatedAt = utc(at)
	return id, nil
}
