-- 021_outbox_queue_order: the relay's claim finds the oldest deliverable
-- messages by walking the queued ones in id order and stopping once it has
-- enough, instead of grouping every queued message by order key first
-- (docs/performance.md#the-relays-claim). Forward only: it adds an index
-- and changes no stored value.
--
-- Only queued (pending or inflight) messages are in it, so the walk does
-- not pass the delivered ones that retention has not yet deleted.
CREATE INDEX outbox_queue_id ON outbox (id) INCLUDE (state, order_key, available_at, channel)
	WHERE state IN ('pending', 'inflight');
