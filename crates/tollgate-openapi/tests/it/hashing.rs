//! The document hash ignores key order, whitespace and JSON-versus-YAML, and nothing else.

use super::{fixture, ok};
use serde_json::Value;

const A: &str = r#"{"openapi":"3.1.0","info":{"title":"T","version":"1"},"paths":{"/a":{"get":{"operationId":"a","tags":["x","y"]}}}}"#;

const B: &str = r#"
{
  "paths" : { "/a" : { "get" : { "tags" : [ "x", "y" ], "operationId" : "a" } } },
  "info"  : { "version" : "1", "title" : "T" },
  "openapi" : "3.1.0"
}"#;

const YAML: &str = "
info: {version: '1', title: T}
openapi: 3.1.0
paths:
  /a:
    get:
      tags: [x, y]
      operationId: a
";

fn sha(text: &str, yaml: bool) -> String {
    let doc: Value = if yaml {
        yaml_serde::from_str(text).unwrap()
    } else {
        serde_json::from_str(text).unwrap()
    };
    ok(&doc).sha256
}

#[test]
fn key_order_whitespace_and_syntax_do_not_change_the_hash() {
    let a = sha(A, false);
    assert_eq!(a.len(), 64);
    assert!(
        a.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(a, sha(B, false));
    assert_eq!(a, sha(YAML, true));
}

#[test]
fn content_changes_change_the_hash() {
    let a = sha(A, false);
    assert_ne!(a, sha(&A.replace(r#"["x","y"]"#, r#"["y","x"]"#), false));
    assert_ne!(
        a,
        sha(&A.replace(r#""title":"T""#, r#""title":"U""#), false)
    );
    let petstore = ok(&fixture("petstore-3.0.yaml")).sha256;
    assert_ne!(a, petstore);
}
