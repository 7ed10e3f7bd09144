package sqlite

import (
	"context"
	"fmt"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

var _ linkbridge.BatchStore = (*DB)(nil)

// WriteBatch applies intakes and changes in order as one request of the
// writer, in a transaction of its own, all or nothing
// (linkbridge.BatchStore). Each op is converted on the caller's goroutine
// and written by the same code as CreateReferral (createOp) and
// UpdateReferral (updateOp), except that the referral row of consecutive
// changes of one referral is written once (sqlshared.BatchRowWrites).
func (db *DB) WriteBatch(ctx context.Context, ops []linkbridge.BatchOp) error {
	writes := make([]writeOp, len(ops))
	rows := sqlshared.BatchRowWrites(ops)
	for i, op := range ops {
		var err error
		switch {
		case op.Intake != nil && op.Change == nil:
			writes[i], err = db.createOp(op.Intake)
		case op.Change != nil && op.Intake == nil:
			writes[i], err = db.updateOp(op.Change, rows[i])
		default:
			err = linkbridge.Errorf(linkbridge.EINVALID, "a batch op is an intake or a change")
		}
		if err != nil {
			return fmt.Errorf("batch op %d: %w", i, err)
		}
	}
	err := db.w.doAlone(ctx, func(w *writer) error {
		for i := range writes {
			if err := writes[i].apply(w); err != nil {
				return fmt.Errorf("batch op %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range writes {
		writes[i].done()
	}
	return nil
}
