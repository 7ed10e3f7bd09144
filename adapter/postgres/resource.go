package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Reads return resources without Params: the store indexes them but does
// not return them.

// ReadResource returns the current version of a resource, or ENOTFOUND.
func (db *DB) ReadResource(ctx context.Context, typ, id string) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id}
	err := db.pool.QueryRow(ctx, `SELECT version_id, last_updated, body FROM resource WHERE type = $1 AND id = $2`, typ, id).
		Scan(&r.VersionID, &r.LastUpdated, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: read resource: %w", err)
	}
	r.LastUpdated = utc(r.LastUpdated)
	return r, nil
}

// ReadResourceVersion returns one version of a resource, or ENOTFOUND.
func (db *DB) ReadResourceVersion(ctx context.Context, typ, id string, version int) (*linkbridge.Resource, error) {
	r := &linkbridge.Resource{Type: typ, ID: id, VersionID: version}
	// The current version is in resource, the versions it replaced in
	// resource_history; one statement reads both from one snapshot.
	err := db.pool.QueryRow(ctx, `SELECT last_updated, body FROM resource
		WHERE type = $1 AND id = $2 AND version_id = $3
		UNION ALL
		SELECT last_updated, body FROM resource_history
		WHERE type = $1 AND id = $2 AND version_id = $3`, typ, id, version).
		Scan(&r.LastUpdated, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s version %d not found", typ, id, version)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: read resource version: %w", err)
	}
	r.LastUpdated = utc(r.LastUpdated)
	return r, nil
}

// ResourceHistory returns every version of a resource, newest first, or
// ENOTFOUND.
func (db *DB) ResourceHistory(ctx context.Context, typ, id string) ([]*linkbridge.Resource, error) {
	var out []*linkbridge.Resource
	err := queryRows(ctx, db.pool, `SELECT version_id, last_updated, body FROM resource
		WHERE type = $1 AND id = $2
		UNION ALL
		SELECT version_id, last_updated, body FROM resource_history
		WHERE type = $1 AND id = $2
		ORDER BY version_id DESC`, []any{typ, id}, func(rows pgx.Rows) error {
		r := &linkbridge.Resource{Type: typ, ID: id}
		if err := rows.Scan(&r.VersionID, &r.LastUpdated, &r.Body); err != nil {
			return err
		}
		r.LastUpdated = utc(r.LastUpdated)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: resource history: %w", err)
	}
	if len(out) == 0 {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "%s/%s not found", typ, id)
	}
	return out, nil
}

// Dates compare with sqlshared.DateOp's operators on timestamptz, the
// bounds rounded as ceilMicro says.

// SearchResources returns one page of the current versions matching q,
// ordered by lastUpdated then id (byte order: the id columns are COLLATE
// "C"), with the total number of matches. It returns EINVALID for a query
// without a type, with Count below 1, a negative Offset or an unsupported
// date prefix. A parameter filter without values matches nothing; so does
// an Access without keys.
func (db *DB) SearchResources(ctx context.Context, q *linkbridge.ResourceQuery) (*linkbridge.SearchResult, error) {
	if err := sqlshared.CheckResourceQuery(q); err != nil {
		return nil, err
	}

	var where strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where.WriteString(`WHERE r.type = ` + arg(q.Type))
	if len(q.IDs) > 0 {
		where.WriteString(` AND r.id = ANY(` + arg(q.IDs) + `::text[])`)
	}
	for _, f := range q.Params {
		values := f.Values
		if values == nil {
			values = []string{} // matches nothing
		}
		where.WriteString(` AND r.id IN (SELECT p.id FROM search_param p
			WHERE p.type = r.type AND p.name = ` + arg(f.Name) + ` AND p.value = ANY(` + arg(values) + `::text[]))`)
	}
	if q.Access != nil {
		// Only resources carrying one of the caller's keys
		// (resource_access); no keys matches nothing.
		keys := q.Access.Keys
		if keys == nil {
			keys = []string{}
		}
		where.WriteString(` AND r.id IN (SELECT a.id FROM resource_access a
			WHERE a.type = r.type AND a.key = ANY(` + arg(keys) + `::text[]))`)
	}
	for _, d := range q.LastUpdated {
		op, err := sqlshared.DateOp(d.Prefix)
		if err != nil {
			return nil, err
		}
		bound := d.Time
		if op == "<" || op == ">=" {
			bound = ceilMicro(bound) // see ceilMicro
		}
		where.WriteString(` AND r.last_updated ` + op + ` ` + arg(bound))
	}

	res := &linkbridge.SearchResult{}
	var err error
	res.Total, err = db.countAndPage(ctx, `r.id, r.version_id, r.last_updated, r.body`, `resource r `+where.String(),
		`r.last_updated, r.id`, args, q.Count, q.Offset, func(rows pgx.Rows) error {
			r := &linkbridge.Resource{Type: q.Type}
			if err := rows.Scan(&r.ID, &r.VersionID, &r.LastUpdated, &r.Body); err != nil {
				return err
			}
			r.LastUpdated = utc(r.LastUpdated)
			res.Resources = append(res.Resources, r)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("postgres: search: %w", err)
	}
	return res, nil
}
