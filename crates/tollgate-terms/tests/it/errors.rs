//! Invalid sheets are rejected with the file, the field path and, where known, the line;
//! every semantic problem is reported at once.

use crate::common::*;
use std::path::Path;
use tollgate_terms::{Format, KnownOperation, TermsError, parse_str};

const BASE: &str = "\
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
";

fn errors_of(text: &str) -> Vec<TermsError> {
    match parse_str(Path::new("demo.yaml"), None, text) {
        Err(e) => e,
        Ok(l) => l.validate().err().unwrap_or_default(),
    }
}

/// Asserts that some error has this field, line and a message containing `needle`.
fn expect(errors: &[TermsError], field: &str, line: Option<usize>, needle: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.field == field && e.line == line && e.message.contains(needle)),
        "no error {field}@{line:?} containing {needle:?} in:\n{}",
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_base_sheet_is_valid() {
    assert!(errors_of(BASE).is_empty(), "{:?}", errors_of(BASE));
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let text = BASE.replace("language: en\n", "language: en\nlanguge: fr\n");
    let e = errors_of(&text);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, Some(8));
    assert!(e[0].message.contains("unknown field `languge`"), "{}", e[0]);
    assert!(e[0].to_string().starts_with("demo.yaml:8: "), "{}", e[0]);
}

#[test]
fn negative_quota_is_a_parse_error_with_its_path() {
    let text = format!("{BASE}limits:\n  quota:\n    - requests: -5\n      per: day\n");
    let e = errors_of(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].field, "limits.quota[0].requests");
    assert_eq!(e[0].line, Some(14));
}

#[test]
fn every_semantic_problem_at_once_with_lines() {
    let text = "\
id: Demo_Sheet
version: one
title: Demo
effective: 2026-01-01
jurisdiction: France
governing_law: French law
language: en
grants:
  - api: weather
    operations: [getWeather, getWeather]
    data:
      categories: [location, dna]
limits:
  rate:
    - requests: 0
      per: second
    - group: nope
      requests: 5
      per: minute
windows:
  time_zone: Europe/Atlantis
  allowed:
    - days: [mon, tue]
      from: \"09:00\"
      to: \"12:00\"
    - days: [tue]
      from: \"11:00\"
      to: \"13:00\"
    - days: [wed]
      from: \"18:00\"
      to: \"08:00\"
    - days: []
      from: \"08:00\"
      to: \"09:00\"
sla:
  availability: \"100.5\"
  credits:
    - { below: \"99\", credit: \"10\" }
    - { below: \"98\", credit: \"5\" }
notice: { days: 30, on_expiry: move }
";
    let e = errors_of(text);
    expect(&e, "id", Some(1), "lowercase");
    expect(&e, "version", Some(2), "semantic version");
    expect(&e, "jurisdiction", Some(5), "ISO 3166");
    expect(&e, "grants[0].operations[1]", Some(10), "already granted");
    expect(
        &e,
        "grants[0].data.categories[1]",
        Some(12),
        "unknown data category \"dna\"",
    );
    expect(&e, "data.purposes", None, "personal data");
    expect(&e, "limits.rate[0].requests", Some(15), "at least 1");
    expect(
        &e,
        "limits.rate[1].group",
        Some(17),
        "no grant is in group \"nope\"",
    );
    expect(&e, "windows.time_zone", Some(21), "not an IANA time zone");
    expect(
        &e,
        "windows.allowed[1]",
        Some(26),
        "overlaps windows.allowed[0] on Tuesday",
    );
    expect(&e, "windows.allowed[2].to", Some(31), "backwards");
    expect(&e, "windows.allowed[3].days", Some(32), "never applies");
    expect(&e, "sla.availability", Some(36), "at most 100");
    expect(&e, "sla.credits[1].credit", Some(39), "not monotonic");
    assert_eq!(e.len(), 14, "{e:#?}");
}

#[test]
fn toml_and_json_errors_have_lines_too() {
    let toml = "id = \"demo\"\nversion = \"1.0.0\"\ntitle = \"Demo\"\neffective = 2026-01-01\njurisdiction = \"FR\"\ngoverning_law = \"x\"\nlanguage = \"en\"\nnotice = { days = 1, on_expiry = \"move\" }\n\n[[grants]]\napi = \"weather\"\noperations = [\"getWeather\"]\n\n[windows]\ntime_zone = \"Mars/Olympus\"\n";
    let e = errors_of_named("demo.toml", toml);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].field.as_str(), e[0].line),
        ("windows.time_zone", Some(15))
    );

    let json = "{\n \"id\": \"demo\", \"version\": \"1.0.0\", \"title\": \"Demo\",\n \"effective\": \"2026-01-01\", \"jurisdiction\": \"FR\",\n \"governing_law\": \"x\", \"language\": \"en\",\n \"notice\": {\"days\": 1, \"on_expiry\": \"move\"},\n \"grants\": [\n  {\"api\": \"weather\",\n   \"operations\": [\"getWeather\"], \"scopes\": [\"a b\"]}\n ]\n}\n";
    let e = errors_of_named("demo.json", json);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(
        (e[0].field.as_str(), e[0].line),
        ("grants[0].scopes[0]", Some(8))
    );

    let bad_json = json.replace("\"on_expiry\": \"move\"", "\"on_expiry\": \"vanish\"");
    let e = errors_of_named("demo.json", &bad_json);
    assert_eq!(
        (e[0].field.as_str(), e[0].line),
        ("notice.on_expiry", Some(5))
    );
}

fn errors_of_named(file: &str, text: &str) -> Vec<TermsError> {
    match parse_str(Path::new(file), None, text) {
        Err(e) => e,
        Ok(l) => l.validate().err().unwrap_or_default(),
    }
}

#[test]
fn format_is_sniffed_without_extension() {
    let l = parse_str(Path::new("sheet"), None, BASE).unwrap();
    assert_eq!(l.format, Format::Yaml);
}

#[test]
fn operations_are_checked_against_the_api_document() {
    let text = BASE.replace(
        "operations: [getWeather]",
        "operations: [getWeather, getRadar, \"GET /alerts/{id}\", \"POST /alerts/{id}\"]",
    );
    let l = parse_str(Path::new("demo.yaml"), None, &text).unwrap();
    let ops: Vec<KnownOperation> = vec![
        ("weather", "getWeather", "GET", "/weather").into(),
        ("weather", "getAlerts", "GET", "/alerts/{region}").into(),
    ];
    let e = l.validate_against(&ops).unwrap_err();
    let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["grants[0].operations[1]", "grants[0].operations[3]"],
        "{e:?}"
    );
    assert!(e[0].message.contains("unknown operation \"getRadar\""));
    // The route resolves to its operationId for the policy compiler.
    let ok = parse_str(
        Path::new("demo.yaml"),
        None,
        &BASE.replace("[getWeather]", "[\"GET /alerts/{x}\"]"),
    )
    .unwrap()
    .validate_against(&ops)
    .unwrap();
    assert_eq!(
        ok.operations()[0].operation_id.as_deref(),
        Some("getAlerts")
    );
    // An API the document does not describe is unknown.
    let e = parse_str(
        Path::new("demo.yaml"),
        None,
        &BASE.replace("api: weather", "api: maps"),
    )
    .unwrap()
    .validate_against(&ops)
    .unwrap_err();
    assert_eq!(e[0].field, "grants[0].api");
    // The same operation named by id and by route is a duplicate once resolved.
    let e = parse_str(
        Path::new("demo.yaml"),
        None,
        &BASE.replace("[getWeather]", "[getAlerts, \"get /alerts/{r}\"]"),
    )
    .unwrap()
    .validate_against(&ops)
    .unwrap_err();
    assert!(e[0].message.contains("already granted"), "{e:?}");
}

#[test]
fn sensitive_data_rules() {
    let text = BASE.replace(
        "operations: [getWeather]",
        "operations: [getWeather]\n    data: { categories: [health], sensitivity: personal, consent_required: false }",
    ) + "data: { purposes: [healthcare], regions: [] }\n";
    let e = errors_of(&text);
    expect(
        &e,
        "grants[0].data.sensitivity",
        Some(11),
        "at least sensitive",
    );
    expect(
        &e,
        "grants[0].data.consent_required",
        Some(11),
        "cannot be false",
    );
    expect(&e, "data.regions", Some(13), "allows no region");
    assert_eq!(e.len(), 3, "{e:?}");
}

#[test]
fn inline_prices_must_be_exact() {
    let text = format!(
        "{BASE}pricing:\n  inline:\n    id: demo\n    version: \"1\"\n    currency: EUR\n    meters: [{{ id: calls, aggregate: count }}]\n    charges:\n      - id: calls\n        meter: calls\n        price: {{ model: per_unit, unit_price: 0.002 }}\n"
    );
    let e = errors_of(&text);
    // Once, in our words; the price book does not repeat it.
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].field, "pricing.inline.charges[0].price.unit_price");
    assert_eq!(e[0].line, Some(21));
    assert!(
        e[0].message
            .starts_with("write decimal amounts as strings (\"0.002\")"),
        "{e:?}"
    );
    let both = format!("{BASE}pricing:\n  inline: {{}}\n  ref: {{ id: a, sha256: b }}\n");
    let e = errors_of(&both);
    assert!(e[0].message.contains("exactly one"), "{e:?}");
}

#[test]
fn fixtures_are_valid() {
    for f in FIXTURES {
        let v = valid(f);
        assert_eq!(v.sha256().len(), 64);
    }
}
