package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
)

// TestUpgradeTokenOnce opens a schema that migrations 001–022 built, whose
// index holds each token twice ("system|value" and "value"): migration 023
// leaves each once, with its system, and the store searches and re-indexes
// it as one it wrote itself (sqlsharedtest.CheckTokenUpgrade).
func TestUpgradeTokenOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := newSchema(t)
	conn := rawConn(t, u)
	for _, q := range migrationsBefore(t, "023") {
		if _, err := conn.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("building a 022 schema: %v", err)
		}
	}
	for _, r := range sqlsharedtest.TokenUpgradeResources {
		params, err := json.Marshal(r.Params)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO resource (type, id, version_id, last_updated, body, params)
			VALUES ($1, $2, 1, '2025-03-14T09:30:00Z', '\x7b7d', $3::jsonb)`, r.Type, r.ID, string(params)); err != nil {
			t.Fatalf("building a 022 schema: %v", err)
		}
		for _, p := range r.Params {
			if _, err := conn.Exec(ctx, `INSERT INTO search_param (type, id, name, value) VALUES ($1, $2, $3, $4)`, r.Type, r.ID, p[0], p[1]); err != nil {
				t.Fatalf("building a 022 schema: %v", err)
			}
		}
	}

	db := mustOpenURL(t, u)
	rows := func() [][5]string {
		t.Helper()
		rs, err := conn.Query(ctx, `SELECT type, id, name, value, system FROM search_param`)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		var out [][5]string
		for rs.Next() {
			var c [5]string
			if err := rs.Scan(&c[0], &c[1], &c[2], &c[3], &c[4]); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	sqlsharedtest.CheckTokenUpgrade(t, db, rows)
}
