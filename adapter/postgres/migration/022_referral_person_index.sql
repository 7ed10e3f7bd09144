-- 022_referral_person_index: referral_person_id (person_id) goes. Its key is
-- the start of referral_person_service (person_id, service_ods,
-- received_at, from 015), which serves every lookup by person as well, and
-- each new version of a referral wrote an entry into both
-- (docs/performance.md#statements-planned-once). Forward only: it drops an
-- index and changes no stored value.
DROP INDEX referral_person_id;
