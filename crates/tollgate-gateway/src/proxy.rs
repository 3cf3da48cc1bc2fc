//! The proxy: one request's path through the gateway. Load the snapshot once, find the
//! API, authenticate, match the operation, then stream the request to an upstream and
//! the response back, rescuing failures into typed problem answers.
//!
//! Request body limit: a `Content-Length` (or HTTP/2 size hint) above the limit is
//! answered 413 before the upstream is contacted. A body without a declared length is
//! counted as it streams; the frame that crosses the limit aborts the upstream request.
//! If the upstream has not answered yet the consumer gets 413; if it already has (it
//! answered before reading the whole body), its response passes through and the upstream
//! sees a truncated body on a closed connection. Either way it never receives more than
//! the limit.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, FORWARDED, HOST, HeaderValue};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tollgate_core::ErrorCode;

use crate::access;
use crate::auth::{AuthContext, AuthInput, AuthOutcome};
use crate::body::{LimitedBody, RequestBodyError, ResponseBody};
use crate::headers::{self, X_REQUEST_ID};
use crate::pipeline::{self, Admitted, CallFacts, Services};
use crate::problem::{GatewayCode, GatewayError};
use crate::router::OperationMatch;
use crate::server::GatewayConfig;
use crate::snapshot::{SnapshotHandle, Upstream};
use crate::upstream::{Failed, Fault, Upstreams};
use crate::usage::{DenialRecord, GatewayEvent, Meter, MeteredBody, UsageRecord};

/// The gateway's own health endpoint, answered on every host without authentication.
pub const HEALTH_PATH: &str = "/_tollgate/health";

/// How long an idle pooled upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The proxy service. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    snapshots: SnapshotHandle,
    /// Authentication, clock, limiter, decision cache, metering.
    services: Services,
    /// The upstream client with its circuit breakers and retry policy.
    upstream: Upstreams,
    request_timeout: Duration,
    max_body_bytes: u64,
    max_header_bytes: usize,
    /// Whether the listener speaks TLS (for `Forwarded: proto=`).
    tls: bool,
}

/// What `prepare` decided: forward the request, or answer at once (an error or the
/// health page).
enum Step {
    Forward(Box<Forward>),
    /// A test-mode answer from the API's OpenAPI examples, metered like a forwarded call.
    Mock(Response<ResponseBody>, Box<Metering>),
    Answer(Response<ResponseBody>),
}

/// A request ready to go upstream, with what its response needs afterwards.
struct Forward {
    request: Request<LimitedBody>,
    /// `Sunset` / `Deprecation` of a deprecated API (cloned out so the snapshot guard
    /// is released before awaiting the upstream).
    lifecycle: Vec<(http::HeaderName, HeaderValue)>,
    /// For an identified caller: what was counted and the usage record to emit.
    metering: Option<Metering>,
}

/// The metering side of a forwarded call.
struct Metering {
    admitted: Admitted,
    record: UsageRecord,
    started: Instant,
    request_bytes: Arc<AtomicU64>,
}

impl Gateway {
    /// A gateway serving the snapshots of `snapshots` with `services` (an authenticator
    /// alone converts into services with defaults: system clock, in-process limiter, no
    /// metering).
    pub fn new(
        snapshots: SnapshotHandle,
        services: impl Into<Services>,
        config: &GatewayConfig,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Self {
            inner: Arc::new(Inner {
                snapshots,
                services: services.into(),
                upstream: Upstreams::new(client, config),
                request_timeout: config.request_timeout,
                max_body_bytes: config.max_body_bytes,
                max_header_bytes: config.max_header_bytes,
                tls: config.tls.is_some(),
            }),
        }
    }

    /// The upstream side, for the health checks `serve` runs.
    pub(crate) fn upstream(&self) -> &Upstreams {
        &self.inner.upstream
    }

    /// Serves one request from `peer`. Never fails: every error becomes a problem answer.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ResponseBody> {
        if let Some(public) = &self.inner.services.public
            && public.serves(req.uri().path())
        {
            return public.call(req, peer).await.map(ResponseBody::full);
        }
        let (mut parts, body) = req.into_parts();
        let request_id = headers::request_id(&parts.headers);
        let forward = match self.prepare(&mut parts, body, peer.ip(), &request_id) {
            Step::Forward(forward) => forward,
            Step::Answer(response) => return response,
            Step::Mock(response, metering) => return self.metered(response, *metering),
        };
        let Forward {
            request,
            lifecycle,
            mut metering,
        } = *forward;

        // Circuit breakers, failover to the API's other upstreams and retries happen
        // in `Upstreams::forward`; the request timeout bounds all of it.
        let result = self
            .inner
            .upstream
            .forward(
                request,
                parts.uri.path(),
                &self.inner.snapshots,
                self.inner.request_timeout,
            )
            .await;
        let mut response = match result {
            Ok(upstream) => {
                let (mut head, body) = upstream.into_parts();
                headers::strip_hop_by_hop(&mut head.headers);
                head.headers.insert(X_REQUEST_ID, request_id);
                Response::from_parts(head, ResponseBody::Upstream(body))
            }
            Err(Failed { error, cause }) => {
                log_error(&error, &parts, &request_id, cause.as_ref());
                // The upstream did not serve the call: it counts against no limit.
                if let Some(m) = &mut metering {
                    let a = &m.admitted;
                    pipeline::give_back(&self.inner.services, &a.subscription, &a.consumed, a.now);
                    m.record.refunded = true;
                }
                error.into_response(parts.uri.path(), &request_id)
            }
        };
        for (name, value) in lifecycle {
            response.headers_mut().insert(name, value);
        }
        match metering {
            None => response,
            Some(m) => self.metered(response, m),
        }
    }

    /// Adds the limit fields and the usage id, and meters the response body.
    fn metered(&self, mut response: Response<ResponseBody>, m: Metering) -> Response<ResponseBody> {
        let headers = response.headers_mut();
        for (name, value) in m.admitted.headers {
            headers.insert(name, value);
        }
        if let Ok(id) = HeaderValue::try_from(m.record.event_id.to_string()) {
            headers.insert(pipeline::TOLLGATE_USAGE_ID, id);
        }
        let mut meter = Meter::new(
            m.record,
            m.started,
            m.request_bytes,
            self.inner.services.events.clone(),
        );
        meter.set_status(response.status().as_u16());
        response.map(|body| ResponseBody::Metered(Box::new(MeteredBody::new(body, meter))))
    }

    /// Everything before the upstream call, synchronous so the snapshot guard can never
    /// be held across an await.
    fn prepare(
        &self,
        parts: &mut Parts,
        body: Incoming,
        peer: IpAddr,
        request_id: &HeaderValue,
    ) -> Step {
        let reject = |error: GatewayError, parts: &Parts| {
            log_error(&error, parts, request_id, None);
            Step::Answer(error.into_response(parts.uri.path(), request_id))
        };

        let header_bytes: usize = parts
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        if header_bytes > self.inner.max_header_bytes {
            let detail = format!(
                "the request headers take {header_bytes} bytes; the limit is {}",
                self.inner.max_header_bytes
            );
            return reject(
                GatewayError::new(GatewayCode::HeadersTooLarge, detail),
                parts,
            );
        }

        // One atomic load: this request sees this snapshot from routing to forwarding.
        let snapshot = self.inner.snapshots.load();
        let path = parts.uri.path();
        if path == HEALTH_PATH {
            return Step::Answer(health(&parts.method, snapshot.version(), request_id));
        }
        if has_dot_segment(path) {
            let detail = "the path contains a '.' or '..' segment";
            return reject(GatewayError::new(ErrorCode::BadRequest, detail), parts);
        }

        let host_header = request_host(parts);
        let host = host_header.map_or("", host_without_port);
        let Some(route) = snapshot.route(host, path) else {
            let detail = "no published API has this path on this host";
            return reject(GatewayError::new(ErrorCode::RouteNotFound, detail), parts);
        };
        let api = route.api;

        if snapshot.access().requires_mtls(api.route.api_id)
            && parts.extensions.get::<crate::tls::ClientCert>().is_none()
        {
            let error = GatewayError::new(
                ErrorCode::ClientCertificateRequired,
                "this API requires a TLS client certificate",
            );
            return reject(error, parts);
        }
        // Authenticate before matching the operation, so an unauthenticated caller
        // cannot probe which operations exist.
        let started = Instant::now();
        let services = &self.inner.services;
        let now_utc = services.clock.now();
        let now = access::timestamp(now_utc);
        let input = AuthInput {
            access: snapshot.access(),
            peer,
            now,
            scheme: if self.inner.tls { "https" } else { "http" },
        };
        // A public API takes no credential: nothing to authorize, limit or meter. (A
        // credential sent anyway is forwarded untouched, like any other header.)
        let outcome = if snapshot.access().is_public(api.route.api_id) {
            AuthOutcome::Allow(AuthContext::anonymous())
        } else {
            services.auth.authenticate(parts, &api.route, &input)
        };
        let mut caller = match outcome {
            AuthOutcome::Allow(ctx) => ctx,
            AuthOutcome::Deny(error) => return reject(error, parts),
        };

        let lifecycle: Vec<_> = api
            .lifecycle_headers()
            .map(|(k, v)| (k, v.clone()))
            .collect();
        let with_lifecycle = |mut error: GatewayError| {
            for (name, value) in &lifecycle {
                error.headers_mut().insert(name.clone(), value.clone());
            }
            error
        };
        let operation = match route.match_operation(&parts.method) {
            OperationMatch::Matched(op, _) => op,
            OperationMatch::MethodNotAllowed(allowed) => {
                let detail = format!("{} is not allowed here", parts.method);
                let error = GatewayError::new(ErrorCode::MethodNotAllowed, detail)
                    .with_header(http::header::ALLOW, allowed.header().clone());
                return reject(with_lifecycle(error), parts);
            }
            OperationMatch::NoOperation => {
                let detail = "the API has no operation at this path";
                return reject(
                    with_lifecycle(GatewayError::new(ErrorCode::NotFound, detail)),
                    parts,
                );
            }
        };

        let declared = body.size_hint().lower();
        if declared > self.inner.max_body_bytes {
            let detail = format!(
                "the request body has {declared} bytes; the limit is {}",
                self.inner.max_body_bytes
            );
            return reject(
                with_lifecycle(GatewayError::new(ErrorCode::PayloadTooLarge, detail)),
                parts,
            );
        }

        // Authorization and limits, for an identified caller.
        let metering = match caller.principal() {
            None => None,
            Some(principal) => {
                let access = snapshot.access();
                let api_slug = access.api_slug(api.route.api_id).unwrap_or("");
                let text = |name| {
                    parts
                        .headers
                        .get(name)
                        .and_then(|v: &HeaderValue| v.to_str().ok())
                };
                let call = CallFacts {
                    api: api.route.api_id,
                    api_slug,
                    operation: &operation.operation_id,
                    peer,
                    purpose: text(pipeline::TOLLGATE_PURPOSE),
                    consent: text(pipeline::TOLLGATE_CONSENT),
                    auth_method: caller.method(),
                };
                match pipeline::admit(services, access, snapshot.version(), principal, &call, now) {
                    Ok(admitted) => {
                        let sub = &admitted.subscription;
                        let record = UsageRecord {
                            event_id: uuid::Uuid::now_v7(),
                            time: now_utc,
                            provider_org_id: sub.provider_org_id,
                            consumer_org_id: sub.consumer_org_id,
                            app_id: sub.app_id,
                            subscription_id: sub.id,
                            credential_id: principal.credential_id.clone(),
                            api_id: api.route.api_id,
                            operation_id: operation.operation_id.clone(),
                            method: parts.method.as_str().to_owned(),
                            status: 0,
                            request_bytes: 0,
                            response_bytes: 0,
                            latency_us: 0,
                            mode: sub.mode,
                            terms_sha256: sub.terms_sha256.as_deref().map(str::to_owned),
                            snapshot_version: snapshot.version(),
                            policy_ids: admitted.decision.reasons.clone(),
                            client_ip: peer,
                            refunded: false,
                        };
                        Some(Metering {
                            admitted,
                            record,
                            started,
                            request_bytes: Arc::default(),
                        })
                    }
                    Err(refused) => {
                        if !refused.reasons.is_empty() {
                            tracing::info!(
                                request_id = request_id.to_str().unwrap_or(""),
                                credential = principal.credential_id.as_str(),
                                operation = operation.operation_id.as_str(),
                                reasons = ?refused.reasons,
                                "call denied by policy"
                            );
                            services.events.emit(GatewayEvent::Denied(DenialRecord {
                                event_id: uuid::Uuid::now_v7(),
                                time: now_utc,
                                provider_org_id: api.route.org_id,
                                consumer_org_id: principal.org_id,
                                app_id: principal.app_id,
                                subscription_id: refused.subscription.as_ref().map(|s| s.id),
                                credential_id: principal.credential_id.clone(),
                                api_id: api.route.api_id,
                                operation_id: operation.operation_id.clone(),
                                code: refused.error.code().slug(),
                                reasons: refused.reasons,
                                snapshot_version: snapshot.version(),
                            }));
                        }
                        return reject(with_lifecycle(refused.error), parts);
                    }
                }
            }
        };

        // Test-mode calls go to the sandbox upstream, or are answered from the examples.
        let test_mode = caller
            .principal()
            .is_some_and(|p| p.mode == tollgate_core::apikey::KeyMode::Test);
        let upstream = match test_mode.then(|| api.pick_sandbox()) {
            None => api.pick_upstream(),
            Some(Some(sandbox)) => sandbox,
            Some(None) => {
                let accept = parts
                    .headers
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let prefer = parts.headers.get("prefer").and_then(|v| v.to_str().ok());
                let answer = snapshot
                    .mock(api.route.api_id)
                    .ok_or(tollgate_openapi::MockError::UnknownOperation {
                        operation_id: operation.operation_id.clone(),
                    })
                    .and_then(|m| m.respond(&operation.operation_id, accept, prefer));
                return match (answer, metering) {
                    (Ok(mock), Some(m)) => Step::Mock(mock_response(mock, request_id), Box::new(m)),
                    (Ok(mock), None) => Step::Answer(mock_response(mock, request_id)),
                    (Err(e), metering) => {
                        if let Some(m) = &metering {
                            let a = &m.admitted;
                            pipeline::give_back(services, &a.subscription, &a.consumed, a.now);
                        }
                        let code = match e {
                            tollgate_openapi::MockError::NotAcceptable { .. } => {
                                ErrorCode::NotAcceptable
                            }
                            _ => ErrorCode::MockUnavailable,
                        };
                        reject(
                            with_lifecycle(GatewayError::new(code, e.to_string())),
                            parts,
                        )
                    }
                };
            }
        };
        let Some(uri) = upstream_uri(upstream, route.remainder(), parts.uri.query()) else {
            if let Some(m) = &metering {
                let a = &m.admitted;
                pipeline::give_back(services, &a.subscription, &a.consumed, a.now);
            }
            let detail = "the request path cannot be forwarded";
            return reject(GatewayError::new(ErrorCode::BadRequest, detail), parts);
        };
        let forwarded = headers::forwarded_element(peer, host_header, self.inner.tls);

        let mut out = std::mem::take(&mut parts.headers);
        headers::strip_hop_by_hop(&mut out);
        headers::strip_credentials(&mut out);
        // The client sets `Host` from the upstream URI: upstreams see their own name, and
        // the consumer's host travels in `Forwarded`.
        out.remove(HOST);
        if let Some(value) = forwarded {
            out.append(FORWARDED, value);
        }
        out.insert(X_REQUEST_ID, request_id.clone());
        headers::propagate_trace(&mut out);
        // Only the gateway speaks for the marketplace: a consumer's assertion never passes.
        out.remove(pipeline::TOLLGATE_ASSERTION);
        if let (Some(signer), Some(m), Some(principal)) =
            (&services.assertions, &metering, caller.principal())
        {
            let facts = pipeline::AssertionFacts {
                principal,
                subscription: &m.admitted.subscription,
                api: api.route.api_id,
                auth_method: caller.method(),
                now,
            };
            if let Some(value) = signer.assertion(&facts) {
                out.insert(pipeline::TOLLGATE_ASSERTION, value);
            }
        }

        let mut body = LimitedBody::new(body, self.inner.max_body_bytes);
        if let Some(check) = caller.take_digest() {
            body = body.with_digest(check);
        }
        if let Some(m) = &metering {
            body = body.counted(m.request_bytes.clone());
        }
        let mut request = Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = uri;
        // Upstreams are spoken to over pooled HTTP/1.1, whatever the consumer used.
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = out;
        Step::Forward(Box::new(Forward {
            request,
            lifecycle,
            metering,
        }))
    }
}

/// The request's host: the URI authority (HTTP/2, absolute-form) or the `Host` header.
fn request_host(parts: &Parts) -> Option<&str> {
    match parts.uri.authority() {
        // Any `user@` part is not part of the host.
        Some(authority) => authority.as_str().rsplit('@').next(),
        None => parts.headers.get(HOST).and_then(|v| v.to_str().ok()),
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`; trailing root dot dropped.
fn host_without_port(host: &str) -> &str {
    let host = match host.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(host, |end| &host[..end + 2]),
        None => host.split(':').next().unwrap_or(host),
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Whether the path has a `.` or `..` segment, also percent-encoded (`%2e`). Such paths
/// are refused: an upstream that normalises them could be reached outside the API's
/// base path.
fn has_dot_segment(path: &str) -> bool {
    if !path.contains(['.', '%']) {
        return false;
    }
    path.split('/').any(|segment| {
        let mut rest = segment.as_bytes();
        let mut dots = 0;
        while !rest.is_empty() {
            if rest[0] == b'.' {
                rest = &rest[1..];
            } else if rest.len() >= 3
                && rest[0] == b'%'
                && rest[1] == b'2'
                && rest[2] | 0x20 == b'e'
            {
                rest = &rest[3..];
            } else {
                return false;
            }
            dots += 1;
        }
        dots == 1 || dots == 2
    })
}

/// Upstream base URL + path remainder + original query.
pub(crate) fn upstream_uri(
    upstream: &Upstream,
    remainder: &str,
    query: Option<&str>,
) -> Option<Uri> {
    let mut pq = String::with_capacity(
        upstream.path_prefix.len() + remainder.len() + query.map_or(0, |q| q.len() + 1) + 1,
    );
    pq.push_str(&upstream.path_prefix);
    pq.push_str(remainder);
    if pq.is_empty() {
        pq.push('/');
    }
    if let Some(q) = query {
        pq.push('?');
        pq.push_str(q);
    }
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(upstream.scheme.clone());
    uri.authority = Some(upstream.authority.clone());
    uri.path_and_query = Some(PathAndQuery::from_maybe_shared(Bytes::from(pq)).ok()?);
    Uri::from_parts(uri).ok()
}

/// Types the upstream failure — our body limit, the consumer's broken upload, a timeout,
/// or an unreachable/broken upstream — and says whom it blames, for the circuit breaker
/// and the retry decision.
pub(crate) fn rescue(error: &hyper_util::client::legacy::Error) -> (GatewayError, Fault) {
    let mut source: Option<&(dyn StdError + 'static)> = error.source();
    let mut timed_out = false;
    while let Some(e) = source {
        if let Some(body_error) = e.downcast_ref::<RequestBodyError>() {
            let error = match body_error {
                RequestBodyError::TooLarge => GatewayError::new(
                    ErrorCode::PayloadTooLarge,
                    "the request body exceeds the limit",
                ),
                RequestBodyError::Downstream(_) => {
                    GatewayError::new(ErrorCode::BadRequest, "the request body could not be read")
                }
                RequestBodyError::DigestMismatch => GatewayError::new(
                    ErrorCode::SignatureInvalid,
                    "the request body does not match its signed Content-Digest",
                ),
            };
            return (error, Fault::Consumer);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = e.source();
    }
    // A connect error means no connection existed, so the request was never sent.
    let fault = match error.is_connect() {
        true => Fault::Connect,
        false => Fault::Upstream,
    };
    let error = if timed_out {
        GatewayError::new(
            GatewayCode::UpstreamTimeout,
            "connecting to the upstream timed out",
        )
    } else if error.is_connect() {
        GatewayError::new(
            GatewayCode::UpstreamUnavailable,
            "the upstream could not be reached",
        )
    } else {
        GatewayError::new(
            GatewayCode::UpstreamUnavailable,
            "the upstream closed the connection or sent an invalid response",
        )
    };
    (error, fault)
}

/// Logs a gateway-made error once, here where it is answered: upstream and internal
/// failures as warnings, the caller's mistakes at debug level.
fn log_error(
    error: &GatewayError,
    parts: &Parts,
    request_id: &HeaderValue,
    cause: Option<&hyper_util::client::legacy::Error>,
) {
    let origin = crate::problem::origin(error.code());
    let request_id = request_id.to_str().unwrap_or("");
    // An open breaker refuses every call until the upstream recovers: the breaker logged
    // its opening once; one warning per refused call would flood the log.
    if origin == crate::problem::ErrorOrigin::Downstream || error.code() == ErrorCode::CircuitOpen {
        tracing::debug!(
            request_id, method = %parts.method, path = parts.uri.path(),
            code = error.code().slug(), origin = origin.as_str(), detail = error.detail(),
            "request rejected"
        );
    } else {
        tracing::warn!(
            request_id, method = %parts.method, path = parts.uri.path(),
            code = error.code().slug(), origin = origin.as_str(), detail = error.detail(),
            cause = cause.map(tracing::field::debug),
            "request failed"
        );
    }
}

/// A test-mode answer: the example's status, headers and body, marked as a mock.
fn mock_response(
    mock: tollgate_openapi::MockResponse,
    request_id: &HeaderValue,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(Bytes::from_owner(mock.body)));
    *response.status_mut() = StatusCode::from_u16(mock.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in mock.headers.iter() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(ct) = mock
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::try_from(c).ok())
    {
        headers.insert(CONTENT_TYPE, ct);
    }
    headers.insert("tollgate-mock", HeaderValue::from_static("openapi-example"));
    headers.insert(X_REQUEST_ID, request_id.clone());
    response
}

/// `GET /_tollgate/health`: liveness plus the snapshot version this node serves.
fn health(method: &Method, version: u64, request_id: &HeaderValue) -> Response<ResponseBody> {
    if method != Method::GET && method != Method::HEAD {
        let error = GatewayError::new(ErrorCode::MethodNotAllowed, "the health check answers GET")
            .with_header(http::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return error.into_response(HEALTH_PATH, request_id);
    }
    let body = format!(r#"{{"status":"ok","snapshot_version":{version}}}"#);
    let mut response = Response::new(ResponseBody::full(Bytes::from(body)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_REQUEST_ID, request_id.clone());
    response
}

/// Adapts [`Gateway::handle`] to hyper's service shape for one connection.
pub(crate) fn service(
    gateway: Gateway,
    peer: SocketAddr,
    cert: Option<crate::tls::ClientCert>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<ResponseBody>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<ResponseBody>, Infallible>> + Send + 'static,
> + Clone {
    hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let gateway = gateway.clone();
        if let Some(cert) = &cert {
            req.extensions_mut().insert(cert.clone());
        }
        async move { Ok(gateway.handle(req, peer).await) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments() {
        let check =
            |path: &str, expected: bool| assert_eq!(has_dot_segment(path), expected, "{path}");
        check("/a/b", false);
        check("/a/../b", true);
        check("/a/./b", true);
        check("/a/..", true);
        check("/a/%2e%2E/b", true);
        check("/a/.%2e/b", true);
        check("/a/%2e", true);
        check("/a/.../b", false);
        check("/a/..b/c", false);
        check("/a/b.json", false);
        check("/a/%20/b", false);
        check("/a/%2", false);
    }

    #[test]
    fn hosts_lose_their_port() {
        let check =
            |raw: &str, expected: &str| assert_eq!(host_without_port(raw), expected, "{raw}");
        check("example.com", "example.com");
        check("example.com:8080", "example.com");
        check("example.com.", "example.com");
        check("[::1]:8080", "[::1]");
        check("[::1]", "[::1]");
        check("", "");
    }

    #[test]
    fn upstream_uris() {
        let up = |base: &str| {
            let uri: Uri = base.parse().unwrap();
            Upstream {
                scheme: uri.scheme().unwrap().clone(),
                authority: uri.authority().unwrap().clone(),
                path_prefix: uri.path().trim_end_matches('/').into(),
            }
        };
        let check = |base: &str, remainder: &str, query: Option<&str>, expected: &str| {
            let got = upstream_uri(&up(base), remainder, query).unwrap();
            assert_eq!(got.to_string(), expected);
        };
        check("http://u:1", "", None, "http://u:1/");
        check("http://u:1/", "/", None, "http://u:1/");
        check("http://u:1/svc/", "", None, "http://u:1/svc");
        check(
            "http://u:1/svc",
            "/x/y",
            Some("a=1&b=%20"),
            "http://u:1/svc/x/y?a=1&b=%20",
        );
        check("http://u:1", "/x/", Some(""), "http://u:1/x/?");
    }
}
