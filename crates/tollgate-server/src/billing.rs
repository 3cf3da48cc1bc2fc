//! Billing: subscriptions' usage, read back from the ledger, rated by `tollgate-billing`
//! with the price book of the term sheet each call was served under, into invoices that
//! cite the signed checkpoint they were computed from.
//!
//! # What an invoice proves
//!
//! A period invoice of subscription `s` finalized against checkpoint `(log, S, root)`
//! counts exactly: the entries of `s` in `log` with leaf index `< S` whose time lies in
//! the period, plus — as separate *late usage* lines — entries of earlier periods with
//! leaf index in `[S_prev, S)`, where `S_prev` is the checkpoint size the previous period
//! invoice cited. By induction every entry is counted by exactly one invoice, and a
//! finalized invoice is never edited: usage that arrives after it lands on the next one.
//! `GET /v1/invoices/{id}/proof` hands out those entries with inclusion proofs against
//! the signed checkpoint, and the price books, so anyone can recompute every line.
//!
//! # Drafts, finalization, numbering
//!
//! Drafts are not stored: the upcoming invoice is rated on demand. A period is finalized
//! once its end plus the price book's grace window has passed (by the wall clock, or by
//! the subscription's test clock). Finalizing takes the issuer's next number in the same
//! write transaction that stores the document (writes are serialised; a rollback gives
//! the number back), so numbers have no gaps; the document's RFC 8785 canonical JSON is
//! signed with the keyring's `invoice_signing` key (Ed25519).

use crate::error::ApiError;
use crate::ledger::LedgerLog;
use crate::state::AppState;
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::str::FromStr;
use time::OffsetDateTime;
use tollgate_billing::{
    Cancellation, ChangeKind, Effective, PlanChange, PriceBook, RatedInvoice, RatingInput, Span,
    TaxRate,
};
use tollgate_core::apikey::KeyMode;
use tollgate_core::model::{Subscription, SubscriptionState};
use tollgate_core::usage::{FieldValue, UsageEvent as LedgerEvent};
use tollgate_core::{ErrorCode, OrgId, SubscriptionId};
use tollgate_keyring::KeyPurpose;
use tollgate_store::{InvoiceRecord, Tx};

/// Version of the invoice document format.
pub const INVOICE_FORMAT: u32 = 1;
/// Most periods one close finalizes for one subscription (a clock moved years ahead is
/// closed in several calls).
const MAX_PERIODS_PER_CLOSE: usize = 120;

/// `time` → `jiff`.
pub fn to_ts(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `jiff` → `time`.
pub fn from_ts(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn billing_error(e: tollgate_billing::Error) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed, format!("billing: {e}"))
}

/// The time billing reads for a subscription: its test clock's, else the marketplace's.
pub fn now_for(state: &AppState, sub: SubscriptionId) -> OffsetDateTime {
    state
        .ledger
        .get()
        .and_then(|l| l.clock_time(sub))
        .unwrap_or_else(|| state.now())
}

/// Loads every test clock's time into the ledger (at start, and after clock changes).
pub async fn load_clocks(state: &AppState) -> Result<(), ApiError> {
    let Some(ledger) = state.ledger.get() else {
        return Ok(());
    };
    let mut tx = state.store.read().await?;
    for (sub, _, t) in tx.clocked_subscriptions().await? {
        ledger.set_clock_time(sub, Some(t));
    }
    Ok(())
}

/// Everything billing knows about one subscription.
#[derive(Debug, Clone)]
pub struct Billable {
    pub sub: Subscription,
    /// The plan history as the rater reads it.
    pub history: tollgate_billing::Subscription,
    /// Price books by term sheet hash.
    pub books: BTreeMap<String, PriceBook>,
    /// The book of the sheet accepted first: its cycle sets the periods.
    pub first_book: PriceBook,
    /// The SLA of the current sheet, if it promises one with credits.
    pub sla: Option<tollgate_billing::SlaTerms>,
    pub anchor: OffsetDateTime,
    pub clock: Option<String>,
}

impl Billable {
    pub fn mode(&self) -> &'static str {
        self.sub.mode.as_str()
    }

    fn start(&self) -> Timestamp {
        to_ts(self.anchor)
    }

    /// The billing period containing `at`.
    pub fn period_at(&self, at: Timestamp) -> Result<Span, ApiError> {
        tollgate_billing::billing_period(&self.first_book.billing_cycle, self.start(), at)
            .map_err(billing_error)
    }

    fn next(&self, p: &Span) -> Result<Span, ApiError> {
        tollgate_billing::next_period(&self.first_book.billing_cycle, self.start(), p)
            .map_err(billing_error)
    }

    fn grace(&self) -> SignedDuration {
        SignedDuration::from_hours(i64::from(self.first_book.grace_hours))
    }
}

pub(crate) fn price_book_of(document: &Value, sha: &str) -> Result<Option<PriceBook>, ApiError> {
    if let Some(inline) = document.pointer("/pricing/inline") {
        return PriceBook::from_json(inline).map(Some).map_err(|problems| {
            ApiError::new(
                ErrorCode::ValidationFailed,
                format!(
                    "term sheet {sha}: pricing.inline is not a valid price book: {}",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        });
    }
    Ok(None)
}

/// The price book of a term sheet: its inline block, or the stored version its
/// `pricing.ref` names (`{id, sha256}`, of the sheet's own org).
pub(crate) async fn resolve_price_book(
    tx: &mut Tx,
    org: OrgId,
    document: &Value,
    sha: &str,
) -> Result<Option<PriceBook>, ApiError> {
    let Some(r) = document.pointer("/pricing/ref") else {
        return price_book_of(document, sha);
    };
    let (id, hash) = (
        r.get("id").and_then(Value::as_str).unwrap_or_default(),
        r.get("sha256").and_then(Value::as_str).unwrap_or_default(),
    );
    let Some((book_id, _, doc)) = tx.get_price_book(org, hash).await? else {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("term sheet {sha}: its price book {id} ({hash}) is not stored"),
        ));
    };
    if book_id != id {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("term sheet {sha}: price book {hash} is {book_id:?}, not {id:?}"),
        ));
    }
    PriceBook::from_json(&doc)
        .map(Some)
        .map_err(|_| ApiError::internal(format!("stored price book {hash} no longer validates")))
}

fn sla_of(document: &Value) -> Option<tollgate_billing::SlaTerms> {
    let sla = document.get("sla")?;
    let dec = |v: &Value| v.as_str().and_then(|s| Decimal::from_str(s).ok());
    let availability = dec(sla.get("availability")?)?;
    let credits: Vec<(Decimal, Decimal)> = sla
        .get("credits")?
        .as_array()?
        .iter()
        .filter_map(|c| Some((dec(c.get("below")?)?, dec(c.get("credit")?)?)))
        .collect();
    (!credits.is_empty()).then_some(tollgate_billing::SlaTerms {
        availability,
        credits,
    })
}

/// Loads a subscription for billing; `None` when it has no priced terms (free).
pub async fn billable(tx: &mut Tx, id: SubscriptionId) -> Result<Option<Billable>, ApiError> {
    billable_cached(tx, id, &mut BookCache::new()).await
}

/// Price books and SLAs by term sheet hash, parsed once per close run.
pub type BookCache =
    std::collections::HashMap<String, (Option<PriceBook>, Option<tollgate_billing::SlaTerms>)>;

async fn billable_cached(
    tx: &mut Tx,
    id: SubscriptionId,
    cache: &mut BookCache,
) -> Result<Option<Billable>, ApiError> {
    let Some(sub) = tx.get_subscription(id).await? else {
        return Err(ApiError::not_found("subscription"));
    };
    let anchor = tx.billing_anchor(id).await?;
    let acceptances = tx.list_acceptances(id).await?;
    billable_from(tx, sub, anchor, acceptances, cache).await
}

/// [`billable`] from what is already loaded: the subscription, its billing anchor row and
/// its acceptances (term sheets are read through `tx` unless cached).
async fn billable_from(
    tx: &mut Tx,
    sub: Subscription,
    anchor_row: Option<tollgate_store::BillingAnchor>,
    mut acceptances: Vec<tollgate_core::model::Acceptance>,
    cache: &mut BookCache,
) -> Result<Option<Billable>, ApiError> {
    let anchor = anchor_row
        .as_ref()
        .and_then(|a| a.billing_anchor)
        .unwrap_or(sub.created_at);
    let cancel_requested = anchor_row.as_ref().and_then(|a| a.cancel_requested_at);
    let clock = anchor_row.and_then(|a| a.test_clock_id);
    // The sheets accepted, in order; the subscription's current one when none was
    // recorded (imported subscriptions).
    // In the order they were made (ids are time-ordered by the wall clock, whereas
    // `accepted_at` is the test clock's time once one is attached), each no earlier than
    // the anchor or the one before.
    acceptances.sort_by_key(|a| a.record.id);
    let mut accepted: Vec<(OffsetDateTime, String)> = Vec::new();
    for a in acceptances {
        // The first acceptance starts the subscription: it is at the anchor (a test
        // clock attached later moved the anchor, not the record).
        let at = match accepted.last() {
            None => anchor,
            Some((prev, _)) => OffsetDateTime::parse(
                &a.record.accepted_at,
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap_or(anchor)
            .max(*prev),
        };
        if accepted.last().map(|(_, h)| h) != Some(&a.record.terms_sha256) {
            accepted.push((at, a.record.terms_sha256));
        }
    }
    if accepted.is_empty() {
        match &sub.terms_sha256 {
            Some(h) => accepted.push((anchor, h.clone())),
            None => return Ok(None),
        }
    }
    let mut books = BTreeMap::new();
    let mut sla = None;
    for (_, sha) in &accepted {
        if books.contains_key(sha) {
            continue;
        }
        if !cache.contains_key(sha) {
            let Some(sheet) = tx.get_terms_by_hash(sub.provider_org_id, sha).await? else {
                return Err(ApiError::internal(format!("term sheet {sha} is missing")));
            };
            let parsed = (
                resolve_price_book(tx, sub.provider_org_id, &sheet.document, sha).await?,
                sla_of(&sheet.document),
            );
            cache.insert(sha.clone(), parsed);
        }
        let (book, sheet_sla) = &cache[sha];
        match book {
            Some(b) => {
                books.insert(sha.clone(), b.clone());
            }
            // An unpriced sheet: the subscription is not billed while it is current.
            None if Some(sha) == sub.terms_sha256.as_ref() => return Ok(None),
            None => {}
        }
        if Some(sha) == sub.terms_sha256.as_ref() {
            sla = sheet_sla.clone();
        }
    }
    let Some(first_book) = books.get(&accepted[0].1).cloned() else {
        return Ok(None);
    };
    let fee = |sha: &str| {
        books
            .get(sha)
            .and_then(|b| b.base_fee.as_ref())
            .map_or(Decimal::ZERO, |f| f.amount)
    };
    let mut changes = Vec::new();
    for w in accepted.windows(2) {
        let (old, (at, new)) = (&w[0].1, &w[1]);
        if !books.contains_key(new) {
            continue;
        }
        changes.push(PlanChange {
            at: to_ts(*at),
            term_sheet: new.clone(),
            kind: if fee(new) >= fee(old) {
                ChangeKind::Upgrade
            } else {
                ChangeKind::Downgrade
            },
        });
    }
    // A cancellation at period end (asked for, then carried out by the close) is billed
    // as one; a direct cancellation ends service at once.
    let cancellation = match cancel_requested {
        Some(at) => Some(Cancellation {
            at: to_ts(at.max(anchor)),
            effective: Effective::PeriodEnd,
        }),
        None => (sub.state == SubscriptionState::Cancelled)
            .then(|| {
                sub.history
                    .iter()
                    .rev()
                    .find(|t| t.to == SubscriptionState::Cancelled)
                    .map(|t| Cancellation {
                        at: to_ts(t.at.max(anchor)),
                        effective: Effective::Immediately,
                    })
            })
            .flatten(),
    };
    let history = tollgate_billing::Subscription {
        id: sub.id.to_string(),
        started: to_ts(anchor),
        term_sheet: accepted[0].1.clone(),
        changes,
        cancellation,
    };
    Ok(Some(Billable {
        sub,
        history,
        books,
        first_book,
        sla,
        anchor,
        clock,
    }))
}

/// A usage event of the ledger as the rater reads it.
pub fn rating_event(e: &LedgerEvent, current_terms: &str) -> Option<tollgate_billing::UsageEvent> {
    let time = tollgate_core::usage::parse_time(&e.time)?;
    let fields = e
        .data
        .fields
        .iter()
        .map(|(k, v)| {
            let v = match v {
                FieldValue::Bool(b) => Value::Bool(*b),
                FieldValue::Integer(i) => Value::from(*i),
                FieldValue::String(s) => Value::String(s.clone()),
            };
            (k.clone(), v)
        })
        .collect();
    Some(tollgate_billing::UsageEvent {
        id: e.id.clone(),
        time: to_ts(time),
        subscription: e.data.subscription_id.to_string(),
        operation: e.data.operation_id.clone(),
        method: e.data.method.clone(),
        status: e.data.status,
        request_bytes: e.data.request_bytes,
        response_bytes: e.data.response_bytes,
        latency_ms: e.data.latency_us / 1000,
        term_sheet: e
            .data
            .terms_sha256
            .clone()
            .unwrap_or_else(|| current_terms.to_owned()),
        fields,
    })
}

/// One ledger entry counted by an invoice.
#[derive(Debug, Clone)]
pub struct Counted {
    pub index: u64,
    pub leaf: Vec<u8>,
    pub event: LedgerEvent,
}

/// The entries of `sub` in `log` with time in `[from, to)` and leaf index in `[lo, hi)`.
pub async fn entries(
    state: &AppState,
    log: &LedgerLog,
    sub: SubscriptionId,
    from: OffsetDateTime,
    to: OffsetDateTime,
    lo: u64,
    hi: u64,
) -> Result<Vec<Counted>, ApiError> {
    let mut tx = state.store.read().await?;
    entries_in(&mut tx, log, sub, from, to, lo, hi).await
}

/// [`entries`] in the caller's transaction.
async fn entries_in(
    tx: &mut Tx,
    log: &LedgerLog,
    sub: SubscriptionId,
    from: OffsetDateTime,
    to: OffsetDateTime,
    lo: u64,
    hi: u64,
) -> Result<Vec<Counted>, ApiError> {
    let indexes: Vec<u64> = {
        tx.usage_leaf_indexes(log.name, &sub.to_string(), from, to)
            .await?
            .into_iter()
            .filter(|i| (lo..hi).contains(i))
            .collect()
    };
    let mut out = Vec::with_capacity(indexes.len());
    let mut i = 0;
    while i < indexes.len() {
        // Read runs of consecutive entries at once.
        let start = indexes[i];
        let mut end = start + 1;
        while i + 1 < indexes.len() && indexes[i + 1] == end && end - start < 1000 {
            i += 1;
            end += 1;
        }
        i += 1;
        let leaves = log
            .reader()
            .entries(start, end)
            .map_err(|e| ApiError::internal(format!("ledger {}: {e}", log.name)))?;
        for (k, leaf) in leaves.into_iter().enumerate() {
            let event = LedgerEvent::from_leaf(&leaf).map_err(|e| {
                ApiError::internal(format!("ledger entry {}: {e}", start + k as u64))
            })?;
            out.push(Counted {
                index: start + k as u64,
                leaf,
                event,
            });
        }
    }
    Ok(out)
}

/// What an invoice of a period is rated from.
#[derive(Debug, Clone, Copy)]
pub struct Basis {
    /// Tree size the usage is read below (the cited checkpoint's, or the log's size for
    /// a preview).
    pub size: u64,
    /// The size the previous period invoice cited: late usage starts there.
    pub previous_size: u64,
}

/// A period rated: the invoice and the entries it counted.
#[derive(Debug)]
pub struct Rated {
    pub invoice: RatedInvoice,
    pub counted: Vec<Counted>,
    /// `(good, total)` responses of the period (SLA availability).
    pub availability: (u64, u64),
}

fn ledger_log(state: &AppState, mode: KeyMode) -> Result<&LedgerLog, ApiError> {
    state
        .ledger
        .get()
        .map(|l| l.log_of(mode))
        .ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "billing needs the usage ledger"))
}

/// The customer's tax rates.
async fn tax_rates(tx: &mut Tx, org: OrgId) -> Result<Vec<TaxRate>, ApiError> {
    Ok(match tx.get_billing_account(org).await? {
        Some(a) => serde_json::from_value(a.tax_rates)
            .map_err(|e| ApiError::internal(format!("stored tax rates: {e}")))?,
        None => Vec::new(),
    })
}

/// The subscription's coupons, with the periods each already discounted.
pub async fn coupons(
    tx: &mut Tx,
    sub: SubscriptionId,
) -> Result<Vec<tollgate_billing::CouponGrant>, ApiError> {
    grants(tx.subscription_coupons(sub).await?)
}

/// Stored coupon rows as the rater reads them.
fn grants(rows: Vec<(Value, u32)>) -> Result<Vec<tollgate_billing::CouponGrant>, ApiError> {
    rows.into_iter()
        .map(|(c, periods_applied)| {
            Ok(tollgate_billing::CouponGrant {
                coupon: serde_json::from_value(c)
                    .map_err(|e| ApiError::internal(format!("stored coupon: {e}")))?,
                periods_applied,
            })
        })
        .collect()
}

/// The customer's prepaid balance in a mode and currency.
pub async fn wallet_balance(
    tx: &mut Tx,
    org: OrgId,
    mode: &str,
    currency: &str,
) -> Result<Decimal, ApiError> {
    let mut sum = Decimal::ZERO;
    for e in tx.wallet_entries(org, mode, Some(currency)).await? {
        let a = Decimal::from_str(&e.amount)
            .map_err(|_| ApiError::internal(format!("wallet entry {} is corrupt", e.id)))?;
        sum = sum
            .checked_add(a)
            .ok_or_else(|| ApiError::internal("wallet balance overflows"))?;
    }
    Ok(sum)
}

/// What rating reads of the customer besides usage.
#[derive(Debug, Clone)]
struct Account {
    taxes: Vec<TaxRate>,
    wallet: Decimal,
    coupons: Vec<tollgate_billing::CouponGrant>,
}

/// Rates one period of `b` from the ledger.
pub async fn rate_period(
    state: &AppState,
    b: &Billable,
    period: Span,
    basis: Basis,
    now: OffsetDateTime,
) -> Result<Rated, ApiError> {
    let mut tx = state.store.read().await?;
    let account = Account {
        taxes: tax_rates(&mut tx, b.sub.consumer_org_id).await?,
        wallet: wallet_balance(
            &mut tx,
            b.sub.consumer_org_id,
            b.mode(),
            &b.first_book.currency,
        )
        .await?,
        coupons: coupons(&mut tx, b.sub.id).await?,
    };
    rate_in(state, &mut tx, b, period, basis, now, &account).await
}

/// [`rate_period`] in the caller's transaction, with the customer's account given.
async fn rate_in(
    state: &AppState,
    tx: &mut Tx,
    b: &Billable,
    period: Span,
    basis: Basis,
    now: OffsetDateTime,
    account: &Account,
) -> Result<Rated, ApiError> {
    let log = ledger_log(state, b.sub.mode)?;
    let (p_start, p_end) = (from_ts(period.start), from_ts(period.end));
    let mut counted = entries_in(tx, log, b.sub.id, p_start, p_end, 0, basis.size).await?;
    let in_period = counted.len();
    if basis.previous_size < basis.size {
        counted.extend(
            entries_in(
                tx,
                log,
                b.sub.id,
                OffsetDateTime::UNIX_EPOCH,
                p_start,
                basis.previous_size,
                basis.size,
            )
            .await?,
        );
    }
    let current = b.sub.terms_sha256.clone().unwrap_or_default();
    let events: Vec<_> = counted
        .iter()
        .filter_map(|c| rating_event(&c.event, &current))
        .collect();
    // Availability is measured on the calls the gateway served, not on usage providers
    // reported.
    let availability = tollgate_billing::availability_counts(
        counted[..in_period]
            .iter()
            .filter(|c| c.event.kind == tollgate_core::usage::GATEWAY_CALL_TYPE)
            .map(|c| c.event.data.status),
    );
    let invoice = tollgate_billing::rate(&RatingInput {
        subscription: &b.history,
        books: &b.books,
        period,
        events: &events,
        wallet_balance: account.wallet.max(Decimal::ZERO),
        coupons: &account.coupons,
        taxes: &account.taxes,
        now: to_ts(now),
    })
    .map_err(billing_error)?;
    Ok(Rated {
        invoice,
        counted,
        availability,
    })
}

/// The upcoming invoice: the current period rated from everything in the log so far.
pub async fn upcoming(state: &AppState, b: &Billable) -> Result<(RatedInvoice, u64), ApiError> {
    crate::ledger::index(state).await?;
    let now = now_for(state, b.sub.id);
    let period = b.period_at(to_ts(now))?;
    let log = ledger_log(state, b.sub.mode)?;
    let previous_size = {
        let mut tx = state.store.read().await?;
        last_period(&tx.subscription_invoices(b.sub.id).await?).map_or(0, |i| i.checkpoint_size)
    };
    let size = log.reader().size();
    let rated = rate_period(
        state,
        b,
        period,
        Basis {
            size,
            previous_size,
        },
        now,
    )
    .await?;
    Ok((rated.invoice, size))
}

/// The last period invoice among a subscription's invoices (the opening one aside).
fn last_period(invoices: &[InvoiceRecord]) -> Option<&InvoiceRecord> {
    invoices
        .iter()
        .filter(|i| i.kind == "period")
        .max_by_key(|i| i.period_start)
}

/// The latest signed checkpoint of `log` once it covers every durable entry (waits up to
/// ~3 s for the writer's next checkpoint), and the usage index caught up with it.
async fn settled_checkpoint(
    state: &AppState,
    log: &LedgerLog,
) -> Result<tollgate_ledger::Checkpoint, ApiError> {
    let target = log.reader().size();
    let mut cp = log.reader().latest_checkpoint();
    for _ in 0..60 {
        if cp.as_ref().is_some_and(|c| c.size >= target) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        cp = log.reader().latest_checkpoint();
    }
    let cp = cp.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "the ledger has not signed a checkpoint yet",
        )
    })?;
    crate::ledger::index(state).await?;
    Ok(cp)
}

/// The signed invoice document and how it is stored.
fn sign_document(
    state_ring: &tollgate_keyring::Keyring,
    doc: &Value,
) -> Result<(String, String), ApiError> {
    let bytes = serde_jcs::to_vec(doc).map_err(ApiError::internal)?;
    let sig = state_ring
        .sign(KeyPurpose::InvoiceSigning, &bytes)
        .map_err(ApiError::internal)?;
    Ok((
        sig.key_id.to_string(),
        base64::engine::general_purpose::STANDARD.encode(sig.bytes),
    ))
}

/// Money as stored beside documents: the amount with its scale (`27.50`), as on the lines.
fn money(d: Decimal) -> String {
    d.to_string()
}

/// What one close did.
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CloseReport {
    /// Subscriptions looked at.
    pub subscriptions: u64,
    /// Invoices finalized (ids).
    pub invoices: Vec<String>,
    /// Credit notes issued (SLA credits).
    pub credit_notes: Vec<String>,
    /// Subscriptions that could not be closed, with why.
    pub errors: Vec<String>,
}

/// Finalizes every invoice that is due: of the subscriptions on `clock` (at the clock's
/// time), or of every subscription (each at its own time: wall clock or test clock).
/// Subscriptions are rated one by one and their invoices written in batches of up to
/// [`BATCH`] per write transaction; a batch that fails is written again one invoice per
/// transaction, so one bad subscription costs only itself.
pub async fn close(
    state: &AppState,
    clock: Option<&str>,
    mut progress: impl FnMut(u64, u64),
) -> Result<CloseReport, ApiError> {
    let anchors = {
        let mut tx = state.store.read().await?;
        tx.billing_anchors(clock).await?
    };
    let mut run = Run::new(state);
    let mut report = CloseReport::default();
    let n = anchors.len() as u64;
    let mut i = 0;
    for chunk in anchors.chunks(BATCH) {
        if let Err(e) = run.prefetch(chunk).await {
            report
                .errors
                .push(format!("loading subscriptions: {}", e.detail));
            continue;
        }
        for a in chunk {
            report.subscriptions += 1;
            if let Err(e) = run.prepare(a.subscription_id).await {
                report
                    .errors
                    .push(format!("subscription {}: {}", a.subscription_id, e.detail));
            }
            if run.batch.len() >= BATCH {
                run.flush(&mut report).await;
            }
            i += 1;
            progress(i, n);
        }
    }
    run.flush(&mut report).await;
    Ok(report)
}

/// Finalizes what is due of one subscription.
pub async fn close_subscription(
    state: &AppState,
    id: SubscriptionId,
    report: &mut CloseReport,
) -> Result<(), ApiError> {
    let mut run = Run::new(state);
    run.prepare(id).await?;
    run.flush(report).await;
    match report.errors.first() {
        Some(e) => Err(ApiError::new(ErrorCode::Conflict, e.clone())),
        None => Ok(()),
    }
}

/// Invoices per write transaction of a close.
const BATCH: usize = 256;

/// An invoice rated and ready to be written.
struct Prepared {
    b: std::sync::Arc<Billable>,
    kind: &'static str,
    invoice: RatedInvoice,
    entries_counted: usize,
    /// The SLA credit of the period, with the `(good, total)` it was measured on.
    sla: Option<(tollgate_billing::SlaCredit, u64, u64)>,
    cp: tollgate_ledger::Checkpoint,
    previous_size: u64,
    now: OffsetDateTime,
}

/// What one close keeps between subscriptions: parsed price books, the signed checkpoint
/// of each log (one per run, so every invoice of a run cites the same head), and each
/// customer's balance as the invoices of the run consume and credit it.
struct Run<'a> {
    state: &'a AppState,
    books: BookCache,
    checkpoints: std::collections::HashMap<&'static str, tollgate_ledger::Checkpoint>,
    wallets: std::collections::HashMap<(OrgId, &'static str, String), Decimal>,
    taxes: std::collections::HashMap<OrgId, Vec<TaxRate>>,
    /// Subscriptions whose cancellation at period end is due: `(id, service end)`.
    cancel: Vec<(SubscriptionId, OffsetDateTime)>,
    /// What [`Run::prefetch`] loaded for the subscriptions about to be prepared.
    loaded: std::collections::HashMap<SubscriptionId, Loaded>,
    batch: Vec<Prepared>,
}

/// One subscription's rows, loaded with those of its chunk (a handful of queries for
/// hundreds of subscriptions, instead of several each).
struct Loaded {
    sub: Subscription,
    anchor: tollgate_store::BillingAnchor,
    acceptances: Vec<tollgate_core::model::Acceptance>,
    invoices: Vec<InvoiceRecord>,
    coupons: Vec<(Value, u32)>,
}

impl<'a> Run<'a> {
    fn new(state: &'a AppState) -> Self {
        Run {
            state,
            books: BookCache::new(),
            checkpoints: Default::default(),
            wallets: Default::default(),
            taxes: Default::default(),
            loaded: Default::default(),
            cancel: Vec::new(),
            batch: Vec::new(),
        }
    }

    /// Loads the rows of a chunk of subscriptions at once.
    async fn prefetch(&mut self, chunk: &[tollgate_store::BillingAnchor]) -> Result<(), ApiError> {
        for mode in [KeyMode::Live, KeyMode::Test] {
            self.checkpoint(mode).await?;
        }
        let ids: Vec<SubscriptionId> = chunk.iter().map(|a| a.subscription_id).collect();
        let mut tx = self.state.store.read().await?;
        let subs = tx.get_subscriptions(&ids).await?;
        let mut acceptances = tx.acceptances_of(&ids).await?;
        let mut invoices = tx.invoices_of(&ids).await?;
        let mut coupons = tx.coupons_of(&ids).await?;
        self.loaded.clear();
        for sub in subs {
            let Some(anchor) = chunk.iter().find(|a| a.subscription_id == sub.id).cloned() else {
                continue;
            };
            let id = sub.id;
            self.loaded.insert(
                id,
                Loaded {
                    sub,
                    anchor,
                    acceptances: acceptances.remove(&id).unwrap_or_default(),
                    invoices: invoices.remove(&id).unwrap_or_default(),
                    coupons: coupons.remove(&id).unwrap_or_default(),
                },
            );
        }
        Ok(())
    }

    async fn checkpoint(&mut self, mode: KeyMode) -> Result<tollgate_ledger::Checkpoint, ApiError> {
        let log = ledger_log(self.state, mode)?;
        if let Some(cp) = self.checkpoints.get(log.name) {
            return Ok(cp.clone());
        }
        let cp = settled_checkpoint(self.state, log).await?;
        self.checkpoints.insert(log.name, cp.clone());
        Ok(cp)
    }

    async fn account(
        &mut self,
        tx: &mut Tx,
        b: &Billable,
        coupons: &[tollgate_billing::CouponGrant],
    ) -> Result<Account, ApiError> {
        let org = b.sub.consumer_org_id;
        if let std::collections::hash_map::Entry::Vacant(e) = self.taxes.entry(org) {
            e.insert(tax_rates(tx, org).await?);
        }
        let key = (org, b.mode(), b.first_book.currency.clone());
        if !self.wallets.contains_key(&key) {
            let w = wallet_balance(tx, org, b.mode(), &b.first_book.currency).await?;
            self.wallets.insert(key.clone(), w);
        }
        Ok(Account {
            taxes: self.taxes[&org].clone(),
            wallet: self.wallets[&key],
            coupons: coupons.to_vec(),
        })
    }

    /// Books what an invoice will do to the customer's balance and coupons, so the next
    /// invoice of the run sees it.
    fn apply(
        &mut self,
        b: &Billable,
        invoice: &RatedInvoice,
        credit: Decimal,
        coupons: &mut [tollgate_billing::CouponGrant],
    ) {
        let key = (
            b.sub.consumer_org_id,
            b.mode(),
            b.first_book.currency.clone(),
        );
        if let Some(w) = self.wallets.get_mut(&key) {
            *w = *w - invoice.wallet.consumed + credit;
        }
        for line in invoice
            .lines
            .iter()
            .filter(|l| l.kind == tollgate_billing::LineKind::Discount)
        {
            if let Some(g) = coupons
                .iter_mut()
                .find(|g| Some(&g.coupon.id) == line.charge.as_ref())
            {
                g.periods_applied += 1;
            }
        }
    }

    /// Rates what is due of one subscription into the batch.
    async fn prepare(&mut self, id: SubscriptionId) -> Result<(), ApiError> {
        let state = self.state;
        // Both logs' heads settled (and the usage index caught up with them) before the
        // read transaction starts, so it sees every entry below them.
        for mode in [KeyMode::Live, KeyMode::Test] {
            self.checkpoint(mode).await?;
        }
        let mut tx = state.store.read().await?;
        let (b, existing, mut grants) = match self.loaded.remove(&id) {
            Some(l) => {
                let b = billable_from(
                    &mut tx,
                    l.sub,
                    Some(l.anchor),
                    l.acceptances,
                    &mut self.books,
                )
                .await?;
                (b, l.invoices, grants(l.coupons)?)
            }
            None => (
                billable_cached(&mut tx, id, &mut self.books).await?,
                tx.subscription_invoices(id).await?,
                coupons(&mut tx, id).await?,
            ),
        };
        let Some(b) = b else {
            return Ok(());
        };
        let b = std::sync::Arc::new(b);
        let now = now_for(state, id);
        let now_ts = to_ts(now);
        // The opening invoice (advance fee of the first served period), once service
        // started.
        let service_start = tollgate_billing::trial_end(
            &b.first_book.billing_cycle,
            b.start(),
            b.first_book.trial_days,
        )
        .map_err(billing_error)?;
        let advance = b
            .first_book
            .base_fee
            .as_ref()
            .is_some_and(|f| f.timing == tollgate_billing::Timing::InAdvance);
        if advance && now_ts >= service_start && !existing.iter().any(|i| i.kind == "opening") {
            let account = self.account(&mut tx, &b, &grants).await?;
            let invoice = tollgate_billing::rate_opening(
                &b.history,
                &b.books,
                account.wallet.max(Decimal::ZERO),
                &account.coupons,
                &account.taxes,
            )
            .map_err(billing_error)?;
            let cp = self.checkpoint(b.sub.mode).await?;
            self.apply(&b, &invoice, Decimal::ZERO, &mut grants);
            self.batch.push(Prepared {
                b: b.clone(),
                kind: "opening",
                invoice,
                entries_counted: 0,
                sla: None,
                cp,
                previous_size: 0,
                now,
            });
        }
        let last = last_period(&existing);
        let mut previous_size = last.map_or(0, |i| i.checkpoint_size);
        let mut period = match last {
            Some(last) => b.next(&Span::new(to_ts(last.period_start), to_ts(last.period_end)))?,
            None => b.period_at(b.start())?,
        };
        let ended = b.history.cancellation.map(|c| c.at);
        // A cancellation at period end is carried out once its period is over.
        if let Some(c) = b.history.cancellation
            && c.effective == Effective::PeriodEnd
            && b.sub.state != SubscriptionState::Cancelled
        {
            let end = b.period_at(c.at)?.end;
            if now_ts >= end {
                self.cancel.push((b.sub.id, from_ts(end)));
            }
        }
        for _ in 0..MAX_PERIODS_PER_CLOSE {
            let due = period
                .end
                .checked_add(b.grace())
                .map_err(|_| ApiError::internal("period end overflows"))?;
            if now_ts < due || ended.is_some_and(|e| period.start >= e) {
                break;
            }
            let cp = self.checkpoint(b.sub.mode).await?;
            let account = self.account(&mut tx, &b, &grants).await?;
            let basis = Basis {
                size: cp.size,
                previous_size,
            };
            let rated = rate_in(state, &mut tx, &b, period, basis, now, &account).await?;
            // SLA: measured availability of the period's calls against the current
            // sheet's credit schedule.
            let sla = match &b.sla {
                Some(terms) => {
                    let (good, total) = rated.availability;
                    let inv = &rated.invoice;
                    let minor = tollgate_billing::minor_units(&inv.currency).unwrap_or(2);
                    let credit = tollgate_billing::sla_credit(
                        terms,
                        good,
                        total,
                        inv.pre_tax_total,
                        minor,
                        inv.rounding,
                    )
                    .map_err(billing_error)?;
                    (credit.amount > Decimal::ZERO).then_some((credit, good, total))
                }
                None => None,
            };
            let credit = sla.as_ref().map_or(Decimal::ZERO, |(c, _, _)| c.amount);
            self.apply(&b, &rated.invoice, credit, &mut grants);
            previous_size = cp.size;
            self.batch.push(Prepared {
                b: b.clone(),
                kind: "period",
                invoice: rated.invoice,
                entries_counted: rated.counted.len(),
                sla,
                cp,
                previous_size: basis.previous_size,
                now,
            });
            period = b.next(&period)?;
        }
        Ok(())
    }

    /// Writes the batch: in one transaction, or invoice by invoice when that fails.
    async fn flush(&mut self, report: &mut CloseReport) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let state = self.state;
        // Keyring before store (the order rotation takes them in).
        let ring = state.keyring.read().await;
        let together = async {
            let mut tx = state.store.write().await?;
            let listening = tx.orgs_with_webhook_endpoints().await?;
            let mut seqs = Sequences::default();
            let mut done = Vec::new();
            for p in &batch {
                match write_invoice(state, &ring, &mut tx, p, &mut seqs, Some(&listening)).await? {
                    Some(d) => done.push(d),
                    // Another close wrote it: this transaction is spoiled (PostgreSQL).
                    None => return Err(ApiError::new(ErrorCode::Conflict, "written already")),
                }
            }
            seqs.store(&mut tx).await?;
            tx.commit().await?;
            Ok::<_, ApiError>(done)
        }
        .await;
        let done = match together {
            Ok(done) => done,
            Err(_) => {
                // The balances booked for this batch may not have been written.
                self.wallets.clear();
                let mut done = Vec::new();
                for p in &batch {
                    let one = async {
                        let mut tx = state.store.write().await?;
                        let mut seqs = Sequences::default();
                        let d = write_invoice(state, &ring, &mut tx, p, &mut seqs, None).await?;
                        if d.is_some() {
                            seqs.store(&mut tx).await?;
                            tx.commit().await?;
                        }
                        Ok::<_, ApiError>(d)
                    }
                    .await;
                    match one {
                        Ok(Some(d)) => done.push(d),
                        Ok(None) => {}
                        Err(e) => report
                            .errors
                            .push(format!("subscription {}: {}", p.b.sub.id, e.detail)),
                    }
                }
                done
            }
        };
        for (invoice, note) in done {
            report.invoices.push(invoice);
            report.credit_notes.extend(note);
        }
        let cancel = std::mem::take(&mut self.cancel);
        if !cancel.is_empty() {
            for (id, at) in cancel {
                if let Err(e) = cancel_at(state, id, at).await {
                    report.errors.push(format!(
                        "subscription {id}: cancelling at period end: {}",
                        e.detail
                    ));
                }
            }
            if let Err(e) = crate::snapshot::refresh(state).await {
                report
                    .errors
                    .push(format!("gateway snapshot: {}", e.detail));
            }
        }
    }
}

/// Cancels a subscription whose cancellation at period end has come: the transition is
/// dated at the end of service and made by the marketplace.
async fn cancel_at(
    state: &AppState,
    id: SubscriptionId,
    at: OffsetDateTime,
) -> Result<(), ApiError> {
    let mut tx = state.store.write().await?;
    let Some(before) = tx.get_subscription(id).await? else {
        return Ok(());
    };
    if before.state == SubscriptionState::Cancelled {
        return Ok(());
    }
    let mut sub = before.clone();
    sub.history
        .push(tollgate_core::model::SubscriptionTransition {
            from: Some(before.state),
            to: SubscriptionState::Cancelled,
            actor: state.operator.id,
            reason: "cancelled at the end of the billing period, as the subscriber asked".into(),
            at,
        });
    sub.state = SubscriptionState::Cancelled;
    sub.revision += 1;
    sub.updated_at = state.now();
    tx.update_subscription(&sub, before.revision, before.history.len())
        .await?;
    tx.append_audit(tollgate_store::NewAudit {
        at: state.now(),
        actor: tollgate_core::model::Actor {
            user_id: state.operator.id,
            email: state.operator.email.clone(),
        },
        org_id: Some(sub.consumer_org_id),
        action: "subscription.cancel_at_period_end".into(),
        target_type: "subscription".into(),
        target_id: id.to_string(),
        request_id: String::new(),
        before_sha256: None,
        after_sha256: None,
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Invoice numbers taken inside one write transaction: each issuer's sequence is read
/// once and written back once at the end ([`Sequences::store`]), instead of twice per
/// invoice. Gap-free as ever: the numbers exist iff the transaction commits.
#[derive(Default)]
struct Sequences(std::collections::HashMap<(OrgId, &'static str), (i64, i64)>);

impl Sequences {
    async fn next(
        &mut self,
        tx: &mut Tx,
        issuer: OrgId,
        mode: &'static str,
    ) -> Result<i64, ApiError> {
        if let Some((_, next)) = self.0.get_mut(&(issuer, mode)) {
            let seq = *next;
            *next += 1;
            return Ok(seq);
        }
        // Takes the first number the usual way (it writes next + 1).
        let seq = tx.next_document_seq(issuer, mode, "invoice").await?;
        self.0.insert((issuer, mode), (seq + 1, seq + 1));
        Ok(seq)
    }

    /// Writes back what was taken beyond the first number of each issuer.
    async fn store(self, tx: &mut Tx) -> Result<(), ApiError> {
        for ((issuer, mode), (stored, next)) in self.0 {
            if next > stored {
                tx.set_document_seq(issuer, mode, "invoice", next).await?;
            }
        }
        Ok(())
    }
}

/// Signs and stores one rated invoice inside `tx` with what follows from it: coupon
/// periods, prepaid credit consumed, the SLA credit note, the audit entry, the webhooks.
/// Returns the invoice id and the credit note's, or `None` when the invoice exists
/// already (another close wrote it first).
async fn write_invoice(
    state: &AppState,
    ring: &tollgate_keyring::Keyring,
    tx: &mut Tx,
    p: &Prepared,
    seqs: &mut Sequences,
    listening: Option<&std::collections::HashSet<OrgId>>,
) -> Result<Option<(String, Option<String>)>, ApiError> {
    let (b, inv, cp, now) = (&p.b, &p.invoice, &p.cp, p.now);
    let id = format!("inv_{}", uuid::Uuid::now_v7().simple());
    let issuer = b.sub.provider_org_id;
    let mode = b.mode();
    let seq = seqs.next(tx, issuer, mode).await?;
    let number = document_number("INV", mode, seq);
    let price_books: Vec<_> = b.books.values().map(PriceBook::reference).collect();
    let doc = json!({
        "tollgate_invoice": INVOICE_FORMAT,
        "id": id,
        "number": number,
        "kind": p.kind,
        "mode": mode,
        "issuer_org_id": issuer,
        "customer_org_id": b.sub.consumer_org_id,
        "subscription_id": b.sub.id,
        "finalized_at": format_rfc3339(now)?,
        "test_clock_id": b.clock,
        "ledger": {
            "log": b.sub.mode.as_str(),
            "origin": cp.origin,
            "checkpoint": {
                "size": cp.size,
                "root": base64::engine::general_purpose::STANDARD.encode(cp.root),
                "note": cp.note,
            },
            "previous_size": p.previous_size,
            "entries_counted": p.entries_counted,
        },
        "price_books": price_books,
        "invoice": inv,
    });
    let (key_id, signature) = sign_document(ring, &doc)?;
    let record = InvoiceRecord {
        id: id.clone(),
        issuer_org_id: issuer,
        customer_org_id: b.sub.consumer_org_id,
        subscription_id: b.sub.id,
        mode: mode.to_owned(),
        kind: p.kind.to_owned(),
        period_start: from_ts(inv.period.start),
        period_end: from_ts(inv.period.end),
        seq,
        number: number.clone(),
        status: "finalized".into(),
        currency: inv.currency.clone(),
        total: money(inv.total),
        amount_due: money(inv.amount_due),
        log: b.sub.mode.as_str().to_owned(),
        checkpoint_size: cp.size,
        document: doc.clone(),
        key_id,
        signature,
        finalized_at: now,
        status_at: now,
        revision: 1,
    };
    match tx.insert_invoice(&record).await {
        Ok(()) => {}
        Err(tollgate_store::StoreError::Duplicate(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    // Each coupon that discounted this invoice has one more period behind it.
    for line in inv
        .lines
        .iter()
        .filter(|l| l.kind == tollgate_billing::LineKind::Discount)
    {
        if let Some(coupon) = &line.charge {
            tx.coupon_applied(b.sub.id, coupon).await?;
        }
    }
    if inv.wallet.consumed > Decimal::ZERO {
        tx.insert_wallet_entry(&tollgate_store::WalletEntry {
            id: format!("wal_{}", uuid::Uuid::now_v7().simple()),
            org_id: b.sub.consumer_org_id.to_string(),
            mode: mode.to_owned(),
            currency: inv.currency.clone(),
            amount: money(-inv.wallet.consumed),
            reason: format!("consumed by invoice {number}"),
            reference: Some(id.clone()),
            at: now,
        })
        .await?;
    }
    // An SLA breach issues a credit note credited to the customer's balance, which the
    // next invoice consumes.
    let note = match &p.sla {
        Some((credit, good, total)) => Some(
            issue_credit_note(
                ring,
                tx,
                &record,
                inv,
                credit.amount,
                CreditOrigin::Sla {
                    credit: *credit,
                    good: *good,
                    total: *total,
                },
                now,
                state.now(),
            )
            .await?,
        ),
        None => None,
    };
    tx.append_audit(tollgate_store::NewAudit {
        at: state.now(),
        actor: tollgate_core::model::Actor {
            user_id: state.operator.id,
            email: state.operator.email.clone(),
        },
        org_id: Some(issuer),
        action: "invoice.finalize".into(),
        target_type: "invoice".into(),
        target_id: id.clone(),
        request_id: String::new(),
        before_sha256: None,
        after_sha256: tollgate_core::hash::canonical_sha256(&doc),
    })
    .await?;
    crate::webhooks_out::invoice_finalized(tx, &record, state.now(), listening).await?;
    Ok(Some((id, note)))
}

fn format_rfc3339(t: OffsetDateTime) -> Result<String, ApiError> {
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(ApiError::internal)
}

/// `INV-000042` (live) or `TEST-INV-000042` (test mode): per issuer and mode, no gaps.
pub fn document_number(prefix: &str, mode: &str, seq: i64) -> String {
    if mode == "test" {
        format!("TEST-{prefix}-{seq:06}")
    } else {
        format!("{prefix}-{seq:06}")
    }
}

/// Why a credit note was issued.
#[derive(Debug, Clone)]
pub enum CreditOrigin {
    /// Asked for by the issuer.
    Manual { reason: String, lines: Vec<usize> },
    /// The SLA was missed.
    Sla {
        credit: tollgate_billing::SlaCredit,
        good: u64,
        total: u64,
    },
}

/// Issues a credit note on a finalized invoice inside `tx`: numbered, signed, split into
/// what reduces the amount still due and what is credited beyond it (to the customer's
/// prepaid balance, consumed by the next invoice). Returns its id. The caller holds the
/// keyring (taken before the store, as rotation takes them). `now` is the note's time
/// (the subscription's clock), `sent_at` the marketplace's (webhooks).
#[allow(clippy::too_many_arguments)]
pub async fn issue_credit_note(
    ring: &tollgate_keyring::Keyring,
    tx: &mut Tx,
    invoice: &InvoiceRecord,
    rated: &RatedInvoice,
    amount: Decimal,
    origin: CreditOrigin,
    now: OffsetDateTime,
    sent_at: OffsetDateTime,
) -> Result<String, ApiError> {
    let earlier = tx.invoice_credit_notes(&invoice.id).await?;
    let mut already = Decimal::ZERO;
    for n in &earlier {
        already += Decimal::from_str(&n.amount).unwrap_or_default();
    }
    let paid = if invoice.status == "paid" {
        rated.amount_due
    } else {
        Decimal::ZERO
    };
    let request = match &origin {
        CreditOrigin::Manual { lines, .. } if !lines.is_empty() => {
            tollgate_billing::CreditRequest::Lines(lines.clone())
        }
        _ => tollgate_billing::CreditRequest::Amount(amount),
    };
    let mut split = tollgate_billing::credit_note(rated, paid, already, &request)
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed, format!("credit note: {e}")))?;
    // An SLA credit is credited on the next invoice, as the terms promise: all of it goes
    // to the customer's balance and none reduces what this invoice asks. A manual note
    // first reduces what is still owed, and only the rest goes to the balance.
    if matches!(origin, CreditOrigin::Sla { .. }) {
        split.reduces_amount_due = Decimal::ZERO;
        split.credited_beyond = split.total;
    }
    let to_wallet = split.credited_beyond;
    let id = format!("cn_{}", uuid::Uuid::now_v7().simple());
    let seq = tx
        .next_document_seq(invoice.issuer_org_id, &invoice.mode, "credit_note")
        .await?;
    let number = document_number("CN", &invoice.mode, seq);
    let (reason, sla) = match &origin {
        CreditOrigin::Manual { reason, .. } => (reason.clone(), Value::Null),
        CreditOrigin::Sla {
            credit,
            good,
            total,
        } => (
            format!(
                "SLA service credit: {good} of {total} calls succeeded ({} %), below the {} % threshold: {} % of the period's fees",
                (Decimal::from(*good) * Decimal::ONE_HUNDRED / Decimal::from((*total).max(1)))
                    .round_dp(2)
                    .normalize(),
                credit
                    .below
                    .map(|b| b.normalize().to_string())
                    .unwrap_or_default(),
                credit.percent.normalize()
            ),
            json!({ "good": good, "total": total, "credit": credit }),
        ),
    };
    let doc = json!({
        "tollgate_credit_note": 1,
        "id": id,
        "number": number,
        "invoice_id": invoice.id,
        "invoice_number": invoice.number,
        "issuer_org_id": invoice.issuer_org_id,
        "customer_org_id": invoice.customer_org_id,
        "mode": invoice.mode,
        "currency": invoice.currency,
        "issued_at": format_rfc3339(now)?,
        "reason": reason,
        "sla": sla,
        "split": split,
        "credited_to_balance": money(to_wallet),
    });
    let (key_id, signature) = sign_document(ring, &doc)?;
    let record = tollgate_store::CreditNoteRecord {
        id: id.clone(),
        invoice_id: invoice.id.clone(),
        issuer_org_id: invoice.issuer_org_id,
        customer_org_id: invoice.customer_org_id,
        mode: invoice.mode.clone(),
        seq,
        number,
        amount: money(split.total),
        document: doc,
        key_id,
        signature,
        issued_at: now,
    };
    tx.insert_credit_note(&record).await?;
    if to_wallet > Decimal::ZERO {
        tx.insert_wallet_entry(&tollgate_store::WalletEntry {
            id: format!("wal_{}", uuid::Uuid::now_v7().simple()),
            org_id: invoice.customer_org_id.to_string(),
            mode: invoice.mode.clone(),
            currency: invoice.currency.clone(),
            amount: money(to_wallet),
            reason: format!("credit note {}", record.number),
            reference: Some(id.clone()),
            at: now,
        })
        .await?;
    }
    crate::webhooks_out::credit_note_issued(tx, &record, sent_at).await?;
    Ok(id)
}

/// Makes and stores a provider's payout statement for `[from, to)` inside `tx`: its
/// invoices of periods starting then (void ones excluded), the marketplace fee on their
/// pre-tax gross, its credit notes of the time charged back, and the reconciliation
/// Σ invoices before tax = gross.
pub async fn make_payout(
    state: &AppState,
    tx: &mut Tx,
    provider: OrgId,
    mode: &str,
    currency: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<tollgate_store::PayoutRecord, ApiError> {
    if tollgate_billing::minor_units(currency).is_none() {
        return Err(ApiError::validation(vec![tollgate_core::FieldError {
            pointer: "/currency".into(),
            detail: "is not an ISO 4217 currency code".into(),
        }]));
    }
    if tx.get_org(provider).await?.is_none() {
        return Err(ApiError::not_found("organization"));
    }
    if tx.payout_exists(provider, mode, currency, from, to).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a payout for this provider, mode, currency and period exists",
        ));
    }
    let invoices: Vec<InvoiceRecord> = tx
        .issuer_invoices_in(provider, mode, from, to)
        .await?
        .into_iter()
        .filter(|i| i.currency == currency)
        .collect();
    let mut rated = Vec::with_capacity(invoices.len());
    for i in &invoices {
        let r: RatedInvoice =
            serde_json::from_value(i.document.get("invoice").cloned().unwrap_or(Value::Null))
                .map_err(|e| ApiError::internal(format!("stored invoice {}: {e}", i.id)))?;
        rated.push(r);
    }
    let notes: Vec<_> = tx
        .issuer_credit_notes_in(provider, mode, from, to)
        .await?
        .into_iter()
        .filter(|n| n.document.get("currency").and_then(Value::as_str) == Some(currency))
        .collect();
    let mut refunds = Decimal::ZERO;
    for n in &notes {
        refunds += Decimal::from_str(&n.amount).unwrap_or_default();
    }
    let settings = crate::routes::billing::settings(tx).await?;
    let refs: Vec<&RatedInvoice> = rated.iter().collect();
    let payout = tollgate_billing::payout(
        &provider.to_string(),
        currency,
        &refs,
        &settings.marketplace_fee,
        refunds,
        tollgate_billing::RoundingMode::HalfUp,
    )
    .map_err(billing_error)?;
    let reconciliation = tollgate_billing::reconcile(&rated, std::slice::from_ref(&payout))
        .map_err(billing_error)?;
    let id = format!("po_{}", uuid::Uuid::now_v7().simple());
    let now = state.now();
    let doc = json!({
        "tollgate_payout": 1,
        "id": id,
        "provider_org_id": provider,
        "mode": mode,
        "currency": currency,
        "period": { "start": format_rfc3339(from)?, "end": format_rfc3339(to)? },
        "created_at": format_rfc3339(now)?,
        "marketplace_fee": settings.marketplace_fee,
        "invoices": invoices.iter().zip(&rated).map(|(i, r)| json!({
            "id": i.id, "number": i.number, "customer_org_id": i.customer_org_id,
            "pre_tax_total": money(r.pre_tax_total), "tax": money(r.tax), "total": money(r.total),
        })).collect::<Vec<_>>(),
        "credit_notes": notes.iter().map(|n| json!({
            "id": n.id, "number": n.number, "invoice_id": n.invoice_id, "amount": n.amount,
        })).collect::<Vec<_>>(),
        "payout": payout,
        "reconciliation": reconciliation,
    });
    let record = tollgate_store::PayoutRecord {
        id,
        provider_org_id: provider,
        mode: mode.to_owned(),
        currency: currency.to_owned(),
        period_start: from,
        period_end: to,
        net_payable: money(payout.net_payable),
        document: doc,
        created_at: now,
    };
    tx.insert_payout(&record).await?;
    crate::webhooks_out::payout_ready(tx, &record, now).await?;
    Ok(record)
}
