//! The metering hook (DESIGN.md §1): every finished request of an identified caller
//! yields a [`UsageRecord`], and every authorization denial a [`DenialRecord`], onto one
//! bounded channel. The request path never writes to a store: it only `try_send`s; a full
//! channel is counted (and logged), never waited on. The control plane drains the channel
//! (audit trail now, the usage ledger in the Ledger issue).
//!
//! A usage record is emitted when the response body has been sent (or the client went
//! away), so it carries the bytes really delivered.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tollgate_core::apikey::KeyMode;
use tollgate_core::{ApiId, AppId, OrgId, SubscriptionId};
use uuid::Uuid;

use crate::body::{ResponseBody, ResponseBodyError};

/// One metered call (metadata only, never payloads).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageRecord {
    /// The event id (UUIDv7), also sent to the consumer as `Tollgate-Usage-Id`.
    pub event_id: Uuid,
    /// When the request arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The provider org (whose API was called).
    pub provider_org_id: OrgId,
    /// The consumer org.
    pub consumer_org_id: OrgId,
    pub app_id: AppId,
    pub subscription_id: SubscriptionId,
    pub credential_id: String,
    pub api_id: ApiId,
    pub operation_id: String,
    pub method: String,
    /// The status sent to the consumer (the gateway's own for its refusals).
    pub status: u16,
    /// Request body bytes forwarded.
    pub request_bytes: u64,
    /// Response body bytes delivered to the consumer.
    pub response_bytes: u64,
    /// Microseconds from the request's arrival to the end of the response.
    pub latency_us: u64,
    pub mode: KeyMode,
    /// SHA-256 of the term sheet the call was served under.
    pub terms_sha256: Option<String>,
    /// The snapshot (configuration) version that served the call.
    pub snapshot_version: u64,
    /// Ids of the policies that allowed the call.
    pub policy_ids: Vec<String>,
    /// The caller's address (the connection's peer). The ledger stores only a keyed hash.
    pub client_ip: std::net::IpAddr,
    /// The gateway failed the call before the upstream served it and gave back its limits.
    pub refunded: bool,
}

/// One refused call: authorization denials with the reasons (policy ids), which the
/// consumer never sees and the audit trail keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DenialRecord {
    pub event_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub provider_org_id: OrgId,
    pub consumer_org_id: OrgId,
    pub app_id: AppId,
    pub subscription_id: Option<SubscriptionId>,
    pub credential_id: String,
    pub api_id: ApiId,
    pub operation_id: String,
    /// The problem slug answered (`access-denied`, `scope-denied`, …).
    pub code: &'static str,
    /// Ids of the policies that denied, or `not-granted`.
    pub reasons: Vec<String>,
    pub snapshot_version: u64,
}

/// What the gateway emits.
#[derive(Debug)]
pub enum GatewayEvent {
    /// A metered call; with metering `sync`, who waits for it to be durable.
    Usage(UsageRecord, Option<UsageAck>),
    Denied(DenialRecord),
}

/// Metering `sync`: tells the response waiting on a usage event whether the event is
/// durable. Dropping it unanswered counts as a failure.
#[derive(Debug)]
pub struct UsageAck(oneshot::Sender<Result<(), Arc<str>>>);

impl UsageAck {
    /// Reports the outcome to the waiting response.
    pub fn done(self, result: Result<(), Arc<str>>) {
        let _ = self.0.send(result);
    }
}

/// The sending side of the event channel. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Option<mpsc::Sender<GatewayEvent>>,
    dropped: Arc<AtomicU64>,
    /// Metering `sync`: responses hold back their end until their event is durable.
    sync: bool,
}

impl EventSink {
    /// A bounded channel of `capacity` events and its receiver (metering `async`: the
    /// response goes at once; a full channel drops and counts the event).
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<GatewayEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx: Some(tx),
                dropped: Arc::default(),
                sync: false,
            },
            rx,
        )
    }

    /// Like [`EventSink::channel`], for metering `sync`: every usage event carries a
    /// [`UsageAck`], the end of each response (its last body frame, or END_STREAM) waits
    /// for it, and a full channel is waited on instead of dropping.
    pub fn channel_sync(capacity: usize) -> (Self, mpsc::Receiver<GatewayEvent>) {
        let (mut sink, rx) = Self::channel(capacity);
        sink.sync = true;
        (sink, rx)
    }

    /// A sink that discards every event (gateways without metering, tests).
    pub fn discard() -> Self {
        Self {
            tx: None,
            dropped: Arc::default(),
            sync: false,
        }
    }

    /// Whether responses wait for their usage event to be durable.
    pub fn is_sync(&self) -> bool {
        self.sync && self.tx.is_some()
    }

    /// Queues an event without waiting. A full or closed channel drops it and counts it.
    pub fn emit(&self, event: GatewayEvent) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(event).is_err() {
            self.count_drop();
        }
    }

    fn count_drop(&self) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Log the first drop and then every 1024th, not every one.
        if n == 1 || n.is_multiple_of(1024) {
            tracing::error!(dropped = n, "gateway event channel full; events dropped");
        }
    }

    /// Sends a usage record and resolves once it is durable (metering `sync`). A full
    /// channel is waited on: back-pressure, not loss.
    fn emit_durable(&self, record: UsageRecord) -> Durable {
        let Some(tx) = self.tx.clone() else {
            return Box::pin(std::future::ready(Ok(())));
        };
        let (ack, done) = oneshot::channel();
        let event = GatewayEvent::Usage(record, Some(UsageAck(ack)));
        Box::pin(async move {
            if let Err(mpsc::error::TrySendError::Full(event)) = tx.try_send(event) {
                tx.send(event)
                    .await
                    .map_err(|_| Arc::<str>::from("the metering consumer has stopped"))?;
            }
            done.await
                .unwrap_or_else(|_| Err(Arc::from("the metering consumer dropped the event")))
        })
    }

    /// Events dropped because the channel was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A usage event on its way to durability.
type Durable = Pin<Box<dyn Future<Output = Result<(), Arc<str>>> + Send>>;

/// A usage record waiting for its response to finish.
#[derive(Debug)]
pub(crate) struct Meter {
    record: Option<UsageRecord>,
    started: Instant,
    request_bytes: Arc<AtomicU64>,
    sink: EventSink,
}

impl Meter {
    pub(crate) fn new(
        record: UsageRecord,
        started: Instant,
        request_bytes: Arc<AtomicU64>,
        sink: EventSink,
    ) -> Self {
        Self {
            record: Some(record),
            started,
            request_bytes,
            sink,
        }
    }

    pub(crate) fn set_status(&mut self, status: u16) {
        if let Some(r) = &mut self.record {
            r.status = status;
        }
    }

    fn add_response_bytes(&mut self, n: u64) {
        if let Some(r) = &mut self.record {
            r.response_bytes += n;
        }
    }

    fn complete(&mut self) -> Option<UsageRecord> {
        let mut record = self.record.take()?;
        record.request_bytes = self.request_bytes.load(Ordering::Relaxed);
        record.latency_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Some(record)
    }

    /// Emits the record without waiting.
    fn finish(&mut self) {
        if let Some(record) = self.complete() {
            self.sink.emit(GatewayEvent::Usage(record, None));
        }
    }

    /// Emits the record and returns what resolves once it is durable (`sync` metering),
    /// or `None` when responses need not wait.
    fn finish_durable(&mut self) -> Option<Durable> {
        if !self.sink.is_sync() {
            self.finish();
            return None;
        }
        let record = self.complete()?;
        Some(self.sink.emit_durable(record))
    }
}

impl Drop for Meter {
    /// A response dropped before its end (client gone) is still metered.
    fn drop(&mut self) {
        self.finish();
    }
}

/// A response body that meters what it delivers and emits the usage record at its end.
/// With metering `sync` it holds back the response's end — the last data frame when the
/// upstream says it is the last, otherwise END_STREAM — until the record is durable, so
/// the consumer never holds a complete response the ledger does not.
pub struct MeteredBody {
    inner: ResponseBody,
    meter: Meter,
    state: EndState,
}

enum EndState {
    Streaming,
    /// Waiting for durability, with the held-back last frame (if any).
    Waiting(Durable, Option<Frame<Bytes>>),
    Done,
}

impl std::fmt::Debug for MeteredBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredBody")
            .field("inner", &self.inner)
            .field("meter", &self.meter)
            .finish_non_exhaustive()
    }
}

impl MeteredBody {
    pub(crate) fn new(inner: ResponseBody, meter: Meter) -> Self {
        Self {
            inner,
            meter,
            state: EndState::Streaming,
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                EndState::Done => return Poll::Ready(None),
                EndState::Waiting(durable, held) => {
                    let result = ready!(durable.as_mut().poll(cx));
                    let held = held.take();
                    this.state = EndState::Done;
                    return Poll::Ready(match result {
                        Ok(()) => held.map(Ok),
                        Err(why) => {
                            tracing::error!(error = %why, "usage event not durable; response end withheld");
                            Some(Err(ResponseBodyError::NotDurable(why)))
                        }
                    });
                }
                EndState::Streaming => {}
            }
            let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
            match frame {
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        this.meter.add_response_bytes(data.len() as u64);
                    }
                    if !this.inner.is_end_stream() {
                        return Poll::Ready(Some(Ok(f)));
                    }
                    match this.meter.finish_durable() {
                        None => {
                            this.state = EndState::Done;
                            return Poll::Ready(Some(Ok(f)));
                        }
                        Some(durable) => this.state = EndState::Waiting(durable, Some(f)),
                    }
                }
                Some(Err(e)) => {
                    this.meter.finish();
                    this.state = EndState::Done;
                    return Poll::Ready(Some(Err(e)));
                }
                None => match this.meter.finish_durable() {
                    None => {
                        this.state = EndState::Done;
                        return Poll::Ready(None);
                    }
                    Some(durable) => this.state = EndState::Waiting(durable, None),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.state {
            EndState::Streaming => self.inner.is_end_stream() && !self.meter.sink.is_sync(),
            EndState::Waiting(..) => false,
            EndState::Done => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
