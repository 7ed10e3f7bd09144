-- 019_document_delivery: the MESH side of GP Connect Send Document
-- write-backs (linkbridge.DocumentDelivery, docs/send-document.md#delivery).
-- Forward only: it adds a table and changes no stored value.
--
-- One row per send-document outbox message: the MESH message id and the
-- chunks uploaded (so a restart resumes a chunked send instead of sending
-- the document twice), and the acknowledgements received. Rows outlive the
-- outbox message's deletion by the cleaner: they are small and tell an
-- operator what happened on MESH.
CREATE TABLE document_delivery (
	outbox_id       INTEGER NOT NULL PRIMARY KEY,
	message_id      TEXT    NOT NULL, -- the ITK3 MessageHeader.id
	mesh_message_id TEXT    NOT NULL DEFAULT '',
	chunks_sent     INTEGER NOT NULL DEFAULT 0,
	chunks_total    INTEGER NOT NULL DEFAULT 0,
	state           TEXT    NOT NULL,
	reason          TEXT    NOT NULL DEFAULT '',
	outcome         BLOB,
	sent_at         TEXT    NOT NULL DEFAULT '',
	inf_ack_at      TEXT    NOT NULL DEFAULT '',
	bus_ack_at      TEXT    NOT NULL DEFAULT '',
	updated_at      TEXT    NOT NULL
) STRICT;
CREATE INDEX document_delivery_message ON document_delivery (message_id);
CREATE INDEX document_delivery_mesh ON document_delivery (mesh_message_id) WHERE mesh_message_id != '';
