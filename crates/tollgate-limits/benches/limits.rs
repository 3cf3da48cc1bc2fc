//! Hot-path cost of the limits, single-threaded on a hit key: GCRA check and quota
//! consume, directly on their state and through `LocalLimiter` (shard lookup included),
//! with criterion for the mean and an hdrhistogram of per-call latency for p50/p99.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hdrhistogram::Histogram;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tollgate_limits::{
    Gcra, GcraState, LimitKey, Limiter, LocalLimiter, Period, QuotaCounter, QuotaSpec, RatePer,
};

const T0: i64 = 1_750_000_000; // 2025-06-15, mid-month.

fn rate_spec() -> Gcra {
    // Generous so every call is admitted (the admitted path writes; it is the costlier).
    Gcra::new(1_000_000_000, RatePer::Second, 1_000_000_000).unwrap()
}

fn quota_spec() -> QuotaSpec {
    QuotaSpec::new(
        u64::from(u32::MAX),
        Period::CalendarMonth,
        TimeZone::get("Europe/Paris").unwrap(),
    )
}

/// A limiter holding 100 000 keys of each kind, as a busy gateway would.
fn populated() -> LocalLimiter {
    let limiter = LocalLimiter::new();
    let (rate, quota) = (rate_spec(), quota_spec());
    let now = Timestamp::from_second(T0).unwrap();
    for s in 0..100_000 {
        limiter.rate(&LimitKey::new(s, 0), &rate, now);
        limiter.quota(&LimitKey::new(s, 1), &quota, now);
    }
    limiter
}

fn benches(c: &mut Criterion) {
    let rate = rate_spec();
    let state = GcraState::new();
    let mut ns = (T0 as u64) * 1_000_000_000;
    c.bench_function("gcra_check", |b| {
        b.iter(|| {
            ns += 1_000;
            black_box(rate.check(black_box(&state), ns))
        })
    });

    let counter = QuotaCounter::new(quota_spec());
    let mut now = Timestamp::from_second(T0).unwrap();
    c.bench_function("quota_try_consume", |b| {
        b.iter(|| {
            now += Duration::from_nanos(1_000);
            black_box(counter.try_consume(black_box(now)))
        })
    });

    // The uncached period function (a quota cache miss; what billing calls per event).
    let paris = TimeZone::get("Europe/Paris").unwrap();
    let anniversary = Period::Anniversary {
        anchor: Timestamp::from_second(T0 - 40 * 86_400).unwrap(),
    };
    for (name, period) in [
        ("period_bounds_month_paris", Period::CalendarMonth),
        ("period_bounds_anniversary_paris", anniversary),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                now += Duration::from_nanos(1_000);
                black_box(tollgate_limits::period_bounds(
                    &period,
                    &paris,
                    black_box(now),
                ))
            })
        });
    }

    let limiter = populated();
    let quota = quota_spec();
    let (rk, qk) = (LimitKey::new(4_242, 0), LimitKey::new(4_242, 1));
    c.bench_function("limiter_rate_hit", |b| {
        b.iter(|| {
            now += Duration::from_nanos(1_000);
            black_box(limiter.rate(black_box(&rk), &rate, now))
        })
    });
    c.bench_function("limiter_quota_hit", |b| {
        b.iter(|| {
            now += Duration::from_nanos(1_000);
            black_box(limiter.quota(black_box(&qk), &quota, now))
        })
    });
    c.bench_function("limiter_rate_and_quota_hit", |b| {
        b.iter(|| {
            now += Duration::from_nanos(1_000);
            black_box(limiter.rate(black_box(&rk), &rate, now));
            black_box(limiter.quota(black_box(&qk), &quota, now))
        })
    });
}

/// Per-call latency of one rate check + one quota consume through the limiter. Each
/// sample times a batch of 16 calls (a single call is below the timer's resolution).
fn histogram() {
    let limiter = populated();
    let (rate, quota) = (rate_spec(), quota_spec());
    let (rk, qk) = (LimitKey::new(77, 0), LimitKey::new(77, 1));
    let mut now = Timestamp::from_second(T0).unwrap();
    let mut hist = Histogram::<u64>::new(3).unwrap();
    const BATCH: u64 = 16;
    for _ in 0..200_000 {
        let start = Instant::now();
        for _ in 0..BATCH {
            now += Duration::from_nanos(1_000);
            black_box(limiter.rate(&rk, &rate, now));
            black_box(limiter.quota(&qk, &quota, now));
        }
        let ns = start.elapsed().as_nanos() as u64;
        hist.record(ns.div_ceil(BATCH)).unwrap();
    }
    println!(
        "rate+quota per call (batches of {BATCH}): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    histogram();
}
