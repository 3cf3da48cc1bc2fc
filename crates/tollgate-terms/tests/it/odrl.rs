//! ODRL export: the JSON-LD shape, the embedded context covering every term used, and
//! the constraints that carry the machine clauses.

use crate::common::*;
use serde_json::Value;
use tollgate_terms::odrl::{self, Acceptance, ODRL_TERMS};

/// Every key of `v` (outside `@context`) must be a JSON-LD keyword or a term the
/// embedded context defines or a compact IRI with a defined prefix, and every value in
/// a `@vocab`-typed position an ODRL term or such a compact IRI: so a JSON-LD processor
/// expands the document offline, with no term dropped.
fn check_terms(v: &Value, ctx: &serde_json::Map<String, Value>) {
    let defined = |k: &str| {
        k.starts_with('@')
            || ctx.contains_key(k)
            || k.split_once(':').is_some_and(|(p, _)| ctx.contains_key(p))
    };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "@context" {
                    continue;
                }
                assert!(defined(k), "term {k:?} is not defined by the context");
                if ["action", "leftOperand", "operator", "unit"].contains(&k.as_str()) {
                    let s = x.as_str().unwrap();
                    assert!(
                        ODRL_TERMS.contains(&s) || s.starts_with("tg:"),
                        "{k}: {s:?} is not an ODRL or profile term"
                    );
                }
                check_terms(x, ctx);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| check_terms(x, ctx)),
        _ => {}
    }
}

#[test]
fn offers_have_the_odrl_shape() {
    for name in FIXTURES {
        let v = valid(name);
        let o = odrl::offer(&v, "urn:tollgate:org:acme");
        assert_eq!(o["@type"], "Offer");
        assert_eq!(o["uid"], odrl::sheet_uid(&v));
        assert_eq!(o["tg:sha256"], v.sha256());
        let ctx = o["@context"].as_object().expect("embedded context object");
        assert_eq!(ctx["@vocab"], "http://www.w3.org/ns/odrl/2/");
        let perms = o["permission"].as_array().unwrap();
        assert_eq!(perms.len(), v.operations().len());
        for p in perms {
            assert_eq!(p["action"], "use");
            assert!(
                p["target"]
                    .as_str()
                    .unwrap()
                    .starts_with("urn:tollgate:api:")
            );
            assert!(!p["target"].as_str().unwrap().contains(['{', ' ']));
        }
        check_terms(&o, ctx);
    }
}

#[test]
fn constraints_carry_the_clauses() {
    let v = valid("weather-standard.yaml");
    let o = odrl::offer(&v, "urn:tollgate:org:acme");
    let p = &o["permission"][0];
    let cs = p["constraint"].as_array().unwrap();
    let find = |left: &'static str| cs.iter().filter(move |c| c["leftOperand"] == left);
    // 10/s burst 20, 100 000 per calendar month, 1 000 000 per billing period.
    let counts: Vec<(i64, &str)> = find("count")
        .map(|c| {
            (
                c["rightOperand"]["@value"].as_i64().unwrap(),
                c["unit"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            (10, "tg:perSecond"),
            (100_000, "tg:perCalendarMonth"),
            (1_000_000, "tg:perBillingPeriod")
        ]
    );
    let windows = cs.iter().find(|c| c.get("or").is_some()).unwrap();
    assert_eq!(windows["tg:timeZone"], "Europe/Paris");
    let and = windows["or"][0]["and"].as_array().unwrap();
    assert_eq!(and[0]["rightOperand"].as_array().unwrap().len(), 5);
    assert_eq!(and[1]["rightOperand"]["@value"], "08:00:00");
    assert_eq!(
        find("purpose").next().unwrap()["rightOperand"][0]["@id"],
        "https://w3id.org/dpv#ServiceProvision"
    );
    assert_eq!(
        find("tg:scope").next().unwrap()["rightOperand"][0],
        "weather:read"
    );
    // Christmas is a prohibition on every target.
    let pr = &o["prohibition"][0];
    assert_eq!(pr["target"].as_array().unwrap().len(), 3);
    assert_eq!(pr["constraint"][0]["rightOperand"]["@value"], "2026-12-25");
    // The route operation's target is escaped.
    assert_eq!(
        o["permission"][2]["target"],
        "urn:tollgate:api:weather:op:GET%20%2Falerts%2F%7Bregion%7D"
    );
}

#[test]
fn consent_and_regions() {
    let v = valid("health-records.toml");
    let o = odrl::offer(&v, "urn:tollgate:org:clinic");
    let p = &o["permission"][0];
    assert_eq!(p["duty"][0]["action"], "obtainConsent");
    assert_eq!(
        p["duty"][1]["constraint"][0]["rightOperand"]["@value"],
        "P0D"
    );
    assert_eq!(p["tg:sensitivity"], "sensitive");
    let spatial = p["constraint"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["leftOperand"] == "spatial")
        .unwrap();
    assert_eq!(spatial["rightOperand"][0]["@id"], "urn:tollgate:region:eu");
    // The consent-verification operation needs no consent.
    let verify = &o["permission"][2];
    assert!(
        verify["duty"]
            .as_array()
            .is_none_or(|d| d.iter().all(|x| x["action"] != "obtainConsent"))
    );
}

#[test]
fn agreements_name_both_parties() {
    let v = valid("fintech-payments.json");
    let a = odrl::agreement(
        &v,
        "urn:tollgate:org:bank",
        &Acceptance {
            uid: "urn:tollgate:acceptance:0190",
            assignee: "urn:tollgate:subscription:0191",
            accepted_at: "2026-02-03T10:00:00Z".parse().unwrap(),
        },
    );
    assert_eq!(a["@type"], "Agreement");
    assert_eq!(a["uid"], "urn:tollgate:acceptance:0190");
    assert_eq!(a["assignee"], "urn:tollgate:subscription:0191");
    assert_eq!(a["issued"], "2026-02-03T10:00:00Z");
    assert_eq!(a["tg:offer"], odrl::sheet_uid(&v));
    check_terms(&a, a["@context"].as_object().unwrap());
}
