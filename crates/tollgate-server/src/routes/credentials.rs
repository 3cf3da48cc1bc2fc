//! Consumer API keys of an app: create (the secret is shown once), list, rotate with
//! overlap, revoke. Keys are stored as keyed hashes only; every key expires; at most two
//! keys per app and mode are usable at once, so a rotation never needs downtime.

use super::{ReadErrors, WriteErrors};
use crate::auth::Caller;
use crate::error::{ApiError, check};
use crate::extract::{ApiJson, path_id};
use crate::ops::{Change, audit, commit};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use time::OffsetDateTime;
use tollgate_core::apikey::{self, KeyMode};
use tollgate_core::model::*;
use tollgate_core::roles::Action;
use tollgate_core::{ApiKeyId, AppId, ErrorCode};
use tollgate_store::Tx;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

/// Usable keys per app and mode: the current one and the one being rotated out.
pub const MAX_ACTIVE_KEYS: usize = 2;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(rotate_key))
        .routes(routes!(revoke_key))
}

fn usable(k: &ApiKeyInfo, now: OffsetDateTime) -> bool {
    k.revoked_at.is_none() && k.expires_at > now
}

/// The app of a path, visible to the caller and allowing `action` (404 for other orgs).
pub(crate) async fn app_for(
    tx: &mut Tx,
    caller: &Caller,
    raw: &str,
    action: Action,
) -> Result<App, ApiError> {
    let id: AppId = path_id(raw, "app")?;
    let app = tx
        .get_app(id)
        .await?
        .filter(|a| caller.sees(a.org_id))
        .ok_or_else(|| ApiError::not_found("app"))?;
    caller.require(app.org_id, action, "app")?;
    Ok(app)
}

/// The shortest `max_key_lifetime_days` of the plans the app is subscribed to (not
/// cancelled, same mode), with the plan's slug: no key of the app may live longer.
async fn lifetime_limit(
    tx: &mut Tx,
    app: &App,
    mode: KeyMode,
) -> Result<Option<(u32, String)>, ApiError> {
    let subs = tx
        .list_subscriptions(
            &tollgate_store::Scope::All,
            &tollgate_store::SubscriptionFilter {
                app_id: Some(app.id),
                plan_id: None,
                state: None,
            },
            &tollgate_store::PageParams {
                after: None,
                limit: 200,
            },
        )
        .await?;
    let mut limit: Option<(u32, String)> = None;
    for sub in subs
        .items
        .iter()
        .filter(|s| s.mode == mode && s.state != SubscriptionState::Cancelled)
    {
        if let Some(plan) = tx.get_plan(sub.plan_id).await?
            && let Some(days) = plan.max_key_lifetime_days
            && limit.as_ref().is_none_or(|(d, _)| days < *d)
        {
            limit = Some((days, plan.slug));
        }
    }
    Ok(limit)
}

/// Makes a key for `app` inside `tx` and audits it.
async fn issue(
    st: &AppState,
    tx: &mut Tx,
    caller: &Caller,
    app: &App,
    req: &CreateApiKey,
    action: &'static str,
) -> Result<CreatedApiKey, ApiError> {
    let now = st.now();
    if let Some((days, plan)) = lifetime_limit(tx, app, req.mode).await?
        && req.expires_in_days > days
    {
        return Err(ApiError::validation(vec![tollgate_core::FieldError {
            pointer: "/expires_in_days".into(),
            detail: format!("the app's plan {plan:?} allows keys of at most {days} days"),
        }]));
    }
    let active = tx
        .list_api_keys(app.id)
        .await?
        .into_iter()
        .filter(|k| k.mode == req.mode && usable(k, now))
        .count();
    if active >= MAX_ACTIVE_KEYS {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the app already has {MAX_ACTIVE_KEYS} usable {} keys; revoke or rotate one",
                if req.mode == KeyMode::Live {
                    "live"
                } else {
                    "test"
                }
            ),
        ));
    }
    let mut entropy = [0u8; 16];
    aws_lc_rs::rand::fill(&mut entropy).map_err(ApiError::internal)?;
    let secret = apikey::format(req.mode, entropy);
    let key = ApiKeyInfo {
        id: ApiKeyId::new(),
        app_id: app.id,
        org_id: app.org_id,
        mode: req.mode,
        name: req.name.clone(),
        prefix: apikey::display_prefix(&secret).to_owned(),
        scopes: req.scopes.clone(),
        operations: req.operations.clone(),
        ip_allowlist: req.ip_allowlist.clone(),
        created_by: caller.user.id,
        created_at: now,
        expires_at: now + time::Duration::days(i64::from(req.expires_in_days)),
        revoked_at: None,
        revision: 1,
    };
    tx.insert_api_key(&key, &st.token_digest(&secret)).await?;
    audit(
        st,
        tx,
        caller,
        Change {
            action,
            target_type: "api_key",
            target_id: key.id.to_string(),
            org_id: Some(key.org_id),
            before: None,
            after: Some(&key),
        },
    )
    .await?;
    Ok(CreatedApiKey { key, secret })
}

/// Lists an app's API keys (never their secrets).
#[utoipa::path(get, path = "/v1/apps/{app_id}/keys", tag = "apps", params(("app_id" = String, Path)),
    responses((status = 200, body = Vec<ApiKeyInfo>), ReadErrors), security(("bearer" = [])))]
async fn list_keys(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    let mut tx = st.store.read().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::Read).await?;
    Ok(Json(tx.list_api_keys(app.id).await?))
}

/// Creates an API key for the app. The secret (`tg_live_…` or `tg_test_…`) is in this
/// response only; Tollgate keeps a keyed hash.
#[utoipa::path(post, path = "/v1/apps/{app_id}/keys", tag = "apps", request_body = CreateApiKey,
    params(("app_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CreatedApiKey), WriteErrors), security(("bearer" = [])))]
async fn create_key(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<CreateApiKey>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::ManageApps).await?;
    check(req.validate())?;
    let created = issue(&st, &mut tx, &caller, &app, &req, "api_key.create").await?;
    commit(&st, tx, true).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn existing_key(tx: &mut Tx, app: &App, raw: &str) -> Result<ApiKeyInfo, ApiError> {
    let id: ApiKeyId = path_id(raw, "API key")?;
    tx.get_api_key(id)
        .await?
        .filter(|k| k.app_id == app.id)
        .ok_or_else(|| ApiError::not_found("API key"))
}

/// Rotates a key: a new key with the same settings is issued, and the old one keeps
/// working for the overlap (default 24 hours; 0 revokes it at once).
#[utoipa::path(post, path = "/v1/apps/{app_id}/keys/{key_id}/rotate", tag = "apps", request_body = RotateApiKey,
    params(("app_id" = String, Path), ("key_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CreatedApiKey), WriteErrors), security(("bearer" = [])))]
async fn rotate_key(
    State(st): St,
    caller: Caller,
    Path((app_id, key_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<RotateApiKey>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::ManageApps).await?;
    let before = existing_key(&mut tx, &app, &key_id).await?;
    let now = st.now();
    if !usable(&before, now) {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "the key is revoked or expired; create a new one instead",
        ));
    }
    let overlap = time::Duration::seconds(
        i64::try_from(req.overlap_seconds.unwrap_or(86_400))
            .unwrap_or(i64::MAX / 4)
            .min(86_400 * 30),
    );
    // Shorten the old key first, so it does not count against the two usable keys when
    // the overlap is zero.
    let mut old = before.clone();
    if overlap.is_zero() {
        old.revoked_at = Some(now);
    } else {
        old.expires_at = old.expires_at.min(now + overlap);
    }
    old.revision += 1;
    tx.update_api_key(&old, before.revision).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "api_key.rotate_out",
            target_type: "api_key",
            target_id: old.id.to_string(),
            org_id: Some(old.org_id),
            before: Some(&before),
            after: Some(&old),
        },
    )
    .await?;
    let lifetime = (before.expires_at - before.created_at)
        .whole_days()
        .clamp(1, i64::from(MAX_KEY_DAYS));
    let limit = lifetime_limit(&mut tx, &app, before.mode).await?;
    // Without an explicit lifetime the new key lives as long as the old one did, within
    // what the app's plans allow now.
    let days = req.expires_in_days.unwrap_or_else(|| {
        let days = u32::try_from(lifetime).unwrap_or(MAX_KEY_DAYS);
        limit.map_or(days, |(max, _)| days.min(max))
    });
    let spec = CreateApiKey {
        name: before.name.clone(),
        mode: before.mode,
        expires_in_days: days,
        scopes: before.scopes.clone(),
        operations: before.operations.clone(),
        ip_allowlist: before.ip_allowlist.clone(),
    };
    check(spec.validate())?;
    // The old key (still usable during the overlap) plus the new one make two.
    let created = issue(&st, &mut tx, &caller, &app, &spec, "api_key.rotate").await?;
    commit(&st, tx, true).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes a key; the next gateway request with it is refused.
#[utoipa::path(post, path = "/v1/apps/{app_id}/keys/{key_id}/revoke", tag = "apps",
    params(("app_id" = String, Path), ("key_id" = String, Path)),
    responses((status = 200, body = ApiKeyInfo), WriteErrors), security(("bearer" = [])))]
async fn revoke_key(
    State(st): St,
    caller: Caller,
    Path((app_id, key_id)): Path<(String, String)>,
) -> Result<Json<ApiKeyInfo>, ApiError> {
    let mut tx = st.store.write().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::ManageApps).await?;
    let before = existing_key(&mut tx, &app, &key_id).await?;
    if before.revoked_at.is_some() {
        return Ok(Json(before));
    }
    let mut key = before.clone();
    key.revoked_at = Some(st.now());
    key.revision += 1;
    tx.update_api_key(&key, before.revision).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "api_key.revoke",
            target_type: "api_key",
            target_id: key.id.to_string(),
            org_id: Some(key.org_id),
            before: Some(&before),
            after: Some(&key),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok(Json(key))
}
