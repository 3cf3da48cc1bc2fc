//! Tenant isolation, generated from `/openapi.json`: every route with a path parameter,
//! called by another org's owner with the ids of org A's objects, answers 404 — so a
//! route added without an entry here fails the test.

use crate::harness::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// A value for each path parameter, taken from tenant A.
fn param(a: &Tenant, name: &str) -> Option<String> {
    Some(match name {
        "org_id" => a.org.clone(),
        "user_id" => a.owner_user.clone(),
        "api_id" => a.draft_api.clone(),
        "plan_id" => a.private_plan.clone(),
        "app_id" => a.app.clone(),
        "subscription_id" => a.subscription.clone(),
        "token_id" => a.owner_token_id.clone(),
        "terms_id" => a.draft_terms.clone(),
        "acceptance_id" => "00000000-0000-7000-8000-000000000000".to_owned(),
        "key_id" => a.api_key.clone(),
        "client_id" => a.oauth_client.clone(),
        "signing_key_id" => "00000000-0000-7000-8000-000000000000".to_owned(),
        "purpose" => "token_signing".to_owned(),
        "log" => "live".to_owned(),
        "endpoint_id" => "00000000-0000-7000-8000-000000000000".to_owned(),
        "invoice_id" => "inv_0000000000000000000000000000000".to_owned(),
        "clock_id" => "clock_0000000000000000000000000000000".to_owned(),
        "payout_id" => "po_0000000000000000000000000000000".to_owned(),
        "sha256" => "0".repeat(64),
        _ => return None,
    })
}

/// A well-formed body per operation, so that the answer is decided by visibility and
/// not by validation.
fn body(method: &Method, path: &str, a: &Tenant) -> Option<Value> {
    Some(match (method.as_str(), path) {
        ("GET" | "DELETE", _) => return None,
        ("POST", "/v1/terms/{terms_id}/publish") => return None,
        ("POST", "/v1/apps/{app_id}/keys/{key_id}/revoke") => return None,
        ("POST", "/v1/apps/{app_id}/keys") => {
            json!({"name": "x", "mode": "live", "expires_in_days": 30})
        }
        ("POST", "/v1/apps/{app_id}/keys/{key_id}/rotate") => json!({}),
        ("POST", "/v1/apps/{app_id}/oauth-clients") => {
            json!({"name": "x", "auth_method": "client_secret_basic"})
        }
        ("POST", "/v1/apps/{app_id}/oauth-clients/{client_id}/revoke") => return None,
        ("POST", "/v1/apps/{app_id}/signing-keys/{signing_key_id}/revoke") => return None,
        ("POST", "/v1/apps/{app_id}/signing-keys") => {
            json!({"name": "x", "alg": "ed25519", "public_key_pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n", "expires_in_days": 30})
        }
        ("PATCH", "/v1/orgs/{org_id}") => json!({"name": "pwned"}),
        ("PATCH", "/v1/users/{user_id}") => json!({"marketplace_role": "operator"}),
        ("POST", "/v1/orgs/{org_id}/members") => {
            json!({"email": "mallory@evil.example", "role": "owner"})
        }
        ("PATCH", "/v1/orgs/{org_id}/members/{user_id}") => json!({"role": "auditor"}),
        ("PATCH", "/v1/apis/{api_id}") => json!({"name": "pwned"}),
        ("PUT", "/v1/apis/{api_id}/openapi") => petstore(),
        ("PATCH", "/v1/plans/{plan_id}") => json!({"name": "pwned"}),
        ("PATCH", "/v1/apps/{app_id}") => json!({"name": "pwned"}),
        ("POST", "/v1/subscriptions/{subscription_id}/transitions") => {
            json!({"to": "cancelled", "reason": "pwned"})
        }
        ("POST", "/v1/keys/{purpose}/rotate") => json!({}),
        ("POST", "/v1/usage/events") => json!([]),
        ("POST", "/v1/orgs/{org_id}/webhook-endpoints") => {
            json!({"url": "https://hooks.example/x"})
        }
        ("POST", "/v1/orgs/{org_id}/webhook-endpoints/{endpoint_id}/rotate-secret") => return None,
        ("POST", "/v1/invoices/{invoice_id}/pay" | "/v1/invoices/{invoice_id}/void") => {
            return None;
        }
        ("POST", "/v1/invoices/{invoice_id}/credit-notes") => {
            json!({"amount": "1.00", "reason": "x"})
        }
        ("POST", "/v1/subscriptions/{subscription_id}/test-clock") => {
            json!({"test_clock_id": "clock_x"})
        }
        ("POST", "/v1/test-clocks/{clock_id}/advance") => {
            json!({"frozen_time": "2030-01-01T00:00:00Z"})
        }
        ("POST", "/v1/orgs/{org_id}/wallet") => {
            json!({"currency": "USD", "amount": "1.00", "reason": "x"})
        }
        ("PUT", "/v1/orgs/{org_id}/billing-account") => json!({"tax_rates": []}),
        ("POST", "/v1/billing/close") => return None,
        ("POST", "/v1/subscriptions/{subscription_id}/cancel-at-period-end") => {
            json!({"reason": "x"})
        }
        ("POST", "/v1/orgs/{org_id}/price-books") => {
            json!({"price_book": {"id": "x", "version": "1", "currency": "USD"}})
        }
        ("POST", "/v1/subscriptions/{subscription_id}/change-plan") => {
            json!({"plan_id": a.public_plan, "accept_terms": "00"})
        }
        ("POST", "/v1/subscriptions/{subscription_id}/coupons") => {
            json!({"coupon": {"id": "x", "discount": {"type": "percent", "percent": "10"}}})
        }
        ("POST", "/v1/billing/quote") => {
            json!({"price_book": {"id": "q", "version": "1", "currency": "USD",
            "base_fee": {"amount": "1.00"}}, "usage": {}})
        }
        ("PUT", "/v1/billing/settings") => {
            json!({"marketplace_fee": {"model": "percentage", "percent": "0"}})
        }
        ("POST", "/v1/payouts") => json!({"provider_org_id": a.org, "currency": "USD",
            "period_start": "2026-01-01T00:00:00Z", "period_end": "2026-02-01T00:00:00Z"}),
        ("POST", "/v1/test-clocks") => {
            json!({"org_id": a.org, "name": "x", "frozen_time": "2026-01-01T00:00:00Z"})
        }
        ("POST", "/v1/subscriptions/{subscription_id}/acceptances") => {
            json!({"terms_sha256": "00"})
        }
        _ => panic!(
            "no body fixture for {method} {path}: add one to the isolation matrix ({})",
            a.org
        ),
    })
}

/// Required query parameters, from tenant A.
fn with_query(url: &str, a: &Tenant) -> String {
    if url.ends_with("/diff") {
        format!("{url}?from={}", a.draft_terms)
    } else {
        url.to_owned()
    }
}

/// Routes that take no object of an org: public by design, or (ledger entries) filtered
/// per caller — the ledger test checks that another org reads none of an org's entries.
const PUBLIC: &[&str] = &[
    "/problems/{slug}",
    "/v1/ledger/{log}",
    "/v1/ledger/{log}/checkpoint",
    "/v1/ledger/{log}/checkpoints",
    "/v1/ledger/{log}/public-key",
    "/v1/ledger/{log}/proof/inclusion",
    "/v1/ledger/{log}/proof/consistency",
    "/v1/ledger/{log}/entries",
];

#[tokio::test]
async fn every_object_route_answers_404_to_another_org() {
    on_each_backend(|app| async move {
        let a = tenant(&app, "alpha").await;
        let b = tenant(&app, "bravo").await;
        let paths = app.openapi["paths"].as_object().unwrap().clone();
        let mut checked = 0;
        for (path, item) in &paths {
            if !path.contains('{') || PUBLIC.contains(&path.as_str()) {
                continue;
            }
            for method in item.as_object().unwrap().keys() {
                let m: Method = method.to_uppercase().parse().unwrap();
                let mut url = path.clone();
                for seg in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = &seg[1..seg.len() - 1];
                    let v = param(&a, name).unwrap_or_else(|| panic!("no fixture for path parameter {name} of {path}: add one to the isolation matrix"));
                    url = url.replace(seg, &v);
                }
                let url = with_query(&url, &a);
                let r = app.call(m.clone(), &url, Some(&b.owner), body(&m, path, &a), &[]).await;
                assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {path} as another org: {}", r.body);
                assert_eq!(r.body["type"], "https://tollgate.dev/problems/not-found", "{m} {path}");
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} routes checked");

        // Nothing of A changed.
        let org = app.get(&format!("/v1/orgs/{}", a.org), &a.owner).await;
        assert_eq!(org.body["name"], "alpha");
        let members = app.get(&format!("/v1/orgs/{}/members", a.org), &a.owner).await.body;
        assert!(!members.to_string().contains("mallory"));

        // Collections: B's lists hold none of A's private objects, but do hold A's catalog.
        let lists = [
            ("/v1/orgs", vec![a.org.clone()]),
            ("/v1/apis", vec![a.draft_api.clone()]),
            ("/v1/plans", vec![a.private_plan.clone()]),
            ("/v1/apps", vec![a.app.clone()]),
            ("/v1/subscriptions", vec![a.subscription.clone()]),
            ("/v1/audit", vec![a.org.clone()]),
        ];
        for (path, hidden) in lists {
            let r = app.get(path, &b.owner).await;
            assert_eq!(r.status, StatusCode::OK, "{path}");
            let text = r.body.to_string();
            for h in hidden {
                assert!(!text.contains(&h), "{path} shows another org's object {h}");
            }
        }
        let catalog = app.get("/v1/apis", &b.owner).await.body.to_string();
        assert!(catalog.contains(&a.published_api), "published APIs are the catalog");
        let plans = app.get("/v1/plans", &b.owner).await.body.to_string();
        assert!(plans.contains(&a.public_plan), "public published plans are the catalog");
        assert_eq!(app.get(&format!("/v1/apis/{}", a.published_api), &b.owner).await.status, StatusCode::OK);
        assert_eq!(app.get(&format!("/v1/plans/{}", a.public_plan), &b.owner).await.status, StatusCode::OK);
        // …but reading is not changing: B cannot edit A's published API.
        let r = app.patch(&format!("/v1/apis/{}", a.published_api), &b.owner, json!({"name": "pwned"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

        // Creating objects inside A by naming its org id in the body is refused alike.
        for (path, body) in [
            ("/v1/apis", json!({"org_id": a.org, "slug": "x", "name": "X", "base_path": "/x/y", "upstreams": ["http://127.0.0.1:9"]})),
            ("/v1/plans", json!({"org_id": a.org, "slug": "x", "name": "X", "visibility": "public", "apis": [{"api_id": a.published_api}]})),
            ("/v1/apps", json!({"org_id": a.org, "slug": "x", "name": "X"})),
        ] {
            let r = app.post(path, &b.owner, body).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "POST {path}: {}", r.body);
        }
        // B cannot subscribe A's app.
        let r = app.post("/v1/subscriptions", &b.owner, json!({"app_id": a.app, "plan_id": b.public_plan})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    })
    .await;
}

#[tokio::test]
async fn a_subscription_is_visible_to_its_consumer_and_its_provider_only() {
    on_each_backend(|app| async move {
        let p = tenant(&app, "prov").await;
        let c = tenant(&app, "cons").await;
        let x = tenant(&app, "other").await;
        let sub = app
            .create(
                "/v1/subscriptions",
                &c.developer,
                json!({"app_id": c.app, "plan_id": p.public_plan}),
            )
            .await;
        let sid = id(&sub);
        assert_eq!(sub["state"], "active");
        assert_eq!(
            app.get(&format!("/v1/subscriptions/{sid}"), &c.auditor)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            app.get(&format!("/v1/subscriptions/{sid}"), &p.billing)
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            app.get(&format!("/v1/subscriptions/{sid}"), &x.owner)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // The provider sees the subscription, not the consumer's app.
        assert_eq!(
            app.get(&format!("/v1/apps/{}", c.app), &p.owner)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
    })
    .await;
}

/// Every route, called by the operator with real ids and well-formed bodies, answers a
/// status declared in `/openapi.json` with a body matching the declared schema.
#[tokio::test]
async fn every_route_answers_as_its_openapi_document_says() {
    on_each_backend(|app| async move {
        let a = tenant(&app, "alpha").await;
        let paths = app.openapi["paths"].as_object().unwrap().clone();
        let mut successes = 0;
        // Reads first, then writes, deletes last, so later calls still find their objects.
        let order = |m: &str| match m { "get" => 0, "post" | "put" | "patch" => 1, _ => 2 };
        let mut calls: Vec<(String, String)> = paths.iter().flat_map(|(p, item)| item.as_object().unwrap().keys().map(move |m| (m.clone(), p.clone()))).collect();
        calls.sort_by_key(|(m, p)| (order(m), p.clone()));
        for (method, path) in calls {
            let m: Method = method.to_uppercase().parse().unwrap();
            let mut url = path.clone();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = &seg[1..seg.len() - 1];
                let v = if name == "slug" { "not-found".to_owned() } else { param(&a, name).unwrap() };
                url = url.replace(seg, &v);
            }
            let body = match (method.as_str(), path.as_str()) {
                ("post", "/v1/orgs") => Some(json!({"slug": "sweep", "name": "Sweep", "kind": "consumer"})),
                ("post", "/v1/apis") => Some(json!({"org_id": a.org, "slug": "sweep", "name": "S", "base_path": "/sweep/x", "upstreams": ["http://127.0.0.1:9"]})),
                ("post", "/v1/plans") => Some(json!({"org_id": a.org, "slug": "sweep", "name": "S", "visibility": "public", "apis": [{"api_id": a.published_api}]})),
                ("post", "/v1/apps") => Some(json!({"org_id": a.org, "slug": "sweep", "name": "S"})),
                ("post", "/v1/subscriptions") => Some(json!({"app_id": a.app, "plan_id": a.private_plan})),
                ("post", "/v1/tokens") => Some(json!({"name": "sweep"})),
                ("post", "/v1/subscriptions/import") => Some(json!({"app_id": a.app, "plan_id": a.private_plan, "state": "active", "acceptances": []})),
                ("post", "/v1/terms") => Some(json!({"org_id": a.org, "document": crate::terms::sheet("7.0.0", 10)})),
                ("patch", "/v1/users/{user_id}") => Some(json!({"marketplace_role": "auditor"})),
                ("patch", "/v1/orgs/{org_id}/members/{user_id}") => Some(json!({"role": "owner"})),
                (_, p) if !p.contains('{') && method == "get" => None,
                _ => body(&m, &path, &a),
            };
            let url = with_query(&url, &a);
            let r = app.call(m, &url, Some(OPERATOR_TOKEN), body, &[]).await;
            let status = r.status.as_u16().to_string();
            let declared: Vec<String> = app.openapi["paths"][&path][&method]["responses"].as_object().unwrap().keys().cloned().collect();
            assert!(declared.contains(&status), "{method} {path} answered {status}, not declared: {}", r.body);
            if r.status != StatusCode::NO_CONTENT {
                validate_body(&app.openapi, &method, &path, &status, &r);
            }
            if r.status.is_success() {
                successes += 1;
            }
        }
        assert!(successes >= 25, "only {successes} routes succeeded");
    })
    .await;
}
