//! Billing end to end: calls through the real gateway into the real ledger for a test
//! subscription on a test clock, the clock moved past period end and grace, and the
//! finalized invoice checked against the ledger and its own proof.

use base64::Engine as _;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tollgate_ledger::{Checkpoint, VerifierKey, proof, tree};

use crate::gateway::{
    key, marketplace_with, start_gateway_with_ledger, start_upstream, two_tenants,
};
use crate::harness::{App, id, tenant};

fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_else(|| panic!("not base64: {v}")))
        .unwrap()
}

/// USD, calendar months in UTC, 24 h of grace: 10.00 a month in arrears, calls at 0.50
/// after 2 free.
fn pricing() -> Value {
    json!({"inline": {
        "id": "echo-metered", "version": "1", "currency": "USD", "grace_hours": 24,
        "base_fee": {"amount": "10.00", "timing": "in_arrears"},
        "meters": [{"id": "calls", "aggregate": "count", "filter": {"status": ["2xx"]}}],
        "charges": [{"id": "calls", "meter": "calls", "free_units": "2",
                     "price": {"model": "per_unit", "unit_price": "0.50"}}]
    }})
}

async fn advance(app: &App, token: &str, clock: &str, to: &str) -> Value {
    let r = app
        .post(
            &format!("/v1/test-clocks/{clock}/advance"),
            token,
            json!({"frozen_time": to}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["close"]["errors"], json!([]), "{}", r.body);
    r.body
}

async fn report(app: &App, token: &str, provider_org: &str, sub: &str, id: &str, time: &str) {
    let r = app
        .post(
            "/v1/usage/events",
            token,
            json!([{"specversion": "1.0", "id": id, "source": format!("/providers/{provider_org}"),
                    "type": "com.example.batch", "subject": sub, "time": time, "data": {}}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["accepted"], 1, "{}", r.body);
}

/// A test-mode subscription of `c`'s app to `plan` (accepting the terms of `live_sub`,
/// the live one), on a new test clock at `frozen_time`: (subscription, clock, terms hash).
async fn clocked_test_subscription(
    app: &App,
    c: &crate::harness::Tenant,
    plan: &str,
    live_sub: &str,
    frozen_time: &str,
) -> (String, String, Value) {
    let terms = app
        .get(&format!("/v1/subscriptions/{live_sub}"), &c.developer)
        .await
        .body["terms_sha256"]
        .clone();
    let sub = id(&app
        .create(
            "/v1/subscriptions",
            &c.developer,
            json!({"app_id": c.app, "plan_id": plan, "mode": "test", "accept_terms": terms}),
        )
        .await);
    let clock = id(&app
        .create(
            "/v1/test-clocks",
            &c.developer,
            json!({"org_id": c.org, "name": "test", "frozen_time": frozen_time}),
        )
        .await);
    app.create(
        &format!("/v1/subscriptions/{sub}/test-clock"),
        &c.developer,
        json!({"test_clock_id": clock}),
    )
    .await;
    (sub, clock, terms)
}

/// Usage lines of an invoice document, by whether they are late.
fn usage_lines(doc: &Value, late: bool) -> Vec<Value> {
    doc["invoice"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "usage" && l["late"].as_bool().unwrap_or(false) == late)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_test_clocked_invoice_counts_exactly_the_ledger_entries_below_its_checkpoint() {
    let (store, _db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let stranger = tenant(&app, "stranger").await;
    let upstream = start_upstream().await;
    let (plan, _, live_sub) = marketplace_with(
        &app,
        &p,
        &c,
        upstream,
        json!({}),
        None,
        json!({"pricing": pricing()}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let gw = start_gateway_with_ledger(&app, data.path()).await;
    let sha = app
        .get(&format!("/v1/subscriptions/{live_sub}"), &c.developer)
        .await
        .body["terms_sha256"]
        .clone();
    let sub = id(&app
        .create(
            "/v1/subscriptions",
            &c.developer,
            json!({"app_id": c.app, "plan_id": plan, "mode": "test", "accept_terms": sha}),
        )
        .await);

    // A clock on March 10, attached before billing starts; a live subscription refuses it.
    let clock = id(&app
        .create(
            "/v1/test-clocks",
            &c.developer,
            json!({"org_id": c.org, "name": "march", "frozen_time": "2026-03-10T00:00:00Z"}),
        )
        .await);
    let live = app
        .post(
            &format!("/v1/subscriptions/{live_sub}/test-clock"),
            &c.developer,
            json!({"test_clock_id": clock}),
        )
        .await;
    assert_eq!(live.status, StatusCode::CONFLICT, "{}", live.body);
    let attached = app
        .post(
            &format!("/v1/subscriptions/{sub}/test-clock"),
            &c.developer,
            json!({"test_clock_id": clock}),
        )
        .await;
    assert_eq!(attached.status, StatusCode::OK, "{}", attached.body);
    let hidden = app
        .get(&format!("/v1/test-clocks/{clock}"), &stranger.owner)
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // Five calls through the gateway: their events carry the clock's time.
    let (_, test_key) = key(
        &app,
        &c,
        json!({"name": "t", "mode": "test", "expires_in_days": 30, "scopes": ["pets:read"]}),
    )
    .await;
    for _ in 0..5 {
        let r = gw.get("/echo/v1/pets", &test_key).await;
        assert!(r.status.is_success(), "{}", r.body);
    }

    // April 1 noon: March has ended but its grace window has not: nothing is final, and
    // the upcoming invoice (April) is a provisional preview.
    let r = advance(&app, &c.developer, &clock, "2026-04-01T12:00:00Z").await;
    assert_eq!(r["close"]["invoices"], json!([]), "{r}");
    // Late usage inside the grace window counts for March.
    report(
        &app,
        &p.developer,
        &p.org,
        &sub,
        "late-in-grace",
        "2026-03-31T23:00:00Z",
    )
    .await;

    let r = advance(&app, &c.developer, &clock, "2026-04-02T01:00:00Z").await;
    let invoices = r["close"]["invoices"].as_array().unwrap().clone();
    assert_eq!(invoices.len(), 1, "{r}");
    let inv_id = invoices[0].as_str().unwrap().to_owned();
    let inv = app
        .get(&format!("/v1/invoices/{inv_id}"), &c.developer)
        .await;
    assert_eq!(inv.status, StatusCode::OK, "{}", inv.body);
    let doc = inv.body["document"].clone();
    assert_eq!(inv.body["number"], "TEST-INV-000001");
    assert_eq!(inv.body["status"], "finalized");
    assert_eq!(doc["ledger"]["log"], "test");
    // 6 calls, 2 free → 4 × 0.50 = 2.00; March served from the 10th: 10 × 22/31 → 7.10.
    let usage = usage_lines(&doc, false);
    assert_eq!(usage.len(), 1, "{doc}");
    assert_eq!(usage[0]["quantity"], "6");
    assert_eq!(usage[0]["amount"], "2.00");
    assert_eq!(doc["invoice"]["total"], "9.10", "{doc}");

    // Reconciliation: the quantity is the number of the subscription's entries of March
    // in the test log below the cited checkpoint's size, read from the ledger API.
    let size = doc["ledger"]["checkpoint"]["size"].as_u64().unwrap();
    let entries = app
        .get(
            &format!("/v1/ledger/test/entries?start=0&end={size}"),
            &c.developer,
        )
        .await;
    assert_eq!(entries.status, StatusCode::OK, "{}", entries.body);
    let in_march = entries.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["subject"] == sub.as_str())
        .filter(|e| e["event"]["time"].as_str().unwrap().starts_with("2026-03"))
        .count();
    assert_eq!(in_march, 6);

    // The proof: every counted entry is in the tree of the signed checkpoint, and the
    // price books and plan history recompute the very lines.
    let pr = app
        .get(&format!("/v1/invoices/{inv_id}/proof"), &c.developer)
        .await;
    assert_eq!(pr.status, StatusCode::OK, "{}", pr.body);
    let pr = pr.body;
    let verifier = VerifierKey::parse(pr["checkpoint_verifier_key"].as_str().unwrap()).unwrap();
    let cp = Checkpoint::open(
        pr["checkpoint"]["note"].as_str().unwrap().as_bytes(),
        pr["origin"].as_str().unwrap(),
        std::slice::from_ref(&verifier),
    )
    .unwrap();
    assert_eq!(cp.size, size);
    let proved = pr["entries"].as_array().unwrap();
    assert_eq!(proved.len(), 6);
    let mut events = Vec::new();
    for e in proved {
        let leaf = b64(&e["leaf"]);
        let path: Vec<tree::Hash> = e["inclusion_proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h).try_into().unwrap())
            .collect();
        let root = proof::root_from_inclusion(
            &tree::leaf_hash(&leaf),
            e["index"].as_u64().unwrap(),
            size,
            &path,
        )
        .unwrap();
        assert_eq!(
            root, cp.root,
            "entry {} is not under the checkpoint",
            e["index"]
        );
        let ev = tollgate_core::usage::UsageEvent::from_leaf(&leaf).unwrap();
        events.push(tollgate_server::billing::rating_event(&ev, sha.as_str().unwrap()).unwrap());
    }
    let books: std::collections::BTreeMap<String, tollgate_billing::PriceBook> =
        serde_json::from_value(pr["price_books"].clone()).unwrap();
    let history: tollgate_billing::Subscription =
        serde_json::from_value(pr["plan_history"].clone()).unwrap();
    let stored: tollgate_billing::RatedInvoice =
        serde_json::from_value(doc["invoice"].clone()).unwrap();
    let recomputed = tollgate_billing::rate(&tollgate_billing::RatingInput {
        subscription: &history,
        books: &books,
        period: stored.period,
        events: &events,
        wallet_balance: rust_decimal::Decimal::ZERO,
        coupons: &[],
        taxes: &[],
        now: stored.period.end,
    })
    .unwrap();
    assert_eq!(
        recomputed.lines, stored.lines,
        "the proof recomputes every line"
    );

    // The invoice signature verifies over the canonical JSON of its document.
    let pk = b64(&pr["invoice_public_key"]);
    let sig = b64(&inv.body["signature"]["value"]);
    tollgate_keyring::verify_ed25519(&pk, &serde_jcs::to_vec(&doc).unwrap(), &sig).unwrap();

    // Formats.
    let csv = app
        .get(&format!("/v1/invoices/{inv_id}?format=csv"), &c.developer)
        .await;
    let csv = csv.body.as_str().unwrap().to_owned();
    assert!(csv.starts_with("invoice,number,line,kind"), "{csv}");
    assert!(
        csv.contains("TEST-INV-000001") && csv.contains(",total,"),
        "{csv}"
    );
    let html = app
        .call(
            Method::GET,
            &format!("/v1/invoices/{inv_id}"),
            Some(&p.billing),
            None,
            &[("accept", "text/html")],
        )
        .await;
    assert!(
        html.body
            .as_str()
            .unwrap()
            .contains("<h1>Invoice TEST-INV-000001</h1>"),
        "{}",
        html.body
    );

    // Another org sees neither the invoice nor its proof.
    for path in [
        format!("/v1/invoices/{inv_id}"),
        format!("/v1/invoices/{inv_id}/proof"),
    ] {
        assert_eq!(
            app.get(&path, &stranger.owner).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let theirs = app.get("/v1/invoices", &stranger.owner).await;
    assert_eq!(theirs.body["items"], json!([]));

    // A March event reported after March was finalized lands on April's invoice as late
    // usage; March's invoice is not touched.
    report(
        &app,
        &p.developer,
        &p.org,
        &sub,
        "late-after",
        "2026-03-25T08:00:00Z",
    )
    .await;
    let up = app
        .get(
            &format!("/v1/subscriptions/{sub}/upcoming-invoice"),
            &c.developer,
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    assert_eq!(up.body["invoice"]["status"], "provisional");
    assert_eq!(usage_lines(&up.body, true).len(), 1, "{}", up.body);
    let r = advance(&app, &c.developer, &clock, "2026-05-02T01:00:00Z").await;
    let april_id = r["close"]["invoices"][0].as_str().unwrap().to_owned();
    let april = app
        .get(&format!("/v1/invoices/{april_id}"), &c.developer)
        .await
        .body;
    assert_eq!(april["number"], "TEST-INV-000002", "numbers have no gaps");
    let late = usage_lines(&april["document"], true);
    assert_eq!(late.len(), 1, "{april}");
    assert_eq!(late[0]["quantity"], "1");
    assert_eq!(
        april["document"]["ledger"]["previous_size"], size,
        "late usage starts where March's checkpoint ended"
    );
    let march_again = app
        .get(&format!("/v1/invoices/{inv_id}"), &c.developer)
        .await
        .body;
    assert_eq!(
        march_again["document"], doc,
        "a finalized invoice never changes"
    );

    // Paid by the issuer's billing member; the customer cannot mark it.
    let r = app
        .post(&format!("/v1/invoices/{inv_id}/pay"), &c.owner, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .post(&format!("/v1/invoices/{inv_id}/pay"), &p.billing, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "paid");
    assert_eq!(r.body["document"], doc);
}

#[tokio::test]
async fn quotes_rate_a_plan_or_an_inline_book_as_an_invoice_would() {
    let (store, _db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let (plan, _, _) = marketplace_with(
        &app,
        &p,
        &c,
        upstream,
        json!({}),
        None,
        json!({"pricing": pricing()}),
    )
    .await;
    // 7 calls, 2 free: 5 × 0.50 = 2.50, plus the 10.00 base fee of one period.
    let r = app
        .post(
            "/v1/billing/quote",
            &c.developer,
            json!({"plan_id": plan, "usage": {"quantities": {"calls": "7"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], "12.50", "{}", r.body);
    assert_eq!(r.body["lines"][1]["free_units"], "2", "{}", r.body);

    // An inline book with graduated tiers: 150 units = 100 × 1 + 50 × 0.5 + 5 flat.
    let book = json!({"id": "t", "version": "1", "currency": "EUR",
        "meters": [{"id": "calls", "aggregate": "count"}],
        "charges": [{"id": "calls", "meter": "calls", "price": {"model": "graduated", "tiers": [
            {"up_to": "100", "unit_price": "1"}, {"up_to": null, "unit_price": "0.5", "flat_fee": "5"}]}}]});
    let r = app
        .post(
            "/v1/billing/quote",
            &c.developer,
            json!({"price_book": book, "usage": {"quantities": {"calls": "150"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], "130.00", "{}", r.body);
    assert_eq!(r.body["lines"][0]["tiers"].as_array().unwrap().len(), 2);

    // Errors point at the field.
    let r = app
        .post(
            "/v1/billing/quote",
            &c.developer,
            json!({"plan_id": plan, "usage": {"quantities": {"nope": "1"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["pointer"], "/usage/quantities/nope",
        "{}",
        r.body
    );
    let mut bad = book.clone();
    bad["charges"][0]["meter"] = json!("missing");
    let r = app
        .post(
            "/v1/billing/quote",
            &c.developer,
            json!({"price_book": bad, "usage": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body["errors"][0]["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/price_book/charges/0"),
        "{}",
        r.body
    );
}

/// An upstream that answers 200, or 500 while `failing` is set.
async fn flaky_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let failing = std::sync::Arc::new(AtomicBool::new(false));
    let f = failing.clone();
    let router = axum::Router::new().fallback(move || {
        let f = f.clone();
        async move {
            if f.load(Ordering::SeqCst) {
                (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response()
            } else {
                axum::Json(json!({"ok": true})).into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, failing)
}
use axum::response::IntoResponse as _;

/// The scenario's first price book: a 10-day trial, 20.00 a month in advance, calls at
/// 0.10 after 5 free, at least 30.00 a month.
fn basic_book() -> Value {
    json!({"id": "echo", "version": "1", "currency": "USD", "trial_days": 10, "grace_hours": 24,
        "base_fee": {"amount": "20.00", "timing": "in_advance"},
        "meters": [{"id": "calls", "aggregate": "count", "filter": {"status": ["2xx"]}}],
        "charges": [{"id": "calls", "meter": "calls", "free_units": "5",
                     "price": {"model": "per_unit", "unit_price": "0.10"}}],
        "minimum_commitment": "30.00"})
}

/// The upgrade: 50.00 a month, graduated calls, at least 80.00.
fn pro_book() -> Value {
    json!({"id": "echo", "version": "2", "currency": "USD", "trial_days": 10, "grace_hours": 24,
        "base_fee": {"amount": "50.00", "timing": "in_advance"},
        "meters": [{"id": "calls", "aggregate": "count", "filter": {"status": ["2xx"]}}],
        "charges": [{"id": "calls", "meter": "calls", "price": {"model": "graduated", "tiers": [
            {"up_to": "10", "unit_price": "0.20"}, {"up_to": null, "unit_price": "0.10", "flat_fee": "1"}]}}],
        "minimum_commitment": "80.00"})
}

fn sla() -> Value {
    json!({"availability": "99.9", "credits": [{"below": "99.9", "credit": "10"}, {"below": "95", "credit": "25"}]})
}

/// Replaces what differs from run to run (ids, hashes, signatures, wall-clock times) so
/// the scenario's documents can be compared with a snapshot.
fn redact(v: &mut Value) {
    const VOLATILE: &[&str] = &[
        "id",
        "invoice_id",
        "subscription",
        "subscription_id",
        "issuer_org_id",
        "customer_org_id",
        "provider_org_id",
        "provider",
        "key_id",
        "signature",
        "note",
        "root",
        "ids_sha256",
        "term_sheet",
        "sha256",
        "finalized_at",
        "issued_at",
        "created_at",
        "status_at",
        "test_clock_id",
        "origin",
        "reference",
        "at",
        "value",
    ];
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if VOLATILE.contains(&k.as_str()) && (x.is_string() || x.is_number()) {
                    *x = json!("[redacted]");
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

fn lines_of(inv: &Value, kind: &str) -> Vec<Value> {
    inv["document"]["invoice"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn three_periods_on_a_test_clock_exercise_every_billing_rule() {
    use std::sync::atomic::Ordering;
    let (store, _db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let (upstream, failing) = flaky_upstream().await;
    let (plan, api, live_sub) = marketplace_with(
        &app,
        &p,
        &c,
        upstream,
        json!({}),
        None,
        json!({"pricing": {"inline": basic_book()}, "sla": sla()}),
    )
    .await;
    // Test keys reach the API's sandbox: the same flaky upstream.
    app.ok_patch(
        &format!("/v1/apis/{api}"),
        &p.developer,
        json!({"sandbox_upstreams": [format!("http://{upstream}")]}),
    )
    .await;
    let data = tempfile::tempdir().unwrap();
    let gw = start_gateway_with_ledger(&app, data.path()).await;
    let (sub, clock, _) =
        clocked_test_subscription(&app, &c, &plan, &live_sub, "2026-01-05T00:00:00Z").await;
    let (_, k) = key(
        &app,
        &c,
        json!({"name": "t", "mode": "test", "expires_in_days": 365, "scopes": ["pets:read"]}),
    )
    .await;
    // Both orgs listen for billing webhooks.
    let c_hooks = crate::webhooks::Receiver::start(&[], std::time::Duration::ZERO).await;
    let p_hooks = crate::webhooks::Receiver::start(&[], std::time::Duration::ZERO).await;
    let (_, c_secret) = crate::webhooks::endpoint(&app, &c, &c_hooks.url, &[]).await;
    let (_, p_secret) = crate::webhooks::endpoint(&app, &p, &p_hooks.url, &[]).await;
    let op = crate::harness::OPERATOR_TOKEN;
    // The operator states the customer's VAT, grants 5.00 of prepaid credit and takes
    // 10 % of providers' revenue.
    let r = app
        .call(
            Method::PUT,
            &format!("/v1/orgs/{}/billing-account", c.org),
            Some(op),
            Some(json!({"jurisdiction": "FR", "tax_rates": [
                {"id": "fr-vat-20", "jurisdiction": "FR", "name": "VAT 20 %", "percent": "20"}]})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.create(
        &format!("/v1/orgs/{}/wallet", c.org),
        op,
        json!({"mode": "test", "currency": "USD", "amount": "5.00", "reason": "prepaid"}),
    )
    .await;
    let r = app
        .call(
            Method::PUT,
            "/v1/billing/settings",
            Some(op),
            Some(json!({"marketplace_fee": {"model": "percentage", "percent": "10"}})),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The provider's welcome coupon: 10 % off the base fee for two invoices.
    let r = app
        .post(
            &format!("/v1/subscriptions/{sub}/coupons"),
            &p.billing,
            json!({"coupon": {"id": "welcome", "discount": {"type": "percent", "percent": "10"},
                              "applies_to": ["base"], "periods": 2}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/subscriptions/{sub}/coupons"),
            &c.owner,
            json!({"coupon": {"id": "self-service", "discount": {"type": "percent", "percent": "100"}}}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the customer gives itself no coupon: {}",
        r.body
    );
    let calls = |n: usize| {
        let gw = &gw;
        let k = k.clone();
        async move {
            let mut statuses = Vec::new();
            for _ in 0..n {
                statuses.push(gw.get("/echo/v1/pets", &k).await.status.as_u16());
            }
            statuses
        }
    };

    // Trial (January 5–15): calls are free.
    assert_eq!(calls(3).await, vec![200; 3]);
    // Service starts on the 15th: the opening invoice charges January 15–31 in advance.
    let r = advance(&app, &c.developer, &clock, "2026-01-20T00:00:00Z").await;
    assert_eq!(r["close"]["invoices"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(calls(8).await, vec![200; 8]);

    // January closes after its grace window.
    let r = advance(&app, &c.developer, &clock, "2026-02-02T01:00:00Z").await;
    assert_eq!(r["close"]["invoices"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(calls(5).await, vec![200; 5]);

    // February 14: the provider publishes v2 and the subscriber accepts it (an upgrade,
    // effective at once with proration).
    advance(&app, &c.developer, &clock, "2026-02-14T00:00:00Z").await;
    let mut sheet = crate::gateway::echo_sheet(json!({}));
    sheet["sla"] = sla();
    sheet["version"] = json!("1.1.0");
    sheet["pricing"] = json!({"inline": pro_book()});
    let t2 = app
        .create(
            "/v1/terms",
            &p.owner,
            json!({"org_id": p.org, "document": sheet}),
        )
        .await;
    let r = app
        .post(
            &format!("/v1/terms/{}/publish", id(&t2)),
            &p.owner,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.ok_patch(
        &format!("/v1/plans/{plan}"),
        &p.owner,
        json!({"terms_id": id(&t2)}),
    )
    .await;
    app.create(
        &format!("/v1/subscriptions/{sub}/acceptances"),
        &c.developer,
        json!({"terms_sha256": t2["sha256"]}),
    )
    .await;

    // February 20: the upstream fails for 4 calls (an SLA breach: 11 of 15 good), then
    // recovers.
    advance(&app, &c.developer, &clock, "2026-02-20T00:00:00Z").await;
    failing.store(true, Ordering::SeqCst);
    let bad = calls(4).await;
    assert!(bad.iter().all(|s| *s >= 500), "{bad:?}");
    failing.store(false, Ordering::SeqCst);
    // The breaker may still be open for a moment: wait for the upstream to be served.
    let mut good = 0;
    for _ in 0..200 {
        if calls(1).await == vec![200] {
            good += 1;
            if good == 6 {
                break;
            }
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert_eq!(good, 6);

    // Inside February's grace window, a late event still counts for February.
    advance(&app, &c.developer, &clock, "2026-03-01T12:00:00Z").await;
    report(
        &app,
        &p.developer,
        &p.org,
        &sub,
        "feb-late-in-grace",
        "2026-02-28T23:00:00Z",
    )
    .await;
    let r = advance(&app, &c.developer, &clock, "2026-03-02T01:00:00Z").await;
    assert_eq!(r["close"]["invoices"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        r["close"]["credit_notes"].as_array().unwrap().len(),
        1,
        "SLA credit: {r}"
    );
    // After finalization, a February event goes to March's invoice as late usage.
    report(
        &app,
        &p.developer,
        &p.org,
        &sub,
        "feb-late-after",
        "2026-02-27T08:00:00Z",
    )
    .await;
    let r = advance(&app, &c.developer, &clock, "2026-04-02T01:00:00Z").await;
    assert_eq!(r["close"]["invoices"].as_array().unwrap().len(), 1, "{r}");

    // Four invoices numbered without gaps: opening, January, February, March.
    let list = app
        .get(&format!("/v1/invoices?subscription_id={sub}"), &c.developer)
        .await
        .body;
    let mut invoices: Vec<Value> = list["items"].as_array().unwrap().clone();
    invoices.sort_by_key(|i| i["number"].as_str().unwrap().to_owned());
    let numbers: Vec<_> = invoices.iter().map(|i| i["number"].clone()).collect();
    assert_eq!(
        numbers,
        vec![
            "TEST-INV-000001",
            "TEST-INV-000002",
            "TEST-INV-000003",
            "TEST-INV-000004"
        ]
    );
    let (opening, jan, feb, mar) = (&invoices[0], &invoices[1], &invoices[2], &invoices[3]);
    assert_eq!(opening["kind"], "opening");
    assert_eq!(
        lines_of(opening, "base")[0]["proration"]["seconds"],
        17 * 86400
    );
    // The prepaid 5.00 pays part of the first invoice.
    assert_eq!(
        lines_of(opening, "credit_consumption")[0]["amount"],
        "-5.00",
        "{opening}"
    );
    // The coupon discounted the first two invoices, and no more.
    assert_eq!(lines_of(opening, "discount").len(), 1, "{opening}");
    assert_eq!(lines_of(jan, "discount").len(), 1, "{jan}");
    assert!(lines_of(feb, "discount").is_empty(), "{feb}");
    // January: trial calls excluded, usage, shortfall up to 30.00, VAT.
    assert_eq!(
        jan["document"]["invoice"]["excluded"]["in_trial"], 3,
        "{jan}"
    );
    assert_eq!(lines_of(jan, "usage")[0]["quantity"], "8");
    assert_eq!(lines_of(jan, "shortfall").len(), 1, "{jan}");
    assert_eq!(lines_of(jan, "tax").len(), 1, "{jan}");
    assert!(lines_of(jan, "credit_consumption").is_empty(), "{jan}");
    // February: the upgrade's credit and charge, usage under both books (the late event
    // inside grace counted), and the SLA credit note on it.
    assert_eq!(lines_of(feb, "proration_credit").len(), 1, "{feb}");
    assert_eq!(lines_of(feb, "proration_charge").len(), 1, "{feb}");
    let mut feb_usage: Vec<String> = lines_of(feb, "usage")
        .iter()
        .map(|l| l["quantity"].as_str().unwrap().to_owned())
        .collect();
    feb_usage.sort();
    assert_eq!(feb_usage, vec!["5", "7"], "{feb}");
    let notes = app
        .get(
            &format!("/v1/invoices/{}/credit-notes", feb["id"].as_str().unwrap()),
            &c.developer,
        )
        .await
        .body;
    let note = notes["items"][0].clone();
    assert_eq!(note["document"]["sla"]["good"], 11, "{note}");
    assert_eq!(note["document"]["sla"]["total"], 15, "{note}");
    // March: the late February event on its own line, the SLA credit consumed.
    let late = lines_of(mar, "usage")
        .into_iter()
        .filter(|l| l["late"] == true)
        .collect::<Vec<_>>();
    assert_eq!(late.len(), 1, "{mar}");
    assert_eq!(late[0]["quantity"], "1");
    assert_eq!(
        lines_of(mar, "credit_consumption")[0]["amount"],
        format!("-{}", note["amount"].as_str().unwrap()),
        "{mar}"
    );

    // The provider's payout for the quarter: gross = Σ invoices before tax, less the
    // marketplace's 10 % and the credit note.
    let payout = app
        .create(
            "/v1/payouts",
            op,
            json!({"provider_org_id": p.org, "mode": "test", "currency": "USD",
                   "period_start": "2026-01-01T00:00:00Z", "period_end": "2026-04-01T00:00:00Z"}),
        )
        .await;
    let pre_tax: rust_decimal::Decimal = invoices
        .iter()
        .map(|i| {
            i["document"]["invoice"]["pre_tax_total"]
                .as_str()
                .unwrap()
                .parse::<rust_decimal::Decimal>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        payout["document"]["payout"]["gross"]
            .as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap(),
        pre_tax
    );
    assert_eq!(
        payout["document"]["reconciliation"]["invoices_pre_tax"],
        payout["document"]["payout"]["gross"]
    );
    let csv = app
        .get(&format!("/v1/payouts/{}?format=csv", id(&payout)), &p.owner)
        .await;
    assert!(
        csv.body.as_str().unwrap().contains("net_payable"),
        "{}",
        csv.body
    );

    // Webhooks: every invoice and the credit note to both orgs, the payout to the
    // provider — each verified by the Python Standard Webhooks library.
    tollgate_server::webhooks::run_once(&app.state, &crate::webhooks::fast(&[]))
        .await
        .unwrap();
    let kinds = |seen: &[crate::webhooks::Captured]| {
        let mut k: Vec<String> = seen
            .iter()
            .map(|c| {
                serde_json::from_slice::<Value>(&c.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        k.sort();
        k
    };
    let (c_seen, p_seen) = (c_hooks.seen(), p_hooks.seen());
    let mut want = vec!["credit_note.issued".to_owned()];
    want.extend(std::iter::repeat_n("invoice.finalized".to_owned(), 4));
    assert_eq!(kinds(&c_seen), want);
    want.push("payout.ready".into());
    want.sort();
    assert_eq!(kinds(&p_seen), want);
    let finalized: Value = c_seen
        .iter()
        .map(|c| serde_json::from_slice::<Value>(&c.body).unwrap())
        .find(|b| b["type"] == "invoice.finalized" && b["data"]["number"] == "TEST-INV-000004")
        .unwrap();
    assert_eq!(finalized["data"]["amount_due"], mar["amount_due"]);
    if let Some(python) =
        tokio::task::spawn_blocking(|| crate::webhooks::python_with(&["standardwebhooks==1.1.0"]))
            .await
            .unwrap()
    {
        let case = |c: &crate::webhooks::Captured, secret: &str| {
            json!({"secret": secret, "body": String::from_utf8(c.body.clone()).unwrap(),
                   "headers": {"webhook-id": c.header("webhook-id"),
                               "webhook-timestamp": c.header("webhook-timestamp"),
                               "webhook-signature": c.header("webhook-signature")},
                   "valid": true})
        };
        let cases: Vec<Value> = c_seen
            .iter()
            .map(|x| case(x, &c_secret))
            .chain(p_seen.iter().map(|x| case(x, &p_secret)))
            .collect();
        let result = crate::webhooks::python_verify(&python, Value::Array(cases)).await;
        assert_eq!(result["checked"], 11, "{result}");
    }

    let mut snapshot = json!({
        "invoices": invoices.iter().map(|i| i["document"].clone()).collect::<Vec<_>>(),
        "credit_notes": notes["items"].as_array().unwrap().iter().map(|n| n["document"].clone()).collect::<Vec<_>>(),
        "payout": payout["document"],
    });
    redact(&mut snapshot);
    insta::assert_json_snapshot!("three_period_scenario", snapshot);
}

#[tokio::test]
async fn changing_plan_moves_access_at_once_and_prorates_the_upgrade() {
    let (store, _db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let (basic, api, live_sub) = marketplace_with(
        &app,
        &p,
        &c,
        upstream,
        json!({}),
        None,
        json!({"pricing": {"inline": basic_book()}}),
    )
    .await;
    let _gw = start_gateway_with_ledger(&app, tempfile::tempdir().unwrap().path()).await;
    // A second plan of the same provider, dearer.
    let mut sheet = crate::gateway::echo_sheet(json!({}));
    sheet["id"] = json!("echo-pro-terms");
    sheet["pricing"] = json!({"inline": pro_book()});
    let terms = app
        .create(
            "/v1/terms",
            &p.owner,
            json!({"org_id": p.org, "document": sheet}),
        )
        .await;
    let r = app
        .post(
            &format!("/v1/terms/{}/publish", id(&terms)),
            &p.owner,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pro = id(&app
        .create(
            "/v1/plans",
            &p.owner,
            json!({"org_id": p.org, "slug": "echo-pro", "name": "Echo Pro", "visibility": "public", "apis": [{"api_id": api}]}),
        )
        .await);
    app.ok_patch(
        &format!("/v1/plans/{pro}"),
        &p.owner,
        json!({"terms_id": id(&terms), "status": "published"}),
    )
    .await;
    let (sub, clock, v1) =
        clocked_test_subscription(&app, &c, &basic, &live_sub, "2026-03-01T00:00:00Z").await;
    // Trial until March 11; on March 21 the customer upgrades (11 of 31 days left).
    advance(&app, &c.developer, &clock, "2026-03-21T00:00:00Z").await;
    let stale = app
        .post(
            &format!("/v1/subscriptions/{sub}/change-plan"),
            &c.developer,
            json!({"plan_id": pro, "accept_terms": v1}),
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        stale.body
    );
    let by_provider = app
        .post(
            &format!("/v1/subscriptions/{sub}/change-plan"),
            &p.owner,
            json!({"plan_id": pro, "accept_terms": terms["sha256"]}),
        )
        .await;
    assert_eq!(
        by_provider.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_provider.body
    );
    let r = app
        .post(
            &format!("/v1/subscriptions/{sub}/change-plan"),
            &c.developer,
            json!({"plan_id": pro, "accept_terms": terms["sha256"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["acceptance"]["record"]["accepted_at"],
        "2026-03-21T00:00:00Z"
    );
    let now_on = app
        .get(&format!("/v1/subscriptions/{sub}"), &c.developer)
        .await
        .body;
    assert_eq!(now_on["plan_id"], pro.as_str());
    assert_eq!(now_on["terms_sha256"], terms["sha256"]);

    advance(&app, &c.developer, &clock, "2026-04-02T01:00:00Z").await;
    let list = app
        .get(&format!("/v1/invoices?subscription_id={sub}"), &c.developer)
        .await
        .body;
    let march = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "period")
        .unwrap()
        .clone();
    // Basic's 20.00 was charged in advance for March: its 11 days left are credited
    // (−20 × 11/31 → −7.10), Pro is charged for them (50 × 11/31 → 17.74), and April is
    // charged on Pro in advance.
    let credit = lines_of(&march, "proration_credit");
    let charge = lines_of(&march, "proration_charge");
    assert_eq!(credit[0]["amount"], "-7.10", "{march}");
    assert_eq!(charge[0]["amount"], "17.74", "{march}");
    let base = lines_of(&march, "base");
    assert_eq!(base[0]["amount"], "50.00", "{march}");
    assert!(
        base[0]["description"].as_str().unwrap().contains("echo 2"),
        "{march}"
    );
}

/// How long a close takes per subscription through the whole server path (store reads,
/// ledger, rating, signing, the write transaction). Not a test of behaviour: run it by
/// hand, `BILLING_SCALE=2000 cargo test [--release] -p tollgate-server --test it
/// billing::close_scale -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, run by hand"]
async fn close_scale() {
    let n: usize = std::env::var("BILLING_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let (store, _db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let (plan, _, live_sub) = marketplace_with(
        &app,
        &p,
        &c,
        upstream,
        json!({}),
        None,
        json!({"pricing": {"inline": {
            "id": "scale", "version": "1", "currency": "USD",
            "base_fee": {"amount": "9.00", "timing": "in_arrears"},
            "meters": [
                {"id": "calls", "aggregate": "count"},
                {"id": "bytes", "aggregate": "sum", "field": "response_bytes"},
                {"id": "peak", "aggregate": "max", "field": "latency_ms"}],
            "charges": [
                {"id": "calls", "meter": "calls", "price": {"model": "graduated", "tiers": [
                    {"up_to": "1000", "unit_price": "0.01"}, {"up_to": null, "unit_price": "0.005"}]}},
                {"id": "bytes", "meter": "bytes", "price": {"model": "package", "package_size": "1000000", "package_price": "0.10"}},
                {"id": "peak", "meter": "peak", "price": {"model": "per_unit", "unit_price": "0.001"}}]}}}),
    )
    .await;
    let _gw = start_gateway_with_ledger(&app, tempfile::tempdir().unwrap().path()).await;
    let template = app
        .get(&format!("/v1/subscriptions/{live_sub}"), &c.developer)
        .await
        .body;
    let mut sub: tollgate_core::model::Subscription = serde_json::from_value(template).unwrap();
    let _ = plan;
    // n subscriptions that started 40 days ago: one period each is due.
    let start = app.state.now() - time::Duration::days(40);
    let mut tx = app.state.store.write().await.unwrap();
    for _ in 0..n {
        sub.id = tollgate_core::SubscriptionId::new();
        sub.created_at = start;
        sub.history.clear();
        tx.insert_subscription(&sub).await.unwrap();
    }
    tx.commit().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let t = std::time::Instant::now();
    let report = tollgate_server::billing::close(&app.state, None, |_, _| {})
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(report.errors, Vec::<String>::new());
    eprintln!(
        "close: {} subscriptions, {} invoices in {:.2?} ({:.0} µs per subscription)",
        report.subscriptions,
        report.invoices.len(),
        took,
        took.as_micros() as f64 / report.subscriptions as f64
    );
}

#[tokio::test]
async fn a_sheet_can_reference_a_stored_price_book_by_hash() {
    let (store, _db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let books = format!("/v1/orgs/{}/price-books", p.org);
    let book = pricing()["inline"].clone();
    let stored = app
        .create(&books, &p.owner, json!({"price_book": book}))
        .await;
    assert_eq!(stored["created"], true);
    let again = app
        .post(&books, &p.owner, json!({"price_book": book}))
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the same book is the same version"
    );
    let mut other = book.clone();
    other["base_fee"]["amount"] = json!("11.00");
    let clash = app
        .post(&books, &p.owner, json!({"price_book": other}))
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.body);
    assert_eq!(
        app.get(&books, &c.owner).await.status,
        StatusCode::NOT_FOUND,
        "another org does not list them"
    );
    // The plan's sheet references the stored book: quotes and invoices use it.
    let (plan, _, _) = marketplace_with(
        &app,
        &p,
        &c,
        upstream,
        json!({}),
        None,
        json!({"pricing": {"ref": stored["reference"].clone()}}),
    )
    .await;
    // A sheet naming a hash nobody stored is refused at the field.
    let mut sheet = crate::gateway::echo_sheet(json!({}));
    sheet["id"] = json!("echo-other");
    sheet["pricing"] = json!({"ref": {"id": "echo-metered", "sha256": "0".repeat(64)}});
    let r = app
        .post(
            "/v1/terms",
            &p.owner,
            json!({"org_id": p.org, "document": sheet}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(
        r.body["errors"][0]["pointer"],
        "/document/pricing/ref/sha256"
    );

    let q = app
        .post(
            "/v1/billing/quote",
            &c.developer,
            json!({"plan_id": plan, "usage": {"quantities": {"calls": "7"}}}),
        )
        .await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.body);
    assert_eq!(q.body["total"], "12.50");
    assert_eq!(q.body["price_book"]["sha256"], stored["sha256"]);
    // Referenced by a published sheet, the book is public terms: the consumer reads it.
    let one = format!("{books}/{}", stored["sha256"].as_str().unwrap());
    let read = app.get(&one, &c.developer).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["price_book"], stored["price_book"]);
    other["version"] = json!("2");
    let unreferenced = app
        .create(&books, &p.owner, json!({"price_book": other}))
        .await;
    let hidden = format!("{books}/{}", unreferenced["sha256"].as_str().unwrap());
    assert_eq!(
        app.get(&hidden, &c.developer).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_cancellation_at_period_end_stops_billing_and_access_when_the_period_ends() {
    let (store, _db) = tollgate_store::testing::sqlite().await;
    let app = App::new(store).await;
    let (p, c) = two_tenants(&app).await;
    let upstream = start_upstream().await;
    let (plan, _, live_sub) = marketplace_with(
        &app,
        &p,
        &c,
        upstream,
        json!({}),
        None,
        json!({"pricing": {"inline": basic_book()}}),
    )
    .await;
    let _gw = start_gateway_with_ledger(&app, tempfile::tempdir().unwrap().path()).await;
    let (sub, clock, _) =
        clocked_test_subscription(&app, &c, &plan, &live_sub, "2026-03-01T00:00:00Z").await;
    advance(&app, &c.developer, &clock, "2026-03-21T00:00:00Z").await;
    let by_provider = app
        .post(
            &format!("/v1/subscriptions/{sub}/cancel-at-period-end"),
            &p.owner,
            json!({"reason": "no"}),
        )
        .await;
    assert_eq!(
        by_provider.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_provider.body
    );
    let r = app
        .post(
            &format!("/v1/subscriptions/{sub}/cancel-at-period-end"),
            &c.developer,
            json!({"reason": "moving on"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["service_ends_at"], "2026-04-01T00:00:00Z");
    // Still active until the period ends.
    let now = app
        .get(&format!("/v1/subscriptions/{sub}"), &c.developer)
        .await
        .body;
    assert_eq!(now["state"], "active");

    let r = advance(&app, &c.developer, &clock, "2026-04-02T01:00:00Z").await;
    assert_eq!(r["close"]["invoices"].as_array().unwrap().len(), 1, "{r}");
    let march = app
        .get(
            &format!(
                "/v1/invoices/{}",
                r["close"]["invoices"][0].as_str().unwrap()
            ),
            &c.developer,
        )
        .await
        .body;
    assert!(
        lines_of(&march, "base").is_empty(),
        "no April fee in advance: {march}"
    );
    let after = app
        .get(&format!("/v1/subscriptions/{sub}"), &c.developer)
        .await
        .body;
    assert_eq!(after["state"], "cancelled", "{after}");
    assert_eq!(
        after["history"].as_array().unwrap().last().unwrap()["at"],
        "2026-04-01T00:00:00Z"
    );
    let r = advance(&app, &c.developer, &clock, "2026-06-02T01:00:00Z").await;
    assert_eq!(r["close"]["invoices"], json!([]), "{r}");
}
