-- 001_initial: the social prescribing domain tables and the FHIR resource
-- store.
--
-- Times are UTC text in the fixed-width form 2006-01-02T15:04:05.000000000Z,
-- so that comparing the text compares the instants. Tables are STRICT so that
-- a wrong column type fails loudly instead of being coerced. Tables of small
-- rows reached by their key are WITHOUT ROWID: one B-tree to write instead of
-- a table and its key index.

-- person is someone referred to social prescribing. Its id is also the id of
-- the Patient resource served for them.
CREATE TABLE person (
	id         TEXT NOT NULL PRIMARY KEY,
	nhs_number TEXT NOT NULL UNIQUE,
	birth_date TEXT NOT NULL DEFAULT '',
	gp_ods     TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- referral is the link worker's record of one referral. Its id is also the id
-- of the ServiceRequest resource; task_id is the id of the Task tracking it.
CREATE TABLE referral (
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
	UNIQUE (identifier_system, identifier_value)
) STRICT;

CREATE INDEX referral_person_id ON referral (person_id);

-- message records the X-Request-Id of every processed message so that a
-- replay is refused.
CREATE TABLE message (
	request_id  TEXT NOT NULL PRIMARY KEY,
	received_at TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- resource holds the current version of every FHIR resource.
CREATE TABLE resource (
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version_id   INTEGER NOT NULL,
	last_updated TEXT    NOT NULL,
	body         BLOB    NOT NULL,
	PRIMARY KEY (type, id)
) STRICT;

-- Searches are ordered by lastUpdated, then id.
CREATE INDEX resource_last_updated ON resource (type, last_updated, id);

-- resource_history holds every version of every resource, the current one
-- included.
CREATE TABLE resource_history (
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version_id   INTEGER NOT NULL,
	last_updated TEXT    NOT NULL,
	body         BLOB    NOT NULL,
	PRIMARY KEY (type, id, version_id)
) STRICT;

-- search_param holds the search parameter values of the current version of
-- each resource; they are replaced with each new version. WITHOUT ROWID: the
-- rows are small and always reached through the key.
CREATE TABLE search_param (
	type  TEXT NOT NULL,
	id    TEXT NOT NULL,
	name  TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (type, id, name, value)
) STRICT, WITHOUT ROWID;

CREATE INDEX search_param_value ON search_param (type, name, value, id);
