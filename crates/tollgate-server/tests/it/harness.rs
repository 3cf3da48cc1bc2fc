//! A marketplace for tests: two orgs with members of every role and one object of each
//! kind, built through the admin API itself.

use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tollgate_core::FixedClock;
use tollgate_gateway::{Snapshot, SnapshotHandle};
use tollgate_keyring::MasterKey;
use tollgate_server::AppState;
use tollgate_store::Store;
use tollgate_store::testing::{TestDb, each_backend};
use tower::ServiceExt;

pub const OPERATOR_TOKEN: &str = "tgo_test-operator-token-0123456789";

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub struct App {
    /// The marketplace's clock: tests move it forward.
    pub clock: Arc<FixedClock>,
    pub router: axum::Router,
    pub openapi: Value,
    pub state: Arc<AppState>,
}

/// A minimal valid OpenAPI document with two operations.
pub fn petstore() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Pets", "version": "1"},
        "paths": {
            "/pets": {"get": {"operationId": "listPets", "responses": {"200": {"description": "ok"}}}},
            "/pets/{id}": {"get": {"operationId": "getPet", "parameters": [{"name": "id", "in": "path", "required": true}], "responses": {"200": {"description": "ok"}}}}
        }
    })
}

impl App {
    pub async fn new(store: Store) -> App {
        let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
        let state = Arc::new(
            AppState::init(
                store,
                clock.clone(),
                MasterKey::generate().unwrap(),
                OPERATOR_TOKEN,
                SnapshotHandle::new(Snapshot::empty()),
            )
            .await
            .unwrap(),
        );
        tollgate_server::snapshot::refresh(&state).await.unwrap();
        let (router, openapi) = tollgate_server::admin_router(state.clone());
        let openapi = serde_json::to_value(&openapi).unwrap();
        App {
            clock,
            router,
            openapi,
            state,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&b).unwrap())
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    pub async fn raw(&self, req: Request<Body>) -> Reply {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    /// POST that must succeed; returns the body.
    pub async fn create(&self, path: &str, token: &str, body: Value) -> Value {
        let r = self.post(path, token, body).await;
        assert!(
            r.status.is_success(),
            "POST {path} → {}: {}",
            r.status,
            r.body
        );
        r.body
    }

    pub async fn ok_patch(&self, path: &str, token: &str, body: Value) -> Value {
        let r = self.patch(path, token, body).await;
        assert!(
            r.status.is_success(),
            "PATCH {path} → {}: {}",
            r.status,
            r.body
        );
        r.body
    }
}

pub fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

/// One org's people and objects.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub org: String,
    pub owner: String,
    pub owner_user: String,
    pub owner_token_id: String,
    pub admin: String,
    pub developer: String,
    pub billing: String,
    pub auditor: String,
    pub draft_api: String,
    pub published_api: String,
    pub private_plan: String,
    pub public_plan: String,
    pub app: String,
    pub subscription: String,
    /// A draft term sheet (private to the org).
    pub draft_terms: String,
    /// A live API key of `app`.
    pub api_key: String,
    /// An OAuth client of `app`.
    pub oauth_client: String,
}

pub async fn tenant(app: &App, slug: &str) -> Tenant {
    let org = app
        .create(
            "/v1/orgs",
            OPERATOR_TOKEN,
            json!({"slug": slug, "name": slug, "kind": "both"}),
        )
        .await;
    let org_id = id(&org);
    let mut tokens = std::collections::HashMap::new();
    let mut owner_user = String::new();
    for role in ["owner", "admin", "developer", "billing", "auditor"] {
        let m = app
            .create(
                &format!("/v1/orgs/{org_id}/members"),
                OPERATOR_TOKEN,
                json!({"email": format!("{role}@{slug}.example"), "role": role}),
            )
            .await;
        tokens.insert(
            role,
            m["initial_token"]["secret"].as_str().unwrap().to_owned(),
        );
        if role == "owner" {
            owner_user = m["user_id"].as_str().unwrap().to_owned();
        }
    }
    let owner = tokens["owner"].clone();
    let owner_tokens = app.get("/v1/tokens", &owner).await.body;
    let owner_token_id = owner_tokens[0]["id"].as_str().unwrap().to_owned();
    let dev = tokens["developer"].clone();
    let draft_api = id(&app.create("/v1/apis", &dev, json!({"org_id": org_id, "slug": "draft", "name": "Draft", "base_path": format!("/{slug}/draft"), "upstreams": ["http://127.0.0.1:9"], "openapi": petstore()})).await);
    let published_api = id(&app.create("/v1/apis", &dev, json!({"org_id": org_id, "slug": "pub", "name": "Pub", "base_path": format!("/{slug}/pub"), "upstreams": ["http://127.0.0.1:9"], "openapi": petstore()})).await);
    app.ok_patch(
        &format!("/v1/apis/{published_api}"),
        &dev,
        json!({"status": "published"}),
    )
    .await;
    let private_plan = id(&app.create("/v1/plans", &owner, json!({"org_id": org_id, "slug": "private", "name": "Private", "visibility": "private", "apis": [{"api_id": draft_api}]})).await);
    let public_plan = id(&app.create("/v1/plans", &owner, json!({"org_id": org_id, "slug": "public", "name": "Public", "visibility": "public", "apis": [{"api_id": published_api, "operations": ["listPets"]}]})).await);
    app.ok_patch(
        &format!("/v1/plans/{public_plan}"),
        &owner,
        json!({"status": "published"}),
    )
    .await;
    let app_id = id(&app
        .create(
            "/v1/apps",
            &dev,
            json!({"org_id": org_id, "slug": "app", "name": "App"}),
        )
        .await);
    let subscription = id(&app
        .create(
            "/v1/subscriptions",
            &dev,
            json!({"app_id": app_id, "plan_id": public_plan}),
        )
        .await);
    let draft_terms = id(&app
        .create(
            "/v1/terms",
            &owner,
            json!({"org_id": org_id, "document": crate::terms::sheet("0.1.0", 100)}),
        )
        .await);
    let api_key = id(&app
        .create(
            &format!("/v1/apps/{app_id}/keys"),
            &dev,
            json!({"name": "ci", "mode": "live", "expires_in_days": 30}),
        )
        .await);
    let oauth_client = id(&app
        .create(
            &format!("/v1/apps/{app_id}/oauth-clients"),
            &dev,
            json!({"name": "ci", "auth_method": "client_secret_basic", "scopes": ["pets:read"]}),
        )
        .await);
    Tenant {
        oauth_client,
        api_key,
        draft_terms,
        org: org_id,
        owner,
        owner_user,
        owner_token_id,
        admin: tokens["admin"].clone(),
        developer: dev,
        billing: tokens["billing"].clone(),
        auditor: tokens["auditor"].clone(),
        draft_api,
        published_api,
        private_plan,
        public_plan,
        app: app_id,
        subscription,
    }
}

/// Runs `f` on a fresh app for each available backend.
pub async fn on_each_backend<F, Fut>(f: F)
where
    F: Fn(App) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let backends: Vec<(Store, TestDb)> = each_backend().await;
    for (store, db) in backends {
        let backend = store.backend();
        eprintln!("backend: {backend:?}");
        f(App::new(store.clone()).await).await;
        store.close().await;
        db.cleanup().await;
    }
}

/// Validates a response body against the schema `/openapi.json` declares for it.
pub fn validate_body(doc: &Value, method: &str, template: &str, status: &str, r: &Reply) {
    let content = &doc["paths"][template][method]["responses"][status]["content"];
    let ct = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let declared = content
        .as_object()
        .map(|c| c.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(
        declared.iter().any(|d| ct.starts_with(d.as_str())),
        "{method} {template} {status}: content type {ct} not among {declared:?}"
    );
    let schema = &content[ct.split(';').next().unwrap()]["schema"];
    if schema.is_null() {
        return; // e.g. an HTML page: the content type is all there is to check.
    }
    // Component refs resolve against a root that carries the document's components.
    let root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [schema], "components": doc["components"]});
    let validator = jsonschema::validator_for(&root)
        .unwrap_or_else(|e| panic!("schema of {method} {template} {status}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&r.body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} {status}: body does not match /openapi.json: {errors:?}\n{}",
        r.body
    );
}
