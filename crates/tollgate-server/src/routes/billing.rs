//! Billing's API: invoices (list, show as JSON/CSV/HTML, proof, pay, void), credit
//! notes, the upcoming invoice, test clocks, prepaid wallets, billing accounts (tax
//! rates), payouts and the marketplace fee, quotes, and the operator's close.
//!
//! Who sees what: an invoice or credit note is visible to members of its issuer (the
//! provider) and of its customer (the consumer), and to marketplace operators and
//! auditors; any other caller gets 404. The issuer's owners, admins and billing members
//! issue credit notes and mark invoices paid or void; the operator grants prepaid credit,
//! sets tax rates and the marketplace fee, closes periods and makes payouts.

use super::{ReadErrors, WriteErrors};
use crate::auth::Caller;
use crate::billing::{self, CreditOrigin};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, path_id};
use crate::invoice_render;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::str::FromStr;
use std::sync::Arc;
use time::OffsetDateTime;
use tollgate_core::apikey::KeyMode;
use tollgate_core::roles::Action;
use tollgate_core::{ErrorCode, FieldError, OrgId, SubscriptionId};
use tollgate_store::{InvoiceFilter, InvoiceRecord, TestClock};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(invoice_proof))
        .routes(routes!(pay_invoice))
        .routes(routes!(void_invoice))
        .routes(routes!(list_credit_notes, create_credit_note))
        .routes(routes!(upcoming_invoice))
        .routes(routes!(create_test_clock))
        .routes(routes!(get_test_clock))
        .routes(routes!(advance_test_clock))
        .routes(routes!(attach_test_clock))
        .routes(routes!(get_wallet, credit_wallet))
        .routes(routes!(get_billing_account, put_billing_account))
        .routes(routes!(list_payouts, create_payout))
        .routes(routes!(get_payout))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(close))
        .routes(routes!(quote))
        .routes(routes!(list_coupons, add_coupon))
        .routes(routes!(change_plan))
        .routes(routes!(cancel_at_period_end))
        .routes(routes!(list_price_books, create_price_book))
        .routes(routes!(get_price_book))
}

/// The audit entry of a billing change (no before/after body: the documents are signed
/// and kept whole).
async fn audited(
    st: &AppState,
    tx: &mut tollgate_store::Tx,
    caller: &Caller,
    action: &'static str,
    target_type: &'static str,
    target_id: String,
    org_id: Option<OrgId>,
) -> Result<(), ApiError> {
    crate::ops::audit(
        st,
        tx,
        caller,
        crate::ops::Change::<Value> {
            action,
            target_type,
            target_id,
            org_id,
            before: None,
            after: None,
        },
    )
    .await
}

fn field(pointer: &str, detail: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }
}

fn parse_time(pointer: &str, s: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| {
        ApiError::validation(vec![field(
            pointer,
            "must be an RFC 3339 time (2026-01-01T00:00:00Z)",
        )])
    })
}

fn parse_amount(pointer: &str, s: &str) -> Result<Decimal, ApiError> {
    Decimal::from_str(s).map_err(|_| {
        ApiError::validation(vec![field(pointer, "must be a decimal string (\"12.50\")")])
    })
}

/// Output formats of documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
    Html,
}

/// `?format=`; `Accept: text/csv` or `text/html` choose too.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `json` (default), `csv` or `html`.
    pub format: Option<Format>,
}

fn format_of(q: &FormatQuery, headers: &HeaderMap) -> Format {
    if let Some(f) = q.format {
        return f;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("text/csv") {
        Format::Csv
    } else if accept.contains("text/html") {
        Format::Html
    } else {
        Format::Json
    }
}

fn sees_either(caller: &Caller, a: OrgId, b: OrgId) -> bool {
    caller.sees(a) || caller.sees(b)
}

async fn invoice_for(
    tx: &mut tollgate_store::Tx,
    caller: &Caller,
    id: &str,
) -> Result<InvoiceRecord, ApiError> {
    match tx.get_invoice(id).await? {
        Some(i) if sees_either(caller, i.issuer_org_id, i.customer_org_id) => Ok(i),
        _ => Err(ApiError::not_found("invoice")),
    }
}

/// An invoice as the API shows it: the signed document, its signature, and its status.
pub fn invoice_view(i: &InvoiceRecord) -> Value {
    json!({
        "id": i.id,
        "number": i.number,
        "status": i.status,
        "status_at": fmt(i.status_at),
        "kind": i.kind,
        "mode": i.mode,
        "issuer_org_id": i.issuer_org_id,
        "customer_org_id": i.customer_org_id,
        "subscription_id": i.subscription_id,
        "period": { "start": fmt(i.period_start), "end": fmt(i.period_end) },
        "currency": i.currency,
        "total": i.total,
        "amount_due": i.amount_due,
        "ledger": { "log": i.log, "checkpoint_size": i.checkpoint_size },
        "document": i.document,
        "signature": { "algorithm": "Ed25519", "key_id": i.key_id, "value": i.signature,
                       "signed": "RFC 8785 canonical JSON of `document`" },
        "revision": i.revision,
    })
}

fn fmt(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Filters of `GET /v1/invoices`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InvoiceQuery {
    pub subscription_id: Option<String>,
    /// `finalized`, `paid` or `void`.
    pub status: Option<String>,
    /// `live` or `test`.
    pub mode: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists finalized invoices the caller issued or received (operators: all).
#[utoipa::path(get, path = "/v1/invoices", tag = "billing", params(InvoiceQuery),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn list_invoices(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<InvoiceQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = crate::ops::PageQuery {
        limit: q.limit,
        cursor: None,
    }
    .params()?;
    let subscription_id = match &q.subscription_id {
        Some(s) => Some(path_id::<SubscriptionId>(s, "subscription")?),
        None => None,
    };
    let orgs = match caller.scope() {
        tollgate_store::Scope::All => None,
        tollgate_store::Scope::Orgs(o) => Some(o),
    };
    let mut tx = st.store.read().await?;
    let mut items = tx
        .list_invoices(&InvoiceFilter {
            orgs,
            subscription_id,
            status: q.status.clone(),
            mode: q.mode.clone(),
            after: q.cursor.clone(),
            limit: page.limit,
        })
        .await?;
    let next_cursor = if items.len() as i64 > page.limit {
        items.truncate(page.limit as usize);
        items.last().map(|i| i.id.clone())
    } else {
        None
    };
    Ok(Json(json!({
        "items": items.iter().map(invoice_view).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

/// One invoice: JSON (the signed document), CSV (its lines) or a printable HTML page.
#[utoipa::path(get, path = "/v1/invoices/{invoice_id}", tag = "billing", params(("invoice_id" = String, Path), FormatQuery),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn get_invoice(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let inv = invoice_for(&mut tx, &caller, &id).await?;
    let notes = tx.invoice_credit_notes(&inv.id).await?;
    Ok(match format_of(&q, &headers) {
        Format::Json => Json(invoice_view(&inv)).into_response(),
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}.csv\"", inv.number),
                ),
            ],
            invoice_render::invoice_csv(&inv),
        )
            .into_response(),
        Format::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            invoice_render::invoice_html(&inv, &notes),
        )
            .into_response(),
    })
}

/// Paging of the proof's entries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// Entries after this leaf index (the previous page's `next_cursor`).
    pub cursor: Option<u64>,
    /// Entries per page, 1–1000 (default 1000).
    pub limit: Option<u32>,
}

/// What anyone needs to recompute an invoice's usage lines from the ledger: the signed
/// checkpoint it cites and the key that signed it, the price books, and every counted
/// entry with its inclusion proof against that checkpoint (paged by leaf index).
#[utoipa::path(get, path = "/v1/invoices/{invoice_id}/proof", tag = "billing", params(("invoice_id" = String, Path), ProofQuery),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn invoice_proof(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ProofQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000) as usize;
    let (inv, b) = {
        let mut tx = st.store.read().await?;
        let inv = invoice_for(&mut tx, &caller, &id).await?;
        let b = billing::billable(&mut tx, inv.subscription_id)
            .await?
            .ok_or_else(|| ApiError::internal("the invoice's subscription is not billable"))?;
        (inv, b)
    };
    let ledger = st
        .ledger
        .get()
        .ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "no usage ledger"))?;
    let log = ledger
        .log(&inv.log)
        .ok_or_else(|| ApiError::internal(format!("unknown log {}", inv.log)))?;
    let previous_size = inv
        .document
        .pointer("/ledger/previous_size")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let size = inv.checkpoint_size;
    let mut counted = Vec::new();
    if inv.kind == "period" {
        counted = billing::entries(
            &st,
            log,
            inv.subscription_id,
            inv.period_start,
            inv.period_end,
            0,
            size,
        )
        .await?;
        counted.extend(
            billing::entries(
                &st,
                log,
                inv.subscription_id,
                OffsetDateTime::UNIX_EPOCH,
                inv.period_start,
                previous_size,
                size,
            )
            .await?,
        );
        counted.sort_by_key(|c| c.index);
    }
    let total = counted.len();
    let after = q.cursor;
    let page: Vec<_> = counted
        .into_iter()
        .filter(|c| after.is_none_or(|a| c.index > a))
        .take(limit + 1)
        .collect();
    let next_cursor = (page.len() > limit).then(|| page[limit - 1].index);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut entries = Vec::new();
    for c in page.into_iter().take(limit) {
        let proof = log
            .reader()
            .inclusion_proof(c.index, size)
            .map_err(|e| ApiError::internal(format!("inclusion proof: {e}")))?;
        entries.push(json!({
            "index": c.index,
            "leaf": b64.encode(&c.leaf),
            "event": c.event,
            "inclusion_proof": proof.iter().map(|h| b64.encode(h)).collect::<Vec<_>>(),
        }));
    }
    let checkpoint_key = crate::ledger::current_verifier_key(&st, &log.origin).await;
    let invoice_key = {
        let ring = st.keyring.read().await;
        inv.key_id
            .parse()
            .ok()
            .and_then(|k| ring.get(k))
            .and_then(|r| r.public_key.as_ref())
            .map(|pk| b64.encode(pk))
    };
    Ok(Json(json!({
        "invoice": invoice_view(&inv),
        "invoice_public_key": invoice_key,
        "checkpoint": inv.document.pointer("/ledger/checkpoint"),
        "origin": log.origin,
        "checkpoint_verifier_key": checkpoint_key,
        "selection": {
            "subscription_id": inv.subscription_id,
            "log": inv.log,
            "period": { "start": fmt(inv.period_start), "end": fmt(inv.period_end) },
            "tree_size": size,
            "previous_size": previous_size,
            "rule": "entries of the subscription with leaf index < tree_size whose time lies in the period, plus entries of earlier times with leaf index in [previous_size, tree_size) (late usage)",
        },
        "price_books": b.books,
        "plan_history": b.history,
        "entries_total": total,
        "entries": entries,
        "next_cursor": next_cursor,
    })))
}

/// The customer sees an invoice but only its issuer's billing people change it.
fn require_issuer(caller: &Caller, inv: &InvoiceRecord) -> Result<(), ApiError> {
    if !caller.sees(inv.issuer_org_id) {
        return Err(ApiError::forbidden(
            "only the issuer (the provider) marks invoices paid or void and issues credit notes",
        ));
    }
    caller.require(inv.issuer_org_id, Action::ManageBilling, "invoice")
}

async fn set_status(
    st: &AppState,
    caller: &Caller,
    id: &str,
    status: &str,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let inv = invoice_for(&mut tx, caller, id).await?;
    require_issuer(caller, &inv)?;
    if inv.status != "finalized" {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            format!("invoice {} is {}, not finalized", inv.number, inv.status),
        ));
    }
    if status == "void" && !tx.invoice_credit_notes(&inv.id).await?.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "an invoice with credit notes cannot be voided",
        ));
    }
    let now = st.now();
    tx.set_invoice_status(&inv.id, status, now, inv.revision)
        .await?;
    audited(
        st,
        &mut tx,
        caller,
        if status == "paid" {
            "invoice.pay"
        } else {
            "invoice.void"
        },
        "invoice",
        inv.id.clone(),
        Some(inv.issuer_org_id),
    )
    .await?;
    let updated = tx
        .get_invoice(&inv.id)
        .await?
        .ok_or_else(|| ApiError::internal("invoice vanished"))?;
    tx.commit().await?;
    Ok(Json(invoice_view(&updated)).into_response())
}

/// Marks a finalized invoice paid (its document does not change).
#[utoipa::path(post, path = "/v1/invoices/{invoice_id}/pay", tag = "billing", params(("invoice_id" = String, Path)),
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn pay_invoice(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_status(&st, &caller, &id, "paid").await
}

/// Voids a finalized, unpaid invoice that has no credit notes.
#[utoipa::path(post, path = "/v1/invoices/{invoice_id}/void", tag = "billing", params(("invoice_id" = String, Path)),
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn void_invoice(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_status(&st, &caller, &id, "void").await
}

/// Body of `POST /v1/invoices/{id}/credit-notes`: an amount or whole lines.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCreditNote {
    /// Decimal string, taxes included; or give `lines`.
    pub amount: Option<String>,
    /// Indexes of the invoice's lines to credit whole.
    #[serde(default)]
    pub lines: Vec<usize>,
    /// Why (shown on the note).
    pub reason: String,
}

/// An invoice's credit notes.
#[utoipa::path(get, path = "/v1/invoices/{invoice_id}/credit-notes", tag = "billing", params(("invoice_id" = String, Path)),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn list_credit_notes(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = st.store.read().await?;
    let inv = invoice_for(&mut tx, &caller, &id).await?;
    let notes = tx.invoice_credit_notes(&inv.id).await?;
    Ok(Json(
        json!({ "items": notes.iter().map(credit_note_view).collect::<Vec<_>>() }),
    ))
}

fn credit_note_view(n: &tollgate_store::CreditNoteRecord) -> Value {
    json!({
        "id": n.id,
        "number": n.number,
        "invoice_id": n.invoice_id,
        "amount": n.amount,
        "issued_at": fmt(n.issued_at),
        "document": n.document,
        "signature": { "algorithm": "Ed25519", "key_id": n.key_id, "value": n.signature },
    })
}

/// Issues a credit note on a finalized invoice (never editing it): the part that reduces
/// what is still owed, and the part beyond it credited to the customer's balance.
#[utoipa::path(post, path = "/v1/invoices/{invoice_id}/credit-notes", tag = "billing", params(("invoice_id" = String, Path)),
    request_body = CreateCreditNote,
    responses((status = 201, body = Object), WriteErrors), security(("bearer" = [])))]
async fn create_credit_note(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateCreditNote>,
) -> Result<Response, ApiError> {
    if req.reason.trim().is_empty() {
        return Err(ApiError::validation(vec![field(
            "/reason",
            "must not be empty",
        )]));
    }
    let amount = match (&req.amount, req.lines.is_empty()) {
        (Some(a), true) => parse_amount("/amount", a)?,
        (None, false) => Decimal::ZERO,
        _ => {
            return Err(ApiError::validation(vec![field(
                "/amount",
                "give exactly one of `amount` and `lines`",
            )]));
        }
    };
    let ring = st.keyring.read().await;
    let mut tx = st.store.write().await?;
    let inv = invoice_for(&mut tx, &caller, &id).await?;
    require_issuer(&caller, &inv)?;
    if inv.status == "void" {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "the invoice is void",
        ));
    }
    let rated: tollgate_billing::RatedInvoice =
        serde_json::from_value(inv.document.get("invoice").cloned().unwrap_or(Value::Null))
            .map_err(|e| ApiError::internal(format!("stored invoice: {e}")))?;
    let note_id = billing::issue_credit_note(
        &ring,
        &mut tx,
        &inv,
        &rated,
        amount,
        CreditOrigin::Manual {
            reason: req.reason.clone(),
            lines: req.lines.clone(),
        },
        st.now(),
        st.now(),
    )
    .await?;
    audited(
        &st,
        &mut tx,
        &caller,
        "credit_note.issue",
        "credit_note",
        note_id.clone(),
        Some(inv.issuer_org_id),
    )
    .await?;
    let note = tx
        .get_credit_note(&note_id)
        .await?
        .ok_or_else(|| ApiError::internal("credit note vanished"))?;
    tx.commit().await?;
    drop(ring);
    Ok((StatusCode::CREATED, Json(credit_note_view(&note))).into_response())
}

/// The invoice the current period would get if it closed now (a live preview, never
/// stored): rated from everything in the ledger so far, marked `provisional` until the
/// period and its grace window end.
#[utoipa::path(get, path = "/v1/subscriptions/{subscription_id}/upcoming-invoice", tag = "billing", params(("subscription_id" = String, Path)),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn upcoming_invoice(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let b = {
        let mut tx = st.store.read().await?;
        let sub = super::catalog::visible_subscription(&mut tx, &caller, &id).await?;
        billing::billable(&mut tx, sub.id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                "the subscription's terms carry no prices: nothing is billed",
            )
        })?
    };
    let (invoice, size) = billing::upcoming(&st, &b).await?;
    Ok(Json(json!({
        "subscription_id": b.sub.id,
        "mode": b.mode(),
        "now": fmt(billing::now_for(&st, b.sub.id)),
        "test_clock_id": b.clock,
        "ledger": { "log": b.mode(), "size": size },
        "invoice": invoice,
    })))
}

// ------------------------------------------------------------------ test clocks

/// Body of `POST /v1/test-clocks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTestClock {
    pub org_id: OrgId,
    pub name: String,
    /// The clock's starting time, RFC 3339.
    pub frozen_time: String,
}

fn clock_view(c: &TestClock) -> Value {
    json!({
        "id": c.id, "org_id": c.org_id, "name": c.name,
        "frozen_time": fmt(c.frozen_time), "created_at": fmt(c.created_at), "revision": c.revision,
    })
}

fn require_clock_rights(caller: &Caller, org: OrgId) -> Result<(), ApiError> {
    caller
        .require(org, Action::ManageBilling, "test clock")
        .or_else(|_| caller.require(org, Action::Subscribe, "test clock"))
}

/// Makes a test clock: frozen time that test subscriptions attached to it are billed
/// by, moved only forward by `advance`.
#[utoipa::path(post, path = "/v1/test-clocks", tag = "billing", request_body = CreateTestClock,
    responses((status = 201, body = Object), WriteErrors), security(("bearer" = [])))]
async fn create_test_clock(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreateTestClock>,
) -> Result<Response, ApiError> {
    let frozen_time = parse_time("/frozen_time", &req.frozen_time)?;
    if req.name.trim().is_empty() || req.name.len() > 200 {
        return Err(ApiError::validation(vec![field(
            "/name",
            "must be 1–200 characters",
        )]));
    }
    require_clock_rights(&caller, req.org_id)?;
    let now = st.now();
    let clock = TestClock {
        id: format!("clock_{}", uuid::Uuid::now_v7().simple()),
        org_id: req.org_id,
        name: req.name.clone(),
        frozen_time,
        created_at: now,
        revision: 1,
    };
    let mut tx = st.store.write().await?;
    tx.insert_test_clock(&clock).await?;
    audited(
        &st,
        &mut tx,
        &caller,
        "test_clock.create",
        "test_clock",
        clock.id.clone(),
        Some(req.org_id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(clock_view(&clock))).into_response())
}

async fn clock_for(
    tx: &mut tollgate_store::Tx,
    caller: &Caller,
    id: &str,
) -> Result<TestClock, ApiError> {
    match tx.get_test_clock(id).await? {
        Some(c) if caller.sees(c.org_id) => Ok(c),
        _ => Err(ApiError::not_found("test clock")),
    }
}

/// A test clock.
#[utoipa::path(get, path = "/v1/test-clocks/{clock_id}", tag = "billing", params(("clock_id" = String, Path)),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn get_test_clock(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = st.store.read().await?;
    Ok(Json(clock_view(&clock_for(&mut tx, &caller, &id).await?)))
}

/// Body of `POST /v1/test-clocks/{id}/advance`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceTestClock {
    /// The new time, RFC 3339: later than the clock's.
    pub frozen_time: String,
}

/// Moves a test clock forward and runs what that time brings to its subscriptions: trial
/// ends, period closes after the grace window, invoice finalization, SLA credits.
#[utoipa::path(post, path = "/v1/test-clocks/{clock_id}/advance", tag = "billing", params(("clock_id" = String, Path)),
    request_body = AdvanceTestClock,
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn advance_test_clock(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AdvanceTestClock>,
) -> Result<Json<Value>, ApiError> {
    let to = parse_time("/frozen_time", &req.frozen_time)?;
    let clock = {
        let mut tx = st.store.write().await?;
        let clock = clock_for(&mut tx, &caller, &id).await?;
        require_clock_rights(&caller, clock.org_id)?;
        if to <= clock.frozen_time {
            return Err(ApiError::validation(vec![field(
                "/frozen_time",
                format!(
                    "must be later than the clock's time {}",
                    fmt(clock.frozen_time)
                ),
            )]));
        }
        tx.advance_test_clock(&clock.id, to, clock.revision).await?;
        audited(
            &st,
            &mut tx,
            &caller,
            "test_clock.advance",
            "test_clock",
            clock.id.clone(),
            Some(clock.org_id),
        )
        .await?;
        tx.commit().await?;
        clock
    };
    billing::load_clocks(&st).await?;
    let report = billing::close(&st, Some(&clock.id), |_, _| {}).await?;
    let mut tx = st.store.read().await?;
    let clock = clock_for(&mut tx, &caller, &id).await?;
    Ok(Json(
        json!({ "clock": clock_view(&clock), "close": report }),
    ))
}

/// Body of `POST /v1/subscriptions/{id}/test-clock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachTestClock {
    pub test_clock_id: String,
}

/// Attaches a test clock to a test-mode subscription that has no invoices yet: its
/// billing starts at the clock's time, and its usage events carry the clock's time.
#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/test-clock", tag = "billing", params(("subscription_id" = String, Path)),
    request_body = AttachTestClock,
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn attach_test_clock(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AttachTestClock>,
) -> Result<Json<Value>, ApiError> {
    let sub_id: SubscriptionId = path_id(&id, "subscription")?;
    let mut tx = st.store.write().await?;
    let sub = tx
        .get_subscription(sub_id)
        .await?
        .filter(|s| caller.sees(s.consumer_org_id))
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    require_clock_rights(&caller, sub.consumer_org_id)?;
    if sub.mode != KeyMode::Test {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "test clocks attach to test-mode subscriptions only",
        ));
    }
    let clock = clock_for(&mut tx, &caller, &req.test_clock_id).await?;
    if clock.org_id != sub.consumer_org_id {
        return Err(ApiError::validation(vec![field(
            "/test_clock_id",
            "the clock belongs to another organization",
        )]));
    }
    if !tx.subscription_invoices(sub.id).await?.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the subscription already has invoices: attach clocks before billing starts",
        ));
    }
    tx.attach_test_clock(sub.id, &clock.id, clock.frozen_time)
        .await?;
    audited(
        &st,
        &mut tx,
        &caller,
        "subscription.attach_test_clock",
        "subscription",
        sub.id.to_string(),
        Some(sub.consumer_org_id),
    )
    .await?;
    tx.commit().await?;
    if let Some(l) = st.ledger.get() {
        l.set_clock_time(sub.id, Some(clock.frozen_time));
    }
    Ok(Json(json!({
        "subscription_id": sub.id,
        "test_clock": clock_view(&clock),
        "billing_anchor": fmt(clock.frozen_time),
    })))
}

// ------------------------------------------------------------------ wallets

/// `?mode=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModeQuery {
    /// `live` (default) or `test`.
    pub mode: Option<KeyMode>,
}

/// An org's prepaid balances per currency, and their movements.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/wallet", tag = "billing", params(("org_id" = String, Path), ModeQuery),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn get_wallet(
    State(st): St,
    caller: Caller,
    Path(org): Path<String>,
    ApiQuery(q): ApiQuery<ModeQuery>,
) -> Result<Json<Value>, ApiError> {
    let org: OrgId = path_id(&org, "organization")?;
    caller.require(org, Action::Read, "organization")?;
    let mode = q.mode.unwrap_or_default();
    let mut tx = st.store.read().await?;
    let entries = tx.wallet_entries(org, mode.as_str(), None).await?;
    let mut balances = std::collections::BTreeMap::<String, Decimal>::new();
    for e in &entries {
        *balances.entry(e.currency.clone()).or_default() +=
            Decimal::from_str(&e.amount).unwrap_or_default();
    }
    Ok(Json(json!({
        "org_id": org,
        "mode": mode.as_str(),
        "balances": balances.iter().map(|(c, a)| json!({"currency": c, "balance": a.normalize().to_string()})).collect::<Vec<_>>(),
        "entries": entries.iter().map(|e| json!({
            "id": e.id, "currency": e.currency, "amount": e.amount, "reason": e.reason,
            "reference": e.reference, "at": fmt(e.at),
        })).collect::<Vec<_>>(),
    })))
}

/// Body of `POST /v1/orgs/{org_id}/wallet`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditWallet {
    /// `live` (default) or `test`.
    #[serde(default)]
    pub mode: KeyMode,
    /// ISO 4217 code.
    pub currency: String,
    /// Positive decimal string.
    pub amount: String,
    pub reason: String,
}

/// Adds prepaid credit to an org's wallet (operators: the payment happened elsewhere).
#[utoipa::path(post, path = "/v1/orgs/{org_id}/wallet", tag = "billing", params(("org_id" = String, Path)),
    request_body = CreditWallet,
    responses((status = 201, body = Object), WriteErrors), security(("bearer" = [])))]
async fn credit_wallet(
    State(st): St,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreditWallet>,
) -> Result<Response, ApiError> {
    let org: OrgId = path_id(&org, "organization")?;
    if !caller.is_operator() {
        caller.require(org, Action::Read, "organization")?;
        return Err(ApiError::forbidden(
            "only marketplace operators grant prepaid credit",
        ));
    }
    let amount = parse_amount("/amount", &req.amount)?;
    let mut errors = Vec::new();
    if amount <= Decimal::ZERO {
        errors.push(field("/amount", "must be more than 0"));
    }
    match tollgate_billing::minor_units(&req.currency) {
        None => errors.push(field("/currency", "is not an ISO 4217 currency code")),
        Some(m) if amount.scale() > m => errors.push(field(
            "/amount",
            format!("{} has {m} decimal places", req.currency),
        )),
        _ => {}
    }
    if req.reason.trim().is_empty() {
        errors.push(field("/reason", "must not be empty"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = st.store.write().await?;
    if tx.get_org(org).await?.is_none() {
        return Err(ApiError::not_found("organization"));
    }
    let entry = tollgate_store::WalletEntry {
        id: format!("wal_{}", uuid::Uuid::now_v7().simple()),
        org_id: org.to_string(),
        mode: req.mode.as_str().to_owned(),
        currency: req.currency.clone(),
        amount: amount.normalize().to_string(),
        reason: req.reason.clone(),
        reference: None,
        at: st.now(),
    };
    tx.insert_wallet_entry(&entry).await?;
    audited(
        &st,
        &mut tx,
        &caller,
        "wallet.credit",
        "wallet_entry",
        entry.id.clone(),
        Some(org),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": entry.id, "amount": entry.amount, "currency": entry.currency})),
    )
        .into_response())
}

// ------------------------------------------------------------------ accounts

/// Body of `PUT /v1/orgs/{org_id}/billing-account`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBillingAccount {
    /// ISO 3166 country (and subdivision): `FR`, `US-CA`.
    pub jurisdiction: Option<String>,
    /// Tax rates applied to this customer's invoices: `{id, jurisdiction, name, percent,
    /// applies_to}` each (no tax engine: the operator states them).
    #[schema(value_type = Vec<Object>)]
    pub tax_rates: Vec<tollgate_billing::TaxRate>,
}

/// A customer's billing settings.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/billing-account", tag = "billing", params(("org_id" = String, Path)),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn get_billing_account(
    State(st): St,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let org: OrgId = path_id(&org, "organization")?;
    caller.require(org, Action::Read, "organization")?;
    let mut tx = st.store.read().await?;
    let a = tx.get_billing_account(org).await?;
    Ok(Json(match a {
        Some(a) => {
            json!({"org_id": org, "jurisdiction": a.jurisdiction, "tax_rates": a.tax_rates, "revision": a.revision})
        }
        None => json!({"org_id": org, "jurisdiction": null, "tax_rates": [], "revision": 0}),
    }))
}

/// Sets a customer's jurisdiction and tax rates (operators).
#[utoipa::path(put, path = "/v1/orgs/{org_id}/billing-account", tag = "billing", params(("org_id" = String, Path)),
    request_body = PutBillingAccount,
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn put_billing_account(
    State(st): St,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<PutBillingAccount>,
) -> Result<Json<Value>, ApiError> {
    let org: OrgId = path_id(&org, "organization")?;
    if !caller.is_operator() {
        caller.require(org, Action::Read, "organization")?;
        return Err(ApiError::forbidden(
            "only marketplace operators set tax rates",
        ));
    }
    let mut errors = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for (i, r) in req.tax_rates.iter().enumerate() {
        if r.percent < Decimal::ZERO || r.percent > Decimal::ONE_HUNDRED {
            errors.push(field(
                &format!("/tax_rates/{i}/percent"),
                "must be between 0 and 100",
            ));
        }
        if r.id.is_empty() || !ids.insert(r.id.clone()) {
            errors.push(field(
                &format!("/tax_rates/{i}/id"),
                "must be non-empty and unique",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = st.store.write().await?;
    if tx.get_org(org).await?.is_none() {
        return Err(ApiError::not_found("organization"));
    }
    let existing = tx.get_billing_account(org).await?;
    let account = tollgate_store::BillingAccount {
        org_id: org,
        jurisdiction: req.jurisdiction.clone(),
        tax_rates: serde_json::to_value(&req.tax_rates).map_err(ApiError::internal)?,
        updated_at: st.now(),
        revision: existing.as_ref().map_or(1, |a| a.revision + 1),
    };
    tx.put_billing_account(&account, existing.map(|a| a.revision))
        .await?;
    audited(
        &st,
        &mut tx,
        &caller,
        "billing_account.update",
        "org",
        org.to_string(),
        Some(org),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(
        json!({"org_id": org, "jurisdiction": account.jurisdiction, "tax_rates": account.tax_rates, "revision": account.revision}),
    ))
}

// ------------------------------------------------------------------ payouts

const SETTINGS_KEY: &str = "billing_settings";

/// Marketplace-wide billing settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    /// The marketplace's fee on providers' revenue: `{"model": "percentage", "percent":
    /// "10"}` or `{"model": "tiered", "tiers": [...]}`. Default 0 %.
    #[schema(value_type = Object)]
    pub marketplace_fee: tollgate_billing::MarketplaceFee,
}

impl Default for BillingSettings {
    fn default() -> Self {
        BillingSettings {
            marketplace_fee: tollgate_billing::MarketplaceFee::Percentage {
                percent: Decimal::ZERO,
            },
        }
    }
}

pub(crate) async fn settings(tx: &mut tollgate_store::Tx) -> Result<BillingSettings, ApiError> {
    Ok(match tx.get_meta(SETTINGS_KEY).await? {
        Some(s) => serde_json::from_str(&s)
            .map_err(|e| ApiError::internal(format!("billing settings: {e}")))?,
        None => BillingSettings::default(),
    })
}

/// The marketplace's billing settings.
#[utoipa::path(get, path = "/v1/billing/settings", tag = "billing",
    responses((status = 200, body = BillingSettings), ReadErrors), security(("bearer" = [])))]
async fn get_settings(State(st): St, _caller: Caller) -> Result<Json<BillingSettings>, ApiError> {
    let mut tx = st.store.read().await?;
    Ok(Json(settings(&mut tx).await?))
}

/// Sets the marketplace fee (operators).
#[utoipa::path(put, path = "/v1/billing/settings", tag = "billing", request_body = BillingSettings,
    responses((status = 200, body = BillingSettings), WriteErrors), security(("bearer" = [])))]
async fn put_settings(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<BillingSettings>,
) -> Result<Json<BillingSettings>, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::forbidden(
            "only marketplace operators change billing settings",
        ));
    }
    if let tollgate_billing::MarketplaceFee::Percentage { percent } = &req.marketplace_fee
        && (*percent < Decimal::ZERO || *percent > Decimal::ONE_HUNDRED)
    {
        return Err(ApiError::validation(vec![field(
            "/marketplace_fee/percent",
            "must be between 0 and 100",
        )]));
    }
    let mut tx = st.store.write().await?;
    tx.set_meta(
        SETTINGS_KEY,
        &serde_json::to_string(&req).map_err(ApiError::internal)?,
    )
    .await?;
    crate::ops::audit(
        &st,
        &mut tx,
        &caller,
        crate::ops::Change {
            action: "billing_settings.update",
            target_type: "billing_settings",
            target_id: SETTINGS_KEY.into(),
            org_id: None,
            before: None,
            after: Some(&req),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(req))
}

/// Body of `POST /v1/payouts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayout {
    pub provider_org_id: OrgId,
    /// `live` (default) or `test`.
    #[serde(default)]
    pub mode: KeyMode,
    pub currency: String,
    /// Invoices whose period starts in `[period_start, period_end)` are counted, credit
    /// notes issued in it are charged back. RFC 3339.
    pub period_start: String,
    pub period_end: String,
}

/// Makes a provider's payout statement for a period (operators): gross revenue of its
/// invoices before tax, the marketplace fee, credit notes charged back, net payable,
/// reconciled so that Σ invoices before tax = gross.
#[utoipa::path(post, path = "/v1/payouts", tag = "billing", request_body = CreatePayout,
    responses((status = 201, body = Object), WriteErrors), security(("bearer" = [])))]
async fn create_payout(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreatePayout>,
) -> Result<Response, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::forbidden(
            "only marketplace operators make payouts",
        ));
    }
    let from = parse_time("/period_start", &req.period_start)?;
    let to = parse_time("/period_end", &req.period_end)?;
    if to <= from {
        return Err(ApiError::validation(vec![field(
            "/period_end",
            "must be after period_start",
        )]));
    }
    let mut tx = st.store.write().await?;
    let p = billing::make_payout(
        &st,
        &mut tx,
        req.provider_org_id,
        req.mode.as_str(),
        &req.currency,
        from,
        to,
    )
    .await?;
    audited(
        &st,
        &mut tx,
        &caller,
        "payout.create",
        "payout",
        p.id.clone(),
        Some(p.provider_org_id),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(payout_view(&p))).into_response())
}

fn payout_view(p: &tollgate_store::PayoutRecord) -> Value {
    json!({
        "id": p.id, "provider_org_id": p.provider_org_id, "mode": p.mode, "currency": p.currency,
        "period": {"start": fmt(p.period_start), "end": fmt(p.period_end)},
        "net_payable": p.net_payable, "created_at": fmt(p.created_at), "document": p.document,
    })
}

/// Payout statements of the caller's orgs (operators: all).
#[utoipa::path(get, path = "/v1/payouts", tag = "billing",
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn list_payouts(State(st): St, caller: Caller) -> Result<Json<Value>, ApiError> {
    let orgs = match caller.scope() {
        tollgate_store::Scope::All => None,
        tollgate_store::Scope::Orgs(o) => Some(o),
    };
    let mut tx = st.store.read().await?;
    let items = tx.list_payouts(orgs.as_deref()).await?;
    Ok(Json(
        json!({"items": items.iter().map(payout_view).collect::<Vec<_>>()}),
    ))
}

/// One payout statement: JSON, CSV or printable HTML.
#[utoipa::path(get, path = "/v1/payouts/{payout_id}", tag = "billing", params(("payout_id" = String, Path), FormatQuery),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn get_payout(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FormatQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let p = tx
        .get_payout(&id)
        .await?
        .filter(|p| caller.sees(p.provider_org_id))
        .ok_or_else(|| ApiError::not_found("payout"))?;
    Ok(match format_of(&q, &headers) {
        Format::Json => Json(payout_view(&p)).into_response(),
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            invoice_render::payout_csv(&p),
        )
            .into_response(),
        Format::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            invoice_render::payout_html(&p),
        )
            .into_response(),
    })
}

/// `?subscription_id=` of `POST /v1/billing/close`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CloseQuery {
    /// Close only this subscription (the CLI closes one at a time to show progress).
    pub subscription_id: Option<String>,
}

/// Finalizes every invoice that is due now (operators). Subscriptions on test clocks are
/// closed at their clock's time.
#[utoipa::path(post, path = "/v1/billing/close", tag = "billing", params(CloseQuery),
    responses((status = 200, body = billing::CloseReport), WriteErrors), security(("bearer" = [])))]
async fn close(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<CloseQuery>,
) -> Result<Json<billing::CloseReport>, ApiError> {
    if !caller.is_operator() {
        return Err(ApiError::forbidden(
            "only marketplace operators close billing periods",
        ));
    }
    match q.subscription_id {
        Some(s) => {
            let id: SubscriptionId = path_id(&s, "subscription")?;
            let mut report = billing::CloseReport {
                subscriptions: 1,
                ..Default::default()
            };
            billing::close_subscription(&st, id, &mut report).await?;
            Ok(Json(report))
        }
        None => Ok(Json(billing::close(&st, None, |_, _| {}).await?)),
    }
}

/// Body of `POST /v1/billing/quote`: a plan (its current term sheet's prices) or an
/// inline price book, and the period's usage.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// A plan whose current term sheet carries prices.
    pub plan_id: Option<tollgate_core::PlanId>,
    /// Or a price book in the schema term sheets use (`pricing.inline`).
    #[schema(value_type = Object)]
    pub price_book: Option<Value>,
    /// `{"quantities": {"calls": "120000"}, "amounts": {"payments": ["12.50", "80"]}}`.
    #[schema(value_type = Object)]
    pub usage: tollgate_billing::QuoteInput,
}

/// Rates a period's usage exactly as an invoice would: one whole period's base fee, a
/// line per charge with its tier breakdown, the shortfall, and the total (no taxes or
/// coupons: those depend on the customer). The portal's cost calculator uses it.
#[utoipa::path(post, path = "/v1/billing/quote", tag = "billing", request_body = QuoteRequest,
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn quote(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<QuoteRequest>,
) -> Result<Json<Value>, ApiError> {
    let book = match (&req.plan_id, &req.price_book) {
        (Some(plan_id), None) => {
            let mut tx = st.store.read().await?;
            let plan = tx
                .get_plan(*plan_id)
                .await?
                .filter(|p| {
                    p.visibility == tollgate_core::model::Visibility::Public
                        || caller.sees(p.org_id)
                })
                .ok_or_else(|| ApiError::not_found("plan"))?;
            let terms = match plan.terms_id {
                Some(t) => tx.get_terms(t).await?,
                None => None,
            }
            .ok_or_else(|| {
                ApiError::validation(vec![field("/plan_id", "the plan has no term sheet")])
            })?;
            billing::resolve_price_book(&mut tx, plan.org_id, &terms.document, &terms.sha256)
                .await?
                .ok_or_else(|| {
                    ApiError::validation(vec![field(
                        "/plan_id",
                        "the plan's terms carry no prices",
                    )])
                })?
        }
        (None, Some(v)) => tollgate_billing::PriceBook::from_json(v).map_err(|problems| {
            ApiError::validation(
                problems
                    .into_iter()
                    .map(|p| field(&format!("/price_book{}", p.pointer), p.message))
                    .collect(),
            )
        })?,
        _ => {
            return Err(ApiError::validation(vec![field(
                "/plan_id",
                "give exactly one of `plan_id` and `price_book`",
            )]));
        }
    };
    let q = tollgate_billing::quote(&book, &req.usage).map_err(|e| match e {
        tollgate_billing::Error::InvalidQuote { ref meter, .. } => {
            ApiError::validation(vec![field(
                &format!("/usage/quantities/{meter}"),
                e.to_string(),
            )])
        }
        e => ApiError::validation(vec![field("/usage", e.to_string())]),
    })?;
    Ok(Json(serde_json::to_value(q).map_err(ApiError::internal)?))
}

/// A subscription's coupons (visible to its consumer and provider).
#[utoipa::path(get, path = "/v1/subscriptions/{subscription_id}/coupons", tag = "billing",
    params(("subscription_id" = String, Path)),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn list_coupons(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut tx = st.store.read().await?;
    let sub = super::catalog::visible_subscription(&mut tx, &caller, &id).await?;
    let items = billing::coupons(&mut tx, sub.id).await?;
    Ok(Json(json!({"items": items.iter().map(|g| json!({
        "coupon": g.coupon, "periods_applied": g.periods_applied,
    })).collect::<Vec<_>>()})))
}

/// Body of `POST /v1/subscriptions/{subscription_id}/coupons`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCoupon {
    /// `{"id": "launch-20", "discount": {"type": "percent", "percent": "20"},
    /// "applies_to": ["base"], "periods": 3}`; `applies_to` empty: the whole invoice
    /// before taxes; `periods` absent: forever.
    #[schema(value_type = Object)]
    pub coupon: tollgate_billing::Coupon,
}

/// Puts a coupon on a subscription (its provider's owners, admins and billing members):
/// it discounts the next invoices, as many periods as it says.
#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/coupons", tag = "billing",
    params(("subscription_id" = String, Path)), request_body = AddCoupon,
    responses((status = 201, body = Object), WriteErrors), security(("bearer" = [])))]
async fn add_coupon(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddCoupon>,
) -> Result<Response, ApiError> {
    let c = &req.coupon;
    let mut errors = Vec::new();
    if c.id.is_empty()
        || c.id.len() > 63
        || !c
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errors.push(field("/coupon/id", "1–63 lowercase letters, digits and -"));
    }
    match &c.discount {
        tollgate_billing::Discount::Percent { percent }
            if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED =>
        {
            errors.push(field(
                "/coupon/discount/percent",
                "must be more than 0 and at most 100",
            ));
        }
        tollgate_billing::Discount::Amount { amount } if *amount <= Decimal::ZERO => {
            errors.push(field("/coupon/discount/amount", "must be more than 0"));
        }
        _ => {}
    }
    if c.periods == Some(0) {
        errors.push(field(
            "/coupon/periods",
            "must be at least 1 (leave it out for forever)",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = st.store.write().await?;
    let sub = super::catalog::visible_subscription(&mut tx, &caller, &id).await?;
    if !caller.sees(sub.provider_org_id) {
        return Err(ApiError::forbidden(
            "only the provider puts coupons on a subscription",
        ));
    }
    caller.require(sub.provider_org_id, Action::ManageBilling, "subscription")?;
    let value = serde_json::to_value(c).map_err(ApiError::internal)?;
    match tx.insert_coupon(sub.id, &c.id, &value, st.now()).await {
        Err(tollgate_store::StoreError::Duplicate(_)) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("the subscription already has coupon {}", c.id),
            ));
        }
        r => r?,
    }
    crate::ops::audit(
        &st,
        &mut tx,
        &caller,
        crate::ops::Change {
            action: "subscription.add_coupon",
            target_type: "subscription",
            target_id: sub.id.to_string(),
            org_id: Some(sub.provider_org_id),
            before: None,
            after: Some(&value),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"coupon": value, "periods_applied": 0})),
    )
        .into_response())
}

/// Body of `POST /v1/subscriptions/{subscription_id}/change-plan`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    /// Another published plan of the same provider.
    pub plan_id: tollgate_core::PlanId,
    /// SHA-256 of that plan's current term sheet: changing accepts it (a signed
    /// acceptance record, as when subscribing).
    pub accept_terms: String,
}

/// Moves a subscription to another plan of its provider, accepting that plan's terms.
/// Access follows at once (the gateway's next request); billing prorates by the old
/// price book's policy: by default an upgrade (a dearer base fee) is charged at once
/// with a credit for the unused time, a downgrade's base fee changes at the period's end.
/// Calls are rated by the sheet they were served under either way.
#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/change-plan", tag = "subscriptions",
    params(("subscription_id" = String, Path)), request_body = ChangePlan,
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn change_plan(
    State(st): St,
    caller: Caller,
    origin: crate::extract::OriginInfo,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ChangePlan>,
) -> Result<Json<Value>, ApiError> {
    use tollgate_core::model::{PlanStatus, SubscriptionState, Visibility};
    let mut tx = st.store.write().await?;
    let before = super::catalog::visible_subscription(&mut tx, &caller, &id).await?;
    if caller.role_in(before.consumer_org_id).is_none() {
        return Err(ApiError::forbidden(
            "only a member of the subscribing org changes its plan",
        ));
    }
    caller.require(before.consumer_org_id, Action::Subscribe, "subscription")?;
    if before.state != SubscriptionState::Active {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "only an active subscription changes plan",
        ));
    }
    if before.plan_id == req.plan_id {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the subscription is on this plan already",
        ));
    }
    let plan = tx
        .get_plan(req.plan_id)
        .await?
        .filter(|p| p.visibility == Visibility::Public || caller.sees(p.org_id))
        .ok_or_else(|| ApiError::validation(vec![field("/plan_id", "no such plan")]))?;
    let mut errors = Vec::new();
    if plan.org_id != before.provider_org_id {
        errors.push(field(
            "/plan_id",
            "a plan of the same provider: subscribe to another provider's plan instead",
        ));
    }
    if plan.status != PlanStatus::Published {
        errors.push(field("/plan_id", "the plan is not published"));
    }
    if plan.approval_required {
        errors.push(field(
            "/plan_id",
            "the plan needs the provider's approval: subscribe to it instead",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let terms = match plan.terms_id {
        Some(t) => tx.get_terms(t).await?,
        None => None,
    }
    .ok_or_else(|| {
        ApiError::validation(vec![field("/plan_id", "the plan has no terms to accept")])
    })?;
    crate::acceptance::check_accepts("/accept_terms", Some(&req.accept_terms), &terms)?;
    let mut sub = before.clone();
    sub.plan_id = plan.id;
    let a = crate::acceptance::sign(&st, &caller, &sub, &terms, &origin.0).await?;
    tx.set_subscription_plan(sub.id, plan.id).await?;
    tx.insert_acceptance(&a, a.record.subscription_id, a.record.terms_id)
        .await?;
    sub.terms_sha256 = Some(terms.sha256.clone());
    sub.revision += 1;
    sub.updated_at = st.now();
    tx.update_subscription(&sub, before.revision, before.history.len())
        .await?;
    audited(
        &st,
        &mut tx,
        &caller,
        "subscription.change_plan",
        "subscription",
        sub.id.to_string(),
        Some(sub.consumer_org_id),
    )
    .await?;
    crate::ops::commit(&st, tx, true).await?;
    Ok(Json(json!({
        "subscription_id": sub.id,
        "from_plan_id": before.plan_id,
        "plan_id": plan.id,
        "terms_sha256": terms.sha256,
        "acceptance": a,
    })))
}

/// Body of `POST /v1/orgs/{org_id}/price-books`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePriceBook {
    /// A price book, the schema of a term sheet's `pricing.inline`.
    #[schema(value_type = Object)]
    pub price_book: Value,
}

/// Stores a price book version for term sheets to reference (`pricing.ref: {id,
/// sha256}`). Content-addressed: storing the same book again answers the stored one; a
/// different book under an existing id and version is refused.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/price-books", tag = "billing",
    params(("org_id" = String, Path)), request_body = CreatePriceBook,
    responses((status = 201, body = Object), WriteErrors), security(("bearer" = [])))]
async fn create_price_book(
    State(st): St,
    caller: Caller,
    Path(org): Path<String>,
    ApiJson(req): ApiJson<CreatePriceBook>,
) -> Result<Response, ApiError> {
    let org: OrgId = path_id(&org, "organization")?;
    caller.require(org, Action::ManagePlans, "organization")?;
    let book = tollgate_billing::PriceBook::from_json(&req.price_book).map_err(|problems| {
        ApiError::validation(
            problems
                .into_iter()
                .map(|p| field(&format!("/price_book{}", p.pointer), p.message))
                .collect(),
        )
    })?;
    let sha = book.sha256();
    let document = serde_json::to_value(&book).map_err(ApiError::internal)?;
    let view = |created: bool| {
        json!({"org_id": org, "id": book.id, "version": book.version, "sha256": sha,
               "reference": {"id": book.id, "sha256": sha}, "price_book": document, "created": created})
    };
    let mut tx = st.store.write().await?;
    if tx.get_org(org).await?.is_none() {
        return Err(ApiError::not_found("organization"));
    }
    if tx.get_price_book(org, &sha).await?.is_some() {
        return Ok((StatusCode::OK, Json(view(false))).into_response());
    }
    match tx
        .insert_price_book(org, &sha, &book.id, &book.version, &document, st.now())
        .await
    {
        Err(tollgate_store::StoreError::Duplicate(_)) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "{} version {} exists with other prices; a change is a new version",
                    book.id, book.version
                ),
            ));
        }
        r => r?,
    }
    audited(
        &st,
        &mut tx,
        &caller,
        "price_book.create",
        "price_book",
        sha.clone(),
        Some(org),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view(true))).into_response())
}

/// An org's stored price books (members of the org).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/price-books", tag = "billing",
    params(("org_id" = String, Path)),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn list_price_books(
    State(st): St,
    caller: Caller,
    Path(org): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let org: OrgId = path_id(&org, "organization")?;
    caller.require(org, Action::Read, "organization")?;
    let mut tx = st.store.read().await?;
    let items = tx.list_price_books(org).await?;
    Ok(Json(
        json!({"items": items.iter().map(|(sha, id, version, at)| json!({
        "id": id, "version": version, "sha256": sha, "created_at": fmt(*at),
    })).collect::<Vec<_>>()}),
    ))
}

/// One stored price book, by hash: for the org's members, and for anyone once a
/// published term sheet of the org references it (its prices are then public terms).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/price-books/{sha256}", tag = "billing",
    params(("org_id" = String, Path), ("sha256" = String, Path)),
    responses((status = 200, body = Object), ReadErrors), security(("bearer" = [])))]
async fn get_price_book(
    State(st): St,
    caller: Caller,
    Path((org, sha)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let org: OrgId = path_id(&org, "organization")?;
    let mut tx = st.store.read().await?;
    if !caller.sees(org) && !published_reference(&mut tx, org, &sha).await? {
        return Err(ApiError::not_found("price book"));
    }
    let (id, version, document) = tx
        .get_price_book(org, &sha)
        .await?
        .ok_or_else(|| ApiError::not_found("price book"))?;
    Ok(Json(
        json!({"org_id": org, "id": id, "version": version, "sha256": sha, "price_book": document}),
    ))
}

/// Body of `POST /v1/subscriptions/{subscription_id}/cancel-at-period-end`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelAtPeriodEnd {
    pub reason: String,
}

/// Cancels a subscription at the end of its current billing period (the subscriber):
/// service and access continue until then, no fee is charged for the next period, and
/// the close cancels the subscription when the period is over. (To cancel at once, post
/// a `cancelled` transition.)
#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/cancel-at-period-end", tag = "subscriptions",
    params(("subscription_id" = String, Path)), request_body = CancelAtPeriodEnd,
    responses((status = 200, body = Object), WriteErrors), security(("bearer" = [])))]
async fn cancel_at_period_end(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CancelAtPeriodEnd>,
) -> Result<Json<Value>, ApiError> {
    if req.reason.trim().is_empty() {
        return Err(ApiError::validation(vec![field(
            "/reason",
            "must not be empty",
        )]));
    }
    let mut tx = st.store.write().await?;
    let sub = super::catalog::visible_subscription(&mut tx, &caller, &id).await?;
    if caller.role_in(sub.consumer_org_id).is_none() {
        return Err(ApiError::forbidden(
            "only a member of the subscribing org cancels its subscription",
        ));
    }
    caller.require(sub.consumer_org_id, Action::Subscribe, "subscription")?;
    if sub.state == tollgate_core::model::SubscriptionState::Cancelled {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "the subscription is cancelled already",
        ));
    }
    let at = billing::now_for(&st, sub.id);
    tx.request_cancellation(sub.id, Some(at)).await?;
    let ends_at = match billing::billable(&mut tx, sub.id).await? {
        Some(b) => Some(fmt(billing::from_ts(b.period_at(billing::to_ts(at))?.end))),
        None => None,
    };
    audited(
        &st,
        &mut tx,
        &caller,
        "subscription.request_cancellation",
        "subscription",
        sub.id.to_string(),
        Some(sub.consumer_org_id),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "subscription_id": sub.id,
        "requested_at": fmt(at),
        "service_ends_at": ends_at,
        "reason": req.reason,
    })))
}

/// Whether a published term sheet of `org` prices by reference to `sha`.
async fn published_reference(
    tx: &mut tollgate_store::Tx,
    org: OrgId,
    sha: &str,
) -> Result<bool, ApiError> {
    let mut after = None;
    loop {
        let page = tx
            .list_terms(
                &tollgate_store::Scope::All,
                Some(org),
                &tollgate_store::PageParams { after, limit: 200 },
            )
            .await?;
        if page.items.iter().any(|t| {
            t.status == tollgate_core::model::TermsStatus::Published
                && t.document
                    .pointer("/pricing/ref/sha256")
                    .and_then(Value::as_str)
                    == Some(sha)
        }) {
            return Ok(true);
        }
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return Ok(false),
        }
    }
}
