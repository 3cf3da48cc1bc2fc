-- Public keys that verify signed records kept here (kept in step across backends): this
-- marketplace's own signing keys are in `keys`; keys of records imported from another
-- marketplace (acceptances) are kept here so those records stay verifiable.
CREATE TABLE verification_keys (
    key_id TEXT NOT NULL PRIMARY KEY,
    purpose TEXT NOT NULL,
    public_key TEXT NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL
);
