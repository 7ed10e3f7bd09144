package postgres_test

import (
	"testing"

	"github.com/linkbridge/linkbridge/adapter/storetest"
)

// BenchmarkReport times the reports over a service of 10,000 referrals
// (80,000 contacts, 20,000 measures) on PostgreSQL
// (storetest.BenchReport).
func BenchmarkReport(b *testing.B) {
	storetest.BenchReport(b, mustOpen(b), 10000)
}
