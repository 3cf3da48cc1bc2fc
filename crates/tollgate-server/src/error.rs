//! RFC 9457 problem details for the admin API: [`ApiError`] carries an
//! [`ErrorCode`] from the one table in `tollgate-core` and renders as
//! `application/problem+json`. Internal errors are logged here, once, with the request id;
//! their bodies never carry internals.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_core::validate::FieldError;
use tollgate_core::{ErrorCode, FieldErrors};
use tollgate_store::StoreError;
use utoipa::ToSchema;

/// The body of every error response (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI of the error class, `https://tollgate.dev/problems/<slug>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Quote this when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Every invalid field, for `validation-failed` and `invalid-openapi`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answered to an admin API caller.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extra response headers (e.g. `Allow`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 404 for an object that does not exist or is not visible to the caller.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }

    /// 422 listing every bad field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let n = errors.len();
        Self {
            code: ErrorCode::ValidationFailed,
            detail: format!("{n} field{} invalid", if n == 1 { " is" } else { "s are" }),
            errors,
            headers: Vec::new(),
        }
    }

    /// 409 for a lifecycle move the object does not allow.
    pub fn transition(what: &str, from: impl std::fmt::Debug, to: impl std::fmt::Debug) -> Self {
        Self::new(
            ErrorCode::InvalidTransition,
            format!(
                "a {what} cannot move from {} to {}",
                snake(&from),
                snake(&to)
            ),
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        // Logged once, here; the body says only that it happened.
        tracing::error!(error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "an unexpected error occurred; nothing was changed",
        )
    }

    /// The problem body, given the request path and id.
    pub fn problem(&self, instance: Option<String>, request_id: Option<String>) -> Problem {
        Problem {
            type_: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.code.status(),
            detail: self.detail.clone(),
            instance,
            request_id,
            errors: self.errors.clone(),
        }
    }
}

fn snake(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Validation result into an error listing every bad field.
pub fn check(errors: FieldErrors) -> Result<(), ApiError> {
    errors.finish().map_err(ApiError::validation)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate(what) => ApiError::new(
                ErrorCode::Conflict,
                format!("an object with the same unique field already exists ({what})"),
            ),
            StoreError::Stale => ApiError::new(
                ErrorCode::PreconditionFailed,
                "the object changed while this request was processed; read it again and retry",
            ),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the store is not reachable; retry later",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

/// The request's path and id, placed in the response extensions by the problem layer so
/// problem bodies can carry `instance` and `request_id`.
#[derive(Debug, Clone)]
pub struct ProblemContext {
    pub instance: String,
    pub request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // `instance` and `request_id` are filled in by `fill_problem_context` from the
        // request; the body is rendered there too.
        let mut resp = status.into_response();
        for (k, v) in &self.headers {
            resp.headers_mut().append(k.clone(), v.clone());
        }
        resp.extensions_mut()
            .insert(PendingProblem(std::sync::Arc::new(self)));
        resp
    }
}

/// An error response whose body is rendered once the request context is known.
#[derive(Debug, Clone)]
pub struct PendingProblem(pub std::sync::Arc<ApiError>);

/// Renders a problem response body.
pub fn problem_response(status: StatusCode, problem: &Problem, mut base: Response) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    *base.status_mut() = status;
    base.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    base.headers_mut().remove(header::CONTENT_LENGTH);
    let (parts, _) = base.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}
