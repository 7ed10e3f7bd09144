package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
	"github.com/linkbridge/linkbridge/bench"
)

// TestBenchScaleKeep runs bench scale on a small PostgreSQL store, as its
// own process (it starts the gateway from its own binary), with and
// without --keep: the point is measured and saved either way; with --keep
// the seeded schema is left, holding the seeded referrals, and its --db
// printed; without it, no schema of the run is left.
func TestBenchScaleKeep(t *testing.T) {
	pg := pgtest.ServerURL(t)
	bin := buildBinary(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	scaleSchemas := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM pg_namespace WHERE nspname LIKE 'linkbridge_scale_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	keptRe := regexp.MustCompile(`the store is kept: --db (\S+)`)
	const size = 60
	for _, keep := range []bool{false, true} {
		before := scaleSchemas()
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		args := []string{"bench", "scale", "--sizes", "60", "--backends", "postgres", "--postgres", pg, "--dir", dir, "--out", out,
			"--intake-duration", "300ms", "--concurrency", "4", "--query-runs", "3", "--drain-for", "20s"}
		if keep {
			args = append(args, "--keep")
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("bench scale (keep %v): %v\n%s", keep, err, stderr.String())
		}
		b, err := os.ReadFile(filepath.Join(out, "scale.json"))
		if err != nil {
			t.Fatal(err)
		}
		var res bench.ScaleResults
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Points) != 1 || res.Points[0].Referrals != size || res.Points[0].IntakeRPS <= 0 || res.Points[0].DBBytes <= 0 {
			t.Fatalf("keep %v: points %+v; want one at %d referrals with intake and a size", keep, res.Points, size)
		}
		// The point says the server settings it was measured with.
		if srv := res.Points[0].Server; !strings.HasPrefix(srv, "PostgreSQL ") || !strings.Contains(srv, "shared_buffers ") {
			t.Errorf("keep %v: the point's server is %q; want PostgreSQL's version and settings", keep, srv)
		}
		m := keptRe.FindStringSubmatch(stderr.String())
		if !keep {
			if m != nil || scaleSchemas() != before {
				t.Errorf("without --keep: %q printed, %d schemas before, %d after; want none printed and the schema dropped", m, before, scaleSchemas())
			}
			continue
		}
		if m == nil || scaleSchemas() != before+1 {
			t.Fatalf("--keep: %d schemas before, %d after; stderr:\n%s\nwant the store's --db printed and its schema left", before, scaleSchemas(), stderr.String())
		}
		kept, err := pgx.Connect(ctx, m[1])
		if err != nil {
			t.Fatal(err)
		}
		var schema string
		var n int
		if err := kept.QueryRow(ctx, `SELECT current_schema(), (SELECT COUNT(*) FROM referral)`).Scan(&schema, &n); err != nil {
			t.Fatal(err)
		}
		_ = kept.Close(ctx)
		t.Cleanup(func() {
			_, _ = conn.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		})
		if n < size {
			t.Errorf("kept store %s: %d referrals; want the %d seeded (and the intake run's)", schema, n, size)
		}
	}
}
