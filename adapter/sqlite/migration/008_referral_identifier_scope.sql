-- 008_referral_identifier_scope: a referral's business identifier is its
-- referrer's own, unique per referring organisation (referrer_ods), not
-- across organisations: another organisation sending the same identifier
-- stores a referral of its own instead of learning that the identifier is
-- in use. Forward only; every stored row is kept as it is.
--
-- The UNIQUE (identifier_system, identifier_value) of 001_initial is part of
-- the table's definition and cannot be dropped, so the table is rebuilt as
-- https://www.sqlite.org/lang_altertable.html#otheralter describes: the
-- migration runner turns foreign key enforcement off around the migration's
-- transaction (dropping referral would otherwise fail on the rows of
-- case_plan, contact, measure, referral_event and outbox that reference
-- it) and runs PRAGMA foreign_key_check before committing. The references
-- of those tables name "referral", so they reach the rebuilt table.
--
-- referral_new has referral's columns, in the same order with the same
-- definitions, as 001_initial created them and 002_case_record and
-- 007_referral_patient added them; only the identifier's unique constraint
-- differs. Rows keep their rowid. Dropping referral drops its indexes;
-- they are created again as 001_initial and 002_case_record wrote them
-- (there are no triggers or views).
CREATE TABLE referral_new (
	id                TEXT    NOT NULL PRIMARY KEY,
	task_id           TEXT    NOT NULL UNIQUE,
	person_id         TEXT    NOT NULL REFERENCES person (id),
	identifier_system TEXT    NOT NULL,
	identifier_value  TEXT    NOT NULL,
	status            TEXT    NOT NULL,
	business_status   TEXT    NOT NULL DEFAULT '',
	status_reason     TEXT    NOT NULL DEFAULT '',
	request_status    TEXT    NOT NULL DEFAULT '',
	priority          TEXT    NOT NULL DEFAULT '',
	referrer_ods      TEXT    NOT NULL,
	service_ods       TEXT    NOT NULL,
	reasons           TEXT    NOT NULL DEFAULT '[]', -- JSON array of Coding
	do_not_contact    INTEGER NOT NULL DEFAULT 0,
	authored_on       TEXT    NOT NULL,
	received_at       TEXT    NOT NULL,
	updated_at        TEXT    NOT NULL,
	version           INTEGER NOT NULL,
	link_worker_id    TEXT    NOT NULL DEFAULT '',
	link_worker_name  TEXT    NOT NULL DEFAULT '',
	consent           TEXT    NOT NULL DEFAULT '',
	decline_reason    TEXT    NOT NULL DEFAULT '',
	discharge_reason  TEXT    NOT NULL DEFAULT '',
	discharge_summary TEXT    NOT NULL DEFAULT '',
	accepted_at       TEXT,
	completed_at      TEXT,
	patient_id        TEXT    NOT NULL DEFAULT '',
	UNIQUE (referrer_ods, identifier_system, identifier_value)
) STRICT;

INSERT INTO referral_new (rowid, id, task_id, person_id, identifier_system, identifier_value, status,
		business_status, status_reason, request_status, priority, referrer_ods, service_ods, reasons,
		do_not_contact, authored_on, received_at, updated_at, version, link_worker_id, link_worker_name,
		consent, decline_reason, discharge_reason, discharge_summary, accepted_at, completed_at, patient_id)
	SELECT rowid, id, task_id, person_id, identifier_system, identifier_value, status,
		business_status, status_reason, request_status, priority, referrer_ods, service_ods, reasons,
		do_not_contact, authored_on, received_at, updated_at, version, link_worker_id, link_worker_name,
		consent, decline_reason, discharge_reason, discharge_summary, accepted_at, completed_at, patient_id
	FROM referral;

DROP TABLE referral;
ALTER TABLE referral_new RENAME TO referral;

CREATE INDEX referral_person_id ON referral (person_id);
CREATE INDEX referral_service_received ON referral (service_ods, received_at);
CREATE INDEX referral_link_worker ON referral (link_worker_id, received_at);
