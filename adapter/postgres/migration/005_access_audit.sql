-- 005_access_audit: per-organisation access to stored resources, and the
-- audit trail (PostgreSQL; the same tables as SQLite's 005). Forward only:
-- it adds tables and changes no stored value.

-- resource_access attaches access keys ("referrer|<ODS>", "service|<ODS>",
-- linkbridge.ReferralAccessKeys) to stored resources; rows are never
-- deleted. The key serves the scoped search (type, key → id).
CREATE TABLE resource_access (
	type text COLLATE "C" NOT NULL,
	key  text COLLATE "C" NOT NULL,
	id   text COLLATE "C" NOT NULL,
	PRIMARY KEY (type, key, id)
);

-- Resources stored before this migration get the keys of the referral they
-- belong to, never those of another referral of the same person (which may
-- be another practice's, addressed to another service): each referral's
-- ServiceRequest, Task and Patient; the resources based on its
-- ServiceRequest (contacts, measures); those it wrote back to the GP record
-- (outbox); and the resources whose patient search parameter names the
-- person when the person has no other referral. A resource of a person with
-- several referrals that none of these ties to one of them gets no key: no
-- client is served it until a change of its referral writes it again.
WITH access_keys AS (
	SELECT id AS referral_id, task_id, person_id, 'referrer|' || referrer_ods AS key FROM referral
	UNION ALL
	SELECT id, task_id, person_id, 'service|' || service_ods FROM referral
)
INSERT INTO resource_access (type, key, id)
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
			WHERE other.person_id = k.person_id AND other.id <> k.referral_id)
ON CONFLICT DO NOTHING;

-- audit_event is the audit trail (linkbridge.AuditRecord): one row per
-- access, append only. entities and query are JSON arrays of strings.
CREATE TABLE audit_event (
	id         text COLLATE "C" NOT NULL PRIMARY KEY,
	recorded   timestamptz NOT NULL,
	client_id  text NOT NULL,
	role       text NOT NULL,
	ods        text NOT NULL,
	action     text NOT NULL,
	operation  text NOT NULL,
	method     text NOT NULL,
	route      text NOT NULL,
	entities   jsonb NOT NULL,
	query      jsonb NOT NULL,
	status     integer NOT NULL,
	outcome    integer NOT NULL,
	request_id text NOT NULL,
	source     text NOT NULL
);

CREATE INDEX audit_event_recorded ON audit_event (recorded, id);
CREATE INDEX audit_event_client ON audit_event (client_id, recorded);
CREATE INDEX audit_event_ods ON audit_event (ods, recorded);

-- audit_entity indexes the entities of each record for search by entity.
CREATE TABLE audit_entity (
	entity   text COLLATE "C" NOT NULL,
	audit_id text COLLATE "C" NOT NULL REFERENCES audit_event (id),
	PRIMARY KEY (entity, audit_id)
);
