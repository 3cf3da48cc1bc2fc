//! Outbound webhooks after Standard Webhooks (<https://www.standardwebhooks.com/>): the
//! producers' [`enqueue`], the signature scheme ([`sign`], [`verify`]) and the delivery
//! worker ([`spawn`], [`run_once`]).
//!
//! **Outbox.** A producer (billing) calls [`enqueue`] inside the write transaction of the
//! change the event reports, so the event exists if and only if the change committed. The
//! event's body is rendered once, there, so every attempt sends the same bytes; its id is
//! the producer's event id and becomes the `webhook-id` header, and an id an org already
//! used is a no-op, so producers may retry.
//!
//! **Delivery.** The worker takes due deliveries in a short write transaction that moves
//! their next attempt past the attempt's timeout (a lease: a crash mid-attempt means a
//! retry, never a loss), then attempts each one concurrently with its own timeout, so a
//! slow receiver delays nobody else, and records the outcome. A 2xx answer is delivered;
//! anything else is retried after the next delay of [`WorkerConfig::backoff`] (lengthened
//! by up to [`WorkerConfig::jitter`]) until the attempts run out; then it failed. URLs that
//! are not http(s) fail at once, without a request.
//!
//! **Secrets.** Each endpoint has its own secret (`whsec_` + base64 of 32 random bytes),
//! shown once and stored only sealed by the keyring's data-encryption key with an AAD
//! naming the endpoint ([`secret_aad`]). After a rotation the previous secret signs beside
//! the new one for [`SECRET_OVERLAP`]; Standard Webhooks receivers accept a header with
//! several space-separated signatures when any one verifies. Secrets and bodies are never
//! logged.

use crate::error::ApiError;
use crate::state::AppState;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tollgate_core::OrgId;
use tollgate_keyring::Zeroizing;
use tollgate_store::webhooks::{
    AttemptOutcome, DeliveryStatus, DueDelivery, Enqueued, NewWebhookEvent, WebhookAttempt,
    WebhookEndpointId,
};
use tollgate_store::{StoreError, Tx};

/// A billing invoice was finalized (signed and numbered).
pub const INVOICE_FINALIZED: &str = "invoice.finalized";
/// A credit note was issued.
pub const CREDIT_NOTE_ISSUED: &str = "credit_note.issued";
/// A provider's payout is ready.
pub const PAYOUT_READY: &str = "payout.ready";
/// The event types the marketplace emits today; endpoints may name others (the type is an
/// open string), which then receive events once a producer emits them.
pub const EVENT_TYPES: [&str; 3] = [INVOICE_FINALIZED, CREDIT_NOTE_ISSUED, PAYOUT_READY];

/// Prefix of an endpoint secret as Standard Webhooks spells it.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in an endpoint secret.
pub const SECRET_BYTES: usize = 32;
/// How long the secret replaced by a rotation keeps signing beside the new one.
pub const SECRET_OVERLAP: time::Duration = time::Duration::hours(24);
/// Largest rendered event body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why an event could not be enqueued.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid event type {0:?}: use 1-100 characters of a-z, 0-9, '.', '_' and '-'")]
    EventType(String),
    #[error("invalid event id {0:?}: use 1-200 characters of A-Z, a-z, 0-9, '.', ':', '_' and '-'")]
    EventId(String),
    #[error("the event body has {0} bytes, more than the limit of {MAX_BODY_BYTES}")]
    TooLarge(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WebhookError> for ApiError {
    /// A malformed event is the producer's bug, so an internal error; the store's errors
    /// keep their own mapping (unavailable, stale, …).
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

/// Whether `t` is a well-formed event type (`invoice.finalized`).
pub fn valid_event_type(t: &str) -> bool {
    (1..=100).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn valid_event_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// The body every attempt of an event sends: `{"type", "timestamp" (RFC 3339, UTC),
/// "data"}`.
pub fn envelope(event_type: &str, data: &serde_json::Value, at: OffsetDateTime) -> String {
    let timestamp = at
        .to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({"type": event_type, "timestamp": timestamp, "data": data}).to_string()
}

/// Writes event `event_id` of `org_id` to the webhook outbox inside the caller's write
/// transaction `tx`: one delivery per endpoint of the org whose event types include
/// `event_type` (or that takes every type), due at `at` (pass the marketplace clock's
/// now). The event exists only if `tx` commits. An id the org already used changes
/// nothing and answers [`Enqueued::Duplicate`].
pub async fn enqueue(
    tx: &mut Tx,
    org_id: OrgId,
    event_type: &str,
    event_id: &str,
    data: serde_json::Value,
    at: OffsetDateTime,
) -> Result<Enqueued, WebhookError> {
    if !valid_event_type(event_type) {
        return Err(WebhookError::EventType(event_type.to_owned()));
    }
    if !valid_event_id(event_id) {
        return Err(WebhookError::EventId(event_id.to_owned()));
    }
    let body = envelope(event_type, &data, at);
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge(body.len()));
    }
    let outcome = tx
        .enqueue_webhook_event(&NewWebhookEvent {
            org_id,
            id: event_id,
            event_type,
            body: &body,
            occurred_at: at,
        })
        .await?;
    Ok(outcome)
}

// ------------------------------------------------------------------------ signatures

/// One Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(secret,
/// `{msg_id}.{timestamp}.{body}`)).
pub fn sign(secret: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(msg_id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(secrets: &[&[u8]], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The raw bytes of a `whsec_…` secret (the prefix is optional, as receivers accept).
pub fn decode_secret(secret: &str) -> Option<Zeroizing<Vec<u8>>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD.decode(b64).ok().map(Zeroizing::new)
}

/// Whether `header` (a `webhook-signature` value) holds a `v1` signature of the message by
/// `secret` (`whsec_…`), compared in constant time. The timestamp's freshness is the
/// receiver's to check.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(key) = decode_secret(secret) else {
        return false;
    };
    let expected = sign(&key, msg_id, timestamp, body);
    header
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

/// A fresh endpoint secret: its `whsec_…` text (shown once) and its raw bytes (sealed).
pub fn generate_secret() -> Result<(String, Zeroizing<Vec<u8>>), ApiError> {
    let mut raw = Zeroizing::new(vec![0u8; SECRET_BYTES]);
    aws_lc_rs::rand::fill(raw.as_mut_slice()).map_err(ApiError::internal)?;
    Ok((
        format!("{SECRET_PREFIX}{}", STANDARD.encode(raw.as_slice())),
        raw,
    ))
}

/// What a sealed endpoint secret is bound to: its table, column and endpoint id, so a
/// blob copied to another endpoint's row does not open.
pub fn secret_aad(id: WebhookEndpointId) -> Vec<u8> {
    format!("tollgate/webhook_endpoints/secret/{id}").into_bytes()
}

// ------------------------------------------------------------------------ worker

/// How the delivery worker runs. Doc comments are the user docs (see docs/webhooks.md).
#[derive(Clone)]
pub struct WorkerConfig {
    /// How often the worker looks for due deliveries.
    pub poll_interval: Duration,
    /// Longest time one attempt may take: connect, TLS, request and response headers.
    pub timeout: Duration,
    /// Delay before each retry: the n-th entry follows the n-th failed attempt. There are
    /// `backoff.len() + 1` attempts in all; after the last one fails, the delivery failed.
    pub backoff: Vec<Duration>,
    /// Each delay is lengthened by a random fraction of itself up to this (0 = none), so
    /// retries of many deliveries to one receiver spread out.
    pub jitter: f64,
    /// Most attempts in flight at once (and most deliveries taken per poll).
    pub max_in_flight: usize,
    /// Deliver to loopback, private, link-local and other non-public addresses. Off by
    /// default: an org's admin must not be able to make the marketplace call its own
    /// internal network (or a cloud metadata service).
    pub allow_private_networks: bool,
    /// TLS client configuration; `None` trusts the system's root certificates
    /// (`SSL_CERT_FILE`, else the usual bundle paths).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("poll_interval", &self.poll_interval)
            .field("timeout", &self.timeout)
            .field("backoff", &self.backoff)
            .field("jitter", &self.jitter)
            .field("max_in_flight", &self.max_in_flight)
            .field("allow_private_networks", &self.allow_private_networks)
            .finish_non_exhaustive()
    }
}

impl Default for WorkerConfig {
    /// Attempts at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (eight in
    /// all, over about 28 hours), 10 s each, polled every second.
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 3600;
        Self {
            poll_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            backoff: [
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.2,
            max_in_flight: 32,
            allow_private_networks: false,
            tls: None,
        }
    }
}

impl WorkerConfig {
    /// Attempts a delivery gets before it failed.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.backoff.len() + 1).unwrap_or(u32::MAX)
    }

    /// The delay after failed attempt `attempt` (1-based) before the next one, without
    /// jitter; `None` when it was the last.
    pub fn retry_delay(&self, attempt: u32) -> Option<Duration> {
        let i = usize::try_from(attempt).ok()?.checked_sub(1)?;
        self.backoff.get(i).copied()
    }

    /// How long a taken delivery is reserved for its attempt.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(60)
    }
}

/// Runs the delivery worker until shutdown begins (`AppState::draining`); attempts in
/// flight then finish (each within its timeout) before the task ends.
pub fn spawn(state: Arc<AppState>, config: WorkerConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = Arc::new(config);
        let mut in_flight = tokio::task::JoinSet::new();
        let mut tick = tokio::time::interval(config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if state.draining.load(std::sync::atomic::Ordering::Acquire) {
                        break;
                    }
                    let room = config.max_in_flight.saturating_sub(in_flight.len());
                    if room == 0 {
                        continue;
                    }
                    match claim(&state, &config, room).await {
                        Ok(due) => {
                            for d in due {
                                in_flight.spawn(attempt(state.clone(), config.clone(), d));
                            }
                        }
                        Err(e) => tracing::warn!(error = %e.detail, "taking due webhook deliveries failed; will retry"),
                    }
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    if let Err(e) = done {
                        tracing::error!(error = %e, "a webhook delivery attempt panicked");
                    }
                }
            }
        }
        while in_flight.join_next().await.is_some() {}
    })
}

/// One round: takes the deliveries due now (up to `max_in_flight`), attempts them
/// concurrently and records every outcome. Returns how many were attempted.
pub async fn run_once(state: &Arc<AppState>, config: &WorkerConfig) -> Result<usize, ApiError> {
    let config = Arc::new(config.clone());
    let due = claim(state, &config, config.max_in_flight).await?;
    let n = due.len();
    let mut set = tokio::task::JoinSet::new();
    for d in due {
        set.spawn(attempt(state.clone(), config.clone(), d));
    }
    while let Some(done) = set.join_next().await {
        done.map_err(ApiError::internal)?;
    }
    Ok(n)
}

async fn claim(
    state: &AppState,
    config: &WorkerConfig,
    limit: usize,
) -> Result<Vec<DueDelivery>, ApiError> {
    let now = state.now();
    // Most polls find nothing: ask without the write lock first.
    let mut tx = state.store.read().await?;
    let any = tx.webhook_deliveries_due(now).await?;
    tx.rollback().await?;
    if !any {
        return Ok(Vec::new());
    }
    let mut tx = state.store.write().await?;
    let due = tx
        .claim_webhook_deliveries(
            now,
            now + config.lease(),
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await?;
    tx.commit().await?;
    Ok(due)
}

/// Why an attempt got no 2xx answer.
enum Failure {
    /// Retrying cannot help (the URL is unusable): the delivery fails now.
    Permanent(String),
    Transient(String),
}

/// Attempts one delivery and records the outcome; errors are logged here.
async fn attempt(state: Arc<AppState>, config: Arc<WorkerConfig>, d: DueDelivery) {
    let number = d.attempts + 1;
    let at = state.now();
    let started = Instant::now();
    let result = match open_secrets(&state, &d).await {
        Ok(secrets) => {
            let timestamp = at.unix_timestamp();
            let refs: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
            let signature = signature_header(&refs, &d.event_id, timestamp, d.body.as_bytes());
            drop(secrets);
            let headers = [
                ("webhook-id", d.event_id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ];
            match tokio::time::timeout(config.timeout, post(&config, &d, &headers)).await {
                Ok(r) => r,
                Err(_) => Err(Failure::Transient(format!(
                    "no answer within {} ms",
                    config.timeout.as_millis()
                ))),
            }
        }
        Err(e) => Err(Failure::Transient(e)),
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status_code, error, permanent) = match result {
        Ok(code) if (200..300).contains(&code) => (Some(code), None, false),
        Ok(code) => (Some(code), Some(format!("answered HTTP {code}")), false),
        Err(Failure::Transient(e)) => (None, Some(e), false),
        Err(Failure::Permanent(e)) => (None, Some(e), true),
    };
    let delay = if permanent {
        None
    } else {
        config.retry_delay(number)
    };
    let (status, next_attempt_at) = match (&error, delay) {
        (None, _) => (DeliveryStatus::Delivered, None),
        (Some(_), Some(delay)) => (
            DeliveryStatus::Pending,
            Some(state.now() + with_jitter(delay, config.jitter)),
        ),
        (Some(_), None) => (DeliveryStatus::Failed, None),
    };
    match status {
        DeliveryStatus::Delivered => {
            tracing::info!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, org_id = %d.org_id, event_id = %d.event_id, attempt = number, status = status_code, duration_ms, "webhook delivered")
        }
        _ => {
            tracing::warn!(delivery_id = %d.id, endpoint_id = %d.endpoint_id, org_id = %d.org_id, event_id = %d.event_id, attempt = number, status = status_code, error = error.as_deref().unwrap_or(""), retry = status == DeliveryStatus::Pending, "webhook attempt failed")
        }
    }
    let outcome = AttemptOutcome {
        attempt: WebhookAttempt {
            attempt: number,
            at,
            status_code,
            error,
            duration_ms,
        },
        status,
        next_attempt_at,
    };
    let recorded = async {
        let mut tx = state.store.write().await?;
        tx.record_webhook_attempt(d.id, &outcome).await?;
        tx.commit().await
    };
    if let Err(e) = recorded.await {
        // The lease runs out and the delivery is attempted again: at least once.
        tracing::warn!(delivery_id = %d.id, error = %e, "recording a webhook attempt failed; it will be retried");
    }
}

async fn open_secrets(
    state: &AppState,
    d: &DueDelivery,
) -> Result<Vec<Zeroizing<Vec<u8>>>, String> {
    let aad = secret_aad(d.endpoint_id);
    let ring = state.keyring.read().await;
    let mut out = Vec::with_capacity(2);
    for sealed in std::iter::once(&d.secret_sealed).chain(d.previous_secret_sealed.as_ref()) {
        let secret = ring.decrypt(sealed, &aad).map_err(|e| {
            tracing::error!(endpoint_id = %d.endpoint_id, error = %e, "a webhook secret does not open");
            "the endpoint's secret could not be opened".to_owned()
        })?;
        out.push(secret);
    }
    Ok(out)
}

/// `delay` lengthened by a random fraction of itself up to `jitter`.
fn with_jitter(delay: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return delay;
    }
    let mut b = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        return delay;
    }
    let r = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
    delay.mul_f64(1.0 + r * jitter.min(1.0))
}

/// Whether `ip` is reachable on the public internet (not loopback, private, link-local,
/// shared, documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
                || (a == 198 && (18..20).contains(&b)) // benchmarking (RFC 2544)
                || a >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
                    || v6.segments()[0] == 0x2001 && v6.segments()[1] == 0x0db8)
            }
        },
    }
}

/// Sends one attempt: the event's body with `headers`, over a fresh connection.
async fn post(
    config: &WorkerConfig,
    d: &DueDelivery,
    headers: &[(&'static str, String)],
) -> Result<u16, Failure> {
    let uri: http::Uri = d
        .url
        .parse()
        .map_err(|_| Failure::Permanent("the endpoint URL is not a valid URL".to_owned()))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        other => {
            return Err(Failure::Permanent(format!(
                "refused to deliver to a {} URL: only http and https are supported",
                other.unwrap_or("schemeless")
            )));
        }
    };
    let authority = uri
        .authority()
        .filter(|a| !a.as_str().contains('@'))
        .ok_or_else(|| Failure::Permanent("the endpoint URL has no usable host".to_owned()))?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::Transient(format!("cannot resolve {host}: {e}")))?
        .collect();
    // Connect to an address that was checked, never re-resolve (DNS rebinding).
    let allowed: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|a| config.allow_private_networks || is_public(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(Failure::Transient(format!(
            "{host} resolves only to non-public addresses, which webhooks are not sent to"
        )));
    }
    let mut last = None;
    let mut stream = None;
    for addr in allowed {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(Failure::Transient(format!(
            "cannot connect to {authority}: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        )));
    };
    let _ = stream.set_nodelay(true);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let mut req = http::Request::post(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "Tollgate-Webhooks/1")
        .header(http::header::CONNECTION, "close");
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(d.body.clone())))
        .map_err(|e| Failure::Permanent(format!("cannot build the request: {e}")))?;
    if tls {
        let config = match &config.tls {
            Some(c) => c.clone(),
            None => system_tls().map_err(Failure::Transient)?,
        };
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| Failure::Permanent(format!("{host} is not a valid TLS server name")))?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
            .map_err(|e| Failure::Transient(format!("TLS handshake with {authority}: {e}")))?;
        exchange(stream, req).await
    } else {
        exchange(stream, req).await
    }
}

/// One HTTP/1.1 request on `io`; the answer's status.
async fn exchange<S>(io: S, req: http::Request<Full<Bytes>>) -> Result<u16, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::Transient(format!("HTTP handshake: {e}")))?;
    let mut conn = std::pin::pin!(conn);
    let mut answer = std::pin::pin!(sender.send_request(req));
    // The connection is driven here, beside the request, so nothing outlives the attempt.
    // With `connection: close` it may end as soon as the answer is read: the answer is
    // then taken from the request side.
    let answer = tokio::select! {
        biased;
        answer = &mut answer => answer,
        closed = &mut conn => match closed {
            Ok(()) => answer.await,
            Err(e) => return Err(Failure::Transient(format!("connection failed: {e}"))),
        },
    };
    answer
        .map(|r| r.status().as_u16())
        .map_err(|e| Failure::Transient(format!("request failed: {e}")))
}

/// TLS client configuration trusting the system's root certificates, built once.
fn system_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let files = std::env::var("SSL_CERT_FILE")
                .map(|f| vec![f])
                .unwrap_or_else(|_| {
                    [
                        "/etc/ssl/certs/ca-certificates.crt",
                        "/etc/pki/tls/certs/ca-bundle.crt",
                        "/etc/ssl/ca-bundle.pem",
                        "/etc/ssl/cert.pem",
                    ]
                    .map(str::to_owned)
                    .to_vec()
                });
            for file in files {
                if let Ok(pem) = std::fs::read(&file) {
                    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
                        let _ = roots.add(cert);
                    }
                }
            }
            if roots.is_empty() {
                return Err(
                    "no trusted root certificates found for https webhooks (set SSL_CERT_FILE)"
                        .to_owned(),
                );
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks signing examples of /work/shared/vectors/stdwebhooks_vectors.json
    /// (from the specification's reference libraries), copied here so the test needs
    /// nothing outside the crate.
    const VECTORS: &str = r#"{
      "vectors": [
        {"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
         "timestamp": 1614265330, "payload": "{\"test\": 2432232314}",
         "expected": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {"secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_id": "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
         "timestamp": 1649367553, "payload": "{\"email\":\"test@example.com\",\"username\":\"test_user\"}",
         "expected": "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="}
      ],
      "negative": [
        {"secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_id": "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
         "payload": "{\"email\":\"test@example.com\",\"username\":\"test_user\"}",
         "signature": "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU="}
      ]
    }"#;

    fn vectors() -> serde_json::Value {
        // The shared copy, when it is beside the repository, must say the same.
        let shared = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors/stdwebhooks_vectors.json"
        );
        let ours: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        if let Ok(text) = std::fs::read_to_string(shared) {
            let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
            for (i, v) in ours["vectors"].as_array().unwrap().iter().enumerate() {
                for k in ["secret", "msg_id", "timestamp", "payload", "expected"] {
                    assert_eq!(v[k], theirs["vectors"][i][k], "vector {i} {k}");
                }
            }
        }
        ours
    }

    fn check(secret: &str, msg_id: &str, timestamp: i64, payload: &str, expected: &str) {
        let key = decode_secret(secret).unwrap();
        assert_eq!(sign(&key, msg_id, timestamp, payload.as_bytes()), expected);
        assert!(verify(
            secret,
            msg_id,
            timestamp,
            payload.as_bytes(),
            expected
        ));
        // Any change to what is signed breaks it.
        assert!(!verify(
            secret,
            msg_id,
            timestamp + 1,
            payload.as_bytes(),
            expected
        ));
        assert!(!verify(
            secret,
            "other",
            timestamp,
            payload.as_bytes(),
            expected
        ));
        assert!(!verify(secret, msg_id, timestamp, b"{}", expected));
    }

    #[test]
    fn signatures_match_the_standard_webhooks_vectors() {
        let v = vectors();
        for t in v["vectors"].as_array().unwrap() {
            check(
                t["secret"].as_str().unwrap(),
                t["msg_id"].as_str().unwrap(),
                t["timestamp"].as_i64().unwrap(),
                t["payload"].as_str().unwrap(),
                t["expected"].as_str().unwrap(),
            );
        }
    }

    #[test]
    fn bad_and_mixed_signature_headers() {
        let v = vectors();
        let t = &v["vectors"][1];
        let (secret, id, ts, body) = (
            t["secret"].as_str().unwrap(),
            t["msg_id"].as_str().unwrap(),
            t["timestamp"].as_i64().unwrap(),
            t["payload"].as_str().unwrap().as_bytes(),
        );
        let neg = &v["negative"][0];
        assert!(!verify(
            secret,
            id,
            ts,
            body,
            neg["signature"].as_str().unwrap()
        ));
        assert!(!verify(secret, id, ts, body, "v1,"));
        assert!(!verify(secret, id, ts, body, ""));
        let valid = t["expected"].as_str().unwrap();
        let junk = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        let mixed =
            format!("{junk} v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {valid} {junk}");
        assert!(verify(secret, id, ts, body, &mixed));
        // Only v1 counts: the same signature under another version does not verify.
        assert!(!verify(
            secret,
            id,
            ts,
            body,
            &valid.replacen("v1,", "v2,", 1)
        ));
        // Both secrets of a rotation sign: each verifies the combined header.
        let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let keys = [
            decode_secret(secret).unwrap(),
            decode_secret(other).unwrap(),
        ];
        let header = signature_header(&[&keys[0], &keys[1]], id, ts, body);
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(secret, id, ts, body, &header));
        assert!(verify(other, id, ts, body, &header));
    }

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let (a, raw) = generate_secret().unwrap();
        let (b, _) = generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(*decode_secret(&a).unwrap(), *raw);
        assert_eq!(raw.len(), SECRET_BYTES);
    }

    #[test]
    fn retry_schedule_and_jitter() {
        let c = WorkerConfig::default();
        assert_eq!(c.max_attempts(), 8);
        assert_eq!(c.retry_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(c.retry_delay(2), Some(Duration::from_secs(300)));
        assert_eq!(c.retry_delay(7), Some(Duration::from_secs(36_000)));
        assert_eq!(c.retry_delay(8), None);
        assert_eq!(c.retry_delay(0), None);
        for _ in 0..100 {
            let d = with_jitter(Duration::from_secs(100), 0.2);
            assert!((Duration::from_secs(100)..=Duration::from_secs(120)).contains(&d));
        }
        assert_eq!(
            with_jitter(Duration::from_secs(5), 0.0),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn event_types_ids_and_envelope() {
        for t in EVENT_TYPES {
            assert!(valid_event_type(t));
        }
        for bad in ["", "Invoice.Finalized", "a b", &"x".repeat(101)] {
            assert!(!valid_event_type(bad), "{bad}");
        }
        assert!(valid_event_id("evt_01J.x:y-z"));
        for bad in ["", "a b", "a\nb", "é"] {
            assert!(!valid_event_id(bad), "{bad:?}");
        }
        let at = time::macros::datetime!(2026-03-01 12:00:00.5 +01:00);
        let body = envelope("payout.ready", &serde_json::json!({"b": 1, "a": 2}), at);
        assert_eq!(
            body,
            r#"{"type":"payout.ready","timestamp":"2026-03-01T11:00:00.5Z","data":{"b":1,"a":2}}"#
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
