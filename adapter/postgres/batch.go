package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

var _ linkbridge.BatchStore = (*DB)(nil)

// prepared is a batch op converted to rows: an intake's statements, or a
// change and its rows.
type prepared struct {
	create *createWrite
	change *linkbridge.ReferralChange
	rows   *sqlshared.ChangeRows
}

// WriteBatch applies intakes and changes in order in one transaction, all
// or nothing (linkbridge.BatchStore). It writes them folded, table by
// table (batchfold.go); when that fails, it writes the batch again op by
// op, each by the same code as CreateReferral (prepareCreate,
// createWrite.inTx) and UpdateReferral (updateInTx), except that the
// referral row of consecutive changes of one referral is written once
// (sqlshared.BatchRowWrites), and returns what that reports. Both store the
// same rows.
func (db *DB) WriteBatch(ctx context.Context, ops []linkbridge.BatchOp) error {
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
	err := retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			return db.writeFolded(ctx, tx, ps, rws)
		})
	})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		db.batchFallbacks.Add(1)
		if err := db.writeOneByOne(ctx, ps, rws); err != nil {
			return err
		}
	}
	for i := range ps {
		if ps[i].rows != nil {
			ps[i].rows.Outbox.Stored()
		}
	}
	return nil
}

// writeOneByOne writes a batch's ops in order in one transaction, each as
// its per-request method does.
func (db *DB) writeOneByOne(ctx context.Context, ps []prepared, rws []sqlshared.RowWrite) error {
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
	if err != nil && failed != nil {
		return fmt.Errorf("batch op %d: %w", failedAt, db.formatError(ctx, err, failedOp, failed.subject))
	}
	return err
}

// writeOp writes one op in tx as its per-request method does (a folded
// batch's op that reads what the batch wrote before it).
func (db *DB) writeOp(ctx context.Context, tx pgx.Tx, p *prepared, rw sqlshared.RowWrite) error {
	if p.create != nil {
		_, err := p.create.inTx(ctx, tx, db.Now())
		return err
	}
	return db.updateInTx(ctx, tx, p.change, p.rows, rw)
}
