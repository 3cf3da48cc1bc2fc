//! `tollgate serve --demo`: a small real marketplace. A sample weather API is served by
//! this process on an ephemeral port; the catalog is created through the admin API
//! in-process (same checks and audit as any caller); credentials go to
//! `<data-dir>/demo.json`. On a restart the existing demo is kept and only its upstream
//! address is updated to the new port.

use crate::client::AdminClient;
use anyhow::Context;
use axum::Json;
use axum::extract::Path;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tollgate_server::AppState;

/// Serves the sample upstream on 127.0.0.1 (ephemeral port).
pub async fn start_upstream() -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/cities",
            get(|| async {
                Json(json!({"cities": ["amsterdam", "lagos", "lima", "osaka", "toronto"]}))
            }),
        )
        .route(
            "/forecast/{city}",
            get(|Path(city): Path<String>| async move {
                // Deterministic per city, so the tour's output is stable.
                let t = city
                    .bytes()
                    .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)))
                    % 35;
                let conditions = ["sunny", "cloudy", "rain", "wind"][(t % 4) as usize];
                Json(json!({"city": city, "temperature_c": t, "conditions": conditions}))
            }),
        )
        .route(
            "/alerts",
            post(|Json(body): Json<Value>| async move {
                (
                    axum::http::StatusCode::CREATED,
                    Json(json!({"accepted": body})),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

/// The sample API's OpenAPI document.
pub fn openapi() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Acme Weather", "version": "1.0.0", "description": "Forecasts for a handful of cities."},
        "paths": {
            "/cities": {"get": {"operationId": "listCities", "summary": "Cities with forecasts", "responses": {"200": {"description": "OK"}}}},
            "/forecast/{city}": {"get": {
                "operationId": "getForecast", "summary": "Today's forecast for a city",
                "parameters": [{"name": "city", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "OK"}}
            }},
            "/alerts": {"post": {"operationId": "createAlert", "summary": "Subscribe to weather alerts", "responses": {"201": {"description": "Created"}}}}
        }
    })
}

/// The demo's term sheets: Free (forecasts, business hours in Paris, small quota) and
/// Pro (everything, larger limits, alerts with location data).
pub fn terms(pro: bool) -> Value {
    let mut sheet = json!({
        "id": if pro { "weather-pro" } else { "weather-free" },
        "version": "1.0.0",
        "title": if pro { "Acme Weather — Pro terms" } else { "Acme Weather — Free terms" },
        "effective": "2026-01-01",
        "jurisdiction": "FR",
        "governing_law": "the laws of France",
        "language": "en",
        "sections": [
            {"id": "acceptable-use", "title": "Acceptable use", "body": "Show forecasts to your users. Do **not** resell raw observations as a competing feed."},
            {"id": "liability", "title": "Liability", "body": "Forecasts are estimates; the provider is not liable for decisions taken on them."}
        ],
        "grants": [{"api": "weather", "operations": ["listCities", "getForecast"], "scopes": ["weather:read"], "group": "forecasts"}],
        "data": {"retention_days": 30},
        "limits": {
            "time_zone": "Europe/Paris",
            "rate": [{"group": "forecasts", "requests": 5, "per": "second", "burst": 10}],
            "quota": [{"group": "forecasts", "requests": 10000, "per": "calendar_month"}]
        },
        "notice": {"days": 30, "on_expiry": "move"}
    });
    if pro {
        if let Some(grants) = sheet["grants"].as_array_mut() {
            grants.push(json!({"api": "weather", "operations": ["createAlert"], "scopes": ["alerts:write"], "group": "alerts", "data": {"categories": ["location"]}}));
        }
        sheet["limits"]["rate"] = json!([{"group": "forecasts", "requests": 50, "per": "second", "burst": 100}, {"group": "alerts", "requests": 10, "per": "minute"}]);
        sheet["limits"]["quota"] =
            json!([{"group": "forecasts", "requests": 1000000, "per": "calendar_month"}]);
        // Pro serves personal data (alert locations): calls declare their purpose.
        sheet["data"]["purposes"] = json!(["service-provision"]);
        sheet["sla"] = json!({"availability": "99.9", "latency": {"percentile": 95, "ms": 300}, "credits": [{"below": "99.9", "credit": "10"}, {"below": "99", "credit": "25"}]});
        // Pro's prices, part of the sheet and of its hash: a monthly fee in advance and
        // forecasts beyond 10 000 a month in graduated tiers; alerts per call.
        sheet["pricing"] = json!({"inline": {
            "id": "weather-pro", "version": "2026-01", "currency": "EUR",
            "billing_cycle": {"interval": "month", "anchor": "calendar", "time_zone": "Europe/Paris"},
            "grace_hours": 24,
            "base_fee": {"amount": "49.00", "timing": "in_advance"},
            "meters": [
                {"id": "forecasts", "aggregate": "count", "filter": {"operations": ["listCities", "getForecast"], "status": ["2xx"]}},
                {"id": "alerts", "aggregate": "count", "filter": {"operations": ["createAlert"], "status": ["2xx"]}}
            ],
            "charges": [
                {"id": "forecasts", "meter": "forecasts", "free_units": "10000", "price": {"model": "graduated", "tiers": [
                    {"up_to": "100000", "unit_price": "0.002"}, {"up_to": null, "unit_price": "0.001"}]}},
                {"id": "alerts", "meter": "alerts", "price": {"model": "per_unit", "unit_price": "0.05"}}
            ]
        }});
    }
    sheet
}

fn id(v: &Value) -> anyhow::Result<String> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("response without id")
}

/// Seeds the demo, or refreshes its upstream address if it exists.
pub async fn seed(
    state: &Arc<AppState>,
    operator_token: &str,
    upstream: SocketAddr,
    admin: SocketAddr,
    gateway: SocketAddr,
    data_dir: &std::path::Path,
) -> anyhow::Result<Option<Traffic>> {
    let (router, _) = tollgate_server::admin_router(state.clone());
    let c = AdminClient::local(router, operator_token.to_owned());
    let upstream_url = format!("http://{upstream}");
    let path = data_dir.join("demo.json");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let demo: Value = serde_json::from_str(&text).context("demo.json is not JSON")?;
        let api_id = demo
            .pointer("/ids/api")
            .and_then(Value::as_str)
            .context("demo.json lacks ids.api")?;
        c.patch(
            &format!("/v1/apis/{api_id}"),
            &json!({"upstreams": [upstream_url]}),
        )
        .await?;
        let mut demo = demo;
        demo["admin_url"] = json!(format!("http://{admin}"));
        demo["gateway_url"] = json!(format!("http://{gateway}"));
        demo["upstream_url"] = json!(upstream_url);
        std::fs::write(&path, serde_json::to_vec_pretty(&demo)?)?;
        tracing::info!(path = %path.display(), "demo marketplace already seeded; upstream address updated");
        return Ok(None);
    }

    let provider = c
        .post(
            "/v1/orgs",
            &json!({"slug": "acme-weather", "name": "Acme Weather", "kind": "provider"}),
        )
        .await?;
    let provider_id = id(&provider)?;
    let consumer = c
        .post(
            "/v1/orgs",
            &json!({"slug": "globex", "name": "Globex Corporation", "kind": "consumer"}),
        )
        .await?;
    let consumer_id = id(&consumer)?;
    let alice = c.post(&format!("/v1/orgs/{provider_id}/members"), &json!({"email": "alice@acme-weather.example", "name": "Alice (provider owner)", "role": "owner"})).await?;
    let bob = c.post(&format!("/v1/orgs/{consumer_id}/members"), &json!({"email": "bob@globex.example", "name": "Bob (consumer developer)", "role": "developer"})).await?;
    let api = c
        .post(
            "/v1/apis",
            &json!({
                "org_id": provider_id, "slug": "weather", "name": "Weather", "version": "v1",
                "description": "Forecasts for a handful of cities.", "base_path": "/weather/v1",
                "upstreams": [upstream_url], "openapi": openapi()
            }),
        )
        .await?;
    let api_id = id(&api)?;
    c.patch(
        &format!("/v1/apis/{api_id}"),
        &json!({"status": "published"}),
    )
    .await?;
    let mut terms_ids = Vec::new();
    for pro in [false, true] {
        let t = c
            .post(
                "/v1/terms",
                &json!({"org_id": provider_id, "document": terms(pro)}),
            )
            .await?;
        let tid = id(&t)?;
        c.post(&format!("/v1/terms/{tid}/publish"), &json!(null))
            .await?;
        terms_ids.push((tid, t["sha256"].as_str().unwrap_or_default().to_owned()));
    }
    let free = c
        .post("/v1/plans", &json!({
            "org_id": provider_id, "slug": "free", "name": "Free", "description": "Forecasts and cities, for trying things out.",
            "visibility": "public", "approval_required": false,
            "apis": [{"api_id": api_id, "operations": ["listCities", "getForecast"]}]
        }))
        .await?;
    let free_id = id(&free)?;
    c.patch(
        &format!("/v1/plans/{free_id}"),
        &json!({"status": "published", "terms_id": terms_ids[0].0}),
    )
    .await?;
    let pro = c
        .post("/v1/plans", &json!({
            "org_id": provider_id, "slug": "pro", "name": "Pro", "description": "Everything, including alerts. Approval required.",
            "visibility": "public", "approval_required": true, "apis": [{"api_id": api_id}]
        }))
        .await?;
    let pro_id = id(&pro)?;
    c.patch(
        &format!("/v1/plans/{pro_id}"),
        &json!({"status": "published", "terms_id": terms_ids[1].0}),
    )
    .await?;
    let app = c
        .post(
            "/v1/apps",
            &json!({"org_id": consumer_id, "slug": "dashboard", "name": "Globex Dashboard"}),
        )
        .await?;
    let app_id = id(&app)?;
    // Bob (consumer developer) subscribes, accepting the Free terms by their hash: the
    // acceptance is his, signed by the marketplace.
    let bob_token = bob
        .pointer("/initial_token/secret")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let as_bob = AdminClient::local(tollgate_server::admin_router(state.clone()).0, bob_token);
    let sub = as_bob
        .post(
            "/v1/subscriptions",
            &json!({"app_id": app_id, "plan_id": free_id, "reason": "demo", "accept_terms": terms_ids[0].1}),
        )
        .await?;
    // A live API key for the app (the gateway will accept it once the Gateway issue lands).
    let key = as_bob
        .post(
            &format!("/v1/apps/{app_id}/keys"),
            &json!({"name": "demo", "mode": "live", "expires_in_days": 365, "scopes": ["weather:read"]}),
        )
        .await?;

    // A test-mode subscription and key: test calls reach the API's sandbox (here the mock
    // answering from the OpenAPI examples) and land in the ledger's test log.
    as_bob
        .post(
            "/v1/subscriptions",
            &json!({"app_id": app_id, "plan_id": free_id, "mode": "test", "reason": "demo sandbox", "accept_terms": terms_ids[0].1}),
        )
        .await?;
    let test_key = as_bob
        .post(
            &format!("/v1/apps/{app_id}/keys"),
            &json!({"name": "demo-sandbox", "mode": "test", "expires_in_days": 365, "scopes": ["weather:read"]}),
        )
        .await?;

    let demo = json!({
        "admin_url": format!("http://{admin}"),
        "gateway_url": format!("http://{gateway}"),
        "upstream_url": upstream_url,
        "tokens": {
            "operator": operator_token,
            "provider_owner": alice.pointer("/initial_token/secret"),
            "consumer_developer": bob.pointer("/initial_token/secret"),
            "api_key": key["secret"],
            "test_api_key": test_key["secret"],
        },
        "terms_sha256": {"free": terms_ids[0].1, "pro": terms_ids[1].1},
        "ids": {
            "provider_org": provider_id, "consumer_org": consumer_id, "api": api_id,
            "plan_free": free_id, "plan_pro": pro_id, "app": app_id, "subscription": id(&sub)?,
            "terms_free": terms_ids[0].0, "terms_pro": terms_ids[1].0,
        },
    });
    crate::serve::write_secret_file(&path, &serde_json::to_string_pretty(&demo)?)?;
    tracing::info!(path = %path.display(), "demo marketplace seeded");
    eprintln!("Demo marketplace seeded; credentials in {}", path.display());
    let secret = |v: &Value| v["secret"].as_str().unwrap_or_default().to_owned();
    Ok(Some(Traffic {
        gateway,
        live_key: secret(&key),
        test_key: secret(&test_key),
    }))
}

/// The sample calls a freshly seeded demo makes through its own gateway, so that usage,
/// the ledger and its proofs have something to show from the first look.
#[derive(Debug)]
pub struct Traffic {
    gateway: SocketAddr,
    live_key: String,
    test_key: String,
}

impl Traffic {
    /// Sends a handful of live and test calls; failures are logged, never fatal.
    pub async fn send(self) {
        use http_body_util::BodyExt as _;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let calls = [
            (&self.live_key, "/weather/v1/cities"),
            (&self.live_key, "/weather/v1/forecast/lima"),
            (&self.live_key, "/weather/v1/forecast/osaka"),
            (&self.live_key, "/weather/v1/forecast/toronto"),
            (&self.test_key, "/weather/v1/cities"),
            (&self.test_key, "/weather/v1/forecast/lagos"),
        ];
        let mut sent = 0;
        for (key, path) in calls {
            let req = http::Request::get(format!("http://{}{path}", self.gateway))
                .header("x-api-key", key.as_str())
                .body(http_body_util::Empty::new());
            let Ok(req) = req else { continue };
            match client.request(req).await {
                Ok(resp) => {
                    // Read the whole body: the call is complete (and, with metering
                    // `sync`, in the ledger) only at its end.
                    let _ = resp.into_body().collect().await;
                    sent += 1;
                }
                Err(e) => tracing::warn!(error = %e, path, "demo call failed"),
            }
        }
        tracing::info!(calls = sent, "demo traffic sent through the gateway");
    }
}
