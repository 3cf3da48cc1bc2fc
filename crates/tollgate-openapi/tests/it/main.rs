//! Integration tests for `tollgate_openapi::import` (realistic documents, one test per
//! kind of problem, hashing, property tests) and for the sandbox's `mock` answers. One
//! binary keeps link time down.

mod errors;
mod fixtures;
mod hashing;
mod mock;
mod props;

use serde_json::{Value, json};
use tollgate_openapi::{FieldError, ImportedDocument, import};

/// Parses a YAML fixture from `tests/fixtures/`.
fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    yaml_serde::from_str(&text).unwrap()
}

/// A minimal valid 3.0 document around `paths`.
fn doc(paths: Value) -> Value {
    json!({ "openapi": "3.0.3", "info": { "title": "T", "version": "1" }, "paths": paths })
}

/// Imports a document that must be valid.
fn ok(doc: &Value) -> ImportedDocument {
    match import(doc) {
        Ok(imported) => imported,
        Err(errors) => panic!("expected success, got {errors:#?}"),
    }
}

/// Imports a document that must be invalid and returns its problems.
fn err(doc: &Value) -> Vec<FieldError> {
    match import(doc) {
        Ok(imported) => panic!("expected problems, got {imported:#?}"),
        Err(errors) => errors,
    }
}

/// Asserts that importing `doc` reports exactly these pointers, in this order, and that
/// each detail contains the paired phrase.
fn check(doc: &Value, expected: &[(&str, &str)]) {
    let errors = err(doc);
    let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
    let wanted: Vec<&str> = expected.iter().map(|(p, _)| *p).collect();
    assert_eq!(pointers, wanted, "{errors:#?}");
    for (error, (_, phrase)) in errors.iter().zip(expected) {
        assert!(
            error.detail.contains(phrase),
            "{:?} should contain {phrase:?}",
            error.detail
        );
    }
}
