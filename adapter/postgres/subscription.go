package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
	"github.com/linkbridge/linkbridge/adapter/internal/sqlshared"
)

// Subscriptions (migration 016_subscription.sql; docs/subscriptions.md),
// with the semantics of adapter/sqlite/subscription.go. What differs is
// that several replicas write at once: an event's transaction counts the
// event with UPDATE subscription ... RETURNING events, which holds the
// subscription's row until the transaction ends, and queues the
// notification while holding it. So two transactions recording events of
// one subscription are serialised on its row: numbers have no gaps (a
// rolled-back transaction's increment is rolled back with it), and the
// notifications' ids, handed out under the row lock, follow the numbers
// in commit order, which the per-key claim relies on. Transactions take
// the rows in subscription id order (sqlshared.MatchEvents), so two of them
// cannot deadlock on each other's subscriptions. QueueHeartbeats takes the
// row the same way before queueing a heartbeat.

var _ linkbridge.SubscriptionStore = (*DB)(nil)

// notificationInsert queues a subscription notification (see the SQLite
// version): $1 order key, $2 referral (NULL for a handshake or heartbeat),
// $3 subscription id, $4 due and created, $5 type, $6 event number.
const notificationInsert = `INSERT INTO outbox (order_key, referral_id, resource_type, resource_id, version, body,
	nhs_number, erase, state, available_at, created_at, channel, notification, event_number)
	VALUES ($1, $2, 'Subscription', $3, 0, ''::bytea, '', false, 'pending', $4, $4, 'rest-hook', $5, $6)`

// CreateSubscription stores s, requested, at version 1 with no events, and
// queues its handshake, in one transaction. It returns EINVALID for a
// subscription Validate refuses and ECONFLICT for a taken id.
func (db *DB) CreateSubscription(ctx context.Context, s *linkbridge.Subscription, now time.Time) error {
	if err := s.Validate(); err != nil {
		return err
	}
	now = columns.Stored(now.UTC())
	next := *s
	next.Status, next.Version, next.EventsSinceStart, next.Error = linkbridge.SubscriptionRequested, 1, 0, ""
	next.CreatedAt, next.UpdatedAt = now, now
	args, err := sqlshared.SubscriptionArgs(&next, now, columns)
	if err != nil {
		return fmt.Errorf("postgres: create subscription: %w", err)
	}
	err = retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO subscription (`+sqlshared.SubscriptionColumns+`) VALUES (`+
				dollars(sqlshared.SubscriptionColumnCount)+`)`, args...); err != nil {
				if _, ok := violation(err, uniqueViolation); ok {
					return linkbridge.Errorf(linkbridge.ECONFLICT, "subscription %s exists already", next.ID)
				}
				return fmt.Errorf("postgres: create subscription: %w", err)
			}
			if _, err := tx.Exec(ctx, notificationInsert, next.OrderKey(), nil, next.ID, now,
				linkbridge.NotificationHandshake, 0); err != nil {
				return fmt.Errorf("postgres: queue handshake: %w", err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	*s = next
	return nil
}

// dollars returns "$1, ..., $n".
func dollars(n int) string {
	out := make([]byte, 0, 4*n)
	for i := 1; i <= n; i++ {
		if i > 1 {
			out = append(out, ", "...)
		}
		out = fmt.Appendf(out, "$%d", i)
	}
	return string(out)
}

// GetSubscription returns a subscription, or ENOTFOUND.
func (db *DB) GetSubscription(ctx context.Context, id string) (*linkbridge.Subscription, error) {
	s, err := scanSubscription(db.pool.QueryRow(ctx, `SELECT `+sqlshared.SubscriptionColumns+` FROM subscription WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("postgres: get subscription: %w", err)
	}
	return s, nil
}

// ListSubscriptions returns the subscriptions q selects, oldest first.
func (db *DB) ListSubscriptions(ctx context.Context, q linkbridge.SubscriptionQuery) ([]*linkbridge.Subscription, error) {
	limit, err := sqlshared.SubscriptionQueryLimit(q)
	if err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !q.AnyOwner {
		conds = append(conds, `owner_ods = `+arg(q.OwnerODS))
	}
	if len(q.IDs) > 0 {
		conds = append(conds, `id = ANY(`+arg(q.IDs)+`::text[])`)
	}
	if len(q.Statuses) > 0 {
		ss := make([]string, len(q.Statuses))
		for i, st := range q.Statuses {
			ss[i] = string(st)
		}
		conds = append(conds, `status = ANY(`+arg(ss)+`::text[])`)
	}
	if q.Topic != "" {
		conds = append(conds, `topic = `+arg(q.Topic))
	}
	sql := `SELECT ` + sqlshared.SubscriptionColumns + ` FROM subscription` + whereClause(conds) +
		` ORDER BY created_at, id LIMIT ` + arg(limit) + ` OFFSET ` + arg(max(q.Offset, 0))
	var out []*linkbridge.Subscription
	if err := queryRows(ctx, db.pool, sql, args, appendTo(&out, scanSubscription)); err != nil {
		return nil, fmt.Errorf("postgres: list subscriptions: %w", err)
	}
	return out, nil
}

// DeleteSubscription deletes a subscription and its event log and
// discards its pending notifications, in one transaction. It returns
// ENOTFOUND for an unknown id.
func (db *DB) DeleteSubscription(ctx context.Context, id string) error {
	return retryTx(ctx, func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `DELETE FROM subscription WHERE id = $1`, id)
			if err != nil {
				return fmt.Errorf("postgres: delete subscription: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
			}
			if _, err := tx.Exec(ctx, `UPDATE outbox SET state = 'discarded', finished_at = $2
				WHERE order_key = $1 AND state = 'pending'`, linkbridge.SubscriptionOrderKey(id), db.Now()); err != nil {
				return fmt.Errorf("postgres: discard subscription notifications: %w", err)
			}
			return nil
		})
	})
}

// SetSubscriptionStatus records a delivery's outcome (see
// linkbridge.SubscriptionStore).
func (db *DB) SetSubscriptionStatus(ctx context.Context, id string, status linkbridge.SubscriptionStatus, errText string, now time.Time) error {
	if err := sqlshared.ValidateSubscriptionStatus(status); err != nil {
		return err
	}
	tag, err := db.pool.Exec(ctx, `UPDATE subscription SET status = $1, error = $2, version = version + 1, updated_at = $3
		WHERE id = $4 AND status <> 'off' AND (status <> $1 OR error <> $2)`, string(status), errText, now, id)
	if err != nil {
		return fmt.Errorf("postgres: set subscription status: %w", err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var found bool
	if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM subscription WHERE id = $1)`, id).Scan(&found); err != nil {
		return fmt.Errorf("postgres: set subscription status: %w", err)
	}
	if !found {
		return linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
	}
	return nil
}

// SubscriptionEvent returns one recorded event, or ENOTFOUND.
func (db *DB) SubscriptionEvent(ctx context.Context, id string, number int64) (*linkbridge.SubscriptionEvent, error) {
	evs, err := db.SubscriptionEvents(ctx, id, number, number, 1)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "event %d of Subscription/%s not found", number, id)
	}
	return evs[0], nil
}

// SubscriptionEvents returns the events numbered from..to (to 0: no upper
// bound) of a subscription, at most limit, lowest first; ENOTFOUND for an
// unknown subscription.
func (db *DB) SubscriptionEvents(ctx context.Context, id string, from, to int64, limit int) ([]*linkbridge.SubscriptionEvent, error) {
	if to <= 0 {
		to = 1<<63 - 1
	}
	if limit <= 0 {
		limit = sqlshared.SubscriptionListLimit
	}
	var out []*linkbridge.SubscriptionEvent
	var found bool
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM subscription WHERE id = $1)`, id).Scan(&found); err != nil {
			return err
		}
		if !found {
			return nil
		}
		return queryRows(ctx, tx, `SELECT subscription_id, number, topic, focus_type, focus_id, focus_version, referral_id, at
			FROM subscription_event WHERE subscription_id = $1 AND number >= $2 AND number <= $3 ORDER BY number LIMIT $4`,
			[]any{id, from, to, limit}, func(rows pgx.Rows) error {
				var ev linkbridge.SubscriptionEvent
				if err := rows.Scan(&ev.SubscriptionID, &ev.Number, &ev.Topic, &ev.FocusType, &ev.FocusID, &ev.FocusVersion,
					&ev.ReferralID, &ev.At); err != nil {
					return err
				}
				ev.At = utc(ev.At)
				out = append(out, &ev)
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: subscription events: %w", err)
	}
	if !found {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
	}
	return out, nil
}

// QueueHeartbeats turns off subscriptions past their end and queues the
// heartbeats that fall due (see linkbridge.SubscriptionStore). Each due
// subscription's row is taken (FOR UPDATE SKIP LOCKED: a replica queueing
// its heartbeat, or a change recording an event for it, has it) and its
// next heartbeat moved on before the heartbeat is queued, so replicas
// running at once queue one heartbeat a period.
func (db *DB) QueueHeartbeats(ctx context.Context, now time.Time) (int, error) {
	queued := 0
	err := retryTx(ctx, func() error {
		queued = 0
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE subscription SET status = 'off', version = version + 1, updated_at = $1,
				next_heartbeat_at = NULL WHERE end_at IS NOT NULL AND end_at <= $1 AND status <> 'off'`, now); err != nil {
				return fmt.Errorf("postgres: turn off ended subscriptions: %w", err)
			}
			type due struct {
				id     string
				period int64
			}
			var dues []due
			err := queryRows(ctx, tx, `SELECT id, heartbeat_seconds FROM subscription
				WHERE next_heartbeat_at IS NOT NULL AND next_heartbeat_at <= $1 AND status IN ('active', 'error')
				ORDER BY id FOR UPDATE SKIP LOCKED`, []any{now}, func(rows pgx.Rows) error {
				var d due
				if err := rows.Scan(&d.id, &d.period); err != nil {
					return err
				}
				dues = append(dues, d)
				return nil
			})
			if err != nil {
				return fmt.Errorf("postgres: find due heartbeats: %w", err)
			}
			for _, d := range dues {
				if _, err := tx.Exec(ctx, `UPDATE subscription SET next_heartbeat_at = $1 WHERE id = $2`,
					now.Add(time.Duration(d.period)*time.Second), d.id); err != nil {
					return fmt.Errorf("postgres: schedule heartbeat: %w", err)
				}
				var busy bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox WHERE state IN ('pending', 'inflight')
					AND order_key = $1)`, linkbridge.SubscriptionOrderKey(d.id)).Scan(&busy); err != nil {
					return fmt.Errorf("postgres: queue heartbeat: %w", err)
				}
				if busy {
					continue // something is queued: the subscription is not idle
				}
				if _, err := tx.Exec(ctx, notificationInsert, linkbridge.SubscriptionOrderKey(d.id), nil, d.id, now,
					linkbridge.NotificationHeartbeat, 0); err != nil {
					return fmt.Errorf("postgres: queue heartbeat: %w", err)
				}
				queued++
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	return queued, nil
}

// recordEvents records, in tx, the topic events of a referral change (or
// intake) at the time at for every subscription they match (see the top
// of this file).
func recordEvents(ctx context.Context, tx pgx.Tx, ref *linkbridge.Referral, evs []*linkbridge.TopicEvent, at time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	var subs []*linkbridge.Subscription
	err := queryRows(ctx, tx, `SELECT `+sqlshared.SubscriptionColumns+` FROM subscription
		WHERE topic = ANY($1::text[]) AND status <> 'off'`, []any{sqlshared.EventTopics(evs)}, appendTo(&subs, scanSubscription))
	if err != nil {
		return fmt.Errorf("postgres: find subscriptions: %w", err)
	}
	for _, m := range sqlshared.MatchEvents(subs, ref, evs, at) {
		var next any
		if m.Sub.HeartbeatPeriod > 0 {
			next = at.Add(m.Sub.HeartbeatPeriod)
		}
		var number int64
		err := tx.QueryRow(ctx, `UPDATE subscription SET events = events + 1, next_heartbeat_at = $1
			WHERE id = $2 AND status <> 'off' RETURNING events`, next, m.Sub.ID).Scan(&number)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // deleted or turned off since it was read
		} else if err != nil {
			return fmt.Errorf("postgres: count subscription event: %w", err)
		}
		f := m.Event.Focus
		if _, err := tx.Exec(ctx, `INSERT INTO subscription_event (subscription_id, number, topic, focus_type,
			focus_id, focus_version, referral_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			m.Sub.ID, number, m.Event.Topic, f.Type, f.ID, f.VersionID, ref.ID, at); err != nil {
			return fmt.Errorf("postgres: record subscription event: %w", err)
		}
		if _, err := tx.Exec(ctx, notificationInsert, m.Sub.OrderKey(), ref.ID, m.Sub.ID, at,
			linkbridge.NotificationEvent, number); err != nil {
			return fmt.Errorf("postgres: queue notification: %w", err)
		}
	}
	return nil
}

// scanSubscription reads a row of sqlshared.SubscriptionColumns.
func scanSubscription(row pgx.Row) (*linkbridge.Subscription, error) {
	var r sqlshared.SubscriptionRow
	var end, next *time.Time
	var created, updated time.Time
	if err := row.Scan(r.Dest(&end, &created, &updated, &next)...); err != nil {
		return nil, err
	}
	s, err := r.Subscription()
	if err != nil {
		return nil, err
	}
	s.End, s.CreatedAt, s.UpdatedAt = utcp(end), utc(created), utc(updated)
	return s, nil
}
