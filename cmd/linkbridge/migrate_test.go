package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// TestMigrate runs "linkbridge migrate" twice on each backend: the first
// run applies every migration, the second finds them applied and lists the
// same; both backends list the same migrations.
func TestMigrate(t *testing.T) {
	t.Parallel()
	lists := map[string]string{}
	for name, db := range map[string]string{
		"sqlite":   filepath.Join(t.TempDir(), "lb.db"),
		"postgres": pgtest.NewSchema(t),
	} {
		var first, second bytes.Buffer
		for _, out := range []*bytes.Buffer{&first, &second} {
			if err := run(context.Background(), []string{"migrate", "--create-db", "--db", db}, noEnv, out, io.Discard); err != nil {
				t.Fatalf("%s: migrate: %v", name, err)
			}
		}
		if first.String() != second.String() || !strings.Contains(first.String(), "001_initial.sql") {
			t.Fatalf("%s: migrate printed\n%s\nthen\n%s\nwant the same list, from 001_initial.sql", name, first.String(), second.String())
		}
		_, list, _ := strings.Cut(first.String(), "\n")
		lists[name] = list
	}
	if lists["sqlite"] != lists["postgres"] {
		t.Fatalf("migrations differ:\nsqlite:\n%s\npostgres:\n%s", lists["sqlite"], lists["postgres"])
	}
}
