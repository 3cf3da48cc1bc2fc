//! Upstream resilience end to end: circuit breakers, active health checks, failover to an
//! API's other upstreams and retries of idempotent requests.

use std::sync::Mutex;

use tollgate_gateway::{BreakerConfig, HealthCheckConfig};

use super::*;

/// A small upstream that answers 200 with its name, and records what it was asked.
struct Named {
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

async fn start_named_on(listener: TcpListener, name: &'static str) -> Named {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (hits2, seen2) = (hits.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (hits, seen) = (hits2.clone(), seen2.clone());
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                hits.fetch_add(1, Ordering::SeqCst);
                let agent = req
                    .headers()
                    .get("user-agent")
                    .map_or("", |v| v.to_str().unwrap_or(""))
                    .to_owned();
                seen.lock()
                    .unwrap()
                    .push((req.uri().path().to_owned(), agent));
                async move {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("x-upstream", name)
                            .body(Full::new(Bytes::from(name)))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Named { hits, seen }
}

async fn start_named(name: &'static str) -> (Named, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (start_named_on(listener, name).await, addr)
}

/// An address where nothing listens: a port that was free a moment ago.
async fn dead_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

fn urls(addrs: &[SocketAddr]) -> Vec<String> {
    addrs.iter().map(|a| format!("http://{a}")).collect()
}

/// Breakers that stay open (an hour of cool-down) unless something closes them, no health
/// checks, no retries: each test turns on what it tests.
fn resilience_config(failure_threshold: u32) -> GatewayConfig {
    GatewayConfig {
        retries: 0,
        breaker: BreakerConfig {
            failure_threshold,
            cooldown: Duration::from_secs(3600),
            trip_on_5xx: false,
        },
        health: None,
        ..test_config()
    }
}

fn fast_health(unhealthy_threshold: u32) -> Option<HealthCheckConfig> {
    Some(HealthCheckConfig {
        interval: Duration::from_millis(50),
        path: "/healthz".into(),
        timeout: Duration::from_secs(2),
        unhealthy_threshold,
    })
}

/// Asks `url` until the answer is not `status`, at most `tries` times 25 ms apart; returns
/// the first other answer.
async fn poll_while(url: &str, status: u16, tries: usize) -> Answer {
    for _ in 0..tries {
        let answer = get(url).await;
        if answer.status != status {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} still answers {status} after {tries} tries");
}

fn assert_circuit_open(answer: &Answer, instance: &str) {
    answer.assert_problem(503, "upstream-circuit-open", instance);
    let retry_after: u64 = answer.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
}

#[tokio::test]
async fn breaker_opens_after_failures_and_health_checks_close_it() {
    within(async {
        let dead = dead_addr().await;
        let config = GatewayConfig {
            // Probes never open the breaker here: only requests count.
            health: fast_health(0),
            ..resilience_config(3)
        };
        let apis = vec![api("/flaky", &urls(&[dead]), &[("GET", "/x")])];
        let gw = start_gateway(apis, Arc::new(AllowAll), config).await;
        let url = gw.url("/flaky/x");
        for _ in 0..3 {
            get(&url)
                .await
                .assert_problem(502, "upstream-unavailable", "/flaky/x");
        }
        // Open: answered at once, without trying the upstream.
        assert_circuit_open(&get(&url).await, "/flaky/x");

        // The upstream comes back on its port; the next healthy probe closes the breaker.
        let back = start_named_on(TcpListener::bind(dead).await.unwrap(), "back").await;
        let answer = poll_while(&url, 503, 800).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.headers["x-upstream"], "back");
        let seen = back.seen.lock().unwrap().clone();
        assert!(
            seen.iter()
                .any(|(path, agent)| path == "/healthz" && agent == "tollgate-gateway-health-check"),
            "{seen:?}"
        );
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn failed_health_checks_alone_open_the_breaker() {
    within(async {
        let dead = dead_addr().await;
        let config = GatewayConfig {
            health: fast_health(2),
            // Requests never open it here: only probes count.
            ..resilience_config(0)
        };
        let apis = vec![api("/flaky", &urls(&[dead]), &[("GET", "/x")])];
        let gw = start_gateway(apis, Arc::new(AllowAll), config).await;
        let url = gw.url("/flaky/x");
        let answer = poll_while(&url, 502, 800).await;
        assert_circuit_open(&answer, "/flaky/x");
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn half_open_trial_closes_the_breaker_without_health_checks() {
    within(async {
        let dead = dead_addr().await;
        let config = GatewayConfig {
            breaker: BreakerConfig {
                failure_threshold: 1,
                cooldown: Duration::from_millis(100),
                trip_on_5xx: false,
            },
            ..resilience_config(1)
        };
        let apis = vec![api("/flaky", &urls(&[dead]), &[("GET", "/x")])];
        let gw = start_gateway(apis, Arc::new(AllowAll), config).await;
        let url = gw.url("/flaky/x");
        get(&url)
            .await
            .assert_problem(502, "upstream-unavailable", "/flaky/x");
        let back = start_named_on(TcpListener::bind(dead).await.unwrap(), "back").await;
        // Refused while open; after the cool-down one trial goes through and closes it.
        let answer = poll_while(&url, 503, 800).await;
        assert_eq!(answer.status, 200);
        assert_eq!(get(&url).await.status, 200);
        assert!(back.hits.load(Ordering::SeqCst) >= 2);
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn open_upstreams_are_skipped_until_all_are_open() {
    within(async {
        let (alive, alive_addr) = start_named("alive").await;
        let (dead, dead2, dead3) = (dead_addr().await, dead_addr().await, dead_addr().await);
        let apis = vec![
            api("/mixed", &urls(&[dead, alive_addr]), &[("GET", "/x")]),
            api("/down", &urls(&[dead2, dead3]), &[("GET", "/x")]),
        ];
        let gw = start_gateway(apis, Arc::new(AllowAll), resilience_config(1)).await;

        let url = gw.url("/mixed/x");
        // Round robin starts on the dead upstream: that failure opens its breaker.
        get(&url)
            .await
            .assert_problem(502, "upstream-unavailable", "/mixed/x");
        // From now on its turns go to the healthy one.
        for _ in 0..4 {
            let answer = get(&url).await;
            assert_eq!(answer.status, 200);
            assert_eq!(answer.headers["x-upstream"], "alive");
        }
        assert_eq!(alive.hits.load(Ordering::SeqCst), 4);

        let url = gw.url("/down/x");
        for _ in 0..2 {
            get(&url)
                .await
                .assert_problem(502, "upstream-unavailable", "/down/x");
        }
        assert_circuit_open(&get(&url).await, "/down/x");
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn idempotent_requests_without_body_are_retried_posts_are_not() {
    within(async {
        let (alive, alive_addr) = start_named("alive").await;
        let dead = dead_addr().await;
        let ops = [
            ("GET", "/x"),
            ("POST", "/x"),
            ("PUT", "/x"),
            ("DELETE", "/x"),
        ];
        let apis = vec![api("/rr", &urls(&[dead, alive_addr]), &ops)];
        let config = GatewayConfig {
            retries: 1,
            ..resilience_config(100)
        };
        let gw = start_gateway(apis, Arc::new(AllowAll), config).await;
        let url = gw.url("/rr/x");
        let request = |method: Method, body: &'static [u8]| {
            Request::builder()
                .method(method)
                .uri(&url)
                .body(Full::new(Bytes::from_static(body)))
                .unwrap()
        };
        // Round robin alternates dead, alive, dead, …: every even request is aimed at the
        // dead upstream first.
        let cases: [(Method, &[u8], Option<&str>); 6] = [
            (Method::GET, b"", Some("alive")),
            (Method::GET, b"", Some("alive")),
            (Method::POST, b"", None),
            (Method::POST, b"{}", Some("alive")),
            (Method::PUT, b"{}", None),
            (Method::GET, b"", Some("alive")),
        ];
        let mut answered = 0;
        for (i, (method, body, expected)) in cases.into_iter().enumerate() {
            let answer = send(request(method.clone(), body)).await;
            match expected {
                Some(upstream) => {
                    assert_eq!(answer.status, 200, "{i}: {method}");
                    assert_eq!(answer.headers["x-upstream"], upstream, "{i}: {method}");
                    answered += 1;
                }
                None => {
                    answer.assert_problem(502, "upstream-unavailable", "/rr/x");
                }
            }
        }
        let delete = send(request(Method::DELETE, b"")).await;
        assert_eq!(delete.status, 200, "DELETE without a body is retried");
        answered += 1;
        assert_eq!(alive.hits.load(Ordering::SeqCst), answered);
        gw.stop().await;

        // With retries off, the GET aimed at the dead upstream fails.
        let apis = vec![api("/rr", &urls(&[dead, alive_addr]), &ops)];
        let gw = start_gateway(apis, Arc::new(AllowAll), resilience_config(100)).await;
        get(&gw.url("/rr/x"))
            .await
            .assert_problem(502, "upstream-unavailable", "/rr/x");
        gw.stop().await;
    })
    .await;
}

#[tokio::test]
async fn health_checks_run_only_while_serving() {
    within(async {
        let (named, addr) = start_named("probed").await;
        let config = GatewayConfig {
            health: fast_health(3),
            ..resilience_config(5)
        };
        let apis = vec![api("/p", &urls(&[addr]), &[("GET", "/x")])];
        let gw = start_gateway(apis, Arc::new(AllowAll), config).await;
        let mut probed = false;
        for _ in 0..800 {
            if named.hits.load(Ordering::SeqCst) >= 2 {
                probed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(probed, "no health probes arrived");
        gw.stop().await;
        // Stopped with the server: once a probe sent just before the stop has landed, no
        // more arrive in several intervals.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after_stop = named.hits.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(named.hits.load(Ordering::SeqCst), after_stop);
    })
    .await;
}
