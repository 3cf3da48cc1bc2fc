//! Term sheets in manifests: loading (files, inline, folders), planning (content
//! addressing, publishing, plans offering them), errors and export.

use crate::{apply_fixture, fixture, sim};
use serde_json::json;
use std::path::{Path, PathBuf};
use tollgate_core::model::TermsStatus;
use tollgate_manifest::{
    Catalog, Format, Ids, ManifestError, PlanTermsSpec, Step, Target, export, export_toml, load,
    parse_str, plan,
};

fn descriptions(steps: &[Step]) -> Vec<String> {
    steps.iter().map(ToString::to_string).collect()
}

/// A copy of the `terms` fixture in a temporary folder, with edits to the sheet file and
/// the manifest; returns the folder and the manifest's path.
fn edited(sheet: &[(&str, &str)], manifest: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = std::fs::read_to_string(fixture("terms/weather-pro.terms.yaml")).unwrap();
    for (from, to) in sheet {
        assert!(s.contains(from), "{from}");
        s = s.replace(from, to);
    }
    std::fs::write(dir.path().join("weather-pro.terms.yaml"), s).unwrap();
    let openapi = fixture("basic/weather.openapi.yaml");
    let mut m = std::fs::read_to_string(fixture("terms/catalog.yaml"))
        .unwrap()
        .replace("../basic/weather.openapi.yaml", openapi.to_str().unwrap());
    for (from, to) in manifest {
        assert!(m.contains(from), "{from}");
        m = m.replace(from, to);
    }
    let path = dir.path().join("catalog.yaml");
    std::fs::write(&path, m).unwrap();
    (dir, path)
}

fn line_of(file: &Path, needle: &str) -> usize {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn yaml_and_toml_read_the_same_sheets() {
    let yaml = load(&fixture("terms/catalog.yaml")).unwrap();
    let toml = load(&fixture("terms/catalog.toml")).unwrap();
    assert_eq!(yaml, toml);
    assert_eq!(yaml.terms.len(), 2);
    // The file is read; after loading every sheet is inline, as the admin API stores it.
    assert_eq!(yaml.terms[0].file, None);
    let pro = yaml.terms[0].document.as_ref().unwrap();
    assert_eq!(pro["id"], "weather-pro");
    assert_eq!(pro["limits"]["quota"][0]["requests"], 1_000_000);
    // TOML's bare date reads as the sheet's date text.
    assert_eq!(
        toml.terms[1].document.as_ref().unwrap()["effective"],
        "2026-01-01"
    );
    assert_eq!(
        yaml.plans[1].terms,
        Some(PlanTermsSpec {
            id: "weather-pro".into(),
            version: "1.0.0".into()
        })
    );
}

#[test]
fn sheets_are_stored_and_published_before_the_plans_offering_them() {
    let m = load(&fixture("terms/catalog.yaml")).unwrap();
    let steps = plan(&m, &Catalog::default()).unwrap();
    assert_eq!(
        descriptions(&steps),
        [
            "create org acme-weather",
            "create api acme-weather/weather",
            "publish api acme-weather/weather",
            "create terms acme-weather/weather-pro 1.0.0",
            "publish terms acme-weather/weather-pro 1.0.0",
            "create terms acme-weather/weather-free 1.0.0",
            "publish terms acme-weather/weather-free 1.0.0",
            "create plan acme-weather/free",
            "set terms of plan acme-weather/free to weather-free 1.0.0",
            "create plan acme-weather/pro",
            "set terms of plan acme-weather/pro to weather-pro 1.0.0",
            "publish plan acme-weather/free",
            "publish plan acme-weather/pro",
        ]
    );
    // Bodies: the sheet as JSON for its org; publishing takes none.
    let mut ids = Ids::default();
    let org = uuid::Uuid::from_u128(1);
    ids.record(&steps[0], &json!({"id": org.to_string()}))
        .unwrap();
    let (method, path) = steps[3].method_and_path(&ids).unwrap();
    assert_eq!((method, path.as_str()), ("POST", "/v1/terms"));
    let body = steps[3].body(&ids).unwrap();
    assert_eq!(body["org_id"], org.to_string());
    assert_eq!(body["document"], *m.terms[0].document.as_ref().unwrap());
    assert!(steps[4].method_and_path(&ids).is_err(), "id not known yet");
    let terms = uuid::Uuid::from_u128(2);
    ids.record(
        &steps[3],
        &json!({"id": terms.to_string(), "sheet_id": "weather-pro", "version": "1.0.0"}),
    )
    .unwrap();
    assert_eq!(
        steps[4].method_and_path(&ids).unwrap(),
        ("POST", format!("/v1/terms/{terms}/publish"))
    );
    assert_eq!(steps[4].body(&ids).unwrap(), serde_json::Value::Null);
    assert_eq!(steps[4].if_match(), None);
}

#[test]
fn applying_twice_changes_nothing() {
    for file in ["terms/catalog.yaml", "terms/catalog.toml", "terms-folder"] {
        let m = load(&fixture(file)).unwrap();
        let mut cat = Catalog::default();
        let steps = plan(&m, &cat).unwrap();
        sim::apply(&mut cat, &steps);
        assert_eq!(cat.terms.len(), 2, "{file}");
        let again = plan(&m, &cat).unwrap();
        assert!(again.is_empty(), "{file}: {:?}", descriptions(&again));
        for p in &cat.plans {
            let t = cat.terms.iter().find(|t| Some(t.id) == p.terms_id).unwrap();
            assert_eq!(t.status, TermsStatus::Published);
        }
    }
}

#[test]
fn a_changed_sheet_under_the_same_version_is_an_error() {
    let cat = apply_fixture("terms/catalog.yaml");
    // In a sheet file: the error is on the manifest's `file:`, naming the sheet's version.
    let (dir, manifest) = edited(&[("requests: 1000000", "requests: 2000000")], &[]);
    let m = load(&manifest).unwrap();
    let e = plan(&m, &cat).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].file, manifest);
    assert_eq!(e[0].field, "terms[0].file");
    assert_eq!(e[0].line, Some(line_of(&manifest, "file: ./weather-pro")));
    let sheet = dir.path().join("weather-pro.terms.yaml");
    assert!(
        e[0].message.starts_with(&format!(
            "{}:2: version: term sheet weather-pro 1.0.0",
            sheet.display()
        )),
        "{}",
        e[0].message
    );
    assert!(
        e[0].message.contains("a change is a new version"),
        "{}",
        e[0].message
    );

    // Inline: on the document's `version`.
    let (_dir, manifest) = edited(&[], &[("requests: 10000,", "requests: 20000,")]);
    let m = load(&manifest).unwrap();
    let e = plan(&m, &cat).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].field, "terms[1].document.version");
    assert_eq!(e[0].line, Some(line_of(&manifest, "      version: 1.0.0")));
}

#[test]
fn a_new_version_is_stored_published_and_offered() {
    let mut cat = apply_fixture("terms/catalog.yaml");
    let pro = cat.plans.iter().find(|p| p.slug == "pro").unwrap().clone();
    let (_dir, manifest) = edited(
        &[
            ("requests: 1000000", "requests: 2000000"),
            ("version: 1.0.0", "version: 1.1.0"),
        ],
        // Plan pro offers the new version.
        &[(
            "id: weather-pro\n      version: 1.0.0",
            "id: weather-pro\n      version: 1.1.0",
        )],
    );
    let m = load(&manifest).unwrap();
    let steps = plan(&m, &cat).unwrap();
    assert_eq!(
        descriptions(&steps),
        [
            "create terms acme-weather/weather-pro 1.1.0",
            "publish terms acme-weather/weather-pro 1.1.0",
            r#"update plan acme-weather/pro: terms {"id":"weather-pro","version":"1.0.0"} → {"id":"weather-pro","version":"1.1.0"}"#,
        ]
    );
    assert!(matches!(
        &steps[2],
        Step::UpdatePlan { terms: Some(t), .. } if t.version == "1.1.0"
    ));
    assert_eq!(steps[2].if_match(), Some(pro.revision));
    sim::apply(&mut cat, &steps);
    assert!(plan(&m, &cat).unwrap().is_empty());
    assert_eq!(cat.terms.len(), 3, "the old version is left alone");
    let pro = cat.plans.iter().find(|p| p.slug == "pro").unwrap();
    let offered = cat
        .terms
        .iter()
        .find(|t| Some(t.id) == pro.terms_id)
        .unwrap();
    assert_eq!(offered.version, "1.1.0");
    assert_eq!(offered.status, TermsStatus::Published);
}

#[test]
fn a_folder_skips_the_sheet_files_its_manifests_name() {
    let m = load(&fixture("terms-folder")).unwrap();
    assert_eq!(m.orgs.len(), 1);
    assert_eq!(m.terms.len(), 2);
    assert_eq!(m.plans.len(), 1);
    assert_eq!(m.terms[1].publish, Some(false));
    assert_eq!(m.terms[1].document.as_ref().unwrap()["id"], "weather-free");
    let steps = plan(&m, &Catalog::default()).unwrap();
    let d = descriptions(&steps);
    assert!(d.contains(&"create terms acme-weather/weather-free 1.0.0".to_owned()));
    assert!(
        !d.contains(&"publish terms acme-weather/weather-free 1.0.0".to_owned()),
        "publish: false keeps a draft: {d:?}"
    );
    let mut cat = Catalog::default();
    sim::apply(&mut cat, &steps);
    let free = cat
        .terms
        .iter()
        .find(|t| t.sheet_id == "weather-free")
        .unwrap();
    assert_eq!(free.status, TermsStatus::Draft);

    // Publishing the draft later is one step on the existing sheet.
    let text = std::fs::read_to_string(fixture("terms-folder/10-catalog.yaml"))
        .unwrap()
        .replace("publish: false", "publish: true");
    let m = parse_str(
        &fixture("terms-folder/10-catalog.yaml"),
        Format::Yaml,
        &text,
    )
    .unwrap();
    let steps = plan(&m, &cat).unwrap();
    assert_eq!(
        descriptions(&steps),
        ["publish terms acme-weather/weather-free 1.0.0"]
    );
    assert_eq!(
        steps[0],
        Step::PublishTerms {
            org: "acme-weather".into(),
            sheet_id: "weather-free".into(),
            version: "1.0.0".into(),
            target: Target::Existing {
                id: free.id,
                if_match: free.revision
            },
        }
    );
    sim::apply(&mut cat, &steps);
    assert!(plan(&m, &cat).unwrap().is_empty());
}

fn places(errors: &[ManifestError]) -> Vec<String> {
    errors
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e.line.map_or("?".into(), |l| l.to_string()),
                e.field
            )
        })
        .collect()
}

#[test]
fn invalid_sheets_name_the_entry_and_the_sheet_line() {
    let (dir, manifest) = edited(&[("requests: 50,", "requests: lots,")], &[]);
    let e = load(&manifest).unwrap_err();
    let line = line_of(&manifest, "file: ./weather-pro");
    assert_eq!(places(&e), [format!("{line}:terms[0].file")], "{e:?}");
    let sheet = dir.path().join("weather-pro.terms.yaml");
    assert!(
        e[0].message
            .starts_with(&format!("{}:19: limits.rate[0].requests", sheet.display())),
        "{}",
        e[0].message
    );

    // Inline: the field inside the document, on its line in the manifest.
    let (_dir, manifest) = edited(
        &[],
        &[(
            "requests: 10000, per: calendar_month",
            "requests: 10000, per: fortnight",
        )],
    );
    let e = load(&manifest).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].field.starts_with("terms[1].document.limits.quota[0]"),
        "{e:?}"
    );
    assert_eq!(e[0].line, Some(line_of(&manifest, "per: fortnight")));

    // In TOML, the inline document's table.
    let text = std::fs::read_to_string(fixture("terms/catalog.toml"))
        .unwrap()
        .replace("per = \"calendar_month\"", "per = \"fortnight\"");
    let e = parse_str(&fixture("terms/catalog.toml"), Format::Toml, &text).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].field.starts_with("terms[1].document.limits.quota[0]"),
        "{e:?}"
    );
    assert_eq!(
        e[0].line,
        Some(line_of(&fixture("terms/catalog.toml"), "[terms.document]"))
    );

    // A missing file, both `file` and `document`, neither.
    let (_dir, manifest) = edited(&[], &[("./weather-pro.terms.yaml", "./nope.yaml")]);
    let e = load(&manifest).unwrap_err();
    assert_eq!(e[0].field, "terms[0].file");
    assert!(
        e[0].message.contains("nope.yaml: cannot read"),
        "{}",
        e[0].message
    );
    let (_dir, manifest) = edited(&[], &[("    publish: true\n", "    file: x.yaml\n")]);
    let e = load(&manifest).unwrap_err();
    assert_eq!(e[0].field, "terms[1].document");
    assert!(e[0].message.contains("either"), "{}", e[0].message);
    let e = parse_str(
        Path::new("m.yaml"),
        Format::Yaml,
        "terms:\n  - org: acme\n    publish: true\n",
    )
    .unwrap_err();
    assert_eq!(places(&e), ["2:terms[0]"]);

    // The same (id, version) twice.
    let (_dir, manifest) = edited(
        &[],
        &[(
            "\nterms:\n",
            "\nterms:\n  - org: acme-weather\n    file: ./weather-pro.terms.yaml\n",
        )],
    );
    let e = load(&manifest).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].field, "terms[1]");
    assert!(
        e[0].message
            .starts_with("duplicate term sheet weather-pro 1.0.0"),
        "{}",
        e[0].message
    );
}

#[test]
fn plans_offer_only_known_published_sheets() {
    let (_dir, manifest) = edited(&[], &[("version: 1.0.0 }", "version: 9.0.0 }")]);
    let m = load(&manifest).unwrap();
    let e = plan(&m, &Catalog::default()).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].field, "plans[0].terms");
    assert_eq!(e[0].line, Some(line_of(&manifest, "version: 9.0.0 }")));
    assert!(
        e[0].message.starts_with("no term sheet weather-free 9.0.0"),
        "{}",
        e[0].message
    );

    let (_dir, manifest) = edited(&[], &[("publish: true", "publish: false")]);
    let m = load(&manifest).unwrap();
    let e = plan(&m, &Catalog::default()).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].field, "plans[0].terms");
    assert!(e[0].message.contains("stays a draft"), "{}", e[0].message);

    // A published sheet cannot go back to draft.
    let cat = apply_fixture("terms/catalog.yaml");
    let e = plan(&m, &cat).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].field, "terms[1].publish");
    assert!(
        e[0].message.contains("cannot be undone"),
        "{}",
        e[0].message
    );

    // A consumer org has no sheets.
    let e = parse_str(
        Path::new("m.yaml"),
        Format::Yaml,
        "orgs:\n  - slug: globex\n    name: G\n    kind: consumer\nterms:\n  - org: globex\n    file: nope.yaml\n",
    )
    .unwrap_err();
    assert_eq!(e[0].field, "terms[0].file");
}

#[test]
fn export_writes_sheets_inline_and_round_trips() {
    for file in ["terms/catalog.yaml", "terms-folder"] {
        let cat = apply_fixture(file);
        let yaml = export(&cat);
        assert!(
            yaml.contains("terms:\n- org: acme-weather\n  document:\n"),
            "{yaml}"
        );
        assert!(
            yaml.contains("  terms:\n    id: weather-pro\n    version: 1.0.0\n"),
            "{yaml}"
        );
        let m = parse_str("export.yaml".as_ref(), Format::Yaml, &yaml)
            .unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
        assert_eq!(m.terms.len(), cat.terms.len());
        for t in &m.terms {
            let stored = cat
                .terms
                .iter()
                .find(|s| Some(&s.document) == t.document.as_ref())
                .unwrap();
            assert_eq!(t.publish, Some(stored.status == TermsStatus::Published));
        }
        assert!(plan(&m, &cat).unwrap().is_empty(), "{yaml}");

        let mut fresh = Catalog::default();
        let steps = plan(&m, &fresh).unwrap();
        sim::apply(&mut fresh, &steps);
        assert_eq!(fresh.terms.len(), cat.terms.len());
        assert!(plan(&m, &fresh).unwrap().is_empty());
        assert_eq!(export(&fresh), yaml, "export → apply → export");

        let toml = export_toml(&cat).unwrap();
        let t = parse_str("export.toml".as_ref(), Format::Toml, &toml)
            .unwrap_or_else(|e| panic!("{e:?}\n{toml}"));
        assert_eq!(t, m, "{toml}");
    }
    // Drafts export as `publish: false`.
    let yaml = export(&apply_fixture("terms-folder"));
    assert!(yaml.contains("publish: false"), "{yaml}");
}
