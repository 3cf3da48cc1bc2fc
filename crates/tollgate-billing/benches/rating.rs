//! Rating throughput: one subscription's month of 1 000 000 usage events (90 % calls,
//! 10 % payments) through a price book with a graduated and a percentage charge.
//! Run with `cargo bench -p tollgate-billing --bench rating`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::BTreeMap;
use std::hint::black_box;
use tollgate_billing::{PriceBook, RatingInput, Span, Subscription, UsageEvent, rate};

const EVENTS: usize = 1_000_000;

fn book() -> PriceBook {
    PriceBook::from_json(&json!({
        "id": "bench", "version": "1", "currency": "USD",
        "base_fee": { "amount": "49", "timing": "in_arrears" },
        "meters": [
            { "id": "calls", "aggregate": "count", "filter": { "operations": ["getForecast"], "status": ["2xx"] } },
            { "id": "payments", "aggregate": "sum", "field": "fields.amount", "filter": { "operations": ["createPayment"] } }
        ],
        "charges": [
            { "id": "calls", "meter": "calls", "free_units": "1000", "price": { "model": "graduated", "tiers": [
                { "up_to": "10000", "unit_price": "0.002" },
                { "up_to": "500000", "unit_price": "0.001", "flat_fee": "5" },
                { "up_to": null, "unit_price": "0.0005", "flat_fee": "20" } ] } },
            { "id": "fees", "meter": "payments", "price": { "model": "percentage", "percent": "2.9",
                "fixed_fee": "0.30", "min_fee": "0.50", "max_fee": "25", "free_events": 100 } }
        ]
    }))
    .unwrap()
}

fn events() -> Vec<UsageEvent> {
    let start = "2025-03-01T00:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_second();
    (0..EVENTS)
        .map(|i| {
            let payment = i % 10 == 0;
            let mut fields = serde_json::Map::new();
            if payment {
                fields.insert(
                    "amount".into(),
                    json!(format!("{}.{:02}", i % 997, i % 100)),
                );
            }
            UsageEvent {
                id: format!("{i:08x}"),
                // Scattered times (not sorted), several events per second.
                time: Timestamp::from_second(start + ((i as i64 * 7919) % (31 * 86_400))).unwrap(),
                subscription: "sub-1".into(),
                operation: if payment {
                    "createPayment"
                } else {
                    "getForecast"
                }
                .into(),
                method: if payment { "POST" } else { "GET" }.into(),
                status: if i % 50 == 1 { 503 } else { 200 },
                request_bytes: 120,
                response_bytes: 2048,
                latency_ms: 35,
                term_sheet: "ts".into(),
                fields,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let books: BTreeMap<String, PriceBook> = [("ts".to_string(), book())].into();
    let events = events();
    let subscription = Subscription {
        id: "sub-1".into(),
        started: "2025-01-01T00:00:00Z".parse().unwrap(),
        term_sheet: "ts".into(),
        changes: vec![],
        cancellation: None,
    };
    let period = Span::new(
        "2025-03-01T00:00:00Z".parse().unwrap(),
        "2025-04-01T00:00:00Z".parse().unwrap(),
    );
    let mut g = c.benchmark_group("rating");
    g.sample_size(10);
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("1M events, graduated + percentage", |b| {
        b.iter(|| {
            let inv = rate(&RatingInput {
                subscription: &subscription,
                books: &books,
                period,
                events: black_box(&events),
                wallet_balance: Decimal::ZERO,
                coupons: &[],
                taxes: &[],
                now: "2025-04-02T00:00:00Z".parse().unwrap(),
            })
            .unwrap();
            black_box(inv)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
