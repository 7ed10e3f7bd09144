-- 002_case_record: the link worker's case record (PostgreSQL).
--
-- Forward only: it adds columns, tables and indexes to a database at
-- 001_initial and changes no stored value. Referrals stored before it get
-- the new columns' defaults and an empty history.

ALTER TABLE referral ADD COLUMN link_worker_id    text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN link_worker_name  text NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN consent           text NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN decline_reason    text NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN discharge_reason  text NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN discharge_summary text NOT NULL DEFAULT '';
ALTER TABLE referral ADD COLUMN accepted_at       timestamptz;
ALTER TABLE referral ADD COLUMN completed_at      timestamptz;

-- The inbox (a service's referrals, newest first) and the caseload (a link
-- worker's referrals, newest first).
CREATE INDEX referral_service_received ON referral (service_ods, received_at);
CREATE INDEX referral_link_worker ON referral (link_worker_id, received_at);
CREATE INDEX referral_received ON referral (received_at, id);

-- case_plan is the referral's personalised care and support plan: the whole
-- linkbridge.Plan as JSON, replaced as a whole. (json, not jsonb: the plan
-- is read back exactly as written.)
CREATE TABLE case_plan (
	referral_id text COLLATE "C" NOT NULL PRIMARY KEY REFERENCES referral (id),
	body        json NOT NULL
);

CREATE TABLE contact (
	id          text COLLATE "C" NOT NULL PRIMARY KEY,
	referral_id text COLLATE "C" NOT NULL REFERENCES referral (id),
	at          timestamptz NOT NULL,
	mode        text NOT NULL,
	minutes     integer NOT NULL,
	attended    boolean NOT NULL,
	notes       text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL
);

CREATE INDEX contact_referral ON contact (referral_id, at, id) INCLUDE (attended);

CREATE TABLE measure (
	id          text COLLATE "C" NOT NULL PRIMARY KEY,
	referral_id text COLLATE "C" NOT NULL REFERENCES referral (id),
	instrument  text NOT NULL,
	timepoint   text NOT NULL,
	items       jsonb NOT NULL, -- JSON array of item scores
	total       integer NOT NULL,
	metric      double precision NOT NULL,
	taken_at    timestamptz NOT NULL,
	created_at  timestamptz NOT NULL
);

CREATE INDEX measure_referral ON measure (referral_id, taken_at, id);

CREATE TABLE referral_event (
	referral_id text COLLATE "C" NOT NULL REFERENCES referral (id),
	version     integer NOT NULL,
	at          timestamptz NOT NULL,
	action      text NOT NULL,
	actor       text NOT NULL,
	status      text NOT NULL,
	PRIMARY KEY (referral_id, version)
);
