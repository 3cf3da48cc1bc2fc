//! Compiles the gateway snapshot from the store (DESIGN.md §4) and installs it: routes,
//! the credential index, every subscription with the compiled plan version it is served
//! under, and the operator's region table. Rebuilds are serialised and versions rise
//! monotonically; a mutation that changes what the gateway enforces returns only after
//! its snapshot is live, so the next gateway request sees it.
//!
//! The sealed secrets of `hmac-sha256` request-signing keys are opened here with the
//! keyring and handed to the access index, which wipes them once the keys are built.
//!
//! Compiling Cedar is the expensive part, so compiled plan versions are cached by plan
//! revision and term sheet hash: a key revocation rebuilds the index, not the policies.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::ApiError;
use crate::state::AppState;
use tollgate_core::model::{Api, Operation, Plan, SigningKeyInfo, TermSheet};
use tollgate_core::path_template::PathTemplate;
use tollgate_core::{ApiId, OrgId, PlanId};
use tollgate_gateway::access::{OAuthInput, OperationInput, QuotaInput, QuotaPer, RateInput};
use tollgate_gateway::{
    Access, AccessInput, PlanInput, PlanRuntime, RouteApi, RouteOperation, Snapshot,
};
use tollgate_limits::RatePer;
use tollgate_policy::{Grant, PlanTerms};
use tollgate_terms::model::{QuotaPeriod, RatePeriod};

/// Rebuilds the snapshot from committed state and swaps it in.
pub async fn refresh(state: &AppState) -> Result<u64, ApiError> {
    let mut last = state.snapshot_lock.lock().await;
    let mut tx = state.store.read().await?;
    let apis = tx.routable_apis().await?;
    // Test-mode mocks: built once per API revision from its OpenAPI document.
    let mut mocks = HashMap::with_capacity(apis.len());
    {
        let cached: Vec<(ApiId, Option<Arc<tollgate_openapi::MockTable>>)> = {
            let cache = state.mock_cache.lock().unwrap_or_else(|e| e.into_inner());
            apis.iter()
                .map(|(a, _)| (a.id, cache.get(&(a.id, a.revision)).cloned()))
                .collect()
        };
        for ((id, hit), (api, _)) in cached.into_iter().zip(&apis) {
            let table = match hit {
                Some(t) => t,
                None => {
                    let doc = tx.get_api_openapi(id).await?;
                    let table = Arc::new(
                        doc.as_ref()
                            .map(tollgate_openapi::MockTable::build)
                            .unwrap_or_default(),
                    );
                    state
                        .mock_cache
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((id, api.revision), table.clone());
                    table
                }
            };
            mocks.insert(id, table);
        }
        state
            .mock_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, rev), _| apis.iter().any(|(a, _)| a.id == *id && a.revision == *rev));
    }
    let keys = tx.all_api_keys().await?;
    let oauth_clients = tx.active_oauth_clients().await?;
    let sealed_signing_keys = tx.active_signing_keys_with_secrets().await?;
    let revoked = tx.revoked_tokens(state.now()).await?;
    let subscriptions = tx.gateway_subscriptions().await?;
    let mut plans: HashMap<PlanId, Plan> = HashMap::new();
    let mut sheets: HashMap<(OrgId, String), TermSheet> = HashMap::new();
    for sub in &subscriptions {
        if !plans.contains_key(&sub.plan_id)
            && let Some(plan) = tx.get_plan(sub.plan_id).await?
        {
            plans.insert(plan.id, plan);
        }
        if let Some(sha) = &sub.terms_sha256 {
            let k = (sub.provider_org_id, sha.clone());
            if !sheets.contains_key(&k)
                && let Some(sheet) = tx.get_terms_by_hash(sub.provider_org_id, sha).await?
            {
                sheets.insert(k, sheet);
            }
        }
    }
    drop(tx);
    let signing_keys = open_signing_secrets(state, sealed_signing_keys).await;

    let routes = routes(&apis)?;
    let version = *last + 1;
    // One provider's unroutable API must not stop every other change from going live:
    // invalid APIs are left out and reported.
    let (snapshot, problems) = Snapshot::build_lenient(version, routes);
    for p in &problems {
        tracing::warn!(version, problem = %p, "API left out of the gateway snapshot");
    }

    let catalog = Catalog::new(&apis);
    let mut joined = Vec::with_capacity(subscriptions.len());
    let mut used = HashSet::new();
    for sub in subscriptions {
        let Some(plan) = plans.get(&sub.plan_id) else {
            tracing::warn!(subscription = %sub.id, "subscription's plan is missing; left out");
            continue;
        };
        let sheet = match &sub.terms_sha256 {
            Some(sha) => match sheets.get(&(sub.provider_org_id, sha.clone())) {
                Some(sheet) => Some(sheet),
                None => {
                    tracing::warn!(subscription = %sub.id, "subscription's term sheet is missing; left out");
                    continue;
                }
            },
            None => None,
        };
        match plan_runtime(state, &catalog, plan, sheet) {
            Ok((key, runtime)) => {
                used.insert(key);
                joined.push((sub, runtime));
            }
            Err(e) => {
                tracing::warn!(subscription = %sub.id, error = %e.detail, "plan version does not compile; subscription left out");
            }
        }
    }
    // Forget compiled versions no subscription uses any more.
    state
        .plan_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|k, _| used.contains(k));

    let input = AccessInput {
        keys,
        subscriptions: joined,
        api_slugs: apis.iter().map(|(a, _)| (a.id, a.slug.clone())).collect(),
        regions: state.regions(),
        oauth: OAuthInput {
            clients: oauth_clients,
            verifier: token_verifier(state).await,
            revoked: revoked.into_iter().map(|(jti, _)| jti).collect(),
        },
        signing_keys,
        mtls_required: apis
            .iter()
            .filter(|(a, _)| a.mtls == tollgate_core::model::MtlsMode::Required)
            .map(|(a, _)| a.id)
            .collect(),
        public: apis
            .iter()
            .filter(|(a, _)| a.public)
            .map(|(a, _)| a.id)
            .collect(),
    };
    let access = match Access::build(input) {
        Ok((access, problems)) => {
            for p in problems {
                tracing::warn!(version, problem = %p, "gateway credential index");
            }
            access
        }
        Err(e) => return Err(ApiError::internal(format!("gateway access index: {e}"))),
    };
    let (key_count, sub_count) = access.counts();
    state
        .snapshot
        .store(snapshot.with_access(access).with_mocks(mocks));
    *last = version;
    state.ready.store(true, Ordering::Release);
    tracing::debug!(
        version,
        keys = key_count,
        subscriptions = sub_count,
        "gateway snapshot installed"
    );
    Ok(version)
}

/// Opens the sealed secrets of `hmac-sha256` signing keys with the keyring (after the
/// store transaction, so the keyring lock is never held while waiting on the store). A
/// secret that does not open is logged with its cause and passed on as `None`: the access
/// index then leaves the key out.
async fn open_signing_secrets(
    state: &AppState,
    keys: Vec<(SigningKeyInfo, Option<Vec<u8>>)>,
) -> Vec<(SigningKeyInfo, Option<tollgate_keyring::Zeroizing<Vec<u8>>>)> {
    // Decryption is synchronous: the read lock lasts for this loop only.
    let ring = state.keyring.read().await;
    keys.into_iter()
        .map(|(key, sealed)| {
            let secret = sealed.and_then(|blob| {
                ring.decrypt(&blob, &crate::routes::signing_keys::secret_aad(key.id))
                    .inspect_err(|e| {
                        tracing::warn!(signing_key = %key.id, error = %e, "signing key secret does not open; key left out of the gateway snapshot");
                    })
                    .ok()
            });
            (key, secret)
        })
        .collect()
}

/// The access-token verifier over the keyring's published token-signing keys.
async fn token_verifier(state: &AppState) -> Option<tollgate_oauth::AccessTokenVerifier> {
    let ring = state.keyring.read().await;
    let keys = tollgate_oauth::rotation::verification_key_set(
        &ring,
        tollgate_keyring::KeyPurpose::TokenSigning,
        state.now(),
    );
    match keys {
        Ok(keys) => {
            let url = state.public_url();
            Some(tollgate_oauth::AccessTokenVerifier::new(
                keys,
                url.clone(),
                url,
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "token-signing keys unusable; access tokens are refused");
            None
        }
    }
}

fn routes(apis: &[(Api, Vec<Operation>)]) -> Result<Vec<RouteApi>, ApiError> {
    let mut routes = Vec::with_capacity(apis.len());
    for (api, ops) in apis {
        let mut operations = Vec::with_capacity(ops.len());
        for op in ops {
            let method = op.method.parse().map_err(ApiError::internal)?;
            let template = PathTemplate::parse(&op.path).map_err(ApiError::internal)?;
            operations.push(RouteOperation {
                operation_id: op.operation_id.clone(),
                method,
                template,
            });
        }
        routes.push(RouteApi {
            api_id: api.id,
            org_id: api.org_id,
            base_path: api.base_path.clone(),
            hosts: api.hosts.clone(),
            upstreams: api.upstreams.clone(),
            sandbox_upstreams: api.sandbox_upstreams.clone(),
            status: api.status,
            sunset: api.sunset,
            deprecated_at: None,
            operations,
        });
    }
    Ok(routes)
}

/// The routed APIs by id: slug and operation ids.
struct Catalog<'a> {
    apis: HashMap<ApiId, (&'a str, Vec<&'a str>)>,
}

impl<'a> Catalog<'a> {
    fn new(apis: &'a [(Api, Vec<Operation>)]) -> Self {
        Self {
            apis: apis
                .iter()
                .map(|(a, ops)| {
                    (
                        a.id,
                        (
                            a.slug.as_str(),
                            ops.iter().map(|o| o.operation_id.as_str()).collect(),
                        ),
                    )
                })
                .collect(),
        }
    }
}

/// The compiled plan version a subscription is served under (cached), and its cache key.
fn plan_runtime(
    state: &AppState,
    catalog: &Catalog<'_>,
    plan: &Plan,
    sheet: Option<&TermSheet>,
) -> Result<(String, Arc<PlanRuntime>), ApiError> {
    let cache_key = match sheet {
        Some(t) => format!("{}:{}:{}@{}", plan.id, plan.revision, t.sheet_id, t.sha256),
        None => format!("{}:{}:none", plan.id, plan.revision),
    };
    if let Some(hit) = state
        .plan_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cache_key)
    {
        return Ok((cache_key, hit.clone()));
    }
    let operator = state.operator_policies();
    let input = match sheet {
        Some(t) => {
            let v = crate::routes::terms::revalidate(t)?;
            let compiled = crate::policy::compile(t, &v, &operator)?;
            let limits = &v.sheet().limits;
            PlanInput {
                plan_id: plan.id,
                coverage: plan.apis.clone(),
                compiled,
                operations: v
                    .operations()
                    .iter()
                    .map(|op| OperationInput {
                        api: op.api.clone(),
                        operation_id: op
                            .operation_id
                            .clone()
                            .unwrap_or_else(|| op.operation.to_string()),
                        group: op.group.clone(),
                        categories: op.categories.iter().map(crate::policy::name).collect(),
                    })
                    .collect(),
                rates: limits
                    .rate
                    .iter()
                    .map(|r| RateInput {
                        group: r.group.clone(),
                        requests: r.requests,
                        per: match r.per {
                            RatePeriod::Second => RatePer::Second,
                            RatePeriod::Minute => RatePer::Minute,
                            RatePeriod::Hour => RatePer::Hour,
                        },
                        burst: r.burst.unwrap_or(r.requests),
                        per_credential: r.per_credential,
                    })
                    .collect(),
                quotas: limits
                    .quota
                    .iter()
                    .map(|q| QuotaInput {
                        group: q.group.clone(),
                        requests: q.requests,
                        per: match q.per {
                            QuotaPeriod::Day => QuotaPer::Day,
                            QuotaPeriod::CalendarMonth => QuotaPer::CalendarMonth,
                            QuotaPeriod::BillingPeriod => QuotaPer::BillingPeriod,
                        },
                    })
                    .collect(),
                limits_tz: v.limits_time_zone().clone(),
            }
        }
        None => {
            // A plan without terms grants what it includes, with no limits; the operator
            // policies still apply.
            let grants = plan
                .apis
                .iter()
                .filter_map(|pa| {
                    let (slug, all) = catalog.apis.get(&pa.api_id)?;
                    let operations: Vec<String> = match &pa.operations {
                        Some(ops) => ops.clone(),
                        None => all.iter().map(|s| (*s).to_owned()).collect(),
                    };
                    (!operations.is_empty()).then(|| Grant {
                        api: (*slug).to_owned(),
                        operations,
                        scopes: Vec::new(),
                    })
                })
                .collect();
            let terms = PlanTerms {
                key: format!("{}@r{}", plan.id, plan.revision),
                grants,
                window: None,
                regions: None,
                sensitive: Vec::new(),
                purposes: None,
            };
            let compiled = tollgate_policy::compile(&terms, &operator)
                .map_err(|e| ApiError::internal(format!("plan {} policy: {e}", plan.id)))?;
            PlanInput {
                plan_id: plan.id,
                coverage: plan.apis.clone(),
                compiled,
                operations: Vec::new(),
                rates: Vec::new(),
                quotas: Vec::new(),
                limits_tz: jiff::tz::TimeZone::UTC,
            }
        }
    };
    let runtime = Arc::new(PlanRuntime::new(input).map_err(|e| ApiError::internal(e.to_string()))?);
    state
        .plan_cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(cache_key.clone(), runtime.clone());
    Ok((cache_key, runtime))
}
