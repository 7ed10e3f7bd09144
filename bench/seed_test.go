package bench

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"path/filepath"
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
