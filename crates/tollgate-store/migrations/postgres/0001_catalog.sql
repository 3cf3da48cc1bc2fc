-- Catalog and tenancy (PostgreSQL). Kept in step with ../sqlite/0001_catalog.sql: the
-- schema-comparison test fails when the two differ in tables, columns, types or
-- nullability.

CREATE TABLE meta (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    marketplace_role TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE tokens (
    id TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX tokens_user ON tokens (user_id);

CREATE TABLE orgs (
    id TEXT NOT NULL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL
);

CREATE TABLE members (
    org_id TEXT NOT NULL REFERENCES orgs (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE apis (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT NOT NULL,
    base_path TEXT NOT NULL,
    hosts JSONB NOT NULL,
    upstreams JSONB NOT NULL,
    status TEXT NOT NULL,
    sunset TIMESTAMPTZ,
    openapi_doc JSONB,
    openapi_info JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);
CREATE INDEX apis_base_path ON apis (base_path);

CREATE TABLE operations (
    api_id TEXT NOT NULL REFERENCES apis (id),
    operation_id TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    summary TEXT NOT NULL,
    deprecated BOOLEAN NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (api_id, operation_id)
);

CREATE TABLE plans (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    visibility TEXT NOT NULL,
    approval_required BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE plan_apis (
    plan_id TEXT NOT NULL REFERENCES plans (id),
    api_id TEXT NOT NULL REFERENCES apis (id),
    operations JSONB,
    position BIGINT NOT NULL,
    PRIMARY KEY (plan_id, api_id)
);
CREATE INDEX plan_apis_api ON plan_apis (api_id);

CREATE TABLE apps (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE subscriptions (
    id TEXT NOT NULL PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps (id),
    consumer_org_id TEXT NOT NULL REFERENCES orgs (id),
    plan_id TEXT NOT NULL REFERENCES plans (id),
    provider_org_id TEXT NOT NULL REFERENCES orgs (id),
    state TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL
);
CREATE INDEX subscriptions_consumer ON subscriptions (consumer_org_id);
CREATE INDEX subscriptions_provider ON subscriptions (provider_org_id);
CREATE INDEX subscriptions_app ON subscriptions (app_id);

CREATE TABLE subscription_transitions (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    seq BIGINT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscription_id, seq)
);

CREATE TABLE audit_log (
    seq BIGINT NOT NULL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    at TIMESTAMPTZ NOT NULL,
    actor_user_id TEXT NOT NULL,
    actor_email TEXT NOT NULL,
    org_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    before_sha256 TEXT,
    after_sha256 TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, seq);

-- One row: the head of the audit hash chain. Every write transaction locks it first,
-- which serialises mutations (SQLite does anyway) and keeps the chain linear.
CREATE TABLE audit_head (
    id BIGINT NOT NULL PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- The audit log is append-only: the database itself refuses edits and deletions.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE idempotency (
    principal TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    status_code BIGINT,
    response_headers JSONB,
    response_body TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (principal, key)
);

CREATE TABLE keys (
    id TEXT NOT NULL PRIMARY KEY,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    record JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX keys_purpose ON keys (purpose, state);
