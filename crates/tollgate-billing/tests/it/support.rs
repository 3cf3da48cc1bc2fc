//! Builders shared by the tests: books from JSON, events, subscriptions.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::str::FromStr;
use tollgate_billing::*;

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn book(v: Value) -> PriceBook {
    PriceBook::from_json(&v).unwrap_or_else(|p| panic!("invalid book: {p:?}"))
}

pub fn march() -> Span {
    Span::new(ts("2025-03-01T00:00:00Z"), ts("2025-04-01T00:00:00Z"))
}

pub fn april() -> Span {
    Span::new(ts("2025-04-01T00:00:00Z"), ts("2025-05-01T00:00:00Z"))
}

/// A call event of subscription `sub-1`.
pub fn ev(id: &str, time: &str, term_sheet: &str, operation: &str, status: u16) -> UsageEvent {
    UsageEvent {
        id: id.into(),
        time: ts(time),
        subscription: "sub-1".into(),
        operation: operation.into(),
        method: "GET".into(),
        status,
        request_bytes: 100,
        response_bytes: 2000,
        latency_ms: 40,
        term_sheet: term_sheet.into(),
        fields: Default::default(),
    }
}

/// A payment event carrying a provider-reported `amount`.
pub fn pay(id: &str, time: &str, term_sheet: &str, amount: &str) -> UsageEvent {
    let mut e = ev(id, time, term_sheet, "createPayment", 201);
    e.method = "POST".into();
    e.fields.insert("amount".into(), json!(amount));
    e
}

/// `n` successful `getForecast` calls spread over March, ids `c00000`….
pub fn calls(n: usize, term_sheet: &str) -> Vec<UsageEvent> {
    (0..n)
        .map(|i| {
            let t = ts("2025-03-01T00:00:00Z").as_second() + (i as i64 * 997) % (31 * 86_400);
            let mut e = ev(
                &format!("c{i:06}"),
                "2025-03-01T00:00:00Z",
                term_sheet,
                "getForecast",
                200,
            );
            e.time = Timestamp::from_second(t).unwrap();
            e
        })
        .collect()
}

pub fn sub(term_sheet: &str, started: &str) -> Subscription {
    Subscription {
        id: "sub-1".into(),
        started: ts(started),
        term_sheet: term_sheet.into(),
        changes: vec![],
        cancellation: None,
    }
}

pub fn books(pairs: &[(&str, &PriceBook)]) -> BTreeMap<String, PriceBook> {
    pairs
        .iter()
        .map(|(k, b)| (k.to_string(), (*b).clone()))
        .collect()
}

/// Rates with no coupons, taxes or wallet, at an instant long after the period.
pub fn rate_plain(
    s: &Subscription,
    books: &BTreeMap<String, PriceBook>,
    period: Span,
    events: &[UsageEvent],
) -> RatedInvoice {
    rate(&RatingInput {
        subscription: s,
        books,
        period,
        events,
        wallet_balance: Decimal::ZERO,
        coupons: &[],
        taxes: &[],
        now: ts("2030-01-01T00:00:00Z"),
    })
    .unwrap()
}

/// `(kind, charge, amount)` of every line, for compact assertions.
pub fn summary(inv: &RatedInvoice) -> Vec<(LineKind, String, String)> {
    inv.lines
        .iter()
        .map(|l| {
            (
                l.kind,
                l.charge.clone().unwrap_or_default(),
                l.amount.to_string(),
            )
        })
        .collect()
}

/// The book of the snapshot invoice: base fee, graduated calls, percentage payments.
pub fn pro_book() -> PriceBook {
    book(json!({
        "id": "weather-pro",
        "version": "2025-03",
        "currency": "USD",
        "base_fee": { "amount": "49.00", "timing": "in_arrears" },
        "meters": [
            { "id": "calls", "aggregate": "count",
              "filter": { "operations": ["getForecast"], "status": ["2xx"] } },
            { "id": "payments", "aggregate": "sum", "field": "fields.amount",
              "filter": { "operations": ["createPayment"] } }
        ],
        "charges": [
            { "id": "api-calls", "meter": "calls", "description": "Forecast calls",
              "free_units": "1000",
              "price": { "model": "graduated", "tiers": [
                  { "up_to": "1000", "unit_price": "0.01" },
                  { "up_to": null, "unit_price": "0.005", "flat_fee": "5" } ] } },
            { "id": "payment-fees", "meter": "payments", "description": "Payment fees",
              "price": { "model": "percentage", "percent": "2.9", "fixed_fee": "0.30",
                         "min_fee": "0.50", "free_events": 1 } }
        ]
    }))
}
