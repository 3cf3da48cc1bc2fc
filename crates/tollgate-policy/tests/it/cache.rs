//! `DecisionCache`: a cached decision is the decision, time and snapshot changes are
//! misses, and the cache stays within its capacity.

use std::sync::LazyLock;

use jiff::Timestamp;
use proptest::prelude::*;
use tollgate_policy::{CompiledPlan, DecisionCache, Directory, decide, decide_cached};

use crate::equivalence::{facts, instant};
use crate::fixtures::{Facts, WEATHER, directory, plans};

static PLANS: LazyLock<Vec<CompiledPlan>> = LazyLock::new(plans);
static DIR: LazyLock<Directory> = LazyLock::new(directory);

fn weather() -> &'static CompiledPlan {
    PLANS.iter().find(|p| p.key() == WEATHER).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn forecast() -> Facts {
    Facts::new("alpha", "weather", "getForecast").scopes(&["weather:read"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]
    /// Cases share one small cache (so later cases hit entries of earlier ones, and the
    /// sweep runs), each decided twice through it: both equal the uncached decision.
    #[test]
    fn cached_decisions_equal_decide(
        which in 0usize..3,
        f in facts(),
        now in instant(),
        seconds in 0i64..120,
    ) {
        static CACHE: LazyLock<DecisionCache> = LazyLock::new(|| DecisionCache::new(64));
        let plan = &PLANS[which];
        let later = now.checked_add(jiff::SignedDuration::from_secs(seconds)).unwrap();
        for t in [now, later, now] {
            let want = decide(plan, &DIR, &f.facts(), t);
            let got = decide_cached(&CACHE, 7, plan, &DIR, &f.facts(), t);
            prop_assert_eq!(&*got, &want);
        }
        prop_assert!(CACHE.stats().len <= CACHE.capacity());
    }
}

#[test]
fn the_same_minute_hits_the_next_minute_misses() {
    let cache = DecisionCache::new(1_000);
    let f = forecast();
    let go = |t: &str| decide_cached(&cache, 1, weather(), &DIR, &f.facts(), ts(t));
    assert!(go("2026-11-02T09:00:05Z").allow);
    assert!(go("2026-11-02T09:00:59Z").allow);
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    // 17:59 Paris is open, 18:00 closed: the new minute is a new key.
    assert!(go("2026-11-02T16:59:30Z").allow);
    let closed = go("2026-11-02T17:00:00Z");
    assert!(!closed.allow);
    assert_eq!(closed.reasons, [format!("{WEATHER}/window")]);
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 3));
}

#[test]
fn a_blackout_date_is_a_miss() {
    let cache = DecisionCache::new(1_000);
    let f = forecast();
    // Same local time of day, one day apart: 24 December open, 25 December blackout.
    let open = decide_cached(
        &cache,
        1,
        weather(),
        &DIR,
        &f.facts(),
        ts("2026-12-24T10:00:00Z"),
    );
    let closed = decide_cached(
        &cache,
        1,
        weather(),
        &DIR,
        &f.facts(),
        ts("2026-12-25T10:00:00Z"),
    );
    assert!(open.allow);
    assert!(!closed.allow);
    assert_eq!(closed.reasons, [format!("{WEATHER}/blackout")]);
    assert_eq!(cache.stats().misses, 2);
}

#[test]
fn a_generation_bump_invalidates() {
    let cache = DecisionCache::new(1_000);
    let f = forecast();
    let now = ts("2026-11-02T09:00:00Z");
    decide_cached(&cache, 1, weather(), &DIR, &f.facts(), now);
    decide_cached(&cache, 1, weather(), &DIR, &f.facts(), now);
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    // A new snapshot in which alpha's subscription is gone: generation 2 must not see
    // generation 1's allow.
    let empty = Directory::new(&[]).unwrap();
    let d = decide_cached(&cache, 2, weather(), &empty, &f.facts(), now);
    assert!(!d.allow);
    assert_eq!(d.reasons, [format!("{WEATHER}/subscription")]);
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 2));
}

#[test]
fn every_fact_is_part_of_the_key() {
    let cache = DecisionCache::new(1_000);
    let now = ts("2026-11-02T09:00:00Z");
    let base = forecast();
    let variants = [
        base.clone(),
        Facts::new("beta", "weather", "getForecast").scopes(&["weather:read"]),
        Facts::new("alpha", "records", "getForecast").scopes(&["weather:read"]),
        Facts::new("alpha", "weather", "getHistory").scopes(&["weather:read"]),
        base.clone().scopes(&[]),
        base.clone().region(Some("us-east")),
        base.clone().region(None),
        base.clone().purpose("research"),
        base.clone().consent(&["health"]),
        Facts {
            data_categories: vec!["health".into()],
            ..base.clone()
        },
        Facts {
            auth_method: "none".into(),
            ..base.clone()
        },
        // Lists are length-prefixed: ["a", "b"] and ["ab"] are different keys.
        base.clone().scopes(&["weather:read", "x"]),
        base.clone().scopes(&["weather:readx"]),
    ];
    for (i, f) in variants.iter().enumerate() {
        let got = decide_cached(&cache, 1, weather(), &DIR, &f.facts(), now);
        assert_eq!(
            *got,
            decide(weather(), &DIR, &f.facts(), now),
            "variant {i}"
        );
    }
    assert_eq!(cache.stats().misses, variants.len() as u64);
    assert_eq!(cache.stats().hits, 0);
    // The other plans' keys differ too.
    for p in PLANS.iter().filter(|p| p.key() != WEATHER) {
        decide_cached(&cache, 1, p, &DIR, &base.facts(), now);
    }
    assert_eq!(cache.stats().hits, 0);
}

#[test]
fn capacity_is_bounded_and_zero_disables() {
    let cache = DecisionCache::new(32);
    let f = forecast();
    let start = ts("2026-11-02T09:00:00Z");
    for m in 0..1_000 {
        let t = start
            .checked_add(jiff::SignedDuration::from_mins(m))
            .unwrap();
        decide_cached(&cache, 1, weather(), &DIR, &f.facts(), t);
        assert!(cache.stats().len <= cache.capacity());
    }
    let off = DecisionCache::disabled();
    for _ in 0..3 {
        decide_cached(&off, 1, weather(), &DIR, &f.facts(), start);
    }
    assert_eq!(off.stats().len, 0);
    assert_eq!(off.stats().hits, 0);
}
