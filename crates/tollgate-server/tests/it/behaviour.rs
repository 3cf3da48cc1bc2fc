//! What users rely on: roles, idempotency, optimistic concurrency, clear errors for bad
//! input with nothing half-written, lifecycles, audit, tokens, and the live snapshot.

use crate::harness::*;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tollgate_core::model::{AUDIT_GENESIS, AuditEntry, verify_audit_chain};

fn problem_type(r: &Reply) -> &str {
    r.body["type"].as_str().unwrap_or("")
}

#[tokio::test]
async fn roles_limit_what_members_do() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "acme").await;
        let api = format!("/v1/apis/{}", t.draft_api);
        // Developers manage APIs; billing and auditors do not.
        assert_eq!(
            app.patch(&api, &t.developer, json!({"description": "by dev"}))
                .await
                .status,
            StatusCode::OK
        );
        for token in [&t.billing, &t.auditor] {
            let r = app.patch(&api, token, json!({"description": "no"})).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            assert_eq!(problem_type(&r), "https://tollgate.dev/problems/forbidden");
        }
        // Plans are managed by admins and owners, not developers.
        let r = app
            .patch(
                &format!("/v1/plans/{}", t.private_plan),
                &t.developer,
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            app.patch(
                &format!("/v1/plans/{}", t.private_plan),
                &t.admin,
                json!({"name": "x"})
            )
            .await
            .status,
            StatusCode::OK
        );
        // Members: admins add non-owners; only owners grant ownership.
        let members = format!("/v1/orgs/{}/members", t.org);
        assert_eq!(
            app.post(
                &members,
                &t.admin,
                json!({"email": "new@acme.example", "role": "developer"})
            )
            .await
            .status,
            StatusCode::CREATED
        );
        assert_eq!(
            app.post(
                &members,
                &t.admin,
                json!({"email": "boss@acme.example", "role": "owner"})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.post(
                &members,
                &t.developer,
                json!({"email": "x@acme.example", "role": "auditor"})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        // The last owner can be neither demoted nor removed.
        let owner = format!("{members}/{}", t.owner_user);
        let r = app.patch(&owner, &t.owner, json!({"role": "admin"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(
            app.call(Method::DELETE, &owner, Some(&t.owner), None, &[])
                .await
                .status,
            StatusCode::CONFLICT
        );
        // Only owners delete an org (and only an empty one).
        let org = format!("/v1/orgs/{}", t.org);
        assert_eq!(
            app.call(Method::DELETE, &org, Some(&t.admin), None, &[])
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.call(Method::DELETE, &org, Some(&t.owner), None, &[])
                .await
                .status,
            StatusCode::CONFLICT
        );
        // Operators make marketplace auditors, who read every org but change nothing.
        let me = app.get("/v1/me", &t.billing).await.body;
        let uid = me["user"]["id"].as_str().unwrap().to_owned();
        assert_eq!(
            app.patch(
                &format!("/v1/users/{uid}"),
                &t.owner,
                json!({"marketplace_role": "auditor"})
            )
            .await
            .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            app.patch(
                &format!("/v1/users/{uid}"),
                OPERATOR_TOKEN,
                json!({"marketplace_role": "auditor"})
            )
            .await
            .status,
            StatusCode::OK
        );
        let other = tenant(&app, "other").await;
        assert_eq!(
            app.get(&format!("/v1/apps/{}", other.app), &t.billing)
                .await
                .status,
            StatusCode::OK,
            "marketplace auditors read every org"
        );
        assert_eq!(
            app.patch(
                &format!("/v1/apps/{}", other.app),
                &t.billing,
                json!({"name": "x"})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        assert!(
            app.get("/v1/audit", &t.billing)
                .await
                .body
                .to_string()
                .contains(&other.org),
            "and the whole audit log"
        );
        assert_eq!(
            app.patch(
                &format!("/v1/users/{uid}"),
                &t.billing,
                json!({"marketplace_role": "operator"})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        // Auditors read the audit log; developers read none of it.
        let audit = app.get("/v1/audit", &t.auditor).await;
        assert!(!audit.body["items"].as_array().unwrap().is_empty());
        assert!(
            app.get("/v1/audit", &t.developer).await.body["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn idempotent_replays_keep_created_secrets_sealed_at_rest() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "idsec").await;
        let path = format!("/v1/apps/{}/keys", t.app);
        let body = json!({"name": "ci", "mode": "live", "expires_in_days": 30});
        let key = [("idempotency-key", "key-ci-1")];
        let first = app
            .call(
                Method::POST,
                &path,
                Some(&t.developer),
                Some(body.clone()),
                &key,
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let secret = first.body["secret"].as_str().unwrap().to_owned();
        // The replay still shows the secret (the client's retry must get its response)…
        let again = app
            .call(Method::POST, &path, Some(&t.developer), Some(body), &key)
            .await;
        assert_eq!(again.body, first.body);
        // …but the stored response is sealed: the secret is nowhere in the row.
        let mut tx = app.state.store.read().await.unwrap();
        let rec = tx
            .get_idempotency(&app.state.token_digest(&t.developer), "key-ci-1")
            .await
            .unwrap()
            .unwrap();
        let stored = rec.response_body.unwrap();
        assert!(stored.starts_with("sealed:v1:"), "{stored}");
        assert!(!stored.contains(&secret));
    })
    .await;
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_other_bodies() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "idem").await;
        let body = json!({"org_id": t.org, "slug": "mobile", "name": "Mobile"});
        let key = [("idempotency-key", "create-mobile-1")];
        let first = app
            .call(
                Method::POST,
                "/v1/apps",
                Some(&t.developer),
                Some(body.clone()),
                &key,
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let again = app
            .call(
                Method::POST,
                "/v1/apps",
                Some(&t.developer),
                Some(body.clone()),
                &key,
            )
            .await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body, "the same response is replayed");
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        assert_eq!(
            again.headers.get(header::ETAG),
            first.headers.get(header::ETAG)
        );
        let apps = app
            .get(&format!("/v1/apps?org_id={}", t.org), &t.developer)
            .await
            .body;
        assert_eq!(
            apps["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["slug"] == "mobile")
                .count(),
            1,
            "created once"
        );
        let other = app
            .call(
                Method::POST,
                "/v1/apps",
                Some(&t.developer),
                Some(json!({"org_id": t.org, "slug": "other", "name": "Other"})),
                &key,
            )
            .await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            problem_type(&other),
            "https://tollgate.dev/problems/idempotency-key-reused"
        );
        // Keys belong to the credential that used them.
        let r = app
            .call(
                Method::POST,
                "/v1/apps",
                Some(&t.admin),
                Some(json!({"org_id": t.org, "slug": "admin-app", "name": "A"})),
                &key,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        // A failed request's stored answer is replayed too (same key, same body).
        let bad = json!({"org_id": t.org, "slug": "Bad Slug", "name": "x"});
        let k2 = [("idempotency-key", "bad-1")];
        let r1 = app
            .call(
                Method::POST,
                "/v1/apps",
                Some(&t.developer),
                Some(bad.clone()),
                &k2,
            )
            .await;
        let r2 = app
            .call(Method::POST, "/v1/apps", Some(&t.developer), Some(bad), &k2)
            .await;
        assert_eq!(
            (r1.status, r2.status),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                StatusCode::UNPROCESSABLE_ENTITY
            )
        );
        assert_eq!(r1.body["errors"], r2.body["errors"]);
        // Housekeeping forgets nothing younger than 24 hours.
        let (forgotten, _) = tollgate_server::jobs::run_once(&app.state).await.unwrap();
        assert_eq!(forgotten, 0);
        let again = app
            .call(
                Method::POST,
                "/v1/apps",
                Some(&t.developer),
                Some(body.clone()),
                &key,
            )
            .await;
        assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        // After 24 hours the key is forgotten and the request runs again (here: a conflict,
        // since the app exists).
        app.clock.advance(time::Duration::hours(25));
        let (forgotten, _) = tollgate_server::jobs::run_once(&app.state).await.unwrap();
        assert!(forgotten >= 3, "{forgotten}");
        let late = app
            .call(
                Method::POST,
                "/v1/apps",
                Some(&t.developer),
                Some(body.clone()),
                &key,
            )
            .await;
        assert!(late.headers.get("idempotent-replayed").is_none());
        assert_eq!(late.status, StatusCode::CONFLICT);
    })
    .await;
}

#[tokio::test]
async fn stale_if_match_is_412_and_changes_nothing() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "etag").await;
        let path = format!("/v1/apps/{}", t.app);
        let read = app.get(&path, &t.developer).await;
        let etag = read
            .headers
            .get(header::ETAG)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(etag, format!("\"{}\"", read.body["revision"]));
        let ok = app
            .call(
                Method::PATCH,
                &path,
                Some(&t.developer),
                Some(json!({"name": "First"})),
                &[("if-match", &etag)],
            )
            .await;
        assert_eq!(ok.status, StatusCode::OK);
        let stale = app
            .call(
                Method::PATCH,
                &path,
                Some(&t.developer),
                Some(json!({"name": "Second"})),
                &[("if-match", &etag)],
            )
            .await;
        assert_eq!(
            stale.status,
            StatusCode::PRECONDITION_FAILED,
            "{}",
            stale.body
        );
        assert_eq!(
            problem_type(&stale),
            "https://tollgate.dev/problems/precondition-failed"
        );
        assert_eq!(app.get(&path, &t.developer).await.body["name"], "First");
        let fresh = ok
            .headers
            .get(header::ETAG)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.call(
                Method::PATCH,
                &path,
                Some(&t.developer),
                Some(json!({"name": "Third"})),
                &[("if-match", &fresh)]
            )
            .await
            .status,
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_problem_and_leaves_nothing_behind() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "bad").await;
        let audit_before = app.get("/v1/audit?limit=500", OPERATOR_TOKEN).await.body["items"].as_array().unwrap().len();
        let send = |body: Body, ct: &str| {
            Request::builder().method(Method::POST).uri("/v1/apis").header(header::AUTHORIZATION, format!("Bearer {}", t.developer)).header(header::CONTENT_TYPE, ct).body(body).unwrap()
        };
        // Malformed JSON → 400.
        let r = app.raw(send(Body::from("{\"slug\": "), "application/json")).await;
        assert_eq!((r.status, problem_type(&r)), (StatusCode::BAD_REQUEST, "https://tollgate.dev/problems/bad-request"));
        // Wrong content type → 415.
        let r = app.raw(send(Body::from("slug=x"), "application/x-www-form-urlencoded")).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Wrong type → 422 pointing at the field.
        let r = app.post("/v1/apis", &t.developer, json!({"org_id": t.org, "slug": "w", "name": "W", "base_path": "/w/x", "upstreams": "http://x"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["pointer"], "/upstreams");
        // Unknown field → 422 naming it.
        let r = app.post("/v1/apis", &t.developer, json!({"org_id": t.org, "slug": "w", "name": "W", "base_path": "/w/x", "upstreams": ["http://x"], "colour": "red"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["pointer"], "/colour");
        // Several invalid fields → all listed at once.
        let r = app.post("/v1/apis", &t.developer, json!({"org_id": t.org, "slug": "W W", "name": "", "base_path": "nope", "upstreams": ["ftp://x"]})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let pointers: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
        assert_eq!(pointers, ["/slug", "/name", "/base_path", "/upstreams/0"]);
        // Oversized body → 413.
        let big = format!("{{\"description\": \"{}\"}}", "x".repeat(5 * 1024 * 1024));
        let r = app.raw(send(Body::from(big), "application/json")).await;
        assert_eq!((r.status, problem_type(&r)), (StatusCode::PAYLOAD_TOO_LARGE, "https://tollgate.dev/problems/payload-too-large"));
        // Invalid OpenAPI → 422 invalid-openapi with pointers into the document, and no API.
        let mut doc = petstore();
        doc["openapi"] = json!("2.0");
        let r = app.post("/v1/apis", &t.developer, json!({"org_id": t.org, "slug": "bad-doc", "name": "B", "base_path": "/bad/doc", "upstreams": ["http://127.0.0.1:9"], "openapi": doc})).await;
        assert_eq!((r.status, problem_type(&r)), (StatusCode::UNPROCESSABLE_ENTITY, "https://tollgate.dev/problems/invalid-openapi"), "{}", r.body);
        assert_eq!(r.body["errors"][0]["pointer"], "/openapi");
        let r = app.call(Method::PUT, &format!("/v1/apis/{}/openapi", t.draft_api), Some(&t.developer), Some(json!({"openapi": "3.1.0", "info": {"title": "x", "version": "1"}, "paths": {"/a/{id}": {"get": {}}}})), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(app.get(&format!("/v1/apis/{}/operations", t.draft_api), &t.developer).await.body.as_array().unwrap().len(), 2, "operations unchanged");
        // Unknown route and bad ids → 404 problems, not 500s.
        for path in ["/v1/nothing", "/v1/apis/not-a-uuid", "/v1/apps/00000000-0000-0000-0000-000000000000"] {
            let r = app.get(path, &t.developer).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(r.headers.get(header::CONTENT_TYPE).unwrap(), "application/problem+json");
        }
        // Bad query → 400 / 422.
        assert_eq!(app.get("/v1/apis?limit=abc", &t.developer).await.status, StatusCode::BAD_REQUEST);
        assert_eq!(app.get("/v1/apis?limit=0", &t.developer).await.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.get("/v1/apis?colour=red", &t.developer).await.status, StatusCode::BAD_REQUEST);
        // Nothing was written by any of it.
        let audit_after = app.get("/v1/audit?limit=500", OPERATOR_TOKEN).await.body["items"].as_array().unwrap().len();
        assert_eq!(audit_before, audit_after);
        let apis = app.get(&format!("/v1/apis?org_id={}", t.org), &t.developer).await.body;
        assert_eq!(apis["items"].as_array().unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn credentials_are_checked() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "cred").await;
        for (auth, why) in [
            (None, "missing"),
            (Some("Bearer "), "empty"),
            (Some("Basic abc"), "scheme"),
            (Some("Bearer tgp_nope"), "unknown"),
        ] {
            let mut req = Request::builder().uri("/v1/orgs");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let r = app.raw(req.body(Body::empty()).unwrap()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}");
            assert_eq!(
                problem_type(&r),
                "https://tollgate.dev/problems/unauthenticated"
            );
            assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
        }
        // Tokens expire.
        let short = app
            .create(
                "/v1/tokens",
                &t.developer,
                json!({"name": "short", "expires_in_days": 1}),
            )
            .await;
        let short = short["secret"].as_str().unwrap().to_owned();
        assert_eq!(app.get("/v1/me", &short).await.status, StatusCode::OK);
        app.clock.advance(time::Duration::days(2));
        let r = app.get("/v1/me", &short).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body["detail"].as_str().unwrap().contains("expired"));
        // A token made and revoked stops working at once.
        let made = app
            .create(
                "/v1/tokens",
                &t.developer,
                json!({"name": "ci", "expires_in_days": 1}),
            )
            .await;
        let secret = made["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("tgp_"));
        assert_eq!(app.get("/v1/me", &secret).await.status, StatusCode::OK);
        let listed = app.get("/v1/tokens", &t.developer).await.body.to_string();
        assert!(!listed.contains(&secret), "secrets are never listed");
        let r = app
            .call(
                Method::DELETE,
                &format!("/v1/tokens/{}", made["id"].as_str().unwrap()),
                Some(&t.developer),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get("/v1/me", &secret).await.status,
            StatusCode::UNAUTHORIZED
        );
        // Health, readiness, the OpenAPI document and problem pages need no credential.
        for path in [
            "/healthz",
            "/readyz",
            "/openapi.json",
            "/problems/not-found",
            "/schemas/terms/v1.json",
        ] {
            let r = app
                .raw(Request::builder().uri(path).body(Body::empty()).unwrap())
                .await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
        }
    })
    .await;
}

#[tokio::test]
async fn lifecycles_and_the_live_snapshot() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "life").await;
        let api = format!("/v1/apis/{}", t.draft_api);
        let v0 = app.state.snapshot.load().version();
        assert!(app.state.snapshot.load().route("any", "/life/draft/pets").is_none(), "drafts are not routed");
        app.ok_patch(&api, &t.developer, json!({"status": "published"})).await;
        assert!(app.state.snapshot.load().version() > v0);
        assert!(app.state.snapshot.load().route("any", "/life/draft/pets").is_some(), "published is routed when the PATCH returns");
        let r = app.patch(&api, &t.developer, json!({"status": "deprecated"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "deprecation needs a sunset: {}", r.body);
        app.ok_patch(&api, &t.developer, json!({"status": "deprecated", "sunset": "2030-01-01T00:00:00Z"})).await;
        app.ok_patch(&api, &t.developer, json!({"status": "retired"})).await;
        assert!(app.state.snapshot.load().route("any", "/life/draft/pets").is_none(), "retired is not routed");
        let r = app.patch(&api, &t.developer, json!({"status": "published"})).await;
        assert_eq!((r.status, problem_type(&r)), (StatusCode::CONFLICT, "https://tollgate.dev/problems/invalid-transition"));
        // Base paths are unique among live APIs.
        let r = app.post("/v1/apis", &t.developer, json!({"org_id": t.org, "slug": "dup", "name": "D", "base_path": "/life/pub", "upstreams": ["http://127.0.0.1:9"]})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        // Subscriptions: approval, suspension, reinstatement, cancellation; who and why kept.
        let plan = id(&app.create("/v1/plans", &t.owner, json!({"org_id": t.org, "slug": "gated", "name": "Gated", "visibility": "public", "approval_required": true, "apis": [{"api_id": t.published_api}]})).await);
        app.ok_patch(&format!("/v1/plans/{plan}"), &t.owner, json!({"status": "published"})).await;
        let sub = app.create("/v1/subscriptions", &t.developer, json!({"app_id": t.app, "plan_id": plan, "reason": "need it"})).await;
        assert_eq!(sub["state"], "pending");
        let tr = format!("/v1/subscriptions/{}/transitions", id(&sub));
        let r = app.post(&tr, &t.developer, json!({"to": "active", "reason": "self-approve"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "developers cannot approve: {}", r.body);
        let s = app.create(&tr, &t.admin, json!({"to": "active", "reason": "approved"})).await;
        assert_eq!(s["state"], "active");
        app.create(&tr, &t.admin, json!({"to": "suspended", "reason": "abuse"})).await;
        app.create(&tr, &t.admin, json!({"to": "active", "reason": "resolved"})).await;
        let s = app.create(&tr, &t.developer, json!({"to": "cancelled", "reason": "done"})).await;
        let history: Vec<&str> = s["history"].as_array().unwrap().iter().map(|h| h["reason"].as_str().unwrap()).collect();
        assert_eq!(history, ["need it", "approved", "abuse", "resolved", "done"]);
        let r = app.post(&tr, &t.admin, json!({"to": "active", "reason": "again"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_records_every_mutation_in_a_verifiable_chain() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "aud").await;
        app.ok_patch(
            &format!("/v1/apps/{}", t.app),
            &t.developer,
            json!({"name": "Renamed"}),
        )
        .await;
        let mut entries: Vec<AuditEntry> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("/v1/audit?limit=7&cursor={c}"),
                None => "/v1/audit?limit=7".to_owned(),
            };
            let page = app.get(&url, OPERATOR_TOKEN).await.body;
            entries
                .extend(serde_json::from_value::<Vec<AuditEntry>>(page["items"].clone()).unwrap());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        verify_audit_chain(&entries, AUDIT_GENESIS).unwrap();
        let last = entries.last().unwrap();
        assert_eq!(last.action, "app.update");
        assert_eq!(last.target_id, t.app);
        assert!(
            last.before_sha256.is_some()
                && last.after_sha256.is_some()
                && last.before_sha256 != last.after_sha256
        );
        // Every kind of mutation in the fixture was recorded.
        let actions: std::collections::HashSet<&str> =
            entries.iter().map(|e| e.action.as_str()).collect();
        for a in [
            "org.create",
            "member.add",
            "api.create",
            "api.transition",
            "plan.create",
            "plan.transition",
            "app.create",
            "subscription.create",
            "app.update",
        ] {
            assert!(actions.contains(a), "{a} missing");
        }
        // Each entry carries the request id of the request that made it.
        assert!(entries.iter().all(|e| !e.request_id.is_empty()));
    })
    .await;
}

#[tokio::test]
async fn responses_match_the_openapi_document() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "contract").await;
        let doc = app.openapi.clone();
        let declared = |method: &str, path: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default()
        };
        let calls: Vec<(&str, &str, String, Option<Value>)> = vec![
            ("get", "/v1/orgs", "/v1/orgs".into(), None),
            (
                "get",
                "/v1/orgs/{org_id}",
                format!("/v1/orgs/{}", t.org),
                None,
            ),
            (
                "get",
                "/v1/apis/{api_id}",
                format!("/v1/apis/{}", t.draft_api),
                None,
            ),
            ("get", "/v1/apis/{api_id}", "/v1/apis/nope".into(), None),
            (
                "post",
                "/v1/apps",
                "/v1/apps".into(),
                Some(json!({"org_id": t.org, "slug": "c1", "name": "C"})),
            ),
            (
                "post",
                "/v1/apps",
                "/v1/apps".into(),
                Some(json!({"org_id": t.org, "slug": "c1", "name": "C"})),
            ),
            (
                "post",
                "/v1/apps",
                "/v1/apps".into(),
                Some(json!({"org_id": t.org})),
            ),
            (
                "patch",
                "/v1/plans/{plan_id}",
                format!("/v1/plans/{}", t.private_plan),
                Some(json!({"name": "n"})),
            ),
            ("get", "/v1/subscriptions", "/v1/subscriptions".into(), None),
            ("get", "/v1/audit", "/v1/audit".into(), None),
            ("get", "/v1/keys", "/v1/keys".into(), None),
        ];
        for (method, template, url, body) in calls {
            let m: Method = method.to_uppercase().parse().unwrap();
            let r = app.call(m, &url, Some(&t.owner), body, &[]).await;
            let status = r.status.as_u16().to_string();
            assert!(
                declared(method, template).contains(&status),
                "{method} {template} answered {status}, not declared in /openapi.json"
            );
            if r.status.is_client_error() || r.status.is_server_error() {
                for field in [
                    "type",
                    "title",
                    "status",
                    "detail",
                    "instance",
                    "request_id",
                ] {
                    assert!(
                        r.body.get(field).is_some(),
                        "problem lacks {field}: {}",
                        r.body
                    );
                }
            }
        }
        // The check can fail: a body that breaks the schema is caught.
        let mut r = app.get(&format!("/v1/orgs/{}", t.org), &t.owner).await;
        r.body["revision"] = json!("not a number");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            validate_body(&doc, "get", "/v1/orgs/{org_id}", "200", &r)
        }));
        assert!(caught.is_err(), "a wrong body must not validate");
        // Every operation documents its errors and its security.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{method} {path}: no success response"
                );
                if path.starts_with("/v1/") {
                    assert!(
                        responses.contains_key("401"),
                        "{method} {path}: 401 undocumented"
                    );
                    assert!(
                        op.get("security").is_some(),
                        "{method} {path}: security undocumented"
                    );
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn apps_with_subscription_history_are_kept() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "keep").await;
        let spare = id(&app
            .create(
                "/v1/apps",
                &t.developer,
                json!({"org_id": t.org, "slug": "spare", "name": "Spare"}),
            )
            .await);
        let r = app
            .call(
                Method::DELETE,
                &format!("/v1/apps/{spare}"),
                Some(&t.developer),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            app.get(&format!("/v1/apps/{spare}"), &t.developer)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // The fixture app has an active subscription; cancelled or not, its history stays.
        let r = app
            .call(
                Method::DELETE,
                &format!("/v1/apps/{}", t.app),
                Some(&t.developer),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        app.create(
            &format!("/v1/subscriptions/{}/transitions", t.subscription),
            &t.developer,
            json!({"to": "cancelled", "reason": "done"}),
        )
        .await;
        let r = app
            .call(
                Method::DELETE,
                &format!("/v1/apps/{}", t.app),
                Some(&t.developer),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.body["detail"].as_str().unwrap().contains("history"));
    })
    .await;
}

#[tokio::test]
async fn api_keys_are_shown_once_expire_and_rotate_without_downtime() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "keys").await;
        let base = format!("/v1/apps/{}/keys", t.app);
        // The fixture made one live key; a second is allowed, a third is not.
        let k2 = app.create(&base, &t.developer, json!({"name": "second", "mode": "live", "expires_in_days": 90, "scopes": ["pets:read"], "ip_allowlist": ["203.0.113.0/24", "2001:db8::/32"]})).await;
        let secret = k2["secret"].as_str().unwrap();
        assert!(secret.starts_with("tg_live_") && secret.len() == 36, "{secret}");
        tollgate_core::apikey::parse(secret).expect("checksummed");
        assert_eq!(k2["prefix"].as_str().unwrap(), &secret[..12]);
        let r = app.post(&base, &t.developer, json!({"name": "third", "mode": "live", "expires_in_days": 90})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        // Test keys are counted apart.
        assert_eq!(app.post(&base, &t.developer, json!({"name": "sandbox", "mode": "test", "expires_in_days": 7})).await.status, StatusCode::CREATED);
        // Listing never shows a secret.
        let list = app.get(&base, &t.auditor).await.body;
        assert_eq!(list.as_array().unwrap().len(), 3);
        assert!(!list.to_string().contains(secret));
        // Bad input names every field.
        let r = app.post(&base, &t.developer, json!({"name": "", "mode": "live", "expires_in_days": 0, "ip_allowlist": ["10.0.0.0/33"], "operations": []})).await;
        let pointers: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
        assert_eq!(pointers, ["/name", "/expires_in_days", "/operations", "/ip_allowlist/0"]);
        // Roles: billing reads but cannot make keys.
        assert_eq!(app.post(&base, &t.billing, json!({"name": "b", "mode": "test", "expires_in_days": 1})).await.status, StatusCode::FORBIDDEN);
        // With two usable keys a rotation would make three: refused until one goes.
        let k2_id = k2["id"].as_str().unwrap();
        let r = app.post(&format!("{base}/{k2_id}/rotate"), &t.developer, json!({})).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(app.post(&format!("{base}/{}/revoke", t.api_key), &t.developer, json!(null)).await.status, StatusCode::OK);
        // Rotation with overlap: the old key keeps working until the overlap ends.
        let rotated = app.create(&format!("{base}/{k2_id}/rotate"), &t.developer, json!({"overlap_seconds": 3600})).await;
        assert_ne!(rotated["secret"], k2["secret"]);
        assert_eq!(rotated["scopes"], json!(["pets:read"]), "settings carry over");
        let old = app.get(&base, &t.developer).await.body.as_array().unwrap().iter().find(|k| k["id"] == k2_id).unwrap().clone();
        assert!(old["revoked_at"].is_null());
        let expires: time::OffsetDateTime = time::OffsetDateTime::parse(old["expires_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
        assert!(expires <= tollgate_core::Clock::now(app.clock.as_ref()) + time::Duration::hours(1));
        // Revocation is immediate and audited.
        let revoked = app.post(&format!("{base}/{}/revoke", rotated["id"].as_str().unwrap()), &t.developer, json!(null)).await;
        assert_eq!(revoked.status, StatusCode::OK);
        assert!(revoked.body["revoked_at"].is_string());
        let audit = app.get("/v1/audit?limit=500", OPERATOR_TOKEN).await.body.to_string();
        for a in ["api_key.create", "api_key.rotate", "api_key.rotate_out", "api_key.revoke"] {
            assert!(audit.contains(a), "{a}");
        }
    })
    .await;
}
