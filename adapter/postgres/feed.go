package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/linkbridge/linkbridge"
)

var _ linkbridge.ReferralFeed = (*DB)(nil)

// feedChannel is the NOTIFY channel of committed referral changes. Channels
// are per database, not per schema: the payload names the schema, and a
// follower keeps only its own schema's notices.
const feedChannel = "linkbridge_referral"

// notifyReferral is queued in every transaction that creates or changes a
// referral: PostgreSQL delivers the notification when (and only if) the
// transaction commits, to every session listening, on every replica.
// The payload holds ids and ODS codes only (never personal data) and stays
// far below NOTIFY's 8000-byte limit.
const notifyReferral = `SELECT pg_notify('` + feedChannel + `', json_build_object(
	'schema', current_schema(), 'referral', $1::text, 'version', $2::int, 'referrer', $3::text, 'service', $4::text)::text)`

// notifyArgs are notifyReferral's arguments for a referral's new version.
func notifyArgs(rf *linkbridge.Referral) []any {
	return []any{rf.ID, rf.Version, rf.ReferrerODS, rf.ServiceODS}
}

// feedPayload is notifyReferral's payload.
type feedPayload struct {
	Schema   string `json:"schema"`
	Referral string `json:"referral"`
	Version  int    `json:"version"`
	Referrer string `json:"referrer"`
	Service  string `json:"service"`
}

// Feed reconnection backoff.
const (
	feedRetryMin = 100 * time.Millisecond
	feedRetryMax = 10 * time.Second
)

// FollowReferrals listens for the referral changes every replica on this
// database commits (linkbridge.ReferralFeed), on a connection of its own
// outside the pool, until ctx ends. When the connection is lost it
// reconnects with backoff and then sends a resync notice, since changes
// committed meanwhile were not heard. ready is closed once the first LISTEN
// is in place; an error is returned only when that first connection fails.
func (db *DB) FollowReferrals(ctx context.Context, ready chan<- struct{}, fn func(linkbridge.ReferralNotice)) error {
	conn, schema, err := db.listen(ctx)
	if err != nil {
		return err
	}
	if ready != nil {
		close(ready)
	}
	wait := feedRetryMin
	for {
		if conn != nil {
			err = follow(ctx, conn, schema, fn)
			_ = conn.Close(context.WithoutCancel(ctx))
			conn = nil
			if ctx.Err() != nil {
				return ctx.Err()
			}
			db.Logger.WarnContext(ctx, "referral feed: connection lost; reconnecting", slog.Any("error", err))
			wait = feedRetryMin
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		if conn, schema, err = db.listen(ctx); err != nil {
			db.Logger.WarnContext(ctx, "referral feed: cannot listen", slog.Any("error", err))
			wait = min(2*wait, feedRetryMax)
			continue
		}
		fn(linkbridge.ReferralNotice{}) // changes may have been missed while away
	}
}

// listen opens a connection with the pool's settings and listens on the
// feed channel; it returns the connection and its schema.
func (db *DB) listen(ctx context.Context) (*pgx.Conn, string, error) {
	if db.pool == nil {
		return nil, "", errors.New("postgres: referral feed: the store is not open")
	}
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, "", fmt.Errorf("postgres: referral feed: %w", err)
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		_ = conn.Close(ctx)
		return nil, "", fmt.Errorf("postgres: referral feed: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+feedChannel); err != nil {
		_ = conn.Close(ctx)
		return nil, "", fmt.Errorf("postgres: referral feed: %w", err)
	}
	return conn, schema, nil
}

// follow passes the notices of one schema on to fn until the connection
// fails or ctx ends.
func follow(ctx context.Context, conn *pgx.Conn, schema string, fn func(linkbridge.ReferralNotice)) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var p feedPayload
		if json.Unmarshal([]byte(n.Payload), &p) != nil || p.Schema != schema || p.Referral == "" {
			continue
		}
		fn(linkbridge.ReferralNotice{ReferralID: p.Referral, Version: p.Version, ReferrerODS: p.Referrer, ServiceODS: p.Service})
	}
}
