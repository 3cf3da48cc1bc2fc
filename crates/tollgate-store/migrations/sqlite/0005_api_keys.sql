-- Consumer API keys (kept in step across backends). The secret is never stored: only its
-- HMAC-SHA256 under the marketplace's pepper, which is also the lookup key.
CREATE TABLE api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes JSONB NOT NULL,
    operations JSONB,
    ip_allowlist JSONB NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    revision BIGINT NOT NULL
);
CREATE INDEX api_keys_app ON api_keys (app_id);
