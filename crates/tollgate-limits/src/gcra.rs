//! GCRA (the generic cell rate algorithm, ITU-T I.371) rate limiting: one `AtomicU64`
//! per key, updated lock-free by compare-exchange.
//!
//! The state is the theoretical arrival time (TAT): the instant at which the key's
//! bucket would be empty again at the sustained rate. A request at `now` is admitted when
//! `max(TAT, now) + T - now <= burst × T` (T = emission interval = period / requests), and
//! then moves the TAT to `max(TAT, now) + T`. With a fresh key exactly `burst` requests
//! pass at one instant, and afterwards one more passes every `T`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::LimitsError;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The period of a rate limit, as term sheets name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatePer {
    Second,
    Minute,
    Hour,
}

impl RatePer {
    /// Length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            RatePer::Second => 1,
            RatePer::Minute => 60,
            RatePer::Hour => 3600,
        }
    }
}

/// A compiled rate limit: `requests` per period with `burst`. Build it once per snapshot;
/// [`Gcra::check`] is the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gcra {
    requests: u64,
    period_ns: u64,
    burst: u64,
    /// Emission interval T in nanoseconds, rounded up so the limiter never admits more
    /// than the contract (3 per second is T = 333 333 334 ns).
    interval_ns: u64,
    /// `burst × T`: the furthest the TAT may run ahead of `now` after an admission.
    tolerance_ns: u64,
}

/// The rate limit a [`crate::Limiter`] enforces (the same type: a compiled GCRA).
pub type RateSpec = Gcra;

/// The per-key state of a GCRA limiter: the theoretical arrival time in nanoseconds of
/// the caller's time base (0: never seen, equivalent to "long ago").
#[derive(Debug, Default)]
pub struct GcraState {
    tat: AtomicU64,
}

impl GcraState {
    /// A state that has seen no request.
    pub const fn new() -> Self {
        Self {
            tat: AtomicU64::new(0),
        }
    }

    /// The current theoretical arrival time, in nanoseconds.
    pub fn tat_ns(&self) -> u64 {
        self.tat.load(Ordering::Acquire)
    }

    /// Whether the key is back at full burst at `now_ns`: such a state behaves exactly
    /// like a fresh one, so it can be dropped to bound memory.
    pub fn is_idle(&self, now_ns: u64) -> bool {
        self.tat_ns() <= now_ns
    }
}

/// The outcome of a rate check. Both variants are expected outcomes, not errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// The request passes.
    Allowed {
        /// How many more requests would pass at this same instant.
        remaining: u64,
        /// How long until the full burst is available again (the `t` of the `RateLimit`
        /// header).
        reset_after: Duration,
    },
    /// The request is refused; nothing was consumed.
    Limited {
        /// How long until one request would pass (the `Retry-After` of the 429).
        retry_after: Duration,
    },
}

impl RateDecision {
    /// Whether the request passes.
    pub fn is_allowed(&self) -> bool {
        matches!(self, RateDecision::Allowed { .. })
    }
}

impl Gcra {
    /// `requests` per `per`, with up to `burst` requests at once.
    pub fn new(requests: u64, per: RatePer, burst: u64) -> Result<Self, LimitsError> {
        Self::with_period(requests, Duration::from_secs(per.seconds()), burst)
    }

    /// `requests` per any period (at least 1 ns, at most about 584 years), with up to
    /// `burst` requests at once.
    pub fn with_period(requests: u64, period: Duration, burst: u64) -> Result<Self, LimitsError> {
        if requests == 0 {
            return Err(LimitsError::ZeroRequests);
        }
        if burst == 0 {
            return Err(LimitsError::ZeroBurst);
        }
        let period_ns = u64::try_from(period.as_nanos())
            .ok()
            .filter(|&ns| ns > 0)
            .ok_or(LimitsError::BadPeriod)?;
        let interval_ns = period_ns.div_ceil(requests);
        let tolerance_ns = interval_ns
            .checked_mul(burst)
            .ok_or(LimitsError::BurstTooLarge { burst })?;
        Ok(Self {
            requests,
            period_ns,
            burst,
            interval_ns,
            tolerance_ns,
        })
    }

    /// Requests per period.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The period.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    /// Requests allowed at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// The emission interval: one request is regained every `interval`.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    /// The `w` of this limit's `RateLimit-Policy` item: the seconds it takes to regain a
    /// full burst (`burst × T`), rounded up, at least 1. With `burst == requests` this is
    /// the period itself, so `10 per second` is `q=10;w=1`.
    pub fn window_seconds(&self) -> u64 {
        self.tolerance_ns.div_ceil(NANOS_PER_SECOND).max(1)
    }

    /// Admits or refuses one request at `now_ns` (nanoseconds in any time base that only
    /// moves forward for this key, e.g. Unix nanoseconds). Lock-free: one load and one
    /// successful compare-exchange when uncontended; a refusal writes nothing.
    #[inline]
    pub fn check(&self, state: &GcraState, now_ns: u64) -> RateDecision {
        let mut tat = state.tat.load(Ordering::Acquire);
        loop {
            let new_tat = tat.max(now_ns).saturating_add(self.interval_ns);
            let ahead = new_tat - now_ns;
            if ahead > self.tolerance_ns {
                return RateDecision::Limited {
                    retry_after: Duration::from_nanos(ahead - self.tolerance_ns),
                };
            }
            match state
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return RateDecision::Allowed {
                        remaining: (self.tolerance_ns - ahead) / self.interval_ns,
                        reset_after: Duration::from_nanos(ahead),
                    };
                }
                Err(current) => tat = current,
            }
        }
    }

    /// What [`Gcra::check`] would answer at `now_ns`, without consuming anything (for the
    /// `RateLimit` header of a response that was refused for another reason).
    pub fn peek(&self, state: &GcraState, now_ns: u64) -> RateDecision {
        let tat = state.tat.load(Ordering::Acquire);
        let new_tat = tat.max(now_ns).saturating_add(self.interval_ns);
        let ahead = new_tat - now_ns;
        if ahead > self.tolerance_ns {
            RateDecision::Limited {
                retry_after: Duration::from_nanos(ahead - self.tolerance_ns),
            }
        } else {
            // One more than after an admission: nothing has been consumed yet.
            RateDecision::Allowed {
                remaining: (self.tolerance_ns - ahead) / self.interval_ns + 1,
                reset_after: Duration::from_nanos(tat.saturating_sub(now_ns)),
            }
        }
    }

    /// Gives back one request admitted by [`Gcra::check`] that the gateway decided not to
    /// count after all (e.g. the quota check that follows refused it, so the 429 must not
    /// cost the caller rate either). Moves the TAT back by one interval, never below
    /// `now_ns` (a bucket already full stays full).
    pub fn refund(&self, state: &GcraState, now_ns: u64) {
        let mut tat = state.tat.load(Ordering::Acquire);
        loop {
            if tat <= now_ns {
                return;
            }
            let new_tat = tat.saturating_sub(self.interval_ns).max(now_ns);
            match state
                .tat
                .compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_SECOND;

    #[test]
    fn burst_then_refill_at_the_exact_rate() {
        // 10 per second, burst 20: T = 100 ms, 20 at once, then one every 100 ms.
        let g = Gcra::new(10, RatePer::Second, 20).unwrap();
        let st = GcraState::new();
        let t0 = 1_000 * S;
        for i in 0..20 {
            assert_eq!(
                g.check(&st, t0),
                RateDecision::Allowed {
                    remaining: 19 - i,
                    reset_after: Duration::from_millis(100 * (i + 1)),
                },
                "request {i}"
            );
        }
        assert_eq!(
            g.check(&st, t0),
            RateDecision::Limited {
                retry_after: Duration::from_millis(100)
            }
        );
        // One nanosecond early: still refused, and the refusal consumed nothing.
        assert_eq!(
            g.check(&st, t0 + S / 10 - 1),
            RateDecision::Limited {
                retry_after: Duration::from_nanos(1)
            }
        );
        assert!(g.check(&st, t0 + S / 10).is_allowed());
        assert!(!g.check(&st, t0 + S / 10).is_allowed());
        // Over the next 10 seconds exactly 100 more pass when polled every millisecond.
        let mut passed = 0;
        let mut t = t0 + S / 10;
        while t <= t0 + S / 10 + 10 * S {
            t += S / 1000;
            if g.check(&st, t).is_allowed() {
                passed += 1;
            }
        }
        assert_eq!(passed, 100);
        // After a long pause the full burst is back, and no more.
        let later = t + 60 * S;
        let admitted = (0..100)
            .filter(|_| g.check(&st, later).is_allowed())
            .count();
        assert_eq!(admitted, 20);
    }

    #[test]
    fn burst_of_one_is_a_strict_interval() {
        let g = Gcra::new(60, RatePer::Minute, 1).unwrap();
        let st = GcraState::new();
        assert_eq!(
            g.check(&st, 5 * S),
            RateDecision::Allowed {
                remaining: 0,
                reset_after: Duration::from_secs(1)
            }
        );
        assert_eq!(
            g.check(&st, 5 * S + S / 2),
            RateDecision::Limited {
                retry_after: Duration::from_millis(500)
            }
        );
        assert!(g.check(&st, 6 * S).is_allowed());
    }

    #[test]
    fn interval_rounds_up_never_over_admits() {
        let g = Gcra::new(3, RatePer::Second, 3).unwrap();
        assert_eq!(g.interval(), Duration::from_nanos(333_333_334));
        let st = GcraState::new();
        // Over 100 s from empty: at most 3 (burst) + 3 per second.
        let mut passed = 0;
        for ms in 0..100_000u64 {
            if g.check(&st, S + ms * 1_000_000).is_allowed() {
                passed += 1;
            }
        }
        assert!(passed <= 3 + 300, "{passed}");
        assert!(passed >= 3 + 299, "{passed}");
    }

    #[test]
    fn peek_and_refund() {
        let g = Gcra::new(2, RatePer::Second, 2).unwrap();
        let st = GcraState::new();
        assert_eq!(
            g.peek(&st, S),
            RateDecision::Allowed {
                remaining: 2,
                reset_after: Duration::ZERO
            }
        );
        assert!(g.check(&st, S).is_allowed());
        assert!(g.check(&st, S).is_allowed());
        assert!(!g.peek(&st, S).is_allowed());
        g.refund(&st, S);
        assert!(g.check(&st, S).is_allowed());
        assert!(!g.check(&st, S).is_allowed());
        // Refunding a full bucket does nothing.
        let st = GcraState::new();
        g.refund(&st, S);
        assert_eq!(st.tat_ns(), 0);
    }

    #[test]
    fn rejects_bad_specs() {
        assert_eq!(
            Gcra::new(0, RatePer::Second, 1),
            Err(LimitsError::ZeroRequests)
        );
        assert_eq!(
            Gcra::new(1, RatePer::Second, 0),
            Err(LimitsError::ZeroBurst)
        );
        assert_eq!(
            Gcra::with_period(1, Duration::ZERO, 1),
            Err(LimitsError::BadPeriod)
        );
        assert!(Gcra::new(1, RatePer::Hour, u64::MAX).is_err());
    }

    #[test]
    fn window_seconds() {
        assert_eq!(
            Gcra::new(100, RatePer::Second, 100)
                .unwrap()
                .window_seconds(),
            1
        );
        assert_eq!(
            Gcra::new(10, RatePer::Second, 20).unwrap().window_seconds(),
            2
        );
        assert_eq!(
            Gcra::new(10, RatePer::Second, 5).unwrap().window_seconds(),
            1
        );
        assert_eq!(
            Gcra::new(600, RatePer::Minute, 600)
                .unwrap()
                .window_seconds(),
            60
        );
    }
}
