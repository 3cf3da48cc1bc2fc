//! The authentication plug point: who is calling, decided per request after the API is
//! known and before its operations are revealed. [`CredentialAuthenticator`] checks API keys
//! against the snapshot's credential index; OAuth tokens, mTLS and signed requests plug
//! in beside it (the Credentials issue).

use std::net::IpAddr;
use std::sync::Arc;

use aws_lc_rs::hmac;
use http::HeaderValue;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use jiff::Timestamp;
use subtle::ConstantTimeEq;
use tollgate_core::ErrorCode;
use tollgate_core::apikey::{self, KeyFormatError};

use crate::access::{Access, Digest, Principal};
use crate::headers::X_API_KEY;
use crate::problem::GatewayError;
use crate::snapshot::RouteApi;

/// What an authenticator may consult besides the request head.
#[derive(Debug, Clone, Copy)]
pub struct AuthInput<'a> {
    /// The snapshot's credential index.
    pub access: &'a Access,
    /// The client's address (the TCP peer).
    pub peer: IpAddr,
    /// The request's instant, from the gateway's clock.
    pub now: Timestamp,
    /// `http` or `https`: how the client reached the gateway (signature components).
    pub scheme: &'a str,
}

/// Decides who is calling an API.
///
/// It is synchronous on purpose: every check (hashed API-key lookup, JWT signature,
/// certificate binding) works on in-memory snapshot data, and the hot path must not wait
/// on I/O.
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates the request (its head only; the body is not read yet).
    fn authenticate(
        &self,
        req: &http::request::Parts,
        api: &RouteApi,
        input: &AuthInput<'_>,
    ) -> AuthOutcome;
}

/// The verdict of an [`Authenticator`].
#[derive(Debug)]
pub enum AuthOutcome {
    /// Let the request through on behalf of this caller.
    Allow(AuthContext),
    /// Answer with this error (401, 403, …) without contacting the upstream.
    Deny(GatewayError),
}

/// Who the caller is, as later stages (authorization, rate limits, metering) need it.
#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    principal: Option<Arc<Principal>>,
    method: &'static str,
    /// A signed request's `Content-Digest`, to check against the body as it streams.
    digest: Option<tollgate_httpsig::ContentDigestCheck>,
}

impl AuthContext {
    /// A caller identified by a credential of `principal`, authenticated by `method`
    /// (`api_key`, `oauth`, `mtls`, `signature`).
    pub fn new(principal: Arc<Principal>, method: &'static str) -> Self {
        Self {
            principal: Some(principal),
            method,
            digest: None,
        }
    }

    /// The body check a signed request's `Content-Digest` requires, taken once.
    pub fn take_digest(&mut self) -> Option<tollgate_httpsig::ContentDigestCheck> {
        self.digest.take()
    }

    /// A caller with no identity (only for authenticators that allow everyone): no
    /// authorization, limits or metering apply.
    pub fn anonymous() -> Self {
        Self {
            principal: None,
            method: "none",
            digest: None,
        }
    }

    /// The caller, if identified.
    pub fn principal(&self) -> Option<&Arc<Principal>> {
        self.principal.as_ref()
    }

    /// How the caller authenticated.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// The caller's credential id, if identified.
    pub fn subject(&self) -> Option<&str> {
        self.principal.as_deref().map(|p| p.credential_id.as_str())
    }
}

/// A 401 with the RFC 6750 challenge; `invalid` adds `error="invalid_token"`.
fn unauthorized(code: ErrorCode, detail: &'static str, invalid: bool) -> GatewayError {
    let challenge = if invalid {
        HeaderValue::from_static("Bearer realm=\"tollgate\", error=\"invalid_token\"")
    } else {
        HeaderValue::from_static("Bearer realm=\"tollgate\"")
    };
    GatewayError::new(code, detail).with_header(WWW_AUTHENTICATE, challenge)
}

/// Where the API key was presented.
enum Presented<'a> {
    None,
    Key(&'a str),
    /// An `Authorization` field that is not a Bearer credential, or not text.
    Unreadable,
}

/// `Authorization: Bearer <key>` (scheme case-insensitive, RFC 9110 §11.1) or
/// `X-API-Key: <key>`; the first wins when both are sent.
fn presented(req: &http::request::Parts) -> Presented<'_> {
    if let Some(value) = req.headers.get(AUTHORIZATION) {
        let Ok(text) = value.to_str() else {
            return Presented::Unreadable;
        };
        let mut parts = text.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        let token = parts.next().map(str::trim).unwrap_or("");
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Presented::Unreadable;
        }
        return Presented::Key(token);
    }
    match req.headers.get(X_API_KEY) {
        None => Presented::None,
        Some(value) => match value.to_str() {
            Ok(text) if !text.trim().is_empty() => Presented::Key(text.trim()),
            _ => Presented::Unreadable,
        },
    }
}

/// Checks the marketplace's bearer credentials. API keys (`tg_live_…`, `tg_test_…`):
/// format and checksum offline, then the keyed digest in the snapshot's credential index
/// (compared in constant time), revocation, expiry and the key's IP allowlist. OAuth
/// access tokens (compact JWS): signature under the marketplace's published keys, `typ`,
/// `iss`, `aud`, times, then the client (not revoked) and the token's `jti` (not revoked).
pub struct CredentialAuthenticator {
    /// The HMAC key (pepper) under which the control plane stores key digests.
    pepper: hmac::Key,
    /// RFC 9421 signed requests: the gateway's policy and the nonce replay cache (which
    /// outlives snapshots).
    signatures: tollgate_httpsig::Verifier<tollgate_httpsig::MemoryNonceCache>,
}

impl std::fmt::Debug for CredentialAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialAuthenticator")
    }
}

impl CredentialAuthenticator {
    /// An authenticator whose digests are HMAC-SHA256 under `pepper`.
    pub fn new(pepper: hmac::Key) -> Self {
        let policy = tollgate_httpsig::Policy {
            // Every signed request carries a nonce, accepted once per key.
            require_nonce: true,
            ..tollgate_httpsig::Policy::default()
        };
        Self {
            pepper,
            signatures: tollgate_httpsig::Verifier::with_nonce_cache(
                policy,
                tollgate_httpsig::MemoryNonceCache::new(1 << 20),
            ),
        }
    }

    /// A signed request (RFC 9421): the policy, the registered key, the signature, the
    /// nonce; the body's digest is checked as it streams (see [`AuthContext`]).
    fn signed_request(&self, req: &http::request::Parts, input: &AuthInput<'_>) -> AuthOutcome {
        use tollgate_httpsig::Error as E;
        let deny = |e: &E| {
            let code = match e {
                E::UnknownKeyId(_) | E::MissingKeyId => ErrorCode::SignatureUnknownKey,
                E::MissingCreated
                | E::CreatedInFuture { .. }
                | E::Stale { .. }
                | E::Expired { .. } => ErrorCode::SignatureStale,
                E::ReplayedNonce { .. } => ErrorCode::SignatureReplayed,
                _ => ErrorCode::SignatureInvalid,
            };
            AuthOutcome::Deny(GatewayError::new(code, e.to_string()).with_header(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Signature realm=\"tollgate\""),
            ))
        };
        let sigs = match tollgate_httpsig::Signatures::parse(&req.headers) {
            Ok(s) => s,
            Err(e) => return deny(&e),
        };
        let msg = tollgate_httpsig::Message::request(req).with_scheme(input.scheme);
        let keys = input.access.signing_keys();
        let verified = match self
            .signatures
            .verify(&msg, &sigs, &keys, input.now.as_second())
        {
            Ok(v) => v,
            Err(e) => return deny(&e),
        };
        let Some(entry) = verified.keyid().and_then(|k| input.access.signing_key(k)) else {
            return deny(&E::MissingKeyId);
        };
        if entry.expires_at <= input.now.as_second() {
            return deny(&E::UnknownKeyId("expired".into()));
        }
        let mut ctx = AuthContext::new(entry.principal.clone(), "signature");
        if verified.body_unchecked() {
            match tollgate_httpsig::ContentDigestCheck::from_headers(&req.headers) {
                Ok(check) => ctx.digest = Some(check),
                Err(e) => return deny(&e),
            }
        }
        AuthOutcome::Allow(ctx)
    }

    /// The keyed digest of a secret, as the control plane stores it.
    pub fn digest(&self, secret: &str) -> Digest {
        let tag = hmac::sign(&self.pepper, secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl Authenticator for CredentialAuthenticator {
    fn authenticate(
        &self,
        req: &http::request::Parts,
        _api: &RouteApi,
        input: &AuthInput<'_>,
    ) -> AuthOutcome {
        if req.headers.contains_key("signature-input")
            && !req.headers.contains_key(AUTHORIZATION)
            && !req.headers.contains_key(X_API_KEY)
        {
            return self.signed_request(req, input);
        }
        let text = match presented(req) {
            Presented::None => return AuthOutcome::Deny(GatewayError::credential_required()),
            Presented::Unreadable => {
                return AuthOutcome::Deny(unauthorized(
                    ErrorCode::CredentialMalformed,
                    "send the API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                    true,
                ));
            }
            Presented::Key(text) => text,
        };
        if !text.starts_with("tg_") && text.bytes().filter(|&b| b == b'.').count() == 2 {
            return access_token(req, text, input);
        }
        match apikey::parse(text) {
            Ok(_) => {}
            Err(KeyFormatError::Malformed) => {
                return AuthOutcome::Deny(unauthorized(
                    ErrorCode::CredentialMalformed,
                    "the credential is not a Tollgate API key (tg_live_… or tg_test_…, 36 characters)",
                    true,
                ));
            }
            Err(_) => {
                return AuthOutcome::Deny(unauthorized(
                    ErrorCode::CredentialChecksum,
                    "the API key's checksum does not match: it was mistyped or truncated",
                    true,
                ));
            }
        }
        let digest = self.digest(text);
        let Some(entry) = input
            .access
            .key(&digest)
            .filter(|e| bool::from(e.digest.ct_eq(&digest)))
        else {
            return AuthOutcome::Deny(unauthorized(
                ErrorCode::CredentialUnknown,
                "no such API key",
                true,
            ));
        };
        let now = input.now.as_second();
        if entry.revoked_at.is_some_and(|at| at <= now) {
            return AuthOutcome::Deny(unauthorized(
                ErrorCode::CredentialRevoked,
                "the API key was revoked",
                true,
            ));
        }
        if entry.expires_at <= now {
            return AuthOutcome::Deny(unauthorized(
                ErrorCode::CredentialExpired,
                "the API key has expired",
                true,
            ));
        }
        if !entry.allows_ip(input.peer) {
            return AuthOutcome::Deny(GatewayError::new(
                ErrorCode::IpDenied,
                "the API key may not be used from this address",
            ));
        }
        AuthOutcome::Allow(AuthContext::new(entry.principal.clone(), "api_key"))
    }
}

/// Verifies an OAuth access token against the snapshot.
fn access_token(req: &http::request::Parts, token: &str, input: &AuthInput<'_>) -> AuthOutcome {
    use tollgate_oauth::Error as E;
    let Some(verifier) = input.access.token_verifier() else {
        return AuthOutcome::Deny(unauthorized(
            ErrorCode::TokenBadSignature,
            "this marketplace issues no access tokens",
            true,
        ));
    };
    let now = time::OffsetDateTime::from_unix_timestamp(input.now.as_second())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let claims = match verifier.verify(token, now) {
        Ok(claims) => claims,
        Err(e) => {
            let (code, detail) = match e {
                E::Expired => (ErrorCode::TokenExpired, "the access token has expired"),
                E::NotYetValid => (
                    ErrorCode::TokenNotYetValid,
                    "the access token is not valid yet",
                ),
                E::WrongAudience => (
                    ErrorCode::TokenWrongAudience,
                    "the access token is for another audience",
                ),
                E::WrongIssuer => (
                    ErrorCode::TokenWrongIssuer,
                    "the access token is from another issuer",
                ),
                E::WrongType => (
                    ErrorCode::TokenWrongType,
                    "the token is not an access token",
                ),
                E::UnsupportedAlg | E::AlgMismatch | E::UnknownKey | E::BadSignature => (
                    ErrorCode::TokenBadSignature,
                    "the access token's signature does not verify",
                ),
                _ => (ErrorCode::TokenMalformed, "the access token is malformed"),
            };
            return AuthOutcome::Deny(unauthorized(code, detail, true));
        }
    };
    let client = input
        .access
        .oauth_client(&claims.client_id.to_string())
        .filter(|c| c.client.app_id == claims.app && c.client.mode == claims.mode);
    let Some(client) = client else {
        return AuthOutcome::Deny(unauthorized(
            ErrorCode::TokenRevoked,
            "the access token's client was revoked",
            true,
        ));
    };
    // A certificate-bound token (RFC 8705) only over a connection with that certificate.
    let presented = req
        .extensions
        .get::<crate::tls::ClientCert>()
        .map(|c| &c.thumbprint);
    if claims.check_certificate(presented).is_err() {
        return AuthOutcome::Deny(unauthorized(
            ErrorCode::TokenCertificateMismatch,
            "the access token is bound to another client certificate",
            true,
        ));
    }
    if input.access.is_revoked(&claims.jti) {
        return AuthOutcome::Deny(unauthorized(
            ErrorCode::TokenRevoked,
            "the access token was revoked",
            true,
        ));
    }
    // The token's scopes, within what the client may still be granted.
    let base = &client.principal;
    let principal = Principal {
        credential_id: base.credential_id.clone(),
        app_id: base.app_id,
        app_id_str: base.app_id_str.clone(),
        org_id: base.org_id,
        mode: base.mode,
        scopes: claims
            .scopes()
            .filter(|s| base.scopes.iter().any(|b| b == s))
            .map(str::to_owned)
            .collect(),
        operations: None,
        subject: base.subject,
    };
    AuthOutcome::Allow(AuthContext::new(Arc::new(principal), "oauth"))
}

/// Refuses every API call with 401 `credential-required` and a `WWW-Authenticate:
/// Bearer realm="tollgate"` challenge.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Authenticator for DenyAll {
    fn authenticate(
        &self,
        _req: &http::request::Parts,
        _api: &RouteApi,
        _input: &AuthInput<'_>,
    ) -> AuthOutcome {
        AuthOutcome::Deny(GatewayError::credential_required())
    }
}

/// Lets every call through anonymously. Tests only: it exists with the `testing`
/// feature or under `cfg(test)`, never in a production build.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

#[cfg(any(test, feature = "testing"))]
impl Authenticator for AllowAll {
    fn authenticate(
        &self,
        _req: &http::request::Parts,
        _api: &RouteApi,
        _input: &AuthInput<'_>,
    ) -> AuthOutcome {
        AuthOutcome::Allow(AuthContext::anonymous())
    }
}
