-- 011_store_setting: named settings of the store itself, such as the
-- version of the search parameter table the search index was built with
-- (linkbridge.IndexStore). Forward only.
CREATE TABLE store_setting (
	name  TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;
