-- 003_write_path: write less per stored resource. Forward only; every read
-- returns what it returned before.
--
-- 1. search_param keeps one B-tree instead of two. Its key serves the
--    searches (type, name, value → id); a new version's old values, which
--    used to be deleted through a second index on (type, id), are now found
--    in resource.params and deleted by their key. Intake writes about 15 to
--    30 values per referral, each into a random page, so the second index
--    was a large share of the writer's work.
-- 2. resource_history holds only superseded versions: the current version is
--    read from resource, and is copied to resource_history when a new
--    version replaces it. A new resource is written once instead of twice.

-- resource.params lists the current version's search parameter values as a
-- JSON array of [name, value] pairs, as search_param indexes them.
ALTER TABLE resource ADD COLUMN params TEXT NOT NULL DEFAULT '[]';

UPDATE resource SET params = (
	SELECT json_group_array(json_array(p.name, p.value))
	FROM search_param p
	WHERE p.type = resource.type AND p.id = resource.id
);

CREATE TABLE search_param_new (
	type  TEXT NOT NULL,
	id    TEXT NOT NULL,
	name  TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (type, name, value, id)
) STRICT, WITHOUT ROWID;

INSERT INTO search_param_new (type, id, name, value)
	SELECT type, id, name, value FROM search_param;

-- Dropping the table drops its indexes too.
DROP TABLE search_param;
ALTER TABLE search_param_new RENAME TO search_param;

DELETE FROM resource_history
WHERE EXISTS (
	SELECT 1 FROM resource r
	WHERE r.type = resource_history.type AND r.id = resource_history.id
		AND r.version_id = resource_history.version_id
);
