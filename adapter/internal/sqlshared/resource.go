package sqlshared

import "github.com/linkbridge/linkbridge"

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
