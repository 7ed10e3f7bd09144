-- 024_outbox_claim_walk: the relay's claim walks the queued messages in id
-- order through an index that only it can use, so that no statistics can
-- make it walk the primary key instead (docs/performance.md#the-relays-claim).
-- Forward only: it replaces an index and changes no stored value.
--
-- Migration 021's partial index of the queued messages by id and the
-- primary key give the same order, and an outbox analyzed while all of it
-- was queued (as a drain leaves it between two analyzes, or a store whose
-- autovacuum is off) makes the primary key look as good a walk: it then
-- passes every delivered row for each claim, and a drain's cost grows with
-- the square of its length (269 ms a claim after 30,035 delivered, at a
-- million referrals). This index is keyed by id + 0, the order the claim
-- asks for, which the primary key does not give.
CREATE INDEX outbox_claim_walk ON outbox ((id + 0)) INCLUDE (id, state, order_key, available_at, channel)
	WHERE state IN ('pending', 'inflight');
DROP INDEX outbox_queue_id;
