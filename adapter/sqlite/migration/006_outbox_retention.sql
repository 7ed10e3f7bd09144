-- 006_outbox_retention: when a write-back finished, so that finished ones
-- (each holding a full FHIR body) can be deleted after a retention period
-- (DeleteFinishedOutbox, the relay's cleaner). Forward only: it adds a
-- column and an index, and fills the column in for rows finished already.
--
-- finished_at is set when a message becomes delivered (its delivered_at),
-- superseded (the claim's time) or discarded (the operator's), and cleared
-- when an operator requeues a discarded message. Dead messages have none:
-- they wait for an operator and are never deleted.
ALTER TABLE outbox ADD COLUMN finished_at TEXT;

-- Rows finished before this migration: a delivered row finished when it was
-- delivered; for superseded and discarded rows the time was not recorded, so
-- their retention period starts now (kept longer, never shorter). The text
-- has formatTime's fixed-width layout, whose text order is time order.
UPDATE outbox SET finished_at = delivered_at WHERE state = 'delivered';
UPDATE outbox SET finished_at = strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000000Z'
	WHERE state IN ('superseded', 'discarded');

-- The cleaner: finished rows oldest first. Partial: the queue's rows and
-- dead letters are never deleted, so they are not in it. Queries must repeat
-- the WHERE term exactly for SQLite to use it.
CREATE INDEX outbox_finished ON outbox (finished_at)
	WHERE state IN ('delivered', 'superseded', 'discarded');
