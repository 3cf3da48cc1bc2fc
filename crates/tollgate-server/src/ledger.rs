//! The usage ledger of the running marketplace (DESIGN.md §1–2): two Merkle logs,
//! `live` and `test`, each with its own origin (`<marketplace id>/<node>/live|test`),
//! appended by a group-commit writer thread ([`tollgate_ledger::Writer`]) and
//! checkpointed at least every second with the keyring's checkpoint-signing key.
//!
//! The gateway's metering consumer turns every usage record into a CloudEvents
//! [`UsageEvent`] and appends its canonical leaf to the log of the call's mode, so test
//! usage can never appear in a live checkpoint. With durability `sync` (the default) the
//! response waiting on the event gets its [`UsageAck`] only once the event's batch is
//! fsynced; with `async` the response goes at once, and the loss window — events accepted
//! but not yet durable — is reported by `GET /v1/ledger`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rust_decimal::Decimal;
use tollgate_core::apikey::KeyMode;
use tollgate_core::usage::{
    FieldValue, GATEWAY_CALL_TYPE, SPEC_VERSION, UsageData, UsageEvent, format_time,
};
use tollgate_gateway::UsageRecord;
use tollgate_gateway::usage::UsageAck;
use tollgate_keyring::KeyPurpose;
use tollgate_ledger::writer::{Committed, TryAppendError};
use tollgate_ledger::{Completion, LogReader, NoteSigner, VerifierKey, Writer, WriterConfig};
use tollgate_store::{Aggregate, AggregateKey};

use crate::state::AppState;

/// When a response may end relative to its usage event's durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// The response's end waits until its event is fsynced: nothing delivered is unbilled.
    #[default]
    Sync,
    /// The response goes at once; events accepted but not yet durable can be lost in a
    /// crash (the loss window, reported by `GET /v1/ledger`).
    Async,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Sync => "sync",
            Durability::Async => "async",
        }
    }
}

/// Where and how the ledger runs.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Directory holding one sub-directory per log.
    pub dir: PathBuf,
    pub durability: Durability,
    /// This node's name in the log origins.
    pub node: String,
    /// Entry bodies older than this may be pruned (whole segment files, once indexed and
    /// checkpointed); their hashes stay, so the tree, checkpoints and proofs still verify.
    /// `None` keeps every body.
    pub retention: Option<std::time::Duration>,
    /// Size at which a segment file is closed and the next one begun (retention prunes
    /// whole segments).
    pub segment_bytes: u64,
}

impl LedgerConfig {
    /// The default layout under a data directory: `<data dir>/ledger`.
    pub fn under(data_dir: &Path, durability: Durability) -> Self {
        Self {
            dir: data_dir.join("ledger"),
            durability,
            node: "node-0".to_owned(),
            retention: None,
            segment_bytes: tollgate_ledger::Options::default().segment_size,
        }
    }
}

/// Completes a usage event's append: tells whoever waits for its durability.
pub enum Ack {
    /// A gateway response (metering `sync`), or nobody (`async`).
    Gateway(Option<UsageAck>),
    /// An ingestion request, which answers once its events are durable.
    Reply(tokio::sync::oneshot::Sender<Committed>),
}

impl Completion for Ack {
    fn complete(self, result: Committed) {
        match self {
            Ack::Gateway(Some(ack)) => {
                ack.done(result.map(|_| ()).map_err(|e| Arc::from(e.to_string())));
            }
            Ack::Gateway(None) => {}
            Ack::Reply(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

/// One log of the ledger.
pub struct LedgerLog {
    /// `live` or `test`.
    pub name: &'static str,
    pub origin: String,
    writer: Mutex<Option<Writer<Ack>>>,
    handle: tollgate_ledger::WriterHandle<Ack>,
    reader: LogReader,
    /// Entries handed to the writer since open, and the size at open: with the durable
    /// size they give the loss window.
    accepted: AtomicU64,
    size_at_open: u64,
}

impl std::fmt::Debug for LedgerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerLog")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl LedgerLog {
    /// Reads: proofs, entries, checkpoints (never entries that are not durable).
    pub fn reader(&self) -> &LogReader {
        &self.reader
    }

    /// Events accepted but not yet durable (what a crash could lose in `async` mode).
    pub fn pending(&self) -> u64 {
        (self.size_at_open + self.accepted.load(Ordering::Acquire))
            .saturating_sub(self.reader.size())
    }

    /// Appends a leaf; resolves once it is queued (its `ack` tells when it is durable).
    pub async fn append(&self, leaf: Vec<u8>, ack: Ack) {
        self.accepted.fetch_add(1, Ordering::AcqRel);
        match self.handle.try_append(leaf, ack) {
            Ok(()) => {}
            Err(TryAppendError::Full(leaf, ack)) => {
                // Back-pressure: wait for room off the async threads.
                let handle = self.handle.clone();
                let r = tokio::task::spawn_blocking(move || handle.append(leaf, ack)).await;
                if !matches!(r, Ok(Ok(()))) {
                    tracing::error!(log = self.name, "ledger writer stopped; usage event lost");
                }
            }
            Err(TryAppendError::Stopped) => {
                tracing::error!(log = self.name, "ledger writer stopped; usage event lost");
            }
        }
    }

    /// Prunes entry bodies below `index` on the writer thread; the first index whose body
    /// is still kept.
    pub async fn prune(&self, index: u64) -> Result<u64, tollgate_ledger::Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.handle.prune(
            index,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )?;
        rx.await
            .unwrap_or(Err(tollgate_ledger::Error::WriterStopped))
    }

    /// Flushes and stops the writer (the last batch is fsynced and checkpointed).
    fn shutdown(&self) {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = writer
            && let Err(e) = w.shutdown()
        {
            tracing::error!(log = self.name, error = %e, "ledger writer shutdown failed");
        }
    }
}

/// The ledger: the `live` and `test` logs.
#[derive(Debug)]
pub struct Ledger {
    pub durability: Durability,
    /// `/tollgate/<marketplace id>/<node>/gateway`: the CloudEvents source of gateway calls.
    pub source: String,
    logs: [LedgerLog; 2],
    retention: Option<std::time::Duration>,
    /// Reported events appended but not yet in the store index, by (source, id): with
    /// the index, what the ingestion API deduplicates against. Held across a whole
    /// ingestion batch, so two batches cannot both accept the same event.
    pub(crate) reported: tokio::sync::Mutex<std::collections::HashSet<(String, String)>>,
    /// The frozen time of each test subscription on a test clock: its usage events carry
    /// that time instead of the gateway's (billing::Clocks keeps it current).
    pub(crate) clocks: std::sync::RwLock<
        std::collections::HashMap<tollgate_core::SubscriptionId, time::OffsetDateTime>,
    >,
}

/// Why the ledger did not open.
#[derive(Debug, thiserror::Error)]
#[error("ledger log {log} ({dir}): {source}")]
pub struct OpenError {
    log: &'static str,
    dir: String,
    #[source]
    source: tollgate_ledger::Error,
}

impl Ledger {
    /// Opens (recovering after a crash) or creates both logs and starts their writers.
    /// Refuses, naming the log and what does not match, when a log disagrees with a
    /// checkpoint it signed.
    pub async fn open(state: &Arc<AppState>, config: &LedgerConfig) -> Result<Self, OpenError> {
        let public_keys = checkpoint_public_keys(state).await;
        let (state, config) = (state.clone(), config.clone());
        tokio::task::spawn_blocking(move || Self::open_blocking(&state, &config, &public_keys))
            .await
            .map_err(|e| OpenError {
                log: "live",
                dir: e.to_string(),
                source: tollgate_ledger::Error::Signing("opening the ledger panicked".into()),
            })?
    }

    fn open_blocking(
        state: &Arc<AppState>,
        config: &LedgerConfig,
        public_keys: &[[u8; 32]],
    ) -> Result<Self, OpenError> {
        let prefix = format!("{}/{}", state.marketplace_id, config.node);
        let open = |name: &'static str| -> Result<LedgerLog, OpenError> {
            let origin = format!("{prefix}/{name}");
            let dir = config.dir.join(name);
            let error = |source| OpenError {
                log: name,
                dir: dir.display().to_string(),
                source,
            };
            let keys = public_keys
                .iter()
                .map(|pk| VerifierKey::new(&origin, *pk))
                .collect::<Result<Vec<_>, _>>()
                .map_err(error)?;
            let options = tollgate_ledger::Options {
                segment_size: config.segment_bytes,
                ..Default::default()
            };
            let log = tollgate_ledger::Log::open(&dir, &origin, &keys, options).map_err(error)?;
            let size_at_open = log.durable_size().load(Ordering::Acquire);
            let signer = KeyringSigner {
                state: Arc::downgrade(state),
                origin: origin.clone(),
                last: Mutex::new(None),
            };
            let on_checkpoint_origin = origin.clone();
            let writer = Writer::spawn(
                log,
                WriterConfig {
                    // Async metering does not wait on the fsync: let batches gather for up
                    // to 2 ms, so one fdatasync covers many events (the profile showed
                    // fdatasync as the largest single CPU cost at moderate rates). Sync
                    // metering commits as soon as the queue is empty: latency first.
                    max_linger: match config.durability {
                        Durability::Async => std::time::Duration::from_millis(2),
                        Durability::Sync => std::time::Duration::ZERO,
                    },
                    signer: Some(Box::new(signer)),
                    on_checkpoint: Some(Box::new(move |r| {
                        if let Err(e) = r {
                            tracing::error!(origin = on_checkpoint_origin.as_str(), error = %e, "signing a checkpoint failed");
                        }
                    })),
                    ..WriterConfig::default()
                },
            )
            .map_err(error)?;
            Ok(LedgerLog {
                name,
                origin,
                handle: writer.handle(),
                reader: writer.reader(),
                writer: Mutex::new(Some(writer)),
                accepted: AtomicU64::new(0),
                size_at_open,
            })
        };
        let live = open("live")?;
        let test = open("test")?;
        for log in [&live, &test] {
            tracing::info!(
                log = log.name,
                origin = log.origin.as_str(),
                entries = log.reader().size(),
                durability = config.durability.as_str(),
                "ledger open"
            );
        }
        if config.durability == Durability::Async {
            tracing::warn!(
                max_events = WriterConfig::default().queue,
                "metering async: responses do not wait for their usage events; a crash can lose the events not yet written (at most the writer's queue, shown as `pending` by GET /v1/ledger)"
            );
        }
        Ok(Ledger {
            durability: config.durability,
            source: format!("/tollgate/{prefix}/gateway"),
            logs: [live, test],
            reported: Default::default(),
            clocks: Default::default(),
            retention: config.retention,
        })
    }

    /// The logs, `live` first.
    pub fn logs(&self) -> &[LedgerLog] {
        &self.logs
    }

    /// The log named `name` (`live` or `test`).
    pub fn log(&self, name: &str) -> Option<&LedgerLog> {
        self.logs.iter().find(|l| l.name == name)
    }

    /// The log of a mode.
    pub fn log_of(&self, mode: KeyMode) -> &LedgerLog {
        match mode {
            KeyMode::Live => &self.logs[0],
            KeyMode::Test => &self.logs[1],
        }
    }

    /// Appends a gateway usage record to the log of its mode.
    pub async fn append_record(
        &self,
        record: &UsageRecord,
        client_ip_hash: Option<String>,
        ack: Option<UsageAck>,
    ) {
        let mut event = gateway_event(&self.source, record);
        event.data.client_ip_hash = client_ip_hash;
        if record.mode == KeyMode::Test
            && let Some(t) = self.clock_time(record.subscription_id)
        {
            event.time = format_time(t);
        }
        self.log_of(record.mode)
            .append(event.leaf(), Ack::Gateway(ack))
            .await;
    }

    /// The frozen time of a subscription's test clock, if it runs on one.
    pub fn clock_time(&self, sub: tollgate_core::SubscriptionId) -> Option<time::OffsetDateTime> {
        let clocks = self.clocks.read().unwrap_or_else(|p| p.into_inner());
        if clocks.is_empty() {
            return None;
        }
        clocks.get(&sub).copied()
    }

    /// Sets (or, with `None`, forgets) a subscription's test-clock time.
    pub fn set_clock_time(
        &self,
        sub: tollgate_core::SubscriptionId,
        at: Option<time::OffsetDateTime>,
    ) {
        let mut clocks = self.clocks.write().unwrap_or_else(|p| p.into_inner());
        match at {
            Some(t) => clocks.insert(sub, t),
            None => clocks.remove(&sub),
        };
    }

    /// The configured retention of entry bodies.
    pub fn retention(&self) -> Option<std::time::Duration> {
        self.retention
    }

    /// Flushes and stops both writers.
    pub fn shutdown(&self) {
        for log in &self.logs {
            log.shutdown();
        }
    }
}

/// The CloudEvent of a gateway usage record.
pub fn gateway_event(source: &str, r: &UsageRecord) -> UsageEvent {
    UsageEvent {
        data: UsageData {
            api_id: r.api_id,
            app_id: r.app_id,
            client_ip_hash: None,
            consumer_org_id: r.consumer_org_id,
            credential_id: r.credential_id.clone(),
            fields: Default::default(),
            latency_us: r.latency_us,
            method: r.method.clone(),
            mode: r.mode,
            operation_id: r.operation_id.clone(),
            policy_ids: r.policy_ids.clone(),
            provider_org_id: r.provider_org_id,
            refunded: r.refunded,
            request_bytes: r.request_bytes,
            response_bytes: r.response_bytes,
            snapshot_version: r.snapshot_version,
            status: r.status,
            subscription_id: r.subscription_id,
            terms_sha256: r.terms_sha256.clone(),
        },
        datacontenttype: "application/json".to_owned(),
        id: r.event_id.to_string(),
        source: source.to_owned(),
        specversion: SPEC_VERSION.to_owned(),
        subject: r.subscription_id.to_string(),
        time: format_time(r.time),
        kind: GATEWAY_CALL_TYPE.to_owned(),
    }
}

/// Every checkpoint-signing public key the keyring knows (retired ones included: old
/// checkpoints stay verifiable).
pub async fn checkpoint_public_keys(state: &AppState) -> Vec<[u8; 32]> {
    let ring = state.keyring.read().await;
    ring.records()
        .filter(|r| r.purpose == KeyPurpose::CheckpointSigning)
        .filter_map(ed25519_public)
        .collect()
}

/// The raw Ed25519 public key of a keyring record.
fn ed25519_public(r: &tollgate_keyring::KeyRecord) -> Option<[u8; 32]> {
    <[u8; 32]>::try_from(r.public_key.as_deref()?).ok()
}

/// The note verifier key of the active checkpoint-signing key for `origin`.
pub async fn current_verifier_key(state: &AppState, origin: &str) -> Option<String> {
    let ring = state.keyring.read().await;
    let pk = ed25519_public(ring.active(KeyPurpose::CheckpointSigning)?)?;
    VerifierKey::new(origin, pk).ok().map(|k| k.to_string())
}

/// Signs checkpoints with the keyring's active checkpoint-signing key, on the writer
/// thread (so the keyring's lock is taken blocking, never from async code).
struct KeyringSigner {
    state: Weak<AppState>,
    origin: String,
    /// The public key last announced by `public_key`: a signature by another key (a
    /// rotation in between) is refused rather than stored under the wrong key id.
    last: Mutex<Option<[u8; 32]>>,
}

impl NoteSigner for KeyringSigner {
    fn name(&self) -> &str {
        &self.origin
    }

    fn public_key(&self) -> [u8; 32] {
        let pk = self.state.upgrade().and_then(|state| {
            let ring = state.keyring.blocking_read();
            ed25519_public(ring.active(KeyPurpose::CheckpointSigning)?)
        });
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pk) = pk {
            *last = Some(pk);
        }
        last.unwrap_or([0; 32])
    }

    fn sign(&self, msg: &[u8]) -> tollgate_ledger::Result<[u8; 64]> {
        let fail = |why: &str| tollgate_ledger::Error::Signing(why.to_owned());
        let state = self
            .state
            .upgrade()
            .ok_or_else(|| fail("the marketplace is shutting down"))?;
        let ring = state.keyring.blocking_read();
        let signature = ring
            .sign(KeyPurpose::CheckpointSigning, msg)
            .map_err(|e| fail(&e.to_string()))?;
        let signed_with = ring.get(signature.key_id).and_then(ed25519_public);
        let announced = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        if signed_with.is_none() || signed_with != announced {
            return Err(fail(
                "the checkpoint key changed while signing; the next checkpoint uses the new one",
            ));
        }
        Ok(signature.bytes)
    }
}

/// Meta key holding the next entry of `log` to index.
fn indexed_key(log: &str) -> String {
    format!("ledger_indexed:{log}")
}

/// How far the store's index covers `log`: entries `[0, n)` are indexed.
pub async fn indexed_through(
    tx: &mut tollgate_store::Tx,
    log: &str,
) -> Result<u64, tollgate_store::StoreError> {
    Ok(tx
        .get_meta(&indexed_key(log))
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Brings the store's usage index up to the logs' durable sizes, in batches of 1 000
/// entries per transaction. Returns how many entries were indexed. A log shorter than
/// what the index claims (a replaced data directory) has its index rebuilt.
pub async fn index(state: &AppState) -> Result<u64, crate::error::ApiError> {
    use crate::error::ApiError;
    let Some(ledger) = state.ledger.get() else {
        return Ok(0);
    };
    let mut total = 0;
    for log in ledger.logs() {
        let key = indexed_key(log.name);
        let mut tx = state.store.read().await?;
        let mut next = indexed_through(&mut tx, log.name).await?;
        drop(tx);
        let size = log.reader().size();
        if next > size {
            tracing::warn!(
                log = log.name,
                indexed = next,
                size,
                "usage index ahead of its log; rebuilding it"
            );
            let mut tx = state.store.write().await?;
            tx.clear_usage_index(log.name).await?;
            tx.set_meta(&key, "0").await?;
            tx.commit().await?;
            next = 0;
        }
        while next < size {
            let end = (next + 1000).min(size);
            let reader = log.reader().clone();
            let start = next.max(reader.pruned_before());
            let leaves = tokio::task::spawn_blocking(move || reader.entries(start, end))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            let mut rows = Vec::with_capacity(leaves.len());
            let mut keys = Vec::new();
            let mut aggregates = Aggregates::default();
            for (i, leaf) in leaves.iter().enumerate() {
                let Ok(event) = UsageEvent::from_leaf(leaf) else {
                    tracing::warn!(
                        log = log.name,
                        index = start + i as u64,
                        "ledger entry is not a usage event; not indexed"
                    );
                    continue;
                };
                let Some(time) = event.timestamp() else {
                    continue;
                };
                keys.push((event.source.clone(), event.id.clone()));
                aggregates.add(log.name, &event, time);
                rows.push(tollgate_store::UsageIndexRow {
                    log: log.name.to_owned(),
                    leaf_index: start + i as u64,
                    source: event.source,
                    event_id: event.id,
                    subscription_id: event.data.subscription_id.to_string(),
                    consumer_org_id: event.data.consumer_org_id.to_string(),
                    provider_org_id: event.data.provider_org_id.to_string(),
                    event_time: time,
                });
            }
            let mut tx = state.store.write().await?;
            tx.insert_usage_index(&rows).await?;
            aggregates.store(&mut tx).await?;
            tx.set_meta(&key, &end.to_string()).await?;
            tx.commit().await?;
            let mut reported = ledger.reported.lock().await;
            for k in &keys {
                reported.remove(k);
            }
            drop(reported);
            total += end - next;
            next = end;
        }
    }
    Ok(total)
}

/// Keeps the usage index current: every `every`, until aborted.
pub fn spawn_indexer(
    state: Arc<AppState>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = index(&state).await {
                tracing::warn!(error = %e.detail, "indexing the usage ledger failed; retrying");
            }
        }
    })
}

/// Usage aggregates of a batch of entries, merged into the store with the index: per
/// subscription × UTC day and month × operation × meter (`calls`, `request_bytes`,
/// `response_bytes`, `latency_us`, and `field:<name>` for each reported field) a count,
/// the sum and max of numeric values, and the distinct values of fields.
#[derive(Debug, Default)]
struct Aggregates {
    totals: std::collections::BTreeMap<AggregateKey, (u64, Option<Decimal>, Option<Decimal>)>,
    unique: Vec<(AggregateKey, String)>,
}

impl Aggregates {
    fn add(&mut self, log: &str, event: &UsageEvent, time: time::OffsetDateTime) {
        let d = &event.data;
        let mut meters: Vec<(String, Option<Decimal>, Option<String>)> = vec![
            ("calls".to_owned(), Some(Decimal::ONE), None),
            (
                "request_bytes".to_owned(),
                Some(Decimal::from(d.request_bytes)),
                None,
            ),
            (
                "response_bytes".to_owned(),
                Some(Decimal::from(d.response_bytes)),
                None,
            ),
            (
                "latency_us".to_owned(),
                Some(Decimal::from(d.latency_us)),
                None,
            ),
        ];
        for (name, value) in &d.fields {
            let (number, text) = match value {
                FieldValue::Integer(n) => (Some(Decimal::from(*n)), n.to_string()),
                FieldValue::String(s) => (s.parse::<Decimal>().ok(), s.clone()),
                FieldValue::Bool(b) => (None, b.to_string()),
            };
            meters.push((format!("field:{name}"), number, Some(text)));
        }
        for (period, start) in [("day", day_start(time)), ("month", month_start(time))] {
            for (meter, number, text) in &meters {
                let key = AggregateKey {
                    subscription_id: d.subscription_id.to_string(),
                    log: log.to_owned(),
                    period: period.to_owned(),
                    period_start: start,
                    operation_id: d.operation_id.clone(),
                    meter: meter.clone(),
                };
                if let Some(t) = text {
                    self.unique.push((key.clone(), t.clone()));
                }
                let entry = self.totals.entry(key).or_insert((0, None, None));
                entry.0 += 1;
                if let Some(n) = number {
                    entry.1 = Some(entry.1.unwrap_or(Decimal::ZERO) + n);
                    entry.2 = Some(entry.2.map_or(*n, |m| m.max(*n)));
                }
            }
        }
    }

    async fn store(self, tx: &mut tollgate_store::Tx) -> Result<(), tollgate_store::StoreError> {
        for (key, (count, sum, max)) in self.totals {
            let delta = Aggregate {
                key,
                count,
                sum: sum.map(|d| d.normalize().to_string()),
                max: max.map(|d| d.normalize().to_string()),
                unique: 0,
            };
            tx.merge_usage_aggregate(&delta, merge_aggregate).await?;
        }
        tx.add_usage_unique(&self.unique).await
    }
}

/// `stored + delta`: counts and sums add, maxima take the larger.
fn merge_aggregate(stored: Option<Aggregate>, delta: &Aggregate) -> Aggregate {
    let Some(stored) = stored else {
        return delta.clone();
    };
    let dec = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<Decimal>().ok());
    let sum = match (dec(&stored.sum), dec(&delta.sum)) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    let max = match (dec(&stored.max), dec(&delta.max)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Aggregate {
        key: delta.key.clone(),
        count: stored.count + delta.count,
        sum: sum.map(|d| d.normalize().to_string()),
        max: max.map(|d| d.normalize().to_string()),
        unique: 0,
    }
}

/// UTC midnight of `t`'s day.
pub(crate) fn day_start(t: time::OffsetDateTime) -> time::OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
        .replace_time(time::Time::MIDNIGHT)
}

/// UTC midnight of the first of `t`'s month.
pub(crate) fn month_start(t: time::OffsetDateTime) -> time::OffsetDateTime {
    let day = day_start(t);
    day.replace_day(1).unwrap_or(day)
}

/// Retention: in each log, prunes the bodies of entries older than the retention period —
/// up to the first indexed entry that is not (reported usage may arrive out of time
/// order), never beyond what is indexed or checkpointed. Returns the pruned boundaries.
pub async fn apply_retention(
    state: &AppState,
) -> Result<Vec<(&'static str, u64)>, crate::error::ApiError> {
    use crate::error::ApiError;
    let Some(ledger) = state.ledger.get() else {
        return Ok(Vec::new());
    };
    let Some(retention) = ledger.retention() else {
        return Ok(Vec::new());
    };
    let cutoff = state.now() - retention;
    let mut done = Vec::new();
    for log in ledger.logs() {
        let mut tx = state.store.read().await?;
        let indexed = indexed_through(&mut tx, log.name).await?;
        let newer = tx.usage_first_index_since(log.name, cutoff).await?;
        drop(tx);
        let checkpointed = log.reader().latest_checkpoint().map_or(0, |c| c.size);
        let boundary = newer.unwrap_or(indexed).min(indexed).min(checkpointed);
        if boundary <= log.reader().pruned_before() {
            continue;
        }
        let kept_from = log.prune(boundary).await.map_err(ApiError::internal)?;
        tracing::info!(
            log = log.name,
            kept_from,
            "ledger retention: old entry bodies pruned"
        );
        done.push((log.name, kept_from));
    }
    Ok(done)
}
