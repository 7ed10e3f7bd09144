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

// Subscriptions (migration 016_subscription.sql; docs/subscriptions.md).
// Every write goes through the writer, so the event numbers of a
// subscription are counted one change at a time and its notifications are
// queued in the order of their numbers: within its order key, id order is
// event order. Reads use the read pool.

var _ linkbridge.SubscriptionStore = (*DB)(nil)

// notificationInsert queues a subscription notification on the rest-hook
// channel: the subscription's order key, the referral (NULL for a
// handshake or heartbeat), the subscription's id, due and created at the
// given time, its type and event number. It names the subscription at
// version 0 (notifications are never superseded) and has no body: it is
// rendered when it is sent.
const notificationInsert = `INSERT INTO outbox (order_key, referral_id, resource_type, resource_id, version, body,
	nhs_number, erase, state, available_at, created_at, channel, notification, event_number)
	VALUES (?, ?, 'Subscription', ?, 0, X'', '', 0, 'pending', ?, ?, 'rest-hook', ?, ?)`

// CreateSubscription stores s, requested, at version 1 with no events, and
// queues its handshake, in one write. It returns EINVALID for a
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
		return fmt.Errorf("sqlite: create subscription: %w", err)
	}
	at := formatTime(now)
	err = db.w.do(ctx, func(w *writer) error {
		var n int
		if err := w.queryRow(`SELECT COUNT(*) FROM subscription WHERE id = ?`, []any{next.ID}, &n); err != nil {
			return fmt.Errorf("sqlite: create subscription: %w", err)
		}
		if n > 0 {
			return linkbridge.Errorf(linkbridge.ECONFLICT, "subscription %s exists already", next.ID)
		}
		if _, err := w.exec(`INSERT INTO subscription (`+sqlshared.SubscriptionColumns+`) VALUES (`+
			placeholders(sqlshared.SubscriptionColumnCount)+`)`, args...); err != nil {
			return fmt.Errorf("sqlite: create subscription: %w", err)
		}
		if _, err := w.exec(notificationInsert, next.OrderKey(), nil, next.ID, at, at,
			linkbridge.NotificationHandshake, 0); err != nil {
			return fmt.Errorf("sqlite: queue handshake: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*s = next
	return nil
}

// GetSubscription returns a subscription, or ENOTFOUND.
func (db *DB) GetSubscription(ctx context.Context, id string) (*linkbridge.Subscription, error) {
	s, err := scanSubscription(db.read.QueryRowContext(ctx, `SELECT `+sqlshared.SubscriptionColumns+` FROM subscription WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlite: get subscription: %w", err)
	}
	return s, nil
}

// ListSubscriptions returns the subscriptions q selects, oldest first (by
// creation, then id).
func (db *DB) ListSubscriptions(ctx context.Context, q linkbridge.SubscriptionQuery) ([]*linkbridge.Subscription, error) {
	limit, err := sqlshared.SubscriptionQueryLimit(q)
	if err != nil {
		return nil, err
	}
	var conds []string
	var args []any
	if !q.AnyOwner {
		conds = append(conds, `owner_ods = ?`)
		args = append(args, q.OwnerODS)
	}
	if len(q.IDs) > 0 {
		conds = append(conds, `id IN (`+placeholders(len(q.IDs))+`)`)
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	if len(q.Statuses) > 0 {
		conds = append(conds, `status IN (`+placeholders(len(q.Statuses))+`)`)
		for _, st := range q.Statuses {
			args = append(args, string(st))
		}
	}
	if q.Topic != "" {
		conds = append(conds, `topic = ?`)
		args = append(args, q.Topic)
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	var out []*linkbridge.Subscription
	err = queryRows(ctx, db.read, `SELECT `+sqlshared.SubscriptionColumns+` FROM subscription`+where+
		` ORDER BY created_at, id LIMIT ? OFFSET ?`, append(args, limit, max(q.Offset, 0)), func(rows *sql.Rows) error {
		s, err := scanSubscription(rows)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list subscriptions: %w", err)
	}
	return out, nil
}

// DeleteSubscription deletes a subscription and its event log and
// discards its pending notifications, in one write. It returns ENOTFOUND
// for an unknown id.
func (db *DB) DeleteSubscription(ctx context.Context, id string) error {
	at := formatTime(db.Now())
	return db.w.do(ctx, func(w *writer) error {
		if _, err := w.exec(`DELETE FROM subscription_event WHERE subscription_id = ?`, id); err != nil {
			return fmt.Errorf("sqlite: delete subscription events: %w", err)
		}
		res, err := w.exec(`DELETE FROM subscription WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("sqlite: delete subscription: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: delete subscription: %w", err)
		} else if n == 0 {
			return linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
		}
		if _, err := w.exec(`UPDATE outbox SET state = 'discarded', finished_at = ?
			WHERE order_key = ? AND state = 'pending'`, at, linkbridge.SubscriptionOrderKey(id)); err != nil {
			return fmt.Errorf("sqlite: discard subscription notifications: %w", err)
		}
		return nil
	})
}

// SetSubscriptionStatus records a delivery's outcome (see
// linkbridge.SubscriptionStore).
func (db *DB) SetSubscriptionStatus(ctx context.Context, id string, status linkbridge.SubscriptionStatus, errText string, now time.Time) error {
	if err := sqlshared.ValidateSubscriptionStatus(status); err != nil {
		return err
	}
	at := formatTime(now)
	return db.w.do(ctx, func(w *writer) error {
		res, err := w.exec(`UPDATE subscription SET status = ?1, error = ?2, version = version + 1, updated_at = ?3
			WHERE id = ?4 AND status <> 'off' AND (status <> ?1 OR error <> ?2)`, string(status), errText, at, id)
		if err != nil {
			return fmt.Errorf("sqlite: set subscription status: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: set subscription status: %w", err)
		} else if n > 0 {
			return nil
		}
		var found int
		if err := w.queryRow(`SELECT COUNT(*) FROM subscription WHERE id = ?`, []any{id}, &found); err != nil {
			return fmt.Errorf("sqlite: set subscription status: %w", err)
		}
		if found == 0 {
			return linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
		}
		return nil
	})
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
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: subscription events: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM subscription WHERE id = ?`, id).Scan(&n); err != nil {
		return nil, fmt.Errorf("sqlite: subscription events: %w", err)
	}
	if n == 0 {
		return nil, linkbridge.Errorf(linkbridge.ENOTFOUND, "Subscription/%s not found", id)
	}
	if to <= 0 {
		to = 1<<63 - 1
	}
	if limit <= 0 {
		limit = sqlshared.SubscriptionListLimit
	}
	var out []*linkbridge.SubscriptionEvent
	err = queryRows(ctx, tx, `SELECT subscription_id, number, topic, focus_type, focus_id, focus_version, referral_id, at
		FROM subscription_event WHERE subscription_id = ? AND number >= ? AND number <= ? ORDER BY number LIMIT ?`,
		[]any{id, from, to, limit}, func(rows *sql.Rows) error {
			var ev linkbridge.SubscriptionEvent
			var at string
			if err := rows.Scan(&ev.SubscriptionID, &ev.Number, &ev.Topic, &ev.FocusType, &ev.FocusID, &ev.FocusVersion,
				&ev.ReferralID, &at); err != nil {
				return err
			}
			if err := parseTimes(storedTime{&ev.At, at}); err != nil {
				return err
			}
			out = append(out, &ev)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: subscription events: %w", err)
	}
	return out, nil
}

// QueueHeartbeats turns off subscriptions past their end and queues the
// heartbeats that fall due (see linkbridge.SubscriptionStore), in one
// write.
//
// A run with nothing to do (the common case: it runs every second) reads
// the read pool only, so it never takes the writer.
func (db *DB) QueueHeartbeats(ctx context.Context, now time.Time) (int, error) {
	at := formatTime(now)
	var work int
	if err := db.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM subscription INDEXED BY subscription_heartbeat
			WHERE next_heartbeat_at IS NOT NULL AND next_heartbeat_at <= ?1 AND status IN ('active', 'error'))
		OR EXISTS (SELECT 1 FROM subscription WHERE end_at IS NOT NULL AND end_at <= ?1 AND status <> 'off')`, at).Scan(&work); err != nil {
		return 0, fmt.Errorf("sqlite: find due heartbeats: %w", err)
	}
	if work == 0 {
		return 0, nil
	}
	queued := 0
	err := db.w.do(ctx, func(w *writer) error {
		queued = 0
		if _, err := w.exec(`UPDATE subscription SET status = 'off', version = version + 1, updated_at = ?1,
			next_heartbeat_at = NULL WHERE end_at IS NOT NULL AND end_at <= ?1 AND status <> 'off'`, at); err != nil {
			return fmt.Errorf("sqlite: turn off ended subscriptions: %w", err)
		}
		type due struct {
			id     string
			period int64
			idle   bool
		}
		var dues []due
		err := w.query(`SELECT s.id, s.heartbeat_seconds, NOT EXISTS (SELECT 1 FROM outbox q INDEXED BY outbox_queue
				WHERE `+queued0+` AND q.order_key = 'Subscription/' || s.id)
			FROM subscription s WHERE s.next_heartbeat_at IS NOT NULL AND s.next_heartbeat_at <= ?
				AND s.status IN ('active', 'error') ORDER BY s.id`, []any{at}, func(rows *sql.Rows) error {
			var d due
			if err := rows.Scan(&d.id, &d.period, &d.idle); err != nil {
				return err
			}
			dues = append(dues, d)
			return nil
		})
		if err != nil {
			return fmt.Errorf("sqlite: find due heartbeats: %w", err)
		}
		for _, d := range dues {
			next := formatTime(now.Add(time.Duration(d.period) * time.Second))
			if _, err := w.exec(`UPDATE subscription SET next_heartbeat_at = ? WHERE id = ?`, next, d.id); err != nil {
				return fmt.Errorf("sqlite: schedule heartbeat: %w", err)
			}
			if !d.idle {
				continue // something is queued: the subscription is not idle
			}
			if _, err := w.exec(notificationInsert, linkbridge.SubscriptionOrderKey(d.id), nil, d.id, at, at,
				linkbridge.NotificationHeartbeat, 0); err != nil {
				return fmt.Errorf("sqlite: queue heartbeat: %w", err)
			}
			queued++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return queued, nil
}

// queued0 is the partial index outbox_queue's WHERE term for an outbox
// aliased q.
const queued0 = `q.state IN ('pending', 'inflight')`

// recordEvents records, in the writer's transaction, the topic events of a
// referral change (or intake) at the time at for every subscription they
// match: the subscription's next event number, the event in its log, and
// its notification in the outbox. Subscriptions are taken in id order
// (sqlshared.MatchEvents).
func (w *writer) recordEvents(ref *linkbridge.Referral, evs []*linkbridge.TopicEvent, at time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	topics := sqlshared.EventTopics(evs)
	args := make([]any, len(topics))
	for i, t := range topics {
		args[i] = t
	}
	var subs []*linkbridge.Subscription
	err := w.query(`SELECT `+sqlshared.SubscriptionColumns+` FROM subscription INDEXED BY subscription_topic
		WHERE topic IN (`+placeholders(len(topics))+`) AND status <> 'off'`, args, func(rows *sql.Rows) error {
		s, err := scanSubscription(rows)
		if err != nil {
			return err
		}
		subs = append(subs, s)
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: find subscriptions: %w", err)
	}
	stamp := formatTime(at)
	for _, m := range sqlshared.MatchEvents(subs, ref, evs, at) {
		var next any
		if m.Sub.HeartbeatPeriod > 0 {
			next = formatTime(at.Add(m.Sub.HeartbeatPeriod))
		}
		var number int64
		if err := w.queryRow(`UPDATE subscription SET events = events + 1, next_heartbeat_at = ?
			WHERE id = ? RETURNING events`, []any{next, m.Sub.ID}, &number); err != nil {
			return fmt.Errorf("sqlite: count subscription event: %w", err)
		}
		f := m.Event.Focus
		if _, err := w.exec(`INSERT INTO subscription_event (subscription_id, number, topic, focus_type,
			focus_id, focus_version, referral_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			m.Sub.ID, number, m.Event.Topic, f.Type, f.ID, f.VersionID, ref.ID, stamp); err != nil {
			return fmt.Errorf("sqlite: record subscription event: %w", err)
		}
		if _, err := w.exec(notificationInsert, m.Sub.OrderKey(), ref.ID, m.Sub.ID, stamp, stamp,
			linkbridge.NotificationEvent, number); err != nil {
			return fmt.Errorf("sqlite: queue notification: %w", err)
		}
	}
	return nil
}

// scanSubscription reads a row of sqlshared.SubscriptionColumns.
func scanSubscription(row scanner) (*linkbridge.Subscription, error) {
	var r sqlshared.SubscriptionRow
	var end, next sql.NullString
	var created, updated string
	if err := row.Scan(r.Dest(&end, &created, &updated, &next)...); err != nil {
		return nil, err
	}
	s, err := r.Subscription()
	if err != nil {
		return nil, err
	}
	if err := parseTimes(storedTime{&s.End, end.String}, storedTime{&s.CreatedAt, created}, storedTime{&s.UpdatedAt, updated}); err != nil {
		return nil, err
	}
	return s, nil
}
