//! One test per kind of problem, each checking the exact pointers reported.

use super::{check, doc, err, ok};
use serde_json::{Value, json};
use tollgate_openapi::{MAX_ERRORS, MAX_OPERATIONS};

fn path_param(name: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true })
}

#[test]
fn root_must_be_an_object() {
    for root in [json!(null), json!([]), json!("openapi: 3.0.0"), json!(3)] {
        check(&root, &[("", "must be an object")]);
    }
}

#[test]
fn openapi_version() {
    let mut d = doc(json!({}));
    d.as_object_mut().unwrap().remove("openapi");
    check(&d, &[("/openapi", "is required")]);
    let mut bare = d.clone();
    bare.as_object_mut().unwrap().remove("paths");
    check(
        &bare,
        &[("/openapi", "is required"), ("/paths", "is required")],
    );
    d["openapi"] = json!(3.1);
    check(&d, &[("/openapi", "quote it")]);
    d["openapi"] = json!(["3.0.0"]);
    check(&d, &[("/openapi", "must be a string")]);
    for unsupported in ["3.2.0", "3.1", "3.0.0-rc1", "4.0.0", ""] {
        d["openapi"] = json!(unsupported);
        check(&d, &[("/openapi", "is not supported")]);
    }
}

#[test]
fn swagger_2_is_refused_with_only_that_error() {
    // The missing info and the Swagger-style paths are not reported on top.
    let swagger = json!({ "swagger": "2.0", "paths": { "pets": 1 } });
    check(&swagger, &[("/swagger", "convert")]);
    let mislabelled = json!({ "openapi": "2.0", "paths": { "pets": 1 } });
    check(&mislabelled, &[("/openapi", "Swagger 2.0")]);
}

#[test]
fn info() {
    let mut d = doc(json!({}));
    d.as_object_mut().unwrap().remove("info");
    check(&d, &[("/info", "is required")]);
    d["info"] = json!("T");
    check(&d, &[("/info", "must be an object")]);
    d["info"] = json!({});
    check(
        &d,
        &[
            ("/info/title", "is required"),
            ("/info/version", "is required"),
        ],
    );
    d["info"] = json!({ "title": " ", "version": 1.0 });
    check(
        &d,
        &[("/info/title", "blank"), ("/info/version", "quote it")],
    );
    d["info"] = json!({ "title": 7, "version": true });
    check(
        &d,
        &[
            ("/info/title", "must be a string"),
            ("/info/version", "must be a string"),
        ],
    );
    d["info"] = json!({ "title": "T", "version": "" });
    ok(&d);
}

#[test]
fn paths_required_in_3_0_and_optional_in_3_1_only_with_webhooks_or_components() {
    let mut d = doc(json!({}));
    d.as_object_mut().unwrap().remove("paths");
    check(&d, &[("/paths", "required in OpenAPI 3.0")]);
    d["components"] = json!({});
    check(&d, &[("/paths", "required in OpenAPI 3.0")]);
    d["openapi"] = json!("3.1.0");
    ok(&d);
    d.as_object_mut().unwrap().remove("components");
    check(
        &d,
        &[("/paths", "unless the document has webhooks or components")],
    );
    d["webhooks"] = json!([]);
    check(&d, &[("/webhooks", "must be an object")]);
}

#[test]
fn paths_must_be_an_object() {
    check(&doc(json!(["/pets"])), &[("/paths", "must be an object")]);
}

#[test]
fn invalid_path_templates() {
    let d = doc(json!({
        "pets": {},
        "/a//b": {},
        "/a/x{id}": {},
        "/a b": {},
        "x-extension": "ignored",
    }));
    check(
        &d,
        &[
            ("/paths/pets", "must start with '/'"),
            ("/paths/~1a~1~1b", "empty segment"),
            ("/paths/~1a~1x{id}", "mixes text"),
            ("/paths/~1a b", "not allowed"),
        ],
    );
}

#[test]
fn ambiguous_paths_are_reported_on_the_second() {
    let d = doc(json!({
        "/pets/{id}": { "parameters": [path_param("id")] },
        "/pets/mine": {},
        "/pets/{petId}": { "parameters": [path_param("petId")] },
        "/toys": {},
        "/toys/": {},
    }));
    check(
        &d,
        &[
            ("/paths/~1pets~1{petId}", "\"/pets/{id}\""),
            ("/paths/~1toys~1", "\"/toys\""),
        ],
    );
}

#[test]
fn path_item_fields() {
    let d = doc(json!({
        "/pets": {
            "summary": "s", "description": "d", "servers": [], "parameters": [], "x-a": 1,
            "GET": {},
            "fetch": {},
            "$ref": "#/components/pathItems/Pets",
            "get": {},
        },
    }));
    check(
        &d,
        &[
            ("/paths/~1pets/GET", "lower case: use \"get\""),
            ("/paths/~1pets/fetch", "is not a path item field"),
            ("/paths/~1pets/$ref", "not supported"),
        ],
    );
}

#[test]
fn path_items_and_operations_must_be_objects() {
    let d = doc(json!({ "/a": [], "/b": { "get": "listB", "post": null } }));
    check(
        &d,
        &[
            ("/paths/~1a", "must be an object"),
            ("/paths/~1b/get", "must be an object"),
            ("/paths/~1b/post", "must be an object"),
        ],
    );
}

#[test]
fn invalid_operation_ids() {
    let d = doc(json!({
        "/a": {
            "get": { "operationId": 7 },
            "put": { "operationId": "" },
            "post": { "operationId": "create a" },
            "delete": { "operationId": "a/delete" },
            "patch": { "operationId": "Patch.A-1_x" },
        },
    }));
    check(
        &d,
        &[
            ("/paths/~1a/get/operationId", "must be a string"),
            ("/paths/~1a/put/operationId", "must not be empty"),
            ("/paths/~1a/post/operationId", "only ASCII letters"),
            ("/paths/~1a/delete/operationId", "only ASCII letters"),
        ],
    );
}

#[test]
fn duplicate_operation_ids_name_the_first_use() {
    let d = doc(json!({
        "/a": { "get": { "operationId": "list" }, "post": { "operationId": "List" } },
        "/b": { "get": { "operationId": "list" } },
        "/c": { "put": { "operationId": "list" } },
    }));
    check(
        &d,
        &[
            (
                "/paths/~1b/get/operationId",
                "first used at /paths/~1a/get/operationId",
            ),
            (
                "/paths/~1c/put/operationId",
                "first used at /paths/~1a/get/operationId",
            ),
        ],
    );
}

#[test]
fn undeclared_template_parameters() {
    let d = doc(json!({
        "/pets/{id}/toys/{toy}": {
            "parameters": [path_param("id")],
            "get": {},
            "put": { "parameters": [path_param("toy")] },
        },
        "/owners/{owner}": { "get": { "parameters": [{ "name": "owner", "in": "query" }] } },
    }));
    check(
        &d,
        &[
            (
                "/paths/~1pets~1{id}~1toys~1{toy}/get/parameters",
                "{toy} is not declared",
            ),
            (
                "/paths/~1owners~1{owner}/get/parameters",
                "{owner} is not declared",
            ),
        ],
    );
}

#[test]
fn declared_path_parameters_missing_from_the_template() {
    let d = doc(json!({
        "/pets": {
            "parameters": [path_param("id")],
            "get": { "parameters": [path_param("petId"), { "$ref": "#/components/parameters/Toy" }] },
        },
    }));
    let mut d = d;
    d["components"] = json!({ "parameters": { "Toy": path_param("toy") } });
    check(
        &d,
        &[
            (
                "/paths/~1pets/parameters/0/name",
                "\"id\" does not appear in the path template \"/pets\"",
            ),
            ("/paths/~1pets/get/parameters/0/name", "\"petId\""),
            ("/paths/~1pets/get/parameters/1/$ref", "\"toy\""),
        ],
    );
}

#[test]
fn path_parameters_must_be_required() {
    let d = json!({
        "openapi": "3.0.3",
        "info": { "title": "T", "version": "1" },
        "paths": {
            "/a/{x}": { "get": { "parameters": [{ "name": "x", "in": "path" }] } },
            "/b/{x}": { "get": { "parameters": [{ "name": "x", "in": "path", "required": false }] } },
            "/c/{id}": { "get": { "parameters": [{ "$ref": "#/components/parameters/Id" }] } },
            "/d/{id}": { "get": { "parameters": [{ "$ref": "#/components/parameters/Id" }] } },
        },
        "components": { "parameters": { "Id": { "name": "id", "in": "path", "required": "yes" } } },
    });
    // The shared definition is at fault, and is reported once however often it is used.
    check(
        &d,
        &[
            ("/paths/~1a~1{x}/get/parameters/0/required", "must be true"),
            ("/paths/~1b~1{x}/get/parameters/0/required", "must be true"),
            ("/components/parameters/Id/required", "must be true"),
        ],
    );
}

#[test]
fn parameter_references() {
    let d = json!({
        "openapi": "3.1.0",
        "info": { "title": "T", "version": "1" },
        "paths": {
            "/a": { "get": { "parameters": [
                { "$ref": "#/components/parameters/Missing" },
                { "$ref": "https://example.com/params.yaml#/Limit" },
                { "$ref": 5 },
                { "$ref": "#/components/parameters/Loop1" },
                { "$ref": "#/components/parameters/Bad%zz" },
                { "$ref": "#/components/parameters/Str" },
                { "$ref": "#/components/parameters/Via" },
            ] } },
        },
        "components": { "parameters": {
            "Loop1": { "$ref": "#/components/parameters/Loop2" },
            "Loop2": { "$ref": "#/components/parameters/Loop1" },
            "Str": "limit",
            "Via": { "$ref": "#/components/parameters/Limit" },
            "Limit": { "name": "limit", "in": "query" },
        } },
    });
    check(
        &d,
        &[
            ("/paths/~1a/get/parameters/0/$ref", "does not resolve"),
            ("/paths/~1a/get/parameters/1/$ref", "only local references"),
            ("/paths/~1a/get/parameters/2/$ref", "must be a string"),
            ("/components/parameters/Loop2/$ref", "reference cycle"),
            ("/paths/~1a/get/parameters/4/$ref", "percent-encoding"),
            ("/components/parameters/Str", "must be a parameter object"),
        ],
    );
}

#[test]
fn parameter_objects() {
    let d = doc(json!({
        "/a": {
            "parameters": { "name": "q", "in": "query" },
            "get": { "parameters": [
                7,
                {},
                { "name": 1, "in": "body" },
                { "name": "q", "in": "query" },
                { "name": "q", "in": "header" },
                { "name": "q", "in": "query", "required": true },
            ] },
        },
    }));
    check(
        &d,
        &[
            ("/paths/~1a/parameters", "must be an array"),
            ("/paths/~1a/get/parameters/0", "must be a parameter object"),
            ("/paths/~1a/get/parameters/1/name", "is required"),
            ("/paths/~1a/get/parameters/1/in", "is required"),
            ("/paths/~1a/get/parameters/2/name", "must be a string"),
            ("/paths/~1a/get/parameters/2/in", "must be one of"),
            (
                "/paths/~1a/get/parameters/5",
                "already declared at /paths/~1a/get/parameters/3",
            ),
        ],
    );
}

#[test]
fn summary_deprecated_and_tags() {
    let d = doc(json!({
        "/a": {
            "get": { "summary": ["s"], "deprecated": "yes", "tags": "pets" },
            "put": { "summary": "", "deprecated": false, "tags": ["pets", 3, null, "x"] },
        },
    }));
    check(
        &d,
        &[
            ("/paths/~1a/get/summary", "must be a string"),
            ("/paths/~1a/get/deprecated", "must be true or false"),
            ("/paths/~1a/get/tags", "must be an array of strings"),
            ("/paths/~1a/put/tags/1", "must be a string"),
            ("/paths/~1a/put/tags/2", "must be a string"),
        ],
    );
}

fn many_operations(n: usize) -> Value {
    let paths: serde_json::Map<String, Value> = (0..n)
        .map(|i| (format!("/r{i}"), json!({ "get": {} })))
        .collect();
    doc(Value::Object(paths))
}

#[test]
fn too_many_operations_is_one_error_at_paths() {
    assert_eq!(
        ok(&many_operations(MAX_OPERATIONS)).operations.len(),
        MAX_OPERATIONS
    );
    check(
        &many_operations(MAX_OPERATIONS + 1),
        &[("/paths", "at most 2000")],
    );
}

#[test]
fn every_independent_problem_is_reported() {
    let d = json!({
        "openapi": "3.0.3",
        "info": { "title": "" },
        "paths": {
            "/pets/{id}": {
                "get": { "operationId": "list pets", "tags": [1] },
                "post": { "operationId": "createPet", "parameters": [path_param("id")] },
            },
            "/pets/{petId}": {},
            "/stores": { "get": { "operationId": "createPet", "deprecated": 0 } },
            "bad": {},
        },
    });
    check(
        &d,
        &[
            ("/info/title", "blank"),
            ("/info/version", "is required"),
            ("/paths/~1pets~1{id}/get/operationId", "only ASCII"),
            ("/paths/~1pets~1{id}/get/tags/0", "must be a string"),
            ("/paths/~1pets~1{id}/get/parameters", "{id} is not declared"),
            ("/paths/~1pets~1{petId}", "routes the same requests"),
            ("/paths/~1stores/get/deprecated", "true or false"),
            ("/paths/bad", "must start with '/'"),
            (
                "/paths/~1stores/get/operationId",
                "first used at /paths/~1pets~1{id}/post",
            ),
        ],
    );
}

#[test]
fn errors_are_capped() {
    let paths: serde_json::Map<String, Value> = (0..3 * MAX_ERRORS)
        .map(|i| (format!("bad{i}"), json!({})))
        .collect();
    let errors = err(&doc(Value::Object(paths)));
    assert_eq!(errors.len(), MAX_ERRORS);
    assert_eq!(errors[0].pointer, "/paths/bad0");
    assert_eq!(
        errors[MAX_ERRORS - 2].pointer,
        format!("/paths/bad{}", MAX_ERRORS - 2)
    );
    assert_eq!(errors[MAX_ERRORS - 1].pointer, "");
    assert!(errors[MAX_ERRORS - 1].detail.contains("more problems"));
}
