//! Request extractors that fail with problem details instead of axum's plain-text
//! rejections: JSON bodies (malformed → 400, wrong types or unknown fields → 422 with a
//! JSON pointer), query strings, path ids, `If-Match`.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;
use tollgate_core::ErrorCode;
use tollgate_core::validate::FieldError;

/// Largest admin API request body (an OpenAPI document fits comfortably).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Converts a serde path (`upstreams[0].url`) into a JSON pointer (`/upstreams/0/url`).
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&tollgate_core::validate::pointer_token(key));
            }
            Segment::Unknown => out.push('?'),
        }
    }
    out
}

/// Parses JSON bytes into `T`, with errors as problems.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let pointer = pointer_of(e.path());
            let inner = e.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let mut msg = inner.to_string();
                    // serde appends " at line L column C": useful for syntax, noise here.
                    if let Some(i) = msg.find(" at line ") {
                        msg.truncate(i);
                    }
                    Err(ApiError::validation(vec![FieldError {
                        pointer,
                        detail: msg,
                    }]))
                }
                _ => Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("the body is not valid JSON: {inner}"),
                )),
            }
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json"
            && !(mime.starts_with("application/") && mime.ends_with("+json"))
        {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = read_body(req).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Reads a whole request body up to [`MAX_BODY_BYTES`].
pub async fn read_body(req: Request) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body exceeds the limit of {MAX_BODY_BYTES} bytes (or could not be read)"
                ),
            )
        })
}

/// A query string.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let pointer = pointer_of(e.path());
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("invalid query parameter {pointer}: {}", e.into_inner()),
                )
            })
    }
}

/// Parses an id taken from the path; one that cannot exist is simply not found.
pub fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(what))
}

/// The revision an `If-Match` header asks for, if any. `*` matches anything.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let s = v
            .to_str()
            .map_err(|_| ApiError::new(ErrorCode::BadRequest, "If-Match is not valid text"))?
            .trim();
        if s == "*" {
            return Ok(IfMatch(None));
        }
        let rev = s
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .and_then(|r| r.parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    "If-Match must be an ETag as returned by GET, e.g. \"3\"",
                )
            })?;
        Ok(IfMatch(Some(rev)))
    }
}

impl IfMatch {
    /// 412 unless the object's current `revision` is the one asked for.
    pub fn check(self, current: i64) -> Result<(), ApiError> {
        match self.0 {
            Some(r) if r != current => Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                format!("If-Match asked for revision {r} but the object is at revision {current}"),
            )),
            _ => Ok(()),
        }
    }
}

/// The `ETag` of an object at `revision`.
pub fn etag(revision: i64) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_str(&format!("\"{revision}\""))
        .unwrap_or(axum::http::HeaderValue::from_static("\"0\""))
}

/// The client address and user agent, recorded in acceptance records.
#[derive(Debug, Clone, Default)]
pub struct OriginInfo(pub crate::acceptance::Origin);

impl<S: Send + Sync> FromRequestParts<S> for OriginInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect());
        Ok(OriginInfo(crate::acceptance::Origin { ip, user_agent }))
    }
}
