-- 003_write_path: write less per stored resource (PostgreSQL). Forward only;
-- every read returns what it returned before.
--
-- resource.params lists the current version's search parameter values, so
-- that a new version deletes only the values that changed, by the key of
-- search_param, and the second index on search_param (type, id) goes. (The
-- other half of SQLite's 003, keeping only superseded versions in
-- resource_history, is how 001 made the table here.)

ALTER TABLE resource ADD COLUMN params jsonb NOT NULL DEFAULT '[]';

UPDATE resource r SET params = p.params
FROM (
	SELECT type, id, jsonb_agg(jsonb_build_array(name, value)) AS params
	FROM search_param GROUP BY type, id
) p
WHERE p.type = r.type AND p.id = r.id;

DROP INDEX search_param_resource;
