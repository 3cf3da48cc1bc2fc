-- The usage ledger's lookup index: which log entry holds which event. Derived data: the
-- ledger's segment files are the source of truth, this table is filled in batches off the
-- append path and can be rebuilt from them. (source, event_id) is the events'
-- idempotency key (CloudEvents): unique across both logs.
CREATE TABLE usage_index (
    log TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    consumer_org_id TEXT NOT NULL,
    provider_org_id TEXT NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (log, leaf_index)
);
CREATE UNIQUE INDEX usage_index_event ON usage_index (source, event_id);
CREATE INDEX usage_index_subscription ON usage_index (subscription_id, event_time);
