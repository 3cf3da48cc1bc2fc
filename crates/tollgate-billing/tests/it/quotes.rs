//! Quotes: expected usage priced into the lines an invoice would carry, by the rater's own
//! per-charge pricing. The central check: quoting the quantities a period's events
//! aggregate to gives exactly the invoice's base, usage and shortfall lines.

use crate::support::*;
use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use tollgate_billing::*;

/// Every pricing model, every aggregate, free units, a base fee in arrears and a minimum
/// commitment, so that one comparison with `rate` covers every line a quote can hold.
fn quote_book() -> PriceBook {
    book(json!({
        "id": "everything", "version": "1", "currency": "USD",
        "base_fee": { "amount": "10", "timing": "in_arrears" },
        "meters": [
            { "id": "calls", "aggregate": "count",
              "filter": { "operations": ["getForecast"], "status": ["2xx"] } },
            { "id": "payments", "aggregate": "sum", "field": "fields.amount",
              "filter": { "operations": ["createPayment"] } },
            { "id": "bytes", "aggregate": "sum", "field": "response_bytes",
              "filter": { "operations": ["getForecast"] } },
            { "id": "peak", "aggregate": "max", "field": "latency_ms" },
            { "id": "users", "aggregate": "unique_count", "field": "fields.user" }
        ],
        "charges": [
            { "id": "calls-graduated", "meter": "calls", "free_units": "5",
              "price": { "model": "graduated", "tiers": [
                  { "up_to": "10", "unit_price": "0.05" },
                  { "up_to": "50", "unit_price": "0.03", "flat_fee": "1" },
                  { "up_to": null, "unit_price": "0.01", "flat_fee": "2" } ] } },
            { "id": "calls-volume", "meter": "calls",
              "price": { "model": "volume", "tiers": [
                  { "up_to": "20", "unit_price": "0.04" },
                  { "up_to": null, "unit_price": "0.025", "flat_fee": "0.5" } ] } },
            { "id": "fees", "meter": "payments",
              "price": { "model": "percentage", "percent": "2.9", "fixed_fee": "0.30",
                         "min_fee": "0.50", "max_fee": "5", "free_events": 2,
                         "free_amount": "100" } },
            { "id": "fees-graduated", "meter": "payments",
              "price": { "model": "graduated_percentage", "tiers": [
                  { "up_to": "1000", "percent": "3" },
                  { "up_to": null, "percent": "1.5", "flat_fee": "5" } ] } },
            { "id": "bytes", "meter": "bytes", "free_units": "5000",
              "price": { "model": "package", "package_size": "10000", "package_price": "0.25" } },
            { "id": "peak", "meter": "peak",
              "price": { "model": "per_unit", "unit_price": "0.001" } },
            { "id": "users", "meter": "users",
              "price": { "model": "volume", "tiers": [
                  { "up_to": "3", "unit_price": "2" },
                  { "up_to": null, "unit_price": "1.5" } ] } }
        ],
        "minimum_commitment": "60"
    }))
}

/// The meters of [`quote_book`] aggregated by hand (not by the rater): the quote input a
/// period's events amount to. Payments keep their amounts in event time order, ties by
/// id, the order the rater applies free allowances in.
fn aggregate(events: &[UsageEvent]) -> QuoteInput {
    let mut sorted: Vec<&UsageEvent> = events.iter().collect();
    sorted.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    let forecasts = || sorted.iter().filter(|e| e.operation == "getForecast");
    let mut input = QuoteInput::default();
    let calls = forecasts().filter(|e| e.status / 100 == 2).count();
    if calls > 0 {
        input
            .quantities
            .insert("calls".into(), Decimal::from(calls));
    }
    let payments: Vec<Decimal> = sorted
        .iter()
        .filter(|e| e.operation == "createPayment")
        .filter_map(|e| e.fields.get("amount")?.as_str()?.parse().ok())
        .collect();
    if !payments.is_empty() {
        input.amounts.insert("payments".into(), payments);
    }
    if forecasts().next().is_some() {
        let bytes: u64 = forecasts().map(|e| e.response_bytes).sum();
        input
            .quantities
            .insert("bytes".into(), Decimal::from(bytes));
    }
    if let Some(peak) = sorted.iter().map(|e| e.latency_ms).max() {
        input.quantities.insert("peak".into(), Decimal::from(peak));
    }
    let users: BTreeSet<&str> = sorted
        .iter()
        .filter_map(|e| e.fields.get("user")?.as_str())
        .collect();
    if sorted.iter().any(|e| e.fields.contains_key("user")) {
        input
            .quantities
            .insert("users".into(), Decimal::from(users.len()));
    }
    input
}

/// An invoice's lines less what only events and periods give them.
fn without_events(lines: &[InvoiceLine]) -> Vec<InvoiceLine> {
    lines
        .iter()
        .cloned()
        .map(|mut l| {
            l.events = None;
            l.term_sheet = None;
            l.service_period = None;
            l
        })
        .collect()
}

fn rate_march(b: &PriceBook, events: &[UsageEvent]) -> RatedInvoice {
    rate_plain(
        &sub("ts", "2025-01-01T00:00:00Z"),
        &books(&[("ts", b)]),
        march(),
        events,
    )
}

fn with(mut e: UsageEvent, bytes: u64, latency: u64, user: Option<&str>) -> UsageEvent {
    e.response_bytes = bytes;
    e.latency_ms = latency;
    if let Some(u) = user {
        e.fields.insert("user".into(), json!(u));
    }
    e
}

#[test]
fn quote_of_aggregated_usage_is_the_invoice() {
    let b = quote_book();
    let mut events = Vec::new();
    for i in 0..40 {
        let status = if i % 7 == 0 { 503 } else { 200 };
        let user = ["ann", "bob", "cy", "dee", "eve"][i % 5];
        events.push(with(
            ev(
                &format!("c{i:03}"),
                &format!("2025-03-{:02}T10:00:00Z", 1 + i % 28),
                "ts",
                "getForecast",
                status,
            ),
            1_000 + 37 * i as u64,
            20 + (i as u64 * 13) % 300,
            Some(user),
        ));
    }
    for (i, amount) in ["40", "80", "12.5", "999.99", "0", "3"].iter().enumerate() {
        events.push(pay(
            &format!("p{i}"),
            &format!("2025-03-{:02}T12:00:00Z", 2 + i),
            "ts",
            amount,
        ));
    }
    let inv = rate_march(&b, &events);
    let input = aggregate(&events);
    assert_eq!(input.quantities["calls"], d("34"));
    let q = quote(&b, &input).unwrap();
    assert_eq!(q.lines, without_events(&inv.lines));
    assert_eq!(q.subtotal, inv.subtotal);
    assert_eq!(q.total, q.subtotal);
    assert_eq!(
        (q.currency.as_str(), q.rounding),
        ("USD", RoundingMode::HalfUp)
    );
    assert_eq!(q.price_book, b.reference());
    // Every kind of line is there: base, seven usage lines (one per charge) and no
    // shortfall, since this usage costs more than the 60.00 committed.
    let kinds: Vec<LineKind> = q.lines.iter().map(|l| l.kind).collect();
    assert_eq!(kinds[0], LineKind::Base);
    assert_eq!(kinds.iter().filter(|k| **k == LineKind::Usage).count(), 7);
    assert!(!kinds.contains(&LineKind::Shortfall));
}

#[test]
fn quote_shows_tiers_free_units_percentages_and_the_shortfall() {
    // 30 calls, 5 free: 25 billable. Graduated: 10 × 0.05 = 0.50; 15 × 0.03 + 1 = 1.45.
    // Volume on all 30 calls (no free units): 30 × 0.025 + 0.5 = 1.25.
    // Payments 60, 60, 10: #1 free (1 event, 60 of 100); #2 crosses the 100: free on 40,
    // 20 × 2.9 % + 0.30 = 0.88; #3 10 × 2.9 % + 0.30 = 0.59. Fees 1.47.
    // Graduated percentage on 130: 3 % = 3.90.
    // Base 10 + 1.95 + 1.25 + 1.47 + 3.90 = 18.57, 41.43 short of the 60 committed.
    let b = quote_book();
    let input: QuoteInput = serde_json::from_value(json!({
        "quantities": { "calls": "30" },
        "amounts": { "payments": ["60", "60", "10"] }
    }))
    .unwrap();
    let q = quote(&b, &input).unwrap();
    let got: Vec<(LineKind, String, String)> = q
        .lines
        .iter()
        .map(|l| {
            (
                l.kind,
                l.charge.clone().unwrap_or_default(),
                l.amount.to_string(),
            )
        })
        .collect();
    let want = [
        (LineKind::Base, "base", "10.00"),
        (LineKind::Usage, "calls-graduated", "1.95"),
        (LineKind::Usage, "calls-volume", "1.25"),
        (LineKind::Usage, "fees", "1.47"),
        (LineKind::Usage, "fees-graduated", "3.90"),
        (LineKind::Shortfall, "", "41.43"),
    ]
    .map(|(k, c, a)| (k, c.to_string(), a.to_string()));
    assert_eq!(got, want);
    let graduated = &q.lines[1];
    assert_eq!(graduated.quantity, Some(d("30")));
    assert_eq!(graduated.free_units, Some(d("5")));
    let tiers: Vec<_> = graduated
        .tiers
        .iter()
        .map(|t| (t.units, t.amount))
        .collect();
    assert_eq!(tiers, vec![(d("10"), d("0.5")), (d("15"), d("1.45"))]);
    let fees = q.lines[3].percentage.as_ref().unwrap();
    assert_eq!((fees.free_events_used, fees.charged_events), (2, 2));
    assert_eq!(q.lines[3].quantity, Some(d("130")));
    assert_eq!(q.lines[5].base_amount, Some(d("18.57")));
    assert_eq!(q.total, d("60.00"));
    // The quote travels as JSON with decimals as strings.
    let v = serde_json::to_value(&q).unwrap();
    assert_eq!(v["total"], "60.00");
    assert_eq!(v["lines"][1]["tiers"][1]["amount"], "1.45");
    assert_eq!(serde_json::from_value::<Quote>(v).unwrap(), q);
}

#[test]
fn a_total_is_enough_for_graduated_percentage() {
    let b = book(json!({
        "id": "gp", "version": "1", "currency": "EUR",
        "meters": [{ "id": "volume", "aggregate": "sum", "field": "fields.amount" }],
        "charges": [{ "id": "gp", "meter": "volume", "price": { "model": "graduated_percentage",
            "tiers": [{ "up_to": "1000", "percent": "1" }, { "up_to": null, "percent": "0.5" }] } }]
    }));
    // 1 000 × 1 % + 1 500 × 0.5 % = 17.50.
    let input: QuoteInput =
        serde_json::from_value(json!({ "quantities": { "volume": "2500" } })).unwrap();
    assert_eq!(quote(&b, &input).unwrap().total, d("17.50"));
}

fn quote_err(input: serde_json::Value) -> String {
    let input: QuoteInput = serde_json::from_value(input).unwrap();
    let err = quote(&quote_book(), &input).unwrap_err();
    assert!(matches!(err, Error::InvalidQuote { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn quote_errors_name_the_meter() {
    assert_eq!(
        quote_err(json!({ "quantities": { "call": "1" } })),
        "cannot quote meter \"call\": price book everything has no such meter"
    );
    assert_eq!(
        quote_err(json!({ "quantities": { "calls": "-1" } })),
        "cannot quote meter \"calls\": quantity -1 is negative"
    );
    assert_eq!(
        quote_err(json!({ "quantities": { "payments": "150" } })),
        "cannot quote meter \"payments\": charge \"fees\" is a percentage of each \
         transaction: give the meter's amounts, one per transaction"
    );
    assert_eq!(
        quote_err(json!({ "amounts": { "payments": ["5", "-2"] } })),
        "cannot quote meter \"payments\": amount #2 (-2) is negative"
    );
    assert_eq!(
        quote_err(json!({ "amounts": { "calls": ["1"] } })),
        "cannot quote meter \"calls\": amounts are the transactions of a sum meter; give \
         this meter's quantity"
    );
    assert_eq!(
        quote_err(json!({ "quantities": { "payments": "10" }, "amounts": { "payments": ["5"] } })),
        "cannot quote meter \"payments\": quantity 10 is not the sum of its amounts (5)"
    );
    // No usage at all is a quote of the base fee (and the shortfall), not an error.
    let q = quote(&quote_book(), &QuoteInput::default()).unwrap();
    assert_eq!(q.total, d("60.00"));
}

#[test]
fn quote_input_is_strict_json() {
    let bad = |v: serde_json::Value| {
        serde_json::from_value::<QuoteInput>(v)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(json!({ "quantity": {} })).contains("unknown field `quantity`"));
    assert!(bad(json!({ "quantities": { "calls": 1.5 } })).contains("is a number with a fraction"));
    let input: QuoteInput = serde_json::from_value(json!({
        "quantities": { "calls": 12, "bytes": "0.5" },
        "amounts": { "payments": ["1.10"] }
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&input).unwrap(),
        json!({ "quantities": { "bytes": "0.5", "calls": "12" }, "amounts": { "payments": ["1.1"] } })
    );
}

/// Events of one subscription in March under one term sheet: calls (some failing) with
/// varied bytes, latency and users, and payments with amounts, ties in time included.
fn month_of_events() -> impl Strategy<Value = Vec<UsageEvent>> {
    prop::collection::vec(
        (
            0i64..31 * 86_400,
            0u8..5,
            0i64..200_000,
            0u64..50_000,
            0u64..2_000,
            prop::option::of(0u8..6),
        ),
        0..80,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (offset, kind, cents, bytes, latency, user))| {
                let id = format!("e{i:03}");
                let mut e = match kind {
                    0 | 1 => pay(
                        &id,
                        "2025-03-01T00:00:00Z",
                        "ts",
                        &Decimal::new(cents, 2).to_string(),
                    ),
                    2 => ev(&id, "2025-03-01T00:00:00Z", "ts", "getForecast", 500),
                    _ => ev(&id, "2025-03-01T00:00:00Z", "ts", "getForecast", 200),
                };
                e.time = Timestamp::from_second(
                    ts("2025-03-01T00:00:00Z").as_second() + offset / 7200 * 7200,
                )
                .unwrap();
                with(
                    e,
                    bytes,
                    latency,
                    user.map(|u| ["a", "b", "c", "d", "e", "f"][u as usize]),
                )
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn quote_equals_the_rated_usage_lines(events in month_of_events()) {
        let b = quote_book();
        let inv = rate_march(&b, &events);
        let q = quote(&b, &aggregate(&events)).unwrap();
        prop_assert_eq!(&q.lines, &without_events(&inv.lines));
        prop_assert_eq!(q.subtotal, inv.subtotal);
        let usage: BTreeMap<_, _> = q
            .lines
            .iter()
            .filter(|l| l.kind == LineKind::Usage)
            .map(|l| (l.charge.clone().unwrap(), l.amount))
            .collect();
        let rated: BTreeMap<_, _> = inv
            .lines
            .iter()
            .filter(|l| l.kind == LineKind::Usage)
            .map(|l| (l.charge.clone().unwrap(), l.amount))
            .collect();
        prop_assert_eq!(usage, rated);
    }
}
