//! The JSON Schema: derived from the model, accepted by every fixture, and listing every
//! structural problem of a sheet at once.

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;
use tollgate_terms::schema::{SCHEMA_ID, check, json_schema};
use tollgate_terms::{Format, TermsError, load::as_json, parse_str};

#[test]
fn the_schema_has_its_id_and_is_closed() {
    let s = json_schema();
    assert_eq!(s["$id"], SCHEMA_ID);
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(s["title"], "Tollgate term sheet");
    assert_eq!(s["additionalProperties"], false);
    assert_eq!(s["type"], "object");
    // Doc comments are descriptions; every struct is closed like the parser.
    assert!(s["properties"]["notice"]["description"].is_string());
    for (name, def) in s["$defs"].as_object().unwrap() {
        if def["type"] == "object" {
            assert_eq!(def["additionalProperties"], false, "{name}");
        }
    }
}

#[test]
fn every_fixture_conforms() {
    for f in FIXTURES {
        let path = fixture_path(f);
        let text = std::fs::read_to_string(&path).unwrap();
        let format = Format::from_path(&path).unwrap();
        let doc = as_json(format, &text).unwrap_or_else(|| panic!("{f}: not JSON data"));
        assert_eq!(check(&doc), [], "{f}");
        // The canonical form the model writes conforms too.
        let written = serde_json::to_value(sheet(f)).unwrap();
        assert_eq!(check(&written), [], "{f} as written by the model");
    }
}

fn base() -> Value {
    json!({
        "id": "demo", "version": "1.0.0", "title": "Demo", "effective": "2026-01-01",
        "jurisdiction": "FR", "governing_law": "French law", "language": "en",
        "grants": [{ "api": "weather", "operations": ["getWeather", "GET /alerts/{region}"] }],
        "notice": { "days": 30, "on_expiry": "move" }
    })
}

#[test]
fn accepts_what_the_parser_accepts() {
    assert_eq!(check(&base()), []);
    let mut d = base();
    d["windows"] = json!({ "time_zone": "Europe/Paris", "allowed": [
        { "days": ["mon", "Tuesday", "FRI"], "from": "00:00", "to": "24:00" },
        { "days": ["sat"], "from": "08:00:00", "to": "12:30" }
    ], "blackout": [{ "from": "2026-12-25", "to": null }] });
    d["sla"] = json!({ "availability": "99.9", "credits": [{ "below": 99, "credit": 10.5 }] });
    d["pricing"] = json!({ "ref": { "id": "p1", "sha256": "ab" }, "inline": null });
    d["grants"][0]["operations"] = json!(["get /x/{id}/", " getWeather ", "DELETE /"]);
    d["windows"]["allowed"][0]["days"]
        .as_array_mut()
        .unwrap()
        .push(json!("sunday"));
    assert_eq!(check(&d), []);
}

#[test]
fn rejects_what_the_parser_rejects() {
    let cases = [
        ("/windows/allowed/0/from", json!("25:00")),
        ("/windows/allowed/0/from", json!("8:00")),
        ("/windows/allowed/0/from", json!("08:00:30")),
        ("/windows/allowed/0/days/0", json!("monday!")),
        ("/windows/blackout/0/from", json!("2026-02-30")),
        ("/windows/blackout/0/from", json!("2026-1-01")),
        ("/sla/availability", json!("ninety")),
        ("/grants/0/operations/0", json!("FETCH /x")),
        ("/grants/0/operations/0", json!("GET x")),
        ("/grants/0/operations/0", json!("GET /a//b")),
        ("/grants/0/operations/0", json!("get`Weather")),
        ("/grants/0/operations/0", json!("")),
    ];
    for (pointer, bad) in cases {
        let mut d = base();
        d["windows"] = json!({ "time_zone": "UTC",
            "allowed": [{ "days": ["mon"], "from": "08:00", "to": "09:00" }],
            "blackout": [{ "from": "2026-12-25" }] });
        d["sla"] = json!({ "availability": "99.9" });
        *d.pointer_mut(pointer).unwrap() = bad.clone();
        let text = d.to_string();
        assert!(
            parse_str(Path::new("x.json"), None, &text).is_err(),
            "the parser accepts {bad} at {pointer}"
        );
        assert_eq!(check(&d).len(), 1, "{bad} at {pointer}: {:?}", check(&d));
    }
    let mut d = base();
    let book = json!({ "id": "p1", "version": "1", "currency": "EUR" });
    d["pricing"] = json!({ "ref": { "id": "p1", "sha256": "ab" }, "inline": book });
    let issues = check(&d);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].field, "pricing");
    assert!(
        issues[0]
            .message
            .contains("exactly one of `inline` and `ref`")
    );
}

const BROKEN: &str = r#"{
  "id": "demo",
  "version": "1.0.0",
  "title": "Demo",
  "effective": "2026-01-01",
  "jurisdiction": "FR",
  "language": "en",
  "licence": "MIT",
  "grants": [
    {
      "api": "weather",
      "operations": ["getWeather", 42]
    }
  ],
  "limits": { "rate": [{ "requests": "ten", "per": "fortnight" }] },
  "windows": {
    "time_zone": "Europe/Paris",
    "allowed": [{ "days": ["mon"], "from": "8h", "to": "18:00" }]
  },
  "notice": { "days": 30, "on_expiry": "move" }
}
"#;

#[test]
fn every_structural_problem_at_once() {
    let e: Vec<TermsError> = parse_str(Path::new("demo.json"), None, BROKEN).unwrap_err();
    let got: Vec<(&str, Option<usize>)> = e.iter().map(|e| (e.field.as_str(), e.line)).collect();
    let shown = e
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        got,
        [
            ("licence", Some(8)),
            ("grants[0].operations[1]", Some(12)),
            ("limits.rate[0].requests", Some(15)),
            ("limits.rate[0].per", Some(15)),
            ("windows.allowed[0].from", Some(18)),
            ("governing_law", None),
        ],
        "{shown}"
    );
    let msg = |field: &str| &e.iter().find(|e| e.field == field).unwrap().message;
    assert!(
        msg("licence").starts_with("unknown field `licence`, expected one of"),
        "{shown}"
    );
    assert_eq!(msg("governing_law"), "missing field `governing_law`");
    assert_eq!(
        msg("grants[0].operations[1]"),
        "invalid type: integer `42`, expected a string"
    );
    assert_eq!(
        msg("limits.rate[0].requests"),
        "expected an integer, found \"ten\""
    );
    assert_eq!(
        msg("limits.rate[0].per"),
        "\"fortnight\" is not one of `second`, `minute`, `hour`"
    );
    // Hand-parsed types speak with the parser's words.
    assert_eq!(
        msg("windows.allowed[0].from"),
        "\"8h\" is not a time of day HH:MM (00:00 to 24:00)"
    );
    assert!(
        e[0].to_string()
            .starts_with("demo.json:8: licence: unknown field"),
        "{shown}"
    );
}

#[test]
fn yaml_and_toml_list_every_problem_too() {
    let yaml = "id: demo\nversion: 1.0.0\ntitle: Demo\neffective: 2026-13-01\njurisdiction: FR\ngoverning_law: x\nlanguage: en\ngrants:\n  - api: weather\n    operations: [getWeather]\n    data: { sensitivity: secret }\nnotice: { days: -1, on_expiry: move }\n";
    let e = parse_str(Path::new("demo.yaml"), None, yaml).unwrap_err();
    let got: Vec<(&str, Option<usize>)> = e.iter().map(|e| (e.field.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("effective", Some(4)),
            ("grants[0].data.sensitivity", Some(11)),
            ("notice.days", Some(12)),
        ],
        "{e:#?}"
    );
    assert!(
        e[1].message.contains("`public`, `personal`, `sensitive`"),
        "{e:#?}"
    );

    let toml = "id = \"demo\"\nversion = \"1.0.0\"\ntitle = \"Demo\"\neffective = 2026-01-01\njurisdiction = \"FR\"\ngoverning_law = \"x\"\nlanguage = \"en\"\nnotice = { days = 1, on_expiry = \"never\" }\n\n[[grants]]\napi = \"weather\"\noperations = [\"getWeather\"]\n\n[[windows.allowed]]\ndays = [\"mon\"]\nfrom = 08:00:00\nto = \"25:00\"\n";
    let e = parse_str(Path::new("demo.toml"), None, toml).unwrap_err();
    let got: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        got,
        [
            "notice.on_expiry",
            "windows.allowed[0].to",
            "windows.time_zone"
        ],
        "{e:#?}"
    );
}

#[test]
fn the_parser_stays_the_authority_on_yaml_plain_scalars() {
    // YAML reads `2024` as a number; the parser takes it as the text a text field wants.
    let yaml = "id: demo\nversion: 1.0.0\ntitle: 2024\neffective: 2026-01-01\njurisdiction: FR\ngoverning_law: x\nlanguage: en\ngrants:\n  - api: weather\n    operations: [getWeather]\nnotice: { days: 30, on_expiry: move }\n";
    let doc = as_json(Format::Yaml, yaml).unwrap();
    assert_eq!(check(&doc).len(), 1);
    let l = parse_str(Path::new("demo.yaml"), None, yaml).unwrap();
    assert_eq!(l.sheet.title, "2024");
}

#[test]
fn inline_prices_follow_the_price_book_schema() {
    let s = json_schema();
    assert_eq!(
        s["$defs"]["Pricing"]["properties"]["inline"]["anyOf"][0]["$ref"],
        "#/$defs/PriceBook"
    );
    assert_eq!(s["$defs"]["PriceBook"]["title"], "Tollgate price book");
    assert!(s["$defs"]["PriceBook.Tier"].is_object());
    // Every reference, billing's renamed ones included, resolves in this one file.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x.as_str()) {
                        ("$ref", Some(r)) => out.push(r),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&s, &mut all);
    for r in all {
        assert!(s.pointer(&r[1..]).is_some(), "{r} does not resolve");
    }

    let mut d = base();
    d["pricing"] = json!({ "inline": {
        "id": "p", "version": "1", "currency": "EUR", "colour": "red",
        "base_fee": { "amount": 9.5 }
    } });
    let mut fields: Vec<String> = check(&d).into_iter().map(|i| i.field).collect();
    fields.sort();
    assert_eq!(
        fields,
        ["pricing.inline.base_fee.amount", "pricing.inline.colour"]
    );
}
