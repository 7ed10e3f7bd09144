-- 004_outbox: the durable outbox of write-backs to the GP record
-- (PostgreSQL). Forward only: it adds a table and its indexes.
--
-- The same states and rules as SQLite's 004_outbox.sql: delivery is ordered
-- per order_key (the person), only the lowest id of a key among its pending
-- and inflight ("queued") rows may be claimed, and only while none of the
-- key is inflight. Several replicas claim from this one table; see
-- outbox.go for how they share it.

CREATE TABLE outbox (
	-- An identity never reuses a value, as SQLite's AUTOINCREMENT. Ids of one
	-- order key are handed out under a per-key lock (see outbox.go), so
	-- their order is their commit order.
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_key     text COLLATE "C" NOT NULL,
	referral_id   text COLLATE "C" NOT NULL REFERENCES referral (id),
	resource_type text COLLATE "C" NOT NULL,
	resource_id   text COLLATE "C" NOT NULL,
	version       integer NOT NULL,
	body          bytea NOT NULL,
	nhs_number    text NOT NULL DEFAULT '',
	state         text NOT NULL DEFAULT 'pending'
		CHECK (state IN ('pending', 'inflight', 'delivered', 'dead', 'discarded', 'superseded')),
	attempts      integer NOT NULL DEFAULT 0,
	available_at  timestamptz NOT NULL,
	locked_by     text NOT NULL DEFAULT '',
	locked_at     timestamptz,
	last_status   integer NOT NULL DEFAULT 0,
	last_error    text NOT NULL DEFAULT '',
	last_outcome  bytea,
	created_at    timestamptz NOT NULL,
	delivered_at  timestamptz
);

-- The claim: the queued rows of each key in id order (partial: finished
-- rows, which accumulate, are not in it).
CREATE INDEX outbox_queue ON outbox (order_key, id) INCLUDE (state, available_at)
	WHERE state IN ('pending', 'inflight');

-- At most one inflight message per order key, whatever the number of
-- replicas: the claim's per-key lock already ensures it, and the database
-- refuses a second one should anything get past the lock.
CREATE UNIQUE INDEX outbox_one_inflight ON outbox (order_key) WHERE state = 'inflight';

-- Operators and metrics: messages by state and age.
CREATE INDEX outbox_state_created ON outbox (state, created_at);

-- Operators: one person's or one referral's messages; the claim's "a later
-- version was delivered" check.
CREATE INDEX outbox_order_key ON outbox (order_key, id);
CREATE INDEX outbox_referral ON outbox (referral_id, id);
