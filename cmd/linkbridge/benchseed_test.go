package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// TestBenchSeed seeds a new SQLite file with "bench seed" and reads the
// referrals back; seeding an existing file, or without --referrals or a
// store, is refused.
func TestBenchSeed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "seed.db")
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	if err := run(ctx, []string{"bench", "seed", "--referrals", "40", "--batch", "15", "--db", path}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("bench seed: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	t.Logf("\n%s%s", out, stderr.String())
	if !regexp.MustCompile(`seeded .*: 40 referrals of \d+ people in \S+: \d+ referrals/s`).MatchString(out) {
		t.Errorf("summary %q: want the referrals and the rate", out)
	}
	if !strings.Contains(stderr.String(), "40/40 referrals") {
		t.Errorf("progress %q: want the bar at 40/40", stderr.String())
	}
	db, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	refs, total, err := db.ListReferrals(ctx, linkbridge.ReferralFilter{Limit: 100})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil || total != 40 {
		t.Fatalf("ListReferrals = %d, %v; want 40", total, err)
	}
	changed := 0
	for _, r := range refs {
		if r.Version > 1 {
			changed++
		}
	}
	if changed < 30 {
		t.Errorf("%d of 40 referrals changed after intake: want journeys", changed)
	}
	for _, args := range [][]string{
		{"bench", "seed", "--referrals", "5", "--db", path},
		{"bench", "seed", "--db", filepath.Join(t.TempDir(), "x.db")},
		{"bench", "seed", "--referrals", "5"},
		{"bench", "seed", "--referrals", "5", "--db", "x.db", "--postgres", "postgres://localhost/x"},
	} {
		if err := run(ctx, args, getenv, &stdout, &stderr); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
