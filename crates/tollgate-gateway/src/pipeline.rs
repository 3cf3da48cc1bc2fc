//! The steps between "the caller is known and the operation matched" and "forward":
//! the subscription the call runs under, the Cedar decision of its term sheet (plus the
//! operator policies), then rate limits and quotas. Refusals consume nothing: a denial
//! is decided before any counter moves, a rate refusal touches no quota, and a quota
//! refusal gives back what the same request took.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;
use http::header::{HeaderName, RETRY_AFTER};
use jiff::Timestamp;
use tollgate_core::ErrorCode;
use tollgate_core::clock::{Clock, SystemClock};
use tollgate_limits::{
    LimitItem, LimitKey, Limiter, LocalLimiter, PolicyItem, QuotaDecision, RateDecision, ratelimit,
    ratelimit_policy, retry_after_seconds,
};
use tollgate_policy::{Decision, DecisionCache, NOT_GRANTED, RequestFacts, decide_cached};

use crate::access::{Access, Principal, SubscriptionEntry, SubscriptionLookup};
use crate::auth::Authenticator;
use crate::problem::GatewayError;
use crate::usage::EventSink;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The usage event id of a metered call.
pub const TOLLGATE_USAGE_ID: HeaderName = HeaderName::from_static("tollgate-usage-id");
/// The purpose of processing the caller declares (checked against the terms).
pub const TOLLGATE_PURPOSE: HeaderName = HeaderName::from_static("tollgate-purpose");
/// Comma-separated data categories the caller holds consent for.
pub const TOLLGATE_CONSENT: HeaderName = HeaderName::from_static("tollgate-consent");

/// Default capacity of the decision cache.
const DECISION_CACHE_CAPACITY: usize = 65_536;

/// What the gateway runs a request through besides the snapshot: authentication, the
/// clock, the limiter, the decision cache and the metering channel.
#[derive(Clone)]
pub struct Services {
    pub auth: Arc<dyn Authenticator>,
    pub clock: Arc<dyn Clock>,
    pub limiter: Arc<dyn Limiter>,
    pub events: EventSink,
    pub decisions: Arc<DecisionCache>,
    /// The marketplace's public endpoints served on the gateway listener (OAuth token,
    /// introspection, revocation, JWKS, metadata), checked before routing.
    pub public: Option<Arc<dyn PublicEndpoints>>,
    /// Signs the `Tollgate-Assertion` every forwarded call of an identified caller carries.
    pub assertions: Option<Arc<dyn AssertionSigner>>,
}

/// The gateway assertion header: a short-lived JWT (signed with the marketplace's
/// gateway-assertion key, published at `/.well-known/tollgate-assertion-jwks.json`) that
/// names the org, app, plan, subscription, scopes and auth method of the call, so an
/// upstream can check that the call came through the marketplace. A consumer's own
/// `Tollgate-Assertion` field is always removed.
pub const TOLLGATE_ASSERTION: HeaderName = HeaderName::from_static("tollgate-assertion");

/// What the gateway assertion of a call states.
#[derive(Debug, Clone, Copy)]
pub struct AssertionFacts<'a> {
    pub principal: &'a Principal,
    pub subscription: &'a SubscriptionEntry,
    pub api: tollgate_core::ApiId,
    /// `api_key`, `oauth`, …
    pub auth_method: &'a str,
    pub now: Timestamp,
}

/// Produces gateway assertions (the control plane signs with the keyring; assertions are
/// reused while they have time left, so a call rarely pays for a signature).
pub trait AssertionSigner: Send + Sync + 'static {
    /// The header value for a call, or `None` when no assertion can be made now.
    fn assertion(&self, facts: &AssertionFacts<'_>) -> Option<HeaderValue>;
}

/// Endpoints of the control plane that the gateway listener serves (the marketplace's
/// public face): the OAuth 2.0 authorization server and its key sets. Their answers are
/// small and complete, so they are returned whole.
pub trait PublicEndpoints: Send + Sync + 'static {
    /// Whether `path` is one of them (checked on every request: keep it cheap).
    fn serves(&self, path: &str) -> bool;

    /// Answers the request.
    fn call(
        &self,
        req: http::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
    ) -> std::pin::Pin<Box<dyn Future<Output = http::Response<bytes::Bytes>> + Send + 'static>>;
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("clock", &self.clock)
            .field("decisions", &self.decisions)
            .finish_non_exhaustive()
    }
}

impl Services {
    /// `auth` with the system clock, an in-process limiter, a decision cache and no
    /// metering.
    pub fn new(auth: Arc<dyn Authenticator>) -> Self {
        Self {
            auth,
            clock: Arc::new(SystemClock),
            limiter: Arc::new(LocalLimiter::new()),
            events: EventSink::discard(),
            decisions: Arc::new(DecisionCache::new(DECISION_CACHE_CAPACITY)),
            public: None,
            assertions: None,
        }
    }
}

impl From<Arc<dyn Authenticator>> for Services {
    fn from(auth: Arc<dyn Authenticator>) -> Self {
        Self::new(auth)
    }
}

impl<T: Authenticator> From<Arc<T>> for Services {
    fn from(auth: Arc<T>) -> Self {
        Self::new(auth)
    }
}

/// What was counted for a call, so a call the gateway then fails can be given back.
#[derive(Debug, Default)]
pub struct Consumed {
    rates: Vec<(LimitKey, usize)>,
    quotas: Vec<(LimitKey, usize)>,
}

/// A call that may go upstream.
#[derive(Debug)]
pub struct Admitted {
    pub(crate) subscription: Arc<SubscriptionEntry>,
    pub(crate) decision: Arc<Decision>,
    pub(crate) consumed: Consumed,
    pub(crate) now: Timestamp,
    /// `RateLimit-Policy` and `RateLimit` for the response.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

/// A refused call, with what the audit trail should learn of it.
#[derive(Debug)]
pub struct Refused {
    pub(crate) error: GatewayError,
    /// The subscription, when one was found.
    pub(crate) subscription: Option<Arc<SubscriptionEntry>>,
    /// Policy ids behind an authorization denial (never shown to the caller).
    pub(crate) reasons: Vec<String>,
}

impl Refused {
    fn plain(error: GatewayError) -> Self {
        Self {
            error,
            subscription: None,
            reasons: Vec::new(),
        }
    }
}

/// The request facts the pipeline reads from the head.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    pub api: tollgate_core::ApiId,
    pub api_slug: &'a str,
    pub operation: &'a str,
    pub peer: IpAddr,
    /// `Tollgate-Purpose`.
    pub purpose: Option<&'a str>,
    /// `Tollgate-Consent` (comma-separated categories).
    pub consent: Option<&'a str>,
    pub auth_method: &'a str,
}

/// Subscription → Cedar decision → rate limits → quotas: the per-request decision path
/// after authentication (public for the decision-path bench).
pub fn admit(
    services: &Services,
    access: &Access,
    generation: u64,
    principal: &Principal,
    call: &CallFacts<'_>,
    now: Timestamp,
) -> Result<Admitted, Box<Refused>> {
    if !principal.may_call(call.api_slug, call.operation) {
        return Err(Box::new(Refused::plain(GatewayError::new(
            ErrorCode::ScopeDenied,
            "the credential is limited to other operations",
        ))));
    }
    let subscription = match access.subscription_for(principal, call.api, call.operation) {
        SubscriptionLookup::Active(sub) => sub.clone(),
        SubscriptionLookup::Inactive => {
            return Err(Box::new(Refused::plain(GatewayError::new(
                ErrorCode::SubscriptionInactive,
                "the app's subscription covering this operation is not active",
            ))));
        }
        SubscriptionLookup::None => {
            return Err(Box::new(Refused::plain(GatewayError::new(
                ErrorCode::SubscriptionRequired,
                match principal.mode {
                    tollgate_core::apikey::KeyMode::Live => {
                        "the app has no live subscription to a plan that includes this operation"
                    }
                    tollgate_core::apikey::KeyMode::Test => {
                        "the app has no test subscription to a plan that includes this operation"
                    }
                },
            ))));
        }
    };
    let plan = &subscription.plan;
    let op = plan.operation(call.api_slug, call.operation);

    // Authorization: the plan's Cedar slice and the operator policies.
    let consent: Vec<String> = call
        .consent
        .map(|c| {
            c.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let facts = RequestFacts {
        app_id: &principal.app_id_str,
        api: call.api_slug,
        operation: call.operation,
        scopes: &principal.scopes,
        region: access.region(call.peer),
        data_categories: &op.categories,
        purpose: call.purpose,
        consent: &consent,
        auth_method: call.auth_method,
    };
    let decision = decide_cached(
        &services.decisions,
        generation,
        &plan.compiled,
        access.directory(),
        &facts,
        now,
    );
    if !decision.errors.is_empty() {
        tracing::warn!(plan = plan.key(), errors = ?decision.errors, "policies failed to evaluate");
    }
    if !decision.allow {
        // The subscription is known: the answer still tells where its limits stand.
        let mut error = denial_error(&decision.reasons);
        let rates: Vec<(usize, RateDecision)> = op
            .rates
            .iter()
            .map(|&i| {
                let clause = &plan.rates[i];
                let key = rate_key(&subscription, principal, clause);
                (i, services.limiter.rate_peek(&key, &clause.spec, now))
            })
            .collect();
        let quotas: Vec<(usize, QuotaDecision)> = op
            .quotas
            .iter()
            .map(|&i| {
                let key = subscription.limit_key(plan.quotas[i].limit_id);
                (
                    i,
                    services
                        .limiter
                        .quota_peek(&key, &subscription.quotas[i], now),
                )
            })
            .collect();
        for (name, value) in limit_headers(&subscription, op, &rates, &quotas, now) {
            error.headers_mut().insert(name, value);
        }
        return Err(Box::new(Refused {
            error,
            subscription: Some(subscription.clone()),
            reasons: decision.reasons.clone(),
        }));
    }

    // Rate limits, then quotas; a refusal gives back what this request took.
    let limiter = &*services.limiter;
    let mut consumed = Consumed::default();
    let mut rate_items: Vec<(usize, RateDecision)> = Vec::with_capacity(op.rates.len());
    for &i in &op.rates {
        let clause = &plan.rates[i];
        let key = rate_key(&subscription, principal, clause);
        let d = limiter.rate(&key, &clause.spec, now);
        if let Some(wait) = d.retry_after() {
            give_back(services, &subscription, &consumed, now);
            let error = GatewayError::new(
                ErrorCode::RateLimited,
                format!(
                    "the plan allows {} requests per {} s here",
                    clause.spec.requests(),
                    clause.spec.period().as_secs().max(1)
                ),
            );
            rate_items.push((i, d));
            return Err(too_many(
                error,
                wait,
                &subscription,
                op,
                &rate_items,
                &[],
                now,
            ));
        }
        consumed.rates.push((key, i));
        rate_items.push((i, d));
    }
    let mut quota_items: Vec<(usize, QuotaDecision)> = Vec::with_capacity(op.quotas.len());
    for &i in &op.quotas {
        let key = subscription.limit_key(plan.quotas[i].limit_id);
        let spec = &subscription.quotas[i];
        let d = limiter.quota(&key, spec, now);
        if !d.is_allowed() {
            give_back(services, &subscription, &consumed, now);
            let resets = d.resets_at();
            let wait = std::time::Duration::from_secs(
                u64::try_from(resets.as_second() - now.as_second()).unwrap_or(0),
            );
            let error = GatewayError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "the quota of {} requests for this period is used up; it resets at {resets}",
                    spec.limit()
                ),
            );
            quota_items.push((i, d));
            return Err(too_many(
                error,
                wait,
                &subscription,
                op,
                &rate_items,
                &quota_items,
                now,
            ));
        }
        consumed.quotas.push((key, i));
        quota_items.push((i, d));
    }
    let headers = limit_headers(&subscription, op, &rate_items, &quota_items, now);
    Ok(Admitted {
        subscription,
        decision,
        consumed,
        now,
        headers,
    })
}

/// The limiter key of a rate clause: the subscription's, or the credential's.
fn rate_key(
    subscription: &SubscriptionEntry,
    principal: &Principal,
    clause: &crate::access::RateClause,
) -> LimitKey {
    if clause.per_credential {
        LimitKey::new(principal.subject, clause.limit_id)
    } else {
        subscription.limit_key(clause.limit_id)
    }
}

/// A 429 with `Retry-After` and the RateLimit fields of what was checked.
fn too_many(
    mut error: GatewayError,
    wait: std::time::Duration,
    subscription: &Arc<SubscriptionEntry>,
    op: &crate::access::OperationRuntime,
    rates: &[(usize, RateDecision)],
    quotas: &[(usize, QuotaDecision)],
    now: Timestamp,
) -> Box<Refused> {
    for (name, value) in limit_headers(subscription, op, rates, quotas, now) {
        error.headers_mut().insert(name, value);
    }
    error
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
    Box::new(Refused {
        error,
        subscription: Some(subscription.clone()),
        reasons: Vec::new(),
    })
}

/// Gives back everything a request counted (it was refused, or the gateway failed it
/// before the upstream served it).
pub fn give_back(
    services: &Services,
    subscription: &SubscriptionEntry,
    consumed: &Consumed,
    at: Timestamp,
) {
    let plan = &subscription.plan;
    for (key, i) in &consumed.rates {
        services.limiter.refund_rate(key, &plan.rates[*i].spec, at);
    }
    for (key, i) in &consumed.quotas {
        services.limiter.refund(key, &subscription.quotas[*i], at);
    }
}

/// `RateLimit-Policy` for every clause of the operation and `RateLimit` for those
/// checked so far.
fn limit_headers(
    subscription: &SubscriptionEntry,
    op: &crate::access::OperationRuntime,
    rates: &[(usize, RateDecision)],
    quotas: &[(usize, QuotaDecision)],
    now: Timestamp,
) -> Vec<(HeaderName, HeaderValue)> {
    let plan = &subscription.plan;
    let policy = op
        .rates
        .iter()
        .map(|&i| plan.rates[i].spec.policy_item(&plan.rates[i].name))
        .chain(
            op.quotas
                .iter()
                .map(|&i| subscription.quotas[i].policy_item(&plan.quotas[i].name, now)),
        )
        .collect::<Vec<PolicyItem<'_>>>();
    let limits = rates
        .iter()
        .map(|(i, d)| d.limit_item(&plan.rates[*i].name))
        .chain(
            quotas
                .iter()
                .map(|(i, d)| d.limit_item(&plan.quotas[*i].name, now)),
        )
        .collect::<Vec<LimitItem<'_>>>();
    let mut out = Vec::with_capacity(2);
    // Clause names are generated from validated groups (printable ASCII), so these do
    // not fail; a failure only leaves the field out.
    if let Ok(Some(v)) = ratelimit_policy(policy)
        && let Ok(v) = HeaderValue::try_from(v)
    {
        out.push((RATELIMIT_POLICY, v));
    }
    if let Ok(Some(v)) = ratelimit(limits)
        && let Ok(v) = HeaderValue::try_from(v)
    {
        out.push((RATELIMIT, v));
    }
    out
}

/// The caller-facing error of a Cedar denial: its class, never the policy ids.
fn denial_error(reasons: &[String]) -> GatewayError {
    let rule = |name: &str| {
        reasons
            .iter()
            .any(|r| r.rsplit_once('/').is_some_and(|(_, last)| last == name))
    };
    let has = |part: &str| reasons.iter().any(|r| r.contains(&format!("/{part}")));
    if rule("scope") {
        return GatewayError::new(
            ErrorCode::ScopeDenied,
            "the credential lacks a scope the terms require for this operation",
        );
    }
    if rule("subscription") {
        return GatewayError::new(
            ErrorCode::SubscriptionInactive,
            "the subscription is not active",
        );
    }
    let detail = if rule("window") {
        "the terms do not allow calls at this time of day or week"
    } else if rule("blackout") {
        "the terms do not allow calls on this date (blackout)"
    } else if rule("region") {
        "the terms do not allow calls from this client's region"
    } else if rule("purpose") {
        "the declared purpose (Tollgate-Purpose) is missing or not permitted by the terms"
    } else if has("consent") {
        "this operation returns personal data that needs consent (Tollgate-Consent)"
    } else if reasons.iter().any(|r| r == NOT_GRANTED) {
        "the terms do not grant this operation"
    } else {
        "the marketplace's policy does not allow this call"
    };
    GatewayError::new(ErrorCode::AccessDenied, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_name_their_class_not_their_policy() {
        let check = |reasons: &[&str], code: ErrorCode, needle: &str| {
            let reasons: Vec<String> = reasons.iter().map(|s| (*s).to_owned()).collect();
            let e = denial_error(&reasons);
            assert_eq!(e.code(), code, "{reasons:?}");
            assert!(e.detail().contains(needle), "{}", e.detail());
            for r in &reasons {
                assert!(!e.detail().contains(r.as_str()), "leaks {r}");
            }
        };
        check(&["s@abc/scope"], ErrorCode::ScopeDenied, "scope");
        check(&["s@abc/window"], ErrorCode::AccessDenied, "time");
        check(&["s@abc/blackout"], ErrorCode::AccessDenied, "blackout");
        check(&["s@abc/region"], ErrorCode::AccessDenied, "region");
        check(&["s@abc/purpose"], ErrorCode::AccessDenied, "purpose");
        check(
            &["s@abc/consent/health"],
            ErrorCode::AccessDenied,
            "consent",
        );
        check(&[NOT_GRANTED], ErrorCode::AccessDenied, "grant");
        check(
            &["operator-embargo"],
            ErrorCode::AccessDenied,
            "marketplace",
        );
        check(
            &["s@abc/subscription"],
            ErrorCode::SubscriptionInactive,
            "active",
        );
    }
}
