-- Terms as code (SQLite). Kept in step with ../postgres/0002_terms.sql.

-- A term sheet version: immutable content addressed by the SHA-256 of its canonical JSON.
CREATE TABLE term_sheets (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    sheet_id TEXT NOT NULL,
    version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    document JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    revision BIGINT NOT NULL,
    UNIQUE (org_id, sheet_id, version),
    UNIQUE (org_id, sha256)
);

-- Which sheet version a plan offers now.
ALTER TABLE plans ADD COLUMN terms_id TEXT REFERENCES term_sheets (id);

-- Which sheet version a subscription accepted and is served under.
ALTER TABLE subscriptions ADD COLUMN terms_sha256 TEXT;

-- Signed, immutable acceptance records.
CREATE TABLE acceptances (
    id TEXT NOT NULL PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    terms_id TEXT NOT NULL REFERENCES term_sheets (id),
    terms_sha256 TEXT NOT NULL,
    record JSONB NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    accepted_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX acceptances_subscription ON acceptances (subscription_id, accepted_at);

CREATE TRIGGER acceptances_no_update BEFORE UPDATE ON acceptances
BEGIN SELECT RAISE(ABORT, 'acceptances are immutable'); END;
CREATE TRIGGER acceptances_no_delete BEFORE DELETE ON acceptances
BEGIN SELECT RAISE(ABORT, 'acceptances are immutable'); END;
