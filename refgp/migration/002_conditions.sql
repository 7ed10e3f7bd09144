-- The criterion of the conditional update that created a resource
-- (identifier system|value). A later conditional update with the same
-- criterion finds it even when the resource type has no identifier element
-- (Provenance): the same write twice stays one resource.
CREATE TABLE conditions (
	type   TEXT NOT NULL,
	id     TEXT NOT NULL,
	system TEXT NOT NULL,
	value  TEXT NOT NULL,
	PRIMARY KEY (type, system, value)
);
