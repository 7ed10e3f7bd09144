-- 008_referral_identifier_scope: a referral's business identifier is its
-- referrer's own, unique per referring organisation (referrer_ods), not
-- across organisations: another organisation sending the same identifier
-- stores a referral of its own instead of learning that the identifier is
-- in use. Forward only; no stored value changes. The new constraint still
-- makes intake idempotent across replicas (the second insert of the same
-- organisation's referral waits for the first, then fails with 23505), and
-- its index serves the lookup by organisation and identifier. (SQLite,
-- whose constraint was part of the table's definition, rebuilds the table.)
ALTER TABLE referral DROP CONSTRAINT referral_identifier_key;
ALTER TABLE referral ADD CONSTRAINT referral_referrer_identifier_key
	UNIQUE (referrer_ods, identifier_system, identifier_value);
