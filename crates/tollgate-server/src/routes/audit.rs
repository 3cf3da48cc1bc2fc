//! The audit log, read-only: every mutation of the admin API with actor, action, target,
//! request id and the SHA-256 of the object before and after, hash-chained.

use super::ReadErrors;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use std::sync::Arc;
use tollgate_core::ErrorCode;
use tollgate_core::model::{AuditEntry, Page};
use tollgate_core::roles::Action;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// Filters of the audit list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this object id.
    pub target_id: Option<String>,
    /// Page size, 1–500 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (a sequence number).
    pub cursor: Option<String>,
}

/// Reads the audit log, oldest first: the whole log for operators and marketplace
/// auditors; an org's entries for its owners, admins and auditors.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Page<AuditEntry>), ReadErrors), security(("bearer" = [])))]
async fn list_audit(
    State(st): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::validation(vec![tollgate_core::FieldError {
            pointer: "/limit".into(),
            detail: "must be between 1 and 500".into(),
        }]));
    }
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::new(ErrorCode::BadRequest, "cursor is not one this API returned")
            })
        })
        .transpose()?;
    let mut tx = st.store.read().await?;
    Ok(Json(
        tx.list_audit(
            &caller.scope_for(Action::ReadAudit),
            q.target_id.as_deref(),
            after,
            i64::from(limit),
        )
        .await?,
    ))
}
