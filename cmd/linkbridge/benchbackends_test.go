package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge/adapter/postgres/pgtest"
)

// TestBenchBackends runs the intake benchmark on SQLite and PostgreSQL in
// one run and checks that each backend stored every referral it answered
// 2xx to, and that the PostgreSQL run left no schema behind.
func TestBenchBackends(t *testing.T) {
	pg := pgtest.ServerURL(t)
	ctx := context.Background()
	benchSchemas := func() int {
		t.Helper()
		conn, err := pgx.Connect(ctx, pg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT COUNT(*) FROM pg_namespace WHERE nspname LIKE 'linkbridge_bench_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := benchSchemas()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"bench", "--backends", "sqlite,postgres", "--postgres", pg, "--duration", "300ms", "--warmup", "100ms",
		"--concurrency", "4", "--log-level", "warn", "--json"}, noEnv, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep BenchReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, stdout.String())
	}
	if len(rep.Backends) != 2 || rep.Gateway == nil || rep.Gateway.Name != rep.Backends[0].Name {
		t.Fatalf("bench --json: gateway %+v, %d backends; want 2, the first also as gateway", rep.Gateway, len(rep.Backends))
	}
	for i, want := range []string{"gateway/sqlite", "gateway/postgres"} {
		r := rep.Backends[i]
		if r.Name != want || r.Requests == 0 || r.OK != r.Requests || r.Errors != 0 {
			t.Errorf("backend %d: %s requests %d ok %d errors %d; want %s with every request ok", i, r.Name, r.Requests, r.OK, r.Errors, want)
		}
		if r.Stored == nil || *r.Stored != r.OK+r.WarmupOK {
			t.Errorf("%s: stored %v ServiceRequests, want %d (every 2xx)", r.Name, r.Stored, r.OK+r.WarmupOK)
		}
	}
	if after := benchSchemas(); after != before {
		t.Errorf("bench schemas: %d before, %d after; want the run's schema dropped", before, after)
	}
}

func TestBenchBackendsFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"UnknownBackend", []string{"bench", "--backends", "sqlite,mysql"}, `unknown backend "mysql"`},
		{"TargetTakesNoBackend", []string{"bench", "--target", "http://127.0.0.1:1/fhir", "--backends", "postgres"}, "--backends applies to the in-process gateway"},
		{"BadPostgresURL", []string{"bench", "--backends", "postgres", "--postgres", "mysql://x", "--duration", "100ms"}, "not a postgres:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tc.args, noEnv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
