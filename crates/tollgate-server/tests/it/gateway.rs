//! The gateway in front of a real upstream on 127.0.0.1, configured through the admin
//! API: every API-key failure with its status and problem type, live revocation,
//! suspension and plan changes, Cedar decisions with an injected clock, exact quotas under
//! concurrency, GCRA burst and refill, and the RateLimit fields.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tollgate_gateway::{EventSink, GatewayConfig, GatewayEvent, Services};

use crate::harness::{App, OPERATOR_TOKEN, Tenant, id, tenant};

const PROBLEMS: &str = "https://tollgate.dev/problems/";

/// The upstream: answers every request with what it received.
pub(crate) async fn start_upstream() -> SocketAddr {
    let router = axum::Router::new().fallback(|req: axum::extract::Request| async move {
        axum::Json(
            json!({"path": req.uri().path(), "method": req.method().as_str(),
            "authorization": req.headers().get("authorization").is_some(),
            "x_api_key": req.headers().get("x-api-key").is_some(),
            "assertion": req.headers().get("tollgate-assertion").and_then(|v| v.to_str().ok()).map(str::to_owned)}),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn now(app: &App) -> time::OffsetDateTime {
    tollgate_core::clock::Clock::now(&*app.clock)
}

/// Moves the clock to the next 01:00 UTC, so a test's hours stay in one UTC day.
fn to_early_morning(app: &App) {
    let t = now(app);
    let target = (t + time::Duration::days(1)).replace_time(time::macros::time!(1:00));
    app.clock.advance(target - t);
}

pub(crate) struct Gw {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    events: mpsc::Receiver<GatewayEvent>,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    async fn of(resp: http::Response<hyper::body::Incoming>) -> Answer {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    fn problem(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix(PROBLEMS))
            .unwrap_or("")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }
}

async fn start_gateway(app: &App) -> Gw {
    let (events, rx) = EventSink::channel(1024);
    serve_gateway(app, events, rx).await
}

/// The gateway with the authorization server and assertions, sending its events to `events`.
async fn serve_gateway(app: &App, events: EventSink, rx: mpsc::Receiver<GatewayEvent>) -> Gw {
    let services = Services {
        auth: Arc::new(app.state.credential_authenticator()),
        clock: app.clock.clone(),
        limiter: app.state.limiter.clone(),
        events,
        decisions: Arc::new(tollgate_policy::DecisionCache::new(1024)),
        public: Some(Arc::new(tollgate_server::oauth::Endpoints::new(
            app.state.clone(),
        ))),
        assertions: Some(Arc::new(tollgate_server::oauth::Assertions::new(
            app.state.clone(),
        ))),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = GatewayConfig {
        health: None,
        ..GatewayConfig::default()
    };
    let handle = app.state.snapshot.clone();
    tokio::spawn(async move {
        tollgate_gateway::serve(listener, handle, services, config, std::future::pending()).await
    });
    Gw {
        addr,
        client: Client::builder(TokioExecutor::new()).build_http(),
        events: rx,
    }
}

impl Gw {
    async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(method, path, headers, "").await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self
            .client
            .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
            .await
            .unwrap();
        Answer::of(resp).await
    }

    pub(crate) async fn get(&self, path: &str, key: &str) -> Answer {
        self.call(
            Method::GET,
            path,
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await
    }
}

/// Provider `p` publishes `echo` (listPets, getPet, createPet) in front of the upstream,
/// with a plan whose published sheet grants reads (scope `pets:read`) and writes
/// (`pets:write`) with the given limits; consumer `c` subscribes. Returns (plan id, api
/// id, subscription id).
async fn marketplace(
    app: &App,
    p: &Tenant,
    c: &Tenant,
    upstream: SocketAddr,
    limits: Value,
    windows: Option<Value>,
) -> (String, String, String) {
    marketplace_with(app, p, c, upstream, limits, windows, json!({})).await
}

/// The sheet `marketplace` publishes: reads (`pets:read`) and writes (`pets:write`) of
/// `echo` with the given limits.
pub(crate) fn echo_sheet(limits: Value) -> Value {
    json!({
        "id": "echo-terms", "version": "1.0.0", "title": "Echo terms", "effective": "2026-01-01",
        "jurisdiction": "NL", "governing_law": "the laws of the Netherlands", "language": "en",
        "sections": [{"id": "use", "title": "Use", "body": "Be kind."}],
        "grants": [
            {"api": "echo", "operations": ["listPets", "getPet"], "scopes": ["pets:read"], "group": "read"},
            {"api": "echo", "operations": ["createPet"], "scopes": ["pets:write"], "group": "write"}
        ],
        "limits": limits,
        "notice": {"days": 30, "on_expiry": "suspend"}
    })
}

/// [`marketplace`] with more clauses in the sheet (`extra` is merged in: `pricing`, `sla`).
pub(crate) async fn marketplace_with(
    app: &App,
    p: &Tenant,
    c: &Tenant,
    upstream: SocketAddr,
    limits: Value,
    windows: Option<Value>,
    extra: Value,
) -> (String, String, String) {
    let openapi = json!({
        "openapi": "3.1.0",
        "info": {"title": "Echo", "version": "1"},
        "paths": {
            "/pets": {
                "get": {"operationId": "listPets", "responses": {
                    "200": {"description": "ok", "content": {"application/json": {"example": [{"id": 1, "name": "Rex"}]}}},
                    "404": {"description": "none", "content": {"application/json": {"example": {"message": "no pets"}}}}
                }},
                "post": {"operationId": "createPet", "responses": {"201": {"description": "ok"}}}
            },
            "/pets/{id}": {"get": {"operationId": "getPet", "parameters": [{"name": "id", "in": "path", "required": true}], "responses": {"200": {"description": "ok"}}}}
        }
    });
    let api = id(&app
        .create(
            "/v1/apis",
            &p.developer,
            json!({"org_id": p.org, "slug": "echo", "name": "Echo",
        "base_path": "/echo/v1", "upstreams": [format!("http://{upstream}")], "openapi": openapi}),
        )
        .await);
    app.ok_patch(
        &format!("/v1/apis/{api}"),
        &p.developer,
        json!({"status": "published"}),
    )
    .await;
    let mut sheet = echo_sheet(limits);
    if let Some(w) = windows {
        sheet["windows"] = w;
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        sheet[k] = v.clone();
    }
    let terms = app
        .create(
            "/v1/terms",
            &p.owner,
            json!({"org_id": p.org, "document": sheet}),
        )
        .await;
    let r = app
        .call(
            Method::POST,
            &format!("/v1/terms/{}/publish", id(&terms)),
            Some(&p.owner),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let plan = id(&app.create("/v1/plans", &p.owner, json!({"org_id": p.org, "slug": "echo", "name": "Echo", "visibility": "public", "apis": [{"api_id": api}]})).await);
    app.ok_patch(
        &format!("/v1/plans/{plan}"),
        &p.owner,
        json!({"terms_id": id(&terms), "status": "published"}),
    )
    .await;
    let sub = id(&app
        .create(
            "/v1/subscriptions",
            &c.developer,
            json!({"app_id": c.app, "plan_id": plan, "accept_terms": terms["sha256"]}),
        )
        .await);
    (plan, api, sub)
}

pub(crate) async fn key(app: &App, c: &Tenant, body: Value) -> (String, String) {
    let k = app
        .create(&format!("/v1/apps/{}/keys", c.app), &c.developer, body)
        .await;
    (id(&k), k["secret"].as_str().unwrap().to_owned())
}

/// Revokes the app's keys whose name is `name` (every key when `None`), so a test can
/// make new ones within the two-usable-keys limit.
async fn revoke_keys(app: &App, c: &Tenant, name: Option<&str>) {
    let keys = app
        .get(&format!("/v1/apps/{}/keys", c.app), &c.developer)
        .await
        .body;
    for k in keys.as_array().unwrap() {
        if name.is_some_and(|n| k["name"] != n) || !k["revoked_at"].is_null() {
            continue;
        }
        let r = app
            .post(
                &format!("/v1/apps/{}/keys/{}/revoke", c.app, id(k)),
                &c.developer,
                json!({}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
}

/// What an upstream of the `echo` API does: fetch the published assertion keys and
/// verify with its own audience.
async fn upstream_verifier(
    app: &App,
    gw: &Gw,
    p: &Tenant,
) -> tollgate_oauth::GatewayAssertionVerifier {
    let jwks = gw
        .call(
            Method::GET,
            "/.well-known/tollgate-assertion-jwks.json",
            &[],
        )
        .await;
    let keys =
        tollgate_oauth::KeySet::new(&tollgate_oauth::Jwks::parse(&jwks.body).unwrap()).unwrap();
    let api_id = app.get("/v1/apis?limit=200", &p.developer).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == "echo")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    tollgate_oauth::GatewayAssertionVerifier::new(
        keys,
        app.state.public_url(),
        tollgate_server::oauth::assertion_audience(api_id),
    )
}

pub(crate) async fn two_tenants(app: &App) -> (Tenant, Tenant) {
    (tenant(app, "prov").await, tenant(app, "cons").await)
}

#[tokio::test]
async fn api_key_failures_each_have_their_status_and_type() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let limits = json!({"time_zone": "UTC"});
    marketplace(&app, &p, &c, upstream, limits, None).await;
    let gw = start_gateway(&app).await;
    // The harness tenant already has two usable live keys: revoke them to make room.
    revoke_keys(&app, &c, None).await;
    let (good_id, good) = key(&app, &c, json!({"name": "good", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read", "pets:write"]})).await;

    // Happy path: forwarded, credential stripped, metered.
    let ok = gw.get("/echo/v1/pets", &good).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["path"], "/pets");
    assert_eq!(
        ok.body["authorization"], false,
        "the key must not reach the upstream"
    );
    // The upstream can verify the call came through the marketplace: the assertion
    // verifies under the published assertion keys and names the caller.
    let assertion = ok.body["assertion"]
        .as_str()
        .expect("gateway assertion")
        .to_owned();
    let verifier = upstream_verifier(&app, &gw, &p).await;
    let stated = verifier
        .verify(&assertion, now(&app))
        .expect("assertion verifies");
    assert_eq!(stated.app.to_string(), c.app);
    assert_eq!(stated.scope, "pets:read pets:write");
    // A consumer cannot forge one: its own field is replaced.
    let forged = gw
        .call(
            Method::GET,
            "/echo/v1/pets",
            &[("x-api-key", &good), ("tollgate-assertion", "forged")],
        )
        .await;
    assert_ne!(forged.body["assertion"], "forged");
    let usage_id = ok.header("tollgate-usage-id").to_owned();
    assert!(uuid::Uuid::parse_str(&usage_id).is_ok(), "{usage_id}");
    let via_header = gw
        .call(Method::GET, "/echo/v1/pets/7", &[("x-api-key", &good)])
        .await;
    assert_eq!(via_header.status, StatusCode::OK);
    assert_eq!(via_header.body["x_api_key"], false);

    // 401s: missing, malformed, bad checksum, unknown.
    let missing = gw.call(Method::GET, "/echo/v1/pets", &[]).await;
    assert_eq!(
        (missing.status, missing.problem()),
        (StatusCode::UNAUTHORIZED, "credential-required")
    );
    assert!(missing.header("www-authenticate").starts_with("Bearer"));
    let malformed = gw.get("/echo/v1/pets", "not-a-key").await;
    assert_eq!(
        (malformed.status, malformed.problem()),
        (StatusCode::UNAUTHORIZED, "credential-malformed")
    );
    let basic = gw
        .call(
            Method::GET,
            "/echo/v1/pets",
            &[("authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;
    assert_eq!(basic.problem(), "credential-malformed");
    let mut typo = good.clone().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let checksum = gw.get("/echo/v1/pets", &typo).await;
    assert_eq!(
        (checksum.status, checksum.problem()),
        (StatusCode::UNAUTHORIZED, "credential-checksum")
    );
    let stranger = tollgate_core::apikey::format(tollgate_core::apikey::KeyMode::Live, [7; 16]);
    let unknown = gw.get("/echo/v1/pets", &stranger).await;
    assert_eq!(
        (unknown.status, unknown.problem()),
        (StatusCode::UNAUTHORIZED, "credential-unknown")
    );
    // A stranger learns nothing about the API's shape: an unknown path is also a 401.
    let probe = gw.get("/echo/v1/nothing-here", &stranger).await;
    assert_eq!(probe.status, StatusCode::UNAUTHORIZED);

    // Out of scope: a key limited to listPets, and a key without the write scope.
    let (_, narrow) = key(&app, &c, json!({"name": "narrow", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read"], "operations": ["echo/listPets"]})).await;
    assert_eq!(
        gw.get("/echo/v1/pets", &narrow).await.status,
        StatusCode::OK
    );
    let other_op = gw.get("/echo/v1/pets/1", &narrow).await;
    assert_eq!(
        (other_op.status, other_op.problem()),
        (StatusCode::FORBIDDEN, "scope-denied")
    );
    let write = gw
        .call(Method::POST, "/echo/v1/pets", &[("x-api-key", &narrow)])
        .await;
    assert_eq!(
        (write.status, write.problem()),
        (StatusCode::FORBIDDEN, "scope-denied")
    );
    assert!(
        !write.body.to_string().contains("echo-terms@"),
        "no policy internals: {}",
        write.body
    );
    revoke_keys(&app, &c, Some("narrow")).await;

    // Wrong IP: the key allows only a documentation network.
    let (_, fenced) = key(&app, &c, json!({"name": "fenced", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read"], "ip_allowlist": ["203.0.113.0/24"]})).await;
    let ip = gw.get("/echo/v1/pets", &fenced).await;
    assert_eq!(
        (ip.status, ip.problem()),
        (StatusCode::FORBIDDEN, "ip-denied")
    );

    // Revoked: refused from the very next request.
    let r = app
        .post(
            &format!("/v1/apps/{}/keys/{good_id}/revoke", c.app),
            &c.developer,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let revoked = gw.get("/echo/v1/pets", &good).await;
    assert_eq!(
        (revoked.status, revoked.problem()),
        (StatusCode::UNAUTHORIZED, "credential-revoked")
    );

    // Expired: the clock moves past the key's lifetime.
    revoke_keys(&app, &c, Some("fenced")).await;
    let (_, short) = key(
        &app,
        &c,
        json!({"name": "short", "mode": "live", "expires_in_days": 1, "scopes": ["pets:read"]}),
    )
    .await;
    assert_eq!(gw.get("/echo/v1/pets", &short).await.status, StatusCode::OK);
    app.clock.advance(time::Duration::days(2));
    let expired = gw.get("/echo/v1/pets", &short).await;
    assert_eq!(
        (expired.status, expired.problem()),
        (StatusCode::UNAUTHORIZED, "credential-expired")
    );

    // A test key never reaches the live subscription.
    let (_, test_key) = key(
        &app,
        &c,
        json!({"name": "sandbox", "mode": "test", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;
    let test = gw.get("/echo/v1/pets", &test_key).await;
    assert_eq!(
        (test.status, test.problem()),
        (StatusCode::FORBIDDEN, "subscription-required")
    );
    drop(gw);
    db.cleanup().await;
}

#[tokio::test]
async fn suspension_plan_changes_and_windows_are_seen_by_the_next_request() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    // Calls only on weekdays, 09:00–17:00 in Paris.
    let windows = json!({"time_zone": "Europe/Paris", "allowed": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}]});
    let (plan, api, sub) = marketplace(&app, &p, &c, upstream, json!({}), Some(windows)).await;
    let mut gw = start_gateway(&app).await;
    let (_, k) = key(
        &app,
        &c,
        json!({"name": "k", "mode": "live", "expires_in_days": 300, "scopes": ["pets:read"]}),
    )
    .await;

    // Move the clock to the next Monday 10:00 Paris (08:00 or 09:00 UTC).
    let now = now(&app);
    let days = (7 - now.weekday().number_days_from_monday()) % 7;
    let days = if days == 0 { 7 } else { days };
    let monday =
        (now + time::Duration::days(i64::from(days))).replace_time(time::macros::time!(9:00));
    app.clock.advance(monday - now);
    let ok = gw.get("/echo/v1/pets", &k).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    // Saturday noon: denied by the window, with the reason class but no policy ids.
    app.clock
        .advance(time::Duration::days(5) + time::Duration::hours(3));
    let weekend = gw.get("/echo/v1/pets", &k).await;
    assert_eq!(
        (weekend.status, weekend.problem()),
        (StatusCode::FORBIDDEN, "access-denied")
    );
    assert!(
        weekend.body["detail"].as_str().unwrap().contains("time"),
        "{}",
        weekend.body
    );
    assert!(!weekend.body.to_string().contains("/window"));
    // The denial reached the event channel with its policy ids.
    let denied = loop {
        match gw.events.recv().await.unwrap() {
            GatewayEvent::Denied(d) => break d,
            GatewayEvent::Usage(..) => continue,
        }
    };
    assert!(
        denied.reasons.iter().any(|r| r.ends_with("/window")),
        "{:?}",
        denied.reasons
    );
    assert_eq!(denied.code, "access-denied");
    // ... and, through the consumer, would land in the audit trail (tested below).
    app.clock.advance(time::Duration::days(2));
    assert_eq!(gw.get("/echo/v1/pets", &k).await.status, StatusCode::OK);

    // Suspension: the next request is refused; reinstating lets it through again.
    let r = app
        .post(
            &format!("/v1/subscriptions/{sub}/transitions"),
            &p.owner,
            json!({"to": "suspended", "reason": "unpaid"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let suspended = gw.get("/echo/v1/pets", &k).await;
    assert_eq!(
        (suspended.status, suspended.problem()),
        (StatusCode::FORBIDDEN, "subscription-inactive")
    );
    let r = app
        .post(
            &format!("/v1/subscriptions/{sub}/transitions"),
            &p.owner,
            json!({"to": "active", "reason": "paid"}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(gw.get("/echo/v1/pets", &k).await.status, StatusCode::OK);

    // Plan change: getPet leaves the plan; the next call of it has no subscription.
    let plan_now = app.get(&format!("/v1/plans/{plan}"), &p.owner).await;
    let etag = plan_now
        .headers
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/plans/{plan}"),
            Some(&p.owner),
            Some(json!({"apis": [{"api_id": api, "operations": ["listPets", "createPet"]}]})),
            &[("if-match", &etag)],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let gone = gw.get("/echo/v1/pets/1", &k).await;
    assert_eq!(
        (gone.status, gone.problem()),
        (StatusCode::FORBIDDEN, "subscription-required")
    );
    assert_eq!(gw.get("/echo/v1/pets", &k).await.status, StatusCode::OK);
    db.cleanup().await;
}

#[tokio::test]
async fn quotas_are_exact_under_concurrency_and_rate_limits_burst_and_refill() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let limits = json!({
        "time_zone": "UTC",
        "rate": [{"group": "read", "requests": 1, "per": "hour", "burst": 5}],
        "quota": [{"group": "read", "requests": 100, "per": "day"}, {"group": "write", "requests": 20, "per": "day"}]
    });
    marketplace(&app, &p, &c, upstream, limits, None).await;
    to_early_morning(&app);
    let gw = Arc::new(start_gateway(&app).await);
    let (_, k) = key(&app, &c, json!({"name": "k", "mode": "live", "expires_in_days": 300, "scopes": ["pets:read", "pets:write"]})).await;

    // GCRA: a burst of 5, then 429 rate-limited with Retry-After; refused calls count
    // against no quota.
    for i in 0..5 {
        let a = gw.get("/echo/v1/pets", &k).await;
        assert_eq!(a.status, StatusCode::OK, "call {i}: {}", a.body);
        let window = 86_400
            - now(&app).time().as_hms().0 as u64 * 3600
            - now(&app).time().as_hms().1 as u64 * 60
            - now(&app).time().as_hms().2 as u64;
        assert_eq!(
            a.header("ratelimit-policy"),
            "\"read-hour\";q=5;w=18000, \"read-day\";q=100;w=86400"
        );
        let expected = format!("\"read-hour\";r={};t=", 4 - i);
        assert!(
            a.header("ratelimit").starts_with(&expected),
            "{}",
            a.header("ratelimit")
        );
        assert!(
            a.header("ratelimit")
                .contains(&format!("\"read-day\";r={};t={window}", 99 - i)),
            "{} (t={window})",
            a.header("ratelimit")
        );
    }
    for _ in 0..3 {
        let limited = gw.get("/echo/v1/pets", &k).await;
        assert_eq!(
            (limited.status, limited.problem()),
            (StatusCode::TOO_MANY_REQUESTS, "rate-limited")
        );
        let retry: u64 = limited.header("retry-after").parse().unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
    }
    // One hour later exactly one more call passes; the quota shows only admitted calls.
    app.clock.advance(time::Duration::hours(1));
    let refill = gw.get("/echo/v1/pets", &k).await;
    assert_eq!(refill.status, StatusCode::OK);
    assert!(
        refill.header("ratelimit").contains("\"read-day\";r=94;"),
        "{}",
        refill.header("ratelimit")
    );
    assert_eq!(
        gw.get("/echo/v1/pets", &k).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Exact quota: 16 clients race 60 calls against a quota of 20.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let gw = gw.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..4 {
                let a = gw
                    .call(Method::POST, "/echo/v1/pets", &[("x-api-key", &k)])
                    .await;
                out.push((
                    a.status,
                    a.problem().to_owned(),
                    a.header("retry-after").to_owned(),
                ));
            }
            out
        }));
    }
    let mut ok = 0;
    let mut exhausted = 0;
    for t in tasks {
        for (status, problem, retry) in t.await.unwrap() {
            if status.is_success() {
                ok += 1;
            } else {
                assert_eq!(
                    (status, problem.as_str()),
                    (StatusCode::TOO_MANY_REQUESTS, "quota-exceeded")
                );
                assert!(retry.parse::<u64>().unwrap() >= 1);
                exhausted += 1;
            }
        }
    }
    assert_eq!((ok, exhausted), (20, 44));
    // A call the terms deny still reports where the subscription's limits stand.
    revoke_keys(&app, &c, Some("ci")).await;
    let (_, reader) = key(
        &app,
        &c,
        json!({"name": "reader", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;
    let denied = gw
        .call(Method::POST, "/echo/v1/pets", &[("x-api-key", &reader)])
        .await;
    assert_eq!(denied.problem(), "scope-denied");
    assert!(
        denied.header("ratelimit").contains("\"write-day\";r=0;"),
        "{}",
        denied.header("ratelimit")
    );
    // The next day the quota is back.
    app.clock.advance(time::Duration::days(1));
    let next_day = gw
        .call(Method::POST, "/echo/v1/pets", &[("x-api-key", &k)])
        .await;
    assert_eq!(next_day.status, StatusCode::OK);
    assert!(
        next_day.header("ratelimit").contains("\"write-day\";r=19;"),
        "{}",
        next_day.header("ratelimit")
    );

    // Quota counts survive a restart: saved, then merged into an empty limiter.
    let saved = tollgate_server::metering::save_quotas(&app.state)
        .await
        .unwrap();
    assert!(saved >= 2, "{saved}");
    let usage = app.state.limiter.snapshot_quotas();
    let fresh = tollgate_limits::LocalLimiter::new();
    assert!(fresh.snapshot_quotas().is_empty());
    let mut tx = app.state.store.read().await.unwrap();
    let json = tx.get_meta("gateway_quota_state").await.unwrap().unwrap();
    drop(tx);
    fresh
        .restore_quotas(&serde_json::from_str::<Vec<tollgate_limits::QuotaUsage>>(&json).unwrap())
        .unwrap();
    assert_eq!(fresh.snapshot_quotas(), usage);
    let _ = OPERATOR_TOKEN;
    db.cleanup().await;
}

#[tokio::test]
async fn denials_reach_the_audit_trail_through_the_event_channel() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let mut gw = start_gateway(&app).await;
    let (_, k) = key(
        &app,
        &c,
        json!({"name": "k", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;
    // No write scope: Cedar's scope forbid denies.
    let a = gw
        .call(Method::POST, "/echo/v1/pets", &[("x-api-key", &k)])
        .await;
    assert_eq!(a.problem(), "scope-denied");
    let (tx, rx) = mpsc::channel(8);
    let event = gw.events.recv().await.unwrap();
    let GatewayEvent::Denied(record) = event else {
        panic!("{event:?}")
    };
    assert!(
        record.reasons.iter().any(|r| r.ends_with("/scope")),
        "{:?}",
        record.reasons
    );
    tx.send(GatewayEvent::Denied(record.clone())).await.unwrap();
    drop(tx);
    let counts = Arc::new(tollgate_server::metering::EventCounts::default());
    tollgate_server::metering::consume(app.state.clone(), rx, counts.clone()).await;
    assert_eq!(counts.denials.load(std::sync::atomic::Ordering::Relaxed), 1);
    let audit = app
        .get(
            &format!("/v1/audit?target_id={}&limit=500", c.app),
            OPERATOR_TOKEN,
        )
        .await;
    let entry = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "gateway.call_denied")
        .unwrap_or_else(|| panic!("{}", audit.body));
    assert_eq!(entry["target_id"], c.app);
    assert_eq!(
        entry["after_sha256"],
        tollgate_core::hash::canonical_sha256(&record).unwrap()
    );
    db.cleanup().await;
}

#[tokio::test]
async fn a_plan_caps_the_lifetime_of_its_subscribers_keys() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    // The consumer app subscribes to the provider's public plan.
    let sub = app
        .create(
            "/v1/subscriptions",
            &c.developer,
            json!({"app_id": c.app, "plan_id": p.public_plan}),
        )
        .await;
    assert_eq!(sub["mode"], "live");
    let plan = app
        .get(&format!("/v1/plans/{}", p.public_plan), &p.owner)
        .await;
    let etag = plan
        .headers
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let bad = app
        .call(
            Method::PATCH,
            &format!("/v1/plans/{}", p.public_plan),
            Some(&p.owner),
            Some(json!({"max_key_lifetime_days": 0})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.body["errors"][0]["pointer"], "/max_key_lifetime_days");
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/plans/{}", p.public_plan),
            Some(&p.owner),
            Some(json!({"max_key_lifetime_days": 7})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.body["max_key_lifetime_days"], 7, "{}", r.body);
    revoke_keys(&app, &c, None).await;
    let long = app
        .post(
            &format!("/v1/apps/{}/keys", c.app),
            &c.developer,
            json!({"name": "long", "mode": "live", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(
        long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        long.body
    );
    assert_eq!(long.body["errors"][0]["pointer"], "/expires_in_days");
    assert!(
        long.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("7 days")
    );
    // Test keys are bound by test subscriptions only.
    let test = app
        .post(
            &format!("/v1/apps/{}/keys", c.app),
            &c.developer,
            json!({"name": "t", "mode": "test", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(test.status, StatusCode::CREATED, "{}", test.body);
    let ok = app
        .post(
            &format!("/v1/apps/{}/keys", c.app),
            &c.developer,
            json!({"name": "short", "mode": "live", "expires_in_days": 7}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    // Rotation without a lifetime keeps the new key within the cap.
    let rotated = app
        .post(
            &format!("/v1/apps/{}/keys/{}/rotate", c.app, id(&ok.body)),
            &c.developer,
            json!({}),
        )
        .await;
    assert!(rotated.status.is_success(), "{}", rotated.body);
    let created: time::OffsetDateTime = time::OffsetDateTime::parse(
        rotated.body["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires: time::OffsetDateTime = time::OffsetDateTime::parse(
        rotated.body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires - created <= time::Duration::days(7));
    db.cleanup().await;
}

#[tokio::test]
async fn a_rate_limit_per_credential_gives_each_key_its_own_bucket() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let limits = json!({"rate": [
        {"group": "read", "requests": 1, "per": "hour", "burst": 2, "per_credential": true},
        {"group": "write", "requests": 1, "per": "hour", "burst": 2}
    ]});
    marketplace(&app, &p, &c, upstream, limits, None).await;
    let gw = start_gateway(&app).await;
    revoke_keys(&app, &c, None).await;
    let scopes = json!(["pets:read", "pets:write"]);
    let (_, a) = key(
        &app,
        &c,
        json!({"name": "a", "mode": "live", "expires_in_days": 30, "scopes": scopes}),
    )
    .await;
    let (_, b) = key(
        &app,
        &c,
        json!({"name": "b", "mode": "live", "expires_in_days": 30, "scopes": scopes}),
    )
    .await;
    // Reads: two per key.
    for k in [&a, &a, &b, &b] {
        assert_eq!(gw.get("/echo/v1/pets", k).await.status, StatusCode::OK);
    }
    assert_eq!(gw.get("/echo/v1/pets", &a).await.problem(), "rate-limited");
    assert_eq!(gw.get("/echo/v1/pets", &b).await.problem(), "rate-limited");
    // Writes: two for the whole subscription, whichever key sends them.
    for (k, expected) in [
        (&a, "ok"),
        (&b, "ok"),
        (&a, "rate-limited"),
        (&b, "rate-limited"),
    ] {
        let answer = gw
            .call(Method::POST, "/echo/v1/pets", &[("x-api-key", k)])
            .await;
        let got = if answer.status == StatusCode::OK {
            "ok"
        } else {
            answer.problem()
        };
        assert_eq!(got, expected);
    }
    db.cleanup().await;
}

#[tokio::test]
async fn test_keys_reach_the_sandbox_or_the_example_mock_never_live() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let (plan, api, _) = marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let gw = start_gateway(&app).await;
    let terms = app.get(&format!("/v1/plans/{plan}"), &p.owner).await.body["terms_id"].clone();
    let sha = app
        .get(&format!("/v1/terms/{}", terms.as_str().unwrap()), &p.owner)
        .await
        .body["sha256"]
        .clone();
    let sub = app
        .create(
            "/v1/subscriptions",
            &c.developer,
            json!({"app_id": c.app, "plan_id": plan, "mode": "test", "accept_terms": sha}),
        )
        .await;
    assert_eq!(sub["mode"], "test");
    let (_, test_key) = key(
        &app,
        &c,
        json!({"name": "sandbox", "mode": "test", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;

    // No sandbox upstream: the answer comes from the OpenAPI document's example.
    let mock = gw.get("/echo/v1/pets", &test_key).await;
    assert_eq!(mock.status, StatusCode::OK, "{}", mock.body);
    assert_eq!(mock.header("tollgate-mock"), "openapi-example");
    assert_eq!(mock.body, json!([{"id": 1, "name": "Rex"}]));
    assert!(
        !mock.header("tollgate-usage-id").is_empty(),
        "test calls are metered (as test)"
    );
    let missing = gw
        .call(
            Method::GET,
            "/echo/v1/pets",
            &[("x-api-key", &test_key), ("prefer", "code=404")],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let xml = gw
        .call(
            Method::GET,
            "/echo/v1/pets",
            &[("x-api-key", &test_key), ("accept", "application/xml")],
        )
        .await;
    assert_eq!(xml.problem(), "not-acceptable");
    // A test OAuth client's tokens are test credentials too.
    {
        use base64::Engine as _;
        let client = app
            .create(
                &format!("/v1/apps/{}/oauth-clients", c.app),
                &c.developer,
                json!({"name": "sandbox", "mode": "test", "auth_method": "client_secret_basic", "scopes": ["pets:read"]}),
            )
            .await;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                id(&client),
                client["client_secret"].as_str().unwrap()
            ))
        );
        let issued = gw
            .send(
                Method::POST,
                "/oauth/token",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("authorization", &basic),
                ],
                "grant_type=client_credentials",
            )
            .await;
        let token = issued.body["access_token"].as_str().unwrap().to_owned();
        let mocked = gw.get("/echo/v1/pets", &token).await;
        assert_eq!(
            mocked.header("tollgate-mock"),
            "openapi-example",
            "{}",
            mocked.body
        );
    }

    // With a sandbox upstream, test calls go there; live calls still go live.
    let api_now = app.get(&format!("/v1/apis/{api}"), &p.developer).await;
    let etag = api_now
        .headers
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let sandbox = start_upstream().await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/apis/{api}"),
            Some(&p.developer),
            Some(json!({"sandbox_upstreams": [format!("http://{sandbox}/sandbox")]})),
            &[("if-match", &etag)],
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let sandboxed = gw.get("/echo/v1/pets", &test_key).await;
    assert_eq!(
        sandboxed.body["path"], "/sandbox/pets",
        "{}",
        sandboxed.body
    );
    // A live key of the same app still reaches the live upstream, never the sandbox.
    revoke_keys(&app, &c, Some("ci")).await;
    let (_, live_key) = key(
        &app,
        &c,
        json!({"name": "live", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;
    let live = gw.get("/echo/v1/pets", &live_key).await;
    assert_eq!(live.body["path"], "/pets", "{}", live.body);
    db.cleanup().await;
}

#[tokio::test]
async fn oauth_client_credentials_tokens_work_at_the_gateway_and_every_failure_is_typed() {
    use base64::Engine as _;
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let gw = start_gateway(&app).await;
    let client = app
        .create(
            &format!("/v1/apps/{}/oauth-clients", c.app),
            &c.developer,
            json!({"name": "backend", "auth_method": "client_secret_basic", "scopes": ["pets:read"], "token_lifetime_seconds": 120}),
        )
        .await;
    let client_id = id(&client);
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
    );
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let token_of = |answer: &Answer| answer.body["access_token"].as_str().unwrap().to_owned();

    // Discovery documents on the gateway listener.
    let meta = gw
        .call(Method::GET, "/.well-known/oauth-authorization-server", &[])
        .await;
    assert_eq!(meta.status, StatusCode::OK);
    assert!(
        meta.body["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth/token")
    );
    let jwks = gw.call(Method::GET, "/.well-known/jwks.json", &[]).await;
    assert!(
        !jwks.body["keys"].as_array().unwrap().is_empty(),
        "{}",
        jwks.body
    );
    let assertion_jwks = gw
        .call(
            Method::GET,
            "/.well-known/tollgate-assertion-jwks.json",
            &[],
        )
        .await;
    assert_ne!(
        assertion_jwks.body["keys"], jwks.body["keys"],
        "separate key sets"
    );

    // Wrong secret, wrong grant: RFC 6749 errors.
    let bad = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:nope"))
    );
    let refused = gw
        .send(
            Method::POST,
            "/oauth/token",
            &[form[0], ("authorization", &bad)],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let grant = gw
        .send(
            Method::POST,
            "/oauth/token",
            &[form[0], ("authorization", &basic)],
            "grant_type=password",
        )
        .await;
    assert_eq!(grant.body["error"], "unsupported_grant_type");
    let scope = gw
        .send(
            Method::POST,
            "/oauth/token",
            &[form[0], ("authorization", &basic)],
            "grant_type=client_credentials&scope=pets%3Awrite",
        )
        .await;
    assert_eq!(scope.body["error"], "invalid_scope");

    // A token, and a call with it.
    let issued = gw
        .send(
            Method::POST,
            "/oauth/token",
            &[form[0], ("authorization", &basic)],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    assert_eq!(issued.body["token_type"], "Bearer");
    assert_eq!(issued.body["expires_in"], 120);
    let token = token_of(&issued);
    let ok = gw.get("/echo/v1/pets", &token).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(
        ok.body["authorization"], false,
        "the token must not reach the upstream"
    );
    // The token carries only pets:read: writes are out of scope.
    let write = gw
        .call(
            Method::POST,
            "/echo/v1/pets",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(write.problem(), "scope-denied");

    // Tampered, wrong audience, wrong type: each its own type.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&parts[1])
        .unwrap();
    let mut claims: Value = serde_json::from_slice(&payload).unwrap();
    claims["scope"] = json!("pets:read pets:write");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap());
    let tampered = gw.get("/echo/v1/pets", &parts.join(".")).await;
    assert_eq!(
        (tampered.status, tampered.problem()),
        (StatusCode::UNAUTHORIZED, "token-bad-signature")
    );
    let none = format!(
        "{}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"at+jwt"}"#),
        parts[1]
    );
    assert_eq!(
        gw.get("/echo/v1/pets", &none).await.problem(),
        "token-bad-signature"
    );
    let other_aud = {
        let ring = app.state.keyring.read().await;
        let signer =
            tollgate_oauth::KeyringSigner::new(&ring, tollgate_keyring::KeyPurpose::TokenSigning)
                .unwrap();
        let claims = tollgate_oauth::AccessClaims::new(
            client_id.parse().unwrap(),
            c.app.parse().unwrap(),
            c.org.parse().unwrap(),
            tollgate_core::apikey::KeyMode::Live,
            "pets:read",
            now(&app),
            time::Duration::minutes(2),
        )
        .unwrap();
        let url = app.state.public_url();
        (
            claims
                .issue(&signer, &url, "https://elsewhere.example")
                .unwrap(),
            claims.issue(&signer, "https://evil.example", &url).unwrap(),
        )
    };
    assert_eq!(
        gw.get("/echo/v1/pets", &other_aud.0).await.problem(),
        "token-wrong-audience"
    );
    assert_eq!(
        gw.get("/echo/v1/pets", &other_aud.1).await.problem(),
        "token-wrong-issuer"
    );

    // Introspection and revocation (RFC 7662, 7009); the next request sees it.
    let body = format!("token={token}");
    let active = gw
        .send(
            Method::POST,
            "/oauth/introspect",
            &[form[0], ("authorization", &basic)],
            &body,
        )
        .await;
    assert_eq!(active.body["active"], true, "{}", active.body);
    assert_eq!(active.body["client_id"], client_id.as_str());
    let revoked = gw
        .send(
            Method::POST,
            "/oauth/revoke",
            &[form[0], ("authorization", &basic)],
            &body,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let gone = gw.get("/echo/v1/pets", &token).await;
    assert_eq!(
        (gone.status, gone.problem()),
        (StatusCode::UNAUTHORIZED, "token-revoked")
    );
    let inactive = gw
        .send(
            Method::POST,
            "/oauth/introspect",
            &[form[0], ("authorization", &basic)],
            &body,
        )
        .await;
    assert_eq!(inactive.body["active"], false);
    let unknown = gw
        .send(
            Method::POST,
            "/oauth/revoke",
            &[form[0], ("authorization", &basic)],
            "token=not-a-token",
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::OK,
        "RFC 7009: unknown tokens are fine"
    );

    // Expiry, then client revocation.
    let fresh = token_of(
        &gw.send(
            Method::POST,
            "/oauth/token",
            &[form[0], ("authorization", &basic)],
            "grant_type=client_credentials",
        )
        .await,
    );
    app.clock.advance(time::Duration::minutes(3));
    assert_eq!(
        gw.get("/echo/v1/pets", &fresh).await.problem(),
        "token-expired"
    );
    let fresh = token_of(
        &gw.send(
            Method::POST,
            "/oauth/token",
            &[form[0], ("authorization", &basic)],
            "grant_type=client_credentials",
        )
        .await,
    );
    assert_eq!(gw.get("/echo/v1/pets", &fresh).await.status, StatusCode::OK);
    let r = app
        .post(
            &format!("/v1/apps/{}/oauth-clients/{client_id}/revoke", c.app),
            &c.developer,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(
        gw.get("/echo/v1/pets", &fresh).await.problem(),
        "token-revoked"
    );
    let after = gw
        .send(
            Method::POST,
            "/oauth/token",
            &[form[0], ("authorization", &basic)],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(after.body["error"], "invalid_client");
    db.cleanup().await;
}

/// The RFC 9421 Appendix B.1.4 Ed25519 test key: (public PEM, private PEM).
fn rfc9421_ed25519() -> (String, String) {
    let vectors: Value = serde_json::from_str(include_str!(
        "../../../tollgate-httpsig/tests/vectors/rfc9421_vectors.json"
    ))
    .unwrap();
    let pem = vectors["keys"]["test-key-ed25519"]["pem"].as_str().unwrap();
    let at = pem.find("-----BEGIN PRIVATE KEY-----").unwrap();
    (pem[..at].trim().to_owned() + "\n", pem[at..].to_owned())
}

/// Signs a request to the gateway with the RFC 9421 Ed25519 test key: `@method
/// @authority @path @query` (+ `content-digest` with a body), `created`, `nonce`, `keyid`.
fn signed(
    gw: &Gw,
    method: Method,
    path: &str,
    body: &str,
    keyid: &str,
    created: i64,
    nonce: &str,
) -> Vec<(String, String)> {
    let (_, private) = rfc9421_ed25519();
    let key = tollgate_httpsig::SigningKey::from_private_key_pem(
        tollgate_httpsig::Algorithm::Ed25519,
        private.as_bytes(),
    )
    .unwrap();
    signed_with(&key, gw, method, path, body, keyid, created, nonce)
}

/// [`signed`] with any key.
#[allow(clippy::too_many_arguments)]
fn signed_with(
    key: &tollgate_httpsig::SigningKey,
    gw: &Gw,
    method: Method,
    path: &str,
    body: &str,
    keyid: &str,
    created: i64,
    nonce: &str,
) -> Vec<(String, String)> {
    use tollgate_httpsig::{ComponentId, Message, SignatureInput};
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", gw.addr))
        .body(body.as_bytes().to_vec())
        .unwrap();
    let mut names = vec!["@method", "@authority", "@path", "@query"];
    let mut headers = Vec::new();
    if !body.is_empty() {
        let digest = tollgate_httpsig::content_digest(
            body.as_bytes(),
            tollgate_httpsig::DigestAlgorithm::Sha256,
        );
        req.headers_mut()
            .insert("content-digest", digest.parse().unwrap());
        headers.push(("content-digest".to_owned(), digest));
        names.push("content-digest");
    }
    let components = names.iter().map(|c| ComponentId::new(c).unwrap()).collect();
    let input = SignatureInput::new("sig1", components)
        .and_then(|i| i.with_created(created))
        .and_then(|i| i.with_nonce(nonce))
        .and_then(|i| i.with_keyid(keyid))
        .unwrap();
    let msg = Message::from_request(&req).with_scheme("http");
    let s = tollgate_httpsig::sign(&msg, &input, key).unwrap();
    headers.push(("signature-input".to_owned(), s.signature_input));
    headers.push(("signature".to_owned(), s.signature));
    headers
}

#[tokio::test]
async fn signed_requests_rfc9421_are_verified_and_every_failure_is_typed() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let gw = start_gateway(&app).await;
    let (public, _) = rfc9421_ed25519();
    let bad = app
        .post(
            &format!("/v1/apps/{}/signing-keys", c.app),
            &c.developer,
            json!({"name": "k", "alg": "ed25519", "public_key_pem": "nope", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let key = app
        .create(&format!("/v1/apps/{}/signing-keys", c.app), &c.developer, json!({"name": "signer", "alg": "ed25519", "public_key_pem": public, "scopes": ["pets:read", "pets:write"], "expires_in_days": 30}))
        .await;
    let keyid = id(&key);
    let at = now(&app).unix_timestamp();
    let send = |headers: &Vec<(String, String)>,
                method: Method,
                path: &'static str,
                body: &'static str| {
        let headers: Vec<(String, String)> = headers.clone();
        let gw = &gw;
        async move {
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            gw.send(method, path, &refs, body).await
        }
    };

    // Happy path; the signature does not reach the upstream.
    let h = signed(
        &gw,
        Method::GET,
        "/echo/v1/pets?limit=2",
        "",
        &keyid,
        at,
        "n-1",
    );
    let ok = send(&h, Method::GET, "/echo/v1/pets?limit=2", "").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    // Replayed nonce.
    let replay = send(&h, Method::GET, "/echo/v1/pets?limit=2", "").await;
    assert_eq!(
        (replay.status, replay.problem()),
        (StatusCode::UNAUTHORIZED, "signature-replayed")
    );
    // A covered component changed (the query).
    let h = signed(
        &gw,
        Method::GET,
        "/echo/v1/pets?limit=2",
        "",
        &keyid,
        at,
        "n-2",
    );
    let moved = send(&h, Method::GET, "/echo/v1/pets?limit=3", "").await;
    assert_eq!(moved.problem(), "signature-invalid");
    // Stale `created`, unknown keyid, broken signature.
    let h = signed(
        &gw,
        Method::GET,
        "/echo/v1/pets",
        "",
        &keyid,
        at - 3600,
        "n-3",
    );
    assert_eq!(
        send(&h, Method::GET, "/echo/v1/pets", "").await.problem(),
        "signature-stale"
    );
    let h = signed(
        &gw,
        Method::GET,
        "/echo/v1/pets",
        "",
        "no-such-key",
        at,
        "n-4",
    );
    assert_eq!(
        send(&h, Method::GET, "/echo/v1/pets", "").await.problem(),
        "signature-unknown-key"
    );
    let mut h = signed(&gw, Method::GET, "/echo/v1/pets", "", &keyid, at, "n-5");
    let sig = h.iter_mut().find(|(k, _)| k == "signature").unwrap();
    sig.1 = sig.1.replacen(":", ":AAAA", 1);
    assert_eq!(
        send(&h, Method::GET, "/echo/v1/pets", "").await.problem(),
        "signature-invalid"
    );
    // A body: its digest is signed; a tampered body with the valid signature is refused.
    let h = signed(
        &gw,
        Method::POST,
        "/echo/v1/pets",
        "{\"name\":\"Rex\"}",
        &keyid,
        at,
        "n-6",
    );
    let posted = send(&h, Method::POST, "/echo/v1/pets", "{\"name\":\"Rex\"}").await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    let h = signed(
        &gw,
        Method::POST,
        "/echo/v1/pets",
        "{\"name\":\"Rex\"}",
        &keyid,
        at,
        "n-7",
    );
    let tampered = send(&h, Method::POST, "/echo/v1/pets", "{\"name\":\"Max\"}").await;
    assert_eq!(
        (tampered.status, tampered.problem()),
        (StatusCode::UNAUTHORIZED, "signature-invalid"),
        "{}",
        tampered.body
    );
    // A revoked key is refused on the next request.
    let r = app
        .post(
            &format!("/v1/apps/{}/signing-keys/{keyid}/revoke", c.app),
            &c.developer,
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let h = signed(&gw, Method::GET, "/echo/v1/pets", "", &keyid, at, "n-8");
    assert_eq!(
        send(&h, Method::GET, "/echo/v1/pets", "").await.problem(),
        "signature-unknown-key"
    );
    db.cleanup().await;
}

/// `hmac-sha256` signing keys: the marketplace generates the secret, shows it once and
/// stores it only sealed; requests signed with it pass, others are refused as for any key.
#[tokio::test]
async fn hmac_signing_keys_have_a_generated_secret_shown_once_and_sealed_at_rest() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use tollgate_httpsig::SigningKey;
    for (store, db) in tollgate_store::testing::each_backend().await {
        eprintln!("backend: {:?}", store.backend());
        let app = App::new(store.clone()).await;
        let (p, c) = two_tenants(&app).await;
        let upstream = start_upstream().await;
        marketplace(&app, &p, &c, upstream, json!({}), None).await;
        let gw = start_gateway(&app).await;
        let keys = format!("/v1/apps/{}/signing-keys", c.app);

        // The secret is the marketplace's: a client cannot bring one, and a public-key
        // algorithm still needs its public key.
        let (public, _) = rfc9421_ed25519();
        for body in [
            json!({"name": "k", "alg": "hmac-sha256", "public_key_pem": public, "expires_in_days": 30}),
            json!({"name": "k", "alg": "ed25519", "expires_in_days": 30}),
        ] {
            let r = app.post(&keys, &c.developer, body).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
            let pointer = &r.body["errors"][0]["pointer"];
            assert_eq!(pointer, "/public_key_pem", "{}", r.body);
        }

        // Created: the secret is answered once, 32 random bytes in standard base64.
        let r = app
            .post(&keys, &c.developer, json!({"name": "hmac", "alg": "hmac-sha256", "scopes": ["pets:read"], "expires_in_days": 30}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let created = r.body;
        let keyid = id(&created);
        let shown = created["secret"].as_str().unwrap().to_owned();
        let secret = STANDARD.decode(&shown).unwrap();
        assert_eq!(secret.len(), 32);
        assert_eq!(created["alg"], "hmac-sha256");
        assert!(created.get("public_key_pem").is_none(), "{created}");
        assert!(created.get("secret_sealed").is_none(), "{created}");
        // Never again: not in the list.
        let list = app.get(&keys, &c.developer).await;
        assert_eq!(list.status, StatusCode::OK);
        let listed = list.body.as_array().unwrap();
        let entry = listed.iter().find(|k| k["id"] == keyid.as_str()).unwrap();
        assert!(entry.get("secret").is_none(), "{entry}");
        assert!(entry.get("secret_sealed").is_none(), "{entry}");
        assert!(entry.get("public_key_pem").is_none(), "{entry}");
        assert!(!list.body.to_string().contains(&shown));

        // Signed with the secret: through the gateway to the real upstream.
        let at = now(&app).unix_timestamp();
        const PATH: &str = "/echo/v1/pets?limit=2";
        let send = |key: &SigningKey, nonce: &str| {
            let headers = signed_with(key, &gw, Method::GET, PATH, "", &keyid, at, nonce);
            let gw = &gw;
            async move {
                let refs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                gw.send(Method::GET, PATH, &refs, "").await
            }
        };
        let key = SigningKey::hmac_sha256(&secret).unwrap();
        let ok = send(&key, "h-1").await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        assert_eq!(ok.body["path"], "/pets", "{}", ok.body);
        // Signed with another secret: refused as a broken signature.
        let wrong = SigningKey::hmac_sha256(&[7u8; 32]).unwrap();
        let bad = send(&wrong, "h-2").await;
        assert_eq!(
            (bad.status, bad.problem()),
            (StatusCode::UNAUTHORIZED, "signature-invalid"),
            "{}",
            bad.body
        );

        // At rest the secret is sealed, bound to its row.
        let sealed = {
            let mut tx = app.state.store.read().await.unwrap();
            let rows = tx.active_signing_keys_with_secrets().await.unwrap();
            rows.into_iter()
                .find(|(k, _)| k.id.to_string() == keyid)
                .and_then(|(_, sealed)| sealed)
                .expect("an hmac key has a sealed secret")
        };
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_slice()));
        let aad = format!("tollgate/signing_keys/secret/{keyid}");
        {
            let ring = app.state.keyring.read().await;
            assert_eq!(*ring.decrypt(&sealed, aad.as_bytes()).unwrap(), secret);
            let other = tollgate_core::SigningKeyId::new();
            let other = format!("tollgate/signing_keys/secret/{other}");
            assert!(ring.decrypt(&sealed, other.as_bytes()).is_err());
        }
        // SQLite: neither the raw nor the shown secret is anywhere in the database files.
        if let tollgate_store::testing::TestDb::Sqlite(dir) = &db {
            for entry in std::fs::read_dir(dir).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
                assert!(!bytes.windows(shown.len()).any(|w| w == shown.as_bytes()));
            }
        }

        // Revoked: refused from the next request on.
        let r = app
            .post(&format!("{keys}/{keyid}/revoke"), &c.developer, json!({}))
            .await;
        assert!(r.status.is_success(), "{}", r.body);
        assert!(r.body.get("secret").is_none(), "{}", r.body);
        let gone = send(&key, "h-3").await;
        assert_eq!(gone.problem(), "signature-unknown-key");
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_valid_until_expiry_and_upstreams_follow() {
    use base64::Engine as _;
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let gw = start_gateway(&app).await;
    let client = app
        .create(
            &format!("/v1/apps/{}/oauth-clients", c.app),
            &c.developer,
            json!({"name": "b", "auth_method": "client_secret_basic", "scopes": ["pets:read"]}),
        )
        .await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            id(&client),
            client["client_secret"].as_str().unwrap()
        ))
    );
    let form = ("content-type", "application/x-www-form-urlencoded");
    let token = |gw: &Gw| {
        let basic = basic.clone();
        let gw_addr = gw.addr;
        let client = gw.client.clone();
        async move {
            let gw = Gw {
                addr: gw_addr,
                client,
                events: mpsc::channel(1).1,
            };
            gw.send(
                Method::POST,
                "/oauth/token",
                &[form, ("authorization", &basic)],
                "grant_type=client_credentials",
            )
            .await
            .body["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let kid = |t: &str| {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let old = token(&gw).await;
    let first_assertion = gw.get("/echo/v1/pets", &old).await.body["assertion"]
        .as_str()
        .unwrap()
        .to_owned();

    for purpose in ["token_signing", "gateway_assertion"] {
        let r = app
            .post(
                &format!("/v1/keys/{purpose}/rotate"),
                OPERATOR_TOKEN,
                json!({}),
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    // Tokens of the old key keep working; new tokens use the new key; both are published.
    assert_eq!(gw.get("/echo/v1/pets", &old).await.status, StatusCode::OK);
    let new = token(&gw).await;
    assert_ne!(kid(&old), kid(&new));
    assert_eq!(gw.get("/echo/v1/pets", &new).await.status, StatusCode::OK);
    let jwks = gw
        .call(Method::GET, "/.well-known/jwks.json", &[])
        .await
        .body;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&kid(&old).as_str()) && kids.contains(&kid(&new).as_str()),
        "{kids:?}"
    );

    // An upstream that refetches the assertion JWKS verifies assertions of both keys.
    let second = gw.get("/echo/v1/pets", &new).await.body["assertion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        kid(&first_assertion),
        kid(&second),
        "assertions are signed with the new key"
    );
    let verifier = upstream_verifier(&app, &gw, &p).await;
    assert!(verifier.verify(&first_assertion, now(&app)).is_ok());
    assert!(verifier.verify(&second, now(&app)).is_ok());
    db.cleanup().await;
}

/// A self-signed certificate: (PEM certificate, PEM key, DER certificate).
fn certificate(name: &str) -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().clone(),
    )
}

/// The gateway with the authorization server, over TLS with `files`, on an ephemeral port.
async fn start_tls_gateway(app: &App, files: tollgate_gateway::TlsFiles) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let services = Services {
        auth: Arc::new(app.state.credential_authenticator()),
        clock: app.clock.clone(),
        limiter: app.state.limiter.clone(),
        events: EventSink::discard(),
        decisions: Arc::new(tollgate_policy::DecisionCache::new(64)),
        public: Some(Arc::new(tollgate_server::oauth::Endpoints::new(
            app.state.clone(),
        ))),
        assertions: None,
    };
    let config = GatewayConfig {
        health: None,
        tls: Some(files),
        ..GatewayConfig::default()
    };
    let handle = app.state.snapshot.clone();
    tokio::spawn(async move {
        tollgate_gateway::serve(listener, handle, services, config, std::future::pending()).await
    });
    addr
}

/// One HTTP/1.1 exchange over TLS to `addr`, trusting `server`, presenting `client`.
async fn over_tls(
    addr: SocketAddr,
    server: &rustls::pki_types::CertificateDer<'static>,
    client: Option<&(String, String, rustls::pki_types::CertificateDer<'static>)>,
    req: Request<Full<Bytes>>,
) -> Answer {
    use rustls::pki_types::{PrivateKeyDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((_, key, der)) => builder
            .with_client_auth_cert(
                vec![der.clone()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    Answer::of(sender.send_request(req).await.unwrap()).await
}

#[tokio::test]
async fn mutual_tls_clients_get_certificate_bound_tokens() {
    use base64::Engine as _;
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    marketplace(&app, &p, &c, upstream, json!({}), None).await;
    // The gateway over TLS.
    let (server_pem, server_key, server_der) = certificate("localhost");
    let dir = tempfile::tempdir().unwrap();
    let files = tollgate_gateway::TlsFiles {
        cert_path: dir.path().join("gw.crt"),
        key_path: dir.path().join("gw.key"),
        client_ca: None,
    };
    std::fs::write(&files.cert_path, server_pem).unwrap();
    std::fs::write(&files.key_path, server_key).unwrap();
    let addr = start_tls_gateway(&app, files).await;

    // A client registered by the thumbprint of its self-signed certificate.
    let mine = certificate("client-a");
    let other = certificate("client-b");
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(tollgate_oauth::CertThumbprint::of_der(&mine.2).0);
    let client = app
        .create(
            &format!("/v1/apps/{}/oauth-clients", c.app),
            &c.developer,
            json!({"name": "mtls", "auth_method": "self_signed_tls_client_auth", "tls_thumbprint": thumbprint, "scopes": ["pets:read"]}),
        )
        .await;
    let token_request = || {
        Request::post("https://localhost/oauth/token")
            .header("host", "localhost")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "grant_type=client_credentials&client_id={}",
                id(&client)
            ))))
            .unwrap()
    };
    // Without the certificate, or with another one: no token.
    let none = over_tls(addr, &server_der, None, token_request()).await;
    assert_eq!(none.body["error"], "invalid_client", "{}", none.body);
    let wrong = over_tls(addr, &server_der, Some(&other), token_request()).await;
    assert_eq!(wrong.body["error"], "invalid_client", "{}", wrong.body);
    // With it: a token bound to the certificate.
    let issued = over_tls(addr, &server_der, Some(&mine), token_request()).await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let token = issued.body["access_token"].as_str().unwrap().to_owned();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint.as_str());
    let call = || {
        Request::get("https://localhost/echo/v1/pets")
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let ok = over_tls(addr, &server_der, Some(&mine), call()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    // The same token over a connection with another certificate, or none: refused.
    let stolen = over_tls(addr, &server_der, Some(&other), call()).await;
    assert_eq!(
        (stolen.status, stolen.problem()),
        (StatusCode::UNAUTHORIZED, "token-certificate-mismatch")
    );
    let bare = over_tls(addr, &server_der, None, call()).await;
    assert_eq!(bare.problem(), "token-certificate-mismatch");
    // An API that requires mutual TLS refuses any call without a client certificate,
    // whatever the credential; with the certificate the bound token works.
    let api = app.get("/v1/apis?limit=200", &p.developer).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["slug"] == "echo")
        .unwrap()
        .clone();
    let etag = app
        .get(&format!("/v1/apis/{}", id(&api)), &p.developer)
        .await
        .headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/apis/{}", id(&api)),
            Some(&p.developer),
            Some(json!({"mtls": "required"})),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.body["mtls"], "required", "{}", r.body);
    let refused = over_tls(addr, &server_der, None, call()).await;
    assert_eq!(
        (refused.status, refused.problem()),
        (StatusCode::UNAUTHORIZED, "client-certificate-required")
    );
    assert_eq!(
        over_tls(addr, &server_der, Some(&mine), call())
            .await
            .status,
        StatusCode::OK
    );
    drop(dir);
    db.cleanup().await;
}

#[tokio::test]
async fn ca_issued_client_certificates_authenticate_with_tls_client_auth() {
    use base64::Engine as _;
    use tollgate_gateway::tls::testing::{TestCa, TestCert};
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    marketplace(&app, &p, &c, upstream, json!({}), None).await;
    // The gateway over TLS, trusting one client CA whose CRL revokes serial 9.
    let ca = TestCa::new("Acme partner CA");
    let (server_pem, server_key, server_der) = certificate("localhost");
    let dir = tempfile::tempdir().unwrap();
    let files = tollgate_gateway::TlsFiles {
        cert_path: dir.path().join("gw.crt"),
        key_path: dir.path().join("gw.key"),
        client_ca: Some(tollgate_gateway::tls::ClientCaFiles {
            ca_path: dir.path().join("clients-ca.pem"),
            crl_paths: vec![dir.path().join("clients.crl")],
        }),
    };
    std::fs::write(&files.cert_path, server_pem).unwrap();
    std::fs::write(&files.key_path, server_key).unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("clients.crl"), ca.crl(1, &[9])).unwrap();
    let addr = start_tls_gateway(&app, files).await;
    let tuple = |c: &TestCert| (c.pem.clone(), c.key_pem.clone(), c.der.clone());

    // Two clients: one registered by subject DN, one by DNS SAN.
    let path = format!("/v1/apps/{}/oauth-clients", c.app);
    let register = |subject: &str| {
        app.create(
            &path,
            &c.developer,
            json!({"name": "partner", "auth_method": "tls_client_auth", "tls_subject": subject, "scopes": ["pets:read"]}),
        )
    };
    let by_dn = register("CN=payments, O=Acme\\, Inc., C=FR").await;
    let by_san = register("payments.acme.example").await;
    let token_request = |client: &Value| {
        Request::post("https://localhost/oauth/token")
            .header("host", "localhost")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "grant_type=client_credentials&client_id={}",
                id(client)
            ))))
            .unwrap()
    };
    let good = tuple(&ca.issue(
        7,
        &[("C", "FR"), ("O", "Acme, Inc."), ("CN", "payments")],
        &["payments.acme.example"],
    ));
    // Chains to the CA, valid, not revoked, names the registered subject: a token bound
    // to the certificate, for either client.
    for client in [&by_dn, &by_san] {
        let issued = over_tls(addr, &server_der, Some(&good), token_request(client)).await;
        assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
        let token = issued.body["access_token"].as_str().unwrap().to_owned();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        let claims: Value = serde_json::from_slice(&payload).unwrap();
        let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(tollgate_oauth::CertThumbprint::of_der(&good.2).0);
        assert_eq!(claims["cnf"]["x5t#S256"], thumbprint.as_str());
        let call = Request::get("https://localhost/echo/v1/pets")
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let ok = over_tls(addr, &server_der, Some(&good), call).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    }

    // Each refusal is invalid_client with the reason.
    let refused = |cert: Option<(String, String, rustls::pki_types::CertificateDer<'static>)>,
                   client: &Value,
                   why: &'static str| {
        let req = token_request(client);
        let server_der = server_der.clone();
        async move {
            let r = over_tls(addr, &server_der, cert.as_ref(), req).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
            assert_eq!(r.body["error"], "invalid_client", "{}", r.body);
            let description = r.body["error_description"].as_str().unwrap_or_default();
            assert!(description.contains(why), "{description} lacks {why}");
        }
    };
    // No certificate.
    refused(None, &by_dn, "no TLS client certificate").await;
    // Same names, another CA.
    let stranger = TestCa::new("Acme partner CA");
    let forged = tuple(&stranger.issue(
        7,
        &[("C", "FR"), ("O", "Acme, Inc."), ("CN", "payments")],
        &["payments.acme.example"],
    ));
    refused(Some(forged), &by_dn, "does not chain").await;
    // Revoked by the CRL.
    let revoked = tuple(&ca.issue(
        9,
        &[("C", "FR"), ("O", "Acme, Inc."), ("CN", "payments")],
        &["payments.acme.example"],
    ));
    refused(Some(revoked.clone()), &by_dn, "revoked").await;
    refused(Some(revoked), &by_san, "revoked").await;
    // The CA's, valid, but naming someone else.
    let other = tuple(&ca.issue(
        10,
        &[("C", "FR"), ("O", "Acme, Inc."), ("CN", "reports")],
        &["reports.acme.example"],
    ));
    refused(
        Some(other.clone()),
        &by_dn,
        "does not name the registered subject",
    )
    .await;
    refused(Some(other), &by_san, "does not name the registered subject").await;
    // A self-signed certificate with the right names is not CA-issued.
    let (pem, key, der) = certificate("payments.acme.example");
    refused(Some((pem, key, der)), &by_san, "does not chain").await;
    drop(dir);
    db.cleanup().await;
}

/// The gateway with the usage ledger (`sync` durability) under `dir`: the metering
/// consumer appends every call's event before the response ends.
pub(crate) async fn start_gateway_with_ledger(app: &App, dir: &std::path::Path) -> Gw {
    let config = tollgate_server::ledger::LedgerConfig::under(
        dir,
        tollgate_server::ledger::Durability::Sync,
    );
    let ledger = tollgate_server::ledger::Ledger::open(&app.state, &config)
        .await
        .unwrap();
    app.state.ledger.set(Arc::new(ledger)).unwrap();
    let (events, rx) = EventSink::channel_sync(1024);
    tokio::spawn(tollgate_server::metering::consume(
        app.state.clone(),
        rx,
        Arc::default(),
    ));
    serve_gateway(app, events, mpsc::channel(1).1).await
}

#[tokio::test]
async fn every_call_lands_in_the_ledger_with_proofs_anyone_can_check() {
    use base64::Engine as _;
    use tollgate_ledger::{Checkpoint, VerifierKey, proof, tree};
    let b64 = |s: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    let hash = |s: &Value| -> tree::Hash { b64(s).try_into().unwrap() };
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let stranger = tenant(&app, "stranger").await;
    let upstream = start_upstream().await;
    let (plan, _, sub) = marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let data = tempfile::tempdir().unwrap();
    let gw = start_gateway_with_ledger(&app, data.path()).await;
    let sha = app
        .get(&format!("/v1/subscriptions/{sub}"), &c.developer)
        .await
        .body["terms_sha256"]
        .clone();
    app.create(
        "/v1/subscriptions",
        &c.developer,
        json!({"app_id": c.app, "plan_id": plan, "mode": "test", "accept_terms": sha}),
    )
    .await;
    let (_, live) = key(
        &app,
        &c,
        json!({"name": "live", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;
    let (_, test) = key(
        &app,
        &c,
        json!({"name": "test", "mode": "test", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;

    // Without a credential: the logs, their origins, and the durability mode.
    let logs = app.call(Method::GET, "/v1/ledger", None, None, &[]).await;
    assert_eq!(logs.status, StatusCode::OK, "{}", logs.body);
    assert_eq!(logs.body["logs"][0]["name"], "live");
    assert_eq!(logs.body["logs"][1]["name"], "test");
    assert_eq!(logs.body["logs"][0]["durability"], "sync");
    let origin = logs.body["logs"][0]["origin"].as_str().unwrap().to_owned();
    assert!(origin.ends_with("/live") && !origin.contains(' ') && !origin.contains('+'));

    // Five live calls and two test calls. `sync`: once a response is complete its event
    // is durable, so the sizes are exact the moment the last response arrives.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let r = gw
            .call(
                Method::GET,
                "/echo/v1/pets",
                &[("authorization", &format!("Bearer {live}"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        ids.push(r.headers["tollgate-usage-id"].to_str().unwrap().to_owned());
    }
    for _ in 0..2 {
        let r = gw
            .call(
                Method::GET,
                "/echo/v1/pets",
                &[("authorization", &format!("Bearer {test}"))],
            )
            .await;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let logs = app
        .call(Method::GET, "/v1/ledger", None, None, &[])
        .await
        .body;
    assert_eq!(logs["logs"][0]["size"], 5, "{logs}");
    assert_eq!(
        logs["logs"][1]["size"], 2,
        "test usage goes to the test log only: {logs}"
    );
    let one = app
        .call(Method::GET, "/v1/ledger/live", None, None, &[])
        .await;
    assert_eq!(
        one.body, logs["logs"][0],
        "one log's status is its entry in the list"
    );

    // A checkpoint covering all five is signed within a couple of seconds (bounded wait).
    let key_text = app
        .call(Method::GET, "/v1/ledger/live/public-key", None, None, &[])
        .await;
    let verifier = VerifierKey::parse(key_text.body.as_str().unwrap().trim()).unwrap();
    let mut checkpoint = None;
    for _ in 0..100 {
        let r = app
            .call(Method::GET, "/v1/ledger/live/checkpoint", None, None, &[])
            .await;
        if r.status == StatusCode::OK {
            let cp = Checkpoint::open(
                r.body.as_str().unwrap().as_bytes(),
                &origin,
                std::slice::from_ref(&verifier),
            )
            .unwrap();
            if cp.size == 5 {
                checkpoint = Some(cp);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cp = checkpoint.expect("a signed checkpoint of size 5");

    // The consumer reads its entries; each event is the call it made.
    let entries = app
        .get("/v1/ledger/live/entries?start=0&end=5", &c.developer)
        .await;
    assert_eq!(entries.status, StatusCode::OK, "{}", entries.body);
    let list = entries.body["entries"].as_array().unwrap().clone();
    assert_eq!(list.len(), 5);
    for (i, e) in list.iter().enumerate() {
        let event = &e["event"];
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], "dev.tollgate.usage.call.v1");
        assert_eq!(event["id"], ids[i].as_str());
        assert_eq!(event["subject"], sub.as_str());
        assert_eq!(event["data"]["status"], 200);
        assert_eq!(event["data"]["operation_id"], "listPets");
        assert_eq!(event["data"]["mode"], "live");
        assert!(event["data"]["terms_sha256"].as_str().unwrap().len() == 64);
        // The client address only as a keyed hash, the same for every call from it.
        let ip_hash = event["data"]["client_ip_hash"].as_str().unwrap();
        assert_eq!(ip_hash.len(), 32);
        assert_eq!(
            ip_hash,
            list[0]["event"]["data"]["client_ip_hash"].as_str().unwrap()
        );
        assert!(!e.to_string().contains("127.0.0.1"), "{e}");
        // The leaf is 0x01 ‖ canonical JSON of the event.
        let leaf = b64(&e["leaf"]);
        assert_eq!(leaf[0], 1);
        assert_eq!(serde_json::from_slice::<Value>(&leaf[1..]).unwrap(), *event);
        // Its inclusion proof, by index and by event id, verifies against the root.
        for query in [format!("index={i}"), format!("event_id={}", ids[i])] {
            let proof = app
                .call(
                    Method::GET,
                    &format!("/v1/ledger/live/proof/inclusion?{query}&tree_size=5"),
                    None,
                    None,
                    &[],
                )
                .await;
            assert_eq!(proof.status, StatusCode::OK, "{}", proof.body);
            assert_eq!(proof.body["leaf_index"], i);
            let path: Vec<tree::Hash> = proof.body["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(hash)
                .collect();
            proof::verify_inclusion(&tree::leaf_hash(&leaf), i as u64, 5, &path, &cp.root).unwrap();
        }
    }
    // Another org sees none of them; without a credential, entries are refused.
    let other = app
        .get("/v1/ledger/live/entries?start=0&end=5", &stranger.developer)
        .await;
    assert_eq!(
        other.body["entries"].as_array().unwrap().len(),
        0,
        "{}",
        other.body
    );
    let anonymous = app
        .call(
            Method::GET,
            "/v1/ledger/live/entries?start=0&end=5",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    // Out-of-range and oversized requests are clear errors.
    let r = app
        .get("/v1/ledger/live/entries?start=0&end=6", &c.developer)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app
        .call(
            Method::GET,
            "/v1/ledger/live/proof/inclusion?index=5&tree_size=5",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app
        .call(Method::GET, "/v1/ledger/nope/checkpoint", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // More calls, a newer checkpoint, and a consistency proof between the two.
    for _ in 0..3 {
        gw.call(
            Method::GET,
            "/echo/v1/pets",
            &[("authorization", &format!("Bearer {live}"))],
        )
        .await;
    }
    let mut newer = None;
    for _ in 0..100 {
        let list = app
            .call(
                Method::GET,
                "/v1/ledger/live/checkpoints?from_size=5",
                None,
                None,
                &[],
            )
            .await
            .body;
        let notes = list["checkpoints"].as_array().unwrap().clone();
        assert_eq!(
            notes[0]["size"], 5,
            "the checkpoint we hold is listed: {list}"
        );
        if let Some(last) = notes.last().filter(|n| n["size"] == 8) {
            newer = Some(
                Checkpoint::open(
                    last["note"].as_str().unwrap().as_bytes(),
                    &origin,
                    std::slice::from_ref(&verifier),
                )
                .unwrap(),
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let newer = newer.expect("a checkpoint of size 8");
    let proof = app
        .call(
            Method::GET,
            "/v1/ledger/live/proof/consistency?first=5&second=8",
            None,
            None,
            &[],
        )
        .await;
    let path: Vec<tree::Hash> = proof.body["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    proof::verify_consistency(5, 8, &path, &cp.root, &newer.root).unwrap();
    drop(gw);
    db.cleanup().await;
}

#[tokio::test]
async fn providers_report_usage_in_batches_judged_event_by_event() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let other_provider = tenant(&app, "rival").await;
    let upstream = start_upstream().await;
    let (_, _, sub) = marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let data = tempfile::tempdir().unwrap();
    let _gw = start_gateway_with_ledger(&app, data.path()).await;
    let provider_org = app
        .get(&format!("/v1/subscriptions/{sub}"), &p.developer)
        .await
        .body["provider_org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let source = format!("/providers/{provider_org}/payments");
    let now = time::OffsetDateTime::now_utc();
    let at = |d: time::Duration| tollgate_core::usage::format_time(now + d);
    let event = |id: &str, source: &str, time: String| {
        json!({"specversion": "1.0", "id": id, "source": source, "type": "com.example.payment.settled",
               "subject": sub, "time": time, "data": {"operation_id": "createPet", "fields": {"amount": "12.50", "units": 3}}})
    };
    let batch = json!([
        event("pay-1", &source, at(time::Duration::ZERO)),
        event("pay-1", &source, at(time::Duration::ZERO)),
        event("pay-2", "/providers/someone-else", at(time::Duration::ZERO)),
        event("pay-3", &source, at(-time::Duration::days(36))),
        event("pay-4", &source, at(time::Duration::minutes(10))),
        {"specversion": "1.0", "source": source, "type": "x", "subject": sub, "time": at(time::Duration::ZERO), "data": {}},
        event("pay-5", &source, at(-time::Duration::days(34))),
        {"specversion": "1.0", "id": "pay-6", "source": source, "type": "x", "subject": sub, "time": at(time::Duration::ZERO), "data": {"fields": {"big": 9007199254740993_i64}}},
    ]);
    let r = app.post("/v1/usage/events", &p.developer, batch).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let statuses: Vec<&str> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "accepted",
            "duplicate",
            "rejected",
            "rejected",
            "rejected",
            "rejected",
            "accepted",
            "rejected"
        ],
        "{}",
        r.body
    );
    let reason = |i: usize| r.body["results"][i]["reason"].as_str().unwrap().to_owned();
    assert!(reason(2).contains("source must be"), "{}", reason(2));
    assert!(reason(3).contains("35 days"), "{}", reason(3));
    assert!(reason(4).contains("5 minutes"), "{}", reason(4));
    assert!(reason(5).contains("id"), "{}", reason(5));
    assert!(reason(7).contains("2^53"), "{}", reason(7));
    assert_eq!(
        (
            r.body["accepted"].clone(),
            r.body["duplicates"].clone(),
            r.body["rejected"].clone()
        ),
        (json!(2), json!(1), json!(5))
    );
    assert_eq!(r.body["results"][0]["log"], "live");

    // Sent again, later (after the index caught up, and before): duplicates.
    let again = app
        .post(
            "/v1/usage/events",
            &p.developer,
            json!([event("pay-1", &source, at(time::Duration::ZERO))]),
        )
        .await;
    assert_eq!(
        again.body["results"][0]["status"], "duplicate",
        "{}",
        again.body
    );
    tollgate_server::ledger::index(&app.state).await.unwrap();
    let again = app
        .post(
            "/v1/usage/events",
            &p.developer,
            json!([event("pay-5", &source, at(time::Duration::ZERO))]),
        )
        .await;
    assert_eq!(
        again.body["results"][0]["status"], "duplicate",
        "{}",
        again.body
    );

    // Only the subscription's provider may report for it: the consumer, another provider.
    for who in [&c.developer, &other_provider.developer] {
        let r = app
            .post(
                "/v1/usage/events",
                who,
                json!([event("pay-7", &source, at(time::Duration::ZERO))]),
            )
            .await;
        assert_eq!(r.body["results"][0]["status"], "rejected", "{}", r.body);
        assert!(
            r.body["results"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("no such subscription")
        );
    }
    // More than 1 000 at once: refused whole.
    let many: Vec<Value> = (0..1001)
        .map(|i| event(&format!("m{i}"), &source, at(time::Duration::ZERO)))
        .collect();
    let r = app
        .post("/v1/usage/events", &p.developer, json!(many))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);

    // The accepted events are in the live log, with the provider's fields, readable by
    // the consumer and provable like any call.
    let entries = app
        .get("/v1/ledger/live/entries?start=0&end=2", &c.developer)
        .await;
    let list = entries.body["entries"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{}", entries.body);
    assert_eq!(list[0]["event"]["id"], "pay-1");
    assert_eq!(list[0]["event"]["source"], source.as_str());
    assert_eq!(
        list[0]["event"]["data"]["fields"],
        json!({"amount": "12.50", "units": 3})
    );
    assert_eq!(list[0]["event"]["data"]["operation_id"], "createPet");
    assert_eq!(list[1]["event"]["id"], "pay-5");
    db.cleanup().await;
}

#[tokio::test]
async fn usage_aggregates_follow_the_ledger_and_rebuild_from_it_alone() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let stranger = tenant(&app, "stranger").await;
    let upstream = start_upstream().await;
    let (_, _, sub) = marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let data = tempfile::tempdir().unwrap();
    let gw = start_gateway_with_ledger(&app, data.path()).await;
    let (_, live) = key(
        &app,
        &c,
        json!({"name": "live", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;
    for path in ["/echo/v1/pets", "/echo/v1/pets", "/echo/v1/pets/7"] {
        let r = gw
            .call(
                Method::GET,
                path,
                &[("authorization", &format!("Bearer {live}"))],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let provider_org = app
        .get(&format!("/v1/subscriptions/{sub}"), &p.developer)
        .await
        .body["provider_org_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = tollgate_core::usage::format_time(time::OffsetDateTime::now_utc());
    let reported: Vec<Value> = [("a", "12.50", "eur"), ("b", "7.25", "usd"), ("c", "0.25", "eur")]
        .iter()
        .map(|(id, amount, currency)| {
            json!({"specversion": "1.0", "id": id, "source": format!("/providers/{provider_org}"),
                   "type": "payment", "subject": sub, "time": now,
                   "data": {"operation_id": "createPet", "fields": {"amount": amount, "currency": currency}}})
        })
        .collect();
    let r = app
        .post("/v1/usage/events", &p.developer, json!(reported))
        .await;
    assert_eq!(r.body["accepted"], 3, "{}", r.body);
    tollgate_server::ledger::index(&app.state).await.unwrap();

    let report = |token: String| {
        let url = format!("/v1/usage?subscription_id={sub}&period=month");
        let app = &app;
        async move { app.get(&url, &token).await }
    };
    let r = report(c.developer.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["indexed_through"], 6, "{}", r.body);
    let find = |body: &Value, op: &str, meter: &str| {
        body["aggregates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["operation_id"] == op && a["meter"] == meter)
            .unwrap_or_else(|| panic!("no {op}/{meter} in {body}"))
            .clone()
    };
    assert_eq!(find(&r.body, "listPets", "calls")["count"], 2);
    assert_eq!(find(&r.body, "getPet", "calls")["count"], 1);
    let bytes = find(&r.body, "listPets", "response_bytes");
    assert!(
        bytes["sum"].as_str().unwrap().parse::<u64>().unwrap() > 0,
        "{bytes}"
    );
    let amount = find(&r.body, "createPet", "field:amount");
    assert_eq!(
        (
            amount["count"].clone(),
            amount["sum"].clone(),
            amount["max"].clone()
        ),
        (json!(3), json!("20"), json!("12.5"))
    );
    assert_eq!(find(&r.body, "createPet", "field:currency")["unique"], 2);
    // The provider sees it too; another org does not (404, as for any object of theirs).
    assert_eq!(report(p.developer.clone()).await.body, r.body);
    assert_eq!(
        report(stranger.developer.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    let bad = app
        .get(
            &format!("/v1/usage?subscription_id={sub}&period=week"),
            &c.developer,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Reproducible from the log alone: drop the index and aggregates, rebuild, compare.
    let mut tx = app.state.store.write().await.unwrap();
    tx.clear_usage_index("live").await.unwrap();
    tx.set_meta("ledger_indexed:live", "0").await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        report(c.developer.clone()).await.body["aggregates"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    tollgate_server::ledger::index(&app.state).await.unwrap();
    assert_eq!(report(c.developer.clone()).await.body, r.body);
    drop(gw);
    db.cleanup().await;
}

#[tokio::test]
async fn retention_prunes_old_bodies_and_proofs_still_verify() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let data = tempfile::tempdir().unwrap();
    let config = tollgate_server::ledger::LedgerConfig {
        retention: Some(std::time::Duration::from_secs(40 * 86_400)),
        segment_bytes: 2048,
        ..tollgate_server::ledger::LedgerConfig::under(
            data.path(),
            tollgate_server::ledger::Durability::Sync,
        )
    };
    let ledger = tollgate_server::ledger::Ledger::open(&app.state, &config)
        .await
        .unwrap();
    app.state.ledger.set(Arc::new(ledger)).unwrap();
    let (events, rx) = EventSink::channel_sync(1024);
    tokio::spawn(tollgate_server::metering::consume(
        app.state.clone(),
        rx,
        Arc::default(),
    ));
    let gw = serve_gateway(&app, events, mpsc::channel(1).1).await;
    let (_, live) = key(
        &app,
        &c,
        json!({"name": "live", "mode": "live", "expires_in_days": 90, "scopes": ["pets:read"]}),
    )
    .await;
    let ledger = app.state.ledger.get().unwrap().clone();
    let log = ledger.log("live").unwrap();
    let calls = |n: usize| {
        let (gw, live) = (&gw, &live);
        async move {
            for _ in 0..n {
                let r = gw
                    .call(
                        Method::GET,
                        "/echo/v1/pets",
                        &[("authorization", &format!("Bearer {live}"))],
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            }
        }
    };
    let checkpointed = |size: u64| async move {
        for _ in 0..200 {
            if log
                .reader()
                .latest_checkpoint()
                .is_some_and(|c| c.size == size)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("no checkpoint of size {size}");
    };
    calls(20).await;
    checkpointed(20).await;
    tollgate_server::ledger::index(&app.state).await.unwrap();
    // Nothing is old yet.
    assert!(
        tollgate_server::ledger::apply_retention(&app.state)
            .await
            .unwrap()
            .is_empty()
    );
    app.clock.advance(time::Duration::days(41));
    calls(5).await;
    checkpointed(25).await;
    tollgate_server::ledger::index(&app.state).await.unwrap();
    let pruned = tollgate_server::ledger::apply_retention(&app.state)
        .await
        .unwrap();
    let kept_from = pruned[0].1;
    assert!(
        pruned[0].0 == "live" && kept_from > 0 && kept_from <= 20,
        "{pruned:?}"
    );
    // Old bodies are gone; their proofs still verify against the checkpoint.
    let r = app
        .get(
            &format!("/v1/ledger/live/entries?start=0&end={kept_from}"),
            OPERATOR_TOKEN,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = app
        .get(
            &format!("/v1/ledger/live/entries?start={kept_from}&end=25"),
            OPERATOR_TOKEN,
        )
        .await;
    assert_eq!(
        r.body["entries"].as_array().unwrap().len() as u64,
        25 - kept_from
    );
    let root = log.reader().latest_checkpoint().unwrap().root;
    let proof = app
        .call(
            Method::GET,
            "/v1/ledger/live/proof/inclusion?index=0&tree_size=25",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(proof.status, StatusCode::OK, "{}", proof.body);
    let path: Vec<tollgate_ledger::tree::Hash> = proof.body["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let leaf0 = log.reader().leaf_hash(0).unwrap();
    tollgate_ledger::proof::verify_inclusion(&leaf0, 0, 25, &path, &root).unwrap();
    let logs = app
        .call(Method::GET, "/v1/ledger", None, None, &[])
        .await
        .body;
    assert_eq!(logs["logs"][0]["pruned_before"], kept_from);
    drop(gw);
    db.cleanup().await;
}

#[tokio::test]
async fn quota_counts_can_be_recounted_from_the_ledger_alone() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let limits = json!({
        "time_zone": "Europe/Paris",
        "quota": [{"group": "read", "requests": 100, "per": "day"}, {"group": "write", "requests": 20, "per": "calendar_month"}]
    });
    marketplace(&app, &p, &c, upstream, limits, None).await;
    let data = tempfile::tempdir().unwrap();
    let gw = start_gateway_with_ledger(&app, data.path()).await;
    let (_, live) = key(
        &app,
        &c,
        json!({"name": "live", "mode": "live", "expires_in_days": 30, "scopes": ["pets:read", "pets:write"]}),
    )
    .await;
    for (method, path, n) in [
        (Method::GET, "/echo/v1/pets", 7),
        (Method::POST, "/echo/v1/pets", 3),
    ] {
        for _ in 0..n {
            let r = gw
                .call(
                    method.clone(),
                    path,
                    &[("authorization", &format!("Bearer {live}"))],
                )
                .await;
            assert!(r.status.is_success(), "{}", r.body);
        }
    }
    let mut live_counts = app.state.limiter.snapshot_quotas();
    let mut recounted = tollgate_server::metering::quota_usage_from_ledger(&app.state)
        .await
        .unwrap();
    let order = |v: &mut Vec<tollgate_limits::QuotaUsage>| {
        v.sort_by_key(|u| (u.key, u.period_start));
    };
    order(&mut live_counts);
    order(&mut recounted);
    assert_eq!(
        recounted
            .iter()
            .map(|u| u.used)
            .collect::<Vec<_>>()
            .iter()
            .sum::<u64>(),
        10,
        "{recounted:?}"
    );
    assert_eq!(
        recounted, live_counts,
        "the ledger proves exactly what the limiter counted"
    );
    drop(gw);
    db.cleanup().await;
}

#[tokio::test]
async fn public_apis_need_no_credential_and_are_not_metered() {
    let (store, db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let (_, api, _) = marketplace(&app, &p, &c, upstream, json!({}), None).await;
    let gw = start_gateway(&app).await;
    let refused = gw.call(Method::GET, "/echo/v1/pets", &[]).await;
    assert_eq!(refused.problem(), "credential-required");
    let patch = |public: bool| {
        let (app, p, api) = (&app, &p, &api);
        async move {
            let etag = app
                .get(&format!("/v1/apis/{api}"), &p.developer)
                .await
                .headers["etag"]
                .to_str()
                .unwrap()
                .to_owned();
            let r = app
                .call(
                    Method::PATCH,
                    &format!("/v1/apis/{api}"),
                    Some(&p.developer),
                    Some(json!({"public": public})),
                    &[("if-match", &etag)],
                )
                .await;
            assert_eq!(r.body["public"], public, "{}", r.body);
        }
    };
    patch(true).await;
    // Anyone, with no credential: straight to the upstream, no usage record.
    let open = gw.call(Method::GET, "/echo/v1/pets", &[]).await;
    assert_eq!(open.status, StatusCode::OK, "{}", open.body);
    assert_eq!(open.body["path"], "/pets");
    assert!(open.headers.get("tollgate-usage-id").is_none());
    assert!(open.headers.get("ratelimit").is_none());
    // Operations are still matched: an unknown path is 404, a wrong method 405.
    assert_eq!(
        gw.call(Method::GET, "/echo/v1/nothing", &[]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gw.call(Method::DELETE, "/echo/v1/pets", &[]).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // Back to private: the next request needs a credential again.
    patch(false).await;
    assert_eq!(
        gw.call(Method::GET, "/echo/v1/pets", &[]).await.problem(),
        "credential-required"
    );
    db.cleanup().await;
}
