package intake

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

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
	st, err = scanIndex(ctx, store, codec, 0, true)
	if err != nil {
		return st, err
	}
	if err := store.SetSearchIndexVersion(ctx, want); err != nil {
		return st, err
	}
	logger.Info("search index: rebuilt", "scanned", st.Scanned, "reindexed", st.Reindexed, "skipped", st.Skipped, "version", want)
	return st, nil
}

// ScanIndex reads up to limit current resources (all when limit is 0), in
// the order and pages of Reindex, parses each and computes its search
// parameter values, and counts in Reindexed those whose index would change.
// It writes nothing: it measures what a re-index costs on a store (bench
// migrations) and whether a store's index is up to date.
func ScanIndex(ctx context.Context, store linkbridge.IndexStore, codec *fhirjson.Codec, limit int) (ReindexStats, error) {
	return scanIndex(ctx, store, codec, limit, false)
}

// scanIndex is Reindex's walk over the current resources: up to limit (0:
// all), replacing the index rows that differ when apply is set.
func scanIndex(ctx context.Context, store linkbridge.IndexStore, codec *fhirjson.Codec, limit int, apply bool) (ReindexStats, error) {
	var st ReindexStats
	var afterType, afterID string
	for {
		n := reindexPage
		if limit > 0 {
			n = min(n, limit-st.Scanned)
		}
		page, err := store.CurrentResources(ctx, afterType, afterID, n)
		if err != nil {
			return st, err
		}
		computed, err := pageParams(codec, page)
		if err != nil {
			return st, err
		}
		for i, r := range page {
			st.Scanned++
			params := computed[i]
			if sameParams(r.Params, params) {
				continue
			}
			if !apply {
				st.Reindexed++
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
		if len(page) < n || (limit > 0 && st.Scanned >= limit) {
			return st, nil
		}
		last := page[len(page)-1]
		afterType, afterID = last.Type, last.ID
	}
}

// pageParams parses each resource of page and computes its search
// parameter values, on GOMAXPROCS goroutines: parsing is nearly all of a
// re-index's time (docs/performance.md#migrations-on-a-large-store), and
// the codec is safe for concurrent use. The first body in page order that
// does not parse is the error.
func pageParams(codec *fhirjson.Codec, page []*linkbridge.Resource) ([][]linkbridge.SearchParam, error) {
	out := make([][]linkbridge.SearchParam, len(page))
	errs := make([]error, len(page))
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), len(page)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(page); i = int(next.Add(1) - 1) {
				r := page[i]
				msg, err := codec.DecodeResource(r.Body)
				if err != nil {
					errs[i] = fmt.Errorf("reindex %s/%s: stored body does not parse: %w", r.Type, r.ID, err)
					continue
				}
				out[i] = fhirmap.SearchParams(msg)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
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
