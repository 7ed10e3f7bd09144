package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// TestBenchMigrations seeds a small store on each backend, runs "bench
// migrations" on it and checks that every migration is replayed where it
// still applies (the index-only 020 and 021 wholly), the re-index sample is
// measured and finds the index up to date, the results are saved, and the
// store is left exactly as it was: its schema, and every table's rows.
func TestBenchMigrations(t *testing.T) {
	ctx := context.Background()
	getenv := func(string) string { return "" }
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var target, flag string
			var snapshot func(t *testing.T) string
			if backend == "postgres" {
				target, flag = pgtest.NewSchema(t), "--postgres"
				snapshot = func(t *testing.T) string { return pgSnapshot(t, target) }
			} else {
				target, flag = filepath.Join(t.TempDir(), "m.db"), "--db"
				snapshot = func(t *testing.T) string { return sqliteSnapshot(t, target) }
			}
			var stdout, stderr bytes.Buffer
			if err := run(ctx, []string{"bench", "seed", "--referrals", "60", flag, target}, getenv, &stdout, &stderr); err != nil {
				t.Fatalf("bench seed: %v\n%s", err, stderr.String())
			}
			before := snapshot(t)
			out := t.TempDir()
			stdout.Reset()
			stderr.Reset()
			if err := run(ctx, []string{"bench", "migrations", flag, target, "--out", out, "--reindex-sample", "200"}, getenv, &stdout, &stderr); err != nil {
				t.Fatalf("bench migrations: %v\n%s", err, stderr.String())
			}
			if after := snapshot(t); after != before {
				t.Errorf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			var runs []MigrationRun
			b, err := os.ReadFile(filepath.Join(out, "migrations.json"))
			if err == nil {
				err = json.Unmarshal(b, &runs)
			}
			if err != nil || len(runs) != 1 {
				t.Fatalf("migrations.json: %d runs, %v; want 1", len(runs), err)
			}
			r := runs[0]
			if r.Backend != backend || r.Referrals != 60 || r.Resources < 60*4 {
				t.Errorf("run of %s with %d referrals, %d resources: want %s, 60, at least 240", r.Backend, r.Referrals, r.Resources, backend)
			}
			replayed := map[string]int{}
			for _, m := range r.Migrations {
				replayed[m.Name] = m.Replayed()
				for _, s := range m.Statements {
					if strings.HasPrefix(s.Note, "stopped") || strings.HasPrefix(s.Note, "not run") {
						t.Errorf("%s: %q %s: want no statement stopped without a timeout", m.Name, s.Statement, s.Note)
					}
					if s.Replayed != (s.Note == "") {
						t.Errorf("%s: %q replayed %v with note %q", m.Name, s.Statement, s.Replayed, s.Note)
					}
				}
			}
			if len(r.Migrations) < 19 || replayed["020_report_indexes.sql"] != 4 || replayed["021_outbox_queue_order.sql"] != 1 {
				t.Errorf("replayed %v: want every migration, 020's four indexes and 021's one", replayed)
			}
			if x := r.Reindex; x == nil || x.Scanned != 200 || x.Changed != 0 || x.PerS <= 0 || x.ProjectedS <= 0 {
				t.Errorf("re-index sample %+v: want 200 parsed, none changed, a rate and a projection", x)
			}
			md, _ := os.ReadFile(filepath.Join(out, "migrations.md"))
			for _, want := range []string{"020_report_indexes.sql", "Search re-index: 200 resources", backend + ", 60 referrals"} {
				if !strings.Contains(string(md), want) || !strings.Contains(stdout.String(), want) {
					t.Errorf("migrations.md and the output should name %q:\n%s", want, md)
				}
			}
		})
	}
}

// TestBenchMigrationsTimeout: a statement stopped by --statement-timeout
// ends its migration's replay (noted, the rest not run) and rolls it back.
func TestBenchMigrationsTimeout(t *testing.T) {
	ctx := context.Background()
	getenv := func(string) string { return "" }
	db := filepath.Join(t.TempDir(), "m.db")
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"bench", "seed", "--referrals", "20", "--db", db}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("bench seed: %v\n%s", err, stderr.String())
	}
	before := sqliteSnapshot(t, db)
	if err := run(ctx, []string{"bench", "migrations", "--db", db, "--statement-timeout", "1ns", "--reindex-sample", "0"}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("bench migrations: %v\n%s", err, stderr.String())
	}
	if after := sqliteSnapshot(t, db); after != before {
		t.Errorf("the store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !strings.Contains(stdout.String(), "**stopped after 0 s**: `CREATE INDEX referral_service_status") {
		t.Errorf("output should show 020's first index stopped:\n%s", stdout.String())
	}
	for _, args := range [][]string{
		{"bench", "migrations"},
		{"bench", "migrations", "--db", filepath.Join(t.TempDir(), "none.db")},
		{"bench", "migrations", "--db", db, "--postgres", "postgres://localhost/x"},
		{"bench", "migrations", "--db", db, "extra"},
		{"bench", "migrations", "--db", db, "--replay=false", "--out", t.TempDir()},
	} {
		if err := run(ctx, args, getenv, &stdout, &stderr); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}

// sqliteSnapshot renders a SQLite store's schema and the row count of each
// table.
func sqliteSnapshot(t *testing.T, path string) string {
	t.Helper()
	h, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close() }()
	return snapshotRows(t, func(q string) ([][2]string, error) {
		rows, err := h.Query(q)
		if err != nil {
			return nil, err
		}
		defer func() { _ = rows.Close() }()
		var out [][2]string
		for rows.Next() {
			var a, b sql.NullString
			if err := rows.Scan(&a, &b); err != nil {
				return nil, err
			}
			out = append(out, [2]string{a.String, b.String})
		}
		return out, rows.Err()
	}, `SELECT name, sql FROM sqlite_schema ORDER BY name`, `SELECT name, '' FROM sqlite_schema WHERE type = 'table' ORDER BY name`,
		func(table string) string { return `SELECT '` + table + `', COUNT(*) FROM "` + table + `"` })
}

// pgSnapshot renders a PostgreSQL store's columns, indexes and constraints
// and the row count of each table.
func pgSnapshot(t *testing.T, url string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	return snapshotRows(t, func(q string) ([][2]string, error) {
		rows, err := conn.Query(context.Background(), q)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][2]string
		for rows.Next() {
			var a, b string
			if err := rows.Scan(&a, &b); err != nil {
				return nil, err
			}
			out = append(out, [2]string{a, b})
		}
		return out, rows.Err()
	}, `SELECT table_name || '.' || column_name, data_type || ' ' || is_nullable || ' ' || COALESCE(column_default, '')
			FROM information_schema.columns WHERE table_schema = current_schema()
		UNION ALL SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()
		UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
		ORDER BY 1, 2`,
		`SELECT table_name, '' FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`,
		func(table string) string { return `SELECT '` + table + `', COUNT(*)::text FROM "` + table + `"` })
}

// snapshotRows runs the schema query, then counts the rows of each table
// that tables lists, and renders both one row a line.
func snapshotRows(t *testing.T, query func(string) ([][2]string, error), schema, tables string, count func(string) string) string {
	t.Helper()
	var b strings.Builder
	rows, err := query(schema)
	if err != nil {
		t.Fatalf("%s: %v", schema, err)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "%s: %s\n", r[0], r[1])
	}
	names, err := query(tables)
	if err != nil {
		t.Fatalf("%s: %v", tables, err)
	}
	for _, n := range names {
		c, err := query(count(n[0]))
		if err != nil || len(c) != 1 {
			t.Fatalf("count %s: %v", n[0], err)
		}
		fmt.Fprintf(&b, "%s rows: %s\n", n[0], c[0][1])
	}
	return b.String()
}
