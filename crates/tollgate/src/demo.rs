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
) -> anyhow::Result<()> {
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
        return Ok(());
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
        &json!({"status": "published"}),
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
        &json!({"status": "published"}),
    )
    .await?;
    let app = c
        .post(
            "/v1/apps",
            &json!({"org_id": consumer_id, "slug": "dashboard", "name": "Globex Dashboard"}),
        )
        .await?;
    let app_id = id(&app)?;
    let sub = c
        .post(
            "/v1/subscriptions",
            &json!({"app_id": app_id, "plan_id": free_id, "reason": "demo"}),
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
        },
        "ids": {
            "provider_org": provider_id, "consumer_org": consumer_id, "api": api_id,
            "plan_free": free_id, "plan_pro": pro_id, "app": app_id, "subscription": id(&sub)?,
        },
    });
    crate::serve::write_secret_file(&path, &serde_json::to_string_pretty(&demo)?)?;
    tracing::info!(path = %path.display(), "demo marketplace seeded");
    eprintln!("Demo marketplace seeded; credentials in {}", path.display());
    Ok(())
}
