-- Outbound webhooks (Standard Webhooks). Kept in step with ../postgres/0016_webhooks.sql.
--
-- An org's endpoints carry their signing secret only sealed by the keyring's
-- data-encryption key (AAD `tollgate/webhook_endpoints/secret/<id>`); after a rotation
-- the previous secret keeps signing beside the new one until `previous_secret_expires_at`.
-- Events are written by producers inside their own transaction (the outbox): one
-- `webhook_events` row per (org, event id) holds the exact body every attempt sends, and
-- one `webhook_deliveries` row per matching endpoint tracks its attempts. Deleting an org
-- or an endpoint deletes what hangs off it.
CREATE TABLE webhook_endpoints (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    event_types JSONB NOT NULL,
    secret_sealed BYTEA NOT NULL,
    previous_secret_sealed BYTEA,
    previous_secret_expires_at TIMESTAMPTZ,
    secret_rotated_at TIMESTAMPTZ,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, id);

CREATE TABLE webhook_events (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE TABLE webhook_deliveries (
    id TEXT NOT NULL PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL,
    -- When the next attempt is due (pending only); a worker that takes a delivery moves
    -- it past the attempt's timeout, so a crashed attempt is retried, never lost.
    next_attempt_at TIMESTAMPTZ,
    last_attempt_at TIMESTAMPTZ,
    last_status_code BIGINT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    CONSTRAINT webhook_deliveries_event FOREIGN KEY (org_id, event_id)
        REFERENCES webhook_events (org_id, id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_once UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (org_id, event_id);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt BIGINT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
