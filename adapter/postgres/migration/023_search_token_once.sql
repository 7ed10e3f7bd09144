-- 023_search_token_once: a token (an identifier, a Coding, a reference's
-- logical identifier) is indexed once, its value in value and its system
-- in the new column system, instead of twice, as "system|value" and as
-- "value" (docs/referral-exchange.md#search-parameters; a third of the
-- index's rows, docs/performance.md#a-token-indexed-once). The key takes
-- the system last, so that one resource may hold the same value in two
-- systems, and a search by value alone still reads one range of it.
--
-- The rows are rewritten into a new table, as the adapters read a
-- resource.params column written before (sqlshared.DecodeParams): a value
-- with a "|" is split at its first "|" into system and value, and a value
-- without one is dropped when the resource has that value as a token under
-- the same name (it was the token's second row). The key is built once the
-- rows are in.
CREATE TABLE search_param_new (
	type   text COLLATE "C" NOT NULL,
	id     text COLLATE "C" NOT NULL,
	name   text COLLATE "C" NOT NULL,
	value  text COLLATE "C" NOT NULL,
	system text COLLATE "C" NOT NULL DEFAULT ''
);

INSERT INTO search_param_new (type, id, name, value, system)
	SELECT type, id, name, value, system FROM (
		SELECT type, id, name, value, system, split,
			bool_or(split) OVER (PARTITION BY type, name, value, id) AS has_token
		FROM (
			SELECT type, id, name,
				CASE WHEN strpos(value, '|') > 0 THEN substr(value, strpos(value, '|') + 1) ELSE value END AS value,
				CASE WHEN strpos(value, '|') > 0 THEN left(value, strpos(value, '|') - 1) ELSE '' END AS system,
				strpos(value, '|') > 0 AS split
			FROM search_param
		) s
	) w
	WHERE split OR NOT has_token;

DROP TABLE search_param;
ALTER TABLE search_param_new RENAME TO search_param;
ALTER TABLE search_param ADD CONSTRAINT search_param_pkey PRIMARY KEY (type, name, value, id, system);
