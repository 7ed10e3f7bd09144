-- 019_document_delivery: the MESH side of GP Connect Send Document
-- write-backs (PostgreSQL; the same table as SQLite's 019,
-- docs/send-document.md#delivery). Forward only: it adds a table and
-- changes no stored value.
CREATE TABLE document_delivery (
	outbox_id       bigint NOT NULL PRIMARY KEY,
	message_id      text COLLATE "C" NOT NULL, -- the ITK3 MessageHeader.id
	mesh_message_id text COLLATE "C" NOT NULL DEFAULT '',
	chunks_sent     integer NOT NULL DEFAULT 0,
	chunks_total    integer NOT NULL DEFAULT 0,
	state           text NOT NULL,
	reason          text NOT NULL DEFAULT '',
	outcome         bytea,
	sent_at         timestamptz,
	inf_ack_at      timestamptz,
	bus_ack_at      timestamptz,
	updated_at      timestamptz NOT NULL
);
CREATE INDEX document_delivery_message ON document_delivery (message_id);
CREATE INDEX document_delivery_mesh ON document_delivery (mesh_message_id) WHERE mesh_message_id <> '';
