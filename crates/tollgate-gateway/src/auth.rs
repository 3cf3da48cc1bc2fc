//! The authentication plug point: who is calling, decided per request after the API is
//! known and before its operations are revealed. API keys, OAuth tokens, mTLS and signed
//! requests plug in here in the Gateway issue; the Foundation ships [`DenyAll`].

use std::sync::Arc;

use crate::problem::GatewayError;
use crate::snapshot::RouteApi;

/// Decides whether a request may call an API.
///
/// It is synchronous on purpose: every check it will grow (hashed API-key lookup, JWT
/// signature, certificate binding) works on in-memory snapshot data, and the hot path
/// must not wait on I/O.
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates the request (its head only; the body is not read yet).
    fn authenticate(&self, req: &http::request::Parts, api: &RouteApi) -> AuthOutcome;
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
/// Opaque for now: the credential work of the Gateway issue fills it in.
#[derive(Debug, Clone, Default)]
pub struct AuthContext {
    subject: Option<Arc<str>>,
}

impl AuthContext {
    /// A caller identified by `subject` (e.g. a credential id).
    pub fn new(subject: impl Into<Arc<str>>) -> Self {
        Self {
            subject: Some(subject.into()),
        }
    }

    /// A caller with no identity (only for authenticators that allow everyone).
    pub fn anonymous() -> Self {
        Self { subject: None }
    }

    /// The caller's subject, if identified.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
}

/// Refuses every API call with 401 `credential-required` and a `WWW-Authenticate:
/// Bearer realm="tollgate"` challenge. The Foundation wiring uses it until credentials
/// exist, so nothing is reachable without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct DenyAll;

impl Authenticator for DenyAll {
    fn authenticate(&self, _req: &http::request::Parts, _api: &RouteApi) -> AuthOutcome {
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
    fn authenticate(&self, _req: &http::request::Parts, _api: &RouteApi) -> AuthOutcome {
        AuthOutcome::Allow(AuthContext::anonymous())
    }
}
