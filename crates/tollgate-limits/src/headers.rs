//! The IETF `RateLimit-Policy` and `RateLimit` fields in the syntax of
//! draft-ietf-httpapi-ratelimit-headers-10: each is a structured-field List (RFC 9651) of
//! Strings naming a policy, with parameters — `q` (quota) and `w` (window, seconds) on a
//! policy item, `r` (remaining) and `t` (seconds until reset) on a limit item. Serialized
//! with `sfv`, never by string concatenation.
//!
//! ```text
//! RateLimit-Policy: "burst";q=100;w=1, "month";q=100000;w=2592000
//! RateLimit: "month";r=99812;t=1036800
//! ```

use std::time::Duration;

use jiff::Timestamp;
use sfv::{Integer, KeyRef, ListSerializer, StringRef};

use crate::LimitsError;
use crate::gcra::{Gcra, RateDecision};
use crate::quota::{QuotaDecision, QuotaSpec, seconds_until};

const Q: &KeyRef = KeyRef::constant("q");
const W: &KeyRef = KeyRef::constant("w");
const R: &KeyRef = KeyRef::constant("r");
const T: &KeyRef = KeyRef::constant("t");

/// One item of `RateLimit-Policy`: at most `quota` requests per `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyItem<'a> {
    /// The policy's name (printable ASCII), e.g. `burst`, `month`.
    pub name: &'a str,
    pub quota: u64,
    pub window: u64,
}

/// One item of `RateLimit`: `remaining` requests left, full again in `reset` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitItem<'a> {
    /// The name of the policy it reports on.
    pub name: &'a str,
    pub remaining: u64,
    pub reset: u64,
}

/// sf-integers have at most 15 digits; a larger count is reported as the largest one.
fn int(v: u64) -> Integer {
    Integer::try_from(v).unwrap_or(Integer::MAX)
}

fn name(n: &str) -> Result<&StringRef, LimitsError> {
    StringRef::from_str(n).map_err(|_| LimitsError::BadPolicyName { name: n.to_owned() })
}

/// The `RateLimit-Policy` field value, or `None` for no items (an empty list is not
/// sent at all). Build it once per plan in the snapshot: it changes only with the terms.
pub fn ratelimit_policy<'a>(
    items: impl IntoIterator<Item = PolicyItem<'a>>,
) -> Result<Option<String>, LimitsError> {
    let mut ser = ListSerializer::new();
    for item in items {
        let _ = ser
            .bare_item(name(item.name)?)
            .parameter(Q, int(item.quota))
            .parameter(W, int(item.window));
    }
    Ok(ser.finish())
}

/// The `RateLimit` field value, or `None` for no items.
pub fn ratelimit<'a>(
    items: impl IntoIterator<Item = LimitItem<'a>>,
) -> Result<Option<String>, LimitsError> {
    let mut ser = ListSerializer::new();
    for item in items {
        let _ = ser
            .bare_item(name(item.name)?)
            .parameter(R, int(item.remaining))
            .parameter(T, int(item.reset));
    }
    Ok(ser.finish())
}

/// `Retry-After` delay-seconds for a 429: whole seconds rounded up, at least 1 (a client
/// retrying after 0 seconds would only be refused again).
pub fn retry_after_seconds(delay: Duration) -> u64 {
    let s = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    s.max(1)
}

impl Gcra {
    /// This rate limit as a policy item: `q` = burst, `w` = [`Gcra::window_seconds`].
    pub fn policy_item<'a>(&self, name: &'a str) -> PolicyItem<'a> {
        PolicyItem {
            name,
            quota: self.burst(),
            window: self.window_seconds(),
        }
    }
}

impl RateDecision {
    /// This decision as a limit item: `r` = requests left now, `t` = seconds until the
    /// full burst is back (allowed) or until the next request passes (limited).
    pub fn limit_item<'a>(&self, name: &'a str) -> LimitItem<'a> {
        match *self {
            RateDecision::Allowed {
                remaining,
                reset_after,
            } => LimitItem {
                name,
                remaining,
                reset: ceil_seconds(reset_after),
            },
            RateDecision::Limited { retry_after } => LimitItem {
                name,
                remaining: 0,
                reset: ceil_seconds(retry_after),
            },
        }
    }

    /// How long until a request passes, for `Retry-After`: `None` when it passed.
    pub fn retry_after(&self) -> Option<Duration> {
        match *self {
            RateDecision::Allowed { .. } => None,
            RateDecision::Limited { retry_after } => Some(retry_after),
        }
    }
}

impl QuotaSpec {
    /// This quota as a policy item: `q` = limit, `w` = length in seconds of the period
    /// containing `now`.
    pub fn policy_item<'a>(&self, name: &'a str, now: Timestamp) -> PolicyItem<'a> {
        PolicyItem {
            name,
            quota: self.limit(),
            window: self.window_seconds(now),
        }
    }
}

impl QuotaDecision {
    /// This decision as a limit item: `r` = calls left, `t` = seconds until the period
    /// ends.
    pub fn limit_item<'a>(&self, name: &'a str, now: Timestamp) -> LimitItem<'a> {
        LimitItem {
            name,
            remaining: self.remaining(),
            reset: seconds_until(now, self.resets_at()),
        }
    }
}

fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_strings() {
        let policy = ratelimit_policy([
            PolicyItem {
                name: "burst",
                quota: 100,
                window: 1,
            },
            PolicyItem {
                name: "month",
                quota: 100_000,
                window: 2_592_000,
            },
        ])
        .unwrap();
        assert_eq!(
            policy.as_deref(),
            Some(r#""burst";q=100;w=1, "month";q=100000;w=2592000"#)
        );
        let limit = ratelimit([LimitItem {
            name: "month",
            remaining: 99_812,
            reset: 1_036_800,
        }])
        .unwrap();
        assert_eq!(limit.as_deref(), Some(r#""month";r=99812;t=1036800"#));
        assert_eq!(ratelimit([]).unwrap(), None);
    }

    #[test]
    fn names_are_escaped_or_refused() {
        let v = ratelimit([LimitItem {
            name: r#"a"b\c"#,
            remaining: 1,
            reset: 2,
        }])
        .unwrap();
        assert_eq!(v.as_deref(), Some(r#""a\"b\\c";r=1;t=2"#));
        assert_eq!(
            ratelimit([LimitItem {
                name: "mois é",
                remaining: 1,
                reset: 2
            }]),
            Err(LimitsError::BadPolicyName {
                name: "mois é".into()
            })
        );
    }

    #[test]
    fn huge_values_are_clamped_to_sf_integers() {
        let v = ratelimit([LimitItem {
            name: "x",
            remaining: u64::MAX,
            reset: 0,
        }])
        .unwrap();
        assert_eq!(v.as_deref(), Some(r#""x";r=999999999999999;t=0"#));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_seconds(Duration::from_secs(60)), 60);
    }
}
