//! The wire documents around the token endpoint: RFC 8414 authorization server metadata,
//! the RFC 6749 §5 token and error responses, RFC 7662 introspection responses and RFC
//! 7009 revocation requests.

use serde::{Deserialize, Serialize};

use crate::client_auth::Form;
use crate::{AccessClaims, Alg, Error, OAuthErrorCode, Result};

/// RFC 8414 §2 authorization server metadata, served at
/// `/.well-known/oauth-authorization-server`. Absent members are left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer identifier: an `https` URL without query or fragment; the `iss` of every
    /// access token.
    pub issuer: String,
    /// Where clients get tokens.
    pub token_endpoint: String,
    /// Where the access-token verification keys are published.
    pub jwks_uri: String,
    /// Scopes clients may request, if the server chooses to list them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Required by RFC 8414 even without an authorization endpoint; empty here, since the
    /// client credentials grant uses no `response_type`.
    pub response_types_supported: Vec<String>,
    /// `["client_credentials"]`.
    pub grant_types_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms accepted for `private_key_jwt` assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Client authentication methods at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// Client authentication methods at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Human-readable documentation for developers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
    /// RFC 8705 §3.3: whether access tokens can be bound to client certificates.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_client_certificate_bound_access_tokens: bool,
}

/// Every client authentication method the token endpoint supports, in the order the
/// metadata lists them.
pub const TOKEN_ENDPOINT_AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
];

impl AuthorizationServerMetadata {
    /// Metadata for an issuer whose endpoints live under its URL: `{issuer}/oauth/token`,
    /// `/oauth/revoke`, `/oauth/introspect` and `/.well-known/jwks.json`; every auth
    /// method, `EdDSA` and `ES256` assertions, certificate-bound tokens. Change fields
    /// afterwards where a deployment differs.
    pub fn for_issuer(issuer: &str) -> Self {
        let base = issuer.trim_end_matches('/');
        let methods: Vec<String> = TOKEN_ENDPOINT_AUTH_METHODS.map(str::to_owned).to_vec();
        Self {
            issuer: issuer.to_owned(),
            token_endpoint: format!("{base}/oauth/token"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            scopes_supported: Vec::new(),
            response_types_supported: Vec::new(),
            grant_types_supported: vec![crate::CLIENT_CREDENTIALS.to_owned()],
            token_endpoint_auth_methods_supported: methods.clone(),
            token_endpoint_auth_signing_alg_values_supported: vec![
                Alg::EdDSA.as_str().to_owned(),
                Alg::Es256.as_str().to_owned(),
            ],
            revocation_endpoint: Some(format!("{base}/oauth/revoke")),
            revocation_endpoint_auth_methods_supported: methods.clone(),
            introspection_endpoint: Some(format!("{base}/oauth/introspect")),
            introspection_endpoint_auth_methods_supported: methods,
            service_documentation: None,
            tls_client_certificate_bound_access_tokens: true,
        }
    }
}

/// A successful token response (RFC 6749 §5.1), sent with `Cache-Control: no-store`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// The granted scope; RFC 6749 §5.1 asks for it when it differs from the request, and
    /// it is always sent here so clients need not guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl TokenResponse {
    /// The response for an issued token: lifetime from its `iat` and `exp`.
    pub fn bearer(access_token: String, claims: &AccessClaims) -> Self {
        let lifetime = (claims.expires_at - claims.issued_at).whole_seconds();
        Self {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: u64::try_from(lifetime).unwrap_or(0),
            scope: Some(claims.scope.clone()),
        }
    }
}

/// An error response of the token, revocation or introspection endpoint (RFC 6749 §5.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: OAuthErrorCode,
    /// Human-readable detail for the client developer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl ErrorResponse {
    /// The response for a token endpoint failure, or `None` for a server-side error
    /// (answer 500 instead). `invalid_client` is answered with 401 and
    /// `WWW-Authenticate: Basic` when the client used the `Authorization` header, 400
    /// otherwise (RFC 6749 §5.2).
    pub fn from_error(error: &Error) -> Option<Self> {
        error.oauth_error(true).map(|code| Self {
            error: code,
            error_description: Some(error.to_string()),
        })
    }
}

/// An RFC 7662 §2.2 introspection response. An inactive token gets `{"active": false}` and
/// nothing else, so nothing is learned about tokens one may not see.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    /// Whether the token is currently active.
    pub active: bool,
    /// Granted scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, NumericDate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, NumericDate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not-before, NumericDate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Subject: the client id for client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// RFC 8705 §3.2: the certificate binding, `{"x5t#S256": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<serde_json::Value>,
    /// The app, as in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tg_app: Option<String>,
    /// The org, as in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tg_org: Option<String>,
    /// `live` or `test`, as in the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tg_mode: Option<String>,
}

impl IntrospectionResponse {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Self::default()
    }

    /// The response for a token that verified (and is not revoked).
    pub fn active(claims: &AccessClaims, issuer: &str, audience: &str) -> Self {
        let client_id = claims.client_id.to_string();
        Self {
            active: true,
            scope: Some(claims.scope.clone()),
            client_id: Some(client_id.clone()),
            token_type: Some("Bearer".to_owned()),
            exp: Some(claims.expires_at.unix_timestamp()),
            iat: Some(claims.issued_at.unix_timestamp()),
            nbf: claims.not_before.map(|t| t.unix_timestamp()),
            sub: Some(client_id),
            aud: Some(audience.to_owned()),
            iss: Some(issuer.to_owned()),
            jti: Some(claims.jti.to_string()),
            cnf: claims
                .cert_thumbprint
                .map(|t| serde_json::json!({ "x5t#S256": t.to_base64url() })),
            tg_app: Some(claims.app.to_string()),
            tg_org: Some(claims.org.to_string()),
            tg_mode: Some(claims.mode.as_str().to_owned()),
        }
    }
}

/// `token_type_hint` of a revocation request (RFC 7009 §2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token` (this server issues none; such a token is simply not found).
    RefreshToken,
    /// Any other value: the server ignores hints it does not know and searches all its
    /// token types (RFC 7009 §2.1).
    Other(String),
}

/// An RFC 7009 revocation request: a form body with `token` and optional
/// `token_type_hint`. Client authentication travels as at the token endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRequest {
    /// The token to revoke.
    pub token: String,
    /// The client's hint about its type.
    pub token_type_hint: Option<TokenTypeHint>,
}

impl RevocationRequest {
    /// Parses the form body. A missing `token` or a repeated parameter is
    /// [`Error::InvalidRequest`]. Per RFC 7009 §2.2 the server answers 200 whether or not
    /// the token was found or valid, so nothing here checks the token itself.
    pub fn parse(body: &str) -> Result<Self> {
        let form = Form::parse(body)?;
        let token = form
            .get("token")
            .ok_or(Error::InvalidRequest("token is required"))?
            .to_owned();
        let token_type_hint = form.get("token_type_hint").map(|hint| match hint {
            "access_token" => TokenTypeHint::AccessToken,
            "refresh_token" => TokenTypeHint::RefreshToken,
            other => TokenTypeHint::Other(other.to_owned()),
        });
        Ok(Self {
            token,
            token_type_hint,
        })
    }
}
