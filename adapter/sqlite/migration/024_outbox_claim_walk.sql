-- 024_outbox_claim_walk: nothing to change on SQLite. On PostgreSQL this
-- migration gives the relay's claim an index that only it can walk, so that
-- stale statistics cannot make it walk the primary key past every delivered
-- row (docs/performance.md#the-relays-claim). SQLite has no per-value
-- statistics and its claim names its index (INDEXED BY outbox_queue_id), so
-- it keeps migration 021's index. The file keeps both backends' migration
-- lists, and so their schema versions, the same.
SELECT 1;
