//! End-to-end tests of the gateway on 127.0.0.1: a real echo upstream, the gateway in
//! front of it, and an HTTP client, all in-process.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tollgate_core::ErrorCode;
use tollgate_core::model::ApiStatus;
use tollgate_core::path_template::PathTemplate;
use tollgate_core::problem::PROBLEM_BASE;
use tollgate_core::{ApiId, OrgId};
use tollgate_gateway::{
    AllowAll, Authenticator, DenyAll, GatewayConfig, RouteApi, RouteOperation, Snapshot,
    SnapshotHandle, serve,
};

mod tls;
mod upstream;

// ---- the echo upstream -----------------------------------------------------------------

/// A small upstream: answers every request with JSON describing what it received.
/// `…/hold` waits until the test releases it, to make "slow" deterministic.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    held: mpsc::UnboundedReceiver<()>,
    release: Arc<Semaphore>,
}

async fn start_upstream(name: &'static str) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Semaphore::new(0));
    let (held_tx, held) = mpsc::unbounded_channel();
    let (hits2, release2) = (hits.clone(), release.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (hits, release, held_tx) = (hits2.clone(), release2.clone(), held_tx.clone());
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (hits, release, held_tx) = (hits.clone(), release.clone(), held_tx.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    echo(name, req, &release, &held_tx).await
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream {
        addr,
        hits,
        held,
        release,
    }
}

async fn echo(
    name: &str,
    req: Request<Incoming>,
    release: &Semaphore,
    held: &mpsc::UnboundedSender<()>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    if parts.uri.path().ends_with("/hold") {
        let _ = held.send(());
        release.acquire().await.unwrap().forget();
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &parts.headers {
        headers
            .entry(k.to_string())
            .or_default()
            .push(v.to_str().unwrap().to_owned());
    }
    // Reading the whole body first makes an aborted upload fail the request.
    let body_len = match body.collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(_) => {
            return Ok(Response::builder()
                .status(400)
                .body(Full::default())
                .unwrap());
        }
    };
    let json = json!({
        "upstream": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_len": body_len,
    });
    let response = Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", name)
        .header("keep-alive", "timeout=5")
        .body(Full::new(Bytes::from(json.to_string())))
        .unwrap();
    Ok(response)
}

// ---- the gateway -------------------------------------------------------------------------

struct TestGateway {
    addr: SocketAddr,
    handle: SnapshotHandle,
    shutdown: Option<oneshot::Sender<()>>,
    served: JoinHandle<std::io::Result<()>>,
}

impl TestGateway {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.served.await.unwrap().unwrap();
    }
}

async fn start_gateway(
    apis: Vec<RouteApi>,
    auth: Arc<dyn Authenticator>,
    config: GatewayConfig,
) -> TestGateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = SnapshotHandle::new(Snapshot::build(1, apis).unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(listener, handle.clone(), auth, config, async move {
        let _ = rx.await;
    }));
    TestGateway {
        addr,
        handle,
        shutdown: Some(tx),
        served,
    }
}

fn test_config() -> GatewayConfig {
    GatewayConfig {
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        max_body_bytes: 1024,
        max_header_bytes: 8 * 1024,
        drain_timeout: Duration::from_secs(10),
        // Health probes would count as upstream hits; the tests of them turn them on.
        health: None,
        ..GatewayConfig::default()
    }
}

fn api(base: &str, upstreams: &[String], ops: &[(&str, &str)]) -> RouteApi {
    RouteApi {
        api_id: ApiId::new(),
        org_id: OrgId::new(),
        base_path: base.into(),
        hosts: vec![],
        upstreams: upstreams.to_vec(),
        sandbox_upstreams: vec![],
        status: ApiStatus::Published,
        sunset: None,
        deprecated_at: None,
        operations: ops
            .iter()
            .enumerate()
            .map(|(i, (m, t))| RouteOperation {
                operation_id: format!("op{i}"),
                method: m.parse().unwrap(),
                template: PathTemplate::parse(t).unwrap(),
            })
            .collect(),
    }
}

/// The API most tests use: `/echo/v1` in front of `upstream` under the `/up` prefix.
fn echo_api(upstream: &Upstream) -> RouteApi {
    api(
        "/echo/v1",
        &[format!("http://{}/up/", upstream.addr)],
        &[
            ("GET", "/items"),
            ("POST", "/items"),
            ("GET", "/items/{id}"),
            ("POST", "/upload"),
            ("GET", "/hold"),
        ],
    )
}

// ---- the client --------------------------------------------------------------------------

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// Checks a problem answer: status, `type`, content type, `instance`, `request_id`.
    fn assert_problem(&self, status: u16, slug: &str, instance: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.headers["content-type"], "application/problem+json");
        let json = self.json();
        assert_eq!(json["type"], format!("{PROBLEM_BASE}{slug}"));
        assert_eq!(json["status"], status);
        assert_eq!(json["instance"], instance);
        assert!(!json["title"].as_str().unwrap().is_empty());
        assert!(!json["detail"].as_str().unwrap().is_empty());
        assert_eq!(
            json["request_id"],
            self.headers["x-request-id"].to_str().unwrap()
        );
        json
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn send(req: Request<Full<Bytes>>) -> Answer {
    send_with(&client(), req).await
}

async fn send_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Answer {
    let response = client.request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

async fn get(url: &str) -> Answer {
    send(Request::get(url).body(Full::default()).unwrap()).await
}

/// Runs `f` under a generous deadline so a hung test fails instead of blocking CI.
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out")
}

// ---- tests -------------------------------------------------------------------------------

#[tokio::test]
async fn forwards_with_rewritten_headers() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let req = Request::get(gw.url("/echo/v1/items/42?x=1&y=two%20words"))
            .header("host", "api.example.com:8443")
            .header("authorization", "Bearer secret")
            .header("x-api-key", "tg_secret")
            .header("connection", "x-hop")
            .header("x-hop", "1")
            .header("proxy-authorization", "Basic x")
            .header("forwarded", "for=192.0.2.60;proto=https")
            .header("x-request-id", "req-abc.123")
            .header("traceparent", trace)
            .header("tracestate", "congo=t61rcWkgMzE")
            .header("x-custom", "kept")
            .body(Full::default())
            .unwrap();
        let answer = send(req).await;
        assert_eq!(answer.status, 200);
        let echo = answer.json();
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["path"], "/up/items/42");
        assert_eq!(echo["query"], "x=1&y=two%20words");
        let h = &echo["headers"];
        for stripped in [
            "authorization",
            "x-api-key",
            "x-hop",
            "connection",
            "proxy-authorization",
        ] {
            assert!(
                h.get(stripped).is_none(),
                "{stripped} reached the upstream: {h}"
            );
        }
        assert_eq!(h["x-custom"], json!(["kept"]));
        assert_eq!(h["host"], json!([upstream.addr.to_string()]));
        assert_eq!(
            h["forwarded"],
            json!([
                "for=192.0.2.60;proto=https",
                "for=127.0.0.1;proto=http;host=\"api.example.com:8443\""
            ])
        );
        assert_eq!(h["x-request-id"], json!(["req-abc.123"]));
        let sent_trace = h["traceparent"][0].as_str().unwrap();
        assert!(
            sent_trace.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{sent_trace}"
        );
        assert_ne!(sent_trace, trace, "the gateway sends its own parent id");
        assert!(sent_trace.ends_with("-01"));
        assert_eq!(h["tracestate"], json!(["congo=t61rcWkgMzE"]));
        // Response: request id echoed, upstream headers kept, hop-by-hop ones dropped.
        assert_eq!(answer.headers["x-request-id"], "req-abc.123");
        assert_eq!(answer.headers["x-upstream"], "a");
        assert!(!answer.headers.contains_key("keep-alive"));
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn generates_request_id_and_trace_when_missing_or_invalid() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let req = Request::get(gw.url("/echo/v1/items"))
            .header("x-request-id", "not a sane id")
            .header(
                "traceparent",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )
            .header("tracestate", "congo=t61rcWkgMzE")
            .body(Full::default())
            .unwrap();
        let answer = send(req).await;
        assert_eq!(answer.status, 200);
        let echo = answer.json();
        let h = &echo["headers"];
        let rid = h["x-request-id"][0].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(rid).unwrap().get_version_num(), 7);
        assert_eq!(answer.headers["x-request-id"], rid);
        let trace = h["traceparent"][0].as_str().unwrap();
        assert_eq!(trace.len(), 55);
        assert!(trace.starts_with("00-") && !trace.contains("00000000000000000000000000000000"));
        assert!(h.get("tracestate").is_none());
        assert_eq!(echo["path"], "/up/items");
        assert_eq!(echo["query"], Value::Null);
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn routing_errors_are_problems() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;

        get(&gw.url("/nothing/here"))
            .await
            .assert_problem(404, "route-not-found", "/nothing/here");
        get(&gw.url("/echo/v10/items")).await.assert_problem(
            404,
            "route-not-found",
            "/echo/v10/items",
        );
        get(&gw.url("/echo/v1/unknown"))
            .await
            .assert_problem(404, "not-found", "/echo/v1/unknown");
        get(&gw.url("/echo/v1/items/1/../../x"))
            .await
            .assert_problem(400, "bad-request", "/echo/v1/items/1/../../x");

        let put = Request::put(gw.url("/echo/v1/items/7"))
            .body(Full::default())
            .unwrap();
        let answer = send(put).await;
        answer.assert_problem(405, "method-not-allowed", "/echo/v1/items/7");
        assert_eq!(answer.headers["allow"], "GET, HEAD");

        let delete = Request::delete(gw.url("/echo/v1/items"))
            .body(Full::default())
            .unwrap();
        let answer = send(delete).await;
        answer.assert_problem(405, "method-not-allowed", "/echo/v1/items");
        assert_eq!(answer.headers["allow"], "GET, HEAD, POST");

        // HEAD is served by the GET operation.
        let head = Request::head(gw.url("/echo/v1/items/7"))
            .body(Full::default())
            .unwrap();
        let answer = send(head).await;
        assert_eq!(answer.status, 200);
        assert!(answer.body.is_empty());

        assert_eq!(
            upstream.hits.load(Ordering::SeqCst),
            1,
            "only the HEAD reached the upstream"
        );
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn deny_all_answers_401_before_revealing_operations() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(DenyAll), test_config()).await;
        for path in ["/echo/v1/items", "/echo/v1/no-such-operation"] {
            let answer = get(&gw.url(path)).await;
            answer.assert_problem(401, ErrorCode::CredentialRequired.slug(), path);
            assert_eq!(
                answer.headers["www-authenticate"],
                "Bearer realm=\"tollgate\""
            );
        }
        // Unknown routes are still 404: there is no API to authenticate for.
        get(&gw.url("/other"))
            .await
            .assert_problem(404, "route-not-found", "/other");
        // The health check needs no credential.
        let health = get(&gw.url("/_tollgate/health")).await;
        assert_eq!(health.status, 200);
        assert_eq!(
            health.json(),
            json!({"status": "ok", "snapshot_version": 1})
        );
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn dead_upstream_is_502() {
    within(async {
        // A port that was just free: nothing listens there.
        let dead = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let apis = vec![api("/dead", &[format!("http://{dead}")], &[("GET", "/x")])];
        let gw = start_gateway(apis, Arc::new(AllowAll), test_config()).await;
        get(&gw.url("/dead/x"))
            .await
            .assert_problem(502, "upstream-unavailable", "/dead/x");
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn slow_upstream_is_504() {
    within(async {
        let mut upstream = start_upstream("a").await;
        let config = GatewayConfig {
            request_timeout: Duration::from_millis(200),
            ..test_config()
        };
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), config).await;
        get(&gw.url("/echo/v1/hold")).await.assert_problem(
            504,
            "upstream-timeout",
            "/echo/v1/hold",
        );
        // The request did reach the upstream, which is still holding it.
        upstream.held.recv().await.unwrap();
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn declared_body_over_the_limit_is_413_without_contacting_the_upstream() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let big = Request::post(gw.url("/echo/v1/upload"))
            .body(Full::new(Bytes::from(vec![b'x'; 2048])))
            .unwrap();
        send(big)
            .await
            .assert_problem(413, "payload-too-large", "/echo/v1/upload");
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);

        let fits = Request::post(gw.url("/echo/v1/upload"))
            .body(Full::new(Bytes::from(vec![b'x'; 1024])))
            .unwrap();
        let answer = send(fits).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["body_len"], 1024);
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn streamed_body_over_the_limit_is_413() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        let mut request =
            b"POST /echo/v1/upload HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_vec();
        for _ in 0..4 {
            request.extend_from_slice(b"200\r\n");
            request.extend_from_slice(&[b'x'; 0x200]);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        stream.write_all(&request).await.unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before a response");
            response.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&response);
        assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
        assert!(head.contains("application/problem+json"), "{head}");
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn snapshot_swap_is_seen_by_the_next_request() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        assert_eq!(get(&gw.url("/echo/v1/items")).await.status, 200);
        get(&gw.url("/new/items"))
            .await
            .assert_problem(404, "route-not-found", "/new/items");

        let mut moved = echo_api(&upstream);
        moved.base_path = "/new".into();
        gw.handle.store(Snapshot::build(2, vec![moved]).unwrap());

        let answer = get(&gw.url("/new/items")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["path"], "/up/items");
        get(&gw.url("/echo/v1/items")).await.assert_problem(
            404,
            "route-not-found",
            "/echo/v1/items",
        );
        let health = get(&gw.url("/_tollgate/health")).await;
        assert_eq!(health.json()["snapshot_version"], 2);
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn round_robin_over_upstreams() {
    within(async {
        let (a, b) = (start_upstream("a").await, start_upstream("b").await);
        let apis = vec![api(
            "/rr",
            &[format!("http://{}", a.addr), format!("http://{}", b.addr)],
            &[("GET", "/")],
        )];
        let gw = start_gateway(apis, Arc::new(AllowAll), test_config()).await;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let answer = get(&gw.url("/rr")).await;
            assert_eq!(answer.json()["path"], "/");
            seen.push(answer.headers["x-upstream"].to_str().unwrap().to_owned());
        }
        assert_eq!(seen, ["a", "b", "a", "b"]);
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn deprecated_api_announces_its_sunset() {
    within(async {
        let upstream = start_upstream("a").await;
        let mut deprecated = echo_api(&upstream);
        deprecated.status = ApiStatus::Deprecated;
        deprecated.sunset = Some(datetime!(2027-01-31 23:59:59 UTC));
        deprecated.deprecated_at = Some(datetime!(2026-06-01 00:00:00 UTC));
        let gw = start_gateway(vec![deprecated], Arc::new(AllowAll), test_config()).await;
        for path in ["/echo/v1/items", "/echo/v1/unknown"] {
            let answer = get(&gw.url(path)).await;
            assert_eq!(
                answer.headers["sunset"], "Sun, 31 Jan 2027 23:59:59 GMT",
                "{path}"
            );
            assert_eq!(answer.headers["deprecation"], "@1780272000", "{path}");
        }
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn speaks_h2c_with_prior_knowledge() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let h2: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(HttpConnector::new());
        let req = Request::post(gw.url("/echo/v1/items?page=2"))
            .header("authorization", "Bearer secret")
            .body(Full::new(Bytes::from_static(b"{\"name\":\"x\"}")))
            .unwrap();
        let answer = send_with(&h2, req).await;
        assert_eq!(answer.status, 200);
        let echo = answer.json();
        assert_eq!(echo["path"], "/up/items");
        assert_eq!(echo["query"], "page=2");
        assert_eq!(echo["body_len"], 12);
        assert!(echo["headers"].get("authorization").is_none());
        let forwarded = echo["headers"]["forwarded"][0].as_str().unwrap();
        assert!(
            forwarded.ends_with(&format!(";host=\"{}\"", gw.addr)),
            "{forwarded}"
        );
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn oversized_headers_are_431() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let req = Request::get(gw.url("/echo/v1/items"))
            .header("cookie", "x".repeat(9 * 1024))
            .body(Full::default())
            .unwrap();
        send(req)
            .await
            .assert_problem(431, "headers-too-large", "/echo/v1/items");
        assert_eq!(upstream.hits.load(Ordering::SeqCst), 0);
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_ones() {
    within(async {
        let mut upstream = start_upstream("a").await;
        let mut gw =
            start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let in_flight = tokio::spawn(get_owned(gw.url("/echo/v1/hold")));
        // The request has reached the upstream, which holds it until released.
        upstream.held.recv().await.unwrap();

        let _ = gw.shutdown.take().unwrap().send(());
        // The listener closes once the server sees the signal; poll until it has.
        let mut refused = false;
        for _ in 0..500 {
            if TcpStream::connect(gw.addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "new connections are still accepted after shutdown");
        assert!(
            !gw.served.is_finished(),
            "the server returned with a request in flight"
        );

        upstream.release.add_permits(1);
        let answer = in_flight.await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["path"], "/up/hold");
        gw.served.await.unwrap().unwrap();
    })
    .await;
}

async fn get_owned(url: String) -> Answer {
    get(&url).await
}

#[tokio::test]
async fn drain_timeout_closes_stuck_requests() {
    within(async {
        let mut upstream = start_upstream("a").await;
        let config = GatewayConfig {
            drain_timeout: Duration::from_millis(100),
            ..test_config()
        };
        let mut gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), config).await;
        let url = gw.url("/echo/v1/hold");
        let in_flight = tokio::spawn(async move {
            client()
                .request(Request::get(url).body(Full::default()).unwrap())
                .await
        });
        upstream.held.recv().await.unwrap();
        let _ = gw.shutdown.take().unwrap().send(());
        // The upstream is never released: the server gives up after the drain timeout.
        gw.served.await.unwrap().unwrap();
        assert!(
            in_flight.await.unwrap().is_err(),
            "the stuck request's connection was closed"
        );
    })
    .await;
}

#[tokio::test]
async fn methods_are_matched_exactly() {
    within(async {
        let upstream = start_upstream("a").await;
        let gw = start_gateway(vec![echo_api(&upstream)], Arc::new(AllowAll), test_config()).await;
        let post = Request::builder()
            .method(Method::POST)
            .uri(gw.url("/echo/v1/items"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let answer = send(post).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["method"], "POST");
        assert_eq!(answer.json()["body_len"], 2);
        gw.stop().await;
    })
    .await;
}
