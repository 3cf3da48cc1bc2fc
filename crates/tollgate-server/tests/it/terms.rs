//! Term sheets through the admin API: store (validated, content-addressed), publish
//! (compiles to Cedar), offer on a plan, accept by hash with a signed record, diff.

use crate::harness::*;
use base64::Engine as _;
use http::{Method, StatusCode, header};
use serde_json::{Value, json};

/// A sheet granting the harness's `pub` API (petstore operations).
pub fn sheet(version: &str, quota: u64) -> Value {
    sheet_with(version, quota, "suspend")
}

/// [`sheet`] with a given `notice.on_expiry`.
pub fn sheet_with(version: &str, quota: u64, on_expiry: &str) -> Value {
    json!({
        "id": "pets-standard",
        "version": version,
        "title": "Pets API — standard terms",
        "effective": "2026-01-01",
        "jurisdiction": "NL",
        "governing_law": "the laws of the Netherlands",
        "language": "en",
        "sections": [{"id": "use", "title": "Acceptable use", "body": "Be kind to the pets."}],
        "grants": [{"api": "pub", "operations": ["listPets", "getPet"], "scopes": ["pets:read"]}],
        "limits": {"quota": [{"requests": quota, "per": "calendar_month"}]},
        "notice": {"days": 30, "on_expiry": on_expiry}
    })
}

async fn published(app: &App, t: &Tenant, doc: Value) -> Value {
    let created = app
        .create(
            "/v1/terms",
            &t.owner,
            json!({"org_id": t.org, "document": doc}),
        )
        .await;
    let id = id(&created);
    let r = app
        .call(
            Method::POST,
            &format!("/v1/terms/{id}/publish"),
            Some(&t.owner),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn term_sheets_are_validated_content_addressed_and_published() {
    on_each_backend(|app| async move {
        let t = tenant(&app, "terms").await;
        let mut bad = sheet("1.0.0", 1000);
        bad["grants"][0]["operations"] = json!(["listPets", "feedPets"]);
        bad["limits"]["quota"][0]["requests"] = json!(0);
        let r = app
            .post(
                "/v1/terms",
                &t.owner,
                json!({"org_id": t.org, "document": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let pointers: Vec<&str> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert!(
            pointers.contains(&"/document/grants/0/operations/1"),
            "unknown operation named: {pointers:?}"
        );
        assert!(
            pointers
                .iter()
                .any(|p| p.starts_with("/document/limits/quota/0")),
            "zero quota named: {pointers:?}"
        );

        let first = app
            .create(
                "/v1/terms",
                &t.owner,
                json!({"org_id": t.org, "document": sheet("1.0.0", 1000)}),
            )
            .await;
        assert_eq!(first["status"], "draft");
        let sha = first["sha256"].as_str().unwrap().to_owned();
        assert_eq!(sha.len(), 64);
        // The same content, keys in another order, is the same version.
        let mut reordered = serde_json::Map::new();
        for (k, v) in sheet("1.0.0", 1000).as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        let again = app
            .post(
                "/v1/terms",
                &t.owner,
                json!({"org_id": t.org, "document": Value::Object(reordered)}),
            )
            .await;
        assert_eq!(
            (again.status, again.body["id"].clone()),
            (StatusCode::OK, first["id"].clone())
        );
        // Other content under the same version is refused: a change is a new version.
        let r = app
            .post(
                "/v1/terms",
                &t.owner,
                json!({"org_id": t.org, "document": sheet("1.0.0", 2000)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        // Developers cannot write terms; drafts are private, published sheets public.
        assert_eq!(
            app.post(
                "/v1/terms",
                &t.developer,
                json!({"org_id": t.org, "document": sheet("9.0.0", 1)})
            )
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        let other = tenant(&app, "stranger").await;
        let tid = id(&first);
        assert_eq!(
            app.get(&format!("/v1/terms/{tid}"), &other.owner)
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let r = app
            .call(
                Method::POST,
                &format!("/v1/terms/{tid}/publish"),
                Some(&t.owner),
                None,
                &[],
            )
            .await;
        assert_eq!(
            (r.status, r.body["status"].as_str()),
            (StatusCode::OK, Some("published"))
        );
        assert_eq!(
            app.get(&format!("/v1/terms/{tid}"), &other.owner)
                .await
                .status,
            StatusCode::OK
        );
        // Rendered, ODRL and policy views.
        let md = app
            .get(&format!("/v1/terms/{tid}/rendered"), &other.owner)
            .await;
        assert!(
            md.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/markdown")
        );
        assert!(md.body.as_str().unwrap().contains("Acceptable use"));
        let html = app
            .get(
                &format!("/v1/terms/{tid}/rendered?format=html"),
                &other.owner,
            )
            .await;
        assert!(html.body.as_str().unwrap().contains("<h2"));
        let odrl = app
            .get(&format!("/v1/terms/{tid}/odrl"), &other.owner)
            .await;
        assert_eq!(odrl.body["@type"], "Offer");
        assert!(odrl.body["@context"].is_object() || odrl.body["@context"].is_array());
        let cedar = app
            .get(&format!("/v1/terms/{tid}/policy"), &other.owner)
            .await;
        assert!(
            cedar.body.as_str().unwrap().contains("permit"),
            "{}",
            cedar.body
        );
        assert!(cedar.body.as_str().unwrap().contains(&sha));
    })
    .await;
}

#[tokio::test]
async fn subscribing_accepts_terms_with_a_signed_record() {
    on_each_backend(|app| async move {
        let p = tenant(&app, "provider").await;
        let c = tenant(&app, "consumer").await;
        let v1 = published(&app, &p, sheet("1.0.0", 1000)).await;
        let sha1 = v1["sha256"].as_str().unwrap().to_owned();
        let plan = id(&app.create("/v1/plans", &p.owner, json!({"org_id": p.org, "slug": "termed", "name": "Termed", "visibility": "public", "apis": [{"api_id": p.published_api}]})).await);
        // Only published sheets of the plan's org can be offered.
        let draft = app.create("/v1/terms", &p.owner, json!({"org_id": p.org, "document": sheet("1.1.0", 1000)})).await;
        assert_eq!(app.patch(&format!("/v1/plans/{plan}"), &p.owner, json!({"terms_id": id(&draft)})).await.status, StatusCode::UNPROCESSABLE_ENTITY);
        app.ok_patch(&format!("/v1/plans/{plan}"), &p.owner, json!({"terms_id": id(&v1), "status": "published"})).await;

        // Without accepting, or accepting something else: refused, naming the hash.
        let r = app.post("/v1/subscriptions", &c.developer, json!({"app_id": c.app, "plan_id": plan})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.body["errors"][0]["pointer"], "/accept_terms");
        assert!(r.body["errors"][0]["detail"].as_str().unwrap().contains(&sha1));
        let r = app.post("/v1/subscriptions", &c.developer, json!({"app_id": c.app, "plan_id": plan, "accept_terms": "00".repeat(32)})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let sub = app.create("/v1/subscriptions", &c.developer, json!({"app_id": c.app, "plan_id": plan, "accept_terms": sha1})).await;
        assert_eq!(sub["terms_sha256"], sha1);
        let sid = id(&sub);

        // The acceptance is signed by the marketplace's acceptance key and verifies with
        // the published public key; both sides can read it.
        let list = app.get(&format!("/v1/subscriptions/{sid}/acceptances"), &p.billing).await.body;
        let a = &list[0];
        assert_eq!(a["record"]["terms_sha256"], sha1);
        assert_eq!(a["record"]["type"], "tollgate.acceptance.v1");
        let keys = app.get("/v1/keys", OPERATOR_TOKEN).await.body;
        let key = keys.as_array().unwrap().iter().find(|k| k["id"] == a["key_id"]).unwrap();
        assert_eq!(key["purpose"], "acceptance_signing");
        let public = base64::engine::general_purpose::STANDARD.decode(key["public_key"].as_str().unwrap()).unwrap();
        let sig = base64::engine::general_purpose::STANDARD.decode(a["signature"].as_str().unwrap()).unwrap();
        let record: tollgate_core::model::AcceptanceRecord = serde_json::from_value(a["record"].clone()).unwrap();
        tollgate_keyring::verify_ed25519(&public, &record.signing_bytes(), &sig).expect("acceptance signature verifies");
        let agreement = app.get(&format!("/v1/subscriptions/{sid}/acceptances/{}/odrl", a["record"]["id"].as_str().unwrap()), &c.developer).await;
        assert_eq!(agreement.status, StatusCode::OK, "{}", agreement.body);
        assert_eq!(agreement.body["@type"], "Agreement");
        assert!(agreement.body.to_string().contains(&sid), "the assignee is the subscription");
        let mut forged = record.clone();
        forged.terms_sha256 = "ff".repeat(32);
        assert!(tollgate_keyring::verify_ed25519(&public, &forged.signing_bytes(), &sig).is_err());

        // A new version on the plan: the subscription stays on what it accepted until it
        // accepts the new one; the diff says what changed.
        let v2 = published(&app, &p, sheet("2.0.0", 500)).await;
        let sha2 = v2["sha256"].as_str().unwrap().to_owned();
        let diff = app.get(&format!("/v1/terms/{}/diff?from={}", id(&v2), id(&v1)), &c.developer).await.body;
        assert!(diff["changes"].as_array().unwrap().iter().any(|ch| ch["kind"] == "more_restrictive"), "{diff}");
        app.ok_patch(&format!("/v1/plans/{plan}"), &p.owner, json!({"terms_id": id(&v2)})).await;
        assert_eq!(app.get(&format!("/v1/subscriptions/{sid}"), &c.developer).await.body["terms_sha256"], sha1);
        // The provider cannot accept on the consumer's behalf.
        let r = app.post(&format!("/v1/subscriptions/{sid}/acceptances"), &p.owner, json!({"terms_sha256": sha2})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        let r = app.post(&format!("/v1/subscriptions/{sid}/acceptances"), &c.developer, json!({"terms_sha256": sha2})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(app.get(&format!("/v1/subscriptions/{sid}"), &c.developer).await.body["terms_sha256"], sha2);
        assert_eq!(app.get(&format!("/v1/subscriptions/{sid}/acceptances"), &c.developer).await.body.as_array().unwrap().len(), 2);
        // Every step is audited.
        let audit = app.get("/v1/audit?limit=500", OPERATOR_TOKEN).await.body.to_string();
        for action in ["terms.create", "terms.publish", "acceptance.create"] {
            assert!(audit.contains(action), "{action} not audited");
        }
    })
    .await;
}

#[tokio::test]
async fn new_versions_give_notice_then_move_or_suspend() {
    on_each_backend(|app| async move {
        let mut p = tenant(&app, "prov").await;
        let c = tenant(&app, "cons").await;
        let mut c2 = tenant(&app, "cons2").await;
        // Initial tokens last 30 days and this test spans months: use year-long tokens.
        for token in [&mut p.owner, &mut p.admin, &mut c2.developer] {
            let made = app.create("/v1/tokens", token, json!({"name": "long", "expires_in_days": 365})).await;
            *token = made["secret"].as_str().unwrap().to_owned();
        }
        let v1 = published(&app, &p, sheet_with("1.0.0", 1000, "suspend")).await;
        let plan = id(&app.create("/v1/plans", &p.owner, json!({"org_id": p.org, "slug": "termed", "name": "T", "visibility": "public", "apis": [{"api_id": p.published_api}]})).await);
        app.ok_patch(&format!("/v1/plans/{plan}"), &p.owner, json!({"terms_id": id(&v1), "status": "published"})).await;
        let sha1 = v1["sha256"].as_str().unwrap();
        let accepts = id(&app.create("/v1/subscriptions", &c.developer, json!({"app_id": c.app, "plan_id": plan, "accept_terms": sha1})).await);
        let ignores = id(&app.create("/v1/subscriptions", &c2.developer, json!({"app_id": c2.app, "plan_id": plan, "accept_terms": sha1})).await);

        // v2 (whose own rule is `move`) replaces v1 (whose rule is `suspend`): the rule and
        // period subscribers agreed to — v1's — apply.
        let v2 = published(&app, &p, sheet_with("2.0.0", 500, "move")).await;
        let sha2 = v2["sha256"].as_str().unwrap().to_owned();
        app.ok_patch(&format!("/v1/plans/{plan}"), &p.owner, json!({"terms_id": id(&v2)})).await;
        let notices = app.get("/v1/notices", &c2.developer).await.body;
        let n = &notices["items"][0];
        assert_eq!((n["subscription_id"].as_str(), n["on_expiry"].as_str(), n["to_sha256"].as_str()), (Some(ignores.as_str()), Some("suspend"), Some(sha2.as_str())));
        assert_eq!(app.get("/v1/notices", &p.owner).await.body["items"].as_array().unwrap().len(), 2, "the provider sees both");
        assert!(app.get("/v1/notices", &c.developer).await.body.to_string().contains(&accepts));
        assert!(!app.get("/v1/notices", &c.developer).await.body.to_string().contains(&ignores), "notices are private to their parties");

        app.create(&format!("/v1/subscriptions/{accepts}/acceptances"), &c.developer, json!({"terms_sha256": sha2})).await;
        // Before the period ends nothing happens; after it, v1's rule applies.
        app.clock.advance(time::Duration::days(29));
        tollgate_server::jobs::run_once(&app.state).await.unwrap();
        assert_eq!(app.get(&format!("/v1/subscriptions/{ignores}"), &c2.developer).await.body["state"], "active");
        app.clock.advance(time::Duration::days(2));
        tollgate_server::jobs::run_once(&app.state).await.unwrap();
        let s = app.get(&format!("/v1/subscriptions/{ignores}"), &c2.developer).await.body;
        assert_eq!(s["state"], "suspended");
        assert_eq!(s["terms_sha256"].as_str(), Some(sha1), "still on what it accepted");
        assert!(s["history"].as_array().unwrap().last().unwrap()["reason"].as_str().unwrap().contains("notice period"));
        assert_eq!(app.get(&format!("/v1/subscriptions/{accepts}"), OPERATOR_TOKEN).await.body["state"], "active");
        let resolutions: Vec<String> = app.get("/v1/notices", &p.owner).await.body["items"].as_array().unwrap().iter().map(|n| n["resolution"].as_str().unwrap_or("open").to_owned()).collect();
        assert_eq!(resolutions.iter().filter(|r| *r == "accepted").count(), 1, "{resolutions:?}");
        assert_eq!(resolutions.iter().filter(|r| *r == "suspended").count(), 1, "{resolutions:?}");
        // Accepting v2 lets the provider reinstate it.
        app.create(&format!("/v1/subscriptions/{ignores}/acceptances"), &c2.developer, json!({"terms_sha256": sha2})).await;
        let r = app.create(&format!("/v1/subscriptions/{ignores}/transitions"), &p.admin, json!({"to": "active", "reason": "accepted v2"})).await;
        assert_eq!(r["state"], "active");

        // v3 replaces v2, whose rule is `move`: after the period the subscription moves.
        let v3 = published(&app, &p, sheet_with("3.0.0", 400, "move")).await;
        app.ok_patch(&format!("/v1/plans/{plan}"), &p.owner, json!({"terms_id": id(&v3)})).await;
        app.clock.advance(time::Duration::days(31));
        tollgate_server::jobs::run_once(&app.state).await.unwrap();
        let s = app.get(&format!("/v1/subscriptions/{ignores}"), &c2.developer).await.body;
        assert_eq!((s["state"].as_str(), s["terms_sha256"].as_str()), (Some("active"), v3["sha256"].as_str()));
    })
    .await;
}

#[tokio::test]
async fn subscriptions_move_between_marketplaces_with_their_signed_acceptances() {
    on_each_backend(|a| async move {
        // Marketplace A: a subscription with a signed acceptance.
        let pa = tenant(&a, "provider").await;
        let ca = tenant(&a, "consumer").await;
        let v1 = published(&a, &pa, sheet("1.0.0", 1000)).await;
        let sha = v1["sha256"].as_str().unwrap().to_owned();
        let plan_a = id(&a.create("/v1/plans", &pa.owner, json!({"org_id": pa.org, "slug": "termed", "name": "T", "visibility": "public", "apis": [{"api_id": pa.published_api}]})).await);
        a.ok_patch(&format!("/v1/plans/{plan_a}"), &pa.owner, json!({"terms_id": id(&v1), "status": "published"})).await;
        let sub = id(&a.create("/v1/subscriptions", &ca.developer, json!({"app_id": ca.app, "plan_id": plan_a, "accept_terms": sha})).await);
        let acceptances = a.get(&format!("/v1/subscriptions/{sub}/acceptances"), &ca.developer).await.body;
        let keys = a.get("/v1/verification-keys", &ca.developer).await.body;
        let key_id = acceptances[0]["key_id"].as_str().unwrap();
        let key = keys.as_array().unwrap().iter().find(|k| k["key_id"] == key_id).unwrap().clone();
        assert_eq!(key["origin"], "local");

        // Marketplace B: same catalog content (the sheet hashes the same), new ids.
        let store = tollgate_store::Store::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let b = App::new(store).await;
        let pb = tenant(&b, "provider").await;
        let cb = tenant(&b, "consumer").await;
        let v1b = published(&b, &pb, sheet("1.0.0", 1000)).await;
        assert_eq!(v1b["sha256"], sha.as_str(), "content-addressed across marketplaces");
        let plan_b = id(&b.create("/v1/plans", &pb.owner, json!({"org_id": pb.org, "slug": "termed", "name": "T", "visibility": "public", "apis": [{"api_id": pb.published_api}]})).await);
        b.ok_patch(&format!("/v1/plans/{plan_b}"), &pb.owner, json!({"terms_id": id(&v1b), "status": "published"})).await;
        let body = |acc: Value, keys: Value| json!({"app_id": cb.app, "plan_id": plan_b, "state": "active", "acceptances": acc, "verification_keys": keys});
        let vk = json!([{"key_id": key["key_id"], "public_key": key["public_key"]}]);

        // Only operators import; an unknown signer or a tampered record is refused.
        assert_eq!(b.post("/v1/subscriptions/import", &cb.owner, body(acceptances.clone(), vk.clone())).await.status, StatusCode::NOT_FOUND);
        let r = b.post("/v1/subscriptions/import", OPERATOR_TOKEN, body(acceptances.clone(), json!([]))).await;
        assert_eq!((r.status, r.body["errors"][0]["pointer"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("/acceptances/0/key_id")));
        let mut tampered = acceptances.clone();
        tampered[0]["record"]["accepted_at"] = json!("2020-01-01T00:00:00Z");
        let r = b.post("/v1/subscriptions/import", OPERATOR_TOKEN, body(tampered, vk.clone())).await;
        assert_eq!((r.status, r.body["errors"][0]["pointer"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("/acceptances/0/signature")));

        let imported = b.create("/v1/subscriptions/import", OPERATOR_TOKEN, body(acceptances.clone(), vk)).await;
        assert_eq!((imported["state"].as_str(), imported["terms_sha256"].as_str()), (Some("active"), Some(sha.as_str())));
        // The record is kept as it was signed: same id, same signature, still verifiable.
        let kept = b.get(&format!("/v1/subscriptions/{}/acceptances", id(&imported)), &cb.developer).await.body;
        assert_eq!(kept, acceptances);
        let keys_b = b.get("/v1/verification-keys", &cb.developer).await.body;
        assert!(keys_b.as_array().unwrap().iter().any(|k| k["key_id"] == key_id && k["origin"] == "imported"));
        // A second import of the same subscription is a conflict.
        let r = b.post("/v1/subscriptions/import", OPERATOR_TOKEN, body(acceptances, json!([]))).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
    })
    .await;
}
