//! Usage that providers report themselves (`POST /v1/usage/events`): CloudEvents in a
//! batch of up to 1 000, each accepted into the ledger's log of its subscription's mode,
//! recognised as a duplicate of an event already there (by `source` and `id`, for as long
//! as the ledger keeps the event — far beyond the 35 days promised), or rejected with its
//! reason; one bad event never costs the rest of the batch. The answer comes once the
//! accepted events are durable.

use super::WriteErrors;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::ledger::Ack;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use time::Duration;
use tollgate_core::roles::Action;
use tollgate_core::usage::{
    FieldValue, SPEC_VERSION, UsageData, UsageEvent, format_time, parse_time,
};
use tollgate_core::{ApiId, ErrorCode, SubscriptionId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most events per batch.
pub const MAX_BATCH: usize = 1000;
/// How far in the past an event's time may lie.
pub const MAX_AGE: Duration = Duration::days(35);
/// How far in the future an event's time may lie (clock skew).
pub const MAX_AHEAD: Duration = Duration::minutes(5);

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(ingest, usage))
}

/// A usage event a provider reports (CloudEvents 1.0, JSON format).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedEvent {
    /// `1.0`.
    pub specversion: String,
    /// Unique within `source`: sending the same (`source`, `id`) again is a duplicate.
    pub id: String,
    /// `/providers/<your org id>` or a path below it.
    pub source: String,
    /// Your event type, e.g. `com.example.payment.settled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The subscription the usage belongs to (one of your plans').
    pub subject: String,
    /// When the usage happened, RFC 3339; at most 35 days ago and 5 minutes ahead.
    pub time: String,
    /// `application/json` (the default).
    #[serde(default)]
    pub datacontenttype: Option<String>,
    pub data: ReportedData,
}

/// What a reported event says.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedData {
    /// Which operation of the plan the usage counts against (default `reported`).
    #[serde(default)]
    pub operation_id: Option<String>,
    /// The API, when the plan covers several (default: the plan's only API).
    #[serde(default)]
    pub api_id: Option<String>,
    /// Outcome as an HTTP status (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// Meter fields: strings (amounts as decimal strings, `"12.50"`), booleans, integers
    /// within ±2^53; names of ASCII letters, digits, `_`, `-`, `.`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, FieldValue>,
}

/// What became of one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResult {
    /// Position in the batch.
    pub index: usize,
    /// The event's `id`, when it could be read.
    pub id: Option<String>,
    /// `accepted`, `duplicate` or `rejected`.
    pub status: &'static str,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `live` or `test`: the log it went to (accepted events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<&'static str>,
}

/// Answer of `POST /v1/usage/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

/// Reports usage: a JSON array of up to 1 000 CloudEvents, each judged on its own.
#[utoipa::path(post, path = "/v1/usage/events", tag = "usage",
    request_body(content = Vec<ReportedEvent>, description = "A CloudEvents JSON batch"),
    responses((status = 200, body = IngestResult), WriteErrors), security(("bearer" = [])))]
async fn ingest(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(batch): ApiJson<Vec<serde_json::Value>>,
) -> Result<Json<IngestResult>, ApiError> {
    if batch.len() > MAX_BATCH {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("at most {MAX_BATCH} events per batch (got {})", batch.len()),
        ));
    }
    let ledger = st.ledger.get().cloned().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unavailable,
            "this marketplace runs without a usage ledger",
        )
    })?;
    let now = st.now();
    let mut results: Vec<EventResult> = Vec::with_capacity(batch.len());
    // Each event checked on its own; the valid ones kept with their log.
    let mut valid = Vec::new();
    let mut tx = st.store.read().await?;
    for (index, raw) in batch.into_iter().enumerate() {
        let id = raw.get("id").and_then(|v| v.as_str()).map(str::to_owned);
        let reject = |why: String| EventResult {
            index,
            id: id.clone(),
            status: "rejected",
            reason: Some(why),
            log: None,
        };
        let event: ReportedEvent = match serde_path_to_error::deserialize(raw) {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().to_string();
                results.push(reject(format!("{path}: {}", e.into_inner())));
                continue;
            }
        };
        match check(&mut tx, &caller, event, now, |s| ledger.clock_time(s)).await? {
            Ok(e) => {
                valid.push((index, e));
                results.push(EventResult {
                    index,
                    id,
                    status: "accepted",
                    reason: None,
                    log: None,
                });
            }
            Err(why) => results.push(reject(why)),
        }
    }
    // Deduplicate against the index, what is appended but not yet indexed, and earlier
    // events of this batch — all under the lock, so concurrent batches see each other.
    let keys: Vec<(String, String)> = valid
        .iter()
        .map(|(_, e)| (e.source.clone(), e.id.clone()))
        .collect();
    let known = tx.usage_events_known(&keys).await?;
    drop(tx);
    let mut reported = ledger.reported.lock().await;
    let mut seen = HashSet::new();
    let mut waits = Vec::new();
    for (index, event) in valid {
        let key = (event.source.clone(), event.id.clone());
        if known.contains(&key) || reported.contains(&key) || !seen.insert(key.clone()) {
            results[index].status = "duplicate";
            continue;
        }
        let log = ledger.log_of(event.data.mode);
        results[index].log = Some(log.name);
        let (done, wait) = tokio::sync::oneshot::channel();
        log.append(event.leaf(), Ack::Reply(done)).await;
        reported.insert(key.clone());
        waits.push((index, key, wait));
    }
    // The answer says `accepted` only for what is on disk.
    for (index, key, wait) in waits {
        let durable = matches!(wait.await, Ok(Ok(_)));
        if !durable {
            reported.remove(&key);
            results[index].status = "rejected";
            results[index].log = None;
            results[index].reason =
                Some("the ledger could not store the event; send it again".to_owned());
        }
    }
    drop(reported);
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    Ok(Json(IngestResult {
        accepted: count("accepted"),
        duplicates: count("duplicate"),
        rejected: count("rejected"),
        results,
    }))
}

/// Checks one event and builds its ledger form, or says why not.
async fn check(
    tx: &mut tollgate_store::Tx,
    caller: &Caller,
    e: ReportedEvent,
    now: time::OffsetDateTime,
    clock: impl Fn(SubscriptionId) -> Option<time::OffsetDateTime>,
) -> Result<Result<UsageEvent, String>, ApiError> {
    if e.specversion != SPEC_VERSION {
        return Ok(Err("specversion must be \"1.0\"".to_owned()));
    }
    if e.datacontenttype
        .as_deref()
        .is_some_and(|t| t != "application/json")
    {
        return Ok(Err("datacontenttype must be application/json".to_owned()));
    }
    if e.kind.is_empty() || e.kind.len() > 200 {
        return Ok(Err("type must be 1 to 200 characters".to_owned()));
    }
    let Some(time) = parse_time(&e.time) else {
        return Ok(Err("time is not an RFC 3339 timestamp".to_owned()));
    };
    // A subscription on a test clock lives at the clock's time.
    let now = e
        .subject
        .parse::<SubscriptionId>()
        .ok()
        .and_then(clock)
        .unwrap_or(now);
    if time < now - MAX_AGE {
        return Ok(Err("time is more than 35 days in the past".to_owned()));
    }
    if time > now + MAX_AHEAD {
        return Ok(Err("time is more than 5 minutes in the future".to_owned()));
    }
    let Ok(sub_id) = e.subject.parse::<SubscriptionId>() else {
        return Ok(Err("subject is not a subscription id".to_owned()));
    };
    // Another provider's subscription reads exactly like a missing one.
    let Some(sub) = tx.get_subscription(sub_id).await? else {
        return Ok(Err("no such subscription among your plans'".to_owned()));
    };
    if caller
        .require(sub.provider_org_id, Action::ManageApis, "subscription")
        .is_err()
    {
        return Ok(Err("no such subscription among your plans'".to_owned()));
    }
    let namespace = format!("/providers/{}", sub.provider_org_id);
    if !(e.source == namespace || e.source.starts_with(&format!("{namespace}/"))) {
        return Ok(Err(format!(
            "source must be {namespace} or a path below it"
        )));
    }
    let Some(plan) = tx.get_plan(sub.plan_id).await? else {
        return Ok(Err("the subscription's plan is gone".to_owned()));
    };
    let api_id: ApiId = match (&e.data.api_id, plan.apis.as_slice()) {
        (Some(a), _) => match a.parse() {
            Ok(id) if plan.apis.iter().any(|p| p.api_id == id) => id,
            _ => {
                return Ok(Err(
                    "data.api_id is not an API of the subscription's plan".to_owned()
                ));
            }
        },
        (None, [only]) => only.api_id,
        (None, _) => {
            return Ok(Err(
                "the plan covers several APIs: say which in data.api_id".to_owned(),
            ));
        }
    };
    let event = UsageEvent {
        data: UsageData {
            api_id,
            app_id: sub.app_id,
            client_ip_hash: None,
            consumer_org_id: sub.consumer_org_id,
            credential_id: format!("reported:{}", caller.user.id),
            fields: e.data.fields,
            latency_us: 0,
            method: "REPORT".to_owned(),
            mode: sub.mode,
            operation_id: e.data.operation_id.unwrap_or_else(|| "reported".to_owned()),
            policy_ids: Vec::new(),
            provider_org_id: sub.provider_org_id,
            refunded: false,
            request_bytes: 0,
            response_bytes: 0,
            snapshot_version: 0,
            status: e.data.status.unwrap_or(200),
            subscription_id: sub.id,
            terms_sha256: sub.terms_sha256,
        },
        datacontenttype: "application/json".to_owned(),
        id: e.id,
        source: e.source,
        specversion: SPEC_VERSION.to_owned(),
        subject: sub.id.to_string(),
        time: format_time(time),
        kind: e.kind,
    };
    Ok(event.validate().map(|()| event).map_err(|e| e.to_string()))
}

/// Query of `GET /v1/usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    pub subscription_id: String,
    /// `day` or `month` (UTC; default `month`).
    pub period: Option<String>,
    /// Periods starting at or after this instant (RFC 3339; default: the start of the
    /// current period).
    pub from: Option<String>,
    /// Periods starting before this instant (RFC 3339; default: no bound).
    pub to: Option<String>,
}

/// One aggregate.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageAggregate {
    /// Start of the period (RFC 3339, UTC).
    pub period_start: String,
    pub operation_id: String,
    /// `calls`, `request_bytes`, `response_bytes`, `latency_us` or `field:<name>`.
    pub meter: String,
    /// Events counted.
    pub count: u64,
    /// Sum of the numeric values (decimal string).
    pub sum: Option<String>,
    /// Largest numeric value (decimal string).
    pub max: Option<String>,
    /// Distinct values (reported fields).
    pub unique: u64,
}

/// Answer of `GET /v1/usage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    pub subscription_id: String,
    /// The ledger log the subscription's usage is in (`live` or `test`).
    pub log: String,
    pub period: String,
    /// Ledger entries the aggregates cover: `[0, indexed_through)` of the log (the rest
    /// is being indexed, within a second).
    pub indexed_through: u64,
    pub aggregates: Vec<UsageAggregate>,
}

/// Current usage of a subscription per period, operation and meter, maintained from the
/// ledger as it grows (and rebuilt from it alone).
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageQuery),
    responses((status = 200, body = UsageReport), super::ReadErrors), security(("bearer" = [])))]
async fn usage(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let field = |pointer: &str, detail: &str| {
        ApiError::validation(vec![tollgate_core::FieldError {
            pointer: pointer.into(),
            detail: detail.into(),
        }])
    };
    let period = q.period.as_deref().unwrap_or("month");
    if !matches!(period, "day" | "month") {
        return Err(field("/period", "must be day or month"));
    }
    let sub_id: SubscriptionId = crate::extract::path_id(&q.subscription_id, "subscription")?;
    let mut tx = st.store.read().await?;
    let sub = tx
        .get_subscription(sub_id)
        .await?
        .filter(|s| caller.sees(s.consumer_org_id) || caller.sees(s.provider_org_id))
        .ok_or_else(|| ApiError::not_found("subscription"))?;
    let now = st.now();
    let from = match &q.from {
        Some(t) => parse_time(t).ok_or_else(|| field("/from", "must be an RFC 3339 timestamp"))?,
        None if period == "day" => crate::ledger::day_start(now),
        None => crate::ledger::month_start(now),
    };
    let to = match &q.to {
        Some(t) => parse_time(t).ok_or_else(|| field("/to", "must be an RFC 3339 timestamp"))?,
        None => time::OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT),
    };
    let log = sub.mode.as_str();
    let rows = tx
        .usage_aggregates(&sub.id.to_string(), log, period, from, to)
        .await?;
    let indexed_through = crate::ledger::indexed_through(&mut tx, log).await?;
    Ok(Json(UsageReport {
        subscription_id: sub.id.to_string(),
        log: log.to_owned(),
        period: period.to_owned(),
        indexed_through,
        aggregates: rows
            .into_iter()
            .map(|a| UsageAggregate {
                period_start: format_time(a.key.period_start),
                operation_id: a.key.operation_id,
                meter: a.key.meter,
                count: a.count,
                sum: a.sum,
                max: a.max,
                unique: a.unique,
            })
            .collect(),
    }))
}
