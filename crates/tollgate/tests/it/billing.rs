//! `tollgate invoice` and `tollgate billing` against the real binary: quotes, the
//! operator's close and payouts, and a priced test subscription on a test clock whose
//! invoice is listed, shown, exported and proved from the ledger.

use super::{Server, gateway_get, http, start_demo, tollgate};
use serde_json::{Value, json};
use std::path::Path;

/// A server killed when dropped, so a failing test leaves no process behind.
struct Running(Server);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

impl Running {
    fn admin(&self) -> String {
        format!("http://{}", self.0.admin)
    }
}

/// Runs the CLI in `cwd` against `url` with the operator token of `cwd/tollgate-data`.
fn cli(cwd: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--url", url]);
    tollgate(cwd, &all, &[("TOLLGATE_TOKEN", "")])
}

/// Runs the CLI with `--json` and parses its output.
fn cli_json(cwd: &Path, url: &str, args: &[&str]) -> (i32, Value, String) {
    let mut all = args.to_vec();
    all.push("--json");
    let (code, out, err) = cli(cwd, url, &all);
    let v = serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}\n{err}"));
    (code, v, err)
}

fn operator_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tollgate-data/admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// 150 units: 100 × 1 + 50 × 0.5 + 5 flat = 130.
fn graduated_book() -> Value {
    json!({"id": "t", "version": "1", "currency": "EUR",
        "meters": [{"id": "calls", "aggregate": "count"}],
        "charges": [{"id": "calls", "meter": "calls", "price": {"model": "graduated", "tiers": [
            {"up_to": "100", "unit_price": "1"},
            {"up_to": null, "unit_price": "0.5", "flat_fee": "5"}]}}]})
}

#[test]
fn help_explains_every_invoice_and_billing_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["invoice", "--help"][..],
        &["invoice", "list", "--help"],
        &["invoice", "show", "--help"],
        &["invoice", "export", "--help"],
        &["invoice", "preview", "--help"],
        &["invoice", "proof", "--help"],
        &["billing", "--help"],
        &["billing", "quote", "--help"],
        &["billing", "close", "--help"],
    ] {
        let (code, out, err) = tollgate(dir.path(), args, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.contains("Usage: tollgate") && out.lines().count() > 5,
            "{args:?} --help is too thin: {out}"
        );
    }
    let (_, out, _) = tollgate(dir.path(), &["billing", "close", "--help"], &[]);
    assert!(out.contains("--period") && out.contains("--url") && out.contains("--token"));
    let (code, _, err) = tollgate(
        dir.path(),
        &["billing", "close", "--period", "2026-13"],
        &[],
    );
    assert_eq!(code, 2, "a bad month is a usage error: {err}");
    let (code, _, err) = tollgate(
        dir.path(),
        &["billing", "quote", "--quantity", "calls=1"],
        &[],
    );
    assert_eq!(code, 2, "a quote needs --plan or --price-book: {err}");
}

#[test]
fn quotes_lists_close_and_errors_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let (s, demo) = start_demo(dir.path());
    let s = Running(s);
    let url = s.admin();
    let cwd = dir.path();

    // An inline price book from a file: JSON mode gives the number, text mode the tiers.
    let book = cwd.join("book.json");
    std::fs::write(&book, graduated_book().to_string()).unwrap();
    let (code, q, err) = cli_json(
        cwd,
        &url,
        &[
            "billing",
            "quote",
            "--price-book",
            book.to_str().unwrap(),
            "--quantity",
            "calls=150",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(q["total"], "130.00", "{q}");
    assert_eq!(q["lines"][0]["tiers"].as_array().unwrap().len(), 2, "{q}");
    // The same book as YAML, in text.
    let yaml = cwd.join("book.yaml");
    std::fs::write(
        &yaml,
        "id: t\nversion: \"1\"\ncurrency: EUR\nmeters: [{id: calls, aggregate: count}]\n\
         charges:\n  - id: calls\n    meter: calls\n    price:\n      model: graduated\n      tiers:\n\
         \x20       - {up_to: \"100\", unit_price: \"1\"}\n\
         \x20       - {up_to: null, unit_price: \"0.5\", flat_fee: \"5\"}\n",
    )
    .unwrap();
    let (code, out, err) = cli(
        cwd,
        &url,
        &[
            "billing",
            "quote",
            "--price-book",
            yaml.to_str().unwrap(),
            "--quantity",
            "calls=150",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tier 0–100: 100 × 1 = 100"), "{out}");
    assert!(out.contains("+ 5 flat"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("total") && l.contains("130.00 EUR")),
        "{out}"
    );
    // An unknown meter: the problem's field and detail, exit 1.
    let (code, _, err) = cli(
        cwd,
        &url,
        &[
            "billing",
            "quote",
            "--price-book",
            book.to_str().unwrap(),
            "--quantity",
            "nope=1",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("/usage/quantities/nope"), "{err}");
    // The demo's plans carry no prices: the server says so.
    let plan = demo["ids"]["plan_free"].as_str().unwrap();
    let (code, _, err) = cli(
        cwd,
        &url,
        &["billing", "quote", "--plan", plan, "--quantity", "calls=1"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("carry no prices"), "{err}");

    // Listing: the demo has no priced plan, so no invoices, and that is fine.
    let (code, list, err) = cli_json(cwd, &url, &["invoice", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(list.is_array(), "{list}");
    let (code, out, err) = cli(cwd, &url, &["invoice", "list", "--status", "paid"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no invoices"), "{out}");

    // Close looks at every subscription the operator sees, finalizes nothing unpriced.
    let (status, subs) = http(
        "GET",
        &format!("{url}/v1/subscriptions?limit=200"),
        Some(&operator_token(cwd)),
        None,
    );
    assert_eq!(status, 200, "{subs}");
    let n = subs["items"].as_array().unwrap().len();
    assert!(n >= 2, "{subs}");
    let (code, report, err) = cli_json(cwd, &url, &["billing", "close"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["subscriptions"], n, "{report}");
    assert!(
        report["subscription_ids"]
            .as_array()
            .unwrap()
            .contains(&demo["ids"]["subscription"]),
        "{report}"
    );
    assert_eq!(report["invoices"], json!([]), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report.get("payouts").is_none(), "{report}");
    let (code, report, err) = cli_json(cwd, &url, &["billing", "close", "--period", "2026-03"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["payouts"]["period"], "2026-03", "{report}");
    assert_eq!(report["payouts"]["made"], json!([]), "{report}");

    // Unknown ids: exit 1 with the problem's detail.
    for args in [
        &["invoice", "export", "inv_nope", "--format", "csv"][..],
        &["invoice", "show", "inv_nope"],
        &["invoice", "proof", "inv_nope"],
    ] {
        let (code, out, err) = cli(cwd, &url, args);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(
            err.contains("404") && err.contains("no such invoice"),
            "{args:?}: {err}"
        );
    }
    // A preview of an unpriced subscription says why there is none.
    let sub = demo["ids"]["subscription"].as_str().unwrap();
    let (code, _, err) = cli(cwd, &url, &["invoice", "preview", sub]);
    assert_eq!(code, 1);
    assert!(err.contains("carry no prices"), "{err}");
    // No token anywhere: a clear message.
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(elsewhere.path(), &url, &["invoice", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("no token given"), "{err}");
}

/// `POST` as `token`, expecting 2xx; the body.
fn post(url: &str, token: &str, path: &str, body: Value) -> Value {
    let (status, v) = http("POST", &format!("{url}{path}"), Some(token), Some(&body));
    assert!((200..300).contains(&status), "POST {path}: {status} {v}");
    v
}

fn patch(url: &str, token: &str, path: &str, body: Value) -> Value {
    let (status, v) = http("PATCH", &format!("{url}{path}"), Some(token), Some(&body));
    assert!((200..300).contains(&status), "PATCH {path}: {status} {v}");
    v
}

#[test]
fn a_priced_test_subscription_is_invoiced_shown_exported_proved_and_paid_out() {
    let dir = tempfile::tempdir().unwrap();
    let (s, demo) = start_demo(dir.path());
    let s = Running(s);
    let url = s.admin();
    let gateway = format!("http://{}", s.0.gateway);
    let cwd = dir.path();
    let operator = operator_token(cwd);
    let bob = demo["tokens"]["consumer_developer"].as_str().unwrap();
    let provider = demo["ids"]["provider_org"].as_str().unwrap();
    let consumer = demo["ids"]["consumer_org"].as_str().unwrap();
    let api = demo["ids"]["api"].as_str().unwrap();

    // A metered plan: 10.00 a month in arrears, calls free up to 2 then 0.50 each.
    let sheet = json!({
        "id": "weather-metered", "version": "1.0.0", "title": "Acme Weather — Metered terms",
        "effective": "2026-01-01", "jurisdiction": "FR", "governing_law": "the laws of France",
        "language": "en",
        "sections": [{"id": "use", "title": "Use", "body": "Show forecasts to your users."}],
        "grants": [{"api": "weather", "operations": ["listCities", "getForecast"],
                    "scopes": ["weather:read"], "group": "forecasts"}],
        "data": {"retention_days": 30},
        "limits": {"rate": [{"group": "forecasts", "requests": 50, "per": "second", "burst": 100}]},
        "notice": {"days": 30, "on_expiry": "move"},
        "pricing": {"inline": {
            "id": "weather-metered", "version": "1", "currency": "EUR", "grace_hours": 24,
            "base_fee": {"amount": "10.00", "timing": "in_arrears"},
            "meters": [{"id": "calls", "aggregate": "count", "filter": {"status": ["2xx"]}}],
            "charges": [{"id": "calls", "meter": "calls", "price": {"model": "graduated", "tiers": [
                {"up_to": "2", "unit_price": "0"}, {"up_to": null, "unit_price": "0.50"}]}}]
        }}
    });
    let terms = post(
        &url,
        &operator,
        "/v1/terms",
        json!({"org_id": provider, "document": sheet}),
    );
    let terms_id = terms["id"].as_str().unwrap();
    let sha = terms["sha256"].as_str().unwrap();
    post(
        &url,
        &operator,
        &format!("/v1/terms/{terms_id}/publish"),
        json!(null),
    );
    let plan = post(
        &url,
        &operator,
        "/v1/plans",
        json!({"org_id": provider, "slug": "metered", "name": "Metered",
               "description": "Pay per forecast.", "visibility": "public",
               "approval_required": false,
               "apis": [{"api_id": api, "operations": ["listCities", "getForecast"]}]}),
    );
    let plan_id = plan["id"].as_str().unwrap();
    patch(
        &url,
        &operator,
        &format!("/v1/plans/{plan_id}"),
        json!({"status": "published", "terms_id": terms_id}),
    );

    // The plan quotes like its invoice will: 7 calls → 5 × 0.50 + 10.00.
    let (code, q, err) = cli_json(
        cwd,
        &url,
        &[
            "billing",
            "quote",
            "--plan",
            plan_id,
            "--quantity",
            "calls=7",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(q["total"], "12.50", "{q}");

    // Bob's new app subscribes in test mode, on a test clock set to March 10.
    let app = post(
        &url,
        &operator,
        "/v1/apps",
        json!({"org_id": consumer, "slug": "metered-app", "name": "Metered app"}),
    );
    let app_id = app["id"].as_str().unwrap();
    let sub = post(
        &url,
        bob,
        "/v1/subscriptions",
        json!({"app_id": app_id, "plan_id": plan_id, "mode": "test", "reason": "billing test",
               "accept_terms": sha}),
    );
    let sub_id = sub["id"].as_str().unwrap();
    let clock = post(
        &url,
        bob,
        "/v1/test-clocks",
        json!({"org_id": consumer, "name": "march", "frozen_time": "2026-03-10T00:00:00Z"}),
    );
    let clock_id = clock["id"].as_str().unwrap();
    post(
        &url,
        bob,
        &format!("/v1/subscriptions/{sub_id}/test-clock"),
        json!({"test_clock_id": clock_id}),
    );
    let key = post(
        &url,
        bob,
        &format!("/v1/apps/{app_id}/keys"),
        json!({"name": "metered", "mode": "test", "expires_in_days": 30,
               "scopes": ["weather:read"]}),
    );
    let key = key["secret"].as_str().unwrap();
    for _ in 0..5 {
        let (status, head, body) = gateway_get(&format!("{gateway}/weather/v1/cities"), key);
        assert_eq!(status, 200, "{head}{body}");
    }

    // Before March closes, the preview is provisional and counts the calls.
    let (code, up, err) = cli_json(cwd, &url, &["invoice", "preview", sub_id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(up["invoice"]["status"], "provisional", "{up}");
    let (code, out, err) = cli(cwd, &url, &["invoice", "preview", sub_id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("quantity 5"), "{out}");

    // Past March's end and its grace window: the invoice is finalized.
    let r = post(
        &url,
        bob,
        &format!("/v1/test-clocks/{clock_id}/advance"),
        json!({"frozen_time": "2026-04-02T01:00:00Z"}),
    );
    assert_eq!(r["close"]["errors"], json!([]), "{r}");
    let inv_id = r["close"]["invoices"][0].as_str().unwrap().to_owned();

    let (code, list, err) = cli_json(
        cwd,
        &url,
        &[
            "invoice",
            "list",
            "--subscription",
            sub_id,
            "--mode",
            "test",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], inv_id.as_str());
    // 5 calls, 2 free: 3 × 0.50 = 1.50; March served from the 10th: 10 × 22/31 → 7.10.
    assert_eq!(list[0]["total"], "8.60", "{list:?}");
    let (code, out, err) = cli(cwd, &url, &["invoice", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("TEST-INV-000001") && out.contains("2026-03-01 – 2026-04-01"),
        "{out}"
    );

    let (code, out, err) = cli(cwd, &url, &["invoice", "show", &inv_id]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "Invoice TEST-INV-000001 (finalized, test, period)",
        "quantity 5",
        "tier 2–∞: 3 × 0.5 = 1.5",
        "8.60 EUR",
        "Ledger checkpoint",
        "Ed25519 by key",
    ] {
        assert!(out.contains(want), "no {want:?} in {out}");
    }

    let csv = cwd.join("march.csv");
    let (code, _, err) = cli(
        cwd,
        &url,
        &[
            "invoice",
            "export",
            &inv_id,
            "--format",
            "csv",
            "-o",
            csv.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("invoice,number,line,kind"), "{text}");
    let (code, html, err) = cli(
        cwd,
        &url,
        &["invoice", "export", &inv_id, "--format", "html"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(html.contains("<h1>Invoice TEST-INV-000001</h1>"), "{html}");
    let (code, doc, err) = cli(
        cwd,
        &url,
        &["invoice", "export", &inv_id, "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["document"]["invoice"]["total"], "8.60");

    // The proof holds: checkpoint, inclusion, signature and the recomputed usage lines.
    let bundle = cwd.join("proof.json");
    let (code, out, err) = cli(
        cwd,
        &url,
        &["invoice", "proof", &inv_id, "-o", bundle.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    for check in ["checkpoint", "inclusion", "signature", "lines"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(check) && l.contains(" ok: ")),
            "{check} not ok: {out}"
        );
    }
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    assert_eq!(saved["entries"].as_array().unwrap().len(), 5, "{saved}");
    assert_eq!(saved["next_cursor"], Value::Null);
    // The live log's key does not sign the test log's checkpoints: the checkpoint check
    // fails, and with it the command, while the other checks still run.
    let (status, live_key) = http(
        "GET",
        &format!("{url}/v1/ledger/live/public-key"),
        None,
        None,
    );
    assert_eq!(status, 200, "{live_key}");
    let wrong = live_key.as_str().unwrap().trim();
    let (code, out, _) = cli(cwd, &url, &["invoice", "proof", &inv_id, "--key", wrong]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("checkpoint FAILED"), "{out}");
    assert!(out.contains("signature  ok"), "{out}");

    // Closing again finalizes nothing new; March's payouts are made once.
    let (code, report, err) = cli_json(cwd, &url, &["billing", "close", "--period", "2026-03"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["invoices"], json!([]), "{report}");
    let made = report["payouts"]["made"].as_array().unwrap();
    assert_eq!(made.len(), 1, "{report}");
    assert_eq!(made[0]["provider_org_id"], provider);
    assert_eq!(made[0]["mode"], "test");
    assert_eq!(made[0]["currency"], "EUR");
    let (code, out, err) = cli(cwd, &url, &["billing", "close", "--period", "2026-03"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 made, 1 already made"), "{out}");
}
