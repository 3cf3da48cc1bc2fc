//! Billing's stored state: test clocks, billing accounts (tax rates), wallet entries,
//! gap-free document sequences, finalized invoices, credit notes and payouts. Documents
//! are kept as the JSON that was signed; amounts as decimal strings. Drafts are never
//! stored (they are rated on demand), so every row here is final.

use sqlx::FromRow;
use sqlx::types::Json;
use time::OffsetDateTime;
use tollgate_core::{OrgId, SubscriptionId};

use crate::{Result, StoreError, Tx, on_tx};

fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id {s:?}")))
}

/// A test clock: frozen time for the billing of the test subscriptions attached to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestClock {
    pub id: String,
    pub org_id: OrgId,
    pub name: String,
    pub frozen_time: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub revision: i64,
}

#[derive(FromRow)]
struct TestClockRow {
    id: String,
    org_id: String,
    name: String,
    frozen_time: OffsetDateTime,
    created_at: OffsetDateTime,
    revision: i64,
}

impl TestClockRow {
    fn into_clock(self) -> Result<TestClock> {
        Ok(TestClock {
            id: self.id,
            org_id: parse_id(&self.org_id)?,
            name: self.name,
            frozen_time: self.frozen_time,
            created_at: self.created_at,
            revision: self.revision,
        })
    }
}

/// Where a subscription's billing starts and which test clock, if any, it runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingAnchor {
    pub subscription_id: SubscriptionId,
    /// Billing start when it differs from the subscription's creation (test clocks).
    pub billing_anchor: Option<OffsetDateTime>,
    pub test_clock_id: Option<String>,
    /// When the subscriber asked to cancel at the end of the period.
    pub cancel_requested_at: Option<OffsetDateTime>,
}

/// A customer's billing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingAccount {
    pub org_id: OrgId,
    pub jurisdiction: Option<String>,
    /// `tollgate_billing::TaxRate` values.
    pub tax_rates: serde_json::Value,
    pub updated_at: OffsetDateTime,
    pub revision: i64,
}

#[derive(FromRow)]
struct BillingAccountRow {
    org_id: String,
    jurisdiction: Option<String>,
    tax_rates: Json<serde_json::Value>,
    updated_at: OffsetDateTime,
    revision: i64,
}

/// One movement of prepaid credit (positive: credited; negative: consumed).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WalletEntry {
    pub id: String,
    pub org_id: String,
    pub mode: String,
    pub currency: String,
    /// Decimal string.
    pub amount: String,
    pub reason: String,
    /// The invoice or credit note it came from.
    pub reference: Option<String>,
    pub at: OffsetDateTime,
}

/// A finalized invoice as stored: the signed document and the columns it is found by.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceRecord {
    pub id: String,
    pub issuer_org_id: OrgId,
    pub customer_org_id: OrgId,
    pub subscription_id: SubscriptionId,
    pub mode: String,
    /// `opening` or `period`.
    pub kind: String,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
    pub seq: i64,
    pub number: String,
    /// `finalized`, `paid` or `void`.
    pub status: String,
    pub currency: String,
    pub total: String,
    pub amount_due: String,
    pub log: String,
    pub checkpoint_size: u64,
    pub document: serde_json::Value,
    pub key_id: String,
    pub signature: String,
    pub finalized_at: OffsetDateTime,
    pub status_at: OffsetDateTime,
    pub revision: i64,
}

#[derive(FromRow)]
struct InvoiceRow {
    id: String,
    issuer_org_id: String,
    customer_org_id: String,
    subscription_id: String,
    mode: String,
    kind: String,
    period_start: OffsetDateTime,
    period_end: OffsetDateTime,
    seq: i64,
    number: String,
    status: String,
    currency: String,
    total: String,
    amount_due: String,
    log: String,
    checkpoint_size: i64,
    document: Json<serde_json::Value>,
    key_id: String,
    signature: String,
    finalized_at: OffsetDateTime,
    status_at: OffsetDateTime,
    revision: i64,
}

impl InvoiceRow {
    fn into_record(self) -> Result<InvoiceRecord> {
        Ok(InvoiceRecord {
            id: self.id,
            issuer_org_id: parse_id(&self.issuer_org_id)?,
            customer_org_id: parse_id(&self.customer_org_id)?,
            subscription_id: parse_id(&self.subscription_id)?,
            mode: self.mode,
            kind: self.kind,
            period_start: self.period_start,
            period_end: self.period_end,
            seq: self.seq,
            number: self.number,
            status: self.status,
            currency: self.currency,
            total: self.total,
            amount_due: self.amount_due,
            log: self.log,
            checkpoint_size: u64::try_from(self.checkpoint_size).unwrap_or(0),
            document: self.document.0,
            key_id: self.key_id,
            signature: self.signature,
            finalized_at: self.finalized_at,
            status_at: self.status_at,
            revision: self.revision,
        })
    }
}

/// A credit note as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditNoteRecord {
    pub id: String,
    pub invoice_id: String,
    pub issuer_org_id: OrgId,
    pub customer_org_id: OrgId,
    pub mode: String,
    pub seq: i64,
    pub number: String,
    pub amount: String,
    pub document: serde_json::Value,
    pub key_id: String,
    pub signature: String,
    pub issued_at: OffsetDateTime,
}

#[derive(FromRow)]
struct CreditNoteRow {
    id: String,
    invoice_id: String,
    issuer_org_id: String,
    customer_org_id: String,
    mode: String,
    seq: i64,
    number: String,
    amount: String,
    document: Json<serde_json::Value>,
    key_id: String,
    signature: String,
    issued_at: OffsetDateTime,
}

impl CreditNoteRow {
    fn into_record(self) -> Result<CreditNoteRecord> {
        Ok(CreditNoteRecord {
            id: self.id,
            invoice_id: self.invoice_id,
            issuer_org_id: parse_id(&self.issuer_org_id)?,
            customer_org_id: parse_id(&self.customer_org_id)?,
            mode: self.mode,
            seq: self.seq,
            number: self.number,
            amount: self.amount,
            document: self.document.0,
            key_id: self.key_id,
            signature: self.signature,
            issued_at: self.issued_at,
        })
    }
}

/// A provider's payout statement as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PayoutRecord {
    pub id: String,
    pub provider_org_id: OrgId,
    pub mode: String,
    pub currency: String,
    pub period_start: OffsetDateTime,
    pub period_end: OffsetDateTime,
    pub net_payable: String,
    pub document: serde_json::Value,
    pub created_at: OffsetDateTime,
}

#[derive(FromRow)]
struct PayoutRow {
    id: String,
    provider_org_id: String,
    mode: String,
    currency: String,
    period_start: OffsetDateTime,
    period_end: OffsetDateTime,
    net_payable: String,
    document: Json<serde_json::Value>,
    created_at: OffsetDateTime,
}

impl PayoutRow {
    fn into_record(self) -> Result<PayoutRecord> {
        Ok(PayoutRecord {
            id: self.id,
            provider_org_id: parse_id(&self.provider_org_id)?,
            mode: self.mode,
            currency: self.currency,
            period_start: self.period_start,
            period_end: self.period_end,
            net_payable: self.net_payable,
            document: self.document.0,
            created_at: self.created_at,
        })
    }
}

/// Which invoices a list shows.
#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    /// Invoices whose issuer or customer is one of these orgs (`None`: all).
    pub orgs: Option<Vec<OrgId>>,
    pub subscription_id: Option<SubscriptionId>,
    pub status: Option<String>,
    pub mode: Option<String>,
    /// Keyset cursor: ids after this one.
    pub after: Option<String>,
    pub limit: i64,
}

impl Tx {
    // ------------------------------------------------------------ test clocks

    pub async fn insert_test_clock(&mut self, c: &TestClock) -> Result<()> {
        on_tx!(self, |conn| {
            sqlx::query(
            "INSERT INTO test_clocks (id, org_id, name, frozen_time, created_at, revision) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&c.id)
        .bind(c.org_id.to_string())
        .bind(&c.name)
        .bind(c.frozen_time)
        .bind(c.created_at)
        .bind(c.revision)
        .execute(conn)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_test_clock(&mut self, id: &str) -> Result<Option<TestClock>> {
        let r: Option<TestClockRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM test_clocks WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        r.map(TestClockRow::into_clock).transpose()
    }

    /// Moves a clock to `to`, if it is still at `expected_revision`.
    pub async fn advance_test_clock(
        &mut self,
        id: &str,
        to: OffsetDateTime,
        expected_revision: i64,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE test_clocks SET frozen_time = $1, revision = revision + 1 WHERE id = $2 AND revision = $3"
        )
        .bind(to)
        .bind(id)
        .bind(expected_revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::Stale);
        }
        Ok(())
    }

    /// Every clock's frozen time by subscription attached to it.
    pub async fn clocked_subscriptions(
        &mut self,
    ) -> Result<Vec<(SubscriptionId, String, OffsetDateTime)>> {
        let rows: Vec<(String, String, OffsetDateTime)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT s.id, c.id, c.frozen_time FROM subscriptions s JOIN test_clocks c ON c.id = s.test_clock_id"
        )
        .fetch_all(c)
        .await?
        });
        rows.into_iter()
            .map(|(s, c, t)| Ok((parse_id(&s)?, c, t)))
            .collect()
    }

    /// Attaches a test clock to a subscription; its billing starts at `anchor`.
    pub async fn attach_test_clock(
        &mut self,
        sub: SubscriptionId,
        clock: &str,
        anchor: OffsetDateTime,
    ) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE subscriptions SET test_clock_id = $1, billing_anchor = $2 WHERE id = $3"
        )
        .bind(clock)
        .bind(anchor)
        .bind(sub.to_string())
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The billing anchor and clock of subscriptions that have accepted terms (the
    /// billable ones), optionally only those on one clock.
    pub async fn billing_anchors(&mut self, clock: Option<&str>) -> Result<Vec<BillingAnchor>> {
        type Row = (
            String,
            Option<OffsetDateTime>,
            Option<String>,
            Option<OffsetDateTime>,
        );
        let rows: Vec<Row> = on_tx!(self, |c| {
            match clock {
                Some(k) => sqlx::query_as(
                    "SELECT id, billing_anchor, test_clock_id, cancel_requested_at FROM subscriptions WHERE terms_sha256 IS NOT NULL AND test_clock_id = $1 ORDER BY id",
                )
                .bind(k)
                .fetch_all(c)
                .await?,
                None => sqlx::query_as(
                    "SELECT id, billing_anchor, test_clock_id, cancel_requested_at FROM subscriptions WHERE terms_sha256 IS NOT NULL ORDER BY id",
                )
                .fetch_all(c)
                .await?,
            }
        });
        rows.into_iter()
            .map(|(s, a, k, x)| {
                Ok(BillingAnchor {
                    subscription_id: parse_id(&s)?,
                    billing_anchor: a,
                    test_clock_id: k,
                    cancel_requested_at: x,
                })
            })
            .collect()
    }

    /// One subscription's billing anchor and clock.
    pub async fn billing_anchor(&mut self, sub: SubscriptionId) -> Result<Option<BillingAnchor>> {
        type Row = (
            Option<OffsetDateTime>,
            Option<String>,
            Option<OffsetDateTime>,
        );
        let row: Option<Row> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT billing_anchor, test_clock_id, cancel_requested_at FROM subscriptions WHERE id = $1"
        )
        .bind(sub.to_string())
        .fetch_optional(c)
        .await?
        });
        Ok(row.map(|(a, k, x)| BillingAnchor {
            subscription_id: sub,
            billing_anchor: a,
            test_clock_id: k,
            cancel_requested_at: x,
        }))
    }

    /// Records (or, with `None`, withdraws) a cancellation at the end of the period.
    pub async fn request_cancellation(
        &mut self,
        sub: SubscriptionId,
        at: Option<OffsetDateTime>,
    ) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE subscriptions SET cancel_requested_at = $1 WHERE id = $2"
        )
        .bind(at)
        .bind(sub.to_string())
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Moves a subscription to another plan (the caller updates the rest of the row
    /// with [`Tx::update_subscription`] in the same transaction).
    pub async fn set_subscription_plan(
        &mut self,
        sub: SubscriptionId,
        plan: tollgate_core::PlanId,
    ) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE subscriptions SET plan_id = $1 WHERE id = $2"
        )
        .bind(plan.to_string())
        .bind(sub.to_string())
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    // ------------------------------------------------------------ price books

    /// Stores a price book version (its hash and content never change).
    pub async fn insert_price_book(
        &mut self,
        org: OrgId,
        sha256: &str,
        book_id: &str,
        version: &str,
        document: &serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO price_books (org_id, sha256, book_id, version, document, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(org.to_string())
        .bind(sha256)
        .bind(book_id)
        .bind(version)
        .bind(Json(document))
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// A price book of `org` by hash: `(book id, version, document)`.
    pub async fn get_price_book(
        &mut self,
        org: OrgId,
        sha256: &str,
    ) -> Result<Option<(String, String, serde_json::Value)>> {
        let r: Option<(String, String, Json<serde_json::Value>)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT book_id, version, document FROM price_books WHERE org_id = $1 AND sha256 = $2"
        )
        .bind(org.to_string())
        .bind(sha256)
        .fetch_optional(c)
        .await?
        });
        Ok(r.map(|(i, v, d)| (i, v, d.0)))
    }

    /// An org's price books: `(sha256, book id, version, created)`, by id then version.
    pub async fn list_price_books(
        &mut self,
        org: OrgId,
    ) -> Result<Vec<(String, String, String, OffsetDateTime)>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT sha256, book_id, version, created_at FROM price_books WHERE org_id = $1 ORDER BY book_id, created_at"
        )
        .bind(org.to_string())
        .fetch_all(c)
        .await?
        }))
    }

    // ------------------------------------------------------------ coupons

    /// Puts a coupon on a subscription (a second coupon with the same id is a duplicate).
    pub async fn insert_coupon(
        &mut self,
        sub: SubscriptionId,
        coupon_id: &str,
        coupon: &serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO subscription_coupons (subscription_id, coupon_id, coupon, periods_applied, created_at) VALUES ($1, $2, $3, 0, $4)"
        )
        .bind(sub.to_string())
        .bind(coupon_id)
        .bind(Json(coupon))
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// A subscription's coupons and the periods each has discounted, oldest first.
    pub async fn subscription_coupons(
        &mut self,
        sub: SubscriptionId,
    ) -> Result<Vec<(serde_json::Value, u32)>> {
        let rows: Vec<(Json<serde_json::Value>, i64)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT coupon, periods_applied FROM subscription_coupons WHERE subscription_id = $1 ORDER BY created_at, coupon_id"
        )
        .bind(sub.to_string())
        .fetch_all(c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(c, n)| (c.0, u32::try_from(n).unwrap_or(u32::MAX)))
            .collect())
    }

    /// Counts one more period discounted by a coupon.
    pub async fn coupon_applied(&mut self, sub: SubscriptionId, coupon_id: &str) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "UPDATE subscription_coupons SET periods_applied = periods_applied + 1 WHERE subscription_id = $1 AND coupon_id = $2"
        )
        .bind(sub.to_string())
        .bind(coupon_id)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    // ------------------------------------------------------------ accounts

    pub async fn get_billing_account(&mut self, org: OrgId) -> Result<Option<BillingAccount>> {
        let r: Option<BillingAccountRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM billing_accounts WHERE org_id = $1"
        )
        .bind(org.to_string())
        .fetch_optional(c)
        .await?);
        r.map(|r| {
            Ok(BillingAccount {
                org_id: parse_id(&r.org_id)?,
                jurisdiction: r.jurisdiction,
                tax_rates: r.tax_rates.0,
                updated_at: r.updated_at,
                revision: r.revision,
            })
        })
        .transpose()
    }

    /// Creates or replaces an org's billing settings (revision checked when it exists).
    pub async fn put_billing_account(
        &mut self,
        a: &BillingAccount,
        expected_revision: Option<i64>,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            match expected_revision {
            None => sqlx::query(
                "INSERT INTO billing_accounts (org_id, jurisdiction, tax_rates, updated_at, revision) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(a.org_id.to_string())
            .bind(&a.jurisdiction)
            .bind(Json(&a.tax_rates))
            .bind(a.updated_at)
            .bind(a.revision)
            .execute(c)
            .await?
            .rows_affected(),
            Some(rev) => sqlx::query(
                "UPDATE billing_accounts SET jurisdiction = $1, tax_rates = $2, updated_at = $3, revision = $4 WHERE org_id = $5 AND revision = $6",
            )
            .bind(&a.jurisdiction)
            .bind(Json(&a.tax_rates))
            .bind(a.updated_at)
            .bind(a.revision)
            .bind(a.org_id.to_string())
            .bind(rev)
            .execute(c)
            .await?
            .rows_affected(),
        }
        });
        if n == 0 {
            return Err(StoreError::Stale);
        }
        Ok(())
    }

    // ------------------------------------------------------------ wallet

    pub async fn insert_wallet_entry(&mut self, e: &WalletEntry) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO wallet_entries (id, org_id, mode, currency, amount, reason, reference, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(&e.id)
        .bind(&e.org_id)
        .bind(&e.mode)
        .bind(&e.currency)
        .bind(&e.amount)
        .bind(&e.reason)
        .bind(&e.reference)
        .bind(e.at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// An org's wallet movements in one mode (and currency), oldest first.
    pub async fn wallet_entries(
        &mut self,
        org: OrgId,
        mode: &str,
        currency: Option<&str>,
    ) -> Result<Vec<WalletEntry>> {
        let rows: Vec<WalletEntry> = on_tx!(self, |c| {
            match currency {
            Some(cur) => sqlx::query_as(
                "SELECT * FROM wallet_entries WHERE org_id = $1 AND mode = $2 AND currency = $3 ORDER BY at, id",
            )
            .bind(org.to_string())
            .bind(mode)
            .bind(cur)
            .fetch_all(c)
            .await?,
            None => sqlx::query_as(
                "SELECT * FROM wallet_entries WHERE org_id = $1 AND mode = $2 ORDER BY at, id",
            )
            .bind(org.to_string())
            .bind(mode)
            .fetch_all(c)
            .await?,
        }
        });
        Ok(rows)
    }

    // ------------------------------------------------------------ numbering

    /// Takes the next number of an issuer's sequence (1, 2, 3, …). Called inside the
    /// transaction that stores the numbered document: writes are serialised and a
    /// rolled-back transaction gives its number back, so numbers have no gaps.
    pub async fn next_document_seq(
        &mut self,
        issuer: OrgId,
        mode: &str,
        kind: &str,
    ) -> Result<i64> {
        let current: Option<(i64,)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT next FROM billing_sequences WHERE issuer_org_id = $1 AND mode = $2 AND kind = $3"
        )
        .bind(issuer.to_string())
        .bind(mode)
        .bind(kind)
        .fetch_optional(c)
        .await?
        });
        let seq = current.map_or(1, |r| r.0);
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO billing_sequences (issuer_org_id, mode, kind, next) VALUES ($1, $2, $3, $4)
             ON CONFLICT (issuer_org_id, mode, kind) DO UPDATE SET next = excluded.next"
        )
        .bind(issuer.to_string())
        .bind(mode)
        .bind(kind)
        .bind(seq + 1)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(seq)
    }

    /// Sets an issuer's next number (after numbers were handed out in memory inside the
    /// same transaction, starting from [`Tx::next_document_seq`]).
    pub async fn set_document_seq(
        &mut self,
        issuer: OrgId,
        mode: &str,
        kind: &str,
        next: i64,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "UPDATE billing_sequences SET next = $1 WHERE issuer_org_id = $2 AND mode = $3 AND kind = $4"
        )
        .bind(next)
        .bind(issuer.to_string())
        .bind(mode)
        .bind(kind)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    // ------------------------------------------------------------ invoices

    pub async fn insert_invoice(&mut self, i: &InvoiceRecord) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO invoices (id, issuer_org_id, customer_org_id, subscription_id, mode, kind, period_start, period_end, seq, number, status, currency, total, amount_due, log, checkpoint_size, document, key_id, signature, finalized_at, status_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        )
        .bind(&i.id)
        .bind(i.issuer_org_id.to_string())
        .bind(i.customer_org_id.to_string())
        .bind(i.subscription_id.to_string())
        .bind(&i.mode)
        .bind(&i.kind)
        .bind(i.period_start)
        .bind(i.period_end)
        .bind(i.seq)
        .bind(&i.number)
        .bind(&i.status)
        .bind(&i.currency)
        .bind(&i.total)
        .bind(&i.amount_due)
        .bind(&i.log)
        .bind(i64::try_from(i.checkpoint_size).unwrap_or(i64::MAX))
        .bind(Json(&i.document))
        .bind(&i.key_id)
        .bind(&i.signature)
        .bind(i.finalized_at)
        .bind(i.status_at)
        .bind(i.revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_invoice(&mut self, id: &str) -> Result<Option<InvoiceRecord>> {
        let r: Option<InvoiceRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM invoices WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        r.map(InvoiceRow::into_record).transpose()
    }

    /// A subscription's invoices, oldest period first.
    pub async fn subscription_invoices(
        &mut self,
        sub: SubscriptionId,
    ) -> Result<Vec<InvoiceRecord>> {
        let rows: Vec<InvoiceRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM invoices WHERE subscription_id = $1 ORDER BY period_start, kind, seq"
        )
        .bind(sub.to_string())
        .fetch_all(c)
        .await?);
        rows.into_iter().map(InvoiceRow::into_record).collect()
    }

    /// Invoices in id order after the filter's cursor, at most `limit + 1` (the extra
    /// one tells the caller there is a next page).
    pub async fn list_invoices(&mut self, f: &InvoiceFilter) -> Result<Vec<InvoiceRecord>> {
        let rows: Vec<InvoiceRow> = on_tx!(self, |c| {
            let mut qb = sqlx::QueryBuilder::new("SELECT * FROM invoices WHERE 1 = 1");
            if let Some(orgs) = &f.orgs {
                if orgs.is_empty() {
                    qb.push(" AND 1 = 0");
                } else {
                    qb.push(" AND (issuer_org_id IN (");
                    let mut sep = qb.separated(", ");
                    for o in orgs {
                        sep.push_bind(o.to_string());
                    }
                    qb.push(") OR customer_org_id IN (");
                    let mut sep = qb.separated(", ");
                    for o in orgs {
                        sep.push_bind(o.to_string());
                    }
                    qb.push("))");
                }
            }
            if let Some(s) = f.subscription_id {
                qb.push(" AND subscription_id = ").push_bind(s.to_string());
            }
            if let Some(s) = &f.status {
                qb.push(" AND status = ").push_bind(s.clone());
            }
            if let Some(m) = &f.mode {
                qb.push(" AND mode = ").push_bind(m.clone());
            }
            if let Some(a) = &f.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(f.limit.max(1) + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        rows.into_iter().map(InvoiceRow::into_record).collect()
    }

    /// The invoices of several subscriptions, by subscription.
    pub async fn invoices_of(
        &mut self,
        ids: &[SubscriptionId],
    ) -> Result<std::collections::HashMap<SubscriptionId, Vec<InvoiceRecord>>> {
        let mut out: std::collections::HashMap<SubscriptionId, Vec<InvoiceRecord>> =
            std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<InvoiceRow> = on_tx!(self, |c| {
            let mut qb =
                sqlx::QueryBuilder::new("SELECT * FROM invoices WHERE subscription_id IN (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(id.to_string());
            }
            qb.push(") ORDER BY period_start, kind, seq");
            qb.build_query_as().fetch_all(c).await?
        });
        for r in rows {
            let r = r.into_record()?;
            out.entry(r.subscription_id).or_default().push(r);
        }
        Ok(out)
    }

    /// The coupons of several subscriptions, by subscription (as
    /// [`Tx::subscription_coupons`] gives them).
    pub async fn coupons_of(
        &mut self,
        ids: &[SubscriptionId],
    ) -> Result<std::collections::HashMap<SubscriptionId, Vec<(serde_json::Value, u32)>>> {
        let mut out: std::collections::HashMap<SubscriptionId, Vec<(serde_json::Value, u32)>> =
            std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<(String, Json<serde_json::Value>, i64)> = on_tx!(self, |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT subscription_id, coupon, periods_applied FROM subscription_coupons WHERE subscription_id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(id.to_string());
            }
            qb.push(") ORDER BY created_at, coupon_id");
            qb.build_query_as().fetch_all(c).await?
        });
        for (s, coupon, n) in rows {
            out.entry(parse_id(&s)?)
                .or_default()
                .push((coupon.0, u32::try_from(n).unwrap_or(u32::MAX)));
        }
        Ok(out)
    }

    /// Moves an invoice to `paid` or `void` (from `finalized` only).
    pub async fn set_invoice_status(
        &mut self,
        id: &str,
        status: &str,
        at: OffsetDateTime,
        expected_revision: i64,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE invoices SET status = $1, status_at = $2, revision = revision + 1 WHERE id = $3 AND revision = $4 AND status = 'finalized'"
        )
        .bind(status)
        .bind(at)
        .bind(id)
        .bind(expected_revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 0 {
            return Err(StoreError::Stale);
        }
        Ok(())
    }

    /// Invoices of one issuer and mode whose period lies in `[from, to)`, not void.
    pub async fn issuer_invoices_in(
        &mut self,
        issuer: OrgId,
        mode: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<InvoiceRecord>> {
        let rows: Vec<InvoiceRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT * FROM invoices WHERE issuer_org_id = $1 AND mode = $2 AND period_start >= $3 AND period_start < $4 AND status <> 'void' ORDER BY seq"
        )
        .bind(issuer.to_string())
        .bind(mode)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await?
        });
        rows.into_iter().map(InvoiceRow::into_record).collect()
    }

    // ------------------------------------------------------------ credit notes

    pub async fn insert_credit_note(&mut self, n: &CreditNoteRecord) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO credit_notes (id, invoice_id, issuer_org_id, customer_org_id, mode, seq, number, amount, document, key_id, signature, issued_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )
        .bind(&n.id)
        .bind(&n.invoice_id)
        .bind(n.issuer_org_id.to_string())
        .bind(n.customer_org_id.to_string())
        .bind(&n.mode)
        .bind(n.seq)
        .bind(&n.number)
        .bind(&n.amount)
        .bind(Json(&n.document))
        .bind(&n.key_id)
        .bind(&n.signature)
        .bind(n.issued_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn invoice_credit_notes(&mut self, invoice: &str) -> Result<Vec<CreditNoteRecord>> {
        let rows: Vec<CreditNoteRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM credit_notes WHERE invoice_id = $1 ORDER BY seq"
        )
        .bind(invoice)
        .fetch_all(c)
        .await?);
        rows.into_iter().map(CreditNoteRow::into_record).collect()
    }

    pub async fn get_credit_note(&mut self, id: &str) -> Result<Option<CreditNoteRecord>> {
        let r: Option<CreditNoteRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM credit_notes WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        r.map(CreditNoteRow::into_record).transpose()
    }

    // ------------------------------------------------------------ payouts

    pub async fn insert_payout(&mut self, p: &PayoutRecord) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO payouts (id, provider_org_id, mode, currency, period_start, period_end, net_payable, document, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(&p.id)
        .bind(p.provider_org_id.to_string())
        .bind(&p.mode)
        .bind(&p.currency)
        .bind(p.period_start)
        .bind(p.period_end)
        .bind(&p.net_payable)
        .bind(Json(&p.document))
        .bind(p.created_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_payout(&mut self, id: &str) -> Result<Option<PayoutRecord>> {
        let r: Option<PayoutRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM payouts WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        r.map(PayoutRow::into_record).transpose()
    }

    /// Payouts of providers among `orgs` (`None`: all), newest period first.
    pub async fn list_payouts(&mut self, orgs: Option<&[OrgId]>) -> Result<Vec<PayoutRecord>> {
        let rows: Vec<PayoutRow> = on_tx!(self, |c| {
            let mut qb = sqlx::QueryBuilder::new("SELECT * FROM payouts WHERE 1 = 1");
            if let Some(orgs) = orgs {
                if orgs.is_empty() {
                    qb.push(" AND 1 = 0");
                } else {
                    qb.push(" AND provider_org_id IN (");
                    let mut sep = qb.separated(", ");
                    for o in orgs {
                        sep.push_bind(o.to_string());
                    }
                    qb.push(")");
                }
            }
            qb.push(" ORDER BY period_start DESC, id");
            qb.build_query_as().fetch_all(c).await?
        });
        rows.into_iter().map(PayoutRow::into_record).collect()
    }

    /// Whether a payout for this provider, mode, currency and period exists.
    pub async fn payout_exists(
        &mut self,
        provider: OrgId,
        mode: &str,
        currency: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<bool> {
        let r: Option<(String,)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT id FROM payouts WHERE provider_org_id = $1 AND mode = $2 AND currency = $3 AND period_start = $4 AND period_end = $5"
        )
        .bind(provider.to_string())
        .bind(mode)
        .bind(currency)
        .bind(from)
        .bind(to)
        .fetch_optional(c)
        .await?
        });
        Ok(r.is_some())
    }

    /// Credit notes of one issuer and mode issued in `[from, to)`.
    pub async fn issuer_credit_notes_in(
        &mut self,
        issuer: OrgId,
        mode: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<CreditNoteRecord>> {
        let rows: Vec<CreditNoteRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT * FROM credit_notes WHERE issuer_org_id = $1 AND mode = $2 AND issued_at >= $3 AND issued_at < $4 ORDER BY seq"
        )
        .bind(issuer.to_string())
        .bind(mode)
        .bind(from)
        .bind(to)
        .fetch_all(c)
        .await?
        });
        rows.into_iter().map(CreditNoteRow::into_record).collect()
    }
}
