//! Every class of error names the file, the line and the field.

use std::path::Path;
use tollgate_manifest::{Catalog, Format, ManifestError, load, parse_str, plan};

fn rendered(errors: &[ManifestError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// `file:line: field` of each error (without the message).
fn places(errors: &[ManifestError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            format!(
                "{}:{}: {}",
                e.file.display(),
                e.line.map_or("?".into(), |l| l.to_string()),
                e.field
            )
        })
        .collect()
}

fn yaml_errors(text: &str) -> Vec<ManifestError> {
    parse_str(Path::new("m.yaml"), Format::Yaml, text).unwrap_err()
}

/// Errors only `plan` can see, against an empty marketplace.
fn plan_errors(format: Format, file: &str, text: &str) -> Vec<ManifestError> {
    let m = parse_str(Path::new(file), format, text).unwrap();
    plan(&m, &Catalog::default()).unwrap_err()
}

const ORG: &str = "orgs:\n  - slug: acme\n    name: Acme\n    kind: provider\n";

#[test]
fn display_is_file_line_field_message() {
    let e = ManifestError {
        file: "a/b.yaml".into(),
        line: Some(3),
        field: "apis[1].base_path".into(),
        message: "is bad".into(),
    };
    assert_eq!(e.to_string(), "a/b.yaml:3: apis[1].base_path: is bad");
}

#[test]
fn yaml_type_errors_carry_path_and_line() {
    let e = yaml_errors(&format!(
        "{ORG}apis:\n  - org: acme\n    slug: w\n    name: W\n    base_path: /w\n    upstreams: 5\n"
    ));
    assert_eq!(places(&e), ["m.yaml:10: apis[0].upstreams"]);
    assert!(e[0].message.contains("invalid type"), "{}", e[0].message);
    assert!(
        !e[0].message.contains("line"),
        "position not repeated: {}",
        e[0].message
    );
}

#[test]
fn unknown_keys_are_errors() {
    let e = yaml_errors("orgs:\n  - slug: acme\n    name: Acme\n    colour: red\n    kind: both\n");
    assert_eq!(places(&e), ["m.yaml:4: orgs[0].colour"]);
    assert!(
        e[0].message.contains("unknown field `colour`"),
        "{}",
        e[0].message
    );
    let e = yaml_errors("org:\n  - slug: acme\n");
    assert_eq!(places(&e), ["m.yaml:1: org"]);
}

#[test]
fn bad_enum_values_name_the_field() {
    let e = yaml_errors("orgs:\n  - slug: acme\n    name: Acme\n    kind: seller\n");
    assert_eq!(places(&e), ["m.yaml:4: orgs[0].kind"]);
}

#[test]
fn toml_and_json_syntax_and_type_errors() {
    let toml = "[[orgs]]\nslug = \"acme\"\nname = 7\nkind = \"provider\"\n";
    let e = parse_str(Path::new("m.toml"), Format::Toml, toml).unwrap_err();
    assert_eq!(places(&e), ["m.toml:3: orgs[0].name"]);
    let e = parse_str(Path::new("m.toml"), Format::Toml, "[[orgs]\nslug = 1\n").unwrap_err();
    assert_eq!(places(&e), ["m.toml:1: "]);

    let json = "{\n  \"orgs\": [\n    {\"slug\": \"acme\",\n     \"name\": \"Acme\",\n     \"kind\": 3}\n  ]\n}";
    let e = parse_str(Path::new("m.json"), Format::Json, json).unwrap_err();
    assert_eq!(places(&e), ["m.json:5: orgs[0].kind"]);
    let e = parse_str(Path::new("m.json"), Format::Json, "{\"orgs\": [}").unwrap_err();
    assert_eq!(places(&e), ["m.json:1: orgs[0]"]);
}

#[test]
fn invalid_values_are_all_reported_with_lines() {
    let e = yaml_errors(&format!(
        "{ORG}apis:
  - org: acme
    slug: ok
    name: Fine
    base_path: /fine
    upstreams: [http://a]
  - org: acme
    slug: Bad_Slug
    name: Bad
    base_path: weather/
    hosts:
      - ok.example.com
      - Not A Host
    upstreams: [ftp://x]
"
    ));
    assert_eq!(
        places(&e),
        [
            "m.yaml:12: apis[1].slug",
            "m.yaml:14: apis[1].base_path",
            "m.yaml:17: apis[1].hosts[1]",
            "m.yaml:18: apis[1].upstreams[0]",
        ]
    );
    assert!(
        rendered(&e)[1]
            .starts_with("m.yaml:14: apis[1].base_path: must be a path like /weather/v1")
    );
}

#[test]
fn invalid_values_in_toml_point_at_the_key() {
    let toml = "[[apps]]\norg = \"acme\"\nslug = \"dash\"\nname = \"  \"\n";
    let e = parse_str(Path::new("m.toml"), Format::Toml, toml).unwrap_err();
    assert_eq!(rendered(&e), ["m.toml:4: apps[0].name: must not be blank"]);
}

#[test]
fn sunset_goes_with_deprecated_only() {
    let api = "apis:\n  - org: acme\n    slug: w\n    name: W\n    base_path: /w\n    upstreams: [http://a]\n";
    let e = yaml_errors(&format!(
        "{ORG}{api}    status: published\n    sunset: 2027-01-01T00:00:00Z\n"
    ));
    assert_eq!(places(&e), ["m.yaml:12: apis[0].sunset"]);
    assert!(e[0].message.contains("only with status: deprecated"));
    let e = yaml_errors(&format!("{ORG}{api}    status: deprecated\n"));
    assert_eq!(
        places(&e),
        ["m.yaml:6: apis[0].sunset"],
        "missing field: the entity's line"
    );
    let e = yaml_errors(&format!(
        "{ORG}{api}    status: deprecated\n    sunset: tomorrow\n"
    ));
    assert_eq!(places(&e), ["m.yaml:12: apis[0].sunset"]);
}

#[test]
fn duplicates_across_files_point_at_the_repeat() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), ORG).unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "[[orgs]]\nslug = \"other\"\nname = \"O\"\nkind = \"consumer\"\n\n[[orgs]]\nslug = \"acme\"\nname = \"Again\"\nkind = \"provider\"\n",
    )
    .unwrap();
    let e = load(dir.path()).unwrap_err();
    let b = dir.path().join("b.toml");
    assert_eq!(places(&e), [format!("{}:7: orgs[1].slug", b.display())]);
    assert!(
        e[0].message.ends_with(&format!(
            "first defined at {}:2",
            dir.path().join("a.yaml").display()
        )),
        "{}",
        e[0].message
    );
}

#[test]
fn duplicate_apis_plans_and_base_paths() {
    let e = yaml_errors(&format!(
        "{ORG}apis:
  - {{org: acme, slug: w, name: W, base_path: /w, upstreams: [http://a]}}
  - {{org: acme, slug: w, name: W2, base_path: /w, upstreams: [http://a]}}
"
    ));
    assert_eq!(
        places(&e),
        ["m.yaml:7: apis[1].slug", "m.yaml:7: apis[1].base_path"]
    );
}

#[test]
fn missing_or_broken_openapi_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "openapi: 3.1.0\npaths: [\n").unwrap();
    let manifest = format!(
        "{ORG}apis:
  - org: acme
    slug: a
    name: A
    base_path: /a
    upstreams: [http://a]
    openapi: missing.yaml
  - org: acme
    slug: b
    name: B
    base_path: /b
    upstreams: [http://a]
    openapi: broken.yaml
"
    );
    let file = dir.path().join("m.yaml");
    std::fs::write(&file, manifest).unwrap();
    let e = load(&file).unwrap_err();
    let f = file.display();
    assert_eq!(
        places(&e),
        [
            format!("{f}:11: apis[0].openapi"),
            format!("{f}:17: apis[1].openapi")
        ]
    );
    assert!(e[0].message.starts_with("cannot read "), "{}", e[0].message);
    let broken = dir.path().join("broken.yaml");
    assert!(
        e[1].message.starts_with(&format!("{}:", broken.display())),
        "{}",
        e[1].message
    );
}

#[test]
fn plan_may_not_use_another_orgs_api() {
    let e = yaml_errors(&format!(
        "{ORG}plans:
  - org: acme
    slug: p
    name: P
    visibility: public
    apis:
      - api: other/weather
"
    ));
    assert_eq!(places(&e), ["m.yaml:11: plans[0].apis[0].api"]);
}

#[test]
fn unknown_orgs_and_apis_are_found_against_the_catalog() {
    let e = plan_errors(
        Format::Yaml,
        "m.yaml",
        &format!(
            "{ORG}apis:
  - org: nobody
    slug: w
    name: W
    base_path: /w
    upstreams: [http://a]
plans:
  - org: acme
    slug: p
    name: P
    visibility: public
    apis:
      - api: weather
apps:
  - org: acme
    slug: dash
    name: Dash
"
        ),
    );
    assert_eq!(
        places(&e),
        [
            "m.yaml:6: apis[0].org",
            "m.yaml:17: plans[0].apis[0].api",
            "m.yaml:19: apps[0].org",
        ]
    );
    assert!(e[0].message.starts_with("unknown org \"nobody\""));
    assert!(e[2].message.contains("is a provider"), "{}", e[2].message);
}

#[test]
fn publishing_a_plan_needs_published_apis() {
    let e = plan_errors(
        Format::Toml,
        "m.toml",
        r#"[[orgs]]
slug = "acme"
name = "Acme"
kind = "provider"

[[apis]]
org = "acme"
slug = "w"
name = "W"
base_path = "/w"
upstreams = ["http://a"]

[[plans]]
org = "acme"
slug = "p"
name = "P"
visibility = "public"
status = "published"
apis = [{ api = "w" }]
"#,
    );
    assert_eq!(places(&e), ["m.toml:18: plans[0].status"]);
    assert!(
        e[0].message.contains("API \"w\" is draft"),
        "{}",
        e[0].message
    );
}

#[test]
fn publishing_an_api_needs_a_document() {
    let e = plan_errors(
        Format::Yaml,
        "m.yaml",
        &format!(
            "{ORG}apis:\n  - {{org: acme, slug: w, name: W, base_path: /w, upstreams: [http://a], status: published}}\n"
        ),
    );
    assert_eq!(places(&e), ["m.yaml:6: apis[0].status"]);
}

#[test]
fn folder_errors_name_each_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "orgs:\n  - slug: x\n    name: ''\n    kind: both\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.json"), "{\"apps\": 1}").unwrap();
    let e = load(dir.path()).unwrap_err();
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].file, dir.path().join("b.json"), "parse errors first");
    assert_eq!(e[1].field, "orgs[0].name");
    assert_eq!(e[1].line, Some(3));
}
