-- OAuth 2.0 clients of apps (client credentials grant). A client secret is never stored:
-- only its HMAC-SHA256 under the marketplace's pepper.
CREATE TABLE oauth_clients (
    id TEXT NOT NULL PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    name TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    secret_hash TEXT UNIQUE,
    scopes JSONB NOT NULL,
    jwks JSONB,
    tls_subject TEXT,
    tls_thumbprint TEXT,
    token_lifetime_seconds BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    revision BIGINT NOT NULL
);
CREATE INDEX oauth_clients_app ON oauth_clients (app_id);
-- Access tokens revoked before their expiry (RFC 7009), kept until they expire.
CREATE TABLE revoked_tokens (
    jti TEXT NOT NULL PRIMARY KEY,
    client_id TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL
);
