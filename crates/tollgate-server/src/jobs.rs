//! Housekeeping that runs beside the listeners: forget idempotency keys after 24 hours
//! and move keyring keys whose overlap ended from `retiring` to `retired` (and pending
//! keys whose time came to `active`), persisting the change.

use crate::state::{AppState, save_keys};
use std::sync::Arc;
use std::time::Duration;

/// How long a stored idempotent response is replayed.
pub const IDEMPOTENCY_TTL: time::Duration = time::Duration::hours(24);

/// One round of housekeeping. Returns (idempotency keys forgotten, keys changed).
pub async fn run_once(state: &AppState) -> Result<(u64, usize), crate::error::ApiError> {
    let now = state.now();
    let mut tx = state.store.write().await?;
    let forgotten = tx.expire_idempotency(now - IDEMPOTENCY_TTL).await?;
    tx.commit().await?;
    let mut ring = state.keyring.write().await;
    let changed = ring.apply_time(now);
    if !changed.is_empty() {
        let mut tx = state.store.write().await?;
        save_keys(&mut tx, &changed, now).await?;
        tx.commit().await?;
        for k in &changed {
            tracing::info!(key_id = %k.id, purpose = k.purpose.as_str(), state = k.state.as_str(), "keyring key changed state");
        }
    }
    drop(ring);
    if !changed.is_empty() {
        // Keys became active or retired: the gateway's token verifier follows.
        crate::snapshot::refresh(state).await?;
    }
    crate::notices::apply_due(state).await?;
    crate::ledger::apply_retention(state).await?;
    Ok((forgotten, changed.len()))
}

/// Runs housekeeping every `every` until the process ends.
pub fn spawn(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run_once(&state).await {
                tracing::warn!(error = %e.detail, "housekeeping failed; will retry");
            }
        }
    })
}
