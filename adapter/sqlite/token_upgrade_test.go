package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared/sqlsharedtest"
)

// TestUpgradeTokenOnce opens a database that migrations 001–022 built,
// whose index holds each token twice ("system|value" and "value"):
// migration 023 leaves each once, with its system, and the store searches
// and re-indexes it as one it wrote itself (sqlsharedtest.CheckTokenUpgrade).
func TestUpgradeTokenOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	old := oldDatabase(t, path, "023")
	for _, r := range sqlsharedtest.TokenUpgradeResources {
		params, err := json.Marshal(r.Params)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.ExecContext(ctx, `INSERT INTO resource (type, id, version_id, last_updated, body, params)
			VALUES (?, ?, 1, '2025-03-14T09:30:00.000000000Z', X'7B7D', ?)`, r.Type, r.ID, string(params)); err != nil {
			t.Fatalf("building a 022 database: %v", err)
		}
		for _, p := range r.Params {
			if _, err := old.ExecContext(ctx, `INSERT INTO search_param (type, id, name, value) VALUES (?, ?, ?, ?)`, r.Type, r.ID, p[0], p[1]); err != nil {
				t.Fatalf("building a 022 database: %v", err)
			}
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpenPath(t, path)
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	rows := func() [][5]string {
		t.Helper()
		rs, err := raw.QueryContext(ctx, `SELECT type, id, name, value, system FROM search_param`)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rs.Close() }()
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
