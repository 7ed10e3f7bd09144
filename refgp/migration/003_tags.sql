-- meta.tag Codings of current versions (_tag search, and the criterion of a
-- conditional update on a type without an identifier element: linkbridge
-- keys a Provenance by a write-back tag).
CREATE TABLE tags (
	type   TEXT NOT NULL,
	id     TEXT NOT NULL,
	system TEXT NOT NULL, -- '' when the Coding has no system
	code   TEXT NOT NULL
);
CREATE INDEX tags_code ON tags (type, code, system);
CREATE INDEX tags_resource ON tags (type, id);

-- Resources already held keep their tags searchable.
INSERT INTO tags (type, id, system, code)
	SELECT c.type, c.id, coalesce(json_extract(t.value, '$.system'), ''), json_extract(t.value, '$.code')
	FROM current c, json_each(c.body, '$.meta.tag') t
	WHERE json_extract(t.value, '$.code') IS NOT NULL;

-- 002_conditions.sql remembered the criterion of the conditional update
-- that created a resource, so that a type without an identifier
-- (Provenance) was found again by identifier= — which no real FHIR server
-- does. Those writes are now keyed by meta.tag and matched with _tag, so the
-- table is dropped. Migrations are forward-only: 002 stays for files that
-- already ran it, and a fresh file creates the table and drops it here.
DROP TABLE conditions;
