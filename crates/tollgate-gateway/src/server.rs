//! The gateway listener: accepts connections, speaks HTTP/1.1 and h2c (prior knowledge)
//! on the same port, and drains gracefully on shutdown.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::Authenticator;
use crate::proxy::{self, Gateway};
use crate::snapshot::SnapshotHandle;

/// Runtime limits and timeouts of the gateway.
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
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_body_bytes: 10 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish for at most `drain_timeout`, closes what remains and
/// returns.
pub async fn serve(
    listener: TcpListener,
    handle: SnapshotHandle,
    auth: Arc<dyn Authenticator>,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let gateway = Gateway::new(handle, auth, &config);
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
        tracing::info!(%addr, "gateway listening");
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
                let service = proxy::service(gateway.clone(), peer);
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                connections.spawn(async move {
                    if let Err(e) = conn.await {
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
