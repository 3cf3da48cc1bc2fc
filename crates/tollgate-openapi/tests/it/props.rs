//! Property tests: `import` never panics, and on valid documents the listed
//! operationIds are unique, acceptable, and keep every explicit id.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use tollgate_openapi::{MAX_ERRORS, import};

/// Strings that steer the importer into its interesting branches.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("get".to_owned()),
        Just("GET".to_owned()),
        Just("parameters".to_owned()),
        Just("$ref".to_owned()),
        Just("#/components/parameters/P".to_owned()),
        Just("#/paths/~1a~1{id}/parameters/0".to_owned()),
        Just("#/".to_owned()),
        Just("#%".to_owned()),
        Just("path".to_owned()),
        Just("name".to_owned()),
        Just("in".to_owned()),
        Just("id".to_owned()),
        Just("/a/{id}".to_owned()),
        Just("/a/{b}".to_owned()),
        Just("3.1.0".to_owned()),
        "[a-z{}/~%$#]{0,8}",
        any::<String>(),
    ]
}

/// Arbitrary JSON, nested at most four levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// Arbitrary values inside a plausible skeleton, so the checks past the root run.
fn shaped_document() -> impl Strategy<Value = Value> {
    let item = prop::collection::vec((word(), json_value()), 0..5)
        .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()));
    (
        prop_oneof![Just("3.0.3"), Just("3.1.0"), Just("2.0")],
        prop::collection::vec((word(), item), 0..5),
        json_value(),
    )
        .prop_map(|(version, paths, components)| {
            json!({
                "openapi": version,
                "info": { "title": "T", "version": "1" },
                "paths": Value::Object(paths.into_iter().collect()),
                "components": { "parameters": { "P": components } },
            })
        })
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Literals chosen so derived ids collide with each other and with explicit ids.
const LITERALS: [&str; 5] = ["a", "by_p1", "a_by_p1", "2", "a.b"];

/// Explicit ids chosen to collide with derived ones.
const EXPLICIT: [&str; 6] = [
    "get_a",
    "get_a_2",
    "get_a_by_p1",
    "get_a_by_p1_2",
    "post_a",
    "x",
];

/// A valid document: unique shapes (parameters are named by position, so equal
/// shapes are equal keys), declared path parameters, unique explicit ids.
fn valid_document() -> impl Strategy<Value = (Value, Vec<String>)> {
    let segment = prop_oneof![
        prop::sample::select(LITERALS.to_vec()).prop_map(Some),
        Just(None),
    ];
    let template = prop::collection::vec(segment, 0..4).prop_map(|segments| {
        let mut out = String::new();
        for (i, s) in segments.iter().enumerate() {
            match s {
                Some(literal) => out.push_str(&format!("/{literal}")),
                None => out.push_str(&format!("/{{p{i}}}")),
            }
        }
        if out.is_empty() { "/".to_owned() } else { out }
    });
    let operation = (
        prop::sample::select(METHODS.to_vec()),
        prop::option::of(prop::sample::select(EXPLICIT.to_vec())),
    );
    prop::collection::vec((template, prop::collection::vec(operation, 1..4)), 1..8).prop_map(
        |items| {
            let mut paths = Map::new();
            let mut used = HashSet::new();
            for (template, operations) in items {
                let params: Vec<Value> = template
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .map(|name| json!({ "name": name, "in": "path", "required": true }))
                    .collect();
                let mut item = Map::new();
                item.insert("parameters".into(), Value::Array(params));
                for (method, id) in operations {
                    let mut op = Map::new();
                    if let Some(id) = id.filter(|id| used.insert(*id)) {
                        op.insert("operationId".into(), json!(id));
                    }
                    item.insert(method.into(), Value::Object(op));
                }
                paths.insert(template, Value::Object(item));
            }
            // Repeated methods and templates replaced earlier entries; count what is left.
            let explicit = paths
                .values()
                .flat_map(|item| METHODS.map(|m| item[m]["operationId"].as_str()))
                .flatten()
                .map(str::to_owned)
                .collect();
            let doc = json!({
                "openapi": "3.1.0",
                "info": { "title": "T", "version": "1" },
                "paths": Value::Object(paths),
            });
            (doc, explicit)
        },
    )
}

fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_json(doc in json_value()) {
        if let Err(errors) = import(&doc) {
            prop_assert!(!errors.is_empty() && errors.len() <= MAX_ERRORS);
        }
    }

    #[test]
    fn never_panics_on_shaped_documents(doc in shaped_document()) {
        match import(&doc) {
            Ok(imported) => {
                let ids: HashSet<_> = imported.operations.iter().map(|o| &o.operation_id).collect();
                prop_assert_eq!(ids.len(), imported.operations.len());
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty() && errors.len() <= MAX_ERRORS);
                for e in &errors {
                    prop_assert!(e.pointer.is_empty() || e.pointer.starts_with('/'));
                }
            }
        }
    }

    #[test]
    fn operation_ids_are_unique_and_keep_explicit_ones((doc, explicit) in valid_document()) {
        let imported = match import(&doc) {
            Ok(imported) => imported,
            Err(errors) => return Err(TestCaseError::fail(format!("{errors:#?} for {doc:#}"))),
        };
        let operation_count: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| METHODS.iter().filter(|m| item.get(**m).is_some()).count())
            .sum();
        prop_assert_eq!(imported.operations.len(), operation_count);
        let ids: HashSet<&str> =
            imported.operations.iter().map(|o| o.operation_id.as_str()).collect();
        prop_assert_eq!(ids.len(), imported.operations.len(), "duplicate ids in {:#?}", imported.operations);
        for id in &ids {
            prop_assert!(acceptable(id), "{id:?}");
        }
        for id in &explicit {
            prop_assert!(ids.contains(id.as_str()), "explicit id {id:?} lost");
        }
    }
}
