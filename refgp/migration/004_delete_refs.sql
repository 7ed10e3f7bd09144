-- A delete is a version of its own (deleted = 1, empty body): read and
-- vread answer 410 Gone, history lists it, and the resource leaves current
-- (and so identifiers, tags and every search).
ALTER TABLE versions ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

-- The relative literal references (Type/id, Type/id/_history/n) of current
-- versions, outside contained resources, as fhirmap.RelativeRefs finds
-- them: a delete of a resource still referenced is refused (409) when the
-- endpoint enforces referential integrity.
CREATE TABLE refs (
	type        TEXT NOT NULL, -- the referring resource
	id          TEXT NOT NULL,
	path        TEXT NOT NULL, -- element path of the Reference, e.g. CarePlan.goal[0]
	target_type TEXT NOT NULL,
	target_id   TEXT NOT NULL
);
CREATE INDEX refs_target ON refs (target_type, target_id);
CREATE INDEX refs_resource ON refs (type, id);

-- Resources already held get their references indexed. json_tree walks the
-- stored JSON, so a choice element's path reads "input[0].valueReference"
-- here where fhirmap writes "input[0].value.reference"; the path is only
-- shown in the 409's diagnostics.
WITH r AS (
	SELECT c.type, c.id, c.type || substr(t.fullkey, 2, length(t.fullkey) - 11) AS path, t.atom AS ref
	FROM current c, json_tree(c.body) t
	WHERE t.key = 'reference' AND t.type = 'text'
		AND t.fullkey NOT LIKE '$.contained%'
		AND t.fullkey NOT LIKE '%.assigner.reference'
		AND t.atom NOT LIKE '#%' AND instr(t.atom, ':') = 0 AND instr(t.atom, '/') > 1
), s AS (
	SELECT type, id, path, substr(ref, 1, instr(ref, '/') - 1) AS target_type, substr(ref, instr(ref, '/') + 1) AS rest FROM r
)
INSERT INTO refs (type, id, path, target_type, target_id)
	SELECT type, id, path, target_type, CASE WHEN instr(rest, '/') > 0 THEN substr(rest, 1, instr(rest, '/') - 1) ELSE rest END
	FROM s;
