package postgres

import "github.com/linkbridge/linkbridge"

// insAccess adds access keys to resources; a key a resource carries already
// is kept once.
const insAccess = `INSERT INTO resource_access (type, key, id)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`

// accessArrays returns the rows that attach the referral's access keys
// (linkbridge.ReferralAccessKeys) to resources rs and, when personID is not
// empty, to the person's Patient, as the column arrays of insAccess; ok is
// false when there are none.
func accessArrays(ref *linkbridge.Referral, rs []resourceRow, personID string) (args []any, ok bool) {
	var types, keys, ids []string
	for _, k := range linkbridge.ReferralAccessKeys(ref) {
		for i := range rs {
			types, keys, ids = append(types, rs[i].typ), append(keys, k), append(ids, rs[i].id)
		}
		if personID != "" {
			types, keys, ids = append(types, "Patient"), append(keys, k), append(ids, personID)
		}
	}
	return []any{types, keys, ids}, len(types) > 0
}
