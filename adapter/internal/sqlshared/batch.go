package sqlshared

import "github.com/linkbridge/linkbridge"

// RowWrite is how a change writes its referral row: the UPDATE of every
// column, which on PostgreSQL and SQLite alike writes a new entry into
// each of the row's indexes (docs/performance.md#a-referral-row-a-batch).
type RowWrite struct {
	// Skip is set when a later change of the same batch writes the row
	// at a later version: this change's version of it could never be
	// read, so it is not written.
	Skip bool
	// Expect is the version the stored row must be at when it is
	// written: the version before the first of the changes the write
	// stands for.
	Expect int
}

// OwnRowWrite is the row write of a change on its own: the stored row
// must be at the version before it.
func OwnRowWrite(ch *linkbridge.ReferralChange) RowWrite {
	return RowWrite{Expect: ch.Referral.Version - 1}
}

// BatchRowWrites returns the row write of each op of a batch (the zero
// RowWrite for an intake): a change followed in the batch by the change of
// the same referral to the next version is skipped, and the last change
// of such a run writes the row once, expecting the version before the
// run's first. Everything else a change writes (resources, case records,
// its event, audit record and write-backs) is written as before, and the
// batch is all or nothing, so what it stores is what the changes one by
// one store. The row's constraints are checked on the run's last version.
// A change that leaves the referral entered in error is not skipped: its
// access revocation reads referral rows (RevokeAccessArgs).
func BatchRowWrites(ops []linkbridge.BatchOp) []RowWrite {
	out := make([]RowWrite, len(ops))
	last := map[string]int{} // referral id -> index of its last change so far
	for i, op := range ops {
		if op.Change == nil || op.Change.Referral == nil {
			if op.Intake != nil && op.Intake.Referral != nil {
				delete(last, op.Intake.Referral.ID)
			}
			continue
		}
		ref := op.Change.Referral
		out[i] = OwnRowWrite(op.Change)
		if j, ok := last[ref.ID]; ok {
			prev := ops[j].Change.Referral
			if prev.Version == ref.Version-1 && !EnteredInError(prev) {
				out[j].Skip = true
				out[i].Expect = out[j].Expect
			}
		}
		last[ref.ID] = i
	}
	return out
}
