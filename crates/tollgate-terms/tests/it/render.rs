//! Rendering: Markdown and HTML snapshots of the fixtures, and HTML safety.

use crate::common::*;
use tollgate_terms::render;

#[test]
fn markdown_snapshots() {
    for name in FIXTURES {
        let v = valid(name);
        insta::assert_snapshot!(format!("markdown_{name}"), render::markdown(&v));
    }
}

#[test]
fn html_snapshots() {
    for name in FIXTURES {
        let v = valid(name);
        insta::assert_snapshot!(format!("html_{name}"), render::html(&v));
    }
}

#[test]
fn html_escapes_raw_html_and_neutralises_script_links() {
    let mut s = sheet("weather-standard.yaml");
    s.sections[0].body =
        "<script>alert(1)</script>\n\nSee [this](javascript:alert(2)) and [docs](https://example.org/).".into();
    s.title = "Weather <b>API</b> *starred*".into();
    let html = render::html(&revalidate(&s));
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("javascript:"), "{html}");
    assert!(html.contains("href=\"https://example.org/\""), "{html}");
    assert!(
        html.contains("<h1>Weather &lt;b&gt;API&lt;/b&gt; *starred*</h1>"),
        "{html}"
    );
}

#[test]
fn the_issue_sentence() {
    let md = render::markdown(&valid("weather-standard.yaml"));
    assert!(md.contains(
        "up to 10 times per second (bursts of up to 20) and 100 000 times per calendar month, Monday–Friday 08:00–18:00 Europe/Paris."
    ), "{md}");
}

#[test]
fn windows_in_words() {
    let v = valid("fintech-payments.json");
    assert_eq!(
        render::windows_words(v.sheet().windows.as_ref()),
        "Monday–Thursday 07:30–12:00, 13:00–17:30 and Friday 07:30–15:00 Europe/Zurich"
    );
    assert_eq!(render::group_digits(1_234_567), "1 234 567");
    assert_eq!(render::group_digits(999), "999");
}

#[test]
fn every_pricing_model_in_words() {
    use tollgate_terms::model::Pricing;
    let mut s = sheet("fintech-payments.json");
    let Some(Pricing::Inline(p)) = &mut s.pricing else {
        unreachable!()
    };
    p["currency"] = "JPY".into();
    p["billing_cycle"] = serde_json::json!({ "interval": "quarter", "anchor": "subscription" });
    p["base_fee"] = serde_json::json!({ "amount": "120000", "timing": "in_arrears" });
    p["charges"] = serde_json::json!([
        { "id": "exports", "meter": "payment-calls",
          "price": { "model": "package", "package_size": "1000", "package_price": "500" } },
        { "id": "calls", "meter": "payment-calls", "free_units": "0.5",
          "price": { "model": "volume", "tiers": [
              { "up_to": "1000.5", "unit_price": "2" }, { "up_to": null, "unit_price": "1" } ] } },
        { "id": "volume", "meter": "payment-volume",
          "price": { "model": "graduated_percentage", "tiers": [
              { "up_to": "1000000", "percent": "2", "flat_fee": "100" },
              { "up_to": null, "percent": "1.5" } ] } },
        { "id": "fees", "meter": "payment-volume",
          "price": { "model": "percentage", "percent": "3", "free_events": 5, "free_amount": "10000" } }
    ]);
    let md = render::markdown(&revalidate(&s));
    for needle in [
        "Billing period: quarters counted from the moment your subscription started, `UTC` time.",
        "Base fee: 120 000 JPY per quarter, charged in arrears, at the end of the period it covers.",
        "Price: 500 JPY per package of 1 000 units; a started package is charged in full.",
        "Price: by volume, every unit priced at the rate of the tier the period's whole quantity falls in; the first 0.5 units of each billing period are free.",
        "| up to 1 000.5 | 2 |\n| over 1 000.5 | 1 |\n",
        "| Cumulative amount (JPY) | Percent | Flat fee (JPY) |",
        "| up to 1 000 000 | 2 % | 100 |\n| over 1 000 000 | 1.5 % |  |\n",
        "Price: 3 % of each event's amount; each billing period's first events are free until 5 events or 10 000 JPY of amount are covered, whichever comes first.",
        "rounded once, to 0 decimal places (half up)",
    ] {
        assert!(md.contains(needle), "{needle:?} not in:\n{md}");
    }
    let html = render::html(&revalidate(&s));
    assert!(html.contains("<table>"), "{html}");
}
