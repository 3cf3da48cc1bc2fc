//! Price books: parsing from a term sheet's inline JSON, validation with pointers, the
//! canonical hash and the JSON Schema.

use crate::support::*;
use serde_json::json;
use tollgate_billing::*;

fn problems(v: serde_json::Value) -> Vec<String> {
    PriceBook::from_json(&v)
        .unwrap_err()
        .into_iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn every_semantic_problem_is_reported_with_its_pointer() {
    let got = problems(json!({
        "id": "Bad Id",
        "version": "",
        "currency": "usd",
        "billing_cycle": { "time_zone": "Mars/Olympus" },
        "base_fee": { "amount": "-1" },
        "meters": [
            { "id": "calls", "aggregate": "count", "field": "status" },
            { "id": "calls", "aggregate": "sum" },
            { "id": "ops", "aggregate": "max", "field": "operation",
              "filter": { "methods": ["get"], "equals": { "colour": "red", "fields.x": 1.5 } } }
        ],
        "charges": [
            { "id": "a", "meter": "nope", "price": { "model": "per_unit", "unit_price": "0.1" } },
            { "id": "b", "meter": "calls", "price": { "model": "graduated", "tiers": [
                { "up_to": "100", "unit_price": "1" },
                { "up_to": "50", "unit_price": "1" },
                { "up_to": "200", "unit_price": "1" } ] } },
            { "id": "c", "meter": "calls", "free_units": "5",
              "price": { "model": "percentage", "percent": "120", "min_fee": "2", "max_fee": "1" } },
            { "id": "d", "meter": "calls",
              "price": { "model": "package", "package_size": "0", "package_price": "1" } },
            { "id": "d", "meter": "calls",
              "price": { "model": "per_unit", "unit_price": "0.000000000000000000001" } }
        ]
    }));
    let expected = [
        "/id: must be 1–63 lowercase letters, digits or '-'",
        "/version: must be 1–63 characters",
        "/currency: \"usd\" is not an active ISO 4217 code",
        "/billing_cycle/time_zone: \"Mars/Olympus\" is not an IANA time zone",
        "/base_fee/amount: must not be negative",
        "/meters/0/field: a count meter counts events: remove field",
        "/meters/1/id: meter \"calls\" is defined twice",
        "/meters/1/field: this aggregate needs a field",
        "/meters/2/field: \"operation\" is not numeric: sum and max need a number",
        "/meters/2/filter/methods/0: an HTTP method in capitals (GET, POST, …)",
        "/meters/2/filter/equals/colour: \"colour\" is not an event field: use request_bytes, response_bytes, latency_ms, status, operation, method or fields.<name>",
        "/meters/2/filter/equals/fields.x: must be a string, an integer or a boolean",
        "/charges/0/meter: no meter \"nope\" in this book",
        "/charges/1/price/tiers/1/up_to: must be more than the previous tier's up_to (and 0)",
        "/charges/1/price/tiers/2/up_to: the last tier must be open (null)",
        "/charges/2/meter: a percentage charge needs a sum meter over the amount field",
        "/charges/2/free_units: percentage models use free_events or free_amount instead",
        "/charges/2/price/percent: must be a percentage from 0 to 100",
        "/charges/2/price/min_fee: must not be more than max_fee",
        "/charges/3/price/package_size: must be more than 0",
        "/charges/4/id: charge \"d\" is defined twice",
        "/charges/4/price/unit_price: has more than 20 decimal places",
    ];
    assert_eq!(got, expected);
}

#[test]
fn shape_errors_point_at_the_field() {
    // An amount written as a float is refused: it may already have been rounded.
    let got = problems(json!({
        "id": "x", "version": "1", "currency": "USD",
        "base_fee": { "amount": 49.9 }
    }));
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("/base_fee/amount: 49.9 is a number with a fraction"),
        "{got:?}"
    );
    let got = problems(json!({ "id": "x", "version": "1", "currency": "USD", "colour": "red" }));
    assert!(got[0].contains("unknown field `colour`"), "{got:?}");
    let got = problems(json!({
        "id": "x", "version": "1", "currency": "USD",
        "meters": [{ "id": "m", "aggregate": "count" }],
        "charges": [{ "id": "c", "meter": "m", "price": { "model": "per_unit", "unit_price": "1", "extra": 1 } }]
    }));
    assert!(got[0].starts_with("/charges/0/price"), "{got:?}");
}

#[test]
fn the_documented_example_parses() {
    let src = include_str!("../../src/model.rs");
    let start = src.find("//! ```json\n").unwrap() + "//! ```json\n".len();
    let end = start + src[start..].find("//! ```\n").unwrap();
    let text: String = src[start..end]
        .lines()
        .map(|l| {
            l.strip_prefix("//! ")
                .unwrap_or(l.trim_start_matches("//!"))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    book(v);
}

#[test]
fn hash_ignores_key_order_and_trailing_zeros_but_not_prices() {
    let a = book(json!({
        "id": "p", "version": "1", "currency": "EUR",
        "base_fee": { "amount": "10.00" }
    }));
    let b = book(json!({
        "currency": "EUR", "base_fee": { "timing": "in_advance", "amount": "10" },
        "version": "1", "id": "p", "rounding": "half_up"
    }));
    assert_eq!(a.sha256(), b.sha256());
    assert_eq!(a.sha256().len(), 64);
    let c = book(json!({
        "id": "p", "version": "1", "currency": "EUR",
        "base_fee": { "amount": "10.01" }
    }));
    assert_ne!(a.sha256(), c.sha256());
    // The canonical form round-trips: serializing and reading back gives the same book.
    let again = PriceBook::from_json(&serde_json::to_value(&a).unwrap()).unwrap();
    assert_eq!(again, a);
    assert_eq!(a.reference().sha256, a.sha256());
}

#[test]
fn json_schema_describes_the_book() {
    let s = PriceBook::json_schema();
    assert_eq!(s["title"], "Tollgate price book");
    let props = s["properties"].as_object().unwrap();
    for k in [
        "id",
        "currency",
        "base_fee",
        "meters",
        "charges",
        "minimum_commitment",
    ] {
        assert!(props.contains_key(k), "{k}");
    }
    assert_eq!(s["additionalProperties"], false);
    let text = serde_json::to_string(&s).unwrap();
    for model in [
        "per_unit",
        "package",
        "graduated",
        "volume",
        "percentage",
        "graduated_percentage",
    ] {
        assert!(text.contains(&format!("\"{model}\"")), "{model}");
    }
}
