package postgres

import (
	"slices"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// insAccess adds access keys to resources; a key a resource carries already
// is kept once.
const insAccess = `INSERT INTO resource_access (type, key, id)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`

// accessArrays returns the rows that attach the referral's access keys
// (linkbridge.ReferralAccessKeys) to resources rs and, when personID is not
// empty, to the person's Patient, as the column arrays of insAccess; ok is
// false when there are none.
func accessArrays(ref *linkbridge.Referral, rs []resourceRow, personID string) (args []any, ok bool) {
	return accessRowArrays(sqlshared.AccessRows(ref, rs, personID))
}

// accessRowArrays returns access rows (type, key, id), once each, as the
// column arrays of insAccess; ok is false when there are none.
func accessRowArrays(rows [][3]string) (args []any, ok bool) {
	// In key order: two transactions inserting overlapping rows then take
	// the rows' index locks in the same order and cannot deadlock.
	slices.SortFunc(rows, func(a, b [3]string) int { return slices.Compare(a[:], b[:]) })
	rows = slices.Compact(rows)
	types, keys, ids := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		types[i], keys[i], ids[i] = r[0], r[1], r[2]
	}
	return []any{types, keys, ids}, len(rows) > 0
}
