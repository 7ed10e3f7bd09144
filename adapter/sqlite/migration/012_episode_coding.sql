-- 012_episode_coding: when things happened, and the coding moments of an
-- episode (docs/domain.md#coding-the-episode).
--
-- referral.agreed_at (and agreed_by_*) is when the person agreed to take
-- part, recorded by the link worker who held the case then: the moment
-- "Referral to social prescribing service" (871731000000106) is coded.
-- referral.person_declined_at is when the person declined before agreeing:
-- the moment "Social prescribing declined" (871711000000103) is coded.
-- referral_event.occurred_at is when the change happened, where at is when
-- it was recorded.
--
-- Referrals stored before this were coded at the service's acceptance:
-- agreed_at takes accepted_at, so that what their GP records hold does not
-- move. A declined referral whose reason was the person's own keeps its
-- declined code (person_declined_at = when it was declined). Forward only.
ALTER TABLE referral ADD COLUMN agreed_at TEXT;
ALTER TABLE referral ADD COLUMN agreed_by_id TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN agreed_by_name TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN person_declined_at TEXT;
UPDATE referral SET agreed_at = accepted_at, agreed_by_id = link_worker_id, agreed_by_name = link_worker_name
	WHERE accepted_at IS NOT NULL;
UPDATE referral SET person_declined_at = updated_at
	WHERE status = 'rejected' AND decline_reason = 'person-declined';

ALTER TABLE referral_event ADD COLUMN occurred_at TEXT;
