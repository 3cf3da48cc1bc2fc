//! Diff classification: one test per kind of change, on the weather fixture.

use crate::common::*;
use tollgate_terms::diff::kinds;
use tollgate_terms::model::*;
use tollgate_terms::{ChangeKind, diff};

/// Edits the weather sheet and returns the only change the diff finds.
fn check(edit: impl FnOnce(&mut TermSheet), path: &str, kind: ChangeKind) {
    let old = valid("weather-standard.yaml");
    let mut s = sheet("weather-standard.yaml");
    edit(&mut s);
    let new = revalidate(&s);
    let changes = diff(&old, &new);
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].path, path, "{changes:#?}");
    assert_eq!(changes[0].kind, kind, "{changes:#?}");
    assert!(!changes[0].summary.is_empty());
}

use ChangeKind::*;

#[test]
fn no_change_no_diff() {
    let a = valid("weather-standard.yaml");
    assert!(diff(&a, &a).is_empty());
}

#[test]
fn operations() {
    check(
        |s| s.grants[0].operations.pop().map(drop).unwrap_or(()),
        "operations.weather:getForecast",
        MoreRestrictive,
    );
    check(
        |s| {
            s.grants[0]
                .operations
                .push(OperationRef::Id("getRadar".into()))
        },
        "operations.weather:getRadar",
        MorePermissive,
    );
    check(
        |s| s.grants[1].scopes.push("extra".into()),
        "operations.weather:GET /alerts/{region}.scopes",
        MoreRestrictive,
    );
}

#[test]
fn scope_removed_on_a_single_operation_is_more_permissive() {
    check(
        |s| s.grants[1].scopes.retain(|x| x != "alerts:read"),
        "operations.weather:GET /alerts/{region}.scopes",
        MorePermissive,
    );
}

#[test]
fn data() {
    check(
        |s| s.grants[1].data.categories.push(Category("contact".into())),
        "operations.weather:GET /alerts/{region}.categories",
        MorePermissive,
    );
    check(
        |s| s.grants[1].data.consent_required = Some(true),
        "operations.weather:GET /alerts/{region}.consent_required",
        MoreRestrictive,
    );
    check(
        |s| s.data.retention_days = Some(7),
        "data.retention_days",
        MoreRestrictive,
    );
    check(
        |s| s.data.retention_days = None,
        "data.retention_days",
        MorePermissive,
    );
    check(
        |s| s.data.regions = Some(vec!["eu".into()]),
        "data.regions",
        MoreRestrictive,
    );
    check(
        |s| {
            s.data.purposes = vec![
                Purpose("service-provision".into()),
                Purpose("research".into()),
            ]
        },
        "data.purposes",
        Mixed,
    );
}

#[test]
fn limits() {
    check(
        |s| s.limits.quota[0].requests = 200_000,
        "limits.quota.standard.calendar_month",
        MorePermissive,
    );
    check(
        |s| s.limits.quota[0].requests = 50_000,
        "limits.quota.standard.calendar_month",
        MoreRestrictive,
    );
    check(
        |s| s.limits.rate[0].burst = Some(40),
        "limits.rate.standard.second",
        MorePermissive,
    );
    check(
        |s| {
            s.limits.rate[0].requests = 20;
            s.limits.rate[0].burst = Some(10);
        },
        "limits.rate.standard.second",
        Mixed,
    );
    check(
        |s| {
            s.limits.quota.pop();
        },
        "limits.quota.all.billing_period",
        MorePermissive,
    );
    check(
        |s| {
            s.limits.quota.push(Quota {
                group: Some("alerts".into()),
                requests: 10,
                per: QuotaPeriod::Day,
            })
        },
        "limits.quota.alerts.day",
        MoreRestrictive,
    );
    check(|s| s.limits.time_zone = None, "limits.time_zone", Neutral);
}

#[test]
fn windows() {
    let w = |s: &mut TermSheet| s.windows.as_mut().unwrap().allowed[0].clone();
    check(
        |s| {
            s.windows.as_mut().unwrap().allowed[0].to = "20:00".parse().unwrap();
        },
        "windows.allowed",
        MorePermissive,
    );
    check(
        |s| {
            s.windows.as_mut().unwrap().allowed[0].days.pop();
        },
        "windows.allowed",
        MoreRestrictive,
    );
    check(
        |s| {
            s.windows.as_mut().unwrap().allowed.clear();
        },
        "windows.allowed",
        MorePermissive,
    );
    check(
        |s| {
            s.windows.as_mut().unwrap().time_zone = "America/New_York".into();
        },
        "windows.allowed",
        Mixed,
    );
    // The same hours written as two adjacent windows: no change for the subscriber.
    let old = valid("weather-standard.yaml");
    let mut s = sheet("weather-standard.yaml");
    let mut a = w(&mut s);
    a.to = "12:00".parse().unwrap();
    let mut b = a.clone();
    b.from = "12:00".parse().unwrap();
    b.to = "18:00".parse().unwrap();
    s.windows.as_mut().unwrap().allowed = vec![a, b];
    let new = revalidate(&s);
    assert_ne!(new.sha256(), old.sha256());
    assert!(diff(&old, &new).is_empty());
}

#[test]
fn blackouts() {
    check(
        |s| {
            s.windows.as_mut().unwrap().blackout.push(Blackout {
                from: "2026-12-31".parse().unwrap(),
                to: None,
                reason: None,
            })
        },
        "windows.blackout.2026-12-31",
        MoreRestrictive,
    );
    check(
        |s| s.windows.as_mut().unwrap().blackout.clear(),
        "windows.blackout.2026-12-25",
        MorePermissive,
    );
    check(
        |s| s.windows.as_mut().unwrap().blackout[0].reason = Some("Noël".into()),
        "windows.blackout.2026-12-25",
        TextOnly,
    );
}

#[test]
fn sla() {
    let sla = |s: &mut TermSheet| s.sla.as_mut().unwrap().clone();
    check(
        |s| s.sla.as_mut().unwrap().availability = "99.95".parse().unwrap(),
        "sla.availability",
        MorePermissive,
    );
    check(
        |s| s.sla.as_mut().unwrap().latency.as_mut().unwrap().ms = 200,
        "sla.latency",
        MorePermissive,
    );
    check(
        |s| s.sla.as_mut().unwrap().credits[1].credit = "50".parse().unwrap(),
        "sla.credits",
        MorePermissive,
    );
    check(
        |s| {
            s.sla.as_mut().unwrap().credits.pop();
        },
        "sla.credits",
        MoreRestrictive,
    );
    check(
        |s| {
            let mut x = sla(s);
            x.credits[0].credit = "5".parse().unwrap();
            x.credits[1].credit = "50".parse().unwrap();
            s.sla = Some(x);
        },
        "sla.credits",
        Mixed,
    );
    check(|s| s.sla = None, "sla", MoreRestrictive);
}

#[test]
fn notice_and_text() {
    check(|s| s.notice.days = 14, "notice.days", MoreRestrictive);
    check(|s| s.notice.days = 60, "notice.days", MorePermissive);
    check(
        |s| s.notice.on_expiry = OnExpiry::Suspend,
        "notice.on_expiry",
        MoreRestrictive,
    );
    check(
        |s| s.sections[1].body.push_str(" Really."),
        "sections.liability",
        TextOnly,
    );
    check(
        |s| {
            s.sections.remove(0);
        },
        "sections.acceptable-use",
        TextOnly,
    );
    check(|s| s.sections.reverse(), "sections", TextOnly);
    check(|s| s.title = "Weather".into(), "title", TextOnly);
    check(|s| s.version = "1.3.0".into(), "version", Neutral);
}

#[test]
fn prices() {
    let old = valid("health-records.toml");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut s = sheet("health-records.toml");
        let Some(Pricing::Inline(p)) = &mut s.pricing else {
            unreachable!()
        };
        f(p);
        diff(&old, &revalidate(&s))
    };
    let c = edit(&|p| p["unit_price"] = "0.02".into());
    assert_eq!(
        (c.len(), c[0].kind, c[0].path.as_str()),
        (1, PriceUp, "pricing.unit_price")
    );
    let c = edit(&|p| p["base_fee"] = "450".into());
    assert_eq!((c.len(), c[0].kind), (1, PriceDown));
    // More free units is cheaper.
    let c = edit(&|p| p["free_units"] = 20000.into());
    assert_eq!((c.len(), c[0].kind), (1, PriceDown));
    // Same amount written differently is no change.
    assert!(edit(&|p| p["base_fee"] = "490".into()).is_empty());
    let c = edit(&|p| p["currency"] = "CHF".into());
    assert_eq!((c.len(), c[0].kind), (1, PriceChanged));
    let c = edit(&|p| p["setup_fee"] = "99".into());
    assert_eq!((c.len(), c[0].kind), (1, PriceChanged));
    // A different price version by reference cannot be compared.
    check(
        |s| {
            if let Some(Pricing::Ref(r)) = &mut s.pricing {
                r.id = "weather-standard-2027".into();
            }
        },
        "pricing",
        PriceChanged,
    );
}

#[test]
fn a_realistic_new_version_summarises_by_kind() {
    let old = valid("weather-standard.yaml");
    let mut s = sheet("weather-standard.yaml");
    s.version = "2.0.0".into();
    s.limits.quota[0].requests = 50_000;
    s.notice.days = 45;
    s.grants[0]
        .operations
        .push(OperationRef::Id("getRadar".into()));
    let changes = diff(&old, &revalidate(&s));
    assert_eq!(
        kinds(&changes),
        [(MoreRestrictive, 1), (MorePermissive, 2), (Neutral, 1)]
    );
}
