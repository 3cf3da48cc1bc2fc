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
