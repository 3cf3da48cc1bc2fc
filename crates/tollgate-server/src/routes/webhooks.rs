//! An organization's webhook endpoints (Standard Webhooks): create (the secret is shown
//! once), list, read, delete, rotate the secret (the previous one keeps signing for 24
//! hours), and read an endpoint's deliveries with every attempt.
//!
//! Endpoints are the org's configuration (their URLs may carry tokens), so every route,
//! reads included, is for the org's owners and admins (and marketplace operators):
//! other members get 403, callers outside the org 404. Secrets are stored only sealed by
//! the keyring ([`crate::webhooks::secret_aad`]) and never appear in a list or a read.

use super::WriteErrors;
use crate::auth::Caller;
use crate::error::{ApiError, check};
use crate::extract::{ApiJson, ApiQuery, path_id};
use crate::ops::{Change, PageQuery, audit, commit};
use crate::state::AppState;
use crate::webhooks::{SECRET_OVERLAP, generate_secret, secret_aad, valid_event_type};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use tollgate_core::model::Page;
use tollgate_core::roles::Action;
use tollgate_core::{FieldErrors, OrgId, UserId};
use tollgate_store::Tx;
use tollgate_store::webhooks::{
    DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEndpointId,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

/// Most event types one endpoint may name.
const MAX_EVENT_TYPES: usize = 50;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
}

/// Errors of the reads, which are for owners and admins only.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum AdminReadErrors {
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(crate::error::Problem),
    /// Missing, invalid, expired or revoked token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(crate::error::Problem),
    /// Only the org's owners and admins manage its webhooks.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(crate::error::Problem),
    /// The endpoint does not exist or belongs to another organization.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(crate::error::Problem),
    /// Invalid list parameters.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(crate::error::Problem),
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(crate::error::Problem),
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(crate::error::Problem),
}

/// A webhook endpoint (its secret is shown only when created or rotated).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WebhookEndpointInfo {
    #[schema(value_type = String, format = Uuid)]
    pub id: WebhookEndpointId,
    pub org_id: OrgId,
    /// Where events are POSTed (http or https).
    pub url: String,
    pub description: String,
    /// Event types sent to the endpoint; empty means every type.
    pub event_types: Vec<String>,
    /// When the secret was last rotated.
    #[serde(with = "time::serde::rfc3339::option")]
    pub secret_rotated_at: Option<OffsetDateTime>,
    /// Until when the secret replaced by the last rotation still signs (beside the
    /// current one).
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub revision: i64,
}

impl From<WebhookEndpoint> for WebhookEndpointInfo {
    fn from(e: WebhookEndpoint) -> Self {
        Self {
            id: e.id,
            org_id: e.org_id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            secret_rotated_at: e.secret_rotated_at,
            previous_secret_expires_at: e.previous_secret_expires_at,
            created_by: e.created_by,
            created_at: e.created_at,
            revision: e.revision,
        }
    }
}

/// Answer of create and rotate: the endpoint and its new secret, shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointInfo,
    /// `whsec_` + base64 of 32 random bytes: verify deliveries with it (Standard
    /// Webhooks). Not retrievable later.
    pub secret: String,
}

/// Body of `POST /v1/orgs/{org_id}/webhook-endpoints`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// An http or https URL (at most 2048 characters, no user information).
    pub url: String,
    /// Event types to send (e.g. `invoice.finalized`); empty or absent means every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: String,
}

impl CreateWebhookEndpoint {
    fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        match self.url.parse::<http::Uri>() {
            _ if self.url.len() > 2048 => e.push("/url", "must be at most 2048 characters"),
            Ok(u) => {
                if !matches!(u.scheme_str(), Some("http" | "https")) {
                    e.push("/url", "must be an http or https URL");
                } else if u.host().is_none_or(str::is_empty) {
                    e.push("/url", "must name a host");
                } else if u.authority().is_some_and(|a| a.as_str().contains('@')) {
                    e.push(
                        "/url",
                        "must not carry user information; put a token in the path or query",
                    );
                }
            }
            Err(_) => e.push("/url", "must be an absolute http or https URL"),
        }
        if self.event_types.len() > MAX_EVENT_TYPES {
            e.push(
                "/event_types",
                format!("at most {MAX_EVENT_TYPES} event types"),
            );
        }
        for (i, t) in self.event_types.iter().enumerate() {
            if !valid_event_type(t) {
                e.push(
                    format!("/event_types/{i}"),
                    "use 1-100 characters of a-z, 0-9, '.', '_' and '-' (e.g. invoice.finalized)",
                );
            }
        }
        if self.description.chars().count() > 500 {
            e.push("/description", "must be at most 500 characters");
        }
        e
    }
}

/// One attempt to deliver an event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookAttemptInfo {
    /// 1 for the first attempt.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed (no answer, or a status other than 2xx).
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl From<WebhookAttempt> for WebhookAttemptInfo {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            attempt: a.attempt,
            at: a.at,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// An attempt was answered 2xx.
    Delivered,
    /// Every attempt failed, or the URL cannot be delivered to.
    Failed,
}

/// One event's delivery to the endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDeliveryInfo {
    #[schema(value_type = String, format = Uuid)]
    pub id: tollgate_store::webhooks::WebhookDeliveryId,
    /// The event id, sent as `webhook-id` on every attempt.
    pub event_id: String,
    pub event_type: String,
    pub status: WebhookDeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The last answer's HTTP status, if it answered.
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<WebhookAttemptInfo>,
}

impl From<WebhookDelivery> for WebhookDeliveryInfo {
    fn from(d: WebhookDelivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: match d.status {
                DeliveryStatus::Pending => WebhookDeliveryStatus::Pending,
                DeliveryStatus::Delivered => WebhookDeliveryStatus::Delivered,
                DeliveryStatus::Failed => WebhookDeliveryStatus::Failed,
            },
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            attempt_log: d.attempt_log.into_iter().map(Into::into).collect(),
        }
    }
}

/// The org of the path, once the caller may manage its webhooks.
fn org_for(caller: &Caller, org_id: &str) -> Result<OrgId, ApiError> {
    let org: OrgId = path_id(org_id, "organization")?;
    caller.require(org, Action::UpdateOrg, "organization")?;
    Ok(org)
}

/// The org's endpoint of the path; another org's endpoint is not found.
async fn endpoint_for(
    tx: &mut Tx,
    org: OrgId,
    endpoint_id: &str,
) -> Result<WebhookEndpoint, ApiError> {
    let id: WebhookEndpointId = path_id(endpoint_id, "webhook endpoint")?;
    tx.get_webhook_endpoint(id)
        .await?
        .filter(|e| e.org_id == org)
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// Seals a fresh secret for endpoint `id`: (shown text, sealed blob). Done before the
/// store transaction opens: key rotation holds the keyring's write lock while it waits
/// for the store, so the reverse order could deadlock.
async fn sealed_secret(
    st: &AppState,
    id: WebhookEndpointId,
) -> Result<(String, Vec<u8>), ApiError> {
    let (shown, raw) = generate_secret()?;
    let sealed = st
        .keyring
        .read()
        .await
        .encrypt(&raw, &secret_aad(id))
        .map_err(ApiError::internal)?;
    Ok((shown, sealed))
}

/// Lists the org's webhook endpoints (never their secrets).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/webhook-endpoints", tag = "webhooks",
    params(("org_id" = String, Path), PageQuery),
    responses((status = 200, body = Page<WebhookEndpointInfo>), AdminReadErrors), security(("bearer" = [])))]
async fn list_endpoints(
    State(st): St,
    caller: Caller,
    Path(org_id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<WebhookEndpointInfo>>, ApiError> {
    let org = org_for(&caller, &org_id)?;
    let page = q.params()?;
    let mut tx = st.store.read().await?;
    if tx.get_org(org).await?.is_none() {
        return Err(ApiError::not_found("organization"));
    }
    let p = tx.list_webhook_endpoints(org, &page).await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(Into::into).collect(),
        next_cursor: p.next_cursor,
    }))
}

/// Creates a webhook endpoint. The answer carries its `secret`, shown this once.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/webhook-endpoints", tag = "webhooks",
    params(("org_id" = String, Path)), request_body = CreateWebhookEndpoint,
    responses((status = 201, body = WebhookEndpointWithSecret), WriteErrors), security(("bearer" = [])))]
async fn create_endpoint(
    State(st): St,
    caller: Caller,
    Path(org_id): Path<String>,
    ApiJson(req): ApiJson<CreateWebhookEndpoint>,
) -> Result<Response, ApiError> {
    let org = org_for(&caller, &org_id)?;
    check(req.validate())?;
    let id = WebhookEndpointId::new();
    let (shown, sealed) = sealed_secret(&st, id).await?;
    let mut tx = st.store.write().await?;
    if tx.get_org(org).await?.is_none() {
        return Err(ApiError::not_found("organization"));
    }
    let mut event_types = req.event_types;
    event_types.sort();
    event_types.dedup();
    let endpoint = WebhookEndpoint {
        id,
        org_id: org,
        url: req.url,
        description: req.description,
        event_types,
        previous_secret_expires_at: None,
        secret_rotated_at: None,
        created_by: caller.user.id,
        created_at: st.now(),
        revision: 1,
    };
    tx.insert_webhook_endpoint(&endpoint, &sealed).await?;
    let info = WebhookEndpointInfo::from(endpoint);
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "webhook_endpoint.create",
            target_type: "webhook_endpoint",
            target_id: info.id.to_string(),
            org_id: Some(org),
            before: None,
            after: Some(&info),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookEndpointWithSecret {
            endpoint: info,
            secret: shown,
        }),
    )
        .into_response())
}

/// Reads a webhook endpoint (without its secret).
#[utoipa::path(get, path = "/v1/orgs/{org_id}/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("org_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookEndpointInfo), AdminReadErrors), security(("bearer" = [])))]
async fn get_endpoint(
    State(st): St,
    caller: Caller,
    Path((org_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<WebhookEndpointInfo>, ApiError> {
    let org = org_for(&caller, &org_id)?;
    let mut tx = st.store.read().await?;
    Ok(Json(endpoint_for(&mut tx, org, &endpoint_id).await?.into()))
}

/// Deletes a webhook endpoint with its delivery log; deliveries not yet made are dropped.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/webhook-endpoints/{endpoint_id}", tag = "webhooks",
    params(("org_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
async fn delete_endpoint(
    State(st): St,
    caller: Caller,
    Path((org_id, endpoint_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = org_for(&caller, &org_id)?;
    let mut tx = st.store.write().await?;
    let before = WebhookEndpointInfo::from(endpoint_for(&mut tx, org, &endpoint_id).await?);
    tx.delete_webhook_endpoint(before.id).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "webhook_endpoint.delete",
            target_type: "webhook_endpoint",
            target_id: before.id.to_string(),
            org_id: Some(org),
            before: Some(&before),
            after: None,
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotates the endpoint's secret. The answer carries the new `secret`, shown this once;
/// the replaced secret keeps signing beside it for 24 hours (each delivery then carries
/// two signatures), so receivers can switch without missing one. A secret replaced
/// earlier stops signing at once.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "webhooks",
    params(("org_id" = String, Path), ("endpoint_id" = String, Path)),
    responses((status = 200, body = WebhookEndpointWithSecret), WriteErrors), security(("bearer" = [])))]
async fn rotate_secret(
    State(st): St,
    caller: Caller,
    Path((org_id, endpoint_id)): Path<(String, String)>,
) -> Result<Json<WebhookEndpointWithSecret>, ApiError> {
    let org = org_for(&caller, &org_id)?;
    let id: WebhookEndpointId = path_id(&endpoint_id, "webhook endpoint")?;
    let (shown, sealed) = sealed_secret(&st, id).await?;
    let mut tx = st.store.write().await?;
    let before = endpoint_for(&mut tx, org, &endpoint_id).await?;
    let now = st.now();
    let mut after = before.clone();
    after.secret_rotated_at = Some(now);
    after.previous_secret_expires_at = Some(now + SECRET_OVERLAP);
    after.revision += 1;
    tx.rotate_webhook_secret(&after, &sealed, before.revision)
        .await?;
    let (before, after) = (
        WebhookEndpointInfo::from(before),
        WebhookEndpointInfo::from(after),
    );
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "webhook_endpoint.rotate_secret",
            target_type: "webhook_endpoint",
            target_id: after.id.to_string(),
            org_id: Some(org),
            before: Some(&before),
            after: Some(&after),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(Json(WebhookEndpointWithSecret {
        endpoint: after,
        secret: shown,
    }))
}

/// The endpoint's deliveries, oldest first, each with its attempts: status, the
/// receiver's answers, errors and when the next attempt is due.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/webhook-endpoints/{endpoint_id}/deliveries", tag = "webhooks",
    params(("org_id" = String, Path), ("endpoint_id" = String, Path), PageQuery),
    responses((status = 200, body = Page<WebhookDeliveryInfo>), AdminReadErrors), security(("bearer" = [])))]
async fn list_deliveries(
    State(st): St,
    caller: Caller,
    Path((org_id, endpoint_id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<WebhookDeliveryInfo>>, ApiError> {
    let org = org_for(&caller, &org_id)?;
    let page = q.params()?;
    let mut tx = st.store.read().await?;
    let endpoint = endpoint_for(&mut tx, org, &endpoint_id).await?;
    let p = tx.list_webhook_deliveries(endpoint.id, &page).await?;
    Ok(Json(Page {
        items: p.items.into_iter().map(Into::into).collect(),
        next_cursor: p.next_cursor,
    }))
}
