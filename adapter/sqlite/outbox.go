package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// The outbox (migration 004_outbox.sql) holds write-backs to the GP record.
// UpdateReferral enqueues a change's messages in the change's savepoint; the
// relay's calls (ClaimOutbox, CompleteOutbox, RetryOutboxLater,
// DeadLetterOutbox, RescueOutbox) and the operators' (RequeueOutbox,
// DiscardOutbox) are writes too, so they go through the writer and serialise
// with every other write: two claims can never both take a row or a key.
// (ClaimOutbox finds its candidates on the read pool first; see there.)
// ListOutbox, GetOutbox and OutboxStats read from the read pool.
//
// Ordering. The queued rows of an order key are its pending and inflight
// rows; its head is the queued row with the lowest id. A claim takes only
// pending heads, and only of keys with no inflight row (a requeued old
// message can be the head while a later one is inflight), so at most one
// message per key is ever inflight and a key's messages are delivered in id
// order: a failed head blocks its key until it is delivered, dead-lettered
// or discarded.
//
// Superseding. A claim marks a due pending head superseded, instead of
// claiming it, when
//   - the row queued right behind it in its key is a later version of the
//     same resource, or
//   - a later version of the same resource (with a higher id, in the same
//     key) was delivered already: an operator requeued an old version, and
//     sending it would overwrite the newer one,
//
// and then considers the next row as the head, and so on. Only a run of
// consecutive versions of one resource collapses to its last version: when
// another resource's message lies between two versions, skipping the first
// would deliver that message to a GP record that lacks the first version
// (which it may reference, e.g. a CarePlan naming a new Goal), so both
// versions are sent. This is the "every row between is superseded too" rule:
// a skipped row's replacement may only come after rows that are skipped as
// well, which, followed to the end of the run, means that they are all
// versions of the one resource. Only due heads are superseded, so a head
// waiting for its retry keeps its key waiting (the backoff, or the
// endpoint's Retry-After, holds for the key); it is superseded when it falls
// due.
//
// Ownership. CompleteOutbox, RetryOutboxLater and DeadLetterOutbox name the
// claim they act under (linkbridge.OutboxClaim: worker and claim time) and
// apply only to a row still inflight under it: the condition is in the
// UPDATE (state = 'inflight' AND locked_by = ? AND locked_at = ?), so a
// worker's late answer cannot clobber a row that was rescued and is pending
// again, or claimed again by another worker (or by itself), or that an
// operator changed. Such a call changes nothing and returns ECONFLICT
// ("claim lost"). Claims are serialised by the writer, so a row's claim
// cannot change between the check and the write.
//
// Retention. A delivered, superseded or discarded row records when it
// finished (finished_at, migration 006); DeleteFinishedOutbox deletes those
// finished before a cut-off, in batches, never pending, inflight or dead
// rows, and keeps a delivered row that a claim may still need to supersede
// an older version (see finishedOutboxQuery).
//
// Attempts counts failed attempts: RetryOutboxLater and DeadLetterOutbox add
// one, CompleteOutbox and RescueOutbox do not (a rescued attempt's outcome is
// unknown), and RequeueOutbox keeps the count.

// DefaultOutboxListLimit is the page size of ListOutbox when the filter sets
// none.
const DefaultOutboxListLimit = sqlshared.DefaultOutboxListLimit

// outboxColumns are the outbox table's columns in the order scanOutbox reads
// them.
const outboxColumns = sqlshared.OutboxColumns

// queued is the partial index outbox_queue's WHERE term; queries repeat it
// exactly so that SQLite uses the index.
const queued = `state IN ('pending', 'inflight')`

// held is the condition of a state change under a claim: the row is still
// inflight under it. Its two parameters are the claim's worker and time.
const held = `state = 'inflight' AND locked_by = ? AND locked_at = ?`

// outboxStmts are the outbox statements prepared on the write connection.
type outboxStmts struct {
	insert *sql.Stmt
	// head reads what the claim needs of a row, and whether its key holds
	// an earlier queued row or an inflight one; next reads the row queued
	// behind a row of a key; delivered finds a later delivered version.
	head, next, delivered *sql.Stmt
	supersede, claim      *sql.Stmt
	complete, retry, dead *sql.Stmt
	rescue                *sql.Stmt
	requeue, discard      *sql.Stmt
	state                 *sql.Stmt
	// deleteFinished deletes a batch of finished rows (retention).
	deleteFinished *sql.Stmt
}

// prepareOutbox prepares the outbox statements with prep (startWriter's).
// finishedOutboxQuery selects the ids of the finished messages to delete,
// oldest finish first: delivered, superseded or discarded (finished_at is
// set for exactly these) before the cut-off (?1), at most ?2 of them; DeleteFinishedOutbox runs it inside a DELETE.
//
// A delivered row is kept while an older row of its resource in its order
// key (lower id) is pending, inflight, dead or discarded: the claim
// supersedes such a row, when it is or becomes pending again (retry, rescue,
// requeue), because a later version of its resource was delivered (see the
// adapters' outbox.go), and without the delivered row it would be sent and
// overwrite the newer version on the GP record. Once that older row is
// finished for good (delivered, superseded, or discarded and deleted in
// turn), the delivered row goes too. Superseded and discarded rows are
// never read by the claim (it looks only at queued rows and delivered
// ones), and deleting finished rows never changes which queued row is a
// key's head, so ordering is unaffected.
//
// Differs from the PostgreSQL version: the outer table is not aliased
// and the state term repeats the partial index's WHERE term exactly, and
// INDEXED BY names the index, so that SQLite uses outbox_finished: without
// statistics its planner prefers outbox_state_created and sorts every
// finished row each batch.
const finishedOutboxQuery = `SELECT id FROM outbox INDEXED BY outbox_finished
	WHERE state IN ('delivered', 'superseded', 'discarded') AND finished_at < ?
		AND NOT (state = 'delivered' AND EXISTS (SELECT 1 FROM outbox r WHERE r.order_key = outbox.order_key
			AND r.id < outbox.id AND r.resource_type = outbox.resource_type AND r.resource_id = outbox.resource_id
			AND r.state IN ('pending', 'inflight', 'dead', 'discarded')))
		ORDER BY finished_at, id LIMIT ?`

func prepareOutbox(s *outboxStmts, prep func(dst **sql.Stmt, query string)) {
	prep(&s.insert, `INSERT INTO outbox (order_key, referral_id, resource_type, resource_id, version, body, nhs_number,
		erase, state, available_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`)
	prep(&s.head, `SELECT order_key, resource_type, resource_id, version, state, available_at,
			EXISTS (SELECT 1 FROM outbox q INDEXED BY outbox_queue WHERE `+queued+`
				AND q.order_key = o.order_key AND (q.id < o.id OR q.state = 'inflight'))
		FROM outbox o WHERE id = ?`)
	prep(&s.next, `SELECT id, resource_type, resource_id, version FROM outbox INDEXED BY outbox_queue
		WHERE `+queued+` AND order_key = ? AND id > ? ORDER BY id LIMIT 1`)
	prep(&s.delivered, `SELECT COUNT(*) FROM outbox WHERE order_key = ? AND id > ?
		AND resource_type = ? AND resource_id = ? AND version > ? AND state = 'delivered'`)
	prep(&s.supersede, `UPDATE outbox SET state = 'superseded', finished_at = ? WHERE id = ? AND state = 'pending'`)
	prep(&s.claim, `UPDATE outbox SET state = 'inflight', locked_by = ?, locked_at = ?
		WHERE id = ? AND state = 'pending' RETURNING `+outboxColumns)
	prep(&s.complete, `UPDATE outbox SET state = 'delivered', delivered_at = ?, finished_at = ?, last_status = ?, last_error = '',
		last_outcome = NULL, locked_by = '', locked_at = NULL WHERE id = ? AND `+held)
	prep(&s.retry, `UPDATE outbox SET state = 'pending', attempts = attempts + 1, available_at = ?, last_status = ?,
		last_error = ?, last_outcome = NULL, locked_by = '', locked_at = NULL WHERE id = ? AND `+held)
	prep(&s.dead, `UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_status = ?, last_error = ?,
		last_outcome = ?, locked_by = '', locked_at = NULL WHERE id = ? AND `+held)
	prep(&s.rescue, `UPDATE outbox SET state = 'pending', locked_by = '', locked_at = NULL
		WHERE state = 'inflight' AND locked_at < ? AND channel = ?`)
	prep(&s.requeue, `UPDATE outbox SET state = 'pending', available_at = ?, locked_by = '', locked_at = NULL,
		finished_at = NULL WHERE id = ? AND state IN ('dead', 'discarded', 'pending')`)
	prep(&s.discard, `UPDATE outbox SET state = 'discarded', finished_at = ?, locked_by = '', locked_at = NULL
		WHERE id = ? AND state IN ('pending', 'dead')`)
	prep(&s.state, `SELECT state FROM outbox WHERE id = ?`)
	prep(&s.deleteFinished, `DELETE FROM outbox WHERE id IN (`+finishedOutboxQuery+`)`)
}

// applyOutbox inserts a change's outbox rows (nil: none) and records their
// ids.
func applyOutbox(w *writer, o *sqlshared.OutboxRows) error {
	if o == nil {
		return nil
	}
	for i, args := range o.Args {
		res, err := w.ob.insert.ExecContext(bg, args...)
		if err != nil {
			return fmt.Errorf("sqlite: enqueue outbox message: %w", err)
		}
		if o.IDs[i], err = res.LastInsertId(); err != nil {
			return fmt.Errorf("sqlite: enqueue outbox message: %w", err)
		}
	}
	return nil
}

// headsQuery lists the ids of the due heads of keys without an inflight
// message, oldest first, at most limit of them: the due pending messages
// of the channel (the first parameter) with no earlier queued message of
// their order key and no inflight one. It walks the queued messages in id
// order (the partial index outbox_queue_id, migration 021, which holds
// every column the walk tests) and stops at limit heads, probing
// outbox_queue for each candidate's key: its cost follows the messages it
// passes, not the length of the queue. Before, it grouped every queued
// message by key (docs/performance.md#the-relays-claim). INDEXED BY: without
// statistics SQLite's planner does not know which index is the short one.
const headsQuery = `SELECT o.id FROM outbox o INDEXED BY outbox_queue_id
	WHERE o.` + queued + ` AND o.state = 'pending' AND o.channel = ? AND o.available_at <= ?
		AND NOT EXISTS (SELECT 1 FROM outbox q INDEXED BY outbox_queue
			WHERE q.` + queued + ` AND q.order_key = o.order_key AND q.id < o.id)
		AND NOT EXISTS (SELECT 1 FROM outbox q INDEXED BY outbox_queue
			WHERE q.` + queued + ` AND q.order_key = o.order_key AND q.state = 'inflight')
	ORDER BY o.id LIMIT ?`

// ClaimOutbox marks up to limit deliverable messages inflight for worker, at
// now, and returns them, oldest first, with their bodies. It supersedes
// earlier versions first (see the top of this file). It returns EINVALID for
// an empty worker or a limit below 1.
//
// Finding the heads reads the queued rows up to the limit'th head (of the
// index), which can still take milliseconds when the oldest keys hold long
// queues (a long outage of the GP endpoint), so it runs on the read pool,
// beside the writer, and a claim that finds nothing never reaches the
// writer. The heads it finds are then
// checked again, one cheap lookup each, and claimed in one write request:
// claims are serialised, and never share a message or an order key however
// old the list of heads they start from. A head taken meanwhile by another
// claim is skipped, so a claim may return fewer messages than are due; the
// next one finds them.
func (db *DB) ClaimOutbox(ctx context.Context, channel linkbridge.OutboxChannel, worker string, limit int, now time.Time) ([]*linkbridge.OutboxMessage, error) {
	if err := linkbridge.ValidateClaim(worker, limit); err != nil {
		return nil, err
	}
	if err := linkbridge.ValidateChannel(channel); err != nil {
		return nil, err
	}
	at := formatTime(now)
	var heads []int64
	err := queryRows(ctx, db.read, headsQuery, []any{string(channel), at, limit}, func(rows *sql.Rows) error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		heads = append(heads, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim outbox: find heads: %w", err)
	}
	if len(heads) == 0 {
		return nil, nil
	}
	var out []*linkbridge.OutboxMessage
	err = db.w.do(ctx, func(w *writer) error {
		out = out[:0]
		for _, id := range heads {
			id, ok, err := w.settleHead(id, at)
			if err != nil {
				return fmt.Errorf("sqlite: claim outbox: %w", err)
			}
			if !ok {
				continue
			}
			m, err := scanOutbox(w.ob.claim.QueryRowContext(bg, worker, at, id))
			if err != nil {
				return fmt.Errorf("sqlite: claim outbox message %d: %w", id, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sqlshared.SortOutbox(out)
	return out, nil
}

// settleHead checks that id is still a claimable head: pending, due, the
// lowest queued row of its key, and its key has no inflight row. While it is
// superseded (see the top of this file), it supersedes it and checks the row
// behind it instead. It returns the row to claim, or false when there is
// none (id was claimed or changed meanwhile, or the new head is not due).
func (w *writer) settleHead(id int64, at string) (int64, bool, error) {
	for {
		var (
			key, state, availableAt string
			head                    = linkbridge.OutboxHead{ID: id}
			blocked                 bool
		)
		err := w.ob.head.QueryRowContext(bg, id).Scan(&key, &head.ResourceType, &head.ResourceID, &head.Version,
			&state, &availableAt, &blocked)
		if err != nil {
			return 0, false, fmt.Errorf("read head %d: %w", id, err)
		}
		// Stored times are fixed-width text: text order is time order.
		if !linkbridge.OutboxClaimable(state, blocked, availableAt <= at) {
			return 0, false, nil
		}
		next := &linkbridge.OutboxHead{}
		switch err := w.ob.next.QueryRowContext(bg, key, id).Scan(&next.ID, &next.ResourceType, &next.ResourceID, &next.Version); {
		case errors.Is(err, sql.ErrNoRows):
			next = nil
		case err != nil:
			return 0, false, fmt.Errorf("read the row behind %d: %w", id, err)
		}
		superseded := head.SupersededBy(next)
		if !superseded {
			// Looked up only when needed: SQLite has no LATERAL join to
			// read it with the head, and a lookup is cheap in-process.
			var n int
			if err := w.ob.delivered.QueryRowContext(bg, key, id, head.ResourceType, head.ResourceID, head.Version).Scan(&n); err != nil {
				return 0, false, fmt.Errorf("find a delivered later version of %d: %w", id, err)
			}
			superseded = n > 0
		}
		if !superseded {
			return id, true, nil
		}
		if _, err := w.ob.supersede.ExecContext(bg, at, id); err != nil {
			return 0, false, fmt.Errorf("supersede %d: %w", id, err)
		}
		if next == nil {
			return 0, false, nil
		}
		id = next.ID
	}
}

// CompleteOutbox marks a message inflight under claim c delivered at now
// with the endpoint's status, clearing its lock and last error. It returns
// ENOTFOUND for an unknown id, ECONFLICT ("claim lost") when the message is
// no longer inflight under c, and EINVALID for a claim without a worker or
// time.
func (db *DB) CompleteOutbox(ctx context.Context, c linkbridge.OutboxClaim, status int, now time.Time) error {
	at := formatTime(now)
	return db.claimUpdate(ctx, "complete", c, func(w *writer) *sql.Stmt { return w.ob.complete }, at, at, status)
}

// RetryOutboxLater returns a message inflight under claim c to pending, due
// at, counting the failed attempt and recording its status and error. It
// returns ENOTFOUND for an unknown id, ECONFLICT ("claim lost") when the
// message is no longer inflight under c, and EINVALID for a claim without a
// worker or time.
func (db *DB) RetryOutboxLater(ctx context.Context, c linkbridge.OutboxClaim, at time.Time, status int, errText string) error {
	due := formatTime(at)
	return db.claimUpdate(ctx, "reschedule", c, func(w *writer) *sql.Stmt { return w.ob.retry }, due, status, errText)
}

// DeadLetterOutbox marks a message inflight under claim c dead, counting the
// failed attempt and keeping the endpoint's status, error and
// OperationOutcome (nil: none). It returns ENOTFOUND for an unknown id,
// ECONFLICT ("claim lost") when the message is no longer inflight under c,
// and EINVALID for a claim without a worker or time.
func (db *DB) DeadLetterOutbox(ctx context.Context, c linkbridge.OutboxClaim, status int, errText string, outcome []byte) error {
	var oc any
	if outcome != nil {
		oc = outcome
	}
	return db.claimUpdate(ctx, "dead-letter", c, func(w *writer) *sql.Stmt { return w.ob.dead }, status, errText, oc)
}

// claimUpdate runs a state change (op) of the message of claim c, whose
// statement takes args followed by the id and the held condition's
// parameters, through the writer.
func (db *DB) claimUpdate(ctx context.Context, op string, c linkbridge.OutboxClaim, st func(w *writer) *sql.Stmt, args ...any) error {
	if err := c.Validate(op); err != nil {
		return err
	}
	args = append(args, c.ID, c.Worker, formatTime(c.At))
	return db.w.do(ctx, func(w *writer) error {
		return w.outboxUpdate(op, c.ID, "", st(w), args...)
	})
}

// RescueOutbox returns to pending every message inflight since before
// stuckBefore, keeping its due time and attempts, and reports how many.
func (db *DB) RescueOutbox(ctx context.Context, channel linkbridge.OutboxChannel, stuckBefore time.Time) (int, error) {
	if err := linkbridge.ValidateChannel(channel); err != nil {
		return 0, err
	}
	before := formatTime(stuckBefore)
	var n int64
	err := db.w.do(ctx, func(w *writer) error {
		res, err := w.ob.rescue.ExecContext(bg, before, string(channel))
		if err != nil {
			return fmt.Errorf("sqlite: rescue outbox: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: rescue outbox: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// RequeueOutbox makes a dead, discarded or pending message pending and due
// at now, keeping its attempts and last attempt. It returns ENOTFOUND for an
// unknown id and ECONFLICT for an inflight, delivered or superseded message.
// A requeued message goes back to its place in its key's id order; if a later
// version of its resource is queued behind it or was delivered, the next
// claim supersedes it.
func (db *DB) RequeueOutbox(ctx context.Context, id int64, now time.Time) error {
	at := formatTime(now)
	return db.w.do(ctx, func(w *writer) error {
		return w.outboxUpdate("requeue", id, "dead, discarded or pending", w.ob.requeue, at, id)
	})
}

// DiscardOutbox marks a pending or dead message discarded, finished now
// (db.Now). It returns ENOTFOUND for an unknown id and ECONFLICT in any
// other state.
func (db *DB) DiscardOutbox(ctx context.Context, id int64) error {
	at := formatTime(db.Now())
	return db.w.do(ctx, func(w *writer) error {
		return w.outboxUpdate("discard", id, "pending or dead", w.ob.discard, at, id)
	})
}

// DeleteFinishedOutbox deletes up to limit delivered, superseded or
// discarded messages that finished before before, oldest first, keeping a
// delivered one while an older message of its resource may still be sent
// (see finishedOutboxQuery), and reports how many. Each batch is
// one write request, so a small limit keeps the writer free for other
// writes between batches. It returns EINVALID for a limit below 1.
func (db *DB) DeleteFinishedOutbox(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := linkbridge.ValidateDeleteFinished(limit); err != nil {
		return 0, err
	}
	cut := formatTime(before)
	var n int64
	err := db.w.do(ctx, func(w *writer) error {
		res, err := w.ob.deleteFinished.ExecContext(bg, cut, limit)
		if err != nil {
			return fmt.Errorf("sqlite: delete finished outbox messages: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: delete finished outbox messages: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// outboxUpdate runs a single-row state change of message id. When it
// changes nothing, it returns ENOTFOUND if the message does not exist and
// ECONFLICT otherwise: naming the state it is in and those, want, it should
// be in, or, when want is empty (a change under a claim), that the claim is
// lost.
func (w *writer) outboxUpdate(op string, id int64, want string, st *sql.Stmt, args ...any) error {
	res, err := st.ExecContext(bg, args...)
	if err != nil {
		return fmt.Errorf("sqlite: %s outbox message %d: %w", op, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: %s outbox message %d: %w", op, id, err)
	}
	if n > 0 {
		return nil
	}
	var state string
	switch err := w.ob.state.QueryRowContext(bg, id).Scan(&state); {
	case errors.Is(err, sql.ErrNoRows):
		return linkbridge.OutboxNotFound(id)
	case err != nil:
		return fmt.Errorf("sqlite: %s outbox message %d: %w", op, id, err)
	}
	if want == "" {
		return linkbridge.OutboxClaimLost(op, id, state)
	}
	return linkbridge.OutboxWrongState(op, id, state, want)
}

// ListOutbox returns the messages matching f, newest (highest id) first, at
// most f.Limit of them (DefaultOutboxListLimit when f.Limit is not
// positive), bodies included. Empty fields of f do not filter; States
// matches any of its states, and an unknown state is EINVALID.
func (db *DB) ListOutbox(ctx context.Context, f linkbridge.OutboxFilter) ([]*linkbridge.OutboxMessage, error) {
	limit, err := sqlshared.OutboxListLimit(f)
	if err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	if f.Channel != "" {
		conds = append(conds, `channel = ?`)
		args = append(args, string(f.Channel))
	}
	if len(f.States) > 0 {
		for _, s := range f.States {
			args = append(args, string(s))
		}
		conds = append(conds, `state IN (`+placeholders(len(f.States))+`)`)
	}
	if f.OrderKey != "" {
		conds = append(conds, `order_key = ?`)
		args = append(args, f.OrderKey)
	}
	if f.ReferralID != "" {
		conds = append(conds, `referral_id = ?`)
		args = append(args, f.ReferralID)
	}
	if !f.OlderThan.IsZero() {
		conds = append(conds, `created_at < ?`)
		args = append(args, formatTime(f.OlderThan))
	}
	if !f.CreatedSince.IsZero() {
		conds = append(conds, `created_at >= ?`)
		args = append(args, formatTime(f.CreatedSince))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	var out []*linkbridge.OutboxMessage
	err = queryRows(ctx, db.read, `SELECT `+outboxColumns+` FROM outbox`+where+` ORDER BY id DESC LIMIT ?`,
		append(args, limit), func(rows *sql.Rows) error {
			m, err := scanOutbox(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list outbox: %w", err)
	}
	return out, nil
}

// GetOutbox returns one message, body and last outcome included, or
// ENOTFOUND.
func (db *DB) GetOutbox(ctx context.Context, id int64) (*linkbridge.OutboxMessage, error) {
	m, err := scanOutbox(db.read.QueryRowContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.OutboxNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: get outbox message %d: %w", id, err)
	}
	return m, nil
}

// OutboxStats counts the messages in each state (every state is in Counts,
// 0 when none) and finds the creation time of the oldest pending or inflight
// message, read in one transaction.
func (db *DB) OutboxStats(ctx context.Context) (*linkbridge.OutboxStats, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: outbox stats: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	st := sqlshared.NewOutboxStats()
	err = queryRows(ctx, tx, `SELECT state, COUNT(*) FROM outbox GROUP BY state`, nil, func(rows *sql.Rows) error {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return err
		}
		st.Counts[linkbridge.OutboxState(s)] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: outbox stats: %w", err)
	}
	// Two lookups of outbox_state_created instead of a scan of the queue.
	var oldest sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT MIN(c) FROM (
			SELECT MIN(created_at) AS c FROM outbox WHERE state = 'pending'
			UNION ALL
			SELECT MIN(created_at) FROM outbox WHERE state = 'inflight')`).Scan(&oldest); err != nil {
		return nil, fmt.Errorf("sqlite: outbox stats: oldest pending: %w", err)
	}
	if err := parseTimes(storedTime{&st.OldestPending, oldest.String}); err != nil {
		return nil, fmt.Errorf("sqlite: outbox stats: %w", err)
	}
	return st, nil
}

// scanOutbox reads a row of outboxColumns.
func scanOutbox(row scanner) (*linkbridge.OutboxMessage, error) {
	var (
		m                             linkbridge.OutboxMessage
		state, availableAt, createdAt string
		lockedAt, deliveredAt         sql.NullString
		channel                       string
		body, outcome                 []byte
		erase                         int
	)
	if err := row.Scan(&m.ID, &m.OrderKey, &m.ReferralID, &m.ResourceType, &m.ResourceID, &m.Version, &body, &m.NHSNumber,
		&erase, &state, &m.Attempts, &availableAt, &m.LockedBy, &lockedAt, &m.LastStatus, &m.LastError, &outcome,
		&createdAt, &deliveredAt, &channel, &m.Notification, &m.EventNumber); err != nil {
		return nil, err
	}
	m.Channel = linkbridge.OutboxChannel(channel)
	m.State = linkbridge.OutboxState(state)
	m.Erase = erase != 0
	m.Body = body
	if outcome != nil {
		m.LastOutcome = outcome
	}
	if err := parseTimes(storedTime{&m.AvailableAt, availableAt}, storedTime{&m.CreatedAt, createdAt},
		storedTime{&m.LockedAt, lockedAt.String}, storedTime{&m.DeliveredAt, deliveredAt.String}); err != nil {
		return nil, err
	}
	return &m, nil
}
