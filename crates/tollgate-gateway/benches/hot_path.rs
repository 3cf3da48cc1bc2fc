//! Micro-benchmarks of the per-request hot path (routing and header rewriting), without
//! dependencies: `cargo bench -p tollgate-gateway`. Prints the best of several runs in
//! nanoseconds per operation; compare numbers only within one machine and one run.

use std::hint::black_box;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method};
use tollgate_core::model::ApiStatus;
use tollgate_core::path_template::PathTemplate;
use tollgate_core::{ApiId, OrgId};
use tollgate_gateway::headers::{self, TraceParent};
use tollgate_gateway::{OperationMatch, RouteApi, RouteOperation, Snapshot};

fn main() {
    let snapshot = catalog(200, 20);
    bench("route (200 APIs)", || {
        snapshot
            .route(
                "api.example.com",
                black_box("/api-117/v1/things/42/parts/7"),
            )
            .is_some()
    });
    let route = snapshot
        .route("api.example.com", "/api-117/v1/things/42/parts/7")
        .unwrap();
    bench("match operation (20 ops)", || {
        matches!(
            route.match_operation(black_box(&Method::GET)),
            OperationMatch::Matched(..)
        )
    });
    bench("route + match, miss", || {
        snapshot.route("h", black_box("/nope/x/y")).is_none()
    });

    let incoming = request_headers();
    bench("(baseline: clone the headers)", || incoming.clone().len());
    bench("strip hop-by-hop + credentials", || {
        let mut h = incoming.clone();
        headers::strip_hop_by_hop(&mut h);
        headers::strip_credentials(&mut h);
        h.len()
    });
    bench("new request id (UUIDv7)", headers::new_request_id);
    let tp = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    bench("traceparent parse + child", || {
        TraceParent::parse(black_box(tp.as_bytes())).map(|t| t.child_header())
    });
    let peer = "192.0.2.10".parse().unwrap();
    bench("forwarded element", || {
        headers::forwarded_element(black_box(peer), Some("api.example.com:8443"), true)
    });
}

fn bench<R>(name: &str, mut f: impl FnMut() -> R) {
    const ITERS: u32 = 200_000;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..ITERS {
            black_box(f());
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(ITERS));
    }
    println!("{name:<36} {best:>8.1} ns/op");
}

fn catalog(apis: usize, ops: usize) -> Snapshot {
    let templates = [
        "/things",
        "/things/{id}",
        "/things/{id}/parts",
        "/things/{id}/parts/{part}",
        "/things/mine",
    ];
    let methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE];
    let apis = (0..apis)
        .map(|i| RouteApi {
            api_id: ApiId::new(),
            org_id: OrgId::new(),
            base_path: format!("/api-{i}/v1"),
            hosts: if i % 2 == 0 {
                vec![]
            } else {
                vec!["api.example.com".into()]
            },
            upstreams: vec!["http://127.0.0.1:8080/svc".into()],
            sandbox_upstreams: vec![],
            status: ApiStatus::Published,
            sunset: None,
            deprecated_at: None,
            operations: (0..ops)
                .map(|j| RouteOperation {
                    operation_id: format!("op{j}"),
                    method: methods[j / templates.len() % methods.len()].clone(),
                    template: PathTemplate::parse(templates[j % templates.len()]).unwrap(),
                })
                .collect(),
        })
        .collect();
    Snapshot::build(1, apis).unwrap()
}

fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", "api.example.com"),
        ("user-agent", "bench/1.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("authorization", "Bearer abcdefghijklmnopqrstuvwxyz"),
        ("x-api-key", "tg_live_0123456789"),
        ("content-type", "application/json"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ] {
        h.insert(
            http::HeaderName::from_static(k),
            HeaderValue::from_static(v),
        );
    }
    h
}
