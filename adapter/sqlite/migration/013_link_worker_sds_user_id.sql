-- 013_link_worker_sds_user_id: a link worker's NHS Spine Directory Service
-- user id, when known, for the link worker holding the case
-- (link_worker_*) and the one who held it when the person agreed
-- (agreed_by_*). FHIR references then name the link worker by it
-- (docs/identifiers.md#link-workers). Empty: not known (every referral
-- stored before this). Forward only.
ALTER TABLE referral ADD COLUMN link_worker_sds_user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN agreed_by_sds_user_id TEXT NOT NULL DEFAULT '';
