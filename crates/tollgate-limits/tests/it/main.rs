//! Integration tests of tollgate-limits: period properties, exactness under concurrency,
//! the Limiter over a simulated restart, and header values checked against the policy.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use tollgate_limits::*;

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "Pacific/Apia",
    "America/St_Johns",
];

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Instants from 1900 to 2200, with nanoseconds.
fn any_instant() -> impl Strategy<Value = Timestamp> {
    (-2_208_988_800i64..7_258_118_400i64, 0i32..1_000_000_000)
        .prop_map(|(s, ns)| Timestamp::new(s, ns).unwrap())
}

fn any_period() -> impl Strategy<Value = Period> {
    prop_oneof![
        Just(Period::Day),
        Just(Period::CalendarMonth),
        any_instant().prop_map(|anchor| Period::Anniversary { anchor }),
    ]
}

fn any_zone() -> impl Strategy<Value = TimeZone> {
    prop::sample::select(ZONES).prop_map(|z| TimeZone::get(z).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn period_contains_its_instant(period in any_period(), tz in any_zone(), at in any_instant()) {
        let (start, end) = period_bounds(&period, &tz, at);
        prop_assert!(start <= at && at < end, "{start} <= {at} < {end}");
        prop_assert_eq!(start.subsec_nanosecond(), 0);
        prop_assert_eq!(end.subsec_nanosecond(), 0);
        // Any instant of the period maps to the same period.
        prop_assert_eq!(period_bounds(&period, &tz, start), (start, end));
        let last = end.checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap();
        prop_assert_eq!(period_bounds(&period, &tz, last), (start, end));
    }

    #[test]
    fn periods_tile_time(period in any_period(), tz in any_zone(), at in any_instant()) {
        // Walk six consecutive periods forwards and backwards: no gap, no overlap.
        let (start, end) = period_bounds(&period, &tz, at);
        let mut cur = (start, end);
        for _ in 0..6 {
            let next = period_bounds(&period, &tz, cur.1);
            prop_assert_eq!(next.0, cur.1);
            prop_assert!(next.0 < next.1);
            cur = next;
        }
        let mut cur = (start, end);
        for _ in 0..6 {
            let before = cur.0.checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap();
            let prev = period_bounds(&period, &tz, before);
            prop_assert_eq!(prev.1, cur.0);
            cur = prev;
        }
    }

    #[test]
    fn calendar_periods_start_at_local_midnight(tz in any_zone(), at in any_instant()) {
        let (start, _) = period_bounds(&Period::CalendarMonth, &tz, at);
        let local = tz.to_datetime(start);
        prop_assert_eq!(local.day(), 1);
        // Midnight, unless midnight fell in a gap (then the first instant after it).
        let before = tz.to_datetime(start.checked_sub(jiff::SignedDuration::from_nanos(1)).unwrap());
        prop_assert!(before.date() < local.date());
    }

    #[test]
    fn anniversary_keeps_the_anchor_day(tz in any_zone(), anchor in any_instant(), months in 0i64..120) {
        let period = Period::Anniversary { anchor };
        let a = tz.to_datetime(anchor);
        let mut at = anchor;
        for _ in 0..months.min(30) {
            at = period_bounds(&period, &tz, at).1;
        }
        let start = tz.to_datetime(period_bounds(&period, &tz, at).0);
        let last = start.date().last_of_month().day();
        // Days are clamped to the month's end, and otherwise the anchor's (a boundary in
        // a DST gap can move to the next day only if it was near midnight).
        prop_assert!(start.day() == a.day().min(last) || start.hour() < 3,
            "anchor {a}, boundary {start}");
    }
}

#[test]
fn anniversary_on_the_31st_clamps_in_february_and_returns_in_march() {
    let p = Period::Anniversary {
        anchor: ts("2025-01-31T00:00:00Z"),
    };
    let tz = TimeZone::get("Europe/Paris").unwrap();
    let mut at = ts("2025-01-31T00:00:00Z");
    let mut starts = vec![];
    for _ in 0..4 {
        let (s, e) = period_bounds(&p, &tz, at);
        starts.push(tz.to_datetime(s).to_string());
        at = e;
    }
    assert_eq!(
        starts,
        [
            "2025-01-31T01:00:00",
            "2025-02-28T01:00:00",
            "2025-03-31T01:00:00",
            "2025-04-30T01:00:00"
        ]
    );
}

#[test]
fn gcra_frozen_time_admits_exactly_burst_under_concurrency() {
    let g = Gcra::new(10, RatePer::Second, 50).unwrap();
    for round in 0..20 {
        let state = GcraState::new();
        let allowed = AtomicU64::new(0);
        let barrier = Barrier::new(8);
        let now = 1_700_000_000_000_000_000 + round;
        thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..100 {
                        if g.check(&state, now).is_allowed() {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.load(Ordering::Relaxed), 50, "round {round}");
    }
}

#[test]
fn quota_admits_exactly_the_limit_under_concurrency() {
    let limiter = LocalLimiter::with_shards(4);
    let spec = QuotaSpec::new(1_000, Period::CalendarMonth, TimeZone::UTC);
    let key = LimitKey::new(42, 0);
    let allowed = AtomicU64::new(0);
    let barrier = Barrier::new(16);
    let now = ts("2025-06-10T10:00:00Z");
    thread::scope(|s| {
        for t in 0..16u64 {
            let (limiter, spec, allowed, barrier) = (&limiter, &spec, &allowed, &barrier);
            s.spawn(move || {
                barrier.wait();
                for i in 0..500u64 {
                    // Distinct instants in the same period: racing threads, moving clock.
                    let at = now + Duration::from_micros(t * 1_000 + i);
                    if limiter.quota(&key, spec, at).is_allowed() {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 1_000);
    assert_eq!(
        limiter.snapshot_quotas(),
        [QuotaUsage {
            key,
            period_start: ts("2025-06-01T00:00:00Z"),
            used: 1_000
        }]
    );
}

#[test]
fn quota_is_exact_across_a_period_boundary_under_concurrency() {
    // Half the threads are just before midnight, half just after: each day admits
    // exactly its limit, never more in total.
    let counter = QuotaCounter::new(QuotaSpec::new(300, Period::Day, TimeZone::UTC));
    let before = ts("2025-06-10T23:59:59.999Z");
    let after = ts("2025-06-11T00:00:00Z");
    let (old, new) = (AtomicU64::new(0), AtomicU64::new(0));
    let barrier = Barrier::new(8);
    thread::scope(|s| {
        for t in 0..8 {
            let (counter, old, new, barrier) = (&counter, &old, &new, &barrier);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..200 {
                    let (at, n) = if t % 2 == 0 {
                        (after, new)
                    } else {
                        (before, old)
                    };
                    if counter.try_consume(at).is_allowed() {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let total = old.load(Ordering::Relaxed) + new.load(Ordering::Relaxed);
    // A call stamped before midnight that reaches the counter after it rolled over is
    // charged to the new day (so `old` counts calls by stamp, not by the day charged, and
    // may exceed 300 under some schedules). What must hold: no day is charged more than
    // its limit — the two days together admit at most 600 — and the new day is full.
    assert!(total <= 600, "{total}");
    assert!(new.load(Ordering::Relaxed) <= 300);
    assert_eq!(counter.snapshot(), Some((after, 300)));
}

#[test]
fn rejected_calls_consume_nothing_and_refunds_restore_exactness() {
    let limiter = LocalLimiter::new();
    let spec = QuotaSpec::new(100, Period::CalendarMonth, TimeZone::UTC);
    let key = LimitKey::new(1, 0);
    let now = ts("2025-06-10T10:00:00Z");
    let allowed = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..8 {
            let (limiter, spec, allowed) = (&limiter, &spec, &allowed);
            s.spawn(move || {
                for i in 0..100 {
                    if limiter.quota(&key, spec, now).is_allowed() {
                        // Every third admitted call is refused later in the pipeline.
                        if i % 3 == 0 {
                            limiter.refund(&key, spec, now);
                        } else {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 100);
    assert_eq!(limiter.quota_peek(&key, &spec, now).remaining(), 0);
}

#[test]
fn quota_state_survives_a_restart() {
    let spec = QuotaSpec::new(
        10,
        Period::CalendarMonth,
        TimeZone::get("Europe/Paris").unwrap(),
    );
    let now = ts("2025-06-10T10:00:00Z");
    let first = LocalLimiter::new();
    for subject in 0..3 {
        for _ in 0..=subject * 3 {
            assert!(
                first
                    .quota(&LimitKey::new(subject, 1), &spec, now)
                    .is_allowed()
            );
        }
    }
    // What the server persists: plain serde data.
    let saved = serde_json::to_string(&first.snapshot_quotas()).unwrap();
    assert!(
        saved.contains(r#""period_start":"2025-05-31T22:00:00Z""#),
        "{saved}"
    );
    drop(first);

    let second = LocalLimiter::new();
    let usage: Vec<QuotaUsage> = serde_json::from_str(&saved).unwrap();
    second.restore_quotas(&usage).unwrap();
    assert_eq!(
        second
            .quota_peek(&LimitKey::new(0, 1), &spec, now)
            .remaining(),
        9
    );
    assert_eq!(
        second
            .quota_peek(&LimitKey::new(2, 1), &spec, now)
            .remaining(),
        3
    );
    let admitted = (0..10)
        .filter(|_| second.quota(&LimitKey::new(2, 1), &spec, now).is_allowed())
        .count();
    assert_eq!(admitted, 3);
    // A snapshot of an older month restores nothing into the new month.
    let july = ts("2025-07-02T10:00:00Z");
    assert_eq!(
        second
            .quota_peek(&LimitKey::new(2, 1), &spec, july)
            .remaining(),
        10
    );
    assert!(
        second
            .restore_quotas(&[QuotaUsage {
                key: LimitKey::new(9, 9),
                period_start: ts("2025-05-31T22:00:00.1Z"),
                used: 1
            }])
            .is_err()
    );
}

#[test]
fn limiter_rate_burst_refill_and_prune() {
    let limiter = LocalLimiter::new();
    let spec = Gcra::new(5, RatePer::Second, 5).unwrap();
    let key = LimitKey::new(7, 3);
    let t0 = ts("2025-06-10T10:00:00Z");
    let admitted = (0..10)
        .filter(|_| limiter.rate(&key, &spec, t0).is_allowed())
        .count();
    assert_eq!(admitted, 5);
    assert_eq!(
        limiter.rate(&key, &spec, t0),
        RateDecision::Limited {
            retry_after: Duration::from_millis(200)
        }
    );
    assert!(
        limiter
            .rate(&key, &spec, t0 + Duration::from_millis(200))
            .is_allowed()
    );
    limiter.refund_rate(&key, &spec, t0 + Duration::from_millis(200));
    assert!(
        limiter
            .rate(&key, &spec, t0 + Duration::from_millis(200))
            .is_allowed()
    );
    assert!(
        !limiter
            .rate(&key, &spec, t0 + Duration::from_millis(200))
            .is_allowed()
    );
    assert_eq!(limiter.key_counts(), (1, 0));
    limiter.prune_rates(t0 + Duration::from_millis(500));
    assert_eq!(limiter.key_counts(), (1, 0));
    limiter.prune_rates(t0 + Duration::from_secs(2));
    assert_eq!(limiter.key_counts(), (0, 0));
    // Peeking an unknown key inserts nothing.
    assert!(limiter.rate_peek(&key, &spec, t0).is_allowed());
    assert_eq!(limiter.key_counts(), (0, 0));
}

/// The headers of one response, as the gateway will build them, checked against the
/// policy: 100/s burst 100, and 100 000 per calendar month (June: 30 days).
#[test]
fn headers_match_the_policy() {
    let rate = Gcra::new(100, RatePer::Second, 100).unwrap();
    let month = QuotaSpec::new(100_000, Period::CalendarMonth, TimeZone::UTC);
    let now = ts("2025-06-19T00:00:00Z");
    let policy = ratelimit_policy([rate.policy_item("burst"), month.policy_item("month", now)])
        .unwrap()
        .unwrap();
    assert_eq!(policy, r#""burst";q=100;w=1, "month";q=100000;w=2592000"#);

    let limiter = LocalLimiter::new();
    let key = LimitKey::new(5, 0);
    limiter
        .restore_quotas(&[QuotaUsage {
            key,
            period_start: ts("2025-06-01T00:00:00Z"),
            used: 187,
        }])
        .unwrap();
    let q = limiter.quota(&key, &month, now);
    let r = limiter.rate(&LimitKey::new(5, 1), &rate, now);
    let value = ratelimit([r.limit_item("burst"), q.limit_item("month", now)])
        .unwrap()
        .unwrap();
    // 99 left at this instant, full again in 10 ms (rounded up to 1 s); 100 000 − 188
    // left this month, which ends in 12 days (1 036 800 s).
    assert_eq!(value, r#""burst";r=99;t=1, "month";r=99812;t=1036800"#);

    // Exhausted quota: r=0 and Retry-After until the month ends.
    let small = QuotaSpec::new(1, Period::CalendarMonth, TimeZone::UTC);
    let k = LimitKey::new(6, 0);
    assert!(limiter.quota(&k, &small, now).is_allowed());
    let d = limiter.quota(&k, &small, now);
    assert_eq!(
        ratelimit([d.limit_item("month", now)]).unwrap().unwrap(),
        r#""month";r=0;t=1036800"#
    );
    assert_eq!(retry_after_seconds(d.retry_after(now).unwrap()), 1_036_800);

    // Rate limited: r=0, t and Retry-After until the next request passes.
    let strict = Gcra::new(2, RatePer::Minute, 1).unwrap();
    let k = LimitKey::new(6, 1);
    assert!(limiter.rate(&k, &strict, now).is_allowed());
    let d = limiter.rate(&k, &strict, now + Duration::from_millis(500));
    assert_eq!(
        ratelimit([d.limit_item("minute")]).unwrap().unwrap(),
        r#""minute";r=0;t=30"#
    );
    assert_eq!(retry_after_seconds(d.retry_after().unwrap()), 30);
}

/// The fields parse back as structured-field lists with the draft's parameters.
#[test]
fn headers_are_structured_field_lists() {
    use sfv::{FieldType, List, Parser};
    let v = ratelimit_policy([
        PolicyItem {
            name: "burst",
            quota: 100,
            window: 1,
        },
        PolicyItem {
            name: "month",
            quota: 100_000,
            window: 2_592_000,
        },
    ])
    .unwrap()
    .unwrap();
    let list: List = Parser::new(&v).parse().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.serialize().as_deref(), Some(v.as_str()));
}
