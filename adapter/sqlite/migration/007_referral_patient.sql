-- 007_referral_patient: each referral has its own Patient resource (what
-- its referrer sent about the person), so that a person referred by
-- several organisations is never disclosed to one organisation as another
-- sent them. Referrals stored before this keep the person's Patient, whose
-- id is the person's: the new column takes that id. Forward only.
ALTER TABLE referral ADD COLUMN patient_id TEXT NOT NULL DEFAULT '';
UPDATE referral SET patient_id = person_id;
