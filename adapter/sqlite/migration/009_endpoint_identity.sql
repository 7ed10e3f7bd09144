-- 009_endpoint_identity: the GP-side endpoint's own identity of each
-- resource linkbridge writes back, and the erase flag of write-backs.
-- Forward only: it adds a table and a column and changes no stored value.
--
-- A production endpoint assigns its own logical ids (it refuses
-- update-as-create), so the relay records, per endpoint, the id and
-- meta.versionId the endpoint answered with for each resource it wrote
-- (linkbridge.EndpointIdentity), and rewrites references between
-- written-back resources to those ids. A record is replaced by a later or
-- equal version of its resource, never by an earlier one: the upsert's
-- WHERE keeps the stored row when its version is greater (see
-- endpoint_identity.go).
CREATE TABLE endpoint_identity (
	endpoint         TEXT    NOT NULL, -- the endpoint's FHIR base URL, as configured
	resource_type    TEXT    NOT NULL, -- linkbridge's own type and id
	resource_id      TEXT    NOT NULL,
	endpoint_id      TEXT    NOT NULL, -- the endpoint's logical id
	endpoint_version TEXT    NOT NULL DEFAULT '', -- its meta.versionId ('': not given)
	version          INTEGER NOT NULL, -- linkbridge's version last written there
	updated_at       TEXT    NOT NULL,
	PRIMARY KEY (endpoint, resource_type, resource_id)
) STRICT, WITHOUT ROWID;

-- erase: the GP record must no longer hold the resource's content
-- (linkbridge.OutboxMessage.Erase): the relay deletes it where the endpoint
-- offers delete, and otherwise writes the body, a version without the
-- withheld content. Messages enqueued before this migration erase nothing.
ALTER TABLE outbox ADD COLUMN erase INTEGER NOT NULL DEFAULT 0 CHECK (erase IN (0, 1));
