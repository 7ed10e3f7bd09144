-- 001_initial: the social prescribing domain tables and the FHIR resource
-- store (PostgreSQL). The same numbering and meaning as adapter/sqlite's
-- migrations; the dialect differences are noted where they occur.
--
-- Times are timestamptz (microsecond precision, which is what the store
-- contract promises). Ids and other keys that the store orders by are
-- COLLATE "C": byte order, as SQLite compares text, whatever the database's
-- default collation is (en_US.UTF-8 would sort 'a-1' and 'A1' differently),
-- and cheaper to compare.

-- person is someone referred to social prescribing. Its id is also the id of
-- the Patient resource served for them. The constraint names are what the
-- adapter maps unique violations by (SQLSTATE 23505 carries the name).
CREATE TABLE person (
	id         text COLLATE "C" NOT NULL,
	nhs_number text COLLATE "C" NOT NULL,
	birth_date text NOT NULL DEFAULT '',
	gp_ods     text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL,
	CONSTRAINT person_pkey PRIMARY KEY (id),
	CONSTRAINT person_nhs_number_key UNIQUE (nhs_number)
);

-- referral is the link worker's record of one referral. Its id is also the id
-- of the ServiceRequest resource; task_id is the id of the Task tracking it.
-- The unique business identifier is what makes intake idempotent across
-- replicas: two replicas inserting the same referral at once cannot both
-- succeed (the second waits for the first to commit, then fails with 23505).
CREATE TABLE referral (
	id                text COLLATE "C" NOT NULL,
	task_id           text COLLATE "C" NOT NULL,
	person_id         text COLLATE "C" NOT NULL,
	identifier_system text COLLATE "C" NOT NULL,
	identifier_value  text COLLATE "C" NOT NULL,
	status            text NOT NULL,
	business_status   text NOT NULL DEFAULT '',
	status_reason     text NOT NULL DEFAULT '',
	request_status    text NOT NULL DEFAULT '',
	priority          text NOT NULL DEFAULT '',
	referrer_ods      text COLLATE "C" NOT NULL,
	service_ods       text COLLATE "C" NOT NULL,
	reasons           jsonb NOT NULL DEFAULT '[]', -- JSON array of Coding
	do_not_contact    boolean NOT NULL DEFAULT false,
	authored_on       timestamptz NOT NULL,
	received_at       timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL,
	version           integer NOT NULL,
	CONSTRAINT referral_pkey PRIMARY KEY (id),
	CONSTRAINT referral_task_id_key UNIQUE (task_id),
	CONSTRAINT referral_identifier_key UNIQUE (identifier_system, identifier_value),
	CONSTRAINT referral_person_fkey FOREIGN KEY (person_id) REFERENCES person (id)
);

CREATE INDEX referral_person_id ON referral (person_id);

-- message records the X-Request-Id of every processed message so that a
-- replay is refused, by any replica.
CREATE TABLE message (
	request_id  text COLLATE "C" NOT NULL,
	received_at timestamptz NOT NULL,
	CONSTRAINT message_pkey PRIMARY KEY (request_id)
);

-- resource holds the current version of every FHIR resource.
CREATE TABLE resource (
	type         text COLLATE "C" NOT NULL,
	id           text COLLATE "C" NOT NULL,
	version_id   integer NOT NULL,
	last_updated timestamptz NOT NULL,
	body         bytea NOT NULL,
	CONSTRAINT resource_pkey PRIMARY KEY (type, id)
);

-- Searches are ordered by lastUpdated, then id.
CREATE INDEX resource_last_updated ON resource (type, last_updated, id);

-- resource_history holds the versions that a newer version replaced (the
-- current version is read from resource; SQLite reached this shape in
-- 003_write_path, PostgreSQL starts with it).
CREATE TABLE resource_history (
	type         text COLLATE "C" NOT NULL,
	id           text COLLATE "C" NOT NULL,
	version_id   integer NOT NULL,
	last_updated timestamptz NOT NULL,
	body         bytea NOT NULL,
	PRIMARY KEY (type, id, version_id)
);

-- search_param holds the search parameter values of the current version of
-- each resource. The key serves searches (type, name, value → id); the second
-- index finds a resource's values when a new version replaces them (until
-- 003_write_path).
CREATE TABLE search_param (
	type  text COLLATE "C" NOT NULL,
	id    text COLLATE "C" NOT NULL,
	name  text COLLATE "C" NOT NULL,
	value text COLLATE "C" NOT NULL,
	PRIMARY KEY (type, name, value, id)
);

CREATE INDEX search_param_resource ON search_param (type, id);
