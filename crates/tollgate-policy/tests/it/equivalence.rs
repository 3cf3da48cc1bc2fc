//! The rules live in Cedar: the stock `cedar_policy::Authorizer`, run on the compiled
//! Cedar *text* (re-parsed), the operator file and the directory's entities with a
//! request built independently from the documented schema (JSON context, validated),
//! decides exactly like `decide` for generated requests and instants.

use std::sync::LazyLock;

use cedar_policy::{Authorizer, Context, Decision as CedarDecision, EntityUid, PolicySet, Request};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};
use tollgate_policy::{
    CompiledPlan, Decision, Directory, NOT_GRANTED, PlanTerms, call_action, cedar_request, decide,
    schema,
};

use crate::fixtures::{
    Facts, OPERATOR, batch_terms, directory, health_terms, plans, subscriptions, weather_terms,
};

/// The documented request: principal `Application::"<app>"`, action `Action::"call"`,
/// resource `Api::"<api>"`; `weekday`/`minute`/`date` local to the plan's zone (UTC without
/// a window); `subscription` the app's active subscription to the plan, else any, else
/// `Subscription::""`.
fn documented_request(terms: &PlanTerms, f: &Facts, now: Timestamp) -> Request {
    let tz = match &terms.window {
        Some(w) => TimeZone::get(&w.tz).unwrap(),
        None => TimeZone::UTC,
    };
    let local = tz.to_datetime(now);
    let subs = subscriptions();
    let mine: Vec<_> = subs
        .iter()
        .filter(|s| s.app_id == f.app_id && s.plan_key == terms.key)
        .collect();
    let sub = mine
        .iter()
        .find(|s| s.active)
        .or(mine.first())
        .map_or("", |s| s.subscription_id.as_str());
    let mut ctx = json!({
        "operation": f.operation,
        "subscription": {"__entity": {"type": "Subscription", "id": sub}},
        "weekday": i64::from(local.weekday().to_monday_one_offset()),
        "minute": i64::from(local.hour()) * 60 + i64::from(local.minute()),
        "date": local.date().to_string(),
        "scopes": f.scopes,
        "auth_method": f.auth_method,
        "data_categories": f.data_categories,
        "consent": f.consent,
    });
    let obj = ctx.as_object_mut().unwrap();
    if let Some(r) = &f.region {
        obj.insert("region".into(), Value::from(r.as_str()));
    }
    if let Some(p) = &f.purpose {
        obj.insert("purpose".into(), Value::from(p.as_str()));
    }
    let context = Context::from_json_value(ctx, Some((schema(), call_action()))).unwrap();
    let principal: EntityUid = format!("Application::{:?}", f.app_id).parse().unwrap();
    let resource: EntityUid = format!("Api::{:?}", f.api).parse().unwrap();
    Request::new(
        principal,
        call_action().clone(),
        resource,
        context,
        Some(schema()),
    )
    .unwrap()
}

fn stock(plan: &CompiledPlan, terms: &PlanTerms, f: &Facts, now: Timestamp) -> Decision {
    let set: PolicySet = format!("{}\n{OPERATOR}", plan.cedar_text())
        .parse()
        .unwrap();
    let response =
        Authorizer::new().is_authorized(&documented_request(terms, f, now), &set, DIR.entities());
    let allow = response.decision() == CedarDecision::Allow;
    let mut reasons: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|id| set.policy(id).unwrap().annotation("id").unwrap().to_owned())
        .collect();
    if reasons.is_empty() && !allow {
        reasons.push(NOT_GRANTED.into());
    }
    reasons.sort();
    let errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(|e| e.to_string())
        .collect();
    Decision {
        allow,
        reasons,
        errors,
    }
}

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(items.to_vec())
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(items.to_vec(), 0..=items.len())
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

pub(crate) fn facts() -> impl Strategy<Value = Facts> {
    let calls: &'static [(&str, &str)] = &[
        ("weather", "getForecast"),
        ("weather", "getHistory"),
        ("weather", "deleteStation"),
        ("records", "getPatient"),
        ("records", "getLabResults"),
        ("records", "listPatients"),
        ("geo", "lookup"),
        ("batch", "submitJob"),
        ("batch", "getJob"),
    ];
    (
        pick(&["alpha", "beta", "gamma", "delta", "nobody"]),
        proptest::sample::select(calls.to_vec()),
        subset(&["weather:read", "weather:history", "records:read", "other"]),
        proptest::option::of(pick(&["eu-west", "eu-central", "us-east", "embargo-a"])),
        subset(&["health", "contact", "location"]),
        proptest::option::of(pick(&["treatment", "research", "marketing"])),
        pick(&["api_key", "oauth", "mtls"]),
    )
        .prop_map(
            |(app, (api, op), scopes, region, consent, purpose, auth)| Facts {
                app_id: app.into(),
                api: api.into(),
                operation: op.into(),
                scopes,
                region: region.map(String::from),
                data_categories: vec![],
                purpose: purpose.map(String::from),
                consent,
                auth_method: auth.into(),
            },
        )
}

/// Instants over 2026–2027 (both DST switches of both zones), to the second.
pub(crate) fn instant() -> impl Strategy<Value = Timestamp> {
    let start = "2026-01-01T00:00:00Z"
        .parse::<Timestamp>()
        .unwrap()
        .as_second();
    (start..start + 2 * 365 * 86_400).prop_map(|s| Timestamp::from_second(s).unwrap())
}

/// Built once: the cases exercise decisions, not construction.
static PLANS: LazyLock<Vec<CompiledPlan>> = LazyLock::new(plans);
static DIR: LazyLock<Directory> = LazyLock::new(directory);
static TERMS: LazyLock<[PlanTerms; 3]> =
    LazyLock::new(|| [weather_terms(), health_terms(), batch_terms()]);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    #[test]
    fn decide_equals_the_stock_authorizer(which in 0usize..3, f in facts(), now in instant()) {
        let ours = decide(&PLANS[which], &DIR, &f.facts(), now);
        let theirs = stock(&PLANS[which], &TERMS[which], &f, now);
        // The merged verdict set decides like the itemized text.
        let verdict = Authorizer::new().is_authorized(&documented_request(&TERMS[which], &f, now), PLANS[which].verdict_set(), DIR.entities());
        prop_assert_eq!(verdict.decision() == CedarDecision::Allow, theirs.allow);
        prop_assert_eq!(ours, theirs);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    /// `decide` builds its request without the schema (no per-request validation): the
    /// requests it builds must still validate against it.
    #[test]
    fn decide_requests_validate_against_the_schema(which in 0usize..3, f in facts(), now in instant()) {
        let request = cedar_request(&PLANS[which], &DIR, &f.facts(), now);
        let validated = Request::new(
            request.principal().unwrap().clone(),
            request.action().unwrap().clone(),
            request.resource().unwrap().clone(),
            request.context().unwrap().clone(),
            Some(schema()),
        );
        prop_assert!(validated.is_ok(), "{:?}", validated.err());
    }
}

#[test]
fn both_outcomes_are_exercised() {
    // Guard against a vacuous equivalence: the generators reach allows and each reason.
    let plans = plans();
    let dir = directory();
    let mut seen = std::collections::BTreeSet::new();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..3_000 {
        let which = (0usize..3).new_tree(&mut runner).unwrap().current();
        let f = facts().new_tree(&mut runner).unwrap().current();
        let now = instant().new_tree(&mut runner).unwrap().current();
        let d = decide(&plans[which], &dir, &f.facts(), now);
        for r in d.reasons {
            let name = r.split_once('/').map_or(r.clone(), |(_, n)| n.to_owned());
            seen.insert(format!("{}:{name}", d.allow));
        }
    }
    for want in [
        "true:grant",
        "false:window",
        "false:region",
        "false:scope",
        "false:subscription",
        "false:purpose",
        "false:embargo",
        "false:not-granted",
        "false:consent/location",
    ] {
        assert!(seen.contains(want), "{want} never reached: {seen:?}");
    }
}
