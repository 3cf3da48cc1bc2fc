//! Tollgate's data plane: a hyper reverse proxy that routes by host, path and method to
//! API operations over an atomically swapped [`Snapshot`], authenticates callers through
//! an [`Authenticator`], and answers its own errors as RFC 9457 problem details.
//!
//! A request's path: [`server::serve`] accepts the connection (plain HTTP/1.1 + h2c, or
//! TLS with ALPN) → [`Gateway::handle`] loads the snapshot once → [`Snapshot::route`]
//! finds the API (host + base path) → the [`Authenticator`] identifies the caller from
//! the snapshot's [`Access`] index → [`ApiMatch::match_operation`] finds the operation →
//! [`pipeline::admit`] picks the subscription, runs its Cedar policies and counts rate
//! limits and quotas → [`upstream`] sends the request (circuit breaker, failover,
//! retries) and the response streams back, metered into a [`UsageRecord`].

pub mod access;
pub mod auth;
pub mod body;
pub mod headers;
pub mod pipeline;
pub mod problem;
pub mod proxy;
pub mod router;
pub mod server;
pub mod snapshot;
pub mod tls;
pub mod upstream;
pub mod usage;

pub use access::{Access, AccessError, AccessInput, PlanInput, PlanRuntime};
pub use auth::{
    AuthContext, AuthInput, AuthOutcome, Authenticator, CredentialAuthenticator, DenyAll,
};
pub use pipeline::Services;
pub use problem::{ErrorOrigin, GatewayCode, GatewayError};
pub use proxy::{Gateway, HEALTH_PATH};
pub use router::{AllowedMethods, ApiMatch, OperationMatch, Params};
pub use server::{GatewayConfig, serve};
pub use snapshot::{RouteApi, RouteOperation, Snapshot, SnapshotError, SnapshotHandle};
pub use tls::{TlsError, TlsFiles};
pub use upstream::{BreakerConfig, HealthCheckConfig};
pub use usage::{DenialRecord, EventSink, GatewayEvent, UsageRecord};

#[cfg(any(test, feature = "testing"))]
pub use auth::AllowAll;
