-- Notices of new term sheet versions to subscribers (kept in step across backends).
-- A notice is the event the portal and webhooks will announce; the housekeeping job
-- resolves it when its notice period ends: the subscription moves to the new version or
-- is suspended, as the accepted sheet's `notice.on_expiry` says.
CREATE TABLE notices (
    id TEXT NOT NULL PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    consumer_org_id TEXT NOT NULL REFERENCES orgs (id),
    provider_org_id TEXT NOT NULL REFERENCES orgs (id),
    plan_id TEXT NOT NULL REFERENCES plans (id),
    from_sha256 TEXT,
    to_terms_id TEXT NOT NULL REFERENCES term_sheets (id),
    to_sha256 TEXT NOT NULL,
    on_expiry TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    ends_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ,
    resolution TEXT
);
CREATE INDEX notices_open ON notices (resolved_at, ends_at);
CREATE INDEX notices_subscription ON notices (subscription_id);
