package bench

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/adapter/sqlite"
)

// seedRate, when set, makes TestSeedRate seed that many referrals into a
// SQLite file and log the rate (go test -run TestSeedRate ./bench
// -seedrate 20000).
var seedRate = flag.Int("seedrate", 0, "seed this many referrals into SQLite and log the rate (TestSeedRate)")

func TestSeedRate(t *testing.T) {
	if *seedRate == 0 {
		t.Skip("run with -seedrate N")
	}
	ctx := context.Background()
	// Opened as bench seed opens it (cmd/linkbridge benchseed.go).
	db := &sqlite.DB{Path: filepath.Join(t.TempDir(), "seed.db"), Logger: slog.New(slog.DiscardHandler), CacheMiB: 512, BulkLoad: true}
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	var progress bytes.Buffer
	st, err := Seed(ctx, db, SeedConfig{Referrals: *seedRate, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\n%+v\nrate %.0f referrals/s", progress.String(), st, st.Rate())
}

// TestJourneyDeterministic: the same seed builds the same journeys.
func TestJourneyDeterministic(t *testing.T) {
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := SeedConfig{Referrals: 100}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, b := newJourneys(cfg, codec), newJourneys(cfg, codec)
	for _, i := range []int{0, 57, 99} {
		var sa, sb SeedStats
		ja, err := a.Journey(i, &sa)
		if err != nil {
			t.Fatal(err)
		}
		jb, err := b.Journey(i, &sb)
		if err != nil {
			t.Fatal(err)
		}
		if len(ja) != len(jb) {
			t.Fatalf("referral %d: %d ops, then %d", i, len(ja), len(jb))
		}
		for k := range ja {
			ra, rb := opResources(ja[k]), opResources(jb[k])
			for x := range ra {
				if !bytes.Equal(ra[x].Body, rb[x].Body) {
					t.Errorf("referral %d op %d: %s bodies differ", i, k, ra[x].Reference())
				}
			}
		}
	}
}

func opResources(op linkbridge.BatchOp) []*linkbridge.Resource {
	if op.Intake != nil {
		return op.Intake.Resources
	}
	return op.Change.Resources
}

// TestSeedNHSNumbers: the seeded NHS numbers pass Modulus 11, lie in the
// 999 range (never issued) and are distinct.
func TestSeedNHSNumbers(t *testing.T) {
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := SeedConfig{Referrals: 1000}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	j := newJourneys(cfg, codec)
	if got, want := len(j.nhs), 909091; got != want {
		t.Errorf("%d stems in the 999 range, want %d", got, want)
	}
	seen := map[string]bool{}
	for k := range 200000 {
		n := j.NHSNumber(k)
		if _, err := linkbridge.NormalizeNHSNumber(n); err != nil || !strings.HasPrefix(n, "999") {
			t.Fatalf("person %d: NHS number %s: %v", k, n, err)
		}
		if seen[n] {
			t.Fatalf("person %d: NHS number %s given twice", k, n)
		}
		seen[n] = true
	}
}

// TestSeedOrganisations: the default numbers of practices and services
// grow with the seed so that each organisation's yearly volume stays
// realistic, practice volumes are mildly skewed, each service takes its
// own practices' referrals, and explicit numbers are kept.
func TestSeedOrganisations(t *testing.T) {
	for _, tc := range []struct {
		referrals, practices, services int
	}{
		{1000, 40, 4},
		{100_000, 133, 22},
		{1_000_000, 1333, 222},
	} {
		cfg := SeedConfig{Referrals: tc.referrals}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if cfg.Practices != tc.practices || cfg.Services != tc.services {
			t.Errorf("%d referrals: %d practices, %d services; want %d, %d", tc.referrals, cfg.Practices, cfg.Services, tc.practices, tc.services)
		}
	}
	cfg := SeedConfig{Referrals: 5, Practices: 7, Services: 3}
	if err := cfg.Validate(); err != nil || cfg.Practices != 7 || cfg.Services != 3 {
		t.Errorf("explicit 7 practices, 3 services: got %d, %d (%v)", cfg.Practices, cfg.Services, err)
	}
	if err := (&SeedConfig{Referrals: 5, Practices: 3, Services: 4}).Validate(); err == nil {
		t.Error("more services than practices: no error")
	}
	if got := Service(221); got != "SPS222" {
		t.Errorf("Service(221) = %s", got)
	}

	// 300,000 referrals: 400 practices, 67 services. Draw 60,000 people.
	cfg = SeedConfig{Referrals: 300_000}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	j := newJourneys(cfg, nil)
	byPractice := map[string]int{}
	byService := make([]int, cfg.Services)
	practiceService := map[string]int{}
	const people = 60_000
	for k := range people {
		p, s := j.PersonPractice(k), j.PersonService(k)
		byPractice[p]++
		byService[s]++
		if was, ok := practiceService[p]; ok && was != s {
			t.Fatalf("practice %s refers to services %d and %d", p, was, s)
		}
		practiceService[p] = s
	}
	counts := make([]int, 0, len(byPractice))
	for _, n := range byPractice {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	median, largest := counts[len(counts)/2], counts[len(counts)-1]
	if len(counts) < cfg.Practices*95/100 || largest > 8*median || largest < 2*median {
		t.Errorf("%d of %d practices refer; largest %d, median %d: want a mild skew", len(counts), cfg.Practices, largest, median)
	}
	slices.Sort(byService)
	if byService[0] == 0 || byService[len(byService)-1] > 3*byService[0] {
		t.Errorf("service volumes from %d to %d: want every service a similar share", byService[0], byService[len(byService)-1])
	}
	// A year's referrals of a service over its link workers: a caseload
	// of about 225 a year.
	yearly := float64(cfg.Referrals) / 3 / float64(cfg.Services)
	if lw := len(j.workers[0]); yearly/float64(lw) < 150 || yearly/float64(lw) > 300 {
		t.Errorf("service SPS001: %d link workers for %.0f referrals a year", lw, yearly)
	}
}

// analyzingStore is a SQLite store that records the number of referrals
// stored at each Analyze, as PostgreSQL's DB.Analyze would be called.
type analyzingStore struct {
	*sqlite.DB
	mu     sync.Mutex
	stored int
	at     []int
}

func (s *analyzingStore) WriteBatch(ctx context.Context, ops []linkbridge.BatchOp) error {
	if err := s.DB.WriteBatch(ctx, ops); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		if op.Intake != nil {
			s.stored++
		}
	}
	return nil
}

func (s *analyzingStore) Analyze(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, s.stored)
	return nil
}

// TestSeedAnalyzesAsItGrows: a store that keeps planner statistics is
// analyzed each time it has doubled since the last time (from the first
// batch on) and once at the end, so that the plans cached on a nearly empty
// store do not last the whole seed.
func TestSeedAnalyzesAsItGrows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "seed.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	s := &analyzingStore{DB: db}
	if _, err := Seed(ctx, s, SeedConfig{Referrals: 100, Batch: 10, Writers: 1}); err != nil {
		t.Fatal(err)
	}
	if want := []int{10, 20, 40, 80, 100}; !slices.Equal(s.at, want) {
		t.Errorf("analyzed with %v referrals stored, want %v", s.at, want)
	}
}
