package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// schemaPrefix is what CreateSchema accepts as a prefix: a plain lower-case
// identifier, so that the schema name needs no quoting.
var schemaPrefix = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)

// CreateSchema creates a new, empty schema named <prefix>_<16 hex digits>
// in the database at dbURL (a postgres:// URL), and returns dbURL with
// search_path set to it, so that a store opened on the returned URL lives
// in that schema, and a function that drops the schema with everything in
// it. Tests and the intake benchmark use it for a clean database that
// leaves nothing behind.
func CreateSchema(ctx context.Context, dbURL, prefix string) (string, func(context.Context) error, error) {
	if !schemaPrefix.MatchString(prefix) {
		return "", nil, fmt.Errorf("postgres: create schema: bad prefix %q", prefix)
	}
	u, err := url.Parse(dbURL)
	if err != nil || !IsURL(dbURL) {
		return "", nil, errors.New("postgres: create schema: not a postgres:// URL")
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	exec := func(ctx context.Context, sql string) (err error) {
		conn, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, conn.Close(context.Background())) }()
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", nil, fmt.Errorf("postgres: create schema: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func(ctx context.Context) error {
		if err := exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			return fmt.Errorf("postgres: drop schema %s: %w", schema, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

// SchemaSize returns the bytes on disk of the tables of the schema a
// store URL's search_path names (the first, or "public"): each table's
// pg_total_relation_size, its indexes and TOAST included.
func SchemaSize(ctx context.Context, dbURL string) (n int64, err error) {
	u, err := url.Parse(dbURL)
	if err != nil || !IsURL(dbURL) {
		return 0, errors.New("postgres: schema size: not a postgres:// URL")
	}
	schema, _, _ := strings.Cut(u.Query().Get("search_path"), ",")
	if schema = strings.TrimSpace(schema); schema == "" {
		schema = "public"
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, conn.Close(context.Background())) }()
	err = conn.QueryRow(ctx, `SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
		JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE ns.nspname = $1 AND c.relkind IN ('r', 'm', 'p')`, schema).Scan(&n)
	return n, err
}
