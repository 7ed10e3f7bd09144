-- 021_access_per_referral: a referral's own ServiceRequest, Task and
-- Patient take its access keys from its row, not from resource_access rows.
-- Forward only; every read is authorised as before.
--
-- Intake wrote eight resource_access rows a referral (its two keys on its
-- ServiceRequest, Task, Patient and Organization), each into the part of
-- the index of its type and organisation: a page of its own to write at
-- each commit. The referral row names three of those resources and holds
-- both keys already (referrer_ods, service_ods: linkbridge.ReferralAccessKeys
-- is "referrer|<referrer_ods>" when referrer_ods is set, and
-- "service|<service_ods>"), so the store now reads the keys of the
-- resource a referral row names (id: its ServiceRequest, task_id: its
-- Task, patient_id: its Patient) from the row (adapter/sqlite/resource.go,
-- search.access), and writes resource_access rows only for the others
-- (access.go).
--
-- A referral grants through its row while it is not entered in error,
-- which is what RevokeAccessQuery did to its rows: its ServiceRequest and
-- Task lose its keys, and its Patient keeps a key only as long as another
-- referral not in error with that Patient has it. access_implied marks the
-- referrals that grant through their row: every referral stored from now
-- on (the default), and every stored one not in error that holds all of
-- these rows; their rows are deleted here. A stored referral not in error
-- that lacks one of them (none is expected: intake wrote them all, and only
-- a referral entering error lost them) is marked 0 and keeps its rows, so
-- that no resource becomes readable to anyone who could not read it.
ALTER TABLE referral ADD COLUMN access_implied INTEGER NOT NULL DEFAULT 1;

-- The keys each referral not in error grants, one row per key.
CREATE TEMP TABLE referral_keys AS
	SELECT id, task_id, patient_id, 'referrer|' || referrer_ods AS key FROM referral
	WHERE referrer_ods <> '' AND status <> 'entered-in-error' AND request_status <> 'entered-in-error'
	UNION ALL
	SELECT id, task_id, patient_id, 'service|' || service_ods FROM referral
	WHERE status <> 'entered-in-error' AND request_status <> 'entered-in-error';

UPDATE referral SET access_implied = 0 WHERE id IN (
	SELECT k.id FROM referral_keys k
	WHERE NOT EXISTS (SELECT 1 FROM resource_access a WHERE a.type = 'ServiceRequest' AND a.key = k.key AND a.id = k.id)
		OR NOT EXISTS (SELECT 1 FROM resource_access a WHERE a.type = 'Task' AND a.key = k.key AND a.id = k.task_id)
		OR NOT EXISTS (SELECT 1 FROM resource_access a WHERE a.type = 'Patient' AND a.key = k.key AND a.id = k.patient_id)
);

-- The rows the other referrals' rows now stand for. A Patient row is kept
-- while a referral marked 0 with that Patient and key could still need it:
-- the row stood for both.
CREATE TEMP TABLE kept_referral AS SELECT id FROM referral WHERE access_implied = 0;
CREATE TEMP TABLE kept_patient_key AS
	SELECT patient_id, key FROM referral_keys WHERE id IN (SELECT id FROM kept_referral);

DELETE FROM resource_access WHERE (type, key, id) IN (
	SELECT 'ServiceRequest', key, id FROM referral_keys WHERE id NOT IN (SELECT id FROM kept_referral)
	UNION ALL
	SELECT 'Task', key, task_id FROM referral_keys WHERE id NOT IN (SELECT id FROM kept_referral)
	UNION ALL
	SELECT 'Patient', key, patient_id FROM referral_keys WHERE id NOT IN (SELECT id FROM kept_referral)
		AND (patient_id, key) NOT IN (SELECT patient_id, key FROM kept_patient_key)
);

DROP TABLE referral_keys;
DROP TABLE kept_referral;
DROP TABLE kept_patient_key;

-- The Patient a referral row names is looked up by its id, as its Task is
-- (task_id's unique index) and its ServiceRequest (the primary key).
CREATE INDEX referral_patient ON referral (patient_id);
