//! Tier evaluation: one quantity priced by a 5-tier table, graduated and volume, the unit
//! of work behind every tiered invoice line and quote. Target: at least 1 000 000
//! evaluations per second per core. Run with
//! `cargo bench -p tollgate-billing --bench tiers`; throughput is reported per
//! evaluation (`elem/s`), on one thread.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;
use std::hint::black_box;
use std::str::FromStr;
use tollgate_billing::{Tier, graduated_tiers, volume_tiers};

/// Quantities per batch: one measured iteration evaluates each once.
const BATCH: usize = 1_000;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// An API price list: a free tier, then cheaper units as usage grows, flat fees on
/// entering the upper tiers.
fn five_tiers() -> Vec<Tier> {
    let tier = |up_to: Option<&str>, price: &str, flat: Option<&str>| Tier {
        up_to: up_to.map(d),
        unit_price: d(price),
        flat_fee: flat.map(d),
    };
    vec![
        tier(Some("1000"), "0", None),
        tier(Some("10000"), "0.002", None),
        tier(Some("100000"), "0.0015", Some("5")),
        tier(Some("1000000"), "0.001", Some("20")),
        tier(None, "0.0005", Some("100")),
    ]
}

/// Quantities spread over all five tiers (most land in the upper ones, where graduated
/// pricing walks every tier).
fn quantities() -> Vec<Decimal> {
    (0..BATCH as u64)
        .map(|i| Decimal::from((i * 7_919_393) % 3_000_000))
        .collect()
}

fn bench(c: &mut Criterion) {
    let tiers = five_tiers();
    let qs = quantities();
    let mut g = c.benchmark_group("tiers");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("graduated, 5 tiers", |b| {
        b.iter(|| {
            for q in &qs {
                black_box(graduated_tiers(black_box(*q), &tiers).unwrap());
            }
        })
    });
    g.bench_function("volume, 5 tiers", |b| {
        b.iter(|| {
            for q in &qs {
                black_box(volume_tiers(black_box(*q), &tiers).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
