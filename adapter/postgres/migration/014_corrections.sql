-- 014_corrections: a contact or an outcome measure recorded wrongly is
-- amended or withdrawn as entered in error, never deleted
-- (docs/domain.md#corrections).
--
-- amended_at is when the entry was last amended (NULL: never);
-- withdrawn_at when it was withdrawn as entered in error (NULL: it stands),
-- withdrawn_reason why (free text, never shared with the GP record).
-- Reports and counts read only the entries that stand. Forward only.
ALTER TABLE contact ADD COLUMN amended_at timestamptz;
ALTER TABLE contact ADD COLUMN withdrawn_at timestamptz;
ALTER TABLE contact ADD COLUMN withdrawn_reason text NOT NULL DEFAULT '';
ALTER TABLE measure ADD COLUMN amended_at timestamptz;
ALTER TABLE measure ADD COLUMN withdrawn_at timestamptz;
ALTER TABLE measure ADD COLUMN withdrawn_reason text NOT NULL DEFAULT '';
