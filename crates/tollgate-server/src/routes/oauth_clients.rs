//! An app's OAuth 2.0 clients (client credentials grant): create (a generated secret for
//! `client_secret_basic`, shown once and stored as a keyed hash; a JWKS for
//! `private_key_jwt`; a certificate subject or thumbprint for mTLS), list, revoke. The
//! token endpoint itself is served on the gateway listener (`crate::oauth`).

use super::credentials::app_for;
use super::{ReadErrors, WriteErrors};
use crate::auth::Caller;
use crate::error::{ApiError, check};
use crate::extract::{ApiJson, path_id};
use crate::ops::{Change, audit, commit};
use crate::state::{AppState, generate_secret};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tollgate_core::model::*;
use tollgate_core::roles::Action;
use tollgate_core::{FieldError, OAuthClientId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

/// Default access-token lifetime (seconds).
const DEFAULT_TOKEN_LIFETIME: u32 = 300;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_clients, create_client))
        .routes(routes!(revoke_client))
}

/// Lists an app's OAuth clients (never their secrets).
#[utoipa::path(get, path = "/v1/apps/{app_id}/oauth-clients", tag = "apps", params(("app_id" = String, Path)),
    responses((status = 200, body = Vec<OAuthClient>), ReadErrors), security(("bearer" = [])))]
async fn list_clients(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
) -> Result<Json<Vec<OAuthClient>>, ApiError> {
    let mut tx = st.store.read().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::Read).await?;
    Ok(Json(tx.list_oauth_clients(app.id).await?))
}

/// Creates an OAuth client for the app. For `client_secret_basic` the answer carries the
/// `client_secret`, shown this once.
#[utoipa::path(post, path = "/v1/apps/{app_id}/oauth-clients", tag = "apps", params(("app_id" = String, Path)),
    request_body = CreateOAuthClient,
    responses((status = 201, body = CreatedOAuthClient), WriteErrors), security(("bearer" = [])))]
async fn create_client(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<CreateOAuthClient>,
) -> Result<Response, ApiError> {
    check(req.validate())?;
    if let Some(jwks) = &req.jwks
        && let Err(e) = tollgate_oauth::Jwks::parse(jwks)
    {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/jwks".into(),
            detail: format!("not a usable JWKS: {e}"),
        }]));
    }
    let mut tx = st.store.write().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::ManageApps).await?;
    let now = st.now();
    let secret = match req.auth_method {
        ClientAuthMethod::ClientSecretBasic => Some(generate_secret("tgcs_")?),
        _ => None,
    };
    let client = OAuthClient {
        id: OAuthClientId::new(),
        app_id: app.id,
        org_id: app.org_id,
        mode: req.mode,
        name: req.name,
        auth_method: req.auth_method,
        scopes: req.scopes,
        jwks: req.jwks,
        tls_subject: req.tls_subject,
        tls_thumbprint: req.tls_thumbprint,
        token_lifetime_seconds: req.token_lifetime_seconds.unwrap_or(DEFAULT_TOKEN_LIFETIME),
        created_by: caller.user.id,
        created_at: now,
        revoked_at: None,
        revision: 1,
    };
    let digest = secret.as_deref().map(|s| st.token_digest(s));
    tx.insert_oauth_client(&client, digest.as_deref()).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "oauth_client.create",
            target_type: "oauth_client",
            target_id: client.id.to_string(),
            org_id: Some(client.org_id),
            before: None,
            after: Some(&client),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedOAuthClient {
            client,
            client_secret: secret,
        }),
    )
        .into_response())
}

/// Revokes a client: no new tokens, and its tokens are refused from the next request.
#[utoipa::path(post, path = "/v1/apps/{app_id}/oauth-clients/{client_id}/revoke", tag = "apps",
    params(("app_id" = String, Path), ("client_id" = String, Path)),
    responses((status = 200, body = OAuthClient), WriteErrors), security(("bearer" = [])))]
async fn revoke_client(
    State(st): St,
    caller: Caller,
    Path((app_id, client_id)): Path<(String, String)>,
) -> Result<Json<OAuthClient>, ApiError> {
    let mut tx = st.store.write().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::ManageApps).await?;
    let id: OAuthClientId = path_id(&client_id, "OAuth client")?;
    let before = tx
        .get_oauth_client(id)
        .await?
        .filter(|c| c.app_id == app.id)
        .ok_or_else(|| ApiError::not_found("OAuth client"))?;
    if before.revoked_at.is_some() {
        return Ok(Json(before));
    }
    let mut client = before.clone();
    client.revoked_at = Some(st.now());
    client.revision += 1;
    tx.revoke_oauth_client(&client, before.revision).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "oauth_client.revoke",
            target_type: "oauth_client",
            target_id: client.id.to_string(),
            org_id: Some(client.org_id),
            before: Some(&before),
            after: Some(&client),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok(Json(client))
}
