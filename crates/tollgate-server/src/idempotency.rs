//! `Idempotency-Key` on POST: the first response to a key is stored (24 h) and replayed
//! for a retry with the same body; the same key with a different body is 422; a retry
//! while the first is still running is 409. Keys are scoped to the credential that sent
//! them. Responses of 5xx are not stored, so a failed request can be retried.

use crate::error::{ApiError, ProblemContext};
use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tollgate_core::ErrorCode;
use tollgate_core::hash::sha256_hex;
use tollgate_store::StoreError;

/// Response headers kept with a stored response.
const KEPT: [HeaderName; 3] = [header::CONTENT_TYPE, header::ETAG, header::LOCATION];

pub async fn layer(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim().to_owned())
    else {
        // Unauthenticated: the handler answers 401; nothing to remember.
        return next.run(req).await;
    };
    let ctx = ProblemContext {
        instance: req.uri().path().to_owned(),
        request_id: req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    };
    match run(&st, key, &token, req, next, &ctx).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn run(
    st: &AppState,
    key: HeaderValue,
    token: &str,
    req: Request,
    next: Next,
    ctx: &ProblemContext,
) -> Result<Response, ApiError> {
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| (0x21..0x7f).contains(&b)))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                "Idempotency-Key must be 1-255 printable ASCII characters",
            )
        })?
        .to_owned();
    let principal = st.token_digest(token);
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body exceeds the limit of {MAX_BODY_BYTES} bytes"),
            )
        })?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .to_owned();
    let mut fingerprint = Vec::with_capacity(bytes.len() + path_and_query.len() + 8);
    fingerprint.extend_from_slice(b"POST ");
    fingerprint.extend_from_slice(path_and_query.as_bytes());
    fingerprint.push(b'\n');
    fingerprint.extend_from_slice(&bytes);
    let request_sha256 = sha256_hex(&fingerprint);

    let mut tx = st.store.write().await?;
    if let Some(rec) = tx.get_idempotency(&principal, &key).await? {
        drop(tx);
        if rec.request_sha256 != request_sha256 {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request; use a new key",
            ));
        }
        let Some(status) = rec.status_code else {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a request with this Idempotency-Key is still being processed",
            ));
        };
        let body = open_body(st, &principal, &key, rec.response_body.unwrap_or_default()).await?;
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() =
            StatusCode::from_u16(u16::try_from(status).unwrap_or(500)).unwrap_or(StatusCode::OK);
        for (k, v) in rec.response_headers.map(|j| j.0).unwrap_or_default() {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                resp.headers_mut().insert(k, v);
            }
        }
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(resp);
    }
    match tx
        .claim_idempotency(
            &principal,
            &key,
            "POST",
            &path_and_query,
            &request_sha256,
            st.now(),
        )
        .await
    {
        Ok(()) => {}
        Err(StoreError::Duplicate(_)) => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "a request with this Idempotency-Key is still being processed",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;

    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let resp = crate::render_pending(resp, ctx);
    let status = resp.status();
    if status.is_server_error() {
        let mut tx = st.store.write().await?;
        tx.release_idempotency(&principal, &key).await?;
        tx.commit().await?;
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map_err(ApiError::internal)?;
    // Sealed before the store's write lock is taken: key rotation takes the keyring's
    // write lock and then the store's, so the other order could deadlock.
    let sealed = seal_body(st, &principal, &key, &body).await?;
    let mut tx = st.store.write().await?;
    let headers: Vec<(String, String)> = KEPT
        .iter()
        .filter_map(|h| {
            parts
                .headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    tx.complete_idempotency(&principal, &key, status.as_u16(), &headers, &sealed)
        .await?;
    tx.commit().await?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Prefix of a stored response body sealed by the keyring.
const SEALED: &str = "sealed:v1:";

/// The additional data that binds a sealed body to its principal and key.
fn body_aad(principal: &str, key: &str) -> Vec<u8> {
    format!("tollgate/idempotency/{principal}/{key}").into_bytes()
}

/// Responses are kept sealed: a create's response carries the secret it made (an API
/// key, a client secret, an HMAC signing secret), and secrets are never stored in clear.
async fn seal_body(
    st: &AppState,
    principal: &str,
    key: &str,
    body: &[u8],
) -> Result<String, ApiError> {
    use base64::Engine as _;
    let ring = st.keyring.read().await;
    let blob = ring
        .encrypt(body, &body_aad(principal, key))
        .map_err(ApiError::internal)?;
    Ok(format!(
        "{SEALED}{}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    ))
}

/// The stored body, opened (bodies stored before sealing are returned as they are).
async fn open_body(
    st: &AppState,
    principal: &str,
    key: &str,
    stored: String,
) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    let Some(b64) = stored.strip_prefix(SEALED) else {
        return Ok(stored.into_bytes());
    };
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(ApiError::internal)?;
    let ring = st.keyring.read().await;
    let body = ring
        .decrypt(&blob, &body_aad(principal, key))
        .map_err(ApiError::internal)?;
    Ok(body.to_vec())
}
