package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/linkbridge/linkbridge"
)

// RunSettingStore checks the SettingStore contract: a setting is "" until
// recorded; InitSetting records the first value and returns it, and
// afterwards returns that value whatever it is given; of callers racing
// on a new setting, all get the one value that was recorded; settings of
// other names are apart (the search index version among them). open must
// return a new, empty store and close it when the test ends.
func RunSettingStore(t *testing.T, open func(t *testing.T) SettingStore) {
	t.Run("InitOnce", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		if v, err := s.Setting(ctx, linkbridge.SettingSystemBase); err != nil || v != "" {
			t.Fatalf("Setting() of a new store = %q, %v; want \"\", nil", v, err)
		}
		for _, give := range []string{"https://sp.example-ics.nhs.uk/linkbridge", "https://other.example"} {
			if v, err := s.InitSetting(ctx, linkbridge.SettingSystemBase, give); err != nil || v != "https://sp.example-ics.nhs.uk/linkbridge" {
				t.Fatalf("InitSetting(%q) = %q, %v; want the first value recorded", give, v, err)
			}
		}
		if v, err := s.Setting(ctx, linkbridge.SettingSystemBase); err != nil || v != "https://sp.example-ics.nhs.uk/linkbridge" {
			t.Fatalf("Setting() = %q, %v; want the recorded value", v, err)
		}
		if err := s.SetSearchIndexVersion(ctx, "v9"); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Setting(ctx, linkbridge.SettingSystemBase); err != nil || v != "https://sp.example-ics.nhs.uk/linkbridge" {
			t.Fatalf("Setting() after another setting changed = %q, %v", v, err)
		}
		if v, err := s.Setting(ctx, "no-such-setting"); err != nil || v != "" {
			t.Fatalf("Setting(unknown) = %q, %v; want \"\", nil", v, err)
		}
	})
	t.Run("Race", func(t *testing.T) {
		t.Parallel()
		s, ctx := open(t), context.Background()
		const n = 4
		got := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = s.InitSetting(ctx, "race", string(rune('a'+i))) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || got[i] != got[0] {
				t.Fatalf("InitSetting racing: %q, %v; want every caller to get %q", got[i], errs[i], got[0])
			}
		}
	})
}

// SettingStore is a store with settings of its own.
type SettingStore interface {
	linkbridge.SettingStore
	linkbridge.IndexStore
}
