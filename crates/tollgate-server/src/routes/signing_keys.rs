//! An app's HTTP message signature keys (RFC 9421): register a public key (Ed25519 or
//! ECDSA P-256, PEM) or have the marketplace generate an `hmac-sha256` shared secret,
//! list, revoke. The key's id is the `keyid` of the app's signatures; the gateway verifies
//! signed requests against the keys of its snapshot.
//!
//! An HMAC secret is 32 random bytes, shown once (standard base64) in the create answer
//! and stored only sealed by the keyring's data-encryption key, with an AAD naming the
//! key's row ([`secret_aad`]), so a sealed blob copied to another row does not open. Lists
//! and revocations never carry it; only the gateway snapshot opens it.

use super::credentials::app_for;
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
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;
use tollgate_core::model::*;
use tollgate_core::roles::Action;
use tollgate_core::{FieldError, SigningKeyId};
use tollgate_keyring::Zeroizing;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// Lists an app's signing keys.
#[utoipa::path(get, path = "/v1/apps/{app_id}/signing-keys", tag = "apps", params(("app_id" = String, Path)),
    responses((status = 200, body = Vec<SigningKeyInfo>), ReadErrors), security(("bearer" = [])))]
async fn list_keys(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
) -> Result<Json<Vec<SigningKeyInfo>>, ApiError> {
    let mut tx = st.store.read().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::Read).await?;
    Ok(Json(tx.list_signing_keys(app.id).await?))
}

/// What a sealed HMAC secret is bound to: its table, column and key id.
pub(crate) fn secret_aad(id: SigningKeyId) -> Vec<u8> {
    format!("tollgate/signing_keys/secret/{id}").into_bytes()
}

/// Registers a key the app signs requests with; its id is the signatures' `keyid`. For
/// `hmac-sha256` the marketplace generates the secret and answers it this once.
#[utoipa::path(post, path = "/v1/apps/{app_id}/signing-keys", tag = "apps", params(("app_id" = String, Path)),
    request_body = CreateSigningKey,
    responses((status = 201, body = CreatedSigningKey), WriteErrors), security(("bearer" = [])))]
async fn create_key(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
    ApiJson(req): ApiJson<CreateSigningKey>,
) -> Result<Response, ApiError> {
    check(req.validate())?;
    let alg = req.alg.parse::<tollgate_httpsig::Algorithm>();
    if let (Ok(alg), Some(pem)) = (&alg, &req.public_key_pem)
        && let Err(e) = tollgate_httpsig::VerifyingKey::from_public_key_pem(*alg, pem.as_bytes())
    {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/public_key_pem".into(),
            detail: format!("not a {} public key in PEM: {e}", req.alg),
        }]));
    }
    let id = SigningKeyId::new();
    // Sealed before the store transaction opens: key rotation holds the keyring's write
    // lock while it waits for the store, so the reverse order could deadlock.
    let secret = if matches!(alg, Ok(tollgate_httpsig::Algorithm::HmacSha256)) {
        let mut raw = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(raw.as_mut()).map_err(ApiError::internal)?;
        let sealed = st
            .keyring
            .read()
            .await
            .encrypt(raw.as_ref(), &secret_aad(id))
            .map_err(ApiError::internal)?;
        Some((STANDARD.encode(raw.as_ref()), sealed))
    } else {
        None
    };
    let mut tx = st.store.write().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::ManageApps).await?;
    let now = st.now();
    let key = SigningKeyInfo {
        id,
        app_id: app.id,
        org_id: app.org_id,
        mode: req.mode,
        name: req.name,
        alg: req.alg,
        public_key_pem: req.public_key_pem,
        scopes: req.scopes,
        created_by: caller.user.id,
        created_at: now,
        expires_at: now + time::Duration::days(i64::from(req.expires_in_days)),
        revoked_at: None,
        revision: 1,
    };
    tx.insert_signing_key(&key, secret.as_ref().map(|(_, sealed)| sealed.as_slice()))
        .await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "signing_key.create",
            target_type: "signing_key",
            target_id: key.id.to_string(),
            org_id: Some(key.org_id),
            before: None,
            after: Some(&key),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    let created = CreatedSigningKey {
        key,
        secret: secret.map(|(shown, _)| shown),
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes a signing key: requests signed with it are refused from the next one on.
#[utoipa::path(post, path = "/v1/apps/{app_id}/signing-keys/{signing_key_id}/revoke", tag = "apps",
    params(("app_id" = String, Path), ("signing_key_id" = String, Path)),
    responses((status = 200, body = SigningKeyInfo), WriteErrors), security(("bearer" = [])))]
async fn revoke_key(
    State(st): St,
    caller: Caller,
    Path((app_id, key_id)): Path<(String, String)>,
) -> Result<Json<SigningKeyInfo>, ApiError> {
    let mut tx = st.store.write().await?;
    let app = app_for(&mut tx, &caller, &app_id, Action::ManageApps).await?;
    let id: SigningKeyId = path_id(&key_id, "signing key")?;
    let before = tx
        .list_signing_keys(app.id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::not_found("signing key"))?;
    if before.revoked_at.is_some() {
        return Ok(Json(before));
    }
    let mut key = before.clone();
    key.revoked_at = Some(st.now());
    key.revision += 1;
    tx.revoke_signing_key(&key, before.revision).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "signing_key.revoke",
            target_type: "signing_key",
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
