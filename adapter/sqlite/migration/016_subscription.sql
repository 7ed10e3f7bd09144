-- 016_subscription: topic-based subscriptions (FHIR R4 Subscriptions
-- Backport IG; docs/subscriptions.md). Forward only.
--
-- A subscription's notifications go through the outbox, on their own
-- channel ('rest-hook'; write-backs are 'write-back'), ordered per
-- subscription (order key "Subscription/<id>"). Its handshake and
-- heartbeats are about no referral, so outbox.referral_id becomes
-- nullable: SQLite cannot change a column's constraints in place, so the
-- table is rebuilt as https://www.sqlite.org/lang_altertable.html#otheralter
-- describes (the migration runner turns foreign key enforcement off around
-- the migration and runs PRAGMA foreign_key_check before committing).
-- Rows keep their ids, and the AUTOINCREMENT counter keeps its value, so
-- an id is never reused. Dropping outbox drops its indexes; they are
-- created again as 004_outbox and 006_outbox_retention wrote them, but for
-- outbox_queue, which also covers channel (the claim reads one channel).

CREATE TABLE outbox_new (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	order_key     TEXT    NOT NULL,
	referral_id   TEXT    REFERENCES referral (id), -- NULL: a handshake or heartbeat
	resource_type TEXT    NOT NULL,
	resource_id   TEXT    NOT NULL,
	version       INTEGER NOT NULL,
	body          BLOB    NOT NULL,
	nhs_number    TEXT    NOT NULL DEFAULT '',
	state         TEXT    NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'inflight', 'delivered', 'dead', 'discarded', 'superseded')),
	attempts      INTEGER NOT NULL DEFAULT 0,
	available_at  TEXT    NOT NULL,
	locked_by     TEXT    NOT NULL DEFAULT '',
	locked_at     TEXT,
	last_status   INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT    NOT NULL DEFAULT '',
	last_outcome  BLOB,
	created_at    TEXT    NOT NULL,
	delivered_at  TEXT,
	finished_at   TEXT,
	erase         INTEGER NOT NULL DEFAULT 0 CHECK (erase IN (0, 1)),
	-- channel: what delivers the message; notification and event_number:
	-- a subscription notification's type and event number (0: none).
	channel       TEXT    NOT NULL DEFAULT 'write-back' CHECK (channel IN ('write-back', 'rest-hook')),
	notification  TEXT    NOT NULL DEFAULT '',
	event_number  INTEGER NOT NULL DEFAULT 0
) STRICT;

INSERT INTO outbox_new (id, order_key, referral_id, resource_type, resource_id, version, body, nhs_number, state,
	attempts, available_at, locked_by, locked_at, last_status, last_error, last_outcome, created_at, delivered_at,
	finished_at, erase)
SELECT id, order_key, referral_id, resource_type, resource_id, version, body, nhs_number, state,
	attempts, available_at, locked_by, locked_at, last_status, last_error, last_outcome, created_at, delivered_at,
	finished_at, erase
FROM outbox;

-- The counter of the old table (it may be past the highest id left, once
-- finished rows were deleted) carries over to the new one.
INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_new', 0
	WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox_new');
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0))
	WHERE name = 'outbox_new';

DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;

CREATE INDEX outbox_queue ON outbox (order_key, id, state, available_at, channel)
	WHERE state IN ('pending', 'inflight');
CREATE INDEX outbox_state_created ON outbox (state, created_at);
CREATE INDEX outbox_order_key ON outbox (order_key, id);
CREATE INDEX outbox_referral ON outbox (referral_id, id);
CREATE INDEX outbox_finished ON outbox (finished_at)
	WHERE state IN ('delivered', 'superseded', 'discarded');

-- A subscription, as created (the Subscription resource is rendered from
-- it): its owner (the creating client's organisation, role and practices,
-- which decide which events reach it), topic and filters, channel and
-- payload, status, the number of its last event, and when its next
-- heartbeat falls due (NULL: it has none). Times are formatTime's text.
CREATE TABLE subscription (
	id                TEXT    NOT NULL PRIMARY KEY,
	owner_client      TEXT    NOT NULL DEFAULT '',
	owner_role        TEXT    NOT NULL DEFAULT '',
	owner_ods         TEXT    NOT NULL DEFAULT '',
	owner_practices   TEXT    NOT NULL DEFAULT '[]', -- JSON array of ODS codes
	topic             TEXT    NOT NULL,
	filter_criteria   TEXT    NOT NULL DEFAULT '[]', -- JSON array, as sent
	filters           TEXT    NOT NULL DEFAULT '[]', -- JSON array of linkbridge.SubscriptionFilter
	endpoint          TEXT    NOT NULL,
	headers           TEXT    NOT NULL DEFAULT '[]', -- JSON array of "Name: value"
	payload_type      TEXT    NOT NULL,
	content           TEXT    NOT NULL CHECK (content IN ('empty', 'id-only', 'full-resource')),
	heartbeat_seconds INTEGER NOT NULL DEFAULT 0,
	timeout_seconds   INTEGER NOT NULL DEFAULT 0,
	max_count         INTEGER NOT NULL DEFAULT 0,
	end_at            TEXT,
	reason            TEXT    NOT NULL DEFAULT '',
	status            TEXT    NOT NULL CHECK (status IN ('requested', 'active', 'error', 'off')),
	error             TEXT    NOT NULL DEFAULT '',
	events            INTEGER NOT NULL DEFAULT 0,
	base              TEXT    NOT NULL,
	version           INTEGER NOT NULL,
	created_at        TEXT    NOT NULL,
	updated_at        TEXT    NOT NULL,
	next_heartbeat_at TEXT
) STRICT;

-- Recording events: the live subscriptions of a topic.
CREATE INDEX subscription_topic ON subscription (topic, id) WHERE status <> 'off';
-- Reads and searches: one organisation's subscriptions.
CREATE INDEX subscription_owner ON subscription (owner_ods, id);
-- The heartbeat run: subscriptions whose heartbeat falls due.
CREATE INDEX subscription_heartbeat ON subscription (next_heartbeat_at) WHERE next_heartbeat_at IS NOT NULL;

-- The event log of each subscription ($events, and what a notification is
-- rendered from), numbered from 1 without gaps.
CREATE TABLE subscription_event (
	subscription_id TEXT    NOT NULL REFERENCES subscription (id) ON DELETE CASCADE,
	number          INTEGER NOT NULL,
	topic           TEXT    NOT NULL,
	focus_type      TEXT    NOT NULL,
	focus_id        TEXT    NOT NULL,
	focus_version   INTEGER NOT NULL,
	referral_id     TEXT    NOT NULL,
	at              TEXT    NOT NULL,
	PRIMARY KEY (subscription_id, number)
) STRICT, WITHOUT ROWID;
