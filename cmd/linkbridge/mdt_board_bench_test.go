package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/mdtweb"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
	"github.com/linkbridge/linkbridge/bench"
)

// BenchmarkMDTBoard times one board page, GET /mdt?practice=…, through the
// handler (authentication off, as serve --dev), for the practice with the
// most referrals on the board of a seeded SQLite store, at the seed's end
// (docs/performance.md#the-mdt-board).
//
// LINKBRIDGE_BENCH_BOARD_DB names a store made by `linkbridge bench seed`
// with its default --end (20,000 referrals over 10 practices gives each
// about 2,000 in three years, like the largest practice of the
// 100,000-referral store); without it a store of 500 referrals of one
// practice over 100 days is seeded here, which takes a while.
func BenchmarkMDTBoard(b *testing.B) {
	ctx := context.Background()
	path := os.Getenv("LINKBRIDGE_BENCH_BOARD_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "board.db")
		db, err := sqlite.Open(ctx, path, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bench.Seed(ctx, db, bench.SeedConfig{Referrals: 500, Practices: 1, Services: 1, Span: 2400 * time.Hour}); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	db, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	now := func() time.Time { return bench.DefaultSeedEnd }

	// The practice with the most referrals the board reads.
	perPractice := map[string]int{}
	q := linkbridge.ReportQuery{From: now().Add(-90 * 24 * time.Hour), To: now()}
	if err := db.ReportReferrals(ctx, q, func(page []*linkbridge.ReportReferral) error {
		for _, r := range page {
			perPractice[r.Referral.ReferrerODS]++
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	practice := ""
	for ods, n := range perPractice {
		if n > perPractice[practice] || n == perPractice[practice] && ods < practice {
			practice = ods
		}
	}
	if practice == "" {
		b.Fatal("the store has no referral on the board")
	}

	s := &mdtweb.Server{Store: db, Cases: db, Now: now}
	h, err := s.Handler()
	if err != nil {
		b.Fatal(err)
	}
	target := "/mdt?practice=" + practice
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		return w
	}
	if w := get(); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "data-referral=") {
		b.Fatalf("GET %s: HTTP %d, or no one listed", target, w.Code)
	}
	b.Logf("practice %s: %d referrals read for the board", practice, perPractice[practice])
	cpu0 := processCPU(b)
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if w := get(); w.Code != http.StatusOK {
			b.Fatalf("GET %s: HTTP %d", target, w.Code)
		}
		took = append(took, time.Since(start))
	}
	// The process's CPU time a page: on a machine shared with other work
	// it varies less than ns/op, which counts the waits for a core.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(len(took)), "cpu-ns/op")
	// The target is a percentile (docs/performance.md#the-mdt-board).
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2]), "p50-ns")
	b.ReportMetric(float64(took[(len(took)*99)/100]), "p99-ns")
}

// processCPU is the process's user and system CPU time so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
