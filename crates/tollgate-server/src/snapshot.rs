//! Compiles the gateway snapshot from the store (DESIGN.md §4) and installs it. Rebuilds
//! are serialised and versions rise monotonically; a mutation that changes routing
//! returns only after its snapshot is live, so the next gateway request sees it.

use crate::error::ApiError;
use crate::state::AppState;
use std::sync::atomic::Ordering;
use tollgate_core::path_template::PathTemplate;
use tollgate_gateway::{RouteApi, RouteOperation, Snapshot};

/// Rebuilds the snapshot from committed state and swaps it in.
pub async fn refresh(state: &AppState) -> Result<u64, ApiError> {
    let mut last = state.snapshot_lock.lock().await;
    let mut tx = state.store.read().await?;
    let apis = tx.routable_apis().await?;
    drop(tx);
    let mut routes = Vec::with_capacity(apis.len());
    for (api, ops) in apis {
        let mut operations = Vec::with_capacity(ops.len());
        for op in ops {
            let method = op.method.parse().map_err(ApiError::internal)?;
            let template = PathTemplate::parse(&op.path).map_err(ApiError::internal)?;
            operations.push(RouteOperation {
                operation_id: op.operation_id,
                method,
                template,
            });
        }
        routes.push(RouteApi {
            api_id: api.id,
            org_id: api.org_id,
            base_path: api.base_path,
            hosts: api.hosts,
            upstreams: api.upstreams,
            status: api.status,
            sunset: api.sunset,
            deprecated_at: None,
            operations,
        });
    }
    let version = *last + 1;
    // One provider's unroutable API must not stop every other change from going live:
    // invalid APIs are left out and reported.
    let (snapshot, problems) = Snapshot::build_lenient(version, routes);
    for p in &problems {
        tracing::warn!(version, problem = %p, "API left out of the gateway snapshot");
    }
    state.snapshot.store(snapshot);
    *last = version;
    state.ready.store(true, Ordering::Release);
    tracing::debug!(version, "gateway snapshot installed");
    Ok(version)
}
