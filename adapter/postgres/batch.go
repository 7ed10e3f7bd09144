package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

var _ linkbridge.BatchStore = (*DB)(nil)

// WriteBatch applies intakes and changes in order in one transaction, all
// or nothing (linkbridge.BatchStore), each by the same code as
// CreateReferral (prepareCreate, createWrite.inTx) and UpdateReferral
// (updateInTx), except that the referral row of consecutive changes of one
// referral is written once (sqlshared.BatchRowWrites). An intake's
// statements go in one round trip, as CreateReferral sends them.
func (db *DB) WriteBatch(ctx context.Context, ops []linkbridge.BatchOp) error {
	type prepared struct {
		create *createWrite
		change *linkbridge.ReferralChange
		rows   *sqlshared.ChangeRows
	}
	ps := make([]prepared, len(ops))
	rws := sqlshared.BatchRowWrites(ops)
	for i, op := range ops {
		var err error
		switch {
		case op.Intake != nil && op.Change == nil:
			ps[i].create, err = db.prepareCreate(op.Intake)
		case op.Change != nil && op.Intake == nil:
			ps[i].change = op.Change
			ps[i].rows, err = db.newChangeRows(op.Change)
		default:
			err = linkbridge.Errorf(linkbridge.EINVALID, "a batch op is an intake or a change")
		}
		if err != nil {
			return fmt.Errorf("batch op %d: %w", i, err)
		}
	}
	// failed is the intake whose statement failed, and the statement, for
	// formatError after the rollback.
	var (
		failed   *createWrite
		failedOp string
		failedAt int
	)
	err := retryTx(ctx, func() error {
		failed = nil
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			for i := range ps {
				p := &ps[i]
				if p.create != nil {
					if op, err := p.create.inTx(ctx, tx, db.Now()); err != nil {
						failed, failedOp, failedAt = p.create, op, i
						return err
					}
					continue
				}
				if err := db.updateInTx(ctx, tx, p.change, p.rows, rws[i]); err != nil {
					return fmt.Errorf("batch op %d: %w", i, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		if failed != nil {
			return fmt.Errorf("batch op %d: %w", failedAt, db.formatError(ctx, err, failedOp, failed.subject))
		}
		return err
	}
	for i := range ps {
		if ps[i].rows != nil {
			ps[i].rows.Outbox.Stored()
		}
	}
	return nil
}
