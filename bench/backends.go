package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge/adapter/postgres"
)

// Store backends of the in-process bench gateway (Config.Backends, bench
// --backends).
const (
	// BackendSQLite is a fresh SQLite file in a new temporary directory.
	BackendSQLite = "sqlite"
	// BackendPostgres is a fresh schema in the PostgreSQL database at
	// Config.PostgresURL, dropped after the run.
	BackendPostgres = "postgres"
	// DefaultPostgresURL is the database of the postgres backend unless
	// --postgres names another: a local server with trust authentication.
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
)

// ParseBackends reads a comma-separated list of backends (BackendSQLite,
// BackendPostgres).
func ParseBackends(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		switch b = strings.TrimSpace(b); b {
		case BackendSQLite, BackendPostgres:
			out = append(out, b)
		default:
			return nil, fmt.Errorf("unknown backend %q: want sqlite or postgres", b)
		}
	}
	return out, nil
}

// benchStore prepares a fresh, empty store for the in-process gateway on
// backend: a SQLite file in a new temporary directory, or a new schema in
// the PostgreSQL database at pgURL. It returns the gateway's --db value and
// a function that removes the store.
func benchStore(ctx context.Context, backend, pgURL string) (string, func(), error) {
	if backend == BackendPostgres {
		u, drop, err := postgres.CreateSchema(ctx, pgURL, "linkbridge_bench")
		if err != nil {
			return "", nil, fmt.Errorf("bench on PostgreSQL (--postgres): %w", err)
		}
		return u, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = drop(ctx)
		}, nil
	}
	dir, err := os.MkdirTemp("", "linkbridge-bench-")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, "bench.db"), func() { _ = os.RemoveAll(dir) }, nil
}

// printBackends prints the gateway's figures on each backend side by side.
func printBackends(out io.Writer, rs []*Result) error {
	w := new(strings.Builder)
	fmt.Fprintf(w, "\n%-20s %10s %8s %8s %8s %8s %10s\n", "backend", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "CPU ms/req")
	for _, r := range rs {
		fmt.Fprintf(w, "%-20s %10.1f %8.2f %8.2f %8.2f %8d %10.2f\n", r.Name, r.RPS, r.Latency.P50, r.Latency.P90, r.Latency.P99,
			r.Errors, r.CPUPerReqMS)
	}
	_, err := io.WriteString(out, w.String())
	return err
}
