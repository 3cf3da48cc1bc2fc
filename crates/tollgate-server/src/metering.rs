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

/// Meta key: `1` when the last shutdown saved the quota counts, `0` while running. A
/// start that finds `0` follows a crash, whose last seconds of counts were not saved.
const QUOTA_CLEAN: &str = "gateway_quota_clean";

/// How far back the ledger is read to rebuild quota counts: longer than any quota period
/// (a day, a calendar month or a monthly billing period).
const QUOTA_LOOKBACK: time::Duration = time::Duration::days(35);

/// Quota counts of the current periods, recounted from the ledger: every call that
/// reached its response's end is an entry, so after a crash this recovers what the last
/// saved counts missed. Calls the gateway refunded (`refunded`) count against nothing,
/// as they did live. Needs the snapshot (plans, subscriptions) and a caught-up index.
pub async fn quota_usage_from_ledger(state: &AppState) -> Result<Vec<QuotaUsage>, ApiError> {
    use std::collections::HashMap;
    use tollgate_core::usage::UsageEvent;
    let Some(ledger) = state.ledger.get() else {
        return Ok(Vec::new());
    };
    crate::ledger::index(state).await?;
    let snapshot = state.snapshot.load_full();
    let access = snapshot.access();
    let now = state.now();
    let now_ts = tollgate_gateway::access::timestamp(now);
    let mut counts: HashMap<(tollgate_limits::LimitKey, jiff::Timestamp), u64> = HashMap::new();
    for log in ledger.logs() {
        let mut tx = state.store.read().await?;
        let first = tx
            .usage_first_index_since(log.name, now - QUOTA_LOOKBACK)
            .await?;
        drop(tx);
        let reader = log.reader().clone();
        let size = reader.size();
        let Some(mut next) = first.map(|f| f.max(reader.pruned_before())) else {
            continue;
        };
        while next < size {
            let end = (next + 1000).min(size);
            let r = reader.clone();
            let leaves = tokio::task::spawn_blocking(move || r.entries(next, end))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            for leaf in leaves {
                let Ok(event) = UsageEvent::from_leaf(&leaf) else {
                    continue;
                };
                let d = &event.data;
                let Some(at) = event.timestamp() else {
                    continue;
                };
                if d.refunded || d.snapshot_version == 0 {
                    // Refunded calls took nothing; reported usage (no snapshot) is not a
                    // gateway call and never counted against quotas.
                    continue;
                }
                let Some(sub) = access
                    .subscriptions_of(d.app_id)
                    .iter()
                    .find(|s| s.id == d.subscription_id)
                else {
                    continue;
                };
                let Some(slug) = access.api_slug(d.api_id) else {
                    continue;
                };
                let at = tollgate_gateway::access::timestamp(at);
                let op = sub.plan.operation(slug, &d.operation_id);
                for &i in op.quotas.iter() {
                    let spec = &sub.quotas[i];
                    let (start, end) = spec.bounds(at);
                    // Only the period running now: older ones no longer limit anything.
                    if !(start <= now_ts && now_ts < end) {
                        continue;
                    }
                    let key = sub.limit_key(sub.plan.quotas[i].limit_id);
                    *counts.entry((key, start)).or_default() += 1;
                }
            }
            next = end;
        }
    }
    Ok(counts
        .into_iter()
        .map(|((key, period_start), used)| QuotaUsage {
            key,
            period_start,
            used,
        })
        .collect())
}

/// At start: after a crash (the last shutdown did not save the counts), raises quota
/// counts to what the ledger proves was served. Then marks the run as not yet saved.
pub async fn recover_quotas(state: &AppState) -> Result<usize, ApiError> {
    let mut tx = state.store.read().await?;
    let clean = tx.get_meta(QUOTA_CLEAN).await?.as_deref() == Some("1");
    drop(tx);
    let mut recovered = 0;
    if !clean {
        let usage = quota_usage_from_ledger(state).await?;
        state
            .limiter
            .restore_quotas(&usage)
            .map_err(|e| ApiError::internal(format!("quota counts from the ledger: {e}")))?;
        recovered = usage.len();
    }
    let mut tx = state.store.write().await?;
    tx.set_meta(QUOTA_CLEAN, "0").await?;
    tx.commit().await?;
    Ok(recovered)
}

/// At a clean shutdown, after the last save: the next start need not recount.
pub async fn mark_quotas_saved(state: &AppState) -> Result<(), ApiError> {
    let mut tx = state.store.write().await?;
    tx.set_meta(QUOTA_CLEAN, "1").await?;
    tx.commit().await?;
    Ok(())
}
