package bench

import (
	"testing"

	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// TestRendererMatchesCodec: the journeys' resources rendered from
// templates are, byte for byte, what fhirjson.Codec.Encode renders (every
// hit is checked), most come from templates, and each decodes with the
// codec to a resource of its type and id.
func TestRendererMatchesCodec(t *testing.T) {
	codec, err := fhirjson.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := SeedConfig{Referrals: 400, OutboxWindow: 400 * 24 * 3600e9}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	j := newJourneys(cfg, codec)
	j.tpl.verify = true
	var st SeedStats
	decoded := 0
	for i := range cfg.Referrals {
		ops, err := j.Journey(i, &st)
		if err != nil {
			t.Fatalf("referral %d: %v", i, err)
		}
		if i%20 != 0 {
			continue
		}
		for _, op := range ops {
			for _, r := range opResources(op) {
				m, err := codec.DecodeResource(r.Body)
				if err != nil {
					t.Fatalf("%s: decode: %v\n%s", r.Reference(), err, r.Body)
				}
				if got := fhirmap.TypeName(m) + "/" + fhirmap.ID(m); got != r.Reference() {
					t.Errorf("%s decodes as %s", r.Reference(), got)
				}
				decoded++
			}
			if op.Change != nil {
				for _, o := range op.Change.Outbox {
					if _, err := codec.DecodeResource(o.Body); err != nil {
						t.Fatalf("write-back %s/%s: decode: %v", o.ResourceType, o.ResourceID, err)
					}
				}
			}
		}
	}
	hits, misses := j.tpl.hits.Load(), j.tpl.misses.Load()
	t.Logf("%d resource versions, %d from templates, %d shapes rendered by the codec, %d decoded", st.Resources, hits, misses, decoded)
	if st.Outbox == 0 {
		t.Error("no write-backs: the test wants Provenance rendered too")
	}
	if hits < 4*misses {
		t.Errorf("%d hits, %d misses: want most resources from templates", hits, misses)
	}
	j.tpl.mu.RLock()
	defer j.tpl.mu.RUnlock()
	untemplated := 0
	for _, tt := range j.tpl.cache {
		if tt == nil {
			untemplated++
		}
	}
	if untemplated > len(j.tpl.cache)/10 {
		t.Errorf("%d of %d shapes could not be templated", untemplated, len(j.tpl.cache))
	}
}
