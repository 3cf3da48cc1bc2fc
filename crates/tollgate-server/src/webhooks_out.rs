//! Billing's events out: what each webhook says and to whom. Delivery (Standard Webhooks
//! signatures, retries, endpoints) is [`crate::webhooks`]; these functions only enqueue,
//! inside the transaction that made the change, so an event exists iff the change
//! committed. The event id is the document's id, the same for every recipient: a
//! receiver deduplicates by `webhook-id`.

use crate::error::ApiError;
use crate::webhooks::{CREDIT_NOTE_ISSUED, INVOICE_FINALIZED, PAYOUT_READY, enqueue};
use serde_json::json;
use time::OffsetDateTime;
use tollgate_store::{CreditNoteRecord, InvoiceRecord, PayoutRecord, Tx};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `invoice.finalized`, to the customer and the issuer: what a payment system needs to
/// charge (amount due, currency, number) and where the signed document is.
/// `listening`: the orgs with webhook endpoints, when the caller knows them (a close
/// writing thousands of invoices); others are skipped, since they would get no delivery.
pub async fn invoice_finalized(
    tx: &mut Tx,
    inv: &InvoiceRecord,
    at: OffsetDateTime,
    listening: Option<&std::collections::HashSet<tollgate_core::OrgId>>,
) -> Result<(), ApiError> {
    let data = json!({
        "invoice_id": inv.id,
        "number": inv.number,
        "kind": inv.kind,
        "mode": inv.mode,
        "issuer_org_id": inv.issuer_org_id,
        "customer_org_id": inv.customer_org_id,
        "subscription_id": inv.subscription_id,
        "period": { "start": rfc3339(inv.period_start), "end": rfc3339(inv.period_end) },
        "currency": inv.currency,
        "total": inv.total,
        "amount_due": inv.amount_due,
        "url": format!("/v1/invoices/{}", inv.id),
    });
    for org in recipients(inv.customer_org_id, inv.issuer_org_id) {
        if listening.is_none_or(|l| l.contains(&org)) {
            enqueue(tx, org, INVOICE_FINALIZED, &inv.id, data.clone(), at).await?;
        }
    }
    Ok(())
}

/// `credit_note.issued`, to the customer and the issuer.
pub async fn credit_note_issued(
    tx: &mut Tx,
    note: &CreditNoteRecord,
    at: OffsetDateTime,
) -> Result<(), ApiError> {
    let data = json!({
        "credit_note_id": note.id,
        "number": note.number,
        "invoice_id": note.invoice_id,
        "mode": note.mode,
        "issuer_org_id": note.issuer_org_id,
        "customer_org_id": note.customer_org_id,
        "amount": note.amount,
        "currency": note.document.get("currency"),
        "split": note.document.get("split"),
        "reason": note.document.get("reason"),
    });
    for org in recipients(note.customer_org_id, note.issuer_org_id) {
        enqueue(tx, org, CREDIT_NOTE_ISSUED, &note.id, data.clone(), at).await?;
    }
    Ok(())
}

/// `payout.ready`, to the provider.
pub async fn payout_ready(
    tx: &mut Tx,
    p: &PayoutRecord,
    at: OffsetDateTime,
) -> Result<(), ApiError> {
    let data = json!({
        "payout_id": p.id,
        "provider_org_id": p.provider_org_id,
        "mode": p.mode,
        "currency": p.currency,
        "period": { "start": rfc3339(p.period_start), "end": rfc3339(p.period_end) },
        "net_payable": p.net_payable,
        "url": format!("/v1/payouts/{}", p.id),
    });
    enqueue(tx, p.provider_org_id, PAYOUT_READY, &p.id, data, at).await?;
    Ok(())
}

/// The customer, and the issuer when it is another org.
fn recipients(
    customer: tollgate_core::OrgId,
    issuer: tollgate_core::OrgId,
) -> Vec<tollgate_core::OrgId> {
    if customer == issuer {
        vec![customer]
    } else {
        vec![customer, issuer]
    }
}
