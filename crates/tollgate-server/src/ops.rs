//! The shape every mutation takes: open a write transaction, check, change, append the
//! audit entry in the same transaction, commit, and — for catalog changes — return only
//! after the gateway snapshot that contains the change is live.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_core::OrgId;
use tollgate_core::hash::canonical_sha256;
use tollgate_store::{NewAudit, PageParams, Tx};

/// One audited change.
#[derive(Debug)]
pub struct Change<'a, T: Serialize> {
    /// e.g. `api.update`.
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub org_id: Option<OrgId>,
    pub before: Option<&'a T>,
    pub after: Option<&'a T>,
}

/// Appends the audit entry for `change` inside `tx`.
pub async fn audit<T: Serialize>(
    state: &AppState,
    tx: &mut Tx,
    caller: &Caller,
    change: Change<'_, T>,
) -> Result<(), ApiError> {
    tx.append_audit(NewAudit {
        at: state.now(),
        actor: caller.actor(),
        org_id: change.org_id,
        action: change.action.to_owned(),
        target_type: change.target_type.to_owned(),
        target_id: change.target_id,
        request_id: caller.request_id.clone(),
        before_sha256: change.before.and_then(canonical_sha256),
        after_sha256: change.after.and_then(canonical_sha256),
    })
    .await?;
    Ok(())
}

/// Commits `tx`; when `catalog` is set, rebuilds and installs the gateway snapshot
/// before returning, so the next gateway request sees the change.
pub async fn commit(state: &AppState, tx: Tx, catalog: bool) -> Result<(), ApiError> {
    tx.commit().await?;
    if catalog {
        crate::snapshot::refresh(state).await?;
    }
    Ok(())
}

/// A JSON response with the object's `ETag`.
pub fn with_etag<T: Serialize>(status: StatusCode, revision: i64, body: &T) -> Response {
    (
        status,
        [(header::ETAG, crate::extract::etag(revision))],
        Json(body),
    )
        .into_response()
}

/// Query parameters shared by every list: `limit` (1–200, default 50) and `cursor`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn params(&self) -> Result<PageParams, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::validation(vec![tollgate_core::FieldError {
                pointer: "/limit".into(),
                detail: "must be between 1 and 200".into(),
            }]));
        }
        if let Some(c) = &self.cursor
            && (c.len() > 64 || !c.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        {
            return Err(ApiError::new(
                tollgate_core::ErrorCode::BadRequest,
                "cursor is not one this API returned",
            ));
        }
        Ok(PageParams {
            after: self.cursor.clone(),
            limit: i64::from(limit),
        })
    }
}
