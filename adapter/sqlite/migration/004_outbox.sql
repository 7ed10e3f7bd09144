-- 004_outbox: the durable outbox of write-backs to the GP record.
--
-- Forward only: it adds a table and its indexes and changes no stored value.
--
-- A message is enqueued in the transaction of the referral change that
-- produced it (UpdateReferral), always pending. The relay claims it
-- (inflight), then completes it (delivered), reschedules it (pending again,
-- later available_at) or dead-letters it (dead). Operators may requeue or
-- discard it; a claim may mark it superseded by a later version of the same
-- resource. Delivery is ordered per order_key: only the lowest id of a key
-- among its pending and inflight ("queued") rows may be claimed, and only
-- while none of the key is inflight.

CREATE TABLE outbox (
	-- AUTOINCREMENT: ids are never reused, so an id an operator noted or a
	-- log line names always means the same message.
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	order_key     TEXT    NOT NULL,
	referral_id   TEXT    NOT NULL REFERENCES referral (id),
	resource_type TEXT    NOT NULL,
	resource_id   TEXT    NOT NULL,
	version       INTEGER NOT NULL,
	body          BLOB    NOT NULL, -- FHIR JSON as the GP record should hold it
	nhs_number    TEXT    NOT NULL DEFAULT '',
	state         TEXT    NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'inflight', 'delivered', 'dead', 'discarded', 'superseded')),
	-- attempts counts failed attempts (rescheduled or dead-lettered).
	attempts      INTEGER NOT NULL DEFAULT 0,
	available_at  TEXT    NOT NULL,
	-- locked_by and locked_at name the worker holding an inflight row;
	-- '' and NULL otherwise.
	locked_by     TEXT    NOT NULL DEFAULT '',
	locked_at     TEXT,
	-- The last attempt: HTTP status (0: none or no answer), error text, and
	-- the endpoint's OperationOutcome JSON (NULL: none).
	last_status   INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT    NOT NULL DEFAULT '',
	last_outcome  BLOB,
	created_at    TEXT    NOT NULL,
	delivered_at  TEXT
) STRICT;

-- The claim and due times: the queued rows of each key in id order, with
-- what the claim reads of them (state for "is the key busy", available_at for
-- "is the head due"), so that finding every key's head, whether it is due,
-- and the row queued behind it never reads the table. Partial: delivered and
-- other finished rows, which accumulate, are not in it. Queries must repeat
-- the WHERE term exactly for SQLite to use it.
CREATE INDEX outbox_queue ON outbox (order_key, id, state, available_at)
	WHERE state IN ('pending', 'inflight');

-- Operators and metrics: messages by state and age (list by state, stuck
-- messages older than a time, the oldest pending message, counts per state,
-- the rescuer's inflight rows).
CREATE INDEX outbox_state_created ON outbox (state, created_at);

-- Operators: one person's (order key's) or one referral's messages, newest
-- first. The claim also reads a key's rows after its head through
-- outbox_order_key (is a later version of the head's resource delivered).
CREATE INDEX outbox_order_key ON outbox (order_key, id);
CREATE INDEX outbox_referral ON outbox (referral_id, id);
