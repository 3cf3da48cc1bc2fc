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

/// Edits the inline price book of fixture `name` and returns every change found.
fn price_edit(name: &str, f: &dyn Fn(&mut serde_json::Value)) -> Vec<tollgate_terms::Change> {
    let old = valid(name);
    let mut s = sheet(name);
    let Some(Pricing::Inline(p)) = &mut s.pricing else {
        unreachable!()
    };
    f(p);
    diff(&old, &revalidate(&s))
}

/// The only change of an edit of the book of `name`: its path and kind.
fn price_change(name: &str, f: &dyn Fn(&mut serde_json::Value)) -> (String, ChangeKind) {
    let c = price_edit(name, f);
    assert_eq!(c.len(), 1, "{c:#?}");
    (c[0].path.clone(), c[0].kind)
}

#[test]
fn prices() {
    const H: &str = "health-records.toml";
    let charge = "pricing.charges.record-reads";
    let c = price_edit(H, &|p| {
        p["charges"][0]["price"]["unit_price"] = "0.02".into()
    });
    assert_eq!(
        (c.len(), c[0].kind, c[0].path.as_str()),
        (1, PriceUp, "pricing.charges.record-reads.price.unit_price")
    );
    assert_eq!(
        c[0].summary,
        "pricing.charges.record-reads.price.unit_price: 0.02 instead of 0.015"
    );
    assert_eq!(
        price_change(H, &|p| p["base_fee"]["amount"] = "450".into()),
        ("pricing.base_fee.amount".into(), PriceDown)
    );
    // More free units is cheaper.
    assert_eq!(
        price_change(H, &|p| p["charges"][0]["free_units"] = "20000".into()),
        (format!("{charge}.free_units"), PriceDown)
    );
    // The same amount written differently, or a default written out, is no change.
    assert!(price_edit(H, &|p| p["base_fee"]["amount"] = "490".into()).is_empty());
    assert!(price_edit(H, &|p| p["rounding"] = "half_up".into()).is_empty());
    // Another currency: no amount can be compared.
    let c = price_edit(H, &|p| {
        p["currency"] = "CHF".into();
        p["base_fee"]["amount"] = "450".into();
    });
    let got: Vec<(&str, ChangeKind)> = c.iter().map(|c| (c.path.as_str(), c.kind)).collect();
    assert_eq!(
        got,
        [
            ("pricing.currency", PriceChanged),
            ("pricing.base_fee.amount", PriceChanged)
        ]
    );
    assert_eq!(
        price_change(H, &|p| p["minimum_commitment"] = "100".into()),
        ("pricing.minimum_commitment".into(), PriceUp)
    );
    assert_eq!(
        price_change(H, &|p| p["trial_days"] = 30.into()),
        ("pricing.trial_days".into(), PriceDown)
    );
    assert_eq!(
        price_change(H, &|p| p["base_fee"]["timing"] = "in_arrears".into()),
        ("pricing.base_fee.timing".into(), PriceChanged)
    );
    assert_eq!(
        price_change(H, &|p| p["version"] = "2026-04".into()),
        ("pricing.version".into(), Neutral)
    );
    // Another pricing model cannot be compared.
    assert_eq!(
        price_change(H, &|p| {
            p["charges"][0]["price"] = serde_json::json!({
                "model": "package", "package_size": "1000", "package_price": "10" })
        }),
        (format!("{charge}.price"), PriceChanged)
    );
    // Charges are matched by id: a new one costs more, a removed one less.
    let extra = serde_json::json!({ "id": "exports", "meter": "record-reads",
        "price": { "model": "per_unit", "unit_price": "0.5" } });
    assert_eq!(
        price_change(H, &|p| {
            p["charges"]
                .as_array_mut()
                .unwrap()
                .insert(0, extra.clone())
        }),
        ("pricing.charges.exports".into(), PriceUp)
    );
    assert_eq!(
        price_change(H, &|p| p["charges"] = serde_json::json!([])),
        (charge.into(), PriceDown)
    );
    assert_eq!(
        price_change(H, &|p| p["meters"][0]["filter"]["status"] =
            serde_json::json!([])),
        ("pricing.meters.record-reads".into(), PriceChanged)
    );
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
fn tiered_and_percentage_prices() {
    const F: &str = "fintech-payments.json";
    let price = "pricing.charges.api-calls.price";
    let fees = "pricing.charges.payment-fees.price";
    // Same bounds: tier by tier.
    assert_eq!(
        price_change(F, &|p| {
            p["charges"][0]["price"]["tiers"][1]["unit_price"] = "0.10".into()
        }),
        (format!("{price}.tiers[1].unit_price"), PriceDown)
    );
    assert_eq!(
        price_change(F, &|p| {
            p["charges"][0]["price"]["tiers"][2]["flat_fee"] = "75".into()
        }),
        (format!("{price}.tiers[2].flat_fee"), PriceUp)
    );
    // Moved bounds: judged on what each quantity costs. The dear first tier covering
    // more is dearer; a cheap tier starting earlier is cheaper.
    let bound = |v: &'static str| {
        move |p: &mut serde_json::Value| p["charges"][0]["price"]["tiers"][0]["up_to"] = v.into()
    };
    assert_eq!(
        price_change(F, &bound("20000")),
        (format!("{price}.tiers"), PriceUp)
    );
    assert_eq!(
        price_change(F, &bound("5000")),
        (format!("{price}.tiers"), PriceDown)
    );
    // Cheaper for small quantities, dearer for large ones.
    assert_eq!(
        price_change(F, &|p| {
            p["charges"][0]["price"]["tiers"] = serde_json::json!([
                { "up_to": "5000", "unit_price": "0.10" },
                { "up_to": null, "unit_price": "0.25" }
            ])
        }),
        (format!("{price}.tiers"), PriceChanged)
    );
    // Splitting a tier in two at the same price changes nothing anyone pays.
    assert_eq!(
        price_change(F, &|p| {
            let t = p["charges"][0]["price"]["tiers"].as_array_mut().unwrap();
            t.insert(
                0,
                serde_json::json!({ "up_to": "5000", "unit_price": "0.20" }),
            );
        }),
        (format!("{price}.tiers"), Neutral)
    );
    assert_eq!(
        price_change(F, &|p| p["charges"][1]["price"]["percent"] = "1.9".into()),
        (format!("{fees}.percent"), PriceUp)
    );
    // No largest fee is no cap: dearer.
    assert_eq!(
        price_change(F, &|p| {
            p["charges"][1]["price"]
                .as_object_mut()
                .unwrap()
                .remove("max_fee");
        }),
        (format!("{fees}.max_fee"), PriceUp)
    );
    assert_eq!(
        price_change(F, &|p| p["charges"][1]["price"]["free_events"] = 5.into()),
        (format!("{fees}.free_events"), PriceUp)
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
