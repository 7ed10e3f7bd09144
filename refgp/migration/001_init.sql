-- Every version of every resource the GP record received.
CREATE TABLE versions (
	type         TEXT    NOT NULL,
	id           TEXT    NOT NULL,
	version      INTEGER NOT NULL,
	last_updated TEXT    NOT NULL, -- RFC 3339, UTC, fixed width (sortable)
	body         BLOB    NOT NULL, -- FHIR JSON as served, with meta
	PRIMARY KEY (type, id, version)
);

-- The current version of each resource, with what searches need.
CREATE TABLE current (
	type           TEXT    NOT NULL,
	id             TEXT    NOT NULL,
	version        INTEGER NOT NULL,
	last_updated   TEXT    NOT NULL,
	body           BLOB    NOT NULL,
	content        BLOB    NOT NULL, -- canonical JSON without meta: "same write twice" check
	source_version INTEGER NOT NULL DEFAULT 0, -- the sender's X-Linkbridge-Version
	patient_id     TEXT    NOT NULL DEFAULT '', -- literal Patient reference (or own id for a Patient)
	nhs_number     TEXT    NOT NULL DEFAULT '', -- NHS number of the patient (reference identifier)
	PRIMARY KEY (type, id)
);
CREATE INDEX current_patient ON current (patient_id);
CREATE INDEX current_nhs ON current (nhs_number);
CREATE INDEX current_updated ON current (type, last_updated);

-- Business identifiers of current versions (conditional update, search).
CREATE TABLE identifiers (
	type   TEXT NOT NULL,
	id     TEXT NOT NULL,
	system TEXT NOT NULL,
	value  TEXT NOT NULL
);
CREATE INDEX identifiers_value ON identifiers (type, value, system);
CREATE INDEX identifiers_resource ON identifiers (type, id);
