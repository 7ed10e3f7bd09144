-- 023_search_token_once: a token (an identifier, a Coding, a reference's
-- logical identifier) is indexed once, its value in value and its system
-- in the new column system, instead of twice, as "system|value" and as
-- "value" (docs/referral-exchange.md#search-parameters; a third of the
-- index's rows, docs/performance.md#a-token-indexed-once). The key takes
-- the system last, so that one resource may hold the same value in two
-- systems, and a search by value alone still reads one range of it.
--
-- The rows are rewritten in place of a copy, as the adapters read a
-- resource.params column written before (sqlshared.DecodeParams): a value
-- with a "|" is split at its first "|" into system and value, and a value
-- without one is dropped when the resource has that value as a token under
-- the same name (it was the token's second row).
CREATE TABLE search_param_new (
	type   TEXT NOT NULL,
	id     TEXT NOT NULL,
	name   TEXT NOT NULL,
	value  TEXT NOT NULL,
	system TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (type, name, value, id, system)
) STRICT, WITHOUT ROWID;

INSERT INTO search_param_new (type, id, name, value, system)
	SELECT type, id, name, substr(value, instr(value, '|') + 1), substr(value, 1, instr(value, '|') - 1)
	FROM search_param WHERE instr(value, '|') > 0;

INSERT INTO search_param_new (type, id, name, value, system)
	SELECT type, id, name, value, '' FROM search_param p
	WHERE instr(p.value, '|') = 0 AND NOT EXISTS (SELECT 1 FROM search_param_new n
		WHERE n.type = p.type AND n.name = p.name AND n.value = p.value AND n.id = p.id);

-- Dropping the table drops its key too.
DROP TABLE search_param;
ALTER TABLE search_param_new RENAME TO search_param;
