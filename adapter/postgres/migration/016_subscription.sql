-- 016_subscription: topic-based subscriptions (FHIR R4 Subscriptions
-- Backport IG; docs/subscriptions.md), PostgreSQL. Forward only; the same
-- tables and columns as SQLite's 016_subscription.sql.
--
-- A subscription's notifications go through the outbox on their own
-- channel ('rest-hook'), ordered per subscription (order key
-- "Subscription/<id>"). Their ids are handed out while the event's
-- transaction holds the subscription's row (the event number is counted
-- there), so within a key id order is commit order, as the per-key
-- enqueue lock makes it for write-backs. A handshake or heartbeat is about
-- no referral: referral_id may be NULL.

ALTER TABLE outbox ALTER COLUMN referral_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN channel text COLLATE "C" NOT NULL DEFAULT 'write-back'
	CHECK (channel IN ('write-back', 'rest-hook'));
ALTER TABLE outbox ADD COLUMN notification text NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN event_number bigint NOT NULL DEFAULT 0;

-- The claim reads one channel's queue.
DROP INDEX outbox_queue;
CREATE INDEX outbox_queue ON outbox (order_key, id) INCLUDE (state, available_at, channel)
	WHERE state IN ('pending', 'inflight');

CREATE TABLE subscription (
	id                text COLLATE "C" NOT NULL PRIMARY KEY,
	owner_client      text NOT NULL DEFAULT '',
	owner_role        text NOT NULL DEFAULT '',
	owner_ods         text COLLATE "C" NOT NULL DEFAULT '',
	owner_practices   jsonb NOT NULL DEFAULT '[]',
	topic             text COLLATE "C" NOT NULL,
	filter_criteria   jsonb NOT NULL DEFAULT '[]',
	filters           jsonb NOT NULL DEFAULT '[]',
	endpoint          text NOT NULL,
	headers           jsonb NOT NULL DEFAULT '[]',
	payload_type      text NOT NULL,
	content           text NOT NULL CHECK (content IN ('empty', 'id-only', 'full-resource')),
	heartbeat_seconds integer NOT NULL DEFAULT 0,
	timeout_seconds   integer NOT NULL DEFAULT 0,
	max_count         integer NOT NULL DEFAULT 0,
	end_at            timestamptz,
	reason            text NOT NULL DEFAULT '',
	status            text NOT NULL CHECK (status IN ('requested', 'active', 'error', 'off')),
	error             text NOT NULL DEFAULT '',
	events            bigint NOT NULL DEFAULT 0,
	base              text NOT NULL,
	version           integer NOT NULL,
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL,
	next_heartbeat_at timestamptz
);

CREATE INDEX subscription_topic ON subscription (topic, id) WHERE status <> 'off';
CREATE INDEX subscription_owner ON subscription (owner_ods, id);
CREATE INDEX subscription_heartbeat ON subscription (next_heartbeat_at) WHERE next_heartbeat_at IS NOT NULL;

CREATE TABLE subscription_event (
	subscription_id text COLLATE "C" NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
	number          bigint NOT NULL,
	topic           text NOT NULL,
	focus_type      text COLLATE "C" NOT NULL,
	focus_id        text COLLATE "C" NOT NULL,
	focus_version   integer NOT NULL,
	referral_id     text COLLATE "C" NOT NULL,
	at              timestamptz NOT NULL,
	PRIMARY KEY (subscription_id, number)
);
