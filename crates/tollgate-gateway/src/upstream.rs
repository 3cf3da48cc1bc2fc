//! The upstream side of the proxy: a circuit breaker per upstream, failover to an API's
//! other upstreams, retries of replayable requests, and active health checks.
//!
//! A breaker belongs to an upstream *target* (scheme + `host:port`), not to an API: every
//! API whose upstreams live on that server shares what is known about it, and the state
//! survives snapshot swaps. Breakers sit in a copy-on-write map behind an `ArcSwap`, so a
//! request finds its breaker with one atomic load and a hash lookup, and then touches only
//! the breaker's atomics; the map is copied only when a new target appears or the health
//! checks prune targets that left the snapshot.
//!
//! States: *closed* (requests flow; consecutive transport failures are counted), *open*
//! (requests are answered 503 `upstream-circuit-open` at once, or go to another upstream
//! of the API), and *half-open* once the cool-down has passed (one trial request is let
//! through: success closes the breaker, failure opens it for another cool-down). A healthy
//! health-check probe closes an open breaker; consecutive failed probes open it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderValue, RETRY_AFTER, USER_AGENT};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::task::JoinSet;
use tollgate_core::ErrorCode;

use crate::body::{LimitedBody, RequestBodyError};
use crate::problem::{GatewayCode, GatewayError};
use crate::proxy::rescue;
use crate::snapshot::{Snapshot, SnapshotHandle, Upstream};

/// Circuit breaking per upstream target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed requests (connect errors, timeouts, broken exchanges) that open
    /// an upstream's breaker. `0` never opens it on request failures (health checks still
    /// can).
    pub failure_threshold: u32,
    /// How long an open breaker refuses requests before it lets one trial request through.
    pub cooldown: Duration,
    /// Whether upstream answers with a 5xx status count as failures. Off by default: a 5xx
    /// is the API's own answer, and the upstream is evidently reachable.
    pub trip_on_5xx: bool,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cooldown: Duration::from_secs(5),
            trip_on_5xx: false,
        }
    }
}

/// Active health checks: while the gateway serves, every distinct upstream target of the
/// current snapshot is probed with `GET <path>` every `interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Time between two rounds of probes.
    pub interval: Duration,
    /// Path (and optional query) probed on each target, e.g. `/` or `/healthz`.
    pub path: String,
    /// Longest wait for a probe's response head (connecting included).
    pub timeout: Duration,
    /// Consecutive failed probes (no answer, or a 5xx status) that open the target's
    /// breaker. `0` never opens it from probes. Any probe answered below 500 closes it.
    pub unhealthy_threshold: u32,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            path: "/".into(),
            timeout: Duration::from_secs(2),
            unhealthy_threshold: 3,
        }
    }
}

// ---- the breaker: a pure state machine over atomics, time passed in ----------------------

/// "No instant": the breaker is closed, or no trial request is in flight.
const NEVER: u64 = u64::MAX;

/// The numbers a breaker decides with; time in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    failure_threshold: u32,
    probe_threshold: u32,
    cooldown: u64,
}

impl Policy {
    pub(crate) fn new(breaker: &BreakerConfig, health: Option<&HealthCheckConfig>) -> Self {
        Self {
            failure_threshold: breaker.failure_threshold,
            probe_threshold: health.map_or(0, |h| h.unhealthy_threshold),
            cooldown: nanos(breaker.cooldown),
        }
    }
}

/// Circuit breaker of one upstream target. Every method takes the current time (`now`,
/// nanoseconds on the registry's clock) instead of reading a clock, so the state machine
/// is tested at any instant.
#[derive(Debug)]
pub(crate) struct Breaker {
    /// Whose breaker this is, for the logs.
    target: Target,
    /// Consecutive failed requests while closed.
    failures: AtomicU32,
    /// Consecutive failed health probes while closed.
    probe_failures: AtomicU32,
    /// When the breaker last opened; `NEVER` while closed.
    opened_at: AtomicU64,
    /// When the current half-open trial request was let through; `NEVER` if none.
    trial_at: AtomicU64,
}

/// Whether a request may go to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Closed: go ahead.
    Closed,
    /// Half-open: this request is the one trial.
    Trial,
    /// Open: the breaker may let a request through in `wait` nanoseconds.
    Rejected { wait: u64 },
}

/// A state change, for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    None,
    Opened,
    /// A request failed while open (usually the trial): the cool-down starts again.
    Reopened,
    Closed,
}

impl Breaker {
    pub(crate) fn new(target: Target) -> Self {
        Self {
            target,
            failures: AtomicU32::new(0),
            probe_failures: AtomicU32::new(0),
            opened_at: AtomicU64::new(NEVER),
            trial_at: AtomicU64::new(NEVER),
        }
    }

    /// Asks to send a request at `now`.
    pub(crate) fn admit(&self, now: u64, policy: &Policy) -> Admission {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == NEVER {
            return Admission::Closed;
        }
        let half_open_at = opened.saturating_add(policy.cooldown);
        if now < half_open_at {
            return Admission::Rejected {
                wait: half_open_at - now,
            };
        }
        // A trial that never reported (its request was cancelled) expires after another
        // cool-down, so a lost trial cannot keep the breaker shut.
        let trial = self.trial_at.load(Ordering::Acquire);
        if trial != NEVER {
            let expires = trial.saturating_add(policy.cooldown);
            if now < expires {
                return Admission::Rejected {
                    wait: expires - now,
                };
            }
        }
        match self
            .trial_at
            .compare_exchange(trial, now, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admission::Trial,
            Err(_) => Admission::Rejected {
                wait: policy.cooldown,
            },
        }
    }

    /// The upstream answered.
    pub(crate) fn on_success(&self) -> Change {
        // Loads first: the common case (closed, no failures) writes nothing, so the
        // cache line stays shared between cores.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.opened_at.load(Ordering::Acquire) == NEVER {
            return Change::None;
        }
        self.close()
    }

    /// The exchange failed at `now` in a way that counts against the upstream.
    pub(crate) fn on_failure(&self, now: u64, policy: &Policy) -> Change {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened != NEVER {
            // The cool-down starts again, unless the breaker closed meanwhile.
            if self
                .opened_at
                .compare_exchange(opened, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.trial_at.store(NEVER, Ordering::Release);
                return Change::Reopened;
            }
            return Change::None;
        }
        if policy.failure_threshold == 0 {
            return Change::None;
        }
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures >= policy.failure_threshold {
            self.open(now)
        } else {
            Change::None
        }
    }

    /// A trial request ended without saying anything about the upstream (the consumer's
    /// body failed): let the next request be the trial.
    pub(crate) fn release_trial(&self) {
        self.trial_at.store(NEVER, Ordering::Release);
    }

    /// A health probe's result at `now`.
    pub(crate) fn on_probe(&self, healthy: bool, now: u64, policy: &Policy) -> Change {
        if healthy {
            if self.probe_failures.load(Ordering::Relaxed) != 0 {
                self.probe_failures.store(0, Ordering::Relaxed);
            }
            return self.on_success();
        }
        if policy.probe_threshold == 0 || self.opened_at.load(Ordering::Acquire) != NEVER {
            return Change::None;
        }
        let failures = self
            .probe_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if failures >= policy.probe_threshold {
            self.open(now)
        } else {
            Change::None
        }
    }

    fn open(&self, now: u64) -> Change {
        self.trial_at.store(NEVER, Ordering::Release);
        match self
            .opened_at
            .compare_exchange(NEVER, now, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Change::Opened,
            Err(_) => Change::None,
        }
    }

    fn close(&self) -> Change {
        if self.opened_at.swap(NEVER, Ordering::AcqRel) == NEVER {
            return Change::None;
        }
        self.trial_at.store(NEVER, Ordering::Release);
        self.failures.store(0, Ordering::Relaxed);
        self.probe_failures.store(0, Ordering::Relaxed);
        Change::Closed
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
}

// ---- the registry of breakers by target -------------------------------------------------

/// An upstream server: scheme + authority, e.g. `http://10.0.0.7:8080`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    scheme: Scheme,
    authority: Authority,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

/// One entry per authority; the scheme is checked in the (almost always one-element)
/// list, so the lookup hashes the request's `Authority` without building a key.
type BreakerMap = HashMap<Authority, Vec<(Scheme, Arc<Breaker>)>>;

/// The breakers of every upstream target seen, and the clock they run on.
pub(crate) struct Breakers {
    map: ArcSwap<BreakerMap>,
    epoch: Instant,
}

impl Breakers {
    fn new() -> Self {
        Self {
            map: ArcSwap::from_pointee(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds since the registry was made.
    fn now(&self) -> u64 {
        nanos(self.epoch.elapsed())
    }

    /// The breaker of `scheme://authority`, made on first use.
    fn get(&self, scheme: &Scheme, authority: &Authority) -> Arc<Breaker> {
        if let Some(found) = find(&self.map.load(), scheme, authority) {
            return found;
        }
        self.map.rcu(|map| {
            let mut map = BreakerMap::clone(map);
            let entry = map.entry(authority.clone()).or_default();
            if !entry.iter().any(|(s, _)| s == scheme) {
                let target = Target {
                    scheme: scheme.clone(),
                    authority: authority.clone(),
                };
                entry.push((scheme.clone(), Arc::new(Breaker::new(target))));
            }
            map
        });
        // Another thread may have inserted first: the map holds the one to share. (Only a
        // concurrent prune can leave it out; a breaker of its own is harmless then.)
        find(&self.map.load(), scheme, authority).unwrap_or_else(|| {
            Arc::new(Breaker::new(Target {
                scheme: scheme.clone(),
                authority: authority.clone(),
            }))
        })
    }

    /// Forgets the breakers of targets outside `keep`.
    fn retain(&self, keep: &HashSet<Target>) {
        let stale = |map: &BreakerMap| {
            map.iter().any(|(authority, list)| {
                list.iter().any(|(scheme, _)| {
                    !keep.contains(&Target {
                        scheme: scheme.clone(),
                        authority: authority.clone(),
                    })
                })
            })
        };
        if !stale(&self.map.load()) {
            return;
        }
        self.map.rcu(|map| {
            let mut map = BreakerMap::clone(map);
            map.retain(|authority, list| {
                list.retain(|(scheme, _)| {
                    keep.contains(&Target {
                        scheme: scheme.clone(),
                        authority: authority.clone(),
                    })
                });
                !list.is_empty()
            });
            map
        });
    }
}

fn find(map: &BreakerMap, scheme: &Scheme, authority: &Authority) -> Option<Arc<Breaker>> {
    map.get(authority)?
        .iter()
        .find(|(s, _)| s == scheme)
        .map(|(_, b)| b.clone())
}

// ---- the request body sent upstream ------------------------------------------------------

/// Body of a request sent upstream: the consumer's, streamed, or none (a replayed
/// request, a health probe).
#[derive(Debug)]
pub(crate) enum UpstreamBody {
    Streamed(LimitedBody),
    Empty,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::Streamed(body) => Pin::new(body).poll_frame(cx),
            UpstreamBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Streamed(body) => body.is_end_stream(),
            UpstreamBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Streamed(body) => body.size_hint(),
            UpstreamBody::Empty => SizeHint::with_exact(0),
        }
    }
}

/// The pooled HTTP/1.1 client to the upstreams.
pub(crate) type UpstreamClient = Client<HttpConnector, UpstreamBody>;

// ---- forwarding: breaker, failover, retry -------------------------------------------------

/// Who a failed exchange blames, as [`rescue`] types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The consumer's request body failed: says nothing about the upstream.
    Consumer,
    /// No connection could be made: the request surely did not reach the upstream.
    Connect,
    /// The upstream broke the exchange, possibly after it received the request.
    Upstream,
}

/// A request the gateway could not get answered, with the client error behind it.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: GatewayError,
    pub(crate) cause: Option<hyper_util::client::legacy::Error>,
}

impl Failed {
    fn new(error: GatewayError) -> Self {
        Self { error, cause: None }
    }
}

/// The upstream side of the gateway: the client, the breakers and the retry policy.
pub(crate) struct Upstreams {
    client: UpstreamClient,
    breakers: Breakers,
    policy: Policy,
    trip_on_5xx: bool,
    retries: u32,
    /// Spreads the turns of an open upstream over the API's other upstreams.
    spread: AtomicUsize,
}

impl Upstreams {
    pub(crate) fn new(client: UpstreamClient, config: &crate::server::GatewayConfig) -> Self {
        Self {
            client,
            breakers: Breakers::new(),
            policy: Policy::new(&config.breaker, config.health.as_ref()),
            trip_on_5xx: config.breaker.trip_on_5xx,
            retries: config.retries,
            spread: AtomicUsize::new(0),
        }
    }

    /// Sends `request` (already addressed to the upstream `prepare` picked) and returns the
    /// response head. `path` is the consumer's request path: with it the API's other
    /// upstreams are found when the picked one's breaker is open or its connection fails.
    /// `timeout` bounds the whole exchange, retries included.
    pub(crate) async fn forward(
        &self,
        request: Request<LimitedBody>,
        path: &str,
        snapshots: &SnapshotHandle,
        timeout: Duration,
    ) -> Result<Response<Incoming>, Failed> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut request = request.map(UpstreamBody::Streamed);
        let mut breaker = self.breaker_for(request.uri());
        let mut admission = breaker.admit(self.breakers.now(), &self.policy);
        // The API's upstreams, looked up only when needed (rarely): `None` until then.
        let mut failover: Option<Option<Failover>> = None;

        if let Admission::Rejected { wait } = admission {
            let found = failover
                .get_or_insert_with(|| Failover::find(&snapshots.load(), path, request.uri()));
            let next = match found {
                Some(found) => self.next_admitted(found, false),
                None => Err(u64::MAX),
            };
            match next {
                Ok((uri, next, next_admission)) => {
                    *request.uri_mut() = uri;
                    (breaker, admission) = (next, next_admission);
                }
                Err(other_wait) => return Err(Failed::new(circuit_open(wait.min(other_wait)))),
            }
        }

        // Only a request without a body can be sent again, and only if sending it twice
        // means the same as once.
        let mut replay = (self.retries > 0
            && is_idempotent(request.method())
            && request.body().size_hint().exact() == Some(0))
        .then(|| Replay::of(&request));
        let mut retries_left = self.retries;

        loop {
            let result = tokio::time::timeout_at(deadline, self.client.request(request)).await;
            let error = match result {
                Ok(Ok(response)) => {
                    let change = if self.trip_on_5xx && response.status().is_server_error() {
                        breaker.on_failure(self.breakers.now(), &self.policy)
                    } else {
                        breaker.on_success()
                    };
                    log_change(&breaker, change, "request", &self.policy);
                    return Ok(response);
                }
                Ok(Err(error)) => error,
                Err(_elapsed) => {
                    let change = breaker.on_failure(self.breakers.now(), &self.policy);
                    log_change(&breaker, change, "request", &self.policy);
                    let detail = format!(
                        "the upstream did not answer within {} ms",
                        timeout.as_millis()
                    );
                    let error = GatewayError::new(GatewayCode::UpstreamTimeout, detail);
                    return Err(Failed::new(error));
                }
            };

            let (gateway_error, fault) = rescue(&error);
            if fault == Fault::Consumer {
                if admission == Admission::Trial {
                    breaker.release_trial();
                }
            } else {
                let change = breaker.on_failure(self.breakers.now(), &self.policy);
                log_change(&breaker, change, "request", &self.policy);
            }
            let failed = Failed {
                error: gateway_error,
                cause: Some(error),
            };

            // Retry where the request surely never arrived: on the API's next upstream
            // whose breaker admits it, else on the same one.
            let Some(template) = replay
                .as_mut()
                .filter(|_| fault == Fault::Connect && retries_left > 0)
            else {
                return Err(failed);
            };
            let found = failover
                .get_or_insert_with(|| Failover::find(&snapshots.load(), path, template.uri()));
            let next = match found {
                Some(found) => self.next_admitted(found, true).ok(),
                // The API is not found (the snapshot changed meanwhile): the same upstream.
                None => {
                    let uri = template.uri().clone();
                    let next = self.breaker_for(&uri);
                    match next.admit(self.breakers.now(), &self.policy) {
                        Admission::Rejected { .. } => None,
                        admission => Some((uri, next, admission)),
                    }
                }
            };
            let Some((uri, next, next_admission)) = next else {
                return Err(failed);
            };
            tracing::debug!(
                from = %template.uri(), to = %uri, cause = ?failed.cause,
                "retrying an idempotent request that did not reach its upstream"
            );
            retries_left -= 1;
            request = template.request(uri);
            (breaker, admission) = (next, next_admission);
        }
    }

    fn breaker_for(&self, uri: &Uri) -> Arc<Breaker> {
        match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => self.breakers.get(scheme, authority),
            // `prepare` always sends absolute URIs; an orphan breaker is harmless anyway.
            _ => Arc::new(Breaker::new(Target {
                scheme: Scheme::HTTP,
                authority: Authority::from_static("unknown"),
            })),
        }
    }

    /// Another upstream of `failover` whose breaker admits a request, and makes it the
    /// current one. For a retry (`include_current`) the ones after the current one are
    /// tried in the API's order, then the current one. Otherwise (the current one is open)
    /// the search starts at a rotating offset, so the open upstream's turns are spread
    /// evenly over the others instead of all landing on its successor. `Err` holds the
    /// shortest wait until one of them may admit again.
    fn next_admitted(
        &self,
        failover: &mut Failover,
        include_current: bool,
    ) -> Result<(Uri, Arc<Breaker>, Admission), u64> {
        let n = failover.uris.len();
        let offset = match include_current {
            true => 0,
            false => self.spread.fetch_add(1, Ordering::Relaxed),
        };
        let now = self.breakers.now();
        let mut wait = u64::MAX;
        for index in candidates(n, failover.current, offset, include_current) {
            let uri = &failover.uris[index];
            let breaker = self.breaker_for(uri);
            match breaker.admit(now, &self.policy) {
                Admission::Rejected { wait: w } => wait = wait.min(w),
                admission => {
                    failover.current = index;
                    return Ok((uri.clone(), breaker, admission));
                }
            }
        }
        Err(wait)
    }

    /// Probes every distinct upstream target of the current snapshot every
    /// `config.interval`, forever: the caller stops it by dropping (aborting) the task.
    pub(crate) async fn run_health_checks(
        &self,
        snapshots: SnapshotHandle,
        config: HealthCheckConfig,
        path: PathAndQuery,
    ) {
        /// Probes in flight at once, so a snapshot with thousands of upstreams does not
        /// open thousands of connections in the same instant.
        const CONCURRENCY: usize = 32;
        let start = tokio::time::Instant::now() + config.interval;
        let mut ticks = tokio::time::interval_at(start, config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let targets = upstream_targets(&snapshots.load());
            self.breakers.retain(&targets);
            let mut probes = JoinSet::new();
            for target in targets {
                if probes.len() >= CONCURRENCY {
                    probes.join_next().await;
                }
                let probe = Probe {
                    client: self.client.clone(),
                    breaker: self.breakers.get(&target.scheme, &target.authority),
                    uri: probe_uri(&target, &path),
                    timeout: config.timeout,
                    policy: self.policy,
                    epoch: self.breakers.epoch,
                };
                probes.spawn(probe.run());
            }
            while probes.join_next().await.is_some() {}
        }
    }
}

fn log_change(breaker: &Breaker, change: Change, reason: &'static str, policy: &Policy) {
    let upstream = tracing::field::display(&breaker.target);
    let cooldown_ms = policy.cooldown / 1_000_000;
    match change {
        Change::None => {}
        Change::Opened => tracing::warn!(
            upstream,
            reason,
            cooldown_ms,
            "upstream circuit opened: requests to it are refused until it recovers"
        ),
        Change::Reopened => tracing::debug!(upstream, reason, "upstream circuit re-opened"),
        Change::Closed => tracing::info!(upstream, reason, "upstream circuit closed"),
    }
}

/// The indices of `n` upstreams to try instead of `current`: the others, starting
/// `offset` places after `current` and wrapping around, then `current` itself when
/// `include_current`.
fn candidates(
    n: usize,
    current: usize,
    offset: usize,
    include_current: bool,
) -> impl Iterator<Item = usize> {
    let others = n.saturating_sub(1);
    (0..others)
        .map(move |step| (current + 1 + (offset % others + step) % others) % n)
        .chain(include_current.then_some(current))
}

/// One health probe of one target.
struct Probe {
    client: UpstreamClient,
    breaker: Arc<Breaker>,
    uri: Option<Uri>,
    timeout: Duration,
    policy: Policy,
    epoch: Instant,
}

impl Probe {
    async fn run(self) {
        let Some(uri) = self.uri else { return };
        let mut request = Request::new(UpstreamBody::Empty);
        *request.uri_mut() = uri;
        request.headers_mut().insert(
            USER_AGENT,
            HeaderValue::from_static("tollgate-gateway-health-check"),
        );
        let status = match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(e)) => Err(format!("{e:?}")),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        // A 5xx says the server is up but failing; anything else says it serves.
        let healthy = matches!(status, Ok(s) if !s.is_server_error());
        if !healthy {
            tracing::debug!(
                upstream = %self.breaker.target, status = ?status,
                "upstream health probe failed"
            );
        }
        let change = self
            .breaker
            .on_probe(healthy, nanos(self.epoch.elapsed()), &self.policy);
        log_change(&self.breaker, change, "health check", &self.policy);
    }
}

fn probe_uri(target: &Target, path: &PathAndQuery) -> Option<Uri> {
    Uri::builder()
        .scheme(target.scheme.clone())
        .authority(target.authority.clone())
        .path_and_query(path.clone())
        .build()
        .ok()
}

/// Checks a health-check configuration and returns its path: the interval must not be
/// zero, and the path must be a `/`-rooted URI path (with an optional query).
pub(crate) fn check_health_config(config: &HealthCheckConfig) -> Result<PathAndQuery, String> {
    if config.interval.is_zero() {
        return Err("the health check interval must be above zero".into());
    }
    match config.path.parse::<PathAndQuery>() {
        Ok(path) if config.path.starts_with('/') => Ok(path),
        _ => Err(format!(
            "health check path {:?} is not a path starting with '/'",
            config.path
        )),
    }
}

/// Every distinct upstream target of `snapshot`.
pub(crate) fn upstream_targets(snapshot: &Snapshot) -> HashSet<Target> {
    snapshot
        .compiled_apis()
        .iter()
        .flat_map(|api| api.upstreams.iter())
        .map(|u| Target {
            scheme: u.scheme.clone(),
            authority: u.authority.clone(),
        })
        .collect()
}

/// The 503 answered when no upstream of the API admits a request.
fn circuit_open(wait_nanos: u64) -> GatewayError {
    let detail = "the API's upstreams failed repeatedly; the gateway is not sending them requests for a short cool-down";
    let error = GatewayError::new(ErrorCode::CircuitOpen, detail);
    if wait_nanos == u64::MAX {
        return error;
    }
    let seconds = wait_nanos.div_ceil(1_000_000_000).max(1);
    error.with_header(RETRY_AFTER, HeaderValue::from(seconds))
}

/// Methods whose effect is the same whether a request is sent once or twice (RFC 9110
/// §9.2.2). POST and PATCH are never retried.
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// What it takes to send a bodiless request again.
struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
}

impl Replay {
    fn of(request: &Request<UpstreamBody>) -> Self {
        Self {
            method: request.method().clone(),
            uri: request.uri().clone(),
            version: request.version(),
            headers: request.headers().clone(),
        }
    }

    fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request again, to `uri`.
    fn request(&mut self, uri: Uri) -> Request<UpstreamBody> {
        let mut request = Request::new(UpstreamBody::Empty);
        *request.method_mut() = self.method.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        self.uri = uri.clone();
        *request.uri_mut() = uri;
        request
    }
}

// ---- failover: the API's other upstreams ---------------------------------------------------

/// The upstream URIs of the API a request was routed to, in the API's order, and which
/// of them the request is addressed to now.
#[derive(Debug, PartialEq, Eq)]
struct Failover {
    uris: Vec<Uri>,
    current: usize,
}

impl Failover {
    /// Finds the API whose upstream `sent_to` is, for a consumer request to `path`: the
    /// API's base path prefixes `path`, and one of its upstreams is `sent_to`'s target
    /// with `sent_to`'s path being that upstream's prefix + the rest of `path`.
    ///
    /// `prepare` picks the first upstream and does not hand on the API, so this scans the
    /// snapshot; it runs only when the picked upstream is refused or unreachable. If
    /// several APIs fit (one base path on several hosts sharing an upstream) and their
    /// upstream lists differ, there is no telling which one routed the request: `None`,
    /// which never sends a request to another API's upstream.
    fn find(snapshot: &Snapshot, path: &str, sent_to: &Uri) -> Option<Self> {
        let mut found: Option<(&[Upstream], &str, usize)> = None;
        for api in snapshot.compiled_apis() {
            let Some(remainder) = path.strip_prefix(api.route.base_path.as_str()) else {
                continue;
            };
            if !(remainder.is_empty() || remainder.starts_with('/')) {
                continue;
            }
            let Some(index) = api
                .upstreams
                .iter()
                .position(|u| addresses(u, remainder, sent_to))
            else {
                continue;
            };
            match found {
                None => found = Some((&api.upstreams, remainder, index)),
                Some((upstreams, ..)) if same_upstreams(upstreams, &api.upstreams) => {}
                Some(_) => return None,
            }
        }
        let (upstreams, remainder, current) = found?;
        let uris = upstreams
            .iter()
            .map(|u| crate::proxy::upstream_uri(u, remainder, sent_to.query()))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { uris, current })
    }
}

/// Whether `uri` is `upstream` + `remainder`, as `proxy::upstream_uri` builds it.
fn addresses(upstream: &Upstream, remainder: &str, uri: &Uri) -> bool {
    if uri.scheme() != Some(&upstream.scheme) || uri.authority() != Some(&upstream.authority) {
        return false;
    }
    let path = uri.path();
    if upstream.path_prefix.is_empty() && remainder.is_empty() {
        return path == "/";
    }
    path.strip_prefix(&*upstream.path_prefix) == Some(remainder)
}

fn same_upstreams(a: &[Upstream], b: &[Upstream]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.scheme == y.scheme && x.authority == y.authority && x.path_prefix == y.path_prefix
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_core::model::ApiStatus;
    use tollgate_core::{ApiId, OrgId};

    use crate::snapshot::RouteApi;

    const S: u64 = 1_000_000_000;

    fn policy() -> Policy {
        Policy {
            failure_threshold: 3,
            probe_threshold: 2,
            cooldown: 5 * S,
        }
    }

    /// One step of a breaker's life and what it must answer.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        Admit(u64, Admission),
        Fail(u64, Change),
        Succeed(Change),
        Probe(bool, u64, Change),
        ReleaseTrial,
    }
    use Admission::{Closed as Pass, Rejected, Trial};
    use Step::*;

    fn check(policy: Policy, steps: &[Step]) {
        let breaker = Breaker::new(Target {
            scheme: Scheme::HTTP,
            authority: Authority::from_static("up.example:80"),
        });
        for (i, step) in steps.iter().enumerate() {
            match *step {
                Admit(now, expected) => {
                    assert_eq!(breaker.admit(now, &policy), expected, "step {i}: {step:?}");
                }
                Fail(now, expected) => {
                    assert_eq!(
                        breaker.on_failure(now, &policy),
                        expected,
                        "step {i}: {step:?}"
                    );
                }
                Succeed(expected) => {
                    assert_eq!(breaker.on_success(), expected, "step {i}: {step:?}");
                }
                Probe(healthy, now, expected) => assert_eq!(
                    breaker.on_probe(healthy, now, &policy),
                    expected,
                    "step {i}: {step:?}"
                ),
                ReleaseTrial => breaker.release_trial(),
            }
        }
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        check(
            policy(),
            &[
                Admit(0, Pass),
                Fail(0, Change::None),
                Fail(1, Change::None),
                // A success in between starts the count again.
                Succeed(Change::None),
                Fail(2, Change::None),
                Fail(3, Change::None),
                Admit(4, Pass),
                Fail(10, Change::Opened),
                Admit(10, Rejected { wait: 5 * S }),
                Admit(11 + S, Rejected { wait: 4 * S - 1 }),
            ],
        );
    }

    #[test]
    fn half_open_lets_one_trial_through() {
        let open = [
            Fail(0, Change::None),
            Fail(0, Change::None),
            Fail(0, Change::Opened),
        ];
        // The trial succeeds: closed, and the failure count starts from zero.
        let mut steps = open.to_vec();
        steps.extend([
            Admit(5 * S, Trial),
            Admit(5 * S + 1, Rejected { wait: 5 * S - 1 }),
            Succeed(Change::Closed),
            Admit(5 * S + 2, Pass),
            Fail(6 * S, Change::None),
            Fail(6 * S, Change::None),
            Admit(6 * S, Pass),
        ]);
        check(policy(), &steps);

        // The trial fails: open for another cool-down from the failure.
        let mut steps = open.to_vec();
        steps.extend([
            Admit(7 * S, Trial),
            Fail(8 * S, Change::Reopened),
            Admit(12 * S, Rejected { wait: S }),
            Admit(13 * S, Trial),
        ]);
        check(policy(), &steps);

        // A trial that never reports expires after a cool-down; a released one at once.
        let mut steps = open.to_vec();
        steps.extend([
            Admit(5 * S, Trial),
            Admit(9 * S, Rejected { wait: S }),
            Admit(10 * S, Trial),
            ReleaseTrial,
            Admit(10 * S, Trial),
        ]);
        check(policy(), &steps);
    }

    #[test]
    fn health_probes_open_and_close() {
        check(
            policy(),
            &[
                Probe(false, 0, Change::None),
                Probe(true, 1, Change::None),
                Probe(false, 2, Change::None),
                Probe(false, 3, Change::Opened),
                Admit(4, Rejected { wait: 5 * S - 1 }),
                // Failed probes while open change nothing; a healthy one closes at once,
                // long before the cool-down ends.
                Probe(false, 5, Change::None),
                Admit(6, Rejected { wait: 5 * S - 3 }),
                Probe(true, 7, Change::Closed),
                Admit(8, Pass),
                // Request failures and probe failures are counted apart.
                Fail(9, Change::None),
                Probe(false, 10, Change::None),
                Fail(11, Change::None),
                Probe(false, 12, Change::Opened),
            ],
        );
        // A breaker opened by requests is closed by a healthy probe too.
        check(
            policy(),
            &[
                Fail(0, Change::None),
                Fail(0, Change::None),
                Fail(0, Change::Opened),
                Probe(true, 1, Change::Closed),
                Admit(1, Pass),
            ],
        );
    }

    #[test]
    fn zero_thresholds_never_open() {
        let never = Policy {
            failure_threshold: 0,
            probe_threshold: 0,
            cooldown: S,
        };
        let mut steps = vec![];
        for now in 0..10 {
            steps.extend([
                Fail(now, Change::None),
                Probe(false, now, Change::None),
                Admit(now, Pass),
            ]);
        }
        check(never, &steps);
    }

    #[test]
    fn registry_shares_one_breaker_per_target_and_prunes() {
        let breakers = Breakers::new();
        let a: Authority = "Up.example:80".parse().unwrap();
        let a_lower: Authority = "up.example:80".parse().unwrap();
        let first = breakers.get(&Scheme::HTTP, &a);
        assert!(Arc::ptr_eq(&first, &breakers.get(&Scheme::HTTP, &a_lower)));
        let https = breakers.get(&Scheme::HTTPS, &a);
        assert!(!Arc::ptr_eq(&first, &https));

        let keep = HashSet::from([Target {
            scheme: Scheme::HTTP,
            authority: a.clone(),
        }]);
        breakers.retain(&keep);
        assert!(Arc::ptr_eq(&first, &breakers.get(&Scheme::HTTP, &a)));
        assert!(!Arc::ptr_eq(&https, &breakers.get(&Scheme::HTTPS, &a)));
        breakers.retain(&HashSet::new());
        assert!(breakers.map.load().is_empty());
    }

    #[test]
    fn candidate_order() {
        let check = |n, current, offset, include_current, expected: &[usize]| {
            let got: Vec<usize> = candidates(n, current, offset, include_current).collect();
            assert_eq!(got, expected, "n={n} current={current} offset={offset}");
        };
        check(1, 0, 0, false, &[]);
        check(1, 0, 5, true, &[0]);
        check(2, 0, 0, true, &[1, 0]);
        check(2, 1, 7, false, &[0]);
        check(4, 1, 0, true, &[2, 3, 0, 1]);
        check(4, 1, 0, false, &[2, 3, 0]);
        check(4, 1, 1, false, &[3, 0, 2]);
        check(4, 1, 2, false, &[0, 2, 3]);
        check(4, 1, 3, false, &[2, 3, 0]);
    }

    #[test]
    fn idempotent_methods() {
        for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
            assert!(is_idempotent(&m.parse().unwrap()), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "PURGE"] {
            assert!(!is_idempotent(&m.parse().unwrap()), "{m}");
        }
    }

    #[test]
    fn circuit_open_says_when_to_retry() {
        let check = |wait: u64, expected: Option<&str>| {
            let error = circuit_open(wait);
            assert_eq!(error.code(), ErrorCode::CircuitOpen);
            let got = error
                .headers()
                .get(RETRY_AFTER)
                .map(|v| v.to_str().unwrap());
            assert_eq!(got, expected, "{wait}");
        };
        check(1, Some("1"));
        check(S, Some("1"));
        check(S + 1, Some("2"));
        check(u64::MAX, None);
    }

    fn route_api(base: &str, hosts: &[&str], upstreams: &[&str]) -> RouteApi {
        RouteApi {
            api_id: ApiId::new(),
            org_id: OrgId::new(),
            base_path: base.into(),
            hosts: hosts.iter().map(|h| (*h).into()).collect(),
            upstreams: upstreams.iter().map(|u| (*u).into()).collect(),
            sandbox_upstreams: vec![],
            status: ApiStatus::Published,
            sunset: None,
            deprecated_at: None,
            operations: vec![],
        }
    }

    #[test]
    fn failover_finds_the_apis_upstreams() {
        let snapshot = Snapshot::build(
            1,
            vec![
                route_api(
                    "/a",
                    &[],
                    &["http://one:1/svc/", "http://two:2", "http://three:3/x"],
                ),
                route_api("/b", &["h1.example"], &["http://one:1", "http://four:4"]),
                route_api("/b", &["h2.example"], &["http://one:1", "http://five:5"]),
                route_api("/c", &["h1.example"], &["http://six:6", "http://seven:7"]),
                route_api("/c", &["h2.example"], &["http://six:6", "http://seven:7"]),
            ],
        )
        .unwrap();
        let check = |path: &str, sent_to: &str, expected: Option<(&[&str], usize)>| {
            let got = Failover::find(&snapshot, path, &sent_to.parse().unwrap());
            let got = got.map(|f| {
                let uris: Vec<String> = f.uris.iter().map(ToString::to_string).collect();
                (uris, f.current)
            });
            let expected = expected.map(|(uris, current)| {
                (
                    uris.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>(),
                    current,
                )
            });
            assert_eq!(got, expected, "{path} → {sent_to}");
        };
        check(
            "/a/items/1",
            "http://two:2/items/1?q=1",
            Some((
                &[
                    "http://one:1/svc/items/1?q=1",
                    "http://two:2/items/1?q=1",
                    "http://three:3/x/items/1?q=1",
                ],
                1,
            )),
        );
        check(
            "/a",
            "http://one:1/svc",
            Some((
                &["http://one:1/svc", "http://two:2/", "http://three:3/x"],
                0,
            )),
        );
        // The path does not fit the upstream's prefix, or no API has the upstream.
        check("/a/items", "http://one:1/items", None);
        check("/a/items", "http://nine:9/items", None);
        check("/ab/items", "http://two:2/items", None);
        // One base path on two hosts sharing an upstream: ambiguous unless the lists agree.
        check("/b/x", "http://one:1/x", None);
        check(
            "/c/x",
            "http://seven:7/x",
            Some((&["http://six:6/x", "http://seven:7/x"], 1)),
        );
    }

    #[test]
    fn targets_are_distinct() {
        let snapshot = Snapshot::build(
            1,
            vec![
                route_api("/a", &[], &["http://one:1/svc/", "http://two:2"]),
                route_api("/b", &[], &["http://ONE:1/other", "http://three:3"]),
            ],
        )
        .unwrap();
        let mut names: Vec<String> = upstream_targets(&snapshot)
            .iter()
            .map(ToString::to_string)
            .collect();
        names.sort();
        assert_eq!(names, ["http://one:1", "http://three:3", "http://two:2"]);
    }

    #[test]
    fn health_configs() {
        let check = |path: &str, interval: u64, ok: bool| {
            let config = HealthCheckConfig {
                path: path.into(),
                interval: Duration::from_millis(interval),
                ..HealthCheckConfig::default()
            };
            assert_eq!(
                check_health_config(&config).is_ok(),
                ok,
                "{path} {interval}"
            );
        };
        check("/", 1, true);
        check("/healthz?full=1", 10_000, true);
        check("/", 0, false);
        check("healthz", 1, false);
        check("/a b", 1, false);
        check("", 1, false);
    }
}
