//! The marketplace's OAuth 2.0 authorization server for the client credentials grant,
//! served on the gateway listener (the public face) through the gateway's
//! [`PublicEndpoints`] hook:
//!
//! - `POST /oauth/token` — `client_secret_basic` or `private_key_jwt` (RFC 7523) client
//!   authentication; RFC 9068 access tokens signed with the keyring's token-signing key;
//! - `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009, 200 for
//!   unknown tokens; the next gateway request with a revoked token is refused);
//! - `GET /.well-known/jwks.json` (token keys), `/.well-known/tollgate-assertion-jwks.json`
//!   (gateway assertion keys), `/.well-known/oauth-authorization-server` (RFC 8414).
//!
//! Clients are looked up in the live gateway snapshot, so a revoked client can get no
//! token from the moment its revocation returned. Errors follow RFC 6749 §5.2 (`error`,
//! `error_description`), which OAuth client libraries expect.

// Helpers return a finished error `Response` for handlers to return as is; it is built
// only on the error path, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tollgate_core::model::ClientAuthMethod;
use tollgate_gateway::access::OAuthClientEntry;
use tollgate_gateway::pipeline::PublicEndpoints;
use tollgate_gateway::tls::{CaCheck, ClientCert};
use tollgate_keyring::KeyPurpose;
use tollgate_oauth::{
    AccessClaims, AuthorizationServerMetadata, ClientAssertionVerifier, ClientAuth, Error,
    IntrospectionResponse, RevocationRequest, TokenRequest, TokenResponse,
};
use tower::ServiceExt;

use crate::state::AppState;

/// Largest request body the endpoints read.
const MAX_BODY: usize = 64 * 1024;

/// The endpoints as the gateway's hook.
pub struct Endpoints {
    router: Router,
}

impl Endpoints {
    pub fn new(state: Arc<AppState>) -> Self {
        let router = Router::new()
            .route("/oauth/token", post(token))
            .route("/oauth/introspect", post(introspect))
            .route("/oauth/revoke", post(revoke))
            .route("/.well-known/jwks.json", get(jwks))
            .route(
                "/.well-known/tollgate-assertion-jwks.json",
                get(assertion_jwks),
            )
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .with_state(state);
        Self { router }
    }
}

impl PublicEndpoints for Endpoints {
    fn serves(&self, path: &str) -> bool {
        path.starts_with("/oauth/") || path.starts_with("/.well-known/")
    }

    fn call(
        &self,
        req: http::Request<hyper::body::Incoming>,
        _peer: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send + 'static>> {
        let router = self.router.clone();
        Box::pin(async move {
            let req = req.map(axum::body::Body::new);
            let response = match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            let bytes = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => Bytes::new(),
            };
            http::Response::from_parts(parts, bytes)
        })
    }
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"tollgate\""),
        );
    }
    r
}

fn from_error(e: &Error) -> Response {
    let code = e.oauth_error(true).map_or("server_error", |c| c.as_str());
    let status = match code {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    oauth_error(status, code, &e.to_string())
}

fn now(state: &AppState) -> OffsetDateTime {
    state.now()
}

/// Reads a form body (bounded, UTF-8).
async fn form_body(body: axum::body::Body) -> Result<String, Response> {
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is too large",
        )
    })?;
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body is not UTF-8",
        )
    })
}

/// Authenticates the client of a token, introspection or revocation request.
fn authenticate_client(
    state: &AppState,
    auth: ClientAuth,
    cert: Option<&ClientCert>,
    at: OffsetDateTime,
) -> Result<Arc<OAuthClientEntry>, Response> {
    let snapshot = state.snapshot.load_full();
    let access = snapshot.access();
    let invalid = |why: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    match auth {
        ClientAuth::SecretBasic(basic) => {
            let client = access
                .oauth_client(&basic.client_id)
                .filter(|c| c.client.auth_method == ClientAuthMethod::ClientSecretBasic)
                .cloned()
                .ok_or_else(|| invalid("unknown client or wrong authentication method"))?;
            let digest = state.token_digest_bytes(&basic.client_secret);
            let ok = client
                .secret_digest
                .as_ref()
                .is_some_and(|d| bool::from(d.ct_eq(&digest)));
            if ok {
                Ok(client)
            } else {
                Err(invalid("wrong client secret"))
            }
        }
        ClientAuth::PrivateKeyJwt {
            client_id,
            assertion,
        } => {
            let issuer = state.public_url();
            let verifier =
                ClientAssertionVerifier::new(issuer.clone(), format!("{issuer}/oauth/token"));
            let mut jtis = state
                .assertion_jtis
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            jtis.retain(|_, exp| *exp > at);
            let mut first_use = |client: &str, jti: &str, exp: OffsetDateTime| {
                jtis.insert(format!("{client}\0{jti}"), exp).is_none()
            };
            let verified = verifier
                .verify(
                    &assertion,
                    client_id.as_deref(),
                    at,
                    |id| {
                        access
                            .oauth_client(id)
                            .filter(|c| c.client.auth_method == ClientAuthMethod::PrivateKeyJwt)
                            .and_then(|c| c.keys.as_ref())
                    },
                    &mut first_use,
                )
                .map_err(|e| from_error(&e))?;
            access
                .oauth_client(&verified.client_id)
                .cloned()
                .ok_or_else(|| invalid("unknown client"))
        }
        ClientAuth::TlsClient { client_id } => {
            let client = access
                .oauth_client(&client_id)
                .cloned()
                .ok_or_else(|| invalid("unknown client"))?;
            match client.client.auth_method {
                // RFC 8705 §2.2: the registered certificate, by thumbprint.
                ClientAuthMethod::SelfSignedTlsClientAuth => {
                    let registered = client
                        .client
                        .tls_thumbprint
                        .as_deref()
                        .and_then(tollgate_oauth::CertThumbprint::from_base64url);
                    match (registered, cert) {
                        (Some(r), Some(c)) if r == c.thumbprint => Ok(client),
                        (_, None) => Err(invalid("no TLS client certificate was presented")),
                        _ => Err(invalid(
                            "the TLS client certificate is not the registered one",
                        )),
                    }
                }
                // RFC 8705 §2.1: a certificate chaining to the client CA (checked with
                // its CRLs when the connection was set up) that names the registered
                // subject DN or SAN.
                ClientAuthMethod::TlsClientAuth => {
                    let Some(cert) = cert else {
                        return Err(invalid("no TLS client certificate was presented"));
                    };
                    let registered = client.client.tls_subject.as_deref().unwrap_or("");
                    match &cert.ca {
                        CaCheck::Verified(identity) if identity.matches(registered) => Ok(client),
                        CaCheck::Verified(identity) => Err(invalid(&format!(
                            "the TLS client certificate (subject {}) does not name the registered subject",
                            identity.subject_dn()
                        ))),
                        CaCheck::Rejected(why) => Err(invalid(why)),
                        CaCheck::NotConfigured => Err(invalid(
                            "tls_client_auth needs a client CA, which this marketplace does not configure (serve --client-ca)",
                        )),
                    }
                }
                _ => Err(invalid("the client does not authenticate with TLS")),
            }
        }
    }
}

/// `POST /oauth/token`: the client credentials grant.
async fn token(
    State(state): State<Arc<AppState>>,
    cert: Option<axum::Extension<ClientCert>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let cert = cert.map(|c| c.0);
    let body = match form_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let req = match TokenRequest::parse(&body, authorization) {
        Ok(r) => r,
        Err(e) => return from_error(&e),
    };
    let at = now(&state);
    let mtls = matches!(req.client, ClientAuth::TlsClient { .. });
    let client = match authenticate_client(&state, req.client, cert.as_ref(), at) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let scope = match tollgate_oauth::grant_scope(req.scope.as_deref(), &client.client.scopes) {
        Ok(s) => s,
        Err(e) => return from_error(&e),
    };
    let c = &client.client;
    let claims = match AccessClaims::new(
        c.id,
        c.app_id,
        c.org_id,
        c.mode,
        scope,
        at,
        time::Duration::seconds(i64::from(c.token_lifetime_seconds)),
    ) {
        Ok(c) => c,
        Err(e) => return from_error(&e),
    };
    // RFC 8705 §3: a token of a client that authenticated with its certificate is bound
    // to that certificate.
    let mut claims = claims;
    if mtls {
        claims.cert_thumbprint = cert.map(|c| c.thumbprint);
    }
    let url = state.public_url();
    let ring = state.keyring.read().await;
    let token = tollgate_oauth::KeyringSigner::new(&ring, KeyPurpose::TokenSigning)
        .and_then(|signer| claims.issue(&signer, &url, &url));
    drop(ring);
    match token {
        Ok(token) => {
            let mut r = axum::Json(TokenResponse::bearer(token, &claims)).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "signing an access token failed");
            from_error(&e)
        }
    }
}

/// Reads the `token` of an introspection or revocation body after authenticating the
/// caller; the token counts only if it is a valid token of the caller's app.
async fn caller_and_token(
    state: &AppState,
    cert: Option<ClientCert>,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(Arc<OAuthClientEntry>, Option<AccessClaims>), Response> {
    let body = form_body(body).await?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let at = now(state);
    let client_auth = ClientAuth::parse(&body, authorization).map_err(|e| from_error(&e))?;
    let caller = authenticate_client(state, client_auth, cert.as_ref(), at)?;
    let req = RevocationRequest::parse(&body).map_err(|e| from_error(&e))?;
    let snapshot = state.snapshot.load_full();
    let claims = snapshot
        .access()
        .token_verifier()
        .and_then(|v| v.verify(&req.token, at).ok())
        .filter(|c| c.app == caller.client.app_id);
    Ok((caller, claims))
}

/// `POST /oauth/introspect` (RFC 7662).
async fn introspect(
    State(state): State<Arc<AppState>>,
    cert: Option<axum::Extension<ClientCert>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let cert = cert.map(|c| c.0);
    let (_, claims) = match caller_and_token(&state, cert, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let snapshot = state.snapshot.load_full();
    let access = snapshot.access();
    let url = state.public_url();
    let answer = match claims {
        Some(c)
            if !access.is_revoked(&c.jti)
                && access.oauth_client(&c.client_id.to_string()).is_some() =>
        {
            IntrospectionResponse::active(&c, &url, &url)
        }
        _ => IntrospectionResponse::inactive(),
    };
    axum::Json(answer).into_response()
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token was known.
async fn revoke(
    State(state): State<Arc<AppState>>,
    cert: Option<axum::Extension<ClientCert>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let cert = cert.map(|c| c.0);
    let (_, claims) = match caller_and_token(&state, cert, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(c) = claims {
        let result = async {
            let mut tx = state.store.write().await?;
            tx.revoke_token_jti(&c.jti.to_string(), c.client_id, c.expires_at, state.now())
                .await?;
            crate::ops::commit(&state, tx, true).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e.detail, "revoking a token failed");
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the revocation could not be stored; retry",
            );
        }
    }
    StatusCode::OK.into_response()
}

async fn published(state: &AppState, purpose: KeyPurpose) -> Response {
    let ring = state.keyring.read().await;
    match tollgate_oauth::rotation::published_jwks(&ring, purpose, state.now()) {
        Ok(jwks) => {
            let mut r = axum::Json(jwks).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "publishing keys failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    published(&state, KeyPurpose::TokenSigning).await
}

async fn assertion_jwks(State(state): State<Arc<AppState>>) -> Response {
    published(&state, KeyPurpose::GatewayAssertion).await
}

async fn metadata(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(AuthorizationServerMetadata::for_issuer(&state.public_url())).into_response()
}

/// Signs gateway assertions with the keyring's gateway-assertion key and reuses each one
/// while more than half of its lifetime is left, so steady traffic of a caller costs a
/// signature about twice a minute, not once per call.
pub struct Assertions {
    state: Arc<AppState>,
    cache: std::sync::Mutex<std::collections::HashMap<AssertionKey, AssertionEntry>>,
}

/// What an assertion depends on: the signing key, the credential, its scopes, the
/// subscription, the API.
/// The credential is its limiter subject (a fold of its id); its scopes are kept in the
/// entry and compared exactly, so a hit allocates nothing.
type AssertionKey = (
    tollgate_core::KeyId,
    u64,
    tollgate_core::SubscriptionId,
    tollgate_core::ApiId,
);

/// A signed assertion, the scopes it states, and when to sign a fresh one.
type AssertionEntry = (Vec<String>, HeaderValue, i64);

/// Entries kept at most; the cache is emptied when it grows past this.
const ASSERTION_CACHE: usize = 65_536;

/// The audience of an API's assertions: `urn:tollgate:api:<api id>`.
pub fn assertion_audience(api: tollgate_core::ApiId) -> String {
    format!("urn:tollgate:api:{api}")
}

impl Assertions {
    pub fn new(state: Arc<AppState>) -> Self {
        Self {
            state,
            cache: std::sync::Mutex::default(),
        }
    }
}

impl tollgate_gateway::pipeline::AssertionSigner for Assertions {
    fn assertion(
        &self,
        facts: &tollgate_gateway::pipeline::AssertionFacts<'_>,
    ) -> Option<HeaderValue> {
        let p = facts.principal;
        let sub = facts.subscription;
        // A rotation holds the keyring for a moment; a call then goes without assertion
        // rather than wait on the request path. The active key is part of the cache key,
        // so a rotation (say, after a compromise) takes effect on the next call.
        let ring = self.state.keyring.try_read().ok()?;
        let active = ring.active(KeyPurpose::GatewayAssertion)?.id;
        let key: AssertionKey = (active, p.subject, sub.id, facts.api);
        let now = facts.now.as_second();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((scopes, value, refresh_at)) = cache.get(&key)
                && *refresh_at > now
                && *scopes == p.scopes
            {
                return Some(value.clone());
            }
        }
        let method = match facts.auth_method {
            "oauth" => tollgate_oauth::AuthMethod::OAuth,
            "mtls" => tollgate_oauth::AuthMethod::Mtls,
            "signature" => tollgate_oauth::AuthMethod::Signature,
            _ => tollgate_oauth::AuthMethod::ApiKey,
        };
        let at = OffsetDateTime::from_unix_timestamp(now).ok()?;
        let mut claims = tollgate_oauth::GatewayAssertion::new(
            p.app_id,
            p.org_id,
            sub.plan.plan_id,
            sub.id,
            p.mode,
            p.scopes.join(" "),
            method,
            at,
        )
        .ok()?;
        if method == tollgate_oauth::AuthMethod::OAuth {
            claims.client_id = p.credential_id.parse().ok();
        }
        let token = tollgate_oauth::KeyringSigner::new(&ring, KeyPurpose::GatewayAssertion)
            .and_then(|signer| {
                claims.issue(
                    &signer,
                    &self.state.public_url(),
                    &assertion_audience(facts.api),
                )
            });
        drop(ring);
        let token = match token {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "signing a gateway assertion failed");
                return None;
            }
        };
        let value = HeaderValue::try_from(token).ok()?;
        let lifetime = (claims.expires_at - claims.issued_at).whole_seconds();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= ASSERTION_CACHE {
            cache.clear();
        }
        cache.insert(key, (p.scopes.clone(), value.clone(), now + lifetime / 2));
        Some(value)
    }
}
