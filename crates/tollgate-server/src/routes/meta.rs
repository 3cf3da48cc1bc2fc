//! Health, readiness, the keyring (public metadata and rotation) and the pages that
//! document each problem type.

use super::{ReadErrors, WriteErrors};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, path_id};
use crate::ops::{Change, audit, commit};
use crate::state::{AppState, save_keys};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use tollgate_core::ErrorCode;
use tollgate_core::roles::{Action, MarketplaceRole};
use tollgate_keyring::{KeyPurpose, KeyRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(list_keys))
        .routes(routes!(rotate_key))
        .routes(routes!(problem_page))
        .routes(routes!(terms_schema))
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Readiness: whether the store answers and a gateway snapshot is live.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub status: &'static str,
    pub store: bool,
    pub snapshot_version: u64,
    pub draining: bool,
}

/// Liveness: the process is up. Needs no credential.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: 200 when the store is reachable and the gateway snapshot is loaded, else 503.
/// Needs no credential.
#[utoipa::path(get, path = "/readyz", tag = "meta", responses((status = 200, body = Ready), (status = 503, body = Ready)))]
async fn readyz(State(st): St) -> Response {
    let store = tokio::time::timeout(std::time::Duration::from_secs(2), st.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    let snapshot_version = st.snapshot.load().version();
    let draining = st.draining.load(std::sync::atomic::Ordering::Acquire);
    let ok = store && st.is_ready();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Ready {
            status: if ok { "ready" } else { "not_ready" },
            store,
            snapshot_version,
            draining,
        }),
    )
        .into_response()
}

/// Public metadata of a key; private parts never leave the keyring.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub purpose: String,
    pub algorithm: String,
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub activated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retire_at: Option<OffsetDateTime>,
    /// Base64 Ed25519 public key, for signing keys.
    pub public_key: Option<String>,
    /// Fingerprint of the master key that seals it.
    pub master_fingerprint: String,
}

impl From<&KeyRecord> for KeyInfo {
    fn from(r: &KeyRecord) -> Self {
        use base64::Engine as _;
        KeyInfo {
            id: r.id.to_string(),
            purpose: r.purpose.as_str().to_owned(),
            algorithm: r.algorithm.as_str().to_owned(),
            state: r.state.as_str().to_owned(),
            created_at: r.created_at,
            activated_at: r.activated_at,
            retire_at: r.retire_at,
            public_key: r
                .public_key
                .as_ref()
                .map(|k| base64::engine::general_purpose::STANDARD.encode(k)),
            master_fingerprint: r.master_fingerprint.clone(),
        }
    }
}

fn require_marketplace(caller: &Caller, action: Action) -> Result<(), ApiError> {
    match caller.marketplace_role() {
        Some(r) if r.allows(action) => Ok(()),
        Some(MarketplaceRole::Auditor) => Err(ApiError::forbidden(
            "marketplace auditors can read but not change keys",
        )),
        _ => Err(ApiError::not_found("keyring")),
    }
}

/// Lists every key of the marketplace keyring (operators and marketplace auditors).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", responses((status = 200, body = Vec<KeyInfo>), ReadErrors), security(("bearer" = [])))]
async fn list_keys(State(st): St, caller: Caller) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    require_marketplace(&caller, Action::Read)?;
    let ring = st.keyring.read().await;
    Ok(Json(ring.records().map(KeyInfo::from).collect()))
}

/// Body of a key rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// How long the old key keeps verifying/decrypting, in seconds (default per purpose;
    /// 0 retires it at once, e.g. after a compromise).
    pub overlap_seconds: Option<u64>,
}

/// The new active key and the keys whose state changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    pub new: KeyInfo,
    pub updated: Vec<KeyInfo>,
}

/// Rotates the key of a purpose: a new key becomes active; the old one keeps verifying
/// for the overlap (operators only).
#[utoipa::path(post, path = "/v1/keys/{purpose}/rotate", tag = "keys", request_body = RotateKey, params(("purpose" = String, Path, description = "checkpoint_signing, invoice_signing, acceptance_signing, token_signing, gateway_assertion, webhook_secret or data_encryption")),
    responses((status = 200, body = Rotated), WriteErrors), security(("bearer" = [])))]
async fn rotate_key(
    State(st): St,
    caller: Caller,
    Path(purpose): Path<String>,
    ApiJson(req): ApiJson<RotateKey>,
) -> Result<Json<Rotated>, ApiError> {
    require_marketplace(&caller, Action::UpdateOrg)?;
    let purpose: KeyPurpose = path_id(&purpose, "key purpose")?;
    let overlap = req
        .overlap_seconds
        .map(|s| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2)));
    let now = st.now();
    // The keyring's write lock is held across the store transaction, so memory and
    // database move together; if the commit fails, the keyring is reloaded from the store.
    let mut ring = st.keyring.write().await;
    let rotation = ring
        .rotate(purpose, now, overlap)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.to_string()))?;
    let mut tx = st.store.write().await?;
    let mut records = vec![rotation.new.clone()];
    records.extend(rotation.updated.iter().cloned());
    let result = async {
        save_keys(&mut tx, &records, now).await?;
        audit(
            &st,
            &mut tx,
            &caller,
            Change {
                action: "key.rotate",
                target_type: "key",
                target_id: rotation.new.id.to_string(),
                org_id: None,
                before: None,
                after: Some(&KeyInfo::from(&rotation.new)),
            },
        )
        .await?;
        commit(&st, tx, false).await
    }
    .await;
    if let Err(e) = result {
        // Keep memory equal to the store: the rotation did not commit, so reload.
        tracing::warn!("key rotation failed; reloading the keyring from the store");
        *ring = crate::state::load_keyring(&st.store, &st.master, now)
            .await
            .map_err(ApiError::internal)?;
        return Err(e);
    }
    drop(ring);
    // The gateway verifies access tokens with the published key set: make the new key
    // (and the retiring one) live before answering.
    crate::snapshot::refresh(&st).await?;
    Ok(Json(Rotated {
        new: KeyInfo::from(&rotation.new),
        updated: rotation.updated.iter().map(KeyInfo::from).collect(),
    }))
}

/// Documentation of one problem type: the page its `type` URI names.
#[utoipa::path(get, path = "/problems/{slug}", tag = "meta", params(("slug" = String, Path)),
    responses((status = 200, description = "HTML page describing the problem type", content_type = "text/html"), (status = 404, body = crate::error::Problem, content_type = "application/problem+json")))]
async fn problem_page(
    Path(slug): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let code = ErrorCode::from_slug(&slug).ok_or_else(|| ApiError::not_found("problem type"))?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json") && !a.contains("html"));
    if wants_json {
        return Ok(Json(serde_json::json!({
            "type": code.type_uri(), "slug": code.slug(), "status": code.status(), "title": code.title(), "description": code.description()
        }))
        .into_response());
    }
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    Ok(Html(format!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>{title} — Tollgate problem</title>\
         <body style=\"font-family:system-ui;max-width:42rem;margin:3rem auto;line-height:1.5\">\
         <h1>{title}</h1><p><code>{uri}</code> · HTTP {status}</p><p>{desc}</p></body></html>",
        title = esc(code.title()),
        uri = esc(&code.type_uri()),
        status = code.status(),
        desc = esc(code.description()),
    ))
    .into_response())
}

/// The JSON Schema of term sheets (draft 2020-12; `$id`
/// `https://tollgate.dev/schemas/terms/v1.json`), derived from the model the server
/// validates with. Needs no credential.
#[utoipa::path(get, path = "/schemas/terms/v1.json", tag = "meta",
    responses((status = 200, description = "JSON Schema of term sheets", content_type = "application/schema+json", body = Object)))]
async fn terms_schema() -> Response {
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        Json(tollgate_terms::schema::json_schema()),
    )
        .into_response()
}
