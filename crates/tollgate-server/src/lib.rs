//! Tollgate's control plane: the admin REST API (axum) with tenancy, audit, idempotency
//! and problem details; the compiler of gateway snapshots; and [`serve`], which runs the
//! admin listener and the gateway listener in one process with a graceful drain.
//!
//! A request to the admin API passes, outermost first: request id → problem rendering
//! (fills `instance` and `request_id` into RFC 9457 bodies) → panic catcher →
//! idempotency (POST with `Idempotency-Key`) → the handler, whose [`auth::Caller`]
//! extractor authenticates and whose body does: check → write transaction → audit entry
//! in the same transaction → commit → snapshot refresh when routing changed.

pub mod acceptance;
pub mod auth;
pub mod billing;
pub mod error;
pub mod extract;
mod idempotency;
pub mod invoice_render;
pub mod jobs;
pub mod ledger;
pub mod metering;
pub mod notices;
pub mod oauth;
pub mod ops;
pub mod policy;
pub mod routes;
pub mod snapshot;
pub mod state;
pub mod webhooks;
pub mod webhooks_out;

use crate::error::{ApiError, PendingProblem, ProblemContext, problem_response};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tollgate_core::ErrorCode;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

pub use state::{AppState, InitError};
pub use tollgate_gateway::{GatewayConfig, SnapshotHandle};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate admin API",
        description = "The control plane of a Tollgate marketplace: organizations and members, APIs and their OpenAPI documents, plans, applications, subscriptions, the audit log and the keyring.\n\nAuthenticate with `Authorization: Bearer <token>` (the operator token made on first start, or a personal token `tgp_…`). Errors are RFC 9457 problem details (`application/problem+json`) whose `type` is `https://tollgate.dev/problems/<slug>`; each slug is documented at `/problems/<slug>`. Objects of other organizations answer 404. Updates honour `If-Match` (412 when stale); POSTs honour `Idempotency-Key` (the first response is replayed for 24 h; the same key with another body is 422). Lists are paginated with `limit` and `cursor` (`next_cursor`).\n\n**OAuth 2.0 on the gateway listener** (the marketplace's public face, not this API): `POST /oauth/token` (client credentials; `client_secret_basic` or `private_key_jwt` per RFC 7523; RFC 9068 JWT access tokens, EdDSA), `POST /oauth/introspect` (RFC 7662), `POST /oauth/revoke` (RFC 7009; 200 for unknown tokens), `GET /.well-known/jwks.json` (access-token keys), `GET /.well-known/oauth-authorization-server` (RFC 8414) and `GET /.well-known/tollgate-assertion-jwks.json` (keys of the assertion the gateway adds to forwarded calls). Clients are created here under `/v1/apps/{app_id}/oauth-clients`. Token endpoint errors follow RFC 6749 §5.2.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&SecurityAddon),
    components(schemas(error::Problem)),
    tags(
        (name = "tenancy", description = "Organizations, members and personal tokens"),
        (name = "apis", description = "APIs, their OpenAPI documents and operations"),
        (name = "plans", description = "Plans: the operations a provider offers under one set of terms"),
        (name = "apps", description = "Consumer applications"),
        (name = "terms", description = "Term sheets: versioned, content-addressed terms compiled to policy"),
        (name = "subscriptions", description = "Apps subscribed to plans, with their lifecycle"),
        (name = "audit", description = "The append-only, hash-chained audit log"),
        (name = "keys", description = "The marketplace keyring"),
        (name = "meta", description = "Health, readiness and problem type documentation"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The admin API router and its OpenAPI document.
pub fn admin_router(state: Arc<AppState>) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::tenancy::router())
        .merge(routes::apis::router())
        .merge(routes::catalog::router())
        .merge(routes::terms::router())
        .merge(routes::credentials::router())
        .merge(routes::oauth_clients::router())
        .merge(routes::signing_keys::router())
        .merge(routes::ledger::router())
        .merge(routes::usage::router())
        .merge(routes::billing::router())
        .merge(routes::webhooks::router())
        .merge(routes::audit::router())
        .merge(routes::meta::router())
        .split_for_parts();
    let doc = Arc::new(openapi.clone());
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            ApiError::new(ErrorCode::NotFound, "no such route; see /openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this path does not accept this method; see the Allow header",
            )
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn(problem_layer))
        .layer(middleware::from_fn(request_id_layer))
        .with_state(state);
    (router, openapi)
}

/// Keeps a sane incoming `X-Request-Id` (≤ 128 characters of `[A-Za-z0-9._-]`) or makes
/// one, and echoes it on the response.
async fn request_id_layer(mut req: Request, next: Next) -> Response {
    let incoming = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    let id = match incoming {
        Some(v) => HeaderValue::from_str(v).ok(),
        None => None,
    }
    .unwrap_or_else(|| {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .unwrap_or(HeaderValue::from_static("-"))
    });
    req.headers_mut().insert("x-request-id", id.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    tracing::info!(target: "tollgate::access", request_id = id.to_str().unwrap_or(""), %method, %path, status = resp.status().as_u16(), "admin request");
    resp.headers_mut().insert("x-request-id", id);
    resp
}

/// Renders errors as RFC 9457 bodies with the request's path and id.
async fn problem_layer(req: Request, next: Next) -> Response {
    let ctx = ProblemContext {
        instance: req.uri().path().to_owned(),
        request_id: req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    };
    render_pending(next.run(req).await, &ctx)
}

/// Renders a response carrying a [`PendingProblem`] into its problem+json body.
pub(crate) fn render_pending(mut resp: Response, ctx: &ProblemContext) -> Response {
    let Some(PendingProblem(err)) = resp.extensions_mut().remove::<PendingProblem>() else {
        return resp;
    };
    let status =
        StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let problem = err.problem(Some(ctx.instance.clone()), Some(ctx.request_id.clone()));
    problem_response(status, &problem, resp)
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Longest time in-flight requests may take to finish after shutdown begins.
    pub drain_timeout: Duration,
    pub gateway: GatewayConfig,
    /// How often quota counts are persisted (they are also saved at shutdown).
    pub quota_save_interval: Duration,
    /// Capacity of the gateway's usage/denial event channel.
    pub event_buffer: usize,
    /// The marketplace's public URL (OAuth issuer and token audience); default
    /// `http://<gateway address>` (`https://` when the gateway speaks TLS).
    pub public_url: Option<String>,
    /// The usage ledger; `None` runs without one (usage records are then only logged).
    pub ledger: Option<ledger::LedgerConfig>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(10),
            gateway: GatewayConfig::default(),
            quota_save_interval: Duration::from_secs(5),
            event_buffer: 65_536,
            public_url: None,
            ledger: None,
        }
    }
}

/// Serves the admin API on `admin` and the gateway on `gateway` until `shutdown`
/// completes; then both stop accepting, in-flight requests get `drain_timeout` to
/// finish, and the store is closed (flushing SQLite's WAL).
pub async fn serve(
    state: Arc<AppState>,
    admin: TcpListener,
    gateway: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let public_url = match &options.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let scheme = if options.gateway.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}", gateway.local_addr()?)
        }
    };
    *state.public_url.write().unwrap_or_else(|e| e.into_inner()) = public_url;
    let restored = metering::restore_quotas(&state)
        .await
        .map_err(|e| std::io::Error::other(format!("quota state: {}", e.detail)))?;
    snapshot::refresh(&state)
        .await
        .map_err(|e| std::io::Error::other(format!("initial snapshot: {}", e.detail)))?;
    tracing::debug!(quota_keys = restored, "quota counts restored");
    let housekeeping = jobs::spawn(state.clone(), Duration::from_secs(60));
    let quota_saver = metering::spawn_quota_saver(state.clone(), options.quota_save_interval);
    // The binary opens the ledger itself before it says it is running; embedders may
    // leave it to `serve`.
    if let Some(config) = options
        .ledger
        .as_ref()
        .filter(|_| state.ledger.get().is_none())
    {
        let opened = ledger::Ledger::open(&state, config)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let _ = state.ledger.set(Arc::new(opened));
        // Catch the lookup index up before serving: ingestion deduplicates against it.
        let n = ledger::index(&state)
            .await
            .map_err(|e| std::io::Error::other(format!("usage index: {}", e.detail)))?;
        tracing::info!(entries = n, "usage index caught up");
        // Usage events of test-clocked subscriptions carry their clock's time.
        billing::load_clocks(&state)
            .await
            .map_err(|e| std::io::Error::other(format!("test clocks: {}", e.detail)))?;
    }
    let indexer = ledger::spawn_indexer(state.clone(), Duration::from_millis(500));
    // Stops by itself once shutdown begins (`state.draining`).
    let _webhooks = webhooks::spawn(state.clone(), webhooks::WorkerConfig::default());
    // After a crash, quota counts saved a few seconds before it are raised to what the
    // ledger proves was served (needs the snapshot, which is live by now).
    let recovered = metering::recover_quotas(&state)
        .await
        .map_err(|e| std::io::Error::other(format!("quota recovery: {}", e.detail)))?;
    if recovered > 0 {
        tracing::info!(
            quota_keys = recovered,
            "quota counts recovered from the ledger after an unclean stop"
        );
    }
    let sync = state
        .ledger
        .get()
        .is_some_and(|l| l.durability == ledger::Durability::Sync);
    let (events, events_rx) = if sync {
        tollgate_gateway::EventSink::channel_sync(options.event_buffer)
    } else {
        tollgate_gateway::EventSink::channel(options.event_buffer)
    };
    let consumer = tokio::spawn(metering::consume(
        state.clone(),
        events_rx,
        Arc::new(metering::EventCounts::default()),
    ));
    let services = tollgate_gateway::Services {
        auth: Arc::new(state.credential_authenticator()),
        clock: state.clock.clone(),
        limiter: state.limiter.clone(),
        events,
        decisions: Arc::new(tollgate_policy::DecisionCache::new(65_536)),
        public: Some(Arc::new(oauth::Endpoints::new(state.clone()))),
        assertions: Some(Arc::new(oauth::Assertions::new(state.clone()))),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (router, _) = admin_router(state.clone());
    let admin_rx = rx.clone();
    let admin_task = tokio::spawn(async move {
        let mut rx = admin_rx;
        axum::serve(
            admin,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await
    });
    let mut gw_config = options.gateway.clone();
    gw_config.drain_timeout = options.drain_timeout;
    let gw_state = state.clone();
    let gw_task = tokio::spawn(async move {
        let mut rx = rx;
        tollgate_gateway::serve(
            gateway,
            gw_state.snapshot.clone(),
            services,
            gw_config,
            async move {
                let _ = rx.wait_for(|v| *v).await;
            },
        )
        .await
    });
    shutdown.await;
    tracing::info!(
        drain_timeout_s = options.drain_timeout.as_secs_f64(),
        "shutting down: draining in-flight requests"
    );
    state
        .draining
        .store(true, std::sync::atomic::Ordering::Release);
    let _ = tx.send(true);
    let drained = tokio::time::timeout(options.drain_timeout, async {
        let a = admin_task.await;
        let g = gw_task.await;
        (a, g)
    })
    .await;
    match drained {
        Ok((a, g)) => {
            a.map_err(std::io::Error::other)??;
            g.map_err(std::io::Error::other)??;
        }
        Err(_) => tracing::warn!("drain timeout reached; closing remaining connections"),
    }
    housekeeping.abort();
    quota_saver.abort();
    indexer.abort();
    // The gateway is stopped: its senders are gone, so the consumer ends after writing
    // what is queued.
    if tokio::time::timeout(Duration::from_secs(5), consumer)
        .await
        .is_err()
    {
        tracing::warn!("gateway events still queued at shutdown were not all written");
    }
    if let Some(ledger) = state.ledger.get().cloned() {
        // Fsyncs the last batch and signs its checkpoint.
        let _ = tokio::task::spawn_blocking(move || ledger.shutdown()).await;
    }
    if let Err(e) = ledger::index(&state).await {
        tracing::warn!(error = %e.detail, "indexing the usage ledger at shutdown failed");
    }
    match metering::save_quotas(&state).await {
        Ok(n) => {
            tracing::debug!(quota_keys = n, "quota counts saved");
            if let Err(e) = metering::mark_quotas_saved(&state).await {
                tracing::warn!(error = %e.detail, "marking the quota counts saved failed");
            }
        }
        Err(e) => tracing::warn!(error = %e.detail, "saving quota counts at shutdown failed"),
    }
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
}
