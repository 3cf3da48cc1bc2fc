//! `decide`: one request under one compiled plan, decided by Cedar.

use cedar_policy::{Context, Decision as CedarDecision, Request, RestrictedExpression};
use jiff::Timestamp;
use serde::Serialize;

use crate::compile::CompiledPlan;
use crate::directory::Directory;
use crate::schema::{Kind, call_action, uid};

/// The reason given when no `permit` matched and no `forbid` fired.
pub const NOT_GRANTED: &str = "not-granted";

/// The facts of one request the gateway has resolved (all borrowed: nothing is copied
/// until the Cedar request is built).
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub app_id: &'a str,
    pub api: &'a str,
    pub operation: &'a str,
    /// Scopes of the credential.
    pub scopes: &'a [String],
    /// Region of the client address (see [`crate::RegionTable`]); `None` = no match.
    pub region: Option<&'a str>,
    /// Data categories the request touches.
    pub data_categories: &'a [String],
    /// Declared purpose of processing.
    pub purpose: Option<&'a str>,
    /// Data categories the caller holds valid consent for.
    pub consent: &'a [String],
    /// `api_key`, `oauth`, `mtls`, `signature`, …
    pub auth_method: &'a str,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allow: bool,
    /// Ids of the policies that determined the decision, sorted: the permits that
    /// matched (allow), the forbids that fired (deny), or [`NOT_GRANTED`].
    pub reasons: Vec<String>,
    /// Ids of policies whose evaluation failed (Cedar skips them); empty unless there
    /// is a bug or an operator policy reads an attribute a request lacks.
    pub errors: Vec<String>,
}

/// The local calendar facts of an instant in a plan's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// 1 = Monday … 7 = Sunday.
    pub weekday: i64,
    /// Minutes after local midnight, 0–1439.
    pub minute: i64,
    /// `YYYY-MM-DD`.
    pub date: String,
}

/// `now` in the plan's time zone (DST-correct: jiff's bundled IANA database).
pub fn local_time(plan: &CompiledPlan, now: Timestamp) -> LocalTime {
    let dt = plan.tz.to_datetime(now);
    LocalTime {
        weekday: i64::from(dt.weekday().to_monday_one_offset()),
        minute: i64::from(dt.hour()) * 60 + i64::from(dt.minute()),
        date: dt.date().to_string(),
    }
}

fn strings(items: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .iter()
            .map(|s| RestrictedExpression::new_string(s.clone())),
    )
}

/// The Cedar request for `facts` under `plan` at `now`: principal
/// `Application::"<app_id>"`, action `Action::"call"`, resource `Api::"<api>"`, and the
/// context of [`crate::SCHEMA_TEXT`] (`subscription` from the directory, local time from
/// the plan's zone).
pub fn cedar_request(
    plan: &CompiledPlan,
    dir: &Directory,
    facts: &RequestFacts<'_>,
    now: Timestamp,
) -> Request {
    let (principal, subscription) = dir.resolve(facts.app_id, &plan.key);
    let local = local_time(plan, now);
    let mut pairs = Vec::with_capacity(11);
    pairs.push((
        "operation".to_owned(),
        RestrictedExpression::new_string(facts.operation.to_owned()),
    ));
    pairs.push((
        "subscription".to_owned(),
        RestrictedExpression::new_entity_uid(subscription.clone()),
    ));
    pairs.push((
        "weekday".to_owned(),
        RestrictedExpression::new_long(local.weekday),
    ));
    pairs.push((
        "minute".to_owned(),
        RestrictedExpression::new_long(local.minute),
    ));
    pairs.push((
        "date".to_owned(),
        RestrictedExpression::new_string(local.date),
    ));
    if let Some(region) = facts.region {
        pairs.push((
            "region".to_owned(),
            RestrictedExpression::new_string(region.to_owned()),
        ));
    }
    pairs.push(("scopes".to_owned(), strings(facts.scopes)));
    pairs.push((
        "auth_method".to_owned(),
        RestrictedExpression::new_string(facts.auth_method.to_owned()),
    ));
    pairs.push(("data_categories".to_owned(), strings(facts.data_categories)));
    if let Some(purpose) = facts.purpose {
        pairs.push((
            "purpose".to_owned(),
            RestrictedExpression::new_string(purpose.to_owned()),
        ));
    }
    pairs.push(("consent".to_owned(), strings(facts.consent)));
    // Keys are distinct literals and values are plain literals: neither constructor can
    // fail, and the tests build the same request against the schema.
    let context = Context::from_pairs(pairs).expect("context keys are distinct");
    Request::new(
        principal,
        call_action().clone(),
        uid(Kind::Api, facts.api),
        context,
        None,
    )
    .expect("a request without schema always builds")
}

/// Decides one request: builds the Cedar request ([`cedar_request`]) and runs the Cedar
/// authorizer on the plan's verdict set ([`CompiledPlan::verdict_set`]) and the
/// directory's entities; a denial is evaluated again on the itemized set
/// ([`CompiledPlan::policy_set`]) for its reasons. No IO, no clock.
pub fn decide(
    plan: &CompiledPlan,
    dir: &Directory,
    facts: &RequestFacts<'_>,
    now: Timestamp,
) -> Decision {
    let request = cedar_request(plan, dir, facts, now);
    // First the small verdict set; only a denial pays for the itemized set, whose
    // satisfied forbids are the reasons.
    let verdict = plan
        .authorizer
        .is_authorized(&request, &plan.fast, &dir.entities);
    let verdict_allow = verdict.decision() == CedarDecision::Allow;
    let response = if verdict_allow {
        verdict
    } else {
        plan.authorizer
            .is_authorized(&request, &plan.policies, &dir.entities)
    };
    let allow = verdict_allow;
    let mut reasons: Vec<String> = if !allow && response.decision() == CedarDecision::Allow {
        // The two sets disagree (a bug the property tests guard against): stay closed
        // and name the merged forbid.
        vec![format!("{}/deny", plan.key)]
    } else {
        // The raw id (`PolicyId`'s `Display` escapes it character by character, which
        // cost ~5 % of an allowed call), i.e. the policy's `@id` as written.
        response
            .diagnostics()
            .reason()
            .map(|id| AsRef::<str>::as_ref(id).to_owned())
            .collect()
    };
    if reasons.is_empty() && !allow {
        reasons.push(NOT_GRANTED.to_owned());
    }
    reasons.sort_unstable();
    let mut errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(|e| match e {
            cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
        })
        .collect();
    errors.sort_unstable();
    Decision {
        allow,
        reasons,
        errors,
    }
}
