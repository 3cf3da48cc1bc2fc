//! Errors the gateway answers itself, rendered as RFC 9457 `application/problem+json`
//! with the shared problem table of `tollgate_core::problem` (DESIGN.md §6).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;
use tollgate_core::ErrorCode;
use tollgate_core::problem::PROBLEM_BASE;

use crate::body::ResponseBody;
use crate::headers::X_REQUEST_ID;

/// The gateway answers with codes of the one shared table.
pub type GatewayCode = ErrorCode;

/// Who is to blame for an error, for logs and metrics (pingora's
/// upstream/downstream/internal tags).
pub fn origin(code: ErrorCode) -> ErrorOrigin {
    match code {
        ErrorCode::UpstreamUnavailable | ErrorCode::UpstreamTimeout | ErrorCode::CircuitOpen => {
            ErrorOrigin::Upstream
        }
        ErrorCode::Internal | ErrorCode::Unavailable => ErrorOrigin::Internal,
        _ => ErrorOrigin::Downstream,
    }
}

/// Which side of the proxy caused an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorOrigin {
    /// The caller: bad request, missing credential, unknown route, …
    Downstream,
    /// The API's upstream server.
    Upstream,
    /// The gateway itself.
    Internal,
}

impl ErrorOrigin {
    /// Lowercase label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOrigin::Downstream => "downstream",
            ErrorOrigin::Upstream => "upstream",
            ErrorOrigin::Internal => "internal",
        }
    }
}

/// An error the gateway answers itself: a code, a human `detail` and any headers the
/// answer needs (`WWW-Authenticate`, `Allow`, …).
#[derive(Debug, Clone)]
pub struct GatewayError {
    code: GatewayCode,
    detail: Cow<'static, str>,
    headers: HeaderMap,
}

impl GatewayError {
    /// An error with the given code and detail.
    pub fn new(code: impl Into<GatewayCode>, detail: impl Into<Cow<'static, str>>) -> Self {
        // An empty `HeaderMap` does not allocate, so most errors cost only their detail.
        Self {
            code: code.into(),
            detail: detail.into(),
            headers: HeaderMap::new(),
        }
    }

    /// Adds a header to the answer.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// 401 `credential-required` with the challenge consumers expect.
    pub fn credential_required() -> Self {
        Self::new(
            ErrorCode::CredentialRequired,
            "this API requires a consumer credential; send the API key or token you were issued",
        )
        .with_header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tollgate\""),
        )
    }

    /// The code.
    pub fn code(&self) -> GatewayCode {
        self.code
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Extra headers of the answer.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub(crate) fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Renders the problem+json answer. `instance` is the request path.
    pub fn into_response(self, instance: &str, request_id: &HeaderValue) -> Response<ResponseBody> {
        let body = ProblemBody {
            type_uri: TypeUri(self.code.slug()),
            title: self.code.title(),
            status: self.code.status(),
            detail: &self.detail,
            instance,
            request_id: request_id.to_str().unwrap_or(""),
        };
        // Serializing borrowed strings into a Vec cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = Response::new(ResponseBody::full(Bytes::from(json)));
        *response.status_mut() =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        *headers = self.headers;
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(X_REQUEST_ID, request_id.clone());
        response
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.slug(), self.detail)
    }
}

impl std::error::Error for GatewayError {}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    type_uri: TypeUri,
    title: &'a str,
    status: u16,
    detail: &'a str,
    instance: &'a str,
    request_id: &'a str,
}

/// Serializes as `PROBLEM_BASE` + slug without building the string first.
struct TypeUri(&'static str);

impl Serialize for TypeUri {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{PROBLEM_BASE}{}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_problem_json() {
        let rid = HeaderValue::from_static("req-1");
        let response = GatewayError::credential_required().into_response("/weather/v1/today", &rid);
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        assert_eq!(
            response.headers()[http::header::WWW_AUTHENTICATE],
            "Bearer realm=\"tollgate\""
        );
        assert_eq!(response.headers()[X_REQUEST_ID], "req-1");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["type"], ErrorCode::CredentialRequired.type_uri());
        assert_eq!(json["title"], ErrorCode::CredentialRequired.title());
        assert_eq!(json["status"], 401);
        assert_eq!(json["instance"], "/weather/v1/today");
        assert_eq!(json["request_id"], "req-1");
        assert!(json["detail"].as_str().unwrap().contains("credential"));
    }
}
