//! Inline pricing is a tollgate-billing price book: a valid one is exposed, parsed, to
//! whoever rates usage; every problem of an invalid one is reported at its field and line
//! of the sheet, in YAML, TOML and JSON alike.

use crate::common::*;
use std::path::Path;
use tollgate_terms::model::Pricing;
use tollgate_terms::{PriceBook, TermsError, parse_str};

fn errors_of(file: &str, text: &str) -> Vec<TermsError> {
    match parse_str(Path::new(file), None, text) {
        Err(e) => e,
        Ok(l) => l.validate().err().unwrap_or_default(),
    }
}

/// The errors as `(field, line)`, with their messages for failures.
fn located(e: &[TermsError]) -> Vec<(&str, Option<usize>)> {
    e.iter().map(|e| (e.field.as_str(), e.line)).collect()
}

fn message<'a>(e: &'a [TermsError], field: &str) -> &'a str {
    &e.iter().find(|e| e.field == field).unwrap().message
}

#[test]
fn a_valid_inline_book_is_exposed() {
    let v = valid("health-records.toml");
    let book = v.price_book().expect("inline pricing gives a book");
    assert_eq!(
        (book.id.as_str(), book.currency.as_str()),
        ("health-records", "EUR")
    );
    assert_eq!(book.charges[0].free_units, Some(10000.into()));
    assert_eq!(book.base_fee.as_ref().unwrap().amount.to_string(), "490");
    assert!(v.price_ref().is_none());
    // The sheet keeps the same book, in billing's canonical form, and its hash covers it.
    let Some(Pricing::Inline(block)) = &v.sheet().pricing else {
        unreachable!()
    };
    let again = PriceBook::from_json(block).unwrap();
    assert_eq!(&again, book);
    assert_eq!(again.sha256(), book.sha256());
    assert_eq!(block["base_fee"]["amount"], "490");
    assert_eq!(block["rounding"], "half_up");

    let v = valid("fintech-payments.json");
    let book = v.price_book().unwrap();
    assert_eq!(book.charges.len(), 2);
    assert_eq!(book.minimum_commitment, Some("1500".parse().unwrap()));

    let v = valid("weather-standard.yaml");
    assert!(v.price_book().is_none());
    assert_eq!(v.price_ref().unwrap().id, "weather-standard-2026");
}

#[test]
fn the_same_book_spelled_differently_hashes_alike() {
    let base = valid("health-records.toml");
    let edited = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut s = sheet("health-records.toml");
        let Some(Pricing::Inline(p)) = &mut s.pricing else {
            unreachable!()
        };
        f(p);
        revalidate(&s)
    };
    let again = edited(&|p| {
        p["base_fee"]["amount"] = "490".into();
        p["charges"][0]["free_units"] = "10000.0".into();
        p["rounding"] = "half_up".into();
        p["trial_days"] = 0.into();
    });
    assert_eq!(again.sha256(), base.sha256());
    assert_eq!(again.price_book(), base.price_book());
    let dearer = edited(&|p| p["base_fee"]["amount"] = "490.01".into());
    assert_ne!(dearer.sha256(), base.sha256());
}

const YAML: &str = "\
id: demo
version: 1.0.0
title: Demo
effective: 2026-01-01
jurisdiction: FR
governing_law: French law
language: en
grants:
  - api: weather
    operations: [getWeather]
notice: { days: 30, on_expiry: move }
pricing:
  inline:
    id: demo-prices
    version: \"1\"
    currency: EURO
    base_fee: { amount: \"-10\" }
    meters:
      - id: calls
        aggregate: count
    charges:
      - id: calls
        meter: calls
        price:
          model: graduated
          tiers:
            - { up_to: \"1000\", unit_price: \"0.01\" }
            - { up_to: \"500\", unit_price: \"0.005\" }
            - { up_to: null, unit_price: \"-0.001\" }
      - id: storage
        meter: bytes
        price: { model: per_unit, unit_price: \"0.1\" }
";

#[test]
fn every_book_problem_at_its_yaml_line() {
    let e = errors_of("demo.yaml", YAML);
    assert_eq!(
        located(&e),
        [
            ("pricing.inline.currency", Some(16)),
            ("pricing.inline.base_fee.amount", Some(17)),
            ("pricing.inline.charges[0].price.tiers[1].up_to", Some(28)),
            (
                "pricing.inline.charges[0].price.tiers[2].unit_price",
                Some(29)
            ),
            ("pricing.inline.charges[1].meter", Some(31)),
        ],
        "{e:#?}"
    );
    assert_eq!(
        message(&e, "pricing.inline.currency"),
        "\"EURO\" is not an active ISO 4217 code"
    );
    assert_eq!(
        message(&e, "pricing.inline.base_fee.amount"),
        "must not be negative"
    );
    assert!(
        message(&e, "pricing.inline.charges[0].price.tiers[1].up_to").contains("previous tier")
    );
    assert_eq!(
        message(&e, "pricing.inline.charges[1].meter"),
        "no meter \"bytes\" in this book"
    );
    assert!(
        e[0].to_string()
            .starts_with("demo.yaml:16: pricing.inline.currency: "),
        "{}",
        e[0]
    );
}

#[test]
fn an_unknown_model_at_its_line() {
    let yaml = YAML.replace("model: per_unit", "model: flat_rate");
    let e = errors_of("demo.yaml", &yaml);
    // A book of the wrong shape stops there: one problem.
    assert_eq!(
        located(&e),
        [("pricing.inline.charges[1].price.model", Some(32))],
        "{e:#?}"
    );
    assert!(
        e[0].message.starts_with("unknown variant `flat_rate`"),
        "{e:#?}"
    );

    let toml = TOML.replace("model = \"per_unit\"", "model = \"flat_rate\"");
    let e = errors_of("demo.toml", &toml);
    assert_eq!(
        located(&e),
        [("pricing.inline.charges[1].price.model", Some(47))],
        "{e:#?}"
    );
}

const TOML: &str = r#"id = "demo"
version = "1.0.0"
title = "Demo"
effective = 2026-01-01
jurisdiction = "FR"
governing_law = "x"
language = "en"
notice = { days = 1, on_expiry = "move" }

[[grants]]
api = "weather"
operations = ["getWeather"]

[pricing.inline]
id = "demo-prices"
version = "1"
currency = "EURO"
base_fee = { amount = "-10" }

[[pricing.inline.meters]]
id = "calls"
aggregate = "count"

[[pricing.inline.charges]]
id = "calls"
meter = "calls"

[pricing.inline.charges.price]
model = "graduated"

[[pricing.inline.charges.price.tiers]]
up_to = "1000"
unit_price = "0.01"

[[pricing.inline.charges.price.tiers]]
up_to = "500"
unit_price = "0.005"

[[pricing.inline.charges.price.tiers]]
up_to = "2000"
unit_price = "-0.001"

[[pricing.inline.charges]]
id = "storage"
meter = "bytes"
[pricing.inline.charges.price]
model = "per_unit"
unit_price = "0.1"
"#;

#[test]
fn every_book_problem_at_its_toml_line() {
    let e = errors_of("demo.toml", TOML);
    assert_eq!(
        located(&e),
        [
            ("pricing.inline.currency", Some(17)),
            ("pricing.inline.base_fee.amount", Some(18)),
            ("pricing.inline.charges[0].price.tiers[1].up_to", Some(36)),
            // TOML has no null, so its last tier cannot be open (billing needs `up_to:
            // null` written out).
            ("pricing.inline.charges[0].price.tiers[2].up_to", Some(40)),
            (
                "pricing.inline.charges[0].price.tiers[2].unit_price",
                Some(41)
            ),
            ("pricing.inline.charges[1].meter", Some(45)),
        ],
        "{e:#?}"
    );
}

#[test]
fn book_problems_in_json_have_lines_too() {
    let path = fixture_path("fintech-payments.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"percent\": \"1.4\"", "\"percent\": \"140\"")
        .replace(
            "\"meter\": \"payment-calls\"",
            "\"meter\": \"payment-count\"",
        );
    let e = errors_of("fintech-payments.json", &text);
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
    assert_eq!(
        located(&e),
        [
            ("pricing.inline.charges[0].meter", line("payment-count")),
            ("pricing.inline.charges[1].price.percent", line("\"140\"")),
        ],
        "{e:#?}"
    );
}

#[test]
fn a_billing_period_quota_needs_the_books_periods() {
    let sheet = format!(
        "{}limits:\n  time_zone: Europe/Paris\n  quota: [{{ requests: 1000, per: billing_period }}]\n",
        YAML.split("pricing:").next().unwrap()
    );
    let book = "pricing:\n  inline:\n    id: p\n    version: \"1\"\n    currency: EUR\n";
    let e = errors_of("demo.yaml", &format!("{sheet}{book}"));
    assert_eq!(located(&e), [("limits.quota[0].per", Some(14))], "{e:#?}");
    assert!(
        e[0].message.contains("bills in calendar months in UTC"),
        "{e:#?}"
    );
    let same = format!(
        "{sheet}{book}    billing_cycle: {{ interval: month, anchor: subscription, time_zone: Europe/Paris }}\n"
    );
    assert_eq!(errors_of("demo.yaml", &same), []);
}
