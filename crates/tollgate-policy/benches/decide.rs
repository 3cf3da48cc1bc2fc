//! Bench of `decide` on a realistic snapshot: 24 plan versions, 1 200 subscriptions of
//! 1 000 applications as entity data, operator policies beside every slice. Criterion
//! gives the mean; an HdrHistogram of single calls gives p50/p99/p99.9. Cold: `decide`
//! itself; warm: `decide_cached` under steady traffic of 1 000 distinct
//! (application, operation) pairs.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use hdrhistogram::Histogram;
use jiff::Timestamp;
use jiff::civil::{Weekday, date};
use tollgate_policy::{
    CompiledPlan, DecisionCache, Directory, Grant, Hours, OperatorPolicies, PlanTerms,
    RequestFacts, SensitiveOp, SubscriptionFacts, Window, compile, decide, decide_cached,
};

const ZONES: [&str; 4] = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"];
const PLANS: usize = 24;
const APPS: usize = 1_000;
const SUBSCRIPTIONS: usize = 1_200;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Plan `i`: three grants over two APIs (12 operations), business hours in one of four
/// zones, blackout dates, regions, two consent groups and purposes — every kind of clause.
fn plan_terms(i: usize) -> PlanTerms {
    let api_a = format!("api-{}", i % 8);
    let api_b = format!("api-{}", (i + 3) % 8);
    let ops = |prefix: &str, n: usize| (0..n).map(|k| format!("{prefix}{k}")).collect::<Vec<_>>();
    PlanTerms {
        key: format!("plan-{i}@{:064x}", i * 7919),
        grants: vec![
            Grant {
                api: api_a.clone(),
                operations: ops("read", 6),
                scopes: strings(&["data:read"]),
            },
            Grant {
                api: api_a.clone(),
                operations: ops("write", 3),
                scopes: strings(&["data:read", "data:write"]),
            },
            Grant {
                api: api_b.clone(),
                operations: ops("lookup", 3),
                scopes: vec![],
            },
        ],
        window: Some(Window {
            tz: ZONES[i % ZONES.len()].to_owned(),
            allow: vec![
                Hours {
                    days: vec![
                        Weekday::Monday,
                        Weekday::Tuesday,
                        Weekday::Wednesday,
                        Weekday::Thursday,
                        Weekday::Friday,
                    ],
                    from_minute: 7 * 60,
                    to_minute: 20 * 60,
                },
                Hours {
                    days: vec![Weekday::Saturday],
                    from_minute: 9 * 60,
                    to_minute: 13 * 60,
                },
            ],
            blackout: vec![date(2026, 12, 25), date(2027, 1, 1), date(2027, 5, 1)],
        }),
        regions: Some(strings(&["eu-west", "eu-central", "us-east"])),
        sensitive: vec![
            SensitiveOp {
                api: api_a.clone(),
                operation: "read1".into(),
                categories: strings(&["contact"]),
                consent_required: true,
            },
            SensitiveOp {
                api: api_a.clone(),
                operation: "read2".into(),
                categories: strings(&["contact", "health"]),
                consent_required: true,
            },
            SensitiveOp {
                api: api_b,
                operation: "lookup0".into(),
                categories: strings(&["location"]),
                consent_required: false,
            },
        ],
        purposes: Some(strings(&["service", "research"])),
    }
}

const OPERATOR: &str = r#"
@id("operator/embargo")
forbid (principal, action, resource)
when { context has region && ["embargo-a", "embargo-b", "embargo-c"].contains(context.region) };

@id("operator/no-anonymous")
forbid (principal, action, resource)
when { context.auth_method == "none" };
"#;

struct World {
    plans: Vec<CompiledPlan>,
    dir: Directory,
}

fn world() -> World {
    let operator = OperatorPolicies::parse(OPERATOR).unwrap();
    let plans: Vec<CompiledPlan> = (0..PLANS)
        .map(|i| compile(&plan_terms(i), &operator).unwrap())
        .collect();
    // Every app has one subscription; 200 have a second; one in ten is inactive.
    let subs: Vec<SubscriptionFacts> = (0..SUBSCRIPTIONS)
        .map(|n| {
            let app = n % APPS;
            SubscriptionFacts {
                subscription_id: format!("sub-{n:05}"),
                app_id: format!("app-{app:04}"),
                org_id: format!("org-{:03}", app / 10),
                plan_key: plans[(n * 7) % PLANS].key().to_owned(),
                active: n % 10 != 9,
            }
        })
        .collect();
    let dir = Directory::new(&subs).unwrap();
    World { plans, dir }
}

/// An allowed call of app-0421 under its plan: every policy of the slice is evaluated
/// (Cedar evaluates them all; nothing short-circuits across policies).
fn request(w: &World) -> (&CompiledPlan, Owned) {
    let n = 421;
    let plan = &w.plans[(n * 7) % PLANS];
    let api = plan
        .cedar_text()
        .split("Api::\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    (
        plan,
        Owned {
            app: format!("app-{n:04}"),
            api,
            scopes: strings(&["data:read"]),
            cats: strings(&["contact"]),
            consent: strings(&["contact", "location"]),
        },
    )
}

struct Owned {
    app: String,
    api: String,
    scopes: Vec<String>,
    cats: Vec<String>,
    consent: Vec<String>,
}

impl Owned {
    fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            app_id: &self.app,
            api: &self.api,
            operation: "read1",
            scopes: &self.scopes,
            region: Some("eu-west"),
            data_categories: &self.cats,
            purpose: Some("service"),
            consent: &self.consent,
            auth_method: "api_key",
        }
    }
}

fn main() {
    let w = world();
    let (plan, owned) = request(&w);
    let facts = owned.facts();
    // Wednesday 4 November 2026, 10:00 UTC: inside hours in all four zones but Tokyo.
    let now: Timestamp = "2026-11-04T10:00:00Z".parse().unwrap();
    let d = decide(plan, &w.dir, &facts, now);
    assert!(
        d.allow || d.reasons.iter().all(|r| r.ends_with("/window")),
        "{d:?}"
    );
    println!(
        "setup: {PLANS} plans, {SUBSCRIPTIONS} subscriptions of {APPS} apps; slice of {} policies + 2 operator; decision {d:?}",
        plan.clauses().count()
    );

    // Profiling hook: `DECIDE_LOOP=n` runs n cold calls and exits (e.g. under callgrind:
    // instructions per call = (Ir(n) - Ir(0)) / n, independent of the machine's load).
    // `DECIDE_AT=<timestamp>` moves the calls to another instant (e.g.
    // `2026-11-04T23:30:00Z`, outside the window: the denial path).
    if let Ok(n) = std::env::var("DECIDE_LOOP") {
        let n: u32 = n.parse().unwrap();
        let at = std::env::var("DECIDE_AT").map_or(now, |t| t.parse().unwrap());
        for _ in 0..n {
            black_box(decide(black_box(plan), &w.dir, black_box(&facts), at));
        }
        return;
    }
    breakdown(&w, plan, &facts, now);

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("decide");
    g.bench_function("allow", |b| {
        b.iter(|| {
            decide(
                black_box(plan),
                black_box(&w.dir),
                black_box(&facts),
                black_box(now),
            )
        })
    });
    let late: Timestamp = "2026-11-04T23:30:00Z".parse().unwrap();
    g.bench_function("deny_window", |b| {
        b.iter(|| {
            decide(
                black_box(plan),
                black_box(&w.dir),
                black_box(&facts),
                black_box(late),
            )
        })
    });
    g.finish();

    // Warm: steady traffic of 1 000 distinct (application, operation) pairs through a
    // `DecisionCache`, all within one local minute, so after the first round every call
    // is a hit.
    let mix = Mix::new(&w);
    let cache = DecisionCache::new(16_384);
    let mut g = c.benchmark_group("decide_cached");
    let mut i = 0usize;
    g.bench_function("warm_mix", |b| {
        b.iter(|| {
            i = (i + 1) % mix.calls.len();
            let (plan, facts) = mix.call(&w, i);
            decide_cached(black_box(&cache), 1, plan, &w.dir, black_box(&facts), now)
        })
    });
    g.finish();
    c.final_summary();

    // Per-call latency histograms (Instant::now costs ~20–30 ns here, included).
    // Cold: 200 000 single `decide` calls of the allowed request (no cache).
    let mut hist = histogram();
    for _ in 0..20_000 {
        black_box(decide(plan, &w.dir, &facts, now));
    }
    let started = Instant::now();
    let calls = 200_000u32;
    for i in 0..calls {
        // Step the clock a little so the local-time computation is not a constant.
        let t = now
            .checked_add(jiff::SignedDuration::from_millis(i64::from(i)))
            .unwrap();
        let t0 = Instant::now();
        let d = decide(plan, &w.dir, &facts, t);
        let ns = t0.elapsed().as_nanos() as u64;
        black_box(d);
        hist.record(ns.max(1)).unwrap();
    }
    report("cold decide/allow", calls, started, &hist, None);

    // Warm: the 1 000-pair mix in random order through a fresh cache, the clock running
    // at 10 000 requests per second (600 000 per minute), starting 30 s before a minute
    // boundary: each pair misses once per local minute, as in production.
    let cache = DecisionCache::new(16_384);
    let mut hist = histogram();
    let calls = 1_200_000u32;
    let start = now
        .checked_sub(jiff::SignedDuration::from_secs(30))
        .unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let started = Instant::now();
    for n in 0..calls {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let (plan, facts) = mix.call(&w, (rng % mix.calls.len() as u64) as usize);
        let t = start
            .checked_add(jiff::SignedDuration::from_micros(i64::from(n) * 100))
            .unwrap();
        let t0 = Instant::now();
        let d = decide_cached(&cache, 1, plan, &w.dir, &facts, t);
        let ns = t0.elapsed().as_nanos() as u64;
        black_box(d);
        hist.record(ns.max(1)).unwrap();
    }
    report(
        "warm decide_cached/mix",
        calls,
        started,
        &hist,
        Some(&cache),
    );
}

fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap()
}

fn report(
    name: &str,
    calls: u32,
    started: Instant,
    hist: &Histogram<u64>,
    cache: Option<&DecisionCache>,
) {
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1_000.0;
    let stats = cache
        .map(|c| {
            let s = c.stats();
            format!(
                ", cache hits {} misses {} ({:.3} % misses)",
                s.hits,
                s.misses,
                100.0 * s.misses as f64 / (s.hits + s.misses) as f64
            )
        })
        .unwrap_or_default();
    println!(
        "histogram {name} ({calls} calls, {:.1} s): mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs{stats}",
        started.elapsed().as_secs_f64(),
        hist.mean() / 1_000.0,
        us(0.50),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1_000.0
    );
}

/// 1 000 distinct (application, operation) pairs: application `n` calls operation
/// `n % 12` of its first subscription's plan (reads, writes and lookups over both APIs;
/// some denied: inactive subscriptions, consent for `read2`, scopes for writes).
struct Mix {
    calls: Vec<(usize, Owned, String)>,
}

impl Mix {
    fn new(w: &World) -> Self {
        let calls = (0..APPS)
            .map(|n| {
                let p = (n * 7) % PLANS;
                let (api_a, api_b) = (format!("api-{}", p % 8), format!("api-{}", (p + 3) % 8));
                let k = n % 12;
                let (api, op) = match k {
                    0..6 => (api_a, format!("read{k}")),
                    6..9 => (api_a, format!("write{}", k - 6)),
                    _ => (api_b, format!("lookup{}", k - 9)),
                };
                assert!(w.plans[p].cedar_text().contains(&format!("Api::\"{api}\"")));
                (
                    p,
                    Owned {
                        app: format!("app-{n:04}"),
                        api,
                        scopes: strings(&["data:read"]),
                        cats: strings(&["contact"]),
                        consent: strings(&["contact", "location"]),
                    },
                    op,
                )
            })
            .collect();
        Self { calls }
    }

    fn call<'w>(&'w self, w: &'w World, i: usize) -> (&'w CompiledPlan, RequestFacts<'w>) {
        let (p, owned, op) = &self.calls[i];
        let mut facts = owned.facts();
        facts.operation = op;
        (&w.plans[*p], facts)
    }
}

/// Mean cost of the parts of one decision, to see where the time goes.
fn breakdown(w: &World, plan: &CompiledPlan, facts: &RequestFacts<'_>, now: Timestamp) {
    use cedar_policy::{Authorizer, Entities, PolicySet};
    let time = |name: &str, f: &mut dyn FnMut()| {
        for _ in 0..5_000 {
            f();
        }
        let n = 50_000u32;
        let t0 = Instant::now();
        for _ in 0..n {
            f();
        }
        println!(
            "breakdown {name}: {:.2} µs",
            t0.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
    };
    let auth = Authorizer::new();
    let request = tollgate_policy::cedar_request(plan, &w.dir, facts, now);
    time("local_time", &mut || {
        black_box(tollgate_policy::local_time(black_box(plan), black_box(now)));
    });
    // `decide` folds the sets below for the request and builds only the context
    // attributes the folded set reads; these are the unfolded costs, for comparison.
    time("cedar_request (full context build)", &mut || {
        black_box(tollgate_policy::cedar_request(
            black_box(plan),
            &w.dir,
            facts,
            now,
        ));
    });
    time(
        "is_authorized, unfolded slice+operator, snapshot entities",
        &mut || {
            black_box(auth.is_authorized(&request, plan.policy_set(), w.dir.entities()));
        },
    );
    time(
        "is_authorized, unfolded verdict set (grant + merged deny + operator)",
        &mut || {
            black_box(auth.is_authorized(&request, plan.verdict_set(), w.dir.entities()));
        },
    );
    let empty = Entities::empty();
    time("is_authorized, slice+operator, no entities", &mut || {
        black_box(auth.is_authorized(&request, plan.policy_set(), &empty));
    });
    for p in plan.policy_set().policies() {
        let one = PolicySet::from_policies([p.clone()]).unwrap();
        time(&format!("is_authorized, only {}", p.id()), &mut || {
            black_box(auth.is_authorized(&request, &one, w.dir.entities()));
        });
    }
    let none = PolicySet::new();
    time("is_authorized, empty policy set", &mut || {
        black_box(auth.is_authorized(&request, &none, w.dir.entities()));
    });
}
