//! The per-request decision path of the gateway, without sockets: the API-key check
//! (format, checksum, HMAC digest, index lookup, expiry, IP), the subscription lookup, the
//! Cedar decision, the GCRA rate limit, the exact quota and the RateLimit fields.
//! Run: `cargo bench -p tollgate-gateway --bench decision_path`. Criterion gives the mean;
//! an HdrHistogram of single calls gives p50/p99/p99.9.
//!
//! The snapshot: 24 plan versions (each with a rate limit and a monthly quota), 1 000 apps
//! with one key and one subscription each. Traffic cycles over the 1 000 keys, so the
//! decision cache serves repeated (app, operation, minute) triples as it does under steady
//! load; the `cold` variant disables the cache (every call runs Cedar).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::hmac;
use criterion::Criterion;
use hdrhistogram::Histogram;
use time::OffsetDateTime;
use tollgate_core::apikey::{self, KeyMode};
use tollgate_core::model::{ApiKeyInfo, ApiStatus, PlanApi, Subscription, SubscriptionState};
use tollgate_core::{ApiId, ApiKeyId, AppId, OrgId, PlanId, SubscriptionId, UserId};
use tollgate_gateway::access::{QuotaInput, QuotaPer, RateInput};
use tollgate_gateway::pipeline::{CallFacts, admit};
use tollgate_gateway::{
    Access, AccessInput, AuthInput, AuthOutcome, Authenticator, CredentialAuthenticator, PlanInput,
    PlanRuntime, RouteApi, Services,
};
use tollgate_limits::RatePer;
use tollgate_policy::{DecisionCache, Grant, OperatorPolicies, PlanTerms, RegionTable};

const PLANS: usize = 24;
const APPS: usize = 1_000;

struct World {
    access: Access,
    route: RouteApi,
    requests: Vec<http::request::Parts>,
    auth: CredentialAuthenticator,
    api: ApiId,
}

fn world() -> World {
    let pepper = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
    let auth = CredentialAuthenticator::new(pepper);
    let api = ApiId::new();
    let provider = OrgId::new();
    let now = OffsetDateTime::now_utc();
    let plans: Vec<Arc<PlanRuntime>> = (0..PLANS)
        .map(|i| {
            let terms = PlanTerms {
                key: format!("plan-{i}@{:064x}", i * 7919),
                grants: vec![Grant {
                    api: "bench".into(),
                    operations: (0..10).map(|k| format!("op{k}")).collect(),
                    scopes: vec!["data:read".into()],
                }],
                window: None,
                regions: None,
                sensitive: vec![],
                purposes: None,
            };
            let compiled = tollgate_policy::compile(&terms, &OperatorPolicies::none()).unwrap();
            Arc::new(
                PlanRuntime::new(PlanInput {
                    plan_id: PlanId::new(),
                    coverage: vec![PlanApi {
                        api_id: api,
                        operations: None,
                    }],
                    compiled,
                    operations: vec![],
                    rates: vec![RateInput {
                        group: None,
                        requests: 1_000_000,
                        per: RatePer::Second,
                        burst: 1_000_000,
                        per_credential: false,
                    }],
                    quotas: vec![QuotaInput {
                        group: None,
                        requests: 4_000_000_000,
                        per: QuotaPer::CalendarMonth,
                    }],
                    limits_tz: jiff::tz::TimeZone::UTC,
                })
                .unwrap(),
            )
        })
        .collect();
    let mut keys = Vec::new();
    let mut subscriptions = Vec::new();
    let mut requests = Vec::new();
    for i in 0..APPS {
        let app = AppId::new();
        let org = OrgId::new();
        let mut entropy = [0u8; 16];
        entropy[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let secret = apikey::format(KeyMode::Live, entropy);
        keys.push((
            ApiKeyInfo {
                id: ApiKeyId::new(),
                app_id: app,
                org_id: org,
                mode: KeyMode::Live,
                name: "k".into(),
                prefix: apikey::display_prefix(&secret).into(),
                scopes: vec!["data:read".into()],
                operations: None,
                ip_allowlist: vec![],
                created_by: UserId::new(),
                created_at: now,
                expires_at: now + time::Duration::days(30),
                revoked_at: None,
                revision: 1,
            },
            hex::encode(auth.digest(&secret)),
        ));
        subscriptions.push((
            Subscription {
                id: SubscriptionId::new(),
                app_id: app,
                consumer_org_id: org,
                plan_id: PlanId::new(),
                provider_org_id: provider,
                state: SubscriptionState::Active,
                mode: KeyMode::Live,
                terms_sha256: None,
                history: vec![],
                created_at: now,
                updated_at: now,
                revision: 1,
            },
            plans[i % PLANS].clone(),
        ));
        let (parts, ()) = http::Request::get("/bench/v1/op")
            .header("x-api-key", secret)
            .body(())
            .unwrap()
            .into_parts();
        requests.push(parts);
    }
    let (access, problems) = Access::build(AccessInput {
        keys,
        subscriptions,
        api_slugs: [(api, "bench".to_owned())].into_iter().collect(),
        regions: RegionTable::new(),
        oauth: Default::default(),
        signing_keys: vec![],
        mtls_required: Default::default(),
        public: Default::default(),
    })
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let route = RouteApi {
        api_id: api,
        org_id: provider,
        base_path: "/bench/v1".into(),
        hosts: vec![],
        upstreams: vec!["http://127.0.0.1:1".into()],
        sandbox_upstreams: vec![],
        status: ApiStatus::Published,
        sunset: None,
        deprecated_at: None,
        operations: vec![],
    };
    World {
        access,
        route,
        requests,
        auth,
        api,
    }
}

/// One request's decision path; true when admitted.
fn one(world: &World, services: &Services, i: usize) -> bool {
    let now = jiff::Timestamp::now();
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let input = AuthInput {
        access: &world.access,
        peer,
        now,
        scheme: "http",
    };
    let parts = &world.requests[i % world.requests.len()];
    let AuthOutcome::Allow(ctx) = world.auth.authenticate(parts, &world.route, &input) else {
        return false;
    };
    let principal = ctx.principal().unwrap();
    let call = CallFacts {
        api: world.api,
        api_slug: "bench",
        operation: "op3",
        peer,
        purpose: None,
        consent: None,
        auth_method: ctx.method(),
    };
    admit(services, &world.access, 1, principal, &call, now).is_ok()
}

fn services(cache: DecisionCache) -> Services {
    let mut s = Services::new(Arc::new(tollgate_gateway::DenyAll));
    s.decisions = Arc::new(cache);
    s
}

fn histogram(label: &str, world: &World, services: &Services, calls: usize) {
    let mut h = Histogram::<u64>::new(3).unwrap();
    for i in 0..calls {
        let t = Instant::now();
        assert!(black_box(one(world, services, i)));
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    println!(
        "{label}: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs ({calls} calls)",
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

fn main() {
    let world = world();
    let warm = services(DecisionCache::new(65_536));
    let cold = services(DecisionCache::disabled());
    // Fill the cache once, as steady traffic does.
    for i in 0..APPS {
        assert!(one(&world, &warm, i));
    }
    let mut c = Criterion::default().configure_from_args();
    let mut i = 0usize;
    c.bench_function("decision path (key + Cedar cached + GCRA + quota)", |b| {
        b.iter(|| {
            i += 1;
            one(&world, &warm, i)
        })
    });
    c.bench_function("decision path, cold (Cedar every call)", |b| {
        b.iter(|| {
            i += 1;
            one(&world, &cold, i)
        })
    });
    histogram("warm", &world, &warm, 200_000);
    histogram("cold", &world, &cold, 20_000);
    c.final_summary();
}
