package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// The outbox (migration 004_outbox.sql) holds write-backs to the GP record,
// with the semantics of adapter/sqlite's outbox (ordering per order key,
// superseding, ownership under a claim, attempts: see the top of adapter/sqlite/outbox.go
// and adapter/storetest). What differs is that the relays of several
// replicas claim from one table at once, where SQLite serialises every write
// through one writer:
//
//   - Claiming. A claim finds candidate heads (due pending heads of keys with
//     nothing inflight) without locking, then, in one transaction, takes each
//     candidate's key with pg_try_advisory_xact_lock(lockClaim, key): a key
//     another claim holds is skipped, as FOR UPDATE SKIP LOCKED skips rows
//     (row locks cannot serve here: the claim must hold the whole key, the
//     rows that are not there yet included, and GROUP BY cannot be combined
//     with FOR UPDATE). Holding the key, it re-reads the head with a fresh
//     statement snapshot (READ COMMITTED), so it sees the inflight row of a
//     claim that held the key before it, settles supersession and claims.
//     The lock is released at commit, after the claim is visible. The
//     partial unique index outbox_one_inflight would refuse a second
//     inflight row of a key even if this were wrong.
//   - Enqueueing. A change enqueues its messages holding
//     pg_advisory_xact_lock(lockEnqueue, key) for each of their keys until it
//     commits. Ids come from a sequence when the row is inserted, not when it
//     commits, so without the lock two concurrent changes of one person (two
//     referrals) could commit ids 11 then 10: a relay could deliver 11 before
//     10 became visible. Under the lock, a key's ids are handed out in commit
//     order. (SQLite needs none of this: its writes are serial.)
//   - Rescuing. RescueOutbox is one UPDATE; when several replicas run it at
//     once, PostgreSQL's row locks and the re-check of the WHERE clause after
//     a wait make each row rescued once, and a row completed meanwhile is
//     left alone. Lock times come from the replicas' clocks: keep them in
//     step (NTP), with skew far below half of the rescue delay.
//   - Requeueing takes the key's claim lock too, so that a message an
//     operator puts back at the front of its key cannot slip in beside a
//     claim in progress.

// DefaultOutboxListLimit is the page size of ListOutbox when the filter sets
// none.
const DefaultOutboxListLimit = sqlshared.DefaultOutboxListLimit

// outboxColumns are the outbox table's columns in the order scanOutbox reads
// them.
const outboxColumns = sqlshared.OutboxColumns

// lockOutboxKeys takes the enqueue lock of every order key of a change's
// outbox rows (nil: none), in
// key order (two changes sharing keys cannot deadlock), until the
// transaction ends.
// finishedOutboxQuery selects the ids of the finished messages to delete,
// oldest finish first, at most $2 finished before $1; which delivered rows
// are kept (those an older queued version of their resource still needs)
// is explained beside the SQLite version (adapter/sqlite/outbox.go).
// Differs from it: no index hint (PostgreSQL's planner uses the partial
// index outbox_finished on its own), and the caller locks the rows it
// deletes with FOR UPDATE SKIP LOCKED so replicas cleaning at once do not
// wait on each other.
const finishedOutboxQuery = `SELECT id FROM outbox
	WHERE state IN ('delivered', 'superseded', 'discarded') AND finished_at < $1
		AND NOT (state = 'delivered' AND EXISTS (SELECT 1 FROM outbox r WHERE r.order_key = outbox.order_key
			AND r.id < outbox.id AND r.resource_type = outbox.resource_type AND r.resource_id = outbox.resource_id
			AND r.state IN ('pending', 'inflight', 'dead', 'discarded')))
		ORDER BY finished_at, id LIMIT $2`

func lockOutboxKeys(ctx context.Context, tx pgx.Tx, o *sqlshared.OutboxRows) error {
	if o == nil {
		return nil
	}
	keys := make([]string, len(o.Msgs))
	for i, m := range o.Msgs {
		keys[i] = m.OrderKey
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || ' ' || k))
		FROM unnest($2::text[]) WITH ORDINALITY AS u (k, n) ORDER BY n`, lockEnqueue, sortedUnique(keys))
	if err != nil {
		return fmt.Errorf("postgres: enqueue outbox messages: lock: %w", err)
	}
	return nil
}

// insertOutbox inserts a change's outbox rows (nil: none), in order, and
// records their ids.
func insertOutbox(ctx context.Context, tx pgx.Tx, o *sqlshared.OutboxRows) error {
	if o == nil {
		return nil
	}
	b := &pgx.Batch{}
	for _, args := range o.Args {
		b.Queue(`INSERT INTO outbox (order_key, referral_id, resource_type, resource_id, version, body, nhs_number,
			erase, state, available_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10) RETURNING id`, args...)
	}
	br := tx.SendBatch(ctx, b)
	for i := range o.Args {
		if err := br.QueryRow().Scan(&o.IDs[i]); err != nil {
			_ = br.Close()
			return fmt.Errorf("postgres: enqueue outbox message: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("postgres: enqueue outbox message: %w", err)
	}
	return nil
}

// headsQuery lists candidate heads, oldest first: the due pending
// messages of the channel ($3) with no earlier queued (pending or
// inflight) message of their order key and no inflight one, which is a
// key's lowest queued id when none of the key is inflight. It walks the
// queued messages in id order (the partial index outbox_claim_walk,
// migration 024, keyed by id + 0 so that the primary key, which passes the
// delivered rows too, cannot give the order) and stops at $2 heads,
// probing outbox_queue and outbox_one_inflight for each candidate's key:
// its cost follows the messages it passes, not the length of the queue.
// (Before, it grouped every queued message by key: 10 ms a claim with
// 16,000 queued, against 1.5; then it walked the primary key on stale
// statistics: 269 ms after 30,035 delivered;
// docs/performance.md#the-relays-claim.)
const headsQuery = `SELECT o.id, o.order_key FROM outbox o
	WHERE o.state IN ('pending', 'inflight') AND o.state = 'pending' AND o.channel = $3 AND o.available_at <= $1
		AND NOT EXISTS (SELECT 1 FROM outbox q WHERE q.state IN ('pending', 'inflight')
			AND q.order_key = o.order_key AND q.id < o.id)
		AND NOT EXISTS (SELECT 1 FROM outbox q WHERE q.state = 'inflight' AND q.order_key = o.order_key)
	ORDER BY o.id + 0 LIMIT $2`

// headQuery reads, in one statement, what settling a head needs: the row,
// whether its key holds an earlier queued row or an inflight one, the row
// queued right behind it, and whether a later version of its resource was
// delivered.
//
// Two of its terms are written so that no statistics can turn them into a
// walk of the whole outbox (docs/performance.md#the-relays-head-read;
// TestOutboxHeadPlan). The delivered test compares the state concatenated
// with the empty string, which cannot be an index condition: it walks the
// key's later rows (outbox_order_key) and filters them, where the planner
// otherwise chose outbox_state_created whenever the outbox had been
// analyzed with few rows delivered (a drain delivers thousands between two
// analyzes) and read every delivered row for each head (4.8 ms a head at
// 15,884 delivered, growing with the drain). The next queued row is
// ordered by id * 1, which no index gives (the claim's outbox_claim_walk
// is keyed by id + 0), so the planner finds the key's few queued rows
// through outbox_queue and sorts them, instead of walking the primary key
// (or the claim's index) from the head onwards across every key, to the
// end of the outbox when the key has no next row.
const headQuery = `SELECT o.order_key, o.resource_type, o.resource_id, o.version, o.state, o.available_at,
		EXISTS (SELECT 1 FROM outbox q WHERE q.state IN ('pending', 'inflight')
			AND q.order_key = o.order_key AND (q.id < o.id OR q.state = 'inflight')),
		n.id, n.resource_type, n.resource_id, n.version,
		EXISTS (SELECT 1 FROM outbox d WHERE d.order_key = o.order_key AND d.id > o.id
			AND d.resource_type = o.resource_type AND d.resource_id = o.resource_id
			AND d.version > o.version AND d.state || '' = 'delivered')
	FROM outbox o
	LEFT JOIN LATERAL (
		SELECT q.id, q.resource_type, q.resource_id, q.version FROM outbox q
		WHERE q.state IN ('pending', 'inflight') AND q.order_key = o.order_key AND q.id > o.id
		ORDER BY q.id * 1 LIMIT 1
	) n ON true
	WHERE o.id = $1`

// ClaimOutbox marks up to limit deliverable messages inflight for worker, at
// now, and returns them, oldest first, with their bodies. It supersedes
// earlier versions first. It returns EINVALID for an empty worker or a limit
// below 1. Several processes may claim at once (see the top of this file):
// they never share a message or an order key, and a key another claim is
// settling is skipped, so a claim may return fewer messages than are due;
// the next one finds them. It looks at up to twice limit candidates, so that
// replicas claiming together spread over the keys instead of all contending
// for the oldest.
func (db *DB) ClaimOutbox(ctx context.Context, channel linkbridge.OutboxChannel, worker string, limit int, now time.Time) ([]*linkbridge.OutboxMessage, error) {
	if err := linkbridge.ValidateClaim(worker, limit); err != nil {
		return nil, err
	}
	if err := linkbridge.ValidateChannel(channel); err != nil {
		return nil, err
	}
	type head struct {
		id  int64
		key string
	}
	var heads []head
	err := queryRows(ctx, db.pool, headsQuery, []any{now, 2 * limit, string(channel)}, func(rows pgx.Rows) error {
		var h head
		if err := rows.Scan(&h.id, &h.key); err != nil {
			return err
		}
		heads = append(heads, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim outbox: find heads: %w", err)
	}
	if len(heads) == 0 {
		return nil, nil
	}
	var out []*linkbridge.OutboxMessage
	err = retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			out = out[:0]
			for _, h := range heads {
				if len(out) == limit {
					break
				}
				var locked bool
				if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema() || ' ' || $2))`, lockClaim, h.key).Scan(&locked); err != nil {
					return fmt.Errorf("postgres: claim outbox: lock key: %w", err)
				}
				if !locked {
					continue // another claim is settling this key
				}
				id, ok, err := settleHead(ctx, tx, h.id, now)
				if err != nil {
					return fmt.Errorf("postgres: claim outbox: %w", err)
				}
				if !ok {
					continue
				}
				m, err := scanOutbox(tx.QueryRow(ctx, `UPDATE outbox SET state = 'inflight', locked_by = $1, locked_at = $2
				WHERE id = $3 AND state = 'pending' RETURNING `+outboxColumns, worker, now, id))
				if errors.Is(err, pgx.ErrNoRows) {
					continue // an operator discarded it meanwhile
				} else if err != nil {
					return fmt.Errorf("postgres: claim outbox message %d: %w", id, err)
				}
				out = append(out, m)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sqlshared.SortOutbox(out)
	return out, nil
}

// settleHead checks, holding id's key, that id is still a claimable head:
// pending, due, the lowest queued row of its key, and its key has no
// inflight row. While it is superseded, it supersedes it and checks the row
// behind it instead. It returns the row to claim, or false when there is
// none.
func settleHead(ctx context.Context, tx pgx.Tx, id int64, now time.Time) (int64, bool, error) {
	for {
		var (
			key, state             string
			head                   = linkbridge.OutboxHead{ID: id}
			availableAt            time.Time
			blocked, deliveredLate bool
			next                   *int64
			nType, nResID          *string
			nVersion               *int
		)
		err := tx.QueryRow(ctx, headQuery, id).Scan(&key, &head.ResourceType, &head.ResourceID, &head.Version, &state,
			&availableAt, &blocked, &next, &nType, &nResID, &nVersion, &deliveredLate)
		if err != nil {
			return 0, false, fmt.Errorf("read head %d: %w", id, err)
		}
		if !linkbridge.OutboxClaimable(state, blocked, !availableAt.After(now)) {
			return 0, false, nil
		}
		var behind *linkbridge.OutboxHead
		if next != nil { // the LEFT JOIN found a row
			behind = &linkbridge.OutboxHead{ID: *next, ResourceType: *nType, ResourceID: *nResID, Version: *nVersion}
		}
		if !head.SupersededBy(behind) && !deliveredLate {
			return id, true, nil
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET state = 'superseded', finished_at = $2 WHERE id = $1 AND state = 'pending'`, id, now); err != nil {
			return 0, false, fmt.Errorf("supersede %d: %w", id, err)
		}
		if next == nil {
			return 0, false, nil
		}
		id = *next
	}
}

// held is the condition of a state change under a claim: the row is still
// inflight under it. $1, $2 and $3 are the id, the claim's worker and its
// time; the statements number their other parameters from $4.
const held = `id = $1 AND state = 'inflight' AND locked_by = $2 AND locked_at = $3`

// CompleteOutbox marks a message inflight under claim c delivered at now
// with the endpoint's status, clearing its lock and last error. It returns
// ENOTFOUND for an unknown id, ECONFLICT ("claim lost") when the message is
// no longer inflight under c, and EINVALID for a claim without a worker or
// time.
func (db *DB) CompleteOutbox(ctx context.Context, c linkbridge.OutboxClaim, status int, now time.Time) error {
	return db.claimUpdate(ctx, "complete", c, `UPDATE outbox SET state = 'delivered', delivered_at = $4, finished_at = $4,
		last_status = $5, last_error = '', last_outcome = NULL, locked_by = '', locked_at = NULL
		WHERE `+held, now, status)
}

// RetryOutboxLater returns a message inflight under claim c to pending, due
// at, counting the failed attempt and recording its status and error. It
// returns ENOTFOUND for an unknown id, ECONFLICT ("claim lost") when the
// message is no longer inflight under c, and EINVALID for a claim without a
// worker or time.
func (db *DB) RetryOutboxLater(ctx context.Context, c linkbridge.OutboxClaim, at time.Time, status int, errText string) error {
	return db.claimUpdate(ctx, "reschedule", c, `UPDATE outbox SET state = 'pending', attempts = attempts + 1,
		available_at = $4, last_status = $5, last_error = $6, last_outcome = NULL, locked_by = '', locked_at = NULL
		WHERE `+held, at, status, errText)
}

// DeadLetterOutbox marks a message inflight under claim c dead, counting the
// failed attempt and keeping the endpoint's status, error and
// OperationOutcome (nil: none). It returns ENOTFOUND for an unknown id,
// ECONFLICT ("claim lost") when the message is no longer inflight under c,
// and EINVALID for a claim without a worker or time.
func (db *DB) DeadLetterOutbox(ctx context.Context, c linkbridge.OutboxClaim, status int, errText string, outcome []byte) error {
	return db.claimUpdate(ctx, "dead-letter", c, `UPDATE outbox SET state = 'dead', attempts = attempts + 1,
		last_status = $4, last_error = $5, last_outcome = $6, locked_by = '', locked_at = NULL
		WHERE `+held, status, errText, outcome)
}

// claimUpdate runs a state change (op) of the message of claim c: sql takes
// held's parameters, then args. The UPDATE's re-check of its WHERE clause
// after waiting for a row lock (READ COMMITTED) makes it see a rescue or a
// new claim that committed meanwhile.
func (db *DB) claimUpdate(ctx context.Context, op string, c linkbridge.OutboxClaim, sql string, args ...any) error {
	if err := c.Validate(op); err != nil {
		return err
	}
	return outboxUpdate(ctx, db.pool, op, c.ID, "", sql, append([]any{c.ID, c.Worker, c.At}, args...)...)
}

// RescueOutbox returns to pending every message inflight since before
// stuckBefore, keeping its due time and attempts, and reports how many. Safe
// to run from several replicas at once: each row is rescued by one of them.
func (db *DB) RescueOutbox(ctx context.Context, channel linkbridge.OutboxChannel, stuckBefore time.Time) (int, error) {
	if err := linkbridge.ValidateChannel(channel); err != nil {
		return 0, err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE outbox SET state = 'pending', locked_by = '', locked_at = NULL
		WHERE state = 'inflight' AND locked_at < $1 AND channel = $2`, ceilMicro(stuckBefore), string(channel))
	if err != nil {
		return 0, fmt.Errorf("postgres: rescue outbox: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// RequeueOutbox makes a dead, discarded or pending message pending and due
// at now, keeping its attempts and last attempt. It returns ENOTFOUND for an
// unknown id and ECONFLICT for an inflight, delivered or superseded message.
// It waits for a claim that is settling the message's key.
func (db *DB) RequeueOutbox(ctx context.Context, id int64, now time.Time) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || ' ' || order_key)) FROM outbox WHERE id = $2`, lockClaim, id); err != nil {
			return fmt.Errorf("postgres: requeue outbox message %d: lock key: %w", id, err)
		}
		return outboxUpdate(ctx, tx, "requeue", id, "dead, discarded or pending", `UPDATE outbox SET state = 'pending',
			available_at = $1, locked_by = '', locked_at = NULL, finished_at = NULL
			WHERE id = $2 AND state IN ('dead', 'discarded', 'pending')`, now, id)
	})
}

// DiscardOutbox marks a pending or dead message discarded, finished now
// (db.Now). It returns ENOTFOUND for an unknown id and ECONFLICT in any
// other state.
func (db *DB) DiscardOutbox(ctx context.Context, id int64) error {
	return db.outboxUpdate(ctx, "discard", id, "pending or dead", `UPDATE outbox SET state = 'discarded',
		finished_at = $2, locked_by = '', locked_at = NULL WHERE id = $1 AND state IN ('pending', 'dead')`, id, db.Now())
}

// DeleteFinishedOutbox deletes up to limit delivered, superseded or
// discarded messages that finished before before, oldest first, keeping a
// delivered one while an older message of its resource may still be sent
// (see finishedOutboxQuery), and reports how many. It returns
// EINVALID for a limit below 1.
//
// Safe from several replicas at once: FOR UPDATE SKIP LOCKED gives each
// batch rows no other batch holds. A requeue racing with a batch is safe
// too: a delivered row is deleted only when the statement's snapshot holds
// no older row of its resource that may be sent, and a row finished for
// good (delivered, superseded, deleted) never becomes sendable again.
func (db *DB) DeleteFinishedOutbox(ctx context.Context, before time.Time, limit int) (int, error) {
	if err := linkbridge.ValidateDeleteFinished(limit); err != nil {
		return 0, err
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM outbox WHERE id IN (`+
		finishedOutboxQuery+` FOR UPDATE SKIP LOCKED)`, ceilMicro(before), limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete finished outbox messages: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// outboxUpdate runs a single-row state change of message id on the pool.
func (db *DB) outboxUpdate(ctx context.Context, op string, id int64, want, sql string, args ...any) error {
	return outboxUpdate(ctx, db.pool, op, id, want, sql, args...)
}

// execQuerier is what outboxUpdate needs of the pool or a transaction.
type execQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// outboxUpdate runs a single-row state change of message id through q. When
// it changes nothing, it returns ENOTFOUND if the message does not exist and
// ECONFLICT otherwise: naming the state it is in and those, want, it should
// be in, or, when want is empty (a change under a claim), that the claim is
// lost.
func outboxUpdate(ctx context.Context, q execQuerier, op string, id int64, want, sql string, args ...any) error {
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s outbox message %d: %w", op, id, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var state string
	switch err := q.QueryRow(ctx, `SELECT state FROM outbox WHERE id = $1`, id).Scan(&state); {
	case errors.Is(err, pgx.ErrNoRows):
		return linkbridge.OutboxNotFound(id)
	case err != nil:
		return fmt.Errorf("postgres: %s outbox message %d: %w", op, id, err)
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
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Channel != "" {
		conds = append(conds, `channel = `+arg(string(f.Channel)))
	}
	if len(f.States) > 0 {
		ss := make([]string, len(f.States))
		for i, s := range f.States {
			ss[i] = string(s)
		}
		conds = append(conds, `state = ANY(`+arg(ss)+`::text[])`)
	}
	if f.OrderKey != "" {
		conds = append(conds, `order_key = `+arg(f.OrderKey))
	}
	if f.ReferralID != "" {
		conds = append(conds, `referral_id = `+arg(f.ReferralID))
	}
	if !f.OlderThan.IsZero() {
		conds = append(conds, `created_at < `+arg(ceilMicro(f.OlderThan)))
	}
	if !f.CreatedSince.IsZero() {
		// Stored times are whole microseconds (truncated): one created at
		// or after CreatedSince is stored at or after its truncation.
		conds = append(conds, `created_at >= `+arg(f.CreatedSince.Truncate(time.Microsecond)))
	}
	q := `SELECT ` + outboxColumns + ` FROM outbox` + whereClause(conds) + ` ORDER BY id DESC LIMIT ` + arg(limit)
	var out []*linkbridge.OutboxMessage
	err = queryRows(ctx, db.pool, q, args, appendTo(&out, scanOutbox))
	if err != nil {
		return nil, fmt.Errorf("postgres: list outbox: %w", err)
	}
	return out, nil
}

// GetOutbox returns one message, body and last outcome included, or
// ENOTFOUND.
func (db *DB) GetOutbox(ctx context.Context, id int64) (*linkbridge.OutboxMessage, error) {
	m, err := scanOutbox(db.pool.QueryRow(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.OutboxNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: get outbox message %d: %w", id, err)
	}
	return m, nil
}

// OutboxStats counts the messages in each state (every state is in Counts,
// 0 when none) and finds the creation time of the oldest pending or inflight
// message, read from one snapshot.
func (db *DB) OutboxStats(ctx context.Context) (*linkbridge.OutboxStats, error) {
	st := sqlshared.NewOutboxStats()
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		err := queryRows(ctx, tx, `SELECT state, COUNT(*) FROM outbox GROUP BY state`, nil, func(rows pgx.Rows) error {
			var s string
			var n int
			if err := rows.Scan(&s, &n); err != nil {
				return err
			}
			st.Counts[linkbridge.OutboxState(s)] = n
			return nil
		})
		if err != nil {
			return fmt.Errorf("postgres: outbox stats: %w", err)
		}
		var oldest *time.Time
		if err := tx.QueryRow(ctx, `SELECT MIN(created_at) FROM outbox WHERE state IN ('pending', 'inflight')`).Scan(&oldest); err != nil {
			return fmt.Errorf("postgres: outbox stats: oldest pending: %w", err)
		}
		st.OldestPending = utcp(oldest)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// scanOutbox reads a row of outboxColumns.
func scanOutbox(row pgx.Row) (*linkbridge.OutboxMessage, error) {
	var (
		m                     linkbridge.OutboxMessage
		state                 string
		lockedAt, deliveredAt *time.Time
		channel               string
	)
	if err := row.Scan(&m.ID, &m.OrderKey, &m.ReferralID, &m.ResourceType, &m.ResourceID, &m.Version, &m.Body, &m.NHSNumber,
		&m.Erase, &state, &m.Attempts, &m.AvailableAt, &m.LockedBy, &lockedAt, &m.LastStatus, &m.LastError, &m.LastOutcome,
		&m.CreatedAt, &deliveredAt, &channel, &m.Notification, &m.EventNumber); err != nil {
		return nil, err
	}
	m.Channel = linkbridge.OutboxChannel(channel)
	m.State = linkbridge.OutboxState(state)
	m.AvailableAt, m.CreatedAt = utc(m.AvailableAt), utc(m.CreatedAt)
	m.LockedAt, m.DeliveredAt = utcp(lockedAt), utcp(deliveredAt)
	return &m, nil
}
