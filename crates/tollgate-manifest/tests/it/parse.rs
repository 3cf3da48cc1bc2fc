//! Reading manifests: the three formats, folders, referenced OpenAPI documents.

use crate::fixture;
use serde_json::json;
use tollgate_core::model::{ApiStatus, OrgKind, PlanStatus};
use tollgate_manifest::{Format, OpenApi, load, parse_str};

#[test]
fn yaml_toml_and_json_read_the_same() {
    let yaml = load(&fixture("basic/catalog.yaml")).unwrap();
    let toml = load(&fixture("basic/catalog.toml")).unwrap();
    let json = load(&fixture("basic/catalog.json")).unwrap();
    assert_eq!(yaml, toml);
    assert_eq!(yaml, json);

    assert_eq!(yaml.orgs.len(), 2);
    assert_eq!(yaml.orgs[1].kind, OrgKind::Consumer);
    let weather = &yaml.apis[0];
    assert_eq!(weather.version, None, "left out, so not compared");
    assert_eq!(weather.status, Some(ApiStatus::Published));
    // The referenced file is loaded, and YAML's integer key `200` becomes "200".
    let Some(OpenApi::Inline(doc)) = &weather.openapi else {
        panic!("not loaded: {:?}", weather.openapi);
    };
    assert_eq!(
        doc["paths"]["/forecast"]["get"]["responses"]["200"],
        json!({"description": "the forecast"})
    );
    assert_eq!(doc["info"]["version"], "1.0");
    let legacy = &yaml.apis[1];
    assert_eq!(
        legacy.sunset,
        Some(time::macros::datetime!(2027-01-01 0:00 UTC))
    );
    assert_eq!(yaml.plans[0].status, Some(PlanStatus::Published));
    assert_eq!(
        yaml.plans[0].apis[0].operations.as_deref(),
        Some(&["getForecast".to_owned()][..])
    );
    assert_eq!(yaml.plans[1].apis[1].operations, None);
    assert_eq!(yaml.apps[0].slug, "dashboard");
}

#[test]
fn a_folder_is_read_in_path_order_skipping_openapi_and_hidden_files() {
    let m = load(&fixture("folder")).unwrap();
    let orgs: Vec<_> = m.orgs.iter().map(|o| o.slug.as_str()).collect();
    assert_eq!(orgs, ["acme-weather", "globex"]);
    assert_eq!(m.apis.len(), 1);
    assert_eq!(m.plans.len(), 1);
    assert_eq!(m.apps.len(), 1, "sub folders are read too");
    let doc = m.apis[0]
        .openapi
        .as_ref()
        .and_then(OpenApi::document)
        .unwrap();
    assert_eq!(
        doc["paths"]["/forecast"]["get"]["operationId"],
        "getForecast"
    );
}

#[test]
fn empty_files_are_empty_manifests() {
    let m = parse_str("e.yaml".as_ref(), Format::Yaml, "# nothing yet\n").unwrap();
    assert!(m.orgs.is_empty() && m.apis.is_empty());
    let m = parse_str("e.toml".as_ref(), Format::Toml, "").unwrap();
    assert!(m.plans.is_empty());
    let m = parse_str("e.json".as_ref(), Format::Json, "{}").unwrap();
    assert!(m.apps.is_empty());
}
