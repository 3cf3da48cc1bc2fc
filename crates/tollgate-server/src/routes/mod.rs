//! The admin REST API under `/v1`, one module per object family. Every handler is
//! annotated for the generated OpenAPI document (`GET /openapi.json`).

pub mod apis;
pub mod audit;
pub mod billing;
pub mod catalog;
pub mod credentials;
pub mod ledger;
pub mod meta;
pub mod oauth_clients;
pub mod signing_keys;
pub mod tenancy;
pub mod terms;
pub mod usage;
pub mod webhooks;

use crate::error::Problem;

/// Errors any authenticated read can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// Malformed query or header.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing, invalid, expired or revoked token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The object does not exist or belongs to another organization.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Invalid list parameters.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Unexpected failure (logged with the request id).
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// The store is unreachable.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Errors any mutation can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// Malformed JSON, header or query.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing, invalid, expired or revoked token.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// Your role does not permit this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// The object does not exist or belongs to another organization.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Conflicts with existing state (duplicate slug, lifecycle, idempotency in progress).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// `If-Match` does not match the current `ETag`.
    #[response(status = 412, content_type = "application/problem+json")]
    PreconditionFailed(Problem),
    /// The body is too large.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// The body is not JSON.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// Invalid fields (every one listed), invalid OpenAPI document, or an
    /// `Idempotency-Key` reused with another body.
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Unexpected failure (logged with the request id); nothing was changed.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// The store is unreachable; nothing was changed.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}
