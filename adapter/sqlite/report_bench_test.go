package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// BenchmarkReport times the reports over a service of 10,000 referrals
// (80,000 contacts, 20,000 measures) on a SQLite file
// (storetest.BenchReport).
func BenchmarkReport(b *testing.B) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "lb.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	storetest.BenchReport(b, db, 10000)
}
