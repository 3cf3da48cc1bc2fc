//! Sandbox answers from realistic 3.1 and 3.0 documents: response choice (`Prefer:
//! code=`), media type negotiation (`Accept`), named examples (`Prefer: example=`),
//! `$ref`s to every kind of component, schema synthesis, limits, and property tests that
//! building a table terminates on arbitrary documents.

use super::{fixture, ok};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tollgate_openapi::mock::{self, MAX_BODY_BYTES};
use tollgate_openapi::{MockError, MockResponse, MockTable};

fn train() -> (Value, MockTable) {
    let doc = fixture("mock-train-travel-3.1.yaml");
    let table = MockTable::build(&doc);
    (doc, table)
}

fn petstore() -> (Value, MockTable) {
    let doc = fixture("mock-petstore-3.0.yaml");
    let table = MockTable::build(&doc);
    (doc, table)
}

/// The answer, which must not be an error.
fn answer(table: &MockTable, op: &str, accept: Option<&str>, prefer: Option<&str>) -> MockResponse {
    match table.respond(op, accept, prefer) {
        Ok(response) => response,
        Err(e) => panic!("{op} {accept:?} {prefer:?}: {e}"),
    }
}

/// Asserts status, content type and body (compared as text) of one answer.
fn check(
    table: &MockTable,
    op: &str,
    (accept, prefer): (Option<&str>, Option<&str>),
    status: u16,
    content_type: Option<&str>,
    body: &str,
) -> MockResponse {
    let r = answer(table, op, accept, prefer);
    let context = format!("{op} accept={accept:?} prefer={prefer:?}");
    assert_eq!(r.status, status, "{context}");
    assert_eq!(r.content_type.as_deref(), content_type, "{context}");
    assert_eq!(String::from_utf8_lossy(&r.body), body, "{context}");
    r
}

fn headers(r: &MockResponse) -> Vec<(&str, &str)> {
    r.headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

const NONE: (Option<&str>, Option<&str>) = (None, None);

fn accept(a: &str) -> (Option<&str>, Option<&str>) {
    (Some(a), None)
}

fn prefer(p: &str) -> (Option<&str>, Option<&str>) {
    (None, Some(p))
}

const STATIONS: &str = r#"{"data":[{"id":"efdbb9d1-02c2-4bc3-afb7-6788d8782b1e","name":"Berlin Hauptbahnhof","address":"Invalidenstraße 10557 Berlin, Germany","country_code":"DE","timezone":"Europe/Berlin"}],"links":{"self":"https://api.example.com/stations"}}"#;
const UUID: &str = "00000000-0000-4000-8000-000000000000";
const PROBLEM: &str =
    r#"{"type":"https://example.com/","title":"string","status":100,"detail":"string"}"#;
const NOT_FOUND: &str = r#"{"type":"https://example.com/errors/not-found","title":"Not Found","status":404,"detail":"No trip with this id"}"#;

#[test]
fn the_fixtures_are_valid_documents() {
    let (doc, table) = train();
    let imported = ok(&doc);
    assert_eq!(table.len(), imported.operations.len());
    for op in &imported.operations {
        assert!(table.contains(&op.operation_id), "{}", op.operation_id);
    }
    let (doc, table) = petstore();
    let imported = ok(&doc);
    assert_eq!(table.len(), imported.operations.len());
    assert!(table.contains("put_pets_by_petId"));
}

#[test]
fn v3_1_default_answer_uses_the_first_named_example_and_declared_headers() {
    let (_, table) = train();
    let r = check(
        &table,
        "get-stations",
        NONE,
        200,
        Some("application/json"),
        STATIONS,
    );
    // Content-Type and Content-Length are not the document's to set.
    assert_eq!(
        headers(&r),
        [
            ("RateLimit", "\"default\";r=99;t=30"),
            ("Cache-Control", "max-age=60")
        ]
    );
}

#[test]
fn v3_1_accept_negotiation() {
    let (_, table) = train();
    let xml = r#"<stations><station id="efdbb9d1">Berlin Hauptbahnhof</station></stations>"#;
    let csv = "id,name\nefdbb9d1,Berlin Hauptbahnhof\n";
    check(
        &table,
        "get-stations",
        accept("application/xml"),
        200,
        Some("application/xml"),
        xml,
    );
    check(
        &table,
        "get-stations",
        accept("text/csv"),
        200,
        Some("text/csv"),
        csv,
    );
    check(
        &table,
        "get-stations",
        accept("text/*"),
        200,
        Some("text/csv"),
        csv,
    );
    check(
        &table,
        "get-stations",
        accept("text/csv;q=0.5, application/xml;q=0.9"),
        200,
        Some("application/xml"),
        xml,
    );
    check(
        &table,
        "get-stations",
        accept("text/html, application/*;q=0.8, */*;q=0.1"),
        200,
        Some("application/json"),
        STATIONS,
    );
    // q=0 refuses JSON; of the rest, document order decides.
    check(
        &table,
        "get-stations",
        accept("application/json;q=0, */*;q=0.5"),
        200,
        Some("application/xml"),
        xml,
    );
    assert_eq!(
        table.respond("get-stations", Some("image/png"), None),
        Err(MockError::NotAcceptable {
            operation_id: "get-stations".into(),
            status: 200,
            offered: vec![
                "application/json".into(),
                "application/xml".into(),
                "text/csv".into()
            ],
        })
    );
    // A declared `*/*` (as springdoc writes) is answered as JSON.
    check(
        &table,
        "health",
        NONE,
        200,
        Some("application/json"),
        r#"{"status":"ok"}"#,
    );
    check(
        &table,
        "health",
        accept("*/*"),
        200,
        Some("application/json"),
        r#"{"status":"ok"}"#,
    );
    assert!(matches!(
        table.respond("health", Some("text/html"), None),
        Err(MockError::NotAcceptable { .. })
    ));
}

#[test]
fn v3_1_prefer_example() {
    let (_, table) = train();
    check(
        &table,
        "get-stations",
        prefer("example=empty"),
        200,
        Some("application/json"),
        r#"{"data":[]}"#,
    );
    check(
        &table,
        "get-stations",
        prefer("example=\"berlin\""),
        200,
        Some("application/json"),
        STATIONS,
    );
    // externalValue is never fetched, and an unknown name is no error.
    check(
        &table,
        "get-stations",
        prefer("example=remote"),
        200,
        Some("application/json"),
        STATIONS,
    );
    check(
        &table,
        "get-stations",
        prefer("example=nope"),
        200,
        Some("application/json"),
        STATIONS,
    );
    // Names belong to a media type.
    check(
        &table,
        "get-stations",
        (Some("text/csv"), Some("example=csv")),
        200,
        Some("text/csv"),
        "id,name\nefdbb9d1,Berlin Hauptbahnhof\n",
    );
    check(
        &table,
        "get-stations",
        (Some("application/xml"), Some("example=empty")),
        200,
        Some("application/xml"),
        r#"<stations><station id="efdbb9d1">Berlin Hauptbahnhof</station></stations>"#,
    );
}

#[test]
fn v3_1_prefer_code() {
    let (_, table) = train();
    let r = check(
        &table,
        "get-trips",
        prefer("code=404"),
        404,
        Some("application/problem+json"),
        NOT_FOUND,
    );
    assert_eq!(headers(&r), [("X-Request-Id", UUID)]);
    // Through `default`, with the status asked for.
    check(
        &table,
        "get-trips",
        prefer("code=418"),
        418,
        Some("application/problem+json"),
        PROBLEM,
    );
    check(
        &table,
        "get-stations",
        prefer("code=400"),
        400,
        Some("application/problem+json"),
        PROBLEM,
    );
    // Not declared, and no default: the usual choice.
    check(
        &table,
        "get-stations",
        prefer("code=500"),
        200,
        Some("application/json"),
        STATIONS,
    );
    check(
        &table,
        "get-trips",
        (None, Some("example=notFound, code=404")),
        404,
        Some("application/problem+json"),
        NOT_FOUND,
    );
    check(
        &table,
        "create-booking",
        prefer("code=409"),
        409,
        Some("application/problem+json"),
        r#"{"type":"https://example.com/errors/fully-booked","title":"Fully booked","status":409}"#,
    );
    // 2XX alone answers 200.
    check(
        &table,
        "get_regions",
        NONE,
        200,
        Some("application/json"),
        r#"{"name":"string","children":[]}"#,
    );
}

#[test]
fn v3_1_synthesized_bodies() {
    let (_, table) = train();
    let trips = format!(
        r#"{{"data":[{{"id":"{UUID}","departure_time":"2024-01-01T00:00:00Z","price":1,"seats_left":1,"bicycles_allowed":true,"operator":{{"name":"stringxx"}}}}],"links":{{"self":"https://example.com/","next":"https://example.com/"}}}}"#
    );
    let r = check(
        &table,
        "get-trips",
        NONE,
        200,
        Some("application/json"),
        &trips,
    );
    assert_eq!(headers(&r), [("RateLimit", "\"default\";r=99;t=30")]);
    // allOf merged; required first; writeOnly left out of a response.
    let booking = format!(
        r#"{{"trip_id":"{UUID}","passenger_name":"John Doe","id":"{UUID}","has_bicycle":true,"created_at":"2024-01-01T00:00:00Z"}}"#
    );
    let r = check(
        &table,
        "create-booking",
        NONE,
        201,
        Some("application/json"),
        &booking,
    );
    assert_eq!(headers(&r), [("Location", "https://example.com/")]);
    check(
        &table,
        "create-booking",
        accept("application/problem+json"),
        201,
        Some("application/problem+json"),
        PROBLEM,
    );
}

#[test]
fn responses_without_content_and_errors() {
    let (_, table) = train();
    let r = check(&table, "delete-booking", NONE, 204, None, "");
    assert!(r.headers.is_empty());
    // No content means nothing to negotiate: Accept does not matter.
    check(&table, "delete-booking", accept("image/png"), 204, None, "");
    check(
        &table,
        "delete-booking",
        prefer("code=404"),
        404,
        Some("application/problem+json"),
        NOT_FOUND,
    );
    let no_response = table.respond("legacy", None, None).unwrap_err();
    assert_eq!(
        no_response,
        MockError::NoResponse {
            operation_id: "legacy".into()
        }
    );
    assert_eq!(
        no_response.to_string(),
        "operation \"legacy\" declares no response that can be mocked"
    );
    let unknown = table.respond("get-stationz", None, None).unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "operation \"get-stationz\" is not in the API's OpenAPI document"
    );
    let not_acceptable = table
        .respond("health", Some("text/html"), None)
        .unwrap_err();
    assert_eq!(
        not_acceptable.to_string(),
        "none of the media types of the 200 response of operation \"health\" is acceptable; \
         it offers application/json"
    );
}

#[test]
fn v3_0_petstore() {
    let (_, table) = petstore();
    let pet = r#"{"id":1,"name":"Rex","tag":"string","status":"available","weight":50,"birthday":"2024-01-01"}"#;
    let r = check(
        &table,
        "listPets",
        NONE,
        200,
        Some("application/json"),
        &format!("[{pet}]"),
    );
    assert_eq!(
        headers(&r),
        [
            ("x-next", "https://example.com/"),
            ("X-Rate-Limit", "5000"),
            ("X-Tags", "dogs,cats")
        ]
    );
    check(
        &table,
        "listPets",
        accept("application/xml"),
        200,
        Some("application/xml"),
        "<pets><pet><id>1</id><name>Rex</name></pet></pets>",
    );
    let error = r#"{"code":0,"message":"something went wrong"}"#;
    check(
        &table,
        "listPets",
        prefer("code=500"),
        500,
        Some("application/json"),
        error,
    );
    check(
        &table,
        "createPets",
        NONE,
        201,
        Some("application/json"),
        r#"{"id":1,"name":"Rex","status":"available"}"#,
    );
    check(
        &table,
        "createPets",
        prefer("example=tom"),
        201,
        Some("application/json"),
        r#"{"id":2,"name":"Tom","status":"sold"}"#,
    );
    check(
        &table,
        "createPets",
        prefer("code=422"),
        422,
        Some("application/json"),
        error,
    );
    check(
        &table,
        "showPetById",
        NONE,
        200,
        Some("application/json"),
        pet,
    );
    check(
        &table,
        "put_pets_by_petId",
        NONE,
        200,
        Some("application/json"),
        pet,
    );
    check(
        &table,
        "showPetById",
        prefer("code=404"),
        404,
        Some("application/json"),
        r#"{"code":404,"message":"pet not found"}"#,
    );
    check(
        &table,
        "showPetById",
        (Some("application/xml"), Some("code=404")),
        404,
        Some("application/xml"),
        "<error><code>404</code><message>pet not found</message></error>",
    );
    check(
        &table,
        "getInventory",
        NONE,
        200,
        Some("application/json"),
        r#"{"additionalProp1":0}"#,
    );
    check(
        &table,
        "listCategories",
        NONE,
        200,
        Some("application/json"),
        r#"[{"id":0,"name":"string","subcategories":[]}]"#,
    );
}

#[test]
fn shared_components_are_built_once() {
    let (_, table) = petstore();
    let a = answer(&table, "showPetById", None, None);
    let b = answer(&table, "put_pets_by_petId", None, None);
    assert!(Arc::ptr_eq(&a.body, &b.body), "one body per schema");
    let a = answer(&table, "listPets", None, Some("code=500"));
    let b = answer(&table, "createPets", None, Some("code=422"));
    assert!(Arc::ptr_eq(&a.body, &b.body), "one body per response");
    let (_, table) = train();
    let a = answer(&table, "get-trips", None, Some("code=418"));
    let b = answer(&table, "get-stations", None, Some("code=400"));
    assert!(
        Arc::ptr_eq(&a.body, &b.body),
        "one body per schema across responses"
    );
}

#[test]
fn one_off_answers_match_the_table() {
    let (doc, table) = train();
    for (op, accept, prefer) in [
        ("get-stations", Some("text/csv"), None),
        ("get-trips", None, Some("code=404")),
        ("legacy", None, None),
        ("missing", None, None),
    ] {
        assert_eq!(
            mock::respond(&doc, op, accept, prefer),
            table.respond(op, accept, prefer),
            "{op}"
        );
    }
}

#[test]
fn bodies_over_the_limit_are_refused() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "T", "version": "1" },
        "paths": { "/big": { "get": {
            "operationId": "big",
            "responses": { "200": {
                "description": "big",
                "content": { "text/plain": {
                    "example": "x".repeat(MAX_BODY_BYTES + 1),
                    "examples": { "small": { "value": "ok" } },
                } },
            } },
        } } },
    });
    let table = MockTable::build(&doc);
    assert_eq!(
        table.respond("big", None, None),
        Err(MockError::TooLarge {
            operation_id: "big".into()
        })
    );
    let small = table.respond("big", None, Some("example=small")).unwrap();
    assert_eq!(&*small.body, b"ok");
}

/// A 3.1 document with one operation answering `schema` as JSON.
fn document_with_schema(schema: Value, schemas: Value) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "T", "version": "1" },
        "paths": { "/a": { "get": {
            "operationId": "a",
            "responses": { "200": {
                "description": "a",
                "content": { "application/json": { "schema": schema } },
            } },
        } } },
        "components": { "schemas": schemas },
    })
}

#[test]
fn hostile_schemas_terminate_with_bounded_bodies() {
    // Every schema refers to the next one ten times, through allOf, oneOf and properties,
    // and the last one back to the first.
    let mut schemas = Map::new();
    for i in 0..12 {
        let next = json!({ "$ref": format!("#/components/schemas/S{}", (i + 1) % 12) });
        let properties: Map<String, Value> =
            (0..10).map(|p| (format!("p{p}"), next.clone())).collect();
        schemas.insert(
            format!("S{i}"),
            json!({
                "type": "object",
                "required": ["p0", "p1"],
                "properties": properties,
                "allOf": [next.clone(), next.clone()],
                "oneOf": [next.clone()],
                "items": next,
                "minItems": 1000,
            }),
        );
    }
    let doc = document_with_schema(json!({ "$ref": "#/components/schemas/S0" }), schemas.into());
    let r = answer(&MockTable::build(&doc), "a", None, None);
    assert!(r.body.len() <= MAX_BODY_BYTES);
    let _: Value = serde_json::from_slice(&r.body).unwrap();
}

/// Strings that steer the builder into its interesting branches.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "object",
            "array",
            "string",
            "integer",
            "number",
            "boolean",
            "null",
            "properties",
            "items",
            "prefixItems",
            "required",
            "allOf",
            "oneOf",
            "anyOf",
            "$ref",
            "example",
            "examples",
            "value",
            "externalValue",
            "enum",
            "const",
            "default",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
            "minItems",
            "maxItems",
            "minLength",
            "maxLength",
            "format",
            "date-time",
            "uuid",
            "email",
            "writeOnly",
            "additionalProperties",
            "headers",
            "content",
            "schema",
            "explode",
            "application/json",
            "text/plain",
            "*/*",
            "text/*",
            "application/xml",
            "#/components/schemas/A",
            "#/components/schemas/B",
            "#/components/responses/R",
            "#/components/examples/E",
            "#/components/headers/H",
            "#/components",
            "#",
            "#/paths/~1a/get/responses/200",
            "other.yaml#/A",
            "200",
            "404",
            "4XX",
            "default",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9/*;=,.\"-]{0,12}",
    ]
}

/// Arbitrary JSON built from [`word`]s, nested at most five levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..2000).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A Response object that is mostly well-formed around arbitrary parts.
fn response() -> impl Strategy<Value = Value> {
    let media = (json_value(), json_value(), json_value(), any::<bool>()).prop_map(
        |(schema, example, examples, with_example)| {
            let mut m = json!({ "schema": schema, "examples": { "n": examples, "m": { "$ref": "#/components/examples/E" } } });
            if with_example {
                m["example"] = example;
            }
            m
        },
    );
    prop_oneof![
        (prop::collection::vec((word(), media), 0..4), json_value()).prop_map(
            |(content, header)| {
                json!({
                    "description": "d",
                    "headers": { "X-A": header, "X-B": { "$ref": "#/components/headers/H" } },
                    "content": Value::Object(content.into_iter().collect()),
                })
            }
        ),
        Just(json!({ "$ref": "#/components/responses/R" })),
        json_value(),
    ]
}

fn shaped_document() -> impl Strategy<Value = Value> {
    let responses = prop::collection::vec((word(), response()), 0..4)
        .prop_map(|r| Value::Object(r.into_iter().collect()));
    (
        prop::collection::vec(responses, 3),
        (json_value(), json_value()),
        (response(), json_value(), json_value()),
    )
        .prop_map(|(operations, (a, b), (r, e, h))| {
            let mut item = Map::new();
            for (method, responses) in ["get", "post", "put"].iter().zip(operations) {
                item.insert(
                    (*method).to_owned(),
                    json!({ "operationId": method, "responses": responses }),
                );
            }
            json!({
                "openapi": "3.1.0",
                "info": { "title": "T", "version": "1" },
                "paths": { "/a": Value::Object(item) },
                "components": {
                    "schemas": { "A": a, "B": b },
                    "responses": { "R": r },
                    "examples": { "E": e },
                    "headers": { "H": h },
                },
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn building_never_panics_on_arbitrary_json(doc in json_value()) {
        let table = MockTable::build(&doc);
        let _ = table.respond("get", None, None);
    }

    #[test]
    fn building_terminates_on_shaped_documents(
        doc in shaped_document(),
        accept in prop::option::of(word()),
        prefer in prop::option::of(prop_oneof![
            Just("code=404".to_owned()),
            Just("code=200, example=n".to_owned()),
            Just("example=m".to_owned()),
            word(),
        ]),
    ) {
        let table = MockTable::build(&doc);
        for op in ["get", "post", "put"] {
            prop_assert!(table.contains(op));
            match table.respond(op, accept.as_deref(), prefer.as_deref()) {
                Ok(r) => {
                    prop_assert!(r.body.len() <= MAX_BODY_BYTES);
                    prop_assert!((100..=599).contains(&r.status));
                    if r.content_type.is_none() {
                        prop_assert!(r.body.is_empty());
                    }
                    for (name, value) in r.headers.iter() {
                        prop_assert!(!name.is_empty());
                        prop_assert!(!value.bytes().any(|b| b == b'\r' || b == b'\n'));
                    }
                }
                Err(MockError::UnknownOperation { .. }) => prop_assert!(false, "{op} is listed"),
                Err(_) => {}
            }
        }
    }
}
