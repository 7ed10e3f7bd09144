package sqlite

import (
	"fmt"

	"github.com/linkbridge/linkbridge"
)

// accessInsert adds access keys to resources; a key a resource carries
// already is kept once.
const (
	accessInsert     = `INSERT INTO resource_access (type, key, id) VALUES `
	accessInsertTail = ` ON CONFLICT DO NOTHING`
)

// grantAccess attaches the referral's access keys
// (linkbridge.ReferralAccessKeys) to resources rs and, when personID is not
// empty, to the person's Patient.
func (w *writer) grantAccess(ref *referralRow, rs []resourceRow, personID string) error {
	keys := []string{linkbridge.ReferrerAccessKey(ref.referrerODS), linkbridge.ServiceAccessKey(ref.serviceODS)}
	args := make([]any, 0, 3*len(keys)*(len(rs)+1))
	for _, k := range keys {
		for i := range rs {
			args = append(args, rs[i].typ, k, rs[i].id)
		}
		if personID != "" {
			args = append(args, "Patient", k, personID)
		}
	}
	if err := w.execRows(accessInsert, accessInsertTail, 3, args); err != nil {
		return fmt.Errorf("sqlite: grant access: %w", err)
	}
	return nil
}
