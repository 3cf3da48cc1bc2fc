-- Billing (issue 7). Kept in step with ../postgres/0015_billing.sql.
-- Drafts are not stored: the upcoming invoice is rated on demand from the ledger. What is
-- stored is final: finalized invoices (signed, numbered without gaps per issuer and
-- mode), credit notes, payouts and wallet movements. Amounts are decimal strings.

-- A test clock (test mode only): frozen time that billing of the subscriptions attached
-- to it reads instead of the wall clock, moved forward by the API.
CREATE TABLE test_clocks (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    frozen_time TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL
);
CREATE INDEX test_clocks_org ON test_clocks (org_id);

-- Where billing starts (the test clock's time when one is attached) and the clock.
ALTER TABLE subscriptions ADD COLUMN billing_anchor TIMESTAMPTZ;
ALTER TABLE subscriptions ADD COLUMN test_clock_id TEXT REFERENCES test_clocks (id);

-- A customer's billing settings: the tax rates of its jurisdiction (no tax engine).
CREATE TABLE billing_accounts (
    org_id TEXT NOT NULL PRIMARY KEY REFERENCES orgs (id),
    jurisdiction TEXT,
    tax_rates JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL
);

-- Prepaid credit: the balance of (org, mode, currency) is the sum of its entries.
CREATE TABLE wallet_entries (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    currency TEXT NOT NULL,
    amount TEXT NOT NULL,
    reason TEXT NOT NULL,
    reference TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX wallet_entries_org ON wallet_entries (org_id, mode, currency);

-- Gap-free numbering: the next number of each issuer, taken in the finalizing
-- transaction (writes are serialised), so a number is used iff its document committed.
CREATE TABLE billing_sequences (
    issuer_org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    next BIGINT NOT NULL,
    PRIMARY KEY (issuer_org_id, mode, kind)
);

CREATE TABLE invoices (
    id TEXT NOT NULL PRIMARY KEY,
    issuer_org_id TEXT NOT NULL REFERENCES orgs (id),
    customer_org_id TEXT NOT NULL REFERENCES orgs (id),
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    mode TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    kind TEXT NOT NULL CHECK (kind IN ('opening', 'period')),
    period_start TIMESTAMPTZ NOT NULL,
    period_end TIMESTAMPTZ NOT NULL,
    seq BIGINT NOT NULL,
    number TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('finalized', 'paid', 'void')),
    currency TEXT NOT NULL,
    total TEXT NOT NULL,
    amount_due TEXT NOT NULL,
    log TEXT NOT NULL,
    checkpoint_size BIGINT NOT NULL,
    document JSONB NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    finalized_at TIMESTAMPTZ NOT NULL,
    status_at TIMESTAMPTZ NOT NULL,
    revision BIGINT NOT NULL,
    UNIQUE (issuer_org_id, mode, seq),
    UNIQUE (subscription_id, kind, period_start)
);
CREATE INDEX invoices_customer ON invoices (customer_org_id);
CREATE INDEX invoices_subscription ON invoices (subscription_id, period_start);

CREATE TABLE credit_notes (
    id TEXT NOT NULL PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    issuer_org_id TEXT NOT NULL REFERENCES orgs (id),
    customer_org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL,
    seq BIGINT NOT NULL,
    number TEXT NOT NULL,
    amount TEXT NOT NULL,
    document JSONB NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    UNIQUE (issuer_org_id, mode, seq)
);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);

CREATE TABLE payouts (
    id TEXT NOT NULL PRIMARY KEY,
    provider_org_id TEXT NOT NULL REFERENCES orgs (id),
    mode TEXT NOT NULL,
    currency TEXT NOT NULL,
    period_start TIMESTAMPTZ NOT NULL,
    period_end TIMESTAMPTZ NOT NULL,
    net_payable TEXT NOT NULL,
    document JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (provider_org_id, mode, currency, period_start, period_end)
);

-- A finalized document never changes: only an invoice's status (paid, void) moves.
CREATE TRIGGER invoices_document_immutable BEFORE UPDATE OF id, issuer_org_id, customer_org_id, subscription_id, mode, kind, period_start, period_end, seq, number, currency, total, amount_due, log, checkpoint_size, document, key_id, signature, finalized_at ON invoices
BEGIN SELECT RAISE(ABORT, 'finalized invoices are immutable'); END;
CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
BEGIN SELECT RAISE(ABORT, 'finalized invoices are immutable'); END;
CREATE TRIGGER credit_notes_no_update BEFORE UPDATE ON credit_notes
BEGIN SELECT RAISE(ABORT, 'credit notes are immutable'); END;
CREATE TRIGGER credit_notes_no_delete BEFORE DELETE ON credit_notes
BEGIN SELECT RAISE(ABORT, 'credit notes are immutable'); END;

-- Coupons on a subscription (`tollgate_billing::Coupon`), with how many periods each has
-- discounted so far.
CREATE TABLE subscription_coupons (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
    coupon_id TEXT NOT NULL,
    coupon JSONB NOT NULL,
    periods_applied BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscription_id, coupon_id)
);
