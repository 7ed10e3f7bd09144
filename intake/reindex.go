package intake

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/fhirjson"
	"github.com/linkbridge/linkbridge/fhirmap"
)

// ReindexStats counts what Reindex did.
type ReindexStats struct {
	// Scanned is the number of current resource versions read.
	Scanned int
	// Reindexed is the number whose index changed.
	Reindexed int
	// Skipped is the number left alone because a newer version was
	// written meanwhile (and indexed by the table in use).
	Skipped int
}

// reindexPage is how many resources Reindex reads at a time.
const reindexPage = 500

// Reindex brings the search index of a store up to the search parameter
// table in use (fhirmap.SearchIndexVersion): when the store's index was
// built with another version (or none was recorded, a store older than the
// record), every current resource is parsed from its stored body and its
// search parameter values are computed again; those that differ from the
// indexed ones are replaced. Then the version is recorded, and later calls
// return at once. It is safe to run while the gateway serves and on several
// replicas at once: a resource written meanwhile was indexed with the table
// in use, and a re-index never replaces a newer version's values. It runs
// in pages, so memory stays that of a page whatever the store holds. An
// interrupted run leaves the version unrecorded and the next run starts
// again (docs/referral-exchange.md#search-parameters).
func Reindex(ctx context.Context, store linkbridge.IndexStore, codec *fhirjson.Codec, logger *slog.Logger) (ReindexStats, error) {
	var st ReindexStats
	want := fhirmap.SearchIndexVersion()
	have, err := store.SearchIndexVersion(ctx)
	if err != nil {
		return st, err
	}
	if have == want {
		return st, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger.Info("search index: rebuilding for a changed search parameter table", "from", have, "to", want)
	var afterType, afterID string
	for {
		page, err := store.CurrentResources(ctx, afterType, afterID, reindexPage)
		if err != nil {
			return st, err
		}
		for _, r := range page {
			st.Scanned++
			msg, err := codec.DecodeResource(r.Body)
			if err != nil {
				return st, fmt.Errorf("reindex %s/%s: stored body does not parse: %w", r.Type, r.ID, err)
			}
			params := fhirmap.SearchParams(msg)
			if sameParams(r.Params, params) {
				continue
			}
			r.Params = params
			ok, err := store.ReindexResource(ctx, r)
			if err != nil {
				return st, err
			}
			if ok {
				st.Reindexed++
			} else {
				st.Skipped++
			}
		}
		if len(page) < reindexPage {
			break
		}
		last := page[len(page)-1]
		afterType, afterID = last.Type, last.ID
	}
	if err := store.SetSearchIndexVersion(ctx, want); err != nil {
		return st, err
	}
	logger.Info("search index: rebuilt", "scanned", st.Scanned, "reindexed", st.Reindexed, "skipped", st.Skipped, "version", want)
	return st, nil
}

// sameParams reports whether two lists hold the same set of values.
func sameParams(a, b []linkbridge.SearchParam) bool {
	set := make(map[linkbridge.SearchParam]bool, len(a))
	for _, p := range a {
		set[p] = true
	}
	seen := make(map[linkbridge.SearchParam]bool, len(b))
	for _, p := range b {
		if !set[p] {
			return false
		}
		seen[p] = true
	}
	return len(seen) == len(set)
}
