//! Invoices and payout statements as CSV (RFC 4180: one row per line, then the totals)
//! and as a printable, self-contained HTML page. Both are views of the signed JSON
//! document: they add nothing to it and round nothing again.

use serde_json::Value;
use std::fmt::Write as _;
use tollgate_store::{CreditNoteRecord, InvoiceRecord, PayoutRecord};

/// One CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_row(out: &mut String, fields: &[&str]) {
    let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    out.push_str(&row.join(","));
    out.push_str("\r\n");
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn tiers_text(line: &Value) -> String {
    line.get("tiers")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    format!(
                        "{} × {}{}",
                        s(t, "quantity"),
                        s(t, "unit_price"),
                        match t.get("flat_fee").and_then(Value::as_str) {
                            Some(f) if f != "0" => format!(" + {f}"),
                            _ => String::new(),
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// The invoice's lines as CSV.
pub fn invoice_csv(inv: &InvoiceRecord) -> String {
    let mut out = String::new();
    csv_row(
        &mut out,
        &[
            "invoice",
            "number",
            "line",
            "kind",
            "description",
            "charge",
            "meter",
            "late",
            "quantity",
            "free_units",
            "unit_price",
            "tiers",
            "service_start",
            "service_end",
            "events",
            "amount_unrounded",
            "amount",
            "currency",
        ],
    );
    let doc = inv.document.get("invoice").cloned().unwrap_or(Value::Null);
    let empty = Vec::new();
    let lines = doc.get("lines").and_then(Value::as_array).unwrap_or(&empty);
    for (i, l) in lines.iter().enumerate() {
        let period = l.get("service_period");
        let events = l
            .pointer("/events/count")
            .map(|c| c.to_string())
            .unwrap_or_default();
        csv_row(
            &mut out,
            &[
                &inv.id,
                &inv.number,
                &i.to_string(),
                s(l, "kind"),
                s(l, "description"),
                s(l, "charge"),
                s(l, "meter"),
                if l.get("late").and_then(Value::as_bool) == Some(true) {
                    "true"
                } else {
                    "false"
                },
                s(l, "quantity"),
                s(l, "free_units"),
                s(l, "unit_price"),
                &tiers_text(l),
                period.map(|p| s(p, "start")).unwrap_or(""),
                period.map(|p| s(p, "end")).unwrap_or(""),
                &events,
                s(l, "amount_unrounded"),
                s(l, "amount"),
                &inv.currency,
            ],
        );
    }
    for key in ["subtotal", "discounts", "tax", "total", "amount_due"] {
        csv_row(
            &mut out,
            &[
                &inv.id,
                &inv.number,
                "",
                key,
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                s(&doc, key),
                &inv.currency,
            ],
        );
    }
    out
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#111}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#666;font-size:12px}\
.late{background:#fff7e0}tfoot td{font-weight:600}@media print{body{margin:0}}";

/// A printable invoice page (no scripts, no external resources).
pub fn invoice_html(inv: &InvoiceRecord, notes: &[CreditNoteRecord]) -> String {
    let doc = inv.document.get("invoice").cloned().unwrap_or(Value::Null);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><meta charset=utf-8><title>Invoice {n}</title><style>{STYLE}</style>\
         <h1>Invoice {n}</h1><p>Status: <b>{st}</b> · {mode} mode · finalized {fin}</p>\
         <p>Issuer (provider) <code>{iss}</code><br>Customer <code>{cus}</code><br>Subscription <code>{sub}</code><br>\
         Period {ps} → {pe}</p>",
        n = esc(&inv.number),
        st = esc(&inv.status),
        mode = esc(&inv.mode),
        fin = esc(s(&inv.document, "finalized_at")),
        iss = inv.issuer_org_id,
        cus = inv.customer_org_id,
        sub = inv.subscription_id,
        ps = esc(&inv.period_start.to_string()),
        pe = esc(&inv.period_end.to_string()),
    );
    h.push_str("<table><thead><tr><th>#</th><th>Description</th><th class=n>Quantity</th><th>Price</th><th class=n>Amount</th></tr></thead><tbody>");
    let empty = Vec::new();
    for (i, l) in doc
        .get("lines")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let late = l.get("late").and_then(Value::as_bool) == Some(true);
        let price = if l.get("tiers").is_some() {
            tiers_text(l)
        } else {
            s(l, "unit_price").to_owned()
        };
        let _ = write!(
            h,
            "<tr{cls}><td>{i}</td><td>{d}{late}</td><td class=n>{q}</td><td>{p}</td><td class=n>{a}</td></tr>",
            cls = if late { " class=late" } else { "" },
            d = esc(s(l, "description")),
            late = if late {
                " <span class=muted>(late usage)</span>"
            } else {
                ""
            },
            q = esc(s(l, "quantity")),
            p = esc(&price),
            a = esc(s(l, "amount")),
        );
    }
    h.push_str("</tbody><tfoot>");
    for (label, key) in [
        ("Subtotal", "subtotal"),
        ("Discounts", "discounts"),
        ("Tax", "tax"),
        ("Total", "total"),
        ("Amount due", "amount_due"),
    ] {
        let _ = write!(
            h,
            "<tr><td></td><td>{label}</td><td></td><td></td><td class=n>{} {}</td></tr>",
            esc(s(&doc, key)),
            esc(&inv.currency)
        );
    }
    h.push_str("</tfoot></table>");
    if !notes.is_empty() {
        h.push_str("<h2>Credit notes</h2><ul>");
        for n in notes {
            let _ = write!(
                h,
                "<li>{} — {} {} — {}</li>",
                esc(&n.number),
                esc(&n.amount),
                esc(&inv.currency),
                esc(s(&n.document, "reason"))
            );
        }
        h.push_str("</ul>");
    }
    let _ = write!(
        h,
        "<p class=muted>Rated from ledger log <code>{log}</code> at checkpoint size {size} (root <code>{root}</code>). \
         Signed Ed25519 by key <code>{key}</code> over the RFC 8785 canonical JSON of the document; \
         recompute every line from <code>GET /v1/invoices/{id}/proof</code>.</p></html>",
        log = esc(&inv.log),
        size = inv.checkpoint_size,
        root = esc(inv
            .document
            .pointer("/ledger/checkpoint/root")
            .and_then(Value::as_str)
            .unwrap_or("")),
        key = esc(&inv.key_id),
        id = esc(&inv.id),
    );
    h
}

/// A payout statement as CSV: one row per invoice, then the payout's figures.
pub fn payout_csv(p: &PayoutRecord) -> String {
    let mut out = String::new();
    csv_row(
        &mut out,
        &[
            "payout",
            "row",
            "reference",
            "number",
            "pre_tax_total",
            "tax",
            "total",
            "currency",
        ],
    );
    let empty = Vec::new();
    for i in p
        .document
        .get("invoices")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
    {
        csv_row(
            &mut out,
            &[
                &p.id,
                "invoice",
                s(i, "id"),
                s(i, "number"),
                s(i, "pre_tax_total"),
                s(i, "tax"),
                s(i, "total"),
                &p.currency,
            ],
        );
    }
    let payout = p.document.get("payout").cloned().unwrap_or(Value::Null);
    for key in ["gross", "marketplace_fee", "refunds", "net_payable"] {
        csv_row(
            &mut out,
            &[&p.id, key, "", "", s(&payout, key), "", "", &p.currency],
        );
    }
    out
}

/// A printable payout statement.
pub fn payout_html(p: &PayoutRecord) -> String {
    let payout = p.document.get("payout").cloned().unwrap_or(Value::Null);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><meta charset=utf-8><title>Payout {id}</title><style>{STYLE}</style>\
         <h1>Payout statement</h1><p>Provider <code>{prov}</code> · {mode} mode · {ps} → {pe}</p>\
         <table><thead><tr><th>Invoice</th><th class=n>Before tax</th></tr></thead><tbody>",
        id = esc(&p.id),
        prov = p.provider_org_id,
        mode = esc(&p.mode),
        ps = esc(&p.period_start.to_string()),
        pe = esc(&p.period_end.to_string()),
    );
    let empty = Vec::new();
    for i in p
        .document
        .get("invoices")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
    {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td></tr>",
            esc(s(i, "number")),
            esc(s(i, "pre_tax_total"))
        );
    }
    h.push_str("</tbody><tfoot>");
    for (label, key) in [
        ("Gross", "gross"),
        ("Marketplace fee", "marketplace_fee"),
        ("Refunds and credits", "refunds"),
        ("Net payable", "net_payable"),
    ] {
        let _ = write!(
            h,
            "<tr><td>{label}</td><td class=n>{} {}</td></tr>",
            esc(s(&payout, key)),
            esc(&p.currency)
        );
    }
    h.push_str("</tfoot></table></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_rfc_4180_requires() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn html_escapes_markup() {
        assert_eq!(esc("<script>&'\""), "&lt;script&gt;&amp;&#39;&quot;");
    }
}
