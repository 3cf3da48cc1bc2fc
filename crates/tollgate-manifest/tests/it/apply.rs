//! Planning: order, idempotence, updates, lifecycles.

use crate::fixture;
use crate::sim;
use tollgate_core::model::{ApiStatus, PlanStatus};
use tollgate_manifest::{Catalog, FieldChange, Format, Step, Target, load, parse_str, plan};

fn descriptions(steps: &[Step]) -> Vec<String> {
    steps.iter().map(ToString::to_string).collect()
}

/// The basic fixture applied to an empty marketplace.
fn applied() -> Catalog {
    let m = load(&fixture("basic/catalog.yaml")).unwrap();
    let mut cat = Catalog::default();
    let steps = plan(&m, &cat).unwrap();
    sim::apply(&mut cat, &steps);
    cat
}

#[test]
fn plan_against_an_empty_marketplace_creates_in_order() {
    let m = load(&fixture("basic/catalog.yaml")).unwrap();
    let steps = plan(&m, &Catalog::default()).unwrap();
    assert_eq!(
        descriptions(&steps),
        [
            "create org acme-weather",
            "create org globex",
            "create api acme-weather/weather",
            "create api acme-weather/legacy",
            "publish api acme-weather/weather",
            "publish api acme-weather/legacy",
            "deprecate api acme-weather/legacy (sunset 2027-01-01T00:00:00Z)",
            "create plan acme-weather/free",
            "create plan acme-weather/pro",
            "publish plan acme-weather/free",
            "create app globex/dashboard",
        ]
    );
    assert!(steps.iter().all(|s| s.if_match().is_none()), "all new");
}

#[test]
fn applying_twice_changes_nothing() {
    for file in [
        "basic/catalog.yaml",
        "basic/catalog.toml",
        "basic/catalog.json",
        "folder",
    ] {
        let m = load(&fixture(file)).unwrap();
        let mut cat = Catalog::default();
        let steps = plan(&m, &cat).unwrap();
        sim::apply(&mut cat, &steps);
        assert_eq!(cat.apis.len(), m.apis.len());
        let again = plan(&m, &cat).unwrap();
        assert!(again.is_empty(), "{file}: {:?}", descriptions(&again));
    }
}

#[test]
fn bodies_are_the_admin_api_requests() {
    let m = load(&fixture("basic/catalog.yaml")).unwrap();
    let steps = plan(&m, &Catalog::default()).unwrap();
    let mut ids = tollgate_manifest::Ids::default();
    let (method, path) = steps[0].method_and_path(&ids).unwrap();
    assert_eq!((method, path.as_str()), ("POST", "/v1/orgs"));
    assert_eq!(
        steps[0].body(&ids).unwrap(),
        serde_json::json!({"slug": "acme-weather", "name": "Acme Weather", "kind": "provider"})
    );
    // Without the org's id the API cannot be created yet.
    assert!(steps[2].body(&ids).is_err());
    let org = uuid::Uuid::from_u128(7);
    ids.record(&steps[0], &serde_json::json!({"id": org.to_string()}))
        .unwrap();
    let body = steps[2].body(&ids).unwrap();
    assert_eq!(body["org_id"], org.to_string());
    assert_eq!(body["version"], "v1", "default filled in");
    assert_eq!(body["hosts"], serde_json::json!([]));
    assert_eq!(body["openapi"]["info"]["title"], "Weather");
    assert_eq!(
        steps[6].body(&ids).unwrap(),
        serde_json::json!({"status": "deprecated", "sunset": "2027-01-01T00:00:00Z"})
    );
}

#[test]
fn a_changed_field_is_one_update_with_its_change() {
    let cat = applied();
    let text = std::fs::read_to_string(fixture("basic/catalog.yaml"))
        .unwrap()
        .replace("name: Weather\n", "name: Weather Plus\n");
    let m = parse_str(&fixture("basic/catalog.yaml"), Format::Yaml, &text).unwrap();
    let steps = plan(&m, &cat).unwrap();
    assert_eq!(
        descriptions(&steps),
        [r#"update api acme-weather/weather: name "Weather" → "Weather Plus""#]
    );
    assert_eq!(
        steps[0].changes(),
        [FieldChange {
            field: "name".into(),
            from: "\"Weather\"".into(),
            to: "\"Weather Plus\"".into()
        }]
    );
    let weather = &cat
        .apis
        .iter()
        .find(|(a, _)| a.slug == "weather")
        .unwrap()
        .0;
    assert_eq!(steps[0].if_match(), Some(weather.revision));
    assert_eq!(
        steps[0]
            .body(&tollgate_manifest::Ids::from_catalog(&cat))
            .unwrap(),
        serde_json::json!({"name": "Weather Plus"})
    );
    let mut cat = cat;
    sim::apply(&mut cat, &steps);
    assert!(plan(&m, &cat).unwrap().is_empty());
}

#[test]
fn fields_left_out_are_not_compared_and_unlisted_objects_stay() {
    let mut cat = applied();
    cat.apis[0].0.version = "v9".into(); // the manifest does not say `version` for weather
    cat.apps[0].description = "set by hand".into();
    let mut other = cat.orgs[0].clone();
    other.slug = "not-in-the-manifest".into();
    other.id = tollgate_core::OrgId::new();
    cat.orgs.push(other);
    let m = load(&fixture("basic/catalog.yaml")).unwrap();
    assert!(plan(&m, &cat).unwrap().is_empty());
}

#[test]
fn changed_document_fields_and_status_chain_revisions() {
    let mut cat = applied();
    let text = std::fs::read_to_string(fixture("basic/catalog.yaml"))
        .unwrap()
        .replace("title: Legacy", "title: Legacy 2")
        .replace("version: v0", "version: v0.1")
        .replace(
            "status: deprecated\n    sunset: 2027-01-01T00:00:00Z",
            "status: retired",
        )
        .replace("approval_required: true", "approval_required: false");
    let m = parse_str(&fixture("basic/catalog.yaml"), Format::Yaml, &text).unwrap();
    let steps = plan(&m, &cat).unwrap();
    assert_eq!(
        descriptions(&steps),
        [
            "replace openapi document of api acme-weather/legacy",
            r#"update api acme-weather/legacy: version "v0" → "v0.1""#,
            "update plan acme-weather/pro: approval_required true → false",
            "retire api acme-weather/legacy",
        ]
    );
    let legacy = cat
        .apis
        .iter()
        .find(|(a, _)| a.slug == "legacy")
        .unwrap()
        .0
        .revision;
    let revs: Vec<_> = steps.iter().map(Step::if_match).collect();
    assert_eq!(revs[0], Some(legacy));
    assert_eq!(revs[1], Some(legacy + 1));
    assert_eq!(revs[3], Some(legacy + 2));
    sim::apply(&mut cat, &steps);
    assert!(plan(&m, &cat).unwrap().is_empty());
    let legacy = &cat.apis.iter().find(|(a, _)| a.slug == "legacy").unwrap().0;
    assert_eq!(legacy.status, ApiStatus::Retired);
}

#[test]
fn apis_are_published_before_their_plans() {
    let m = load(&fixture("folder")).unwrap();
    let steps = plan(&m, &Catalog::default()).unwrap();
    let d = descriptions(&steps);
    let api = d
        .iter()
        .position(|s| s == "publish api acme-weather/weather")
        .unwrap();
    let plan_create = d
        .iter()
        .position(|s| s == "create plan acme-weather/free")
        .unwrap();
    let plan_pub = d
        .iter()
        .position(|s| s == "publish plan acme-weather/free")
        .unwrap();
    assert!(api < plan_create && plan_create < plan_pub, "{d:?}");
    let Step::SetPlanStatus { target, to, .. } = &steps[plan_pub] else {
        panic!()
    };
    assert_eq!((*target, *to), (Target::New, PlanStatus::Published));
}

#[test]
fn impossible_transitions_are_errors_on_the_status_field() {
    let mut cat = applied();
    for (a, _) in &mut cat.apis {
        a.status = ApiStatus::Retired;
        a.sunset = None;
    }
    let file = fixture("basic/catalog.yaml");
    let m = load(&file).unwrap();
    let e = plan(&m, &cat).unwrap_err();
    let got: Vec<_> = e.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [(Some(16), "apis[0].status"), (Some(26), "apis[1].status")]
    );
    assert!(
        e[0].message
            .starts_with("cannot go from retired to published"),
        "{}",
        e[0].message
    );
    assert_eq!(e[0].file, file);

    let mut cat = applied();
    cat.plans[0].status = PlanStatus::Retired;
    let e = plan(&m, &cat).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].line, e[0].field.as_str()),
        (Some(42), "plans[0].status")
    );
}
