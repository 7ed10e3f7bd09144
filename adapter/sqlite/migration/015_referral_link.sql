-- 015_referral_link: one open referral per person and service, and the
-- links between a person's referrals (docs/domain.md#one-open-referral).
--
-- referral.linked_referral_id and link_kind tie a referral to another of
-- the same person and service: the earlier episode it follows
-- (re-referral, reopened) or the open referral it stands beside (related,
-- concurrent). Empty: none.
--
-- referral.open_key is "<person_id>|<service_ods>" while a referral is
-- open and stands alone, NULL otherwise (linkbridge.Referral.OpenKey); its
-- unique index refuses a second open referral of a person to a service in
-- the transaction that would store it.
--
-- Referrals stored before this: the first open one of each person and
-- service (by receipt) takes the key; any later open ones are linked to it
-- as concurrent, so that a link worker sees them. Forward only.
ALTER TABLE referral ADD COLUMN linked_referral_id TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN link_kind TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN open_key TEXT;

CREATE TEMP TABLE open_referral AS
	SELECT id, person_id, service_ods,
		ROW_NUMBER() OVER (PARTITION BY person_id, service_ods ORDER BY received_at, id) AS n
	FROM referral
	WHERE status NOT IN ('rejected', 'cancelled', 'completed', 'failed', 'entered-in-error')
		AND request_status NOT IN ('revoked', 'entered-in-error', 'completed');
UPDATE referral SET open_key = person_id || '|' || service_ods
	WHERE id IN (SELECT id FROM open_referral WHERE n = 1);
UPDATE referral SET link_kind = 'concurrent',
	linked_referral_id = (SELECT f.id FROM open_referral o JOIN open_referral f
		ON f.person_id = o.person_id AND f.service_ods = o.service_ods AND f.n = 1
		WHERE o.id = referral.id)
	WHERE id IN (SELECT id FROM open_referral WHERE n > 1);
DROP TABLE open_referral;

CREATE UNIQUE INDEX referral_open_key ON referral (open_key);
CREATE INDEX referral_person_service ON referral (person_id, service_ods, received_at);
