//! The gateway listener: accepts connections, speaks HTTP/1.1 and h2c (prior knowledge)
//! on the same port — or, with TLS, HTTP/1.1 and HTTP/2 chosen through ALPN — runs the
//! upstream health checks while it serves, and drains gracefully on shutdown.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::pipeline::Services;
use crate::proxy::{self, Gateway};
use crate::snapshot::SnapshotHandle;
use crate::tls::{self, TlsFiles};
use crate::upstream::{self, BreakerConfig, HealthCheckConfig};

/// Longest time a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the client CA and CRL files are checked for changes.
const CLIENT_CA_REFRESH: Duration = Duration::from_secs(30);

/// Runtime limits, timeouts and upstream policies of the gateway. Build it with
/// `..GatewayConfig::default()` so that new fields keep their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Longest wait for an upstream's response head, counted from sending the request
    /// (connecting included). Response bodies then stream without a limit.
    pub request_timeout: Duration,
    /// Longest wait for a new upstream TCP connection.
    pub connect_timeout: Duration,
    /// Largest request body forwarded, in bytes.
    pub max_body_bytes: u64,
    /// Largest request header section (sum of names and values), in bytes.
    pub max_header_bytes: usize,
    /// On shutdown, how long in-flight requests may take to finish before their
    /// connections are closed.
    pub drain_timeout: Duration,
    /// How often a request that failed without reaching its upstream (the connection could
    /// not be made) is sent again: to the API's next upstream, or the same one if it has
    /// one. Only requests of idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE)
    /// without a body are retried, within the one `request_timeout`.
    pub retries: u32,
    /// Circuit breaking per upstream server.
    pub breaker: BreakerConfig,
    /// Active health checks of the upstream servers while the gateway serves; `None`
    /// turns them off.
    pub health: Option<HealthCheckConfig>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1 through ALPN) with this certificate and key;
    /// `None` serves plain HTTP/1.1 and h2c.
    pub tls: Option<TlsFiles>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_body_bytes: 10 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            drain_timeout: Duration::from_secs(30),
            retries: 1,
            breaker: BreakerConfig::default(),
            health: Some(HealthCheckConfig::default()),
            tls: None,
        }
    }
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish for at most `drain_timeout`, closes what remains and
/// returns. Fails at once, before serving, if the TLS files cannot be loaded (the error
/// names the file) or the health-check configuration is invalid.
pub async fn serve(
    listener: TcpListener,
    handle: SnapshotHandle,
    services: impl Into<Services>,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let tls = match &config.tls {
        Some(files) => {
            Some(tls::load(files).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?)
        }
        None => None,
    };
    let health_path = match &config.health {
        Some(health) => Some(
            upstream::check_health_config(health)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
        ),
        None => None,
    };
    let gateway = Gateway::new(handle.clone(), services, &config);
    // Dropped when `serve` returns or is dropped, which stops the health checks.
    let health_checks = config
        .health
        .clone()
        .zip(health_path)
        .map(|(health, path)| {
            let gateway = gateway.clone();
            AbortOnDrop(tokio::spawn(async move {
                gateway
                    .upstream()
                    .run_health_checks(handle, health, path)
                    .await;
            }))
        });
    // CRLs are reissued while the gateway runs: re-read the client CA files when they
    // change. A file that fails to load keeps the previous ones in force.
    let crl_refresh = tls
        .as_ref()
        .and_then(|t| t.client_ca.clone())
        .map(|ca| {
            AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(CLIENT_CA_REFRESH);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let ca = ca.clone();
                    match tokio::task::spawn_blocking(move || ca.refresh()).await {
                        Ok(Ok(true)) => tracing::info!("tls client CA and CRLs reloaded"),
                        Ok(Ok(false)) | Err(_) => {}
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "tls client CA or CRL reload failed; the previous ones stay in force");
                        }
                    }
                }
            }))
        });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper answers a bare 431 when the head does not fit its buffer; leaving it twice
    // the limit lets the gateway's own check answer with a problem body first.
    let head_limit = config.max_header_bytes.saturating_mul(2);
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(head_limit.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head_limit).unwrap_or(u32::MAX));

    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.is_some(), "gateway listening");
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        accept_error(e).await;
                        continue;
                    }
                };
                // Small request/response exchanges must not wait on Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let Some(acceptor) = &tls else {
                    let service = proxy::service(gateway.clone(), peer, None);
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let conn = graceful.watch(conn);
                    connections.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                    continue;
                };
                // The handshake runs in the connection's task, so a slow client cannot
                // hold up the accept loop. The watcher is taken now, before any shutdown
                // signal, so a connection still in its handshake is drained too.
                let (acceptor, client_ca) = (acceptor.acceptor.clone(), acceptor.client_ca.clone());
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                let gateway = gateway.clone();
                connections.spawn(async move {
                    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "tls handshake timed out");
                            return;
                        }
                    };
                    // The chain is checked against the client CA once per connection,
                    // not per request: the certificate cannot change on a connection.
                    let cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| tls::ClientCert::from_chain(chain, client_ca.as_deref()));
                    let service = proxy::service(gateway, peer, cert);
                    // With ALPN `h2` the client opens with the HTTP/2 preface, which the
                    // auto builder recognises, as it does for h2c.
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }

    // Closing the listener refuses new connections from here on.
    drop(listener);
    drop(health_checks);
    drop(crl_refresh);
    tracing::info!(connections = connections.len(), "gateway draining");
    if tokio::time::timeout(config.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = connections.len(),
            "drain timeout reached; closing remaining connections"
        );
    }
    connections.shutdown().await;
    tracing::info!("gateway stopped");
    Ok(())
}

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Per-connection accept errors are ignored; others (e.g. out of file descriptors)
/// are logged and followed by a short pause instead of a hot retry loop.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "gateway accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
