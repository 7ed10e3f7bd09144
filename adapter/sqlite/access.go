package sqlite

import (
	"fmt"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// accessInsert adds access keys to resources; a key a resource carries
// already is kept once.
const (
	accessInsert     = `INSERT OR FAIL INTO resource_access (type, key, id) VALUES `
	accessInsertTail = ` ON CONFLICT DO NOTHING`
)

// grantAccess attaches the referral's access keys
// (linkbridge.ReferralAccessKeys) to resources rs and, when personID is not
// empty, to the person's Patient.
func (w *writer) grantAccess(ref *linkbridge.Referral, rs []resourceRow, personID string) error {
	rows := sqlshared.AccessRows(ref, rs, personID)
	args := make([]any, 0, 3*len(rows))
	for _, r := range rows {
		args = append(args, r[0], r[1], r[2])
	}
	if err := w.execRows(accessInsert, accessInsertTail, 3, args); err != nil {
		return fmt.Errorf("sqlite: grant access: %w", err)
	}
	return nil
}
