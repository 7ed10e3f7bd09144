package bench

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"path/filepath"
	"strings"
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
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "seed.db"), slog.New(slog.DiscardHandler))
	if err != nil {
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
