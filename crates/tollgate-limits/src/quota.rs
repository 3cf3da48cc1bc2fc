//! Exact period quotas: one `AtomicU64` per (subscription, group) holding the current
//! period's start and its count, so a period rollover and a consumption are one
//! compare-exchange and N racing callers against a limit of L admit exactly L.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::LimitsError;
use crate::period::{Period, period_bounds};

/// A quota clause compiled for one snapshot: `limit` calls per period of a kind, in a
/// time zone. For [`Period::Anniversary`] the spec is per subscription (it holds the
/// anchor); day and calendar-month specs are shared by every subscription of a plan.
///
/// The spec caches the bounds of the period it last computed (start and length packed in
/// one atomic), so the hot path asks the time-zone database once per period, not per call.
#[derive(Debug)]
pub struct QuotaSpec {
    limit: u32,
    period: Period,
    tz: TimeZone,
    /// `start_s << 32 | len_s` of the last period computed, in Unix seconds; 0 is empty.
    cache: AtomicU64,
}

impl Clone for QuotaSpec {
    fn clone(&self) -> Self {
        Self {
            limit: self.limit,
            period: self.period,
            tz: self.tz.clone(),
            cache: AtomicU64::new(self.cache.load(Ordering::Relaxed)),
        }
    }
}

/// The outcome of a quota check. Both variants are expected outcomes, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaDecision {
    /// The call counts and passes.
    Allowed {
        /// Calls left in this period after this one.
        remaining: u64,
        /// When the period ends and the count starts again from zero.
        resets_at: Timestamp,
    },
    /// The period's quota is used up; nothing was consumed.
    Exhausted {
        /// When the period ends and calls pass again.
        resets_at: Timestamp,
    },
}

impl QuotaDecision {
    /// Whether the call passes.
    pub fn is_allowed(&self) -> bool {
        matches!(self, QuotaDecision::Allowed { .. })
    }

    /// When the period ends.
    pub fn resets_at(&self) -> Timestamp {
        match *self {
            QuotaDecision::Allowed { resets_at, .. } | QuotaDecision::Exhausted { resets_at } => {
                resets_at
            }
        }
    }

    /// Calls left in the period.
    pub fn remaining(&self) -> u64 {
        match *self {
            QuotaDecision::Allowed { remaining, .. } => remaining,
            QuotaDecision::Exhausted { .. } => 0,
        }
    }
}

/// The per-key state of a quota: the start of the period being counted (Unix seconds)
/// and the count, packed as `start_s << 32 | used` in one atomic.
///
/// Range: period starts from 1970 to 2106 (32-bit seconds) and at most `u32::MAX` calls
/// per period; a quota above that is enforced as `u32::MAX`.
#[derive(Debug, Default)]
pub struct QuotaCell {
    state: AtomicU64,
}

fn pack(start_s: u32, used: u32) -> u64 {
    (u64::from(start_s) << 32) | u64::from(used)
}

fn unpack(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

impl QuotaCell {
    /// A cell that has counted nothing.
    pub const fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
        }
    }

    /// The period being counted and its count, or `None` for a cell that never counted.
    pub fn snapshot(&self) -> Option<(Timestamp, u64)> {
        let (start_s, used) = unpack(self.state.load(Ordering::Acquire));
        if start_s == 0 && used == 0 {
            return None;
        }
        Some((
            Timestamp::from_second(i64::from(start_s)).ok()?,
            u64::from(used),
        ))
    }

    /// Merges a persisted count into the cell: a count for the period being counted
    /// raises it (never lowers it), a count for a newer period replaces it, and a count
    /// for an older period is ignored. Merging makes restore safe at any time, also while
    /// serving: a periodic snapshot is at most as high as the truth, and a later rebuild
    /// from the ledger only ever raises it to the exact count.
    pub fn restore(&self, period_start: Timestamp, used: u64) -> Result<(), LimitsError> {
        let start_s =
            seconds32(period_start).ok_or(LimitsError::BadPeriodStart { at: period_start })?;
        let used = u32::try_from(used).unwrap_or(u32::MAX);
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let (tag, have) = unpack(cur);
                match tag.cmp(&start_s) {
                    std::cmp::Ordering::Less => Some(pack(start_s, used)),
                    std::cmp::Ordering::Equal if used > have => Some(pack(start_s, used)),
                    _ => None,
                }
            });
        Ok(())
    }
}

/// Unix seconds of a whole-second instant in 1970..2106.
fn seconds32(at: Timestamp) -> Option<u32> {
    if at.subsec_nanosecond() != 0 {
        return None;
    }
    u32::try_from(at.as_second()).ok()
}

fn from_seconds(s: u32) -> Timestamp {
    // Every u32 second count is within jiff's range.
    Timestamp::from_second(i64::from(s)).unwrap_or(Timestamp::MAX)
}

impl QuotaSpec {
    /// `limit` calls per `period` in `tz` (a limit of 0 refuses every call).
    pub fn new(limit: u64, period: Period, tz: TimeZone) -> Self {
        Self {
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            period,
            tz,
            cache: AtomicU64::new(0),
        }
    }

    /// Calls per period (as enforced: at most `u32::MAX`).
    pub fn limit(&self) -> u64 {
        u64::from(self.limit)
    }

    /// The kind of period.
    pub fn period(&self) -> &Period {
        &self.period
    }

    /// The time zone periods are computed in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The period containing `now` ([`period_bounds`], through the cache).
    pub fn bounds(&self, now: Timestamp) -> (Timestamp, Timestamp) {
        match self.window(now) {
            Some((start, end)) => (from_seconds(start), from_seconds(end)),
            None => period_bounds(&self.period, &self.tz, now),
        }
    }

    /// The period containing `now` in Unix seconds, or `None` when it is outside
    /// 1970..2106. Period bounds are whole seconds (midnights in zones whose offsets are
    /// whole seconds, or an anchor truncated to the second), so `now` is inside
    /// `[start, end)` exactly when its whole second is.
    #[inline]
    fn window(&self, now: Timestamp) -> Option<(u32, u32)> {
        let now_s = now.as_second();
        let cached = self.cache.load(Ordering::Relaxed);
        let (start, len) = unpack(cached);
        let end = i64::from(start) + i64::from(len);
        if i64::from(start) <= now_s && now_s < end {
            return Some((start, start + len));
        }
        let (start, end) = period_bounds(&self.period, &self.tz, now);
        let start = seconds32(start)?;
        let end = seconds32(end)?;
        // Several threads may race to fill the cache with the same value, or a straggler
        // with the previous period's bounds: either is a valid period, only a miss later.
        self.cache
            .store(pack(start, end - start), Ordering::Relaxed);
        Some((start, end))
    }

    /// The `w` of this quota's `RateLimit-Policy` item: the length in seconds of the
    /// period containing `now` (2 592 000 for a 30-day month).
    pub fn window_seconds(&self, now: Timestamp) -> u64 {
        let (start, end) = self.bounds(now);
        u64::try_from(end.as_second() - start.as_second()).unwrap_or(0)
    }

    /// Counts one call at `now` if the period's quota allows it. Exact under
    /// concurrency: the period check, the rollover to a new period (count from zero) and
    /// the increment are one compare-exchange on the cell. A refused call writes nothing.
    ///
    /// If another thread has already moved the cell to a later period than `now`'s (a
    /// caller whose `now` was read just before a boundary, racing one just after), the
    /// call counts against that later period: never more than the limit in either.
    #[inline]
    pub fn try_consume(&self, cell: &QuotaCell, now: Timestamp) -> QuotaDecision {
        let Some((start, end)) = self.window(now) else {
            // Outside the counter's range (before 1970 or after 2106): fail closed.
            return QuotaDecision::Exhausted {
                resets_at: period_bounds(&self.period, &self.tz, now).1,
            };
        };
        let resets_at = from_seconds(end);
        let mut cur = cell.state.load(Ordering::Acquire);
        loop {
            let (tag, used) = unpack(cur);
            let (tag, used) = if tag < start { (start, 0) } else { (tag, used) };
            if used >= self.limit {
                return QuotaDecision::Exhausted { resets_at };
            }
            match cell.state.compare_exchange_weak(
                cur,
                pack(tag, used + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return QuotaDecision::Allowed {
                        remaining: u64::from(self.limit - used - 1),
                        resets_at,
                    };
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// What the quota stands at `now` without counting anything: `Allowed` with the
    /// calls left, or `Exhausted`. For the `RateLimit` header of responses that did not
    /// consume (e.g. a 429 from a rate limit).
    pub fn peek(&self, cell: &QuotaCell, now: Timestamp) -> QuotaDecision {
        let Some((start, end)) = self.window(now) else {
            return QuotaDecision::Exhausted {
                resets_at: period_bounds(&self.period, &self.tz, now).1,
            };
        };
        let resets_at = from_seconds(end);
        let (tag, used) = unpack(cell.state.load(Ordering::Acquire));
        let used = if tag < start { 0 } else { used };
        match self.limit.saturating_sub(used) {
            0 => QuotaDecision::Exhausted { resets_at },
            left => QuotaDecision::Allowed {
                remaining: u64::from(left),
                resets_at,
            },
        }
    }

    /// Gives back one call counted by [`QuotaSpec::try_consume`] at `at` (pass the same
    /// instant) that the gateway decides not to count after all.
    ///
    /// Use it when a call consumed quota and was then refused before reaching the
    /// upstream: a later check in the pipeline (another quota of the same request, a
    /// rate limit checked after the quota) or a gateway-side failure that is not the
    /// caller's (the upstream is unreachable, 502/503/504 produced by the gateway), so
    /// "rejected calls consume no quota" holds. Do not refund calls the upstream served,
    /// whatever its status: they are usage. If the period has ended meanwhile, the refund
    /// is dropped (the old period's count is gone and the new one was not charged).
    pub fn refund(&self, cell: &QuotaCell, at: Timestamp) {
        let Some((start, _)) = self.window(at) else {
            return;
        };
        let _ = cell
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let (tag, used) = unpack(cur);
                (tag == start && used > 0).then(|| pack(tag, used - 1))
            });
    }
}

/// A quota spec with its own cell: one quota counted in isolation (the [`crate::Limiter`]
/// keeps cells per key instead).
#[derive(Debug)]
pub struct QuotaCounter {
    spec: QuotaSpec,
    cell: QuotaCell,
}

impl QuotaCounter {
    /// A counter that has counted nothing.
    pub fn new(spec: QuotaSpec) -> Self {
        Self {
            spec,
            cell: QuotaCell::new(),
        }
    }

    /// The quota.
    pub fn spec(&self) -> &QuotaSpec {
        &self.spec
    }

    /// See [`QuotaSpec::try_consume`].
    pub fn try_consume(&self, now: Timestamp) -> QuotaDecision {
        self.spec.try_consume(&self.cell, now)
    }

    /// See [`QuotaSpec::peek`].
    pub fn peek(&self, now: Timestamp) -> QuotaDecision {
        self.spec.peek(&self.cell, now)
    }

    /// See [`QuotaSpec::refund`].
    pub fn refund(&self, at: Timestamp) {
        self.spec.refund(&self.cell, at);
    }

    /// See [`QuotaCell::snapshot`].
    pub fn snapshot(&self) -> Option<(Timestamp, u64)> {
        self.cell.snapshot()
    }

    /// See [`QuotaCell::restore`].
    pub fn restore(&self, period_start: Timestamp, used: u64) -> Result<(), LimitsError> {
        self.cell.restore(period_start, used)
    }
}

/// Whole seconds until `until`, rounded up (0 when it has passed).
pub(crate) fn seconds_until(now: Timestamp, until: Timestamp) -> u64 {
    let ns = (until.as_nanosecond() - now.as_nanosecond()).max(0);
    // i128 has no stable `div_ceil`; `ns` is non-negative here.
    u64::try_from((ns + 999_999_999) / 1_000_000_000).unwrap_or(u64::MAX)
}

impl QuotaDecision {
    /// How long until calls pass again, for the `Retry-After` of a 429: `None` when the
    /// call passed.
    pub fn retry_after(&self, now: Timestamp) -> Option<Duration> {
        match *self {
            QuotaDecision::Allowed { .. } => None,
            QuotaDecision::Exhausted { resets_at } => {
                Some(Duration::from_secs(seconds_until(now, resets_at)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn monthly(limit: u64) -> QuotaCounter {
        QuotaCounter::new(QuotaSpec::new(
            limit,
            Period::CalendarMonth,
            TimeZone::get("Europe/Paris").unwrap(),
        ))
    }

    #[test]
    fn counts_to_the_limit_then_rolls_over() {
        let q = monthly(3);
        let now = ts("2025-03-15T12:00:00Z");
        let reset = ts("2025-03-31T22:00:00Z");
        for left in [2, 1, 0] {
            assert_eq!(
                q.try_consume(now),
                QuotaDecision::Allowed {
                    remaining: left,
                    resets_at: reset
                }
            );
        }
        assert_eq!(
            q.try_consume(now),
            QuotaDecision::Exhausted { resets_at: reset }
        );
        assert_eq!(
            q.try_consume(now).retry_after(now),
            Some(Duration::from_secs(16 * 86_400 + 10 * 3600))
        );
        // Refused calls consumed nothing: the count is exactly the limit.
        assert_eq!(q.snapshot(), Some((ts("2025-02-28T23:00:00Z"), 3)));
        // Local midnight of April 1st in Paris: a new period from zero.
        assert_eq!(
            q.try_consume(reset),
            QuotaDecision::Allowed {
                remaining: 2,
                resets_at: ts("2025-04-30T22:00:00Z")
            }
        );
        assert_eq!(q.snapshot(), Some((reset, 1)));
    }

    #[test]
    fn refund_gives_back_one_call_of_the_same_period() {
        let q = monthly(1);
        let now = ts("2025-03-15T12:00:00Z");
        assert!(q.try_consume(now).is_allowed());
        assert!(!q.try_consume(now).is_allowed());
        q.refund(now);
        assert_eq!(q.peek(now).remaining(), 1);
        assert!(q.try_consume(now).is_allowed());
        // A refund for a period that has ended does nothing to the new one.
        let april = ts("2025-04-02T00:00:00Z");
        assert!(q.try_consume(april).is_allowed());
        q.refund(now);
        assert!(!q.try_consume(april).is_allowed());
        // A refund never goes below zero.
        let fresh = monthly(1);
        fresh.refund(now);
        assert_eq!(fresh.snapshot(), None);
    }

    #[test]
    fn restore_merges() {
        let q = monthly(10);
        let now = ts("2025-03-15T12:00:00Z");
        let march = ts("2025-02-28T23:00:00Z");
        let feb = ts("2025-01-31T23:00:00Z");
        q.restore(march, 7).unwrap();
        assert_eq!(q.peek(now).remaining(), 3);
        q.restore(march, 5).unwrap(); // lower: ignored
        q.restore(feb, 9).unwrap(); // older period: ignored
        assert_eq!(q.snapshot(), Some((march, 7)));
        q.restore(march, 9).unwrap();
        assert_eq!(
            q.try_consume(now),
            QuotaDecision::Allowed {
                remaining: 0,
                resets_at: ts("2025-03-31T22:00:00Z")
            }
        );
        assert_eq!(
            q.restore(ts("2025-02-28T23:00:00.5Z"), 1),
            Err(LimitsError::BadPeriodStart {
                at: ts("2025-02-28T23:00:00.5Z")
            })
        );
    }

    #[test]
    fn zero_limit_and_out_of_range() {
        let q = monthly(0);
        assert!(!q.try_consume(ts("2025-03-15T12:00:00Z")).is_allowed());
        let q = monthly(5);
        assert!(!q.try_consume(ts("1960-03-15T12:00:00Z")).is_allowed());
        assert!(!q.try_consume(ts("2200-03-15T12:00:00Z")).is_allowed());
    }

    #[test]
    fn cache_follows_the_clock_both_ways() {
        let q = monthly(100);
        let march = ts("2025-03-15T12:00:00Z");
        let april = ts("2025-04-15T12:00:00Z");
        assert_eq!(
            q.spec().bounds(march),
            (ts("2025-02-28T23:00:00Z"), ts("2025-03-31T22:00:00Z"))
        );
        assert_eq!(
            q.spec().bounds(april),
            (ts("2025-03-31T22:00:00Z"), ts("2025-04-30T22:00:00Z"))
        );
        assert_eq!(
            q.spec().bounds(march),
            (ts("2025-02-28T23:00:00Z"), ts("2025-03-31T22:00:00Z"))
        );
        assert_eq!(q.spec().window_seconds(april), 30 * 86_400);
    }
}
