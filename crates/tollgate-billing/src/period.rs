//! Billing periods built on the one period function (`tollgate_limits::period_bounds`,
//! DESIGN.md §3): months come from it unchanged, quarters and years are runs of its
//! months, so a quota's "this month" and an invoice's month are the same instants.
//! Also trials and proration to the second.

use crate::Error;
use crate::model::{Anchor, BillingCycle};
use crate::pricing::mul;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tollgate_limits::{Period, period_bounds};

/// A half-open span of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// First instant, inclusive.
    pub start: Timestamp,
    /// End, exclusive.
    pub end: Timestamp,
}

impl Span {
    /// A span; `start < end` is the caller's to ensure (see [`Span::checked`]).
    pub fn new(start: Timestamp, end: Timestamp) -> Span {
        Span { start, end }
    }

    /// A span, or an error when it is empty.
    pub fn checked(start: Timestamp, end: Timestamp) -> Result<Span, Error> {
        if start < end {
            Ok(Span { start, end })
        } else {
            Err(Error::EmptyPeriod {
                start: start.to_string(),
                end: end.to_string(),
            })
        }
    }

    /// Whether `t` is in the span.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }

    /// The overlap with `other`, if not empty.
    pub fn intersect(&self, other: &Span) -> Option<Span> {
        let s = self.start.max(other.start);
        let e = self.end.min(other.end);
        (s < e).then_some(Span { start: s, end: e })
    }

    /// Length in whole seconds (proration counts seconds; sub-second parts of the
    /// bounds are dropped, so every instant of a second counts as that second).
    pub fn seconds(&self) -> i64 {
        self.end.as_second() - self.start.as_second()
    }
}

fn zone(cycle: &BillingCycle) -> Result<TimeZone, Error> {
    TimeZone::get(&cycle.time_zone).map_err(|_| Error::UnknownTimeZone(cycle.time_zone.clone()))
}

/// The billing period of `cycle` that contains `at`, for a subscription that started at
/// `subscription_start` (the anchor of `anchor: subscription` cycles).
///
/// Months are `period_bounds` months (calendar, or anniversary of the subscription start
/// with the day clamped to short months); a quarter or year is the run of 3 or 12 such
/// months that starts at a calendar quarter/year (calendar anchor) or at a multiple of 3
/// or 12 months after the subscription start (subscription anchor).
pub fn billing_period(
    cycle: &BillingCycle,
    subscription_start: Timestamp,
    at: Timestamp,
) -> Result<Span, Error> {
    let tz = zone(cycle)?;
    let kind = match cycle.anchor {
        Anchor::Calendar => Period::CalendarMonth,
        Anchor::Subscription => Period::Anniversary {
            anchor: subscription_start,
        },
    };
    let month = |t: Timestamp| period_bounds(&kind, &tz, t);
    let (mut start, mut end) = month(at);
    let months = cycle.interval.months();
    if months > 1 {
        let label = |t: Timestamp| {
            let dt = tz.to_datetime(t);
            i64::from(dt.year()) * 12 + i64::from(dt.month()) - 1
        };
        let base = match cycle.anchor {
            Anchor::Calendar => 0,
            Anchor::Subscription => label(
                Timestamp::from_second(subscription_start.as_second())
                    .unwrap_or(subscription_start),
            ),
        };
        // Which month of its quarter/year the month containing `at` is.
        let k = (label(start) - base).rem_euclid(months);
        for _ in 0..k {
            let before = start
                .checked_sub(SignedDuration::from_nanos(1))
                .map_err(|_| Error::Overflow("period start"))?;
            start = month(before).0;
        }
        for _ in 0..(months - 1 - k) {
            end = month(end).1;
        }
    }
    Span::checked(start, end)
}

/// The period after `period` in `cycle`.
pub fn next_period(
    cycle: &BillingCycle,
    subscription_start: Timestamp,
    period: &Span,
) -> Result<Span, Error> {
    billing_period(cycle, subscription_start, period.end)
}

/// When a trial of `days` days that starts at `start` ends: the same local time `days`
/// calendar days later in the cycle's time zone (a day across a DST change is 23 or 25
/// hours, as the customer's calendar says).
pub fn trial_end(cycle: &BillingCycle, start: Timestamp, days: u32) -> Result<Timestamp, Error> {
    if days == 0 {
        return Ok(start);
    }
    let tz = zone(cycle)?;
    start
        .to_zoned_datetime(tz)
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .map(|z| z.timestamp())
        .map_err(|_| Error::Overflow("trial end"))
}

/// `amount × part / whole`, counted in whole seconds: the share of a period's fee for
/// the part of it that was used. A part equal to the whole gives `amount` exactly,
/// because the multiplication happens before the division.
pub fn prorate(amount: Decimal, part: &Span, whole: &Span) -> Result<Decimal, Error> {
    let whole_s = whole.seconds();
    if whole_s <= 0 {
        return Err(Error::EmptyPeriod {
            start: whole.start.to_string(),
            end: whole.end.to_string(),
        });
    }
    let part_s = part.intersect(whole).map_or(0, |p| p.seconds());
    if part_s == whole_s {
        return Ok(amount);
    }
    Ok(mul(amount, Decimal::from(part_s))? / Decimal::from(whole_s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Interval;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cycle(interval: Interval, anchor: Anchor, tz: &str) -> BillingCycle {
        BillingCycle {
            interval,
            anchor,
            time_zone: tz.into(),
        }
    }

    fn check(c: &BillingCycle, sub: &str, at: &str, expected: (&str, &str)) {
        let p = billing_period(c, ts(sub), ts(at)).unwrap();
        assert_eq!(
            (p.start.to_string(), p.end.to_string()),
            (expected.0.to_string(), expected.1.to_string()),
            "{c:?} at {at}"
        );
    }

    #[test]
    fn calendar_months_quarters_and_years() {
        let sub = "2024-06-10T08:00:00Z";
        check(
            &cycle(Interval::Month, Anchor::Calendar, "UTC"),
            sub,
            "2025-05-20T00:00:00Z",
            ("2025-05-01T00:00:00Z", "2025-06-01T00:00:00Z"),
        );
        check(
            &cycle(Interval::Quarter, Anchor::Calendar, "UTC"),
            sub,
            "2025-05-20T00:00:00Z",
            ("2025-04-01T00:00:00Z", "2025-07-01T00:00:00Z"),
        );
        check(
            &cycle(Interval::Quarter, Anchor::Calendar, "UTC"),
            sub,
            "2025-12-31T23:59:59Z",
            ("2025-10-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        );
        // Paris quarters start at local midnight: UTC+1 in January, UTC+2 in April.
        check(
            &cycle(Interval::Quarter, Anchor::Calendar, "Europe/Paris"),
            sub,
            "2025-02-01T00:00:00Z",
            ("2024-12-31T23:00:00Z", "2025-03-31T22:00:00Z"),
        );
        check(
            &cycle(Interval::Year, Anchor::Calendar, "UTC"),
            sub,
            "2025-05-20T00:00:00Z",
            ("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        );
    }

    #[test]
    fn subscription_anchored_periods() {
        let sub = "2025-01-31T09:30:00Z";
        check(
            &cycle(Interval::Month, Anchor::Subscription, "UTC"),
            sub,
            "2025-02-10T00:00:00Z",
            ("2025-01-31T09:30:00Z", "2025-02-28T09:30:00Z"),
        );
        // Quarters of anniversary months: Jan 31 → Apr 30 → Jul 31.
        check(
            &cycle(Interval::Quarter, Anchor::Subscription, "UTC"),
            sub,
            "2025-03-15T00:00:00Z",
            ("2025-01-31T09:30:00Z", "2025-04-30T09:30:00Z"),
        );
        check(
            &cycle(Interval::Quarter, Anchor::Subscription, "UTC"),
            sub,
            "2025-05-01T00:00:00Z",
            ("2025-04-30T09:30:00Z", "2025-07-31T09:30:00Z"),
        );
        check(
            &cycle(Interval::Year, Anchor::Subscription, "UTC"),
            sub,
            "2026-01-31T09:29:59Z",
            ("2025-01-31T09:30:00Z", "2026-01-31T09:30:00Z"),
        );
    }

    #[test]
    fn trials_count_calendar_days() {
        let c = cycle(Interval::Month, Anchor::Calendar, "Europe/Paris");
        // 14 days from 2025-03-20 10:00 Paris (UTC+1) is 2025-04-03 10:00 Paris (UTC+2):
        // 14 calendar days, 335 hours across the spring change.
        assert_eq!(
            trial_end(&c, ts("2025-03-20T09:00:00Z"), 14).unwrap(),
            ts("2025-04-03T08:00:00Z")
        );
        assert_eq!(
            trial_end(&c, ts("2025-03-20T09:00:00Z"), 0).unwrap(),
            ts("2025-03-20T09:00:00Z")
        );
    }

    #[test]
    fn proration_to_the_second() {
        let march = Span::new(ts("2025-03-01T00:00:00Z"), ts("2025-04-01T00:00:00Z"));
        // March has 31 × 86 400 = 2 678 400 s; the last 10 days are 864 000 s:
        // 31 × 864 000 / 2 678 400 = 10.
        let part = Span::new(ts("2025-03-22T00:00:00Z"), march.end);
        assert_eq!(
            prorate(Decimal::from(31), &part, &march).unwrap(),
            Decimal::from(10)
        );
        assert_eq!(
            prorate(Decimal::from(31), &march, &march).unwrap(),
            Decimal::from(31)
        );
    }
}
