//! The one period function (DESIGN.md §3): which day, calendar month or billing period an
//! instant belongs to, in an IANA time zone. Quotas and billing both call
//! [`period_bounds`], so "this month" means the same to the gateway and to the invoice.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// A kind of period. Periods tile time: every instant belongs to exactly one period of a
/// kind, and each period ends where the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A calendar day: from local midnight to the next local midnight (23 or 25 hours
    /// long across a daylight-saving change; where midnight falls in a gap, the day starts
    /// at its first existing instant).
    Day,
    /// A calendar month: from local midnight of the 1st to local midnight of the next 1st.
    CalendarMonth,
    /// A billing period anchored on the subscription start: periods begin each month on
    /// the anchor's local day of month and local time of day, the day clamped to the
    /// month's last day (an anchor on the 31st gives Feb 28/29, then Mar 31 again: every
    /// boundary is computed from the anchor, never from the previous boundary). The
    /// anchor counts at whole-second precision, so every boundary is a whole second.
    Anniversary {
        /// The subscription start.
        anchor: Timestamp,
    },
}

/// The period of `period`'s kind that contains `at`, in time zone `tz`: `(start, end)` with
/// `start` inclusive and `end` exclusive, so `start <= at < end`.
///
/// Local times are resolved like RFC 5545 / Temporal's "compatible" rule: a boundary in a
/// daylight-saving gap moves to the end of the gap, one in a fold takes the first
/// occurrence. Instants within a year of jiff's limits (years ±9999) saturate to
/// `Timestamp::MIN`/`MAX` at the unrepresentable side.
pub fn period_bounds(period: &Period, tz: &TimeZone, at: Timestamp) -> (Timestamp, Timestamp) {
    let local = tz.to_datetime(at);
    match *period {
        Period::Day => {
            let estimate = epoch_day(local.date());
            locate(at, estimate, |n| {
                let (y, m, d) = civil_from_days(n)?;
                local_instant(tz, y, m, d, 0, 0, 0)
            })
        }
        Period::CalendarMonth => {
            let estimate = month_index(local.year(), local.month());
            locate(at, estimate, |n| {
                let (y, m) = month_from_index(n)?;
                local_instant(tz, y, m, 1, 0, 0, 0)
            })
        }
        Period::Anniversary { anchor } => {
            // Sub-second parts of the anchor are dropped (see `Period::Anniversary`).
            let anchor = Timestamp::from_second(anchor.as_second()).unwrap_or(anchor);
            let a = tz.to_datetime(anchor);
            let base = month_index(a.year(), a.month());
            let estimate = month_index(local.year(), local.month()) - base;
            locate(at, estimate, |k| {
                let (y, m) = month_from_index(base.checked_add(k)?)?;
                let last = Date::new(y, m, 1).ok()?.days_in_month();
                let d = a.day().min(last);
                local_instant(tz, y, m, d, a.hour(), a.minute(), a.second())
            })
        }
    }
}

/// Finds the label `n` with `boundary(n) <= at < boundary(n + 1)`, starting from an
/// estimate that is at most a step or two off. `boundary` is non-decreasing in `n` (a
/// skipped local day, as in Pacific/Apia in 2011, gives an empty period that is never
/// returned); `None` means the boundary is outside jiff's range.
fn locate(
    at: Timestamp,
    estimate: i64,
    boundary: impl Fn(i64) -> Option<Timestamp>,
) -> (Timestamp, Timestamp) {
    let start_of = |n: i64| boundary(n).unwrap_or(Timestamp::MIN);
    let end_of = |n: i64| {
        n.checked_add(1)
            .and_then(&boundary)
            .unwrap_or(Timestamp::MAX)
    };
    let mut n = estimate;
    // Bounded loops: the estimate comes from the local calendar, so it is off by at most
    // one label except across pathological zone shifts; the bound only guards saturation.
    for _ in 0..64 {
        if at < start_of(n) {
            n -= 1;
        } else if at >= end_of(n) && end_of(n) != Timestamp::MAX {
            n += 1;
        } else {
            break;
        }
    }
    (start_of(n), end_of(n))
}

/// The instant of a local date and time in `tz`, "compatible" disambiguation.
fn local_instant(
    tz: &TimeZone,
    y: i16,
    m: i8,
    d: i8,
    hour: i8,
    minute: i8,
    second: i8,
) -> Option<Timestamp> {
    let dt = DateTime::new(y, m, d, hour, minute, second, 0).ok()?;
    tz.to_timestamp(dt).ok()
}

fn month_index(year: i16, month: i8) -> i64 {
    i64::from(year) * 12 + i64::from(month) - 1
}

fn month_from_index(n: i64) -> Option<(i16, i8)> {
    let year = i16::try_from(n.div_euclid(12)).ok()?;
    let month = i8::try_from(n.rem_euclid(12) + 1).ok()?;
    Some((year, month))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn epoch_day(date: Date) -> i64 {
    let (y, m, d) = (
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`epoch_day`]; `None` outside the years jiff represents.
fn civil_from_days(n: i64) -> Option<(i16, i8, i8)> {
    let z = n.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some((
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(d).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn check(period: Period, zone: &str, at: &str, expected: (&str, &str)) {
        let tz = TimeZone::get(zone).unwrap();
        let (start, end) = period_bounds(&period, &tz, ts(at));
        assert_eq!(
            (start.to_string(), end.to_string()),
            (expected.0.to_string(), expected.1.to_string()),
            "{period:?} in {zone} at {at}"
        );
    }

    #[test]
    fn epoch_day_round_trips() {
        for n in [-800_000, -719_469, -1, 0, 1, 59, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(n).unwrap();
            assert_eq!(epoch_day(Date::new(y, m, d).unwrap()), n);
        }
        assert_eq!(epoch_day(Date::new(2000, 3, 1).unwrap()), 11_017);
    }

    #[test]
    fn calendar_periods() {
        // Paris is UTC+1 in winter, UTC+2 in summer: months start at local midnight.
        check(
            Period::CalendarMonth,
            "Europe/Paris",
            "2025-03-15T12:00:00Z",
            ("2025-02-28T23:00:00Z", "2025-03-31T22:00:00Z"),
        );
        // Just before local midnight of April 1st is still March.
        check(
            Period::CalendarMonth,
            "Europe/Paris",
            "2025-03-31T21:59:59.999999999Z",
            ("2025-02-28T23:00:00Z", "2025-03-31T22:00:00Z"),
        );
        check(
            Period::CalendarMonth,
            "Europe/Paris",
            "2025-03-31T22:00:00Z",
            ("2025-03-31T22:00:00Z", "2025-04-30T22:00:00Z"),
        );
        check(
            Period::CalendarMonth,
            "UTC",
            "2024-12-31T23:59:59Z",
            ("2024-12-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        );
        // The spring-forward day in Paris is 23 hours long, the fall-back day 25.
        check(
            Period::Day,
            "Europe/Paris",
            "2025-03-30T12:00:00Z",
            ("2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z"),
        );
        check(
            Period::Day,
            "Europe/Paris",
            "2025-10-26T12:00:00Z",
            ("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z"),
        );
        // Midnight falls in the gap in America/Santiago on 2024-09-08: the day starts at
        // 01:00 local, its first instant.
        check(
            Period::Day,
            "America/Santiago",
            "2024-09-08T12:00:00Z",
            ("2024-09-08T04:00:00Z", "2024-09-09T03:00:00Z"),
        );
        // Samoa skipped 2011-12-30 entirely: the 29th is followed by the 31st.
        check(
            Period::Day,
            "Pacific/Apia",
            "2011-12-30T10:00:00Z",
            ("2011-12-30T10:00:00Z", "2011-12-31T10:00:00Z"),
        );
        check(
            Period::Day,
            "Pacific/Apia",
            "2011-12-30T09:59:59Z",
            ("2011-12-29T10:00:00Z", "2011-12-30T10:00:00Z"),
        );
    }

    #[test]
    fn anniversary_clamps_and_returns() {
        let p = Period::Anniversary {
            anchor: ts("2025-01-31T09:30:00Z"),
        };
        check(
            p,
            "UTC",
            "2025-02-10T00:00:00Z",
            ("2025-01-31T09:30:00Z", "2025-02-28T09:30:00Z"),
        );
        check(
            p,
            "UTC",
            "2025-03-01T00:00:00Z",
            ("2025-02-28T09:30:00Z", "2025-03-31T09:30:00Z"),
        );
        check(
            p,
            "UTC",
            "2025-04-30T09:29:59Z",
            ("2025-03-31T09:30:00Z", "2025-04-30T09:30:00Z"),
        );
        // Leap year February.
        check(
            p,
            "UTC",
            "2028-02-15T00:00:00Z",
            ("2028-01-31T09:30:00Z", "2028-02-29T09:30:00Z"),
        );
        // Before the anchor the periods continue backwards with the same rule.
        check(
            p,
            "UTC",
            "2024-12-31T09:29:59Z",
            ("2024-11-30T09:30:00Z", "2024-12-31T09:30:00Z"),
        );
        // In a zone, the local time of day is kept across DST: 10:30 Paris each month.
        let p = Period::Anniversary {
            anchor: ts("2025-01-15T09:30:00.75Z"),
        };
        check(
            p,
            "Europe/Paris",
            "2025-04-01T00:00:00Z",
            ("2025-03-15T09:30:00Z", "2025-04-15T08:30:00Z"),
        );
    }
}
