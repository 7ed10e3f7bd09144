-- 002_case_record: the link worker's case record.
--
-- Forward only: it adds columns, tables and indexes to a database at
-- 001_initial and changes no stored value. Referrals stored before it get
-- the new columns' defaults (no link worker, no consent recorded, no
-- reasons, AcceptedAt and CompletedAt unset) and an empty history; their
-- "received" event is not invented.

-- The referral's episode: who holds it, what the person agreed to share,
-- why it was declined or discharged, and when it was accepted and closed.
-- accepted_at and completed_at are NULL until set.
ALTER TABLE referral ADD COLUMN link_worker_id    TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN link_worker_name  TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN consent           TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN decline_reason    TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN discharge_reason  TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN discharge_summary TEXT NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN accepted_at       TEXT;
ALTER TABLE referral ADD COLUMN completed_at      TEXT;

-- The inbox (a service's referrals, newest first) and the caseload (a link
-- worker's referrals, newest first).
CREATE INDEX referral_service_received ON referral (service_ods, received_at);
CREATE INDEX referral_link_worker ON referral (link_worker_id, received_at);

-- case_plan is the referral's personalised care and support plan: the whole
-- linkbridge.Plan as JSON, replaced as a whole.
CREATE TABLE case_plan (
	referral_id TEXT NOT NULL PRIMARY KEY REFERENCES referral (id),
	body        TEXT NOT NULL -- JSON object
) STRICT;

-- contact is one contact between the link worker and the person. attended
-- is 0 for a contact the person did not attend.
CREATE TABLE contact (
	id          TEXT    NOT NULL PRIMARY KEY,
	referral_id TEXT    NOT NULL REFERENCES referral (id),
	at          TEXT    NOT NULL,
	mode        TEXT    NOT NULL,
	minutes     INTEGER NOT NULL,
	attended    INTEGER NOT NULL,
	notes       TEXT    NOT NULL DEFAULT '',
	created_at  TEXT    NOT NULL
) STRICT;

-- A case record lists its contacts by time; attended makes the count of
-- attended contacts an index-only query.
CREATE INDEX contact_referral ON contact (referral_id, at, id, attended);

-- measure is one completed outcome measure.
CREATE TABLE measure (
	id          TEXT    NOT NULL PRIMARY KEY,
	referral_id TEXT    NOT NULL REFERENCES referral (id),
	instrument  TEXT    NOT NULL,
	timepoint   TEXT    NOT NULL,
	items       TEXT    NOT NULL, -- JSON array of item scores
	total       INTEGER NOT NULL,
	metric      REAL    NOT NULL,
	taken_at    TEXT    NOT NULL,
	created_at  TEXT    NOT NULL
) STRICT;

CREATE INDEX measure_referral ON measure (referral_id, taken_at, id);

-- referral_event is the referral's history: one row per versioned change
-- that carried an event, keyed by the version it produced.
CREATE TABLE referral_event (
	referral_id TEXT    NOT NULL REFERENCES referral (id),
	version     INTEGER NOT NULL,
	at          TEXT    NOT NULL,
	action      TEXT    NOT NULL,
	actor       TEXT    NOT NULL,
	status      TEXT    NOT NULL,
	PRIMARY KEY (referral_id, version)
) STRICT, WITHOUT ROWID;
