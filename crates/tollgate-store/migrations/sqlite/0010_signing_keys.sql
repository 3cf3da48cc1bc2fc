-- Public keys apps registered to sign requests (RFC 9421); the id is the signature keyid.
CREATE TABLE signing_keys (
    id TEXT NOT NULL PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name TEXT NOT NULL,
    alg TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    scopes JSONB NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    revision BIGINT NOT NULL
);
CREATE INDEX signing_keys_app ON signing_keys (app_id);
