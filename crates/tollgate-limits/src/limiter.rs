//! The [`Limiter`] trait the gateway calls, and [`LocalLimiter`], its in-process
//! implementation. Cluster-wide counters (Redis) implement the same trait later.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::LimitsError;
use crate::gcra::{GcraState, RateDecision, RateSpec};
use crate::map::{LimitKey, ShardedMap};
use crate::quota::{QuotaCell, QuotaDecision, QuotaSpec};

/// Rate limits and quotas by key. Implementations are exact for quotas (N concurrent
/// callers against a quota of L: exactly L pass) and never consume on a refusal.
///
/// Recommended order for one request: every rate limit first (cheap; a refusal is a 429
/// `rate-limited` and touches no quota), then every quota (a refusal is a 429
/// `quota-exceeded`; then [`Limiter::refund_rate`] the rate admissions of this request,
/// and [`Limiter::refund`] any quota of the same request counted before the refusing
/// one). Refund quota too when the gateway itself fails the call before the upstream
/// serves it (see [`QuotaSpec::refund`]).
pub trait Limiter: Send + Sync {
    /// Admits or refuses one request under a rate limit.
    fn rate(&self, key: &LimitKey, spec: &RateSpec, now: Timestamp) -> RateDecision;

    /// The rate limit's state at `now` without consuming (for headers).
    fn rate_peek(&self, key: &LimitKey, spec: &RateSpec, now: Timestamp) -> RateDecision;

    /// Gives back one admission of [`Limiter::rate`].
    fn refund_rate(&self, key: &LimitKey, spec: &RateSpec, now: Timestamp);

    /// Counts one call against a quota if it allows it.
    fn quota(&self, key: &LimitKey, spec: &QuotaSpec, now: Timestamp) -> QuotaDecision;

    /// The quota's state at `now` without counting (for headers).
    fn quota_peek(&self, key: &LimitKey, spec: &QuotaSpec, now: Timestamp) -> QuotaDecision;

    /// Gives back one call counted by [`Limiter::quota`] at `at` (pass the same instant).
    fn refund(&self, key: &LimitKey, spec: &QuotaSpec, at: Timestamp);
}

/// The count of one quota key in one period, as persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    pub key: LimitKey,
    /// Start of the period counted (a whole second, RFC 3339 in serde).
    pub period_start: Timestamp,
    pub used: u64,
}

/// In-process limits: sharded maps of per-key atomics (see the crate docs for the
/// concurrency design). Memory grows with the keys seen; [`LocalLimiter::prune_rates`]
/// and [`LocalLimiter::retain_quotas`] bound it.
pub struct LocalLimiter {
    rates: ShardedMap<GcraState>,
    quotas: ShardedMap<QuotaCell>,
}

impl std::fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("rate_keys", &self.rates.len())
            .field("quota_keys", &self.quotas.len())
            .finish()
    }
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new()
    }
}

/// Unix nanoseconds as the GCRA time base (0 before 1970, saturating after 2554).
#[inline]
pub fn unix_nanos(at: Timestamp) -> u64 {
    let ns = at.as_nanosecond();
    if ns <= 0 {
        0
    } else {
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

impl LocalLimiter {
    /// 64 shards per map: enough that two cores rarely meet on one shard's lock word.
    pub fn new() -> Self {
        Self::with_shards(64)
    }

    /// A limiter with `shards` shards per map (rounded up to a power of two).
    pub fn with_shards(shards: usize) -> Self {
        Self {
            rates: ShardedMap::new(shards),
            quotas: ShardedMap::new(shards),
        }
    }

    /// Every quota key's current count, for periodic persistence. Each entry is read
    /// atomically; entries are not one atomic cut across keys (they need not be: each
    /// key is restored on its own).
    pub fn snapshot_quotas(&self) -> Vec<QuotaUsage> {
        let mut out = Vec::new();
        self.quotas.for_each(|key, cell| {
            if let Some((period_start, used)) = cell.snapshot()
                && used > 0
            {
                out.push(QuotaUsage {
                    key: *key,
                    period_start,
                    used,
                });
            }
        });
        out.sort_by_key(|u| u.key);
        out
    }

    /// Merges persisted counts (see [`QuotaCell::restore`]: never lowers a count). All
    /// entries are checked before any is applied.
    pub fn restore_quotas(&self, usage: &[QuotaUsage]) -> Result<(), LimitsError> {
        if let Some(bad) = usage.iter().find(|u| {
            u.period_start.subsec_nanosecond() != 0
                || u32::try_from(u.period_start.as_second()).is_err()
        }) {
            return Err(LimitsError::BadPeriodStart {
                at: bad.period_start,
            });
        }
        for u in usage {
            self.quotas
                .with(&u.key, |cell| cell.restore(u.period_start, u.used))?;
        }
        Ok(())
    }

    /// Drops rate states that are back at full burst at `now` (they behave exactly like
    /// absent ones). Takes each shard's write lock briefly: call it from a housekeeping
    /// task, not per request.
    pub fn prune_rates(&self, now: Timestamp) {
        let now_ns = unix_nanos(now);
        self.rates.retain(|_, state| !state.is_idle(now_ns));
    }

    /// Keeps the quota keys for which `keep(key, period_start, used)` is true (e.g. drop
    /// keys of ended subscriptions, or counts of periods that ended before `now`).
    pub fn retain_quotas(&self, mut keep: impl FnMut(&LimitKey, Option<(Timestamp, u64)>) -> bool) {
        self.quotas.retain(|key, cell| keep(key, cell.snapshot()));
    }

    /// How many rate and quota keys are held.
    pub fn key_counts(&self) -> (usize, usize) {
        (self.rates.len(), self.quotas.len())
    }
}

impl Limiter for LocalLimiter {
    #[inline]
    fn rate(&self, key: &LimitKey, spec: &RateSpec, now: Timestamp) -> RateDecision {
        let now_ns = unix_nanos(now);
        self.rates.with(key, |state| spec.check(state, now_ns))
    }

    fn rate_peek(&self, key: &LimitKey, spec: &RateSpec, now: Timestamp) -> RateDecision {
        let now_ns = unix_nanos(now);
        self.rates
            .get(key, |state| spec.peek(state, now_ns))
            .unwrap_or_else(|| spec.peek(&GcraState::new(), now_ns))
    }

    fn refund_rate(&self, key: &LimitKey, spec: &RateSpec, now: Timestamp) {
        let now_ns = unix_nanos(now);
        self.rates.get(key, |state| spec.refund(state, now_ns));
    }

    #[inline]
    fn quota(&self, key: &LimitKey, spec: &QuotaSpec, now: Timestamp) -> QuotaDecision {
        self.quotas.with(key, |cell| spec.try_consume(cell, now))
    }

    fn quota_peek(&self, key: &LimitKey, spec: &QuotaSpec, now: Timestamp) -> QuotaDecision {
        self.quotas
            .get(key, |cell| spec.peek(cell, now))
            .unwrap_or_else(|| spec.peek(&QuotaCell::new(), now))
    }

    fn refund(&self, key: &LimitKey, spec: &QuotaSpec, at: Timestamp) {
        self.quotas.get(key, |cell| spec.refund(cell, at));
    }
}
