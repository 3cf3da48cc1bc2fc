//! Closing a month: 100 000 subscriptions, each on a price book of 3 meters and charges
//! (count → graduated, sum → package, sum → percentage) with 20 usage events, rated one
//! subscription at a time through `rate()`, as the closing job does. Target: the whole
//! loop in at most 60 s on the 2-core reference machine. Run with
//! `cargo bench -p tollgate-billing --bench closing`; before criterion's samples it prints
//! one timed pass (`closing: …`), then criterion reports subscriptions per second.

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tollgate_billing::{PriceBook, RatingInput, Span, Subscription, UsageEvent, rate};

const SUBSCRIPTIONS: usize = 100_000;
const EVENTS_PER_SUBSCRIPTION: usize = 20;
/// Plans (price books) the subscriptions are spread over.
const BOOKS: usize = 100;

/// Plan `k`: a base fee, graduated calls, data in packages of 1 MB, payment fees.
fn book(k: usize) -> PriceBook {
    let cents = |c: usize| Decimal::new(c as i64, 2).to_string();
    PriceBook::from_json(&json!({
        "id": format!("plan-{k}"), "version": "2025-03", "currency": "USD",
        "base_fee": { "amount": cents(900 + k * 10), "timing": "in_arrears" },
        "meters": [
            { "id": "calls", "aggregate": "count",
              "filter": { "operations": ["getForecast"], "status": ["2xx"] } },
            { "id": "data", "aggregate": "sum", "field": "response_bytes",
              "filter": { "operations": ["download"] } },
            { "id": "payments", "aggregate": "sum", "field": "fields.amount",
              "filter": { "operations": ["createPayment"] } }
        ],
        "charges": [
            { "id": "calls", "meter": "calls", "free_units": "5",
              "price": { "model": "graduated", "tiers": [
                  { "up_to": "10", "unit_price": "0.01" },
                  { "up_to": "100", "unit_price": "0.008", "flat_fee": "0.5" },
                  { "up_to": null, "unit_price": "0.005", "flat_fee": "1" } ] } },
            { "id": "data", "meter": "data",
              "price": { "model": "package", "package_size": "1000000",
                         "package_price": cents(10 + k % 7) } },
            { "id": "payment-fees", "meter": "payments",
              "price": { "model": "percentage", "percent": "2.9", "fixed_fee": "0.30",
                         "min_fee": "0.50", "max_fee": "10", "free_events": 1 } }
        ]
    }))
    .unwrap()
}

/// 20 events of subscription `s` in March 2025: 12 calls (one failing), 5 downloads,
/// 3 payments, at scattered times.
fn events(s: usize, term_sheet: &str) -> Vec<UsageEvent> {
    let march = "2025-03-01T00:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_second();
    (0..EVENTS_PER_SUBSCRIPTION)
        .map(|i| {
            let n = s * EVENTS_PER_SUBSCRIPTION + i;
            let (operation, method, status) = match i {
                0..12 => ("getForecast", "GET", if i == 7 { 503 } else { 200 }),
                12..17 => ("download", "GET", 200),
                _ => ("createPayment", "POST", 201),
            };
            let mut fields = serde_json::Map::new();
            if operation == "createPayment" {
                fields.insert(
                    "amount".into(),
                    json!(format!("{}.{:02}", 5 + n % 400, n % 100)),
                );
            }
            UsageEvent {
                id: format!("{n:09x}"),
                time: Timestamp::from_second(march + ((n as i64 * 7919) % (31 * 86_400))).unwrap(),
                subscription: format!("sub-{s}"),
                operation: operation.into(),
                method: method.into(),
                status,
                request_bytes: 200,
                response_bytes: 1_000 + (n as u64 * 104_729) % 900_000,
                latency_ms: 30,
                term_sheet: term_sheet.into(),
                fields,
            }
        })
        .collect()
}

struct Month {
    books: BTreeMap<String, PriceBook>,
    subscriptions: Vec<Subscription>,
    events: Vec<Vec<UsageEvent>>,
    period: Span,
    now: Timestamp,
}

fn month() -> Month {
    let books: BTreeMap<String, PriceBook> =
        (0..BOOKS).map(|k| (format!("ts-{k}"), book(k))).collect();
    let subscriptions: Vec<Subscription> = (0..SUBSCRIPTIONS)
        .map(|s| Subscription {
            id: format!("sub-{s}"),
            started: "2025-01-01T00:00:00Z".parse().unwrap(),
            term_sheet: format!("ts-{}", s % BOOKS),
            changes: vec![],
            cancellation: None,
        })
        .collect();
    let events = subscriptions
        .iter()
        .enumerate()
        .map(|(s, sub)| events(s, &sub.term_sheet))
        .collect();
    Month {
        books,
        subscriptions,
        events,
        period: Span::new(
            "2025-03-01T00:00:00Z".parse().unwrap(),
            "2025-04-01T00:00:00Z".parse().unwrap(),
        ),
        now: "2025-04-02T00:00:00Z".parse().unwrap(),
    }
}

/// Rates every subscription once; returns the sum of the invoices' totals.
fn close(m: &Month) -> Decimal {
    let mut sum = Decimal::ZERO;
    for (sub, events) in m.subscriptions.iter().zip(&m.events) {
        let inv = rate(&RatingInput {
            subscription: sub,
            books: &m.books,
            period: m.period,
            events: black_box(events),
            wallet_balance: Decimal::ZERO,
            coupons: &[],
            taxes: &[],
            now: m.now,
        })
        .unwrap();
        sum += inv.total;
    }
    sum
}

fn bench(c: &mut Criterion) {
    let m = month();
    // One pass timed by hand: the number the 60 s target is about.
    let start = Instant::now();
    let total = close(&m);
    let took = start.elapsed();
    eprintln!(
        "closing: {SUBSCRIPTIONS} subscriptions × 3 charges, {} events, in {:.2} s \
         ({:.1} µs per subscription); invoices total {total} USD",
        SUBSCRIPTIONS * EVENTS_PER_SUBSCRIPTION,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / SUBSCRIPTIONS as f64,
    );
    let mut g = c.benchmark_group("closing");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(60));
    g.throughput(Throughput::Elements(SUBSCRIPTIONS as u64));
    g.bench_function("100k subscriptions × 3 meters, 20 events each", |b| {
        b.iter(|| black_box(close(&m)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
