package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Reads return resources without Params: the store indexes them but does
// not return them.

// ReadResource returns the current version of a resource, or ENOTFOUND.
func (db *DB) ReadResource(ctx context.Context, typ, id string) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id}
	var lastUpdated string
	err := db.read.QueryRowContext(ctx, `SELECT version_id, last_updated, body FROM resource WHERE type = ? AND id = ?`, typ, id).
		Scan(&r.VersionID, &lastUpdated, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: read resource: %w", err)
	}
	if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
		return nil, err
	}
	return r, nil
}

// ReadResourceVersion returns one version of a resource, or ENOTFOUND.
func (db *DB) ReadResourceVersion(ctx context.Context, typ, id string, version int) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id, VersionID: version}
	var lastUpdated string
	// The current version is in resource, the versions it replaced in
	// resource_history.
	err := db.read.QueryRowContext(ctx, `SELECT last_updated, body FROM resource
		WHERE type = ?1 AND id = ?2 AND version_id = ?3
		UNION ALL
		SELECT last_updated, body FROM resource_history
		WHERE type = ?1 AND id = ?2 AND version_id = ?3`, typ, id, version).
		Scan(&lastUpdated, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s version %d not found", typ, id, version)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: read resource version: %w", err)
	}
	if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
		return nil, err
	}
	return r, nil
}

// ResourceHistory returns every version of a resource, newest first, or
// ENOTFOUND.
func (db *DB) ResourceHistory(ctx context.Context, typ, id string) ([]*linkbridge.Resource, error) {
	// One statement reads both tables from one snapshot.
	rows, err := db.read.QueryContext(ctx, `SELECT version_id, last_updated, body FROM resource
		WHERE type = ?1 AND id = ?2
		UNION ALL
		SELECT version_id, last_updated, body FROM resource_history
		WHERE type = ?1 AND id = ?2
		ORDER BY version_id DESC`, typ, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: resource history: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []*linkbridge.Resource
	for rows.Next() {
		r := &linkbridge.Resource{Type: typ, ID: id}
		var lastUpdated string
		if err := rows.Scan(&r.VersionID, &lastUpdated, &r.Body); err != nil {
			return nil, fmt.Errorf("sqlite: resource history: %w", err)
		}
		if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: resource history: %w", err)
	}
	if len(out) == 0 {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	}
	return out, nil
}

// Dates compare with sqlshared.DateOp's operators: stored times are
// fixed-width UTC text, so text comparison is time comparison.

// SearchResources returns one page of the current versions matching q,
// ordered by lastUpdated then id, with the total number of matches. It
// returns EINVALID for a query without a type, with Count below 1, a
// negative Offset or an unsupported date prefix. A parameter filter without
// values matches nothing; so does an Access without keys.
func (db *DB) SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error) {
	if err := sqlshared.CheckResourceQuery(q); err != nil {
		return nil, err
	}

	var where strings.Builder
	args := []any{q.Type}
	where.WriteString(`WHERE r.type = ?`)
	if len(q.IDs) > 0 {
		where.WriteString(` AND r.id IN (` + placeholders(len(q.IDs)) + `)`)
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	for _, f := range q.Params {
		// IN (subquery) lets SQLite drive the search from the value index
		// when a parameter is selective. The subquery is not correlated
		// (p.type = ?, not r.type), so SQLite evaluates it only once.
		where.WriteString(` AND r.id IN (SELECT p.id FROM search_param p
			WHERE p.type = ? AND p.name = ? AND p.value IN (` + placeholders(len(f.Values)) + `))`)
		args = append(args, q.Type, f.Name)
		for _, v := range f.Values {
			args = append(args, v)
		}
	}
	if q.Access != nil {
		// Only resources carrying one of the caller's keys (resource_access);
		// no keys matches nothing.
		where.WriteString(` AND r.id IN (SELECT a.id FROM resource_access a
			WHERE a.type = ? AND a.key IN (` + placeholders(len(q.Access.Keys)) + `))`)
		args = append(args, q.Type)
		for _, k := range q.Access.Keys {
			args = append(args, k)
		}
	}
	for _, d := range q.LastUpdated {
		op, err := sqlshared.DateOp(d.Prefix)
		if err != nil {
			return nil, err
		}
		where.WriteString(` AND r.last_updated ` + op + ` ?`)
		args = append(args, formatTime(d.Time))
	}

	// The count and the page come from one read transaction, so they agree.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	res := &linkbridge.SearchResult{}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM resource r `+where.String(), args...).Scan(&res.Total); err != nil {
		return nil, fmt.Errorf("sqlite: search: count: %w", err)
	}
	if res.Total <= q.Offset {
		return res, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT r.id, r.version_id, r.last_updated, r.body FROM resource r `+
		where.String()+` ORDER BY r.last_updated, r.id LIMIT ? OFFSET ?`,
		append(args, q.Count, q.Offset)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		r := &linkbridge.Resource{Type: q.Type}
		var lastUpdated string
		if err := rows.Scan(&r.ID, &r.VersionID, &lastUpdated, &r.Body); err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		if r.LastUpdated, err = parseTime(lastUpdated); err != nil {
			return nil, err
		}
		res.Resources = append(res.Resources, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	return res, nil
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
