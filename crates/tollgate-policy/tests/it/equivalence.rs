//! The rules live in Cedar: the stock `cedar_policy::Authorizer`, run on the compiled
//! Cedar *text* (re-parsed), the operator file and the directory's entities with a
//! request built independently from the documented schema (JSON context, validated),
//! decides exactly like `decide` for generated requests and instants.

use std::sync::LazyLock;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, EntityUid, PolicyId, PolicySet, Request,
};
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
    stock_on(&set, terms, f, now)
}

/// The stock authorizer on `set` (parsed Cedar text); reasons and errors as `@id`s.
fn stock_on(set: &PolicySet, terms: &PlanTerms, f: &Facts, now: Timestamp) -> Decision {
    let response =
        Authorizer::new().is_authorized(&documented_request(terms, f, now), set, DIR.entities());
    let allow = response.decision() == CedarDecision::Allow;
    let id_of = |id: &PolicyId| set.policy(id).unwrap().annotation("id").unwrap().to_owned();
    let mut reasons: Vec<String> = response.diagnostics().reason().map(id_of).collect();
    if reasons.is_empty() && !allow {
        reasons.push(NOT_GRANTED.into());
    }
    reasons.sort();
    let mut errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(|e| match e {
            cedar_policy::AuthorizationError::PolicyEvaluationError(e) => id_of(e.policy_id()),
        })
        .collect();
    errors.sort();
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
        // Operations of one API called on another, and unknown ones.
        ("geo", "getPatient"),
        ("records", "lookup"),
        ("weather", "submitJob"),
        ("nowhere", "getForecast"),
        ("weather", "purgeCache"),
    ];
    (
        pick(&["alpha", "beta", "gamma", "delta", "nobody"]),
        proptest::sample::select(calls.to_vec()),
        subset(&[
            "weather:read",
            "weather:history",
            "records:read",
            "admin",
            "other",
        ]),
        proptest::option::of(pick(&["eu-west", "eu-central", "us-east", "embargo-a"])),
        subset(&["health", "contact", "location"]),
        proptest::option::of(pick(&["treatment", "research", "marketing"])),
        pick(&["api_key", "oauth", "mtls"]),
        subset(&["health", "contact"]),
    )
        .prop_map(
            |(app, (api, op), scopes, region, consent, purpose, auth, categories)| Facts {
                app_id: app.into(),
                api: api.into(),
                operation: op.into(),
                scopes,
                region: region.map(String::from),
                data_categories: categories,
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
    // The operator permit allows alone (an operation the plan does not grant) and beside
    // the grant.
    let monday = "2026-11-02T09:30:00Z".parse::<Timestamp>().unwrap(); // 10:30 in Paris
    for (op, scopes, reasons) in [
        ("purgeCache", &[][..], &["operator/mtls-forecast"][..]),
        (
            "getForecast",
            &["weather:read"][..],
            &["operator/mtls-forecast", "weather-pro@3f1c9a0e/grant"][..],
        ),
    ] {
        let mut f = Facts::new("alpha", "weather", op).scopes(scopes);
        f.auth_method = "mtls".into();
        let d = decide(&RICH[0].0, &DIR, &f.facts(), monday);
        assert_eq!(d, stock_on(&RICH[0].1, &TERMS[0], &f, monday));
        assert!(d.allow && d.reasons == reasons, "{d:?}");
    }
}

/// Operator policies of every shape the specialisation meets: a `permit` (so the verdict
/// set keeps the grant and the merged forbid apart), atoms on every kind of attribute,
/// shapes it does not fold (`like`, `!=`), and a policy that fails at run time for an
/// application without subscription (Cedar then skips it and reports it).
const RICH_OPERATOR: &str = r#"
@id("operator/embargo")
forbid (principal, action, resource)
when { context has region && ["embargo-a", "embargo-b"].contains(context.region) };

@id("operator/mtls-forecast")
permit (principal, action, resource == Api::"weather")
when { context.auth_method == "mtls" && ["getForecast", "purgeCache"].contains(context.operation) && 600 <= context.minute };

@id("operator/no-deletes")
forbid (principal, action, resource)
when { context.operation like "delete*" && !context.scopes.contains("admin") };

@id("operator/weekend-lab")
forbid (principal, action, resource)
when { context.operation == "getLabResults" && context.weekday > 5 && context.data_categories.contains("health") };

@id("operator/no-oauth-research")
forbid (principal, action, resource)
when { context has purpose && context.purpose == "research" && context.auth_method != "oauth" };

@id("operator/inactive")
forbid (principal, action, resource)
when { !context.subscription.active };
"#;

static RICH: LazyLock<Vec<(CompiledPlan, PolicySet)>> = LazyLock::new(|| {
    let operator = tollgate_policy::OperatorPolicies::parse(RICH_OPERATOR).unwrap();
    TERMS
        .iter()
        .map(|t| {
            let plan = tollgate_policy::compile(t, &operator).unwrap();
            let set = format!("{}\n{RICH_OPERATOR}", plan.cedar_text())
                .parse()
                .unwrap();
            (plan, set)
        })
        .collect()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    #[test]
    fn decide_equals_the_stock_authorizer_with_rich_operator_policies(
        which in 0usize..3,
        f in facts(),
        now in instant(),
    ) {
        let (plan, set) = &RICH[which];
        let ours = decide(plan, &DIR, &f.facts(), now);
        prop_assert_eq!(ours, stock_on(set, &TERMS[which], &f, now));
    }
}

#[test]
fn window_edges_decide_like_the_stock_authorizer() {
    // Where the folding splits local time into intervals: the minute before, at and after
    // every threshold of each plan's window (and midnight), on every day of a week with a
    // blackout date, in the plan's zone; with facts every other clause allows (the window
    // decides) and with a region that is denied.
    let cases = [
        (
            0,
            Facts::new("alpha", "weather", "getForecast").scopes(&["weather:read"]),
        ),
        (
            1,
            Facts::new("alpha", "records", "getPatient")
                .scopes(&["records:read"])
                .consent(&["health", "contact"])
                .purpose("treatment"),
        ),
        (2, Facts::new("beta", "batch", "getJob").region(None)),
        (
            0,
            Facts::new("alpha", "weather", "getForecast").region(Some("us-east")),
        ),
    ];
    let stock_sets: Vec<PolicySet> = PLANS
        .iter()
        .map(|p| format!("{}\n{OPERATOR}", p.cedar_text()).parse().unwrap())
        .collect();
    let mut allowed = 0;
    let mut checked = 0;
    for (which, f) in &cases {
        let terms = &TERMS[*which];
        let mut edges = vec![0i32, 1439];
        for h in terms.window.iter().flat_map(|w| &w.allow) {
            edges.extend([i32::from(h.from_minute), i32::from(h.to_minute)]);
        }
        let minutes: std::collections::BTreeSet<i32> = edges
            .iter()
            .flat_map(|e| [e - 1, *e, e + 1])
            .filter(|m| (0..1440).contains(m))
            .collect();
        let tz = PLANS[*which].time_zone();
        for day in 21..28 {
            for &m in &minutes {
                let local = jiff::civil::date(2026, 12, day).at(
                    i8::try_from(m / 60).unwrap(),
                    i8::try_from(m % 60).unwrap(),
                    0,
                    0,
                );
                let now = tz.to_timestamp(local).unwrap();
                let ours = decide(&PLANS[*which], &DIR, &f.facts(), now);
                let theirs = stock_on(&stock_sets[*which], terms, f, now);
                assert_eq!(ours, theirs, "plan {which} {f:?} at {local}");
                allowed += usize::from(ours.allow);
                checked += 1;
            }
        }
    }
    assert!(allowed > 20 && allowed < checked, "{allowed} of {checked}");
}

#[test]
fn rich_operator_outcomes_are_exercised() {
    // Guard against a vacuous equivalence: errors, the operator permit and the
    // unfolded shapes all show up.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3_000 {
        let which = (0usize..3).new_tree(&mut runner).unwrap().current();
        let f = facts().new_tree(&mut runner).unwrap().current();
        let now = instant().new_tree(&mut runner).unwrap().current();
        let d = decide(&RICH[which].0, &DIR, &f.facts(), now);
        seen.extend(d.errors.iter().map(|e| format!("error:{e}")));
        seen.extend(
            d.reasons
                .iter()
                .filter(|r| r.starts_with("operator/"))
                .map(|r| format!("{}:{r}", d.allow)),
        );
    }
    for want in [
        "error:operator/inactive",
        "false:operator/inactive",
        "false:operator/no-deletes",
        "false:operator/no-oauth-research",
        "false:operator/embargo",
    ] {
        assert!(seen.contains(want), "{want} never reached: {seen:?}");
    }
    // The operator permit allows alone (an operation the plan does not grant) and beside
    // the grant.
    let monday = "2026-11-02T09:30:00Z".parse::<Timestamp>().unwrap(); // 10:30 in Paris
    for (op, scopes, reasons) in [
        ("purgeCache", &[][..], &["operator/mtls-forecast"][..]),
        (
            "getForecast",
            &["weather:read"][..],
            &["operator/mtls-forecast", "weather-pro@3f1c9a0e/grant"][..],
        ),
    ] {
        let mut f = Facts::new("alpha", "weather", op).scopes(scopes);
        f.auth_method = "mtls".into();
        let d = decide(&RICH[0].0, &DIR, &f.facts(), monday);
        assert_eq!(d, stock_on(&RICH[0].1, &TERMS[0], &f, monday));
        assert!(d.allow && d.reasons == reasons, "{d:?}");
    }
}
