-- HMAC signing keys (RFC 9421 `hmac-sha256`): the marketplace generates the shared secret
-- and keeps it only sealed by the keyring's data-encryption key (AAD
-- `tollgate/signing_keys/secret/<id>`). Such keys have no public key; every key has
-- exactly one of the two.
-- SQLite cannot drop a NOT NULL constraint in place, so the table is rebuilt (no other
-- table refers to it). The blob column is declared BYTEA, as on PostgreSQL, so the
-- schema comparison sees one type; SQLite stores blobs as they are under any affinity.
CREATE TABLE signing_keys_new (
    id TEXT NOT NULL PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name TEXT NOT NULL,
    alg TEXT NOT NULL,
    public_key_pem TEXT,
    scopes JSONB NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    revision BIGINT NOT NULL,
    secret_sealed BYTEA,
    CONSTRAINT signing_keys_one_key CHECK ((public_key_pem IS NULL) <> (secret_sealed IS NULL))
);
INSERT INTO signing_keys_new (id, app_id, org_id, mode, name, alg, public_key_pem, scopes,
                              created_by, created_at, expires_at, revoked_at, revision)
SELECT id, app_id, org_id, mode, name, alg, public_key_pem, scopes,
       created_by, created_at, expires_at, revoked_at, revision
FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE INDEX signing_keys_app ON signing_keys (app_id);
