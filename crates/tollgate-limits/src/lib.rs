//! Tollgate's rate limits and quotas: the period function shared with billing, GCRA rate
//! limiting, exact period quotas, the [`Limiter`] trait the gateway calls, and the IETF
//! `RateLimit` header fields.
//!
//! Pure and hot-path friendly: no IO, no async, and no clock — every `now` is passed in
//! (a [`jiff::Timestamp`], or Unix nanoseconds for [`Gcra::check`]).
//!
//! # Concurrency design
//!
//! - **Per-key state is one `AtomicU64`**, updated by a compare-exchange loop: the GCRA
//!   theoretical arrival time ([`GcraState`]) or, for a quota, the current period's start
//!   (Unix seconds, high 32 bits) packed with its count (low 32 bits) ([`QuotaCell`]).
//!   Packing the period with the count makes "new period → count from zero" and "count
//!   one more" a single atomic step, so N racing callers against a quota of L admit
//!   exactly L, across a period boundary too, and a refusal writes nothing.
//! - **Keys live in a sharded map** (64 shards of `RwLock<HashMap>`, each shard on its own
//!   cache line). A hit takes the shard's read lock — shared, so readers never wait for
//!   each other — looks the key up and runs the atomic update under it; the write lock is
//!   taken only to insert a key seen for the first time, or by housekeeping
//!   ([`LocalLimiter::prune_rates`]). Values are stored inline (no `Arc` clone, whose
//!   reference count would be one more contended atomic per request). `dashmap` would do
//!   the same with one more dependency; a fully lock-free map is not needed when the only
//!   shared write is the first sight of a key.
//! - **Keys are two integers** ([`LimitKey`]: interned subject, limit clause index),
//!   hashed with a splitmix finalizer: no allocation and no SipHash on the hit path.
//! - **Quota period bounds are cached in the [`QuotaSpec`]** (start and length packed in
//!   one atomic), so the time-zone database is consulted once per period, not per call.

mod gcra;
mod headers;
mod limiter;
mod map;
mod period;
mod quota;

pub use gcra::{Gcra, GcraState, RateDecision, RatePer, RateSpec};
pub use headers::{LimitItem, PolicyItem, ratelimit, ratelimit_policy, retry_after_seconds};
pub use limiter::{Limiter, LocalLimiter, QuotaUsage, unix_nanos};
pub use map::{KeyHasher, LimitKey};
pub use period::{Period, period_bounds};
pub use quota::{QuotaCell, QuotaCounter, QuotaDecision, QuotaSpec};

/// Everything that can be wrong in a limit's definition or persisted state. Refusals of
/// calls are not errors: they are [`RateDecision::Limited`] and
/// [`QuotaDecision::Exhausted`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("a rate limit needs at least 1 request per period")]
    ZeroRequests,
    #[error("a rate limit needs a burst of at least 1")]
    ZeroBurst,
    #[error("a rate limit period must be between 1 ns and 584 years")]
    BadPeriod,
    #[error("burst {burst} is too large for this rate")]
    BurstTooLarge { burst: u64 },
    #[error("period start {at} is not a whole second between 1970 and 2106")]
    BadPeriodStart { at: jiff::Timestamp },
    #[error("policy name {name:?} is not printable ASCII")]
    BadPolicyName { name: String },
}
