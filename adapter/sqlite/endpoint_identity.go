package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

var _ linkbridge.EndpointIdentityStore = (*DB)(nil)

// The endpoint's own identity of each resource written back (migration
// 009_endpoint_identity.sql): one row per endpoint and resource of
// linkbridge's. RecordEndpointIdentity and ForgetEndpointIdentity are
// writes, so they go through the writer; EndpointIdentities reads from the
// read pool.

// upsertEndpointIdentity stores a record, replacing the one of its key
// unless that one has a later version: the WHERE of DO UPDATE keeps it, so
// a late answer about an earlier version never moves the record back.
// (The writer serialises the upserts; the rule is in the statement all the
// same, as in PostgreSQL's, where relays record at once.)
const upsertEndpointIdentity = `INSERT INTO endpoint_identity (` + sqlshared.EndpointIdentityColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (endpoint, resource_type, resource_id) DO UPDATE SET endpoint_id = excluded.endpoint_id,
		endpoint_version = excluded.endpoint_version, version = excluded.version, updated_at = excluded.updated_at
	WHERE excluded.version >= endpoint_identity.version`

// prepareEndpointIdentity prepares the endpoint identity statements with
// prep (startWriter's).
func prepareEndpointIdentity(w *writer, prep func(dst **sql.Stmt, query string)) {
	prep(&w.upsertIdentity, upsertEndpointIdentity)
	prep(&w.delIdentity, `DELETE FROM endpoint_identity WHERE endpoint = ? AND resource_type = ? AND resource_id = ?`)
}

// EndpointIdentities returns the identities held on endpoint for keys,
// keyed by them; a key with none is absent. It reads up to
// sqlshared.EndpointIdentityChunk keys a query, each chunk one lookup of
// the primary key per key.
func (db *DB) EndpointIdentities(ctx context.Context, endpoint string, keys []linkbridge.ResourceKey) (map[linkbridge.ResourceKey]linkbridge.EndpointIdentity, error) {
	out := make(map[linkbridge.ResourceKey]linkbridge.EndpointIdentity)
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), sqlshared.EndpointIdentityChunk)]
		keys = keys[len(chunk):]
		args := make([]any, 0, 1+2*len(chunk))
		args = append(args, endpoint)
		for _, k := range chunk {
			args = append(args, k.Type, k.ID)
		}
		err := queryRows(ctx, db.read, `SELECT `+sqlshared.EndpointIdentityColumns+` FROM endpoint_identity
			WHERE endpoint = ? AND (resource_type, resource_id) IN (VALUES `+
			strings.Repeat(`(?, ?), `, len(chunk)-1)+`(?, ?))`, args, func(rows *sql.Rows) error {
			id, err := scanEndpointIdentity(rows)
			if err != nil {
				return err
			}
			out[linkbridge.ResourceKey{Type: id.ResourceType, ID: id.ResourceID}] = id
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sqlite: endpoint identities: %w", err)
		}
	}
	return out, nil
}

// RecordEndpointIdentity stores id through the writer, replacing the record
// of its endpoint and resource unless that one has a later Version. A zero
// UpdatedAt is recorded as now (db.Now). It returns EINVALID when Endpoint,
// ResourceType, ResourceID or EndpointID is empty.
func (db *DB) RecordEndpointIdentity(ctx context.Context, id linkbridge.EndpointIdentity) error {
	args, err := sqlshared.EndpointIdentityArgs(id, db.Now(), columns)
	if err != nil {
		return err
	}
	return db.w.do(ctx, func(w *writer) error {
		if _, err := w.upsertIdentity.ExecContext(bg, args...); err != nil {
			return fmt.Errorf("sqlite: record endpoint identity of %s/%s: %w", id.ResourceType, id.ResourceID, err)
		}
		return nil
	})
}

// ForgetEndpointIdentity removes the record of key on endpoint, through the
// writer; removing none is no error.
func (db *DB) ForgetEndpointIdentity(ctx context.Context, endpoint string, key linkbridge.ResourceKey) error {
	return db.w.do(ctx, func(w *writer) error {
		if _, err := w.delIdentity.ExecContext(bg, endpoint, key.Type, key.ID); err != nil {
			return fmt.Errorf("sqlite: forget endpoint identity of %s/%s: %w", key.Type, key.ID, err)
		}
		return nil
	})
}

// scanEndpointIdentity reads a row of sqlshared.EndpointIdentityColumns.
func scanEndpointIdentity(row scanner) (linkbridge.EndpointIdentity, error) {
	var (
		id        linkbridge.EndpointIdentity
		updatedAt string
	)
	if err := row.Scan(&id.Endpoint, &id.ResourceType, &id.ResourceID, &id.EndpointID, &id.EndpointVersion, &id.Version,
		&updatedAt); err != nil {
		return id, err
	}
	if err := parseTimes(storedTime{&id.UpdatedAt, updatedAt}); err != nil {
		return id, err
	}
	return id, nil
}
