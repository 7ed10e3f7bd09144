package sqlite

import (
	"fmt"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// accessInsert adds access keys to resources; a key a resource carries
// already is kept once.
const (
	accessInsert     = `INSERT INTO resource_access (type, key, id) VALUES `
	accessInsertTail = ` ON CONFLICT DO NOTHING`
)

// Access keys per referral (migration 021_access_per_referral.sql): a
// referral marked access_implied grants its keys to the ServiceRequest,
// Task and Patient its row names (id, task_id, patient_id) through the row
// itself, while it is not entered in error; only its other resources get
// resource_access rows. SearchResources reads both (search.access).

// grantAccess attaches the referral's access keys
// (linkbridge.ReferralAccessKeys) to resources rs and, when personID is not
// empty, to the person's Patient. When implied (the referral's
// access_implied), the resources its row names are left out: the row
// grants them.
func (w *writer) grantAccess(ref *linkbridge.Referral, rs []resourceRow, personID string, implied bool) error {
	rows := sqlshared.AccessRows(ref, rs, personID)
	args := make([]any, 0, 3*len(rows))
	for _, r := range rows {
		if implied && namedByRow(ref, r[0], r[2]) {
			continue
		}
		args = append(args, r[0], r[1], r[2])
	}
	if err := w.execRows(accessInsert, accessInsertTail, 3, args); err != nil {
		return fmt.Errorf("sqlite: grant access: %w", err)
	}
	return nil
}

// namedByRow reports whether the referral row names resource typ/id: its
// ServiceRequest, Task or Patient.
func namedByRow(ref *linkbridge.Referral, typ, id string) bool {
	col, ok := impliedColumn[typ]
	if !ok {
		return false
	}
	switch col {
	case "id":
		return id == ref.ID
	case "task_id":
		return id == ref.TaskID
	default: // patient_id
		return id == ref.Patient()
	}
}

// impliedColumn is, for each resource type a referral row names, the
// column that names it.
var impliedColumn = map[string]string{
	"ServiceRequest": "id",
	"Task":           "task_id",
	"Patient":        "patient_id",
}
