package sqlshared

import (
	"fmt"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/bodyzip"
)

// dateOps maps FHIR search prefixes to SQL comparisons.
var dateOps = map[string]string{"": "=", "eq": "=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

// DateOp returns the SQL comparison of a FHIR date search prefix (eq, gt,
// ge, lt, le; none is eq), or EINVALID at _lastUpdated for another.
func DateOp(prefix string) (string, error) {
	op, ok := dateOps[prefix]
	if !ok {
		return "", linkbridge.Errorf(linkbridge.EINVALID, "unsupported _lastUpdated prefix %q", prefix).At("_lastUpdated")
	}
	return op, nil
}

// CheckResourceQuery returns EINVALID for a search without a type, with
// Count below 1 or with a negative Offset.
func CheckResourceQuery(q *linkbridge.ResourceQuery) error {
	switch {
	case q == nil || q.Type == "":
		return linkbridge.Errorf(linkbridge.EINVALID, "search needs a resource type")
	case q.Count < 1:
		return linkbridge.Errorf(linkbridge.EINVALID, "search page size must be at least 1")
	case q.Offset < 0:
		return linkbridge.Errorf(linkbridge.EINVALID, "search offset must not be negative")
	}
	return nil
}

// DriveLimit is the most entries of one filter (a parameter's values, the
// caller's access keys) that a search reads in order to start from that
// filter: counting a filter's entries goes no further.
const DriveLimit = 1000

// Driver chooses how a search finds its matches, from counts, the number
// of entries of each of its filters counted up to DriveLimit. It returns
// the index of the filter to start from, the one with the fewest entries,
// when it has fewer than DriveLimit: the search then reads those entries,
// joins the resources to them and sorts the few that match the other
// filters. Otherwise it returns -1: the search walks the resources in page
// order (by lastUpdated, then id), checks each against every filter's key
// and stops at the end of the page, which costs the page divided by the
// share of resources that match, however many there are.
//
// The adapters choose so, rather than leaving it to the database, because
// only the data tells: a service's access key holds most of the Tasks (walk
// the page order) and a patient's reference a handful (start from it), and
// filters that go together (a practice's requester identifier and its
// access key) defeat a planner that takes them as independent.
func Driver(counts []int) int {
	best, at := DriveLimit, -1
	for i, n := range counts {
		if n < best {
			best, at = n, i
		}
	}
	return at
}

// Resource bodies are stored compressed (bodyzip: zstd against a built-in
// dictionary of FHIR JSON) by both adapters, in resource.body and, copied
// by SQL as they are, in resource_history.body. Rows written before hold
// plain JSON, which bodyzip.Decode returns as it is, so no migration
// rewrites them. No SQL reads a body's JSON: search uses search_param and
// resource.params (docs/performance.md#storage-where-a-referrals-bytes-go).

// CompressBodies replaces the bodies of rows with their stored form. The
// adapters call it where a write's rows are built, outside the SQLite
// writer goroutine and before a PostgreSQL transaction that retryTx may
// run again (a body compressed inside it would be compressed twice).
func CompressBodies(rows []ResourceRow) {
	for i := range rows {
		rows[i].Body = bodyzip.Encode(rows[i].Body)
	}
}

// DecodeBody replaces r.Body, as scanned from resource or
// resource_history, with the JSON it holds.
func DecodeBody(r *linkbridge.Resource) error {
	body, err := bodyzip.Decode(r.Body)
	if err != nil {
		return fmt.Errorf("stored body of %s/%s version %d: %w", r.Type, r.ID, r.VersionID, err)
	}
	r.Body = body
	return nil
}
