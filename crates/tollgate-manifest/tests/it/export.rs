//! Export: applying an export changes nothing, and rebuilds the catalog from scratch.

use crate::apply_fixture;
use crate::sim;
use tollgate_manifest::{Catalog, Format, export, export_toml, parse_str, plan};

fn counts(c: &Catalog) -> [usize; 4] {
    [c.orgs.len(), c.apis.len(), c.plans.len(), c.apps.len()]
}

#[test]
fn export_round_trips() {
    for file in ["basic/catalog.yaml", "folder"] {
        let cat = apply_fixture(file);
        let yaml = export(&cat);
        let m = parse_str("export.yaml".as_ref(), Format::Yaml, &yaml)
            .unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
        assert!(plan(&m, &cat).unwrap().is_empty(), "{yaml}");

        let steps = plan(&m, &Catalog::default()).unwrap();
        let mut fresh = Catalog::default();
        sim::apply(&mut fresh, &steps);
        assert_eq!(counts(&fresh), counts(&cat));
        assert!(plan(&m, &fresh).unwrap().is_empty());
        assert_eq!(export(&fresh), yaml, "same catalog, same export");

        let toml = export_toml(&cat).unwrap();
        let t = parse_str("export.toml".as_ref(), Format::Toml, &toml)
            .unwrap_or_else(|e| panic!("{e:?}\n{toml}"));
        assert_eq!(t, m);
    }
}

#[test]
fn export_is_sorted_by_slug() {
    let cat = apply_fixture("basic/catalog.yaml");
    let yaml = export(&cat);
    let legacy = yaml.find("slug: legacy").unwrap();
    let weather = yaml.find("slug: weather").unwrap();
    assert!(legacy < weather);
    assert!(yaml.contains("sunset: 2027-01-01T00:00:00Z"), "{yaml}");
}
