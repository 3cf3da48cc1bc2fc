//! The resolved windows the gateway evaluates: local time in another zone, DST, blackouts.

use crate::common::*;
use jiff::Timestamp;
use tollgate_terms::WindowCheck;
use tollgate_terms::model::Weekday;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

#[test]
fn business_hours_in_paris_across_dst() {
    let v = valid("weather-standard.yaml");
    let w = v.windows().unwrap();
    // Winter: Paris is UTC+1. 07:30Z is 08:30 local on a Monday.
    assert_eq!(w.check(at("2026-01-05T07:30:00Z")), WindowCheck::Open);
    assert_eq!(
        w.check(at("2026-01-05T06:59:00Z")),
        WindowCheck::OutsideHours
    );
    assert_eq!(w.check(at("2026-01-05T16:59:00Z")), WindowCheck::Open);
    assert_eq!(
        w.check(at("2026-01-05T17:00:00Z")),
        WindowCheck::OutsideHours
    );
    // Summer (after 2026-03-29): UTC+2, so 06:30Z is already 08:30 local.
    assert_eq!(w.check(at("2026-03-30T06:30:00Z")), WindowCheck::Open);
    assert_eq!(
        w.check(at("2026-03-27T06:30:00Z")),
        WindowCheck::OutsideHours
    );
    // Saturday.
    assert_eq!(
        w.check(at("2026-01-10T10:00:00Z")),
        WindowCheck::OutsideHours
    );
    let l = w.local(at("2026-03-30T06:30:00Z"));
    assert_eq!((l.weekday, l.minute_of_day), (Weekday::Mon, 8 * 60 + 30));
}

#[test]
fn blackout_dates_are_local() {
    let v = valid("fintech-payments.json");
    let w = v.windows().unwrap();
    // 2026-12-24 is a Thursday; 09:00 Zurich is 08:00Z. In the Christmas blackout.
    assert!(matches!(
        w.check(at("2026-12-24T08:00:00Z")),
        WindowCheck::Blackout(..)
    ));
    // 23:30Z on the 31st of July is already the 1st of August in Zurich.
    assert!(matches!(
        w.check(at("2026-07-31T23:30:00Z")),
        WindowCheck::Blackout(..)
    ));
    // The lunch break and Friday's early close.
    assert_eq!(
        w.check(at("2026-12-01T11:30:00Z")),
        WindowCheck::OutsideHours
    );
    assert_eq!(w.check(at("2026-12-01T12:30:00Z")), WindowCheck::Open);
    assert_eq!(
        w.check(at("2026-12-04T14:30:00Z")),
        WindowCheck::OutsideHours
    );
}

#[test]
fn facts_for_the_policy_compiler() {
    let v = valid("health-records.toml");
    let ops = v.operations();
    assert_eq!(ops.len(), 3);
    let p = v.operation("records", "getPatient").unwrap();
    assert!(p.consent_required);
    assert_eq!(p.sensitivity.as_str(), "sensitive");
    assert_eq!(p.scopes, ["patient/*.read"]);
    let verify = v
        .operation("records", "POST /consents/{patientId}/verify")
        .unwrap();
    assert!(!verify.consent_required);
    assert_eq!(v.regions(), Some(&["eu".to_owned()][..]));
    assert!(v.windows().is_none());
    // The group limit and no sheet-wide one.
    assert_eq!(v.rate_limits_for(p).count(), 1);
    assert_eq!(v.rate_limits_for(verify).count(), 0);
    // Defaults resolved: burst = requests.
    assert_eq!(v.sheet().limits.rate[0].burst, Some(5));
}
