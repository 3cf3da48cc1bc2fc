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

-- Current usage per subscription × period × operation × meter, maintained with the index
-- (same transaction) and rebuilt with it. `sum` and `max` are decimal strings.
CREATE TABLE usage_aggregates (
    subscription_id TEXT NOT NULL,
    log TEXT NOT NULL,
    period TEXT NOT NULL CHECK (period IN ('day', 'month')),
    period_start TIMESTAMPTZ NOT NULL,
    operation_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    count BIGINT NOT NULL,
    sum TEXT,
    max TEXT,
    PRIMARY KEY (subscription_id, log, period, period_start, operation_id, meter)
);
-- Distinct values seen per aggregate, for unique counts.
CREATE TABLE usage_unique (
    subscription_id TEXT NOT NULL,
    log TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    operation_id TEXT NOT NULL,
    meter TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (subscription_id, log, period, period_start, operation_id, meter, value)
);
