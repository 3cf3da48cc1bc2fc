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
use tokio::sync::mpsc;
use tollgate_core::apikey::KeyMode;
use tollgate_core::{ApiId, AppId, OrgId, SubscriptionId};
use uuid::Uuid;

use crate::body::ResponseBody;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayEvent {
    Usage(UsageRecord),
    Denied(DenialRecord),
}

/// The sending side of the event channel. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Option<mpsc::Sender<GatewayEvent>>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// A bounded channel of `capacity` events and its receiver.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<GatewayEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx: Some(tx),
                dropped: Arc::default(),
            },
            rx,
        )
    }

    /// A sink that discards every event (gateways without metering, tests).
    pub fn discard() -> Self {
        Self {
            tx: None,
            dropped: Arc::default(),
        }
    }

    /// Queues an event without waiting. A full or closed channel drops it and counts it.
    pub fn emit(&self, event: GatewayEvent) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Log the first drop and then every 1024th, not every one.
            if n == 1 || n.is_multiple_of(1024) {
                tracing::error!(dropped = n, "gateway event channel full; events dropped");
            }
        }
    }

    /// Events dropped because the channel was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

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

    fn finish(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.request_bytes = self.request_bytes.load(Ordering::Relaxed);
            record.latency_us =
                u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.sink.emit(GatewayEvent::Usage(record));
        }
    }
}

impl Drop for Meter {
    /// A response dropped before its end (client gone) is still metered.
    fn drop(&mut self) {
        self.finish();
    }
}

/// A response body that meters what it delivers and emits the usage record at its end.
#[derive(Debug)]
pub struct MeteredBody {
    inner: ResponseBody,
    meter: Meter,
}

impl MeteredBody {
    pub(crate) fn new(inner: ResponseBody, meter: Meter) -> Self {
        Self { inner, meter }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    this.meter.add_response_bytes(data.len() as u64);
                }
            }
            Some(Err(_)) | None => this.meter.finish(),
        }
        if frame.is_none() || this.inner.is_end_stream() {
            this.meter.finish();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
