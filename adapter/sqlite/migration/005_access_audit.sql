-- 005_access_audit: per-organisation access to stored resources, and the
-- audit trail. Forward only: it adds two tables and changes no stored value.

-- resource_access attaches access keys ("referrer|<ODS>", "service|<ODS>",
-- linkbridge.ReferralAccessKeys) to stored resources. CreateReferral and
-- UpdateReferral add the referral's keys to every resource they write (and
-- the person's Patient); rows are never deleted. The key serves both the
-- scoped search (type, key → id) and the single-resource check
-- (type, key, id).
CREATE TABLE resource_access (
	type TEXT NOT NULL,
	key  TEXT NOT NULL,
	id   TEXT NOT NULL,
	PRIMARY KEY (type, key, id)
) STRICT, WITHOUT ROWID;

-- Resources stored before this migration get the keys of the referral they
-- belong to, never those of another referral of the same person (which may
-- be another practice's, addressed to another service): each referral's
-- ServiceRequest, Task and Patient; the resources based on its
-- ServiceRequest (contacts, measures); those it wrote back to the GP record
-- (outbox); and the resources whose patient search parameter names the
-- person when the person has no other referral. A resource of a person with
-- several referrals that none of these ties to one of them gets no key: no
-- client is served it until a change of its referral writes it again.
CREATE TEMP TABLE access_keys AS
	SELECT id AS referral_id, task_id, person_id, 'referrer|' || referrer_ods AS key FROM referral
	UNION ALL
	SELECT id, task_id, person_id, 'service|' || service_ods FROM referral;

INSERT OR IGNORE INTO resource_access (type, key, id)
	SELECT 'ServiceRequest', key, referral_id FROM access_keys
	UNION ALL SELECT 'Task', key, task_id FROM access_keys
	UNION ALL SELECT 'Patient', key, person_id FROM access_keys
	UNION ALL SELECT p.type, k.key, p.id FROM access_keys k
		JOIN search_param p ON p.name = 'based-on' AND p.value = 'ServiceRequest/' || k.referral_id
	UNION ALL SELECT o.resource_type, k.key, o.resource_id FROM access_keys k
		JOIN outbox o ON o.referral_id = k.referral_id
	UNION ALL SELECT p.type, k.key, p.id FROM access_keys k
		JOIN search_param p ON p.name = 'patient' AND p.value = 'Patient/' || k.person_id
		WHERE NOT EXISTS (SELECT 1 FROM referral other
			WHERE other.person_id = k.person_id AND other.id <> k.referral_id);

DROP TABLE access_keys;

-- audit_event is the audit trail (linkbridge.AuditRecord): one row per
-- access, append only. entities and query are JSON arrays of strings.
CREATE TABLE audit_event (
	id         TEXT    NOT NULL PRIMARY KEY,
	recorded   TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	ods        TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	operation  TEXT    NOT NULL,
	method     TEXT    NOT NULL,
	route      TEXT    NOT NULL,
	entities   TEXT    NOT NULL,
	query      TEXT    NOT NULL,
	status     INTEGER NOT NULL,
	outcome    INTEGER NOT NULL,
	request_id TEXT    NOT NULL,
	source     TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_event_recorded ON audit_event (recorded, id);
CREATE INDEX audit_event_client ON audit_event (client_id, recorded);
CREATE INDEX audit_event_ods ON audit_event (ods, recorded);

-- audit_entity indexes the entities of each record for search by entity.
CREATE TABLE audit_entity (
	entity   TEXT NOT NULL,
	audit_id TEXT NOT NULL REFERENCES audit_event (id),
	PRIMARY KEY (entity, audit_id)
) STRICT, WITHOUT ROWID;
