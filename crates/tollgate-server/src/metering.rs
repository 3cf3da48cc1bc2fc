//! The control plane's side of the gateway's event channel and limiter:
//!
//! - [`consume`] drains the bounded channel of [`GatewayEvent`]s in batches: each policy
//!   denial becomes an audit entry (`gateway.call_denied`, the entry's `after_sha256`
//!   covering the whole denial record with its policy ids, which the log line carries);
//!   usage records become CloudEvents appended to the ledger's log of their mode
//!   (`live` / `test`), acknowledged to the waiting response once durable (`sync`).
//! - [`save_quotas`] / [`restore_quotas`] persist quota counts so they survive a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tollgate_core::hash::canonical_sha256;
use tollgate_gateway::{GatewayEvent, UsageRecord};
use tollgate_limits::QuotaUsage;
use tollgate_store::NewAudit;

use crate::error::ApiError;
use crate::state::AppState;

/// Meta key under which quota counts are persisted.
const QUOTA_STATE: &str = "gateway_quota_state";
/// Most events written per transaction.
const BATCH: usize = 256;

/// Counters of the consumer, for tests and metrics.
#[derive(Debug, Default)]
pub struct EventCounts {
    pub usage: AtomicU64,
    pub denials: AtomicU64,
}

/// Drains `rx` until every sender is gone; denials go to the audit trail in batches.
pub async fn consume(
    state: Arc<AppState>,
    mut rx: mpsc::Receiver<GatewayEvent>,
    counts: Arc<EventCounts>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let mut denials = Vec::new();
        for event in batch.drain(..) {
            match event {
                GatewayEvent::Usage(record, ack) => {
                    counts.usage.fetch_add(1, Ordering::Relaxed);
                    log_usage(&record);
                    match state.ledger.get() {
                        Some(ledger) => {
                            let ip = state.client_ip_hash(record.client_ip);
                            ledger.append_record(&record, Some(ip), ack).await;
                        }
                        None => {
                            if let Some(ack) = ack {
                                ack.done(Ok(()));
                            }
                        }
                    }
                }
                GatewayEvent::Denied(record) => denials.push(record),
            }
        }
        if denials.is_empty() {
            continue;
        }
        let n = denials.len() as u64;
        if let Err(e) = audit_denials(&state, &denials).await {
            // The log line of each denial (written by the gateway) still has it.
            tracing::error!(error = %e.detail, count = denials.len(), "could not audit gateway denials");
        }
        counts.denials.fetch_add(n, Ordering::Relaxed);
    }
}

fn log_usage(r: &UsageRecord) {
    tracing::debug!(
        event_id = %r.event_id, subscription = %r.subscription_id, operation = r.operation_id.as_str(),
        status = r.status, request_bytes = r.request_bytes, response_bytes = r.response_bytes,
        latency_us = r.latency_us, "usage"
    );
}

async fn audit_denials(
    state: &AppState,
    denials: &[tollgate_gateway::DenialRecord],
) -> Result<(), ApiError> {
    let mut tx = state.store.write().await?;
    for d in denials {
        tx.append_audit(NewAudit {
            at: d.time,
            actor: tollgate_core::model::Actor {
                user_id: state.operator.id,
                email: state.operator.email.clone(),
            },
            org_id: Some(d.provider_org_id),
            action: "gateway.call_denied".to_owned(),
            target_type: "app".to_owned(),
            target_id: d.app_id.to_string(),
            request_id: format!("usage:{}", d.event_id),
            before_sha256: None,
            after_sha256: canonical_sha256(d),
        })
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Writes every quota count of the limiter to the store (one row, replaced).
pub async fn save_quotas(state: &AppState) -> Result<usize, ApiError> {
    let usage = state.limiter.snapshot_quotas();
    let json = serde_json::to_string(&usage).map_err(ApiError::internal)?;
    let mut tx = state.store.write().await?;
    tx.set_meta(QUOTA_STATE, &json).await?;
    tx.commit().await?;
    Ok(usage.len())
}

/// Merges the persisted quota counts into the limiter (never lowering a count).
pub async fn restore_quotas(state: &AppState) -> Result<usize, ApiError> {
    let mut tx = state.store.read().await?;
    let Some(json) = tx.get_meta(QUOTA_STATE).await? else {
        return Ok(0);
    };
    drop(tx);
    let usage: Vec<QuotaUsage> = serde_json::from_str(&json)
        .map_err(|e| ApiError::internal(format!("persisted quota state is corrupt: {e}")))?;
    state
        .limiter
        .restore_quotas(&usage)
        .map_err(|e| ApiError::internal(format!("persisted quota state: {e}")))?;
    Ok(usage.len())
}

/// Persists quota counts (and prunes idle rate states) every `every` until aborted.
pub fn spawn_quota_saver(state: Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            // Rate states back at full burst behave like absent ones: drop them so the
            // limiter's memory follows the active callers, not every caller ever seen.
            state
                .limiter
                .prune_rates(tollgate_gateway::access::timestamp(state.now()));
            if let Err(e) = save_quotas(&state).await {
                tracing::warn!(error = %e.detail, "saving quota counts failed; will retry");
            }
        }
    })
}
