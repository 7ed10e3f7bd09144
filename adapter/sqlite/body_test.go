package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// rawConn opens a second connection to the store at path, for SQL the
// store's API does not offer. Closed at cleanup.
func rawConn(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return raw
}

// TestBodiesCompressed checks that resource bodies are stored as zstd
// frames, and read back as the JSON written.
func TestBodiesCompressed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	db := mustOpenPath(t, path)
	in := intake(0, "")
	if err := db.CreateReferral(ctx, in); err != nil {
		t.Fatal(err)
	}
	raw := rawConn(t, path)
	for _, r := range in.Resources {
		var stored []byte
		if err := raw.QueryRowContext(ctx, `SELECT body FROM resource WHERE type = ? AND id = ?`, r.Type, r.ID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(stored, []byte{0x28, 0xb5, 0x2f, 0xfd}) || len(stored) >= len(r.Body) {
			t.Errorf("%s/%s: %d bytes stored for a %d-byte body, starting %x; want a shorter zstd frame", r.Type, r.ID, len(stored), len(r.Body), stored[:min(len(stored), 4)])
		}
		got, err := db.ReadResource(ctx, r.Type, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Body, r.Body) {
			t.Errorf("ReadResource(%s/%s) body:\n%s\nwant\n%s", r.Type, r.ID, got.Body, r.Body)
		}
	}
}

// TestPlainBodies checks that bodies stored as plain JSON, as every store
// written before bodies were compressed holds them, read as they are
// through every read of resource and resource_history.
func TestPlainBodies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "linkbridge.db")
	db := mustOpenPath(t, path)
	const (
		at1 = "2025-03-14T09:30:00.000000000Z"
		at2 = "2025-03-15T10:00:00.000000000Z"
		v1  = `{"resourceType":"Task","id":"task-plain","meta":{"versionId":"1"},"status":"requested"}`
		v2  = `{"resourceType":"Task","id":"task-plain","meta":{"versionId":"2"},"status":"accepted"}`
	)
	raw := rawConn(t, path)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO resource (type, id, version_id, last_updated, body, params) VALUES ('Task', 'task-plain', 2, ?, ?, '[["status","accepted"]]')`, []any{at2, []byte(v2)}},
		{`INSERT INTO resource_history (type, id, version_id, last_updated, body) VALUES ('Task', 'task-plain', 1, ?, ?)`, []any{at1, []byte(v1)}},
		{`INSERT INTO search_param (type, id, name, value) VALUES ('Task', 'task-plain', 'status', 'accepted')`, nil},
	} {
		if _, err := raw.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	check := func(what string, r *linkbridge.Resource, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if string(r.Body) != want {
			t.Fatalf("%s body %s, want %s", what, r.Body, want)
		}
	}
	r, err := db.ReadResource(ctx, "Task", "task-plain")
	check("ReadResource", r, err, v2)
	r, err = db.ReadResourceVersion(ctx, "Task", "task-plain", 1)
	check("ReadResourceVersion 1", r, err, v1)
	h, err := db.ResourceHistory(ctx, "Task", "task-plain")
	if err != nil || len(h) != 2 {
		t.Fatalf("ResourceHistory = %d versions, %v; want 2", len(h), err)
	}
	check("ResourceHistory[0]", h[0], nil, v2)
	check("ResourceHistory[1]", h[1], nil, v1)
	res, err := db.SearchResources(ctx, &linkbridge.ResourceQuery{Type: "Task", Count: 10,
		Params: []linkbridge.ParamFilter{{Name: "status", Values: []string{"accepted"}}}})
	if err != nil || len(res.Resources) != 1 {
		t.Fatalf("SearchResources = %+v, %v; want 1 match", res, err)
	}
	check("SearchResources", res.Resources[0], nil, v2)
	cur, err := db.CurrentResources(ctx, "", "", 10)
	if err != nil || len(cur) != 1 {
		t.Fatalf("CurrentResources = %d, %v; want 1", len(cur), err)
	}
	check("CurrentResources", cur[0], nil, v2)

	// A body that is neither JSON nor a frame is an error, not served.
	if _, err := raw.ExecContext(ctx, `UPDATE resource SET body = X'00010203' WHERE id = 'task-plain'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReadResource(ctx, "Task", "task-plain"); err == nil {
		t.Fatal("ReadResource of a damaged body: no error")
	}
}
