package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// systemBaseStore is what resolveSystems needs of the store: its settings,
// and whether it holds any referral yet.
type systemBaseStore interface {
	linkbridge.SettingStore
	linkbridge.CaseStore
}

// resolveSystems decides the URIs serve writes with
// (docs/identifiers.md#linkbridges-own-uris). The store records the system
// base its data was written with; the write-back key on GP records is
// under it, so it may never change. A store with none recorded records
// one: the configured base (the default when none is configured) if it
// holds no referral yet, else the default — what every resource it wrote
// before bases were recorded carries. A configured base that differs from
// the recorded one is refused with an error saying why; none configured
// takes the recorded one.
func resolveSystems(ctx context.Context, db systemBaseStore, configured string, logger *slog.Logger) (fhirmap.Systems, error) {
	want, err := fhirmap.NewSystems(configured)
	if err != nil {
		return fhirmap.Systems{}, fmt.Errorf("--system-base: %w", err)
	}
	recorded, err := db.Setting(ctx, linkbridge.SettingSystemBase)
	if err != nil {
		return fhirmap.Systems{}, err
	}
	if recorded == "" {
		initial := want.Base()
		if _, n, err := db.ListReferrals(ctx, linkbridge.ReferralFilter{Limit: 1}); err != nil {
			return fhirmap.Systems{}, err
		} else if n > 0 {
			initial = fhirmap.DefaultSystemBase
		}
		if recorded, err = db.InitSetting(ctx, linkbridge.SettingSystemBase, initial); err != nil {
			return fhirmap.Systems{}, err
		}
		logger.Info("system base recorded in the store", slog.String("system_base", recorded))
	}
	stored, err := fhirmap.NewSystems(recorded)
	if err != nil {
		return fhirmap.Systems{}, fmt.Errorf("the store's recorded system base: %w", err)
	}
	if configured == "" {
		return stored, nil
	}
	if want.Base() != stored.Base() {
		return fhirmap.Systems{}, fmt.Errorf("--system-base %s differs from %s, the base this store's data was written with: "+
			"every resource written back to GP records carries its write-back key under that base, and a new base would "+
			"write a second copy of each (docs/identifiers.md#linkbridges-own-uris); set --system-base %s (LINKBRIDGE_SYSTEM_BASE) or leave it unset",
			want.Base(), stored.Base(), stored.Base())
	}
	return stored, nil
}
