//! Realistic documents import with exactly the expected operations.

use super::{fixture, ok};
use serde_json::json;
use tollgate_openapi::{ImportedOperation, import};

fn op(id: &str, method: &str, path: &str, summary: &str, tags: &[&str]) -> ImportedOperation {
    ImportedOperation {
        operation_id: id.into(),
        method: method.into(),
        path: path.into(),
        summary: summary.into(),
        deprecated: false,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

#[test]
fn petstore_3_0() {
    let imported = ok(&fixture("petstore-3.0.yaml"));
    assert_eq!(imported.openapi, "3.0.3");
    assert_eq!(imported.title, "Swagger Petstore");
    assert_eq!(imported.version, "1.0.0");
    assert_eq!(imported.sha256.len(), 64);
    let delete = ImportedOperation {
        deprecated: true,
        ..op("deletePet", "DELETE", "/pets/{petId}", "", &[])
    };
    assert_eq!(
        imported.operations,
        [
            op("get_root", "GET", "/", "API root", &[]),
            op("listPets", "GET", "/pets", "List all pets", &["pets"]),
            op("createPets", "POST", "/pets", "Create a pet", &["pets"]),
            op(
                "showPetById",
                "GET",
                "/pets/{petId}",
                "Info for a specific pet",
                &["pets"]
            ),
            op(
                "put_pets_by_petId",
                "PUT",
                "/pets/{petId}",
                "Replace a pet",
                &["pets"]
            ),
            delete,
            op(
                "post_pets_by_petId_photos",
                "POST",
                "/pets/{petId}/photos",
                "Upload a photo of a pet",
                &["pets", "media"],
            ),
            op("getInventory", "GET", "/store/inventory", "", &["store"]),
        ]
    );
}

#[test]
fn train_travel_3_1() {
    let imported = ok(&fixture("train-travel-3.1.yaml"));
    assert_eq!(imported.openapi, "3.1.0");
    assert_eq!(imported.title, "Train Travel API");
    assert_eq!(imported.version, "1.2.1");
    // The `new-booking` webhook is not an operation of the API and is not listed.
    assert_eq!(
        imported.operations,
        [
            op(
                "get-stations",
                "GET",
                "/stations",
                "Get a list of train stations",
                &["Stations"]
            ),
            op(
                "get-trips",
                "GET",
                "/trips",
                "Get available train trips",
                &["Trips"]
            ),
            op(
                "get-bookings",
                "GET",
                "/bookings",
                "List existing bookings",
                &["Bookings"]
            ),
            op(
                "create-booking",
                "POST",
                "/bookings",
                "Create a booking",
                &["Bookings"]
            ),
            op(
                "get-booking",
                "GET",
                "/bookings/{bookingId}",
                "Get a booking",
                &["Bookings"]
            ),
            op(
                "delete-booking",
                "DELETE",
                "/bookings/{bookingId}",
                "Delete a booking",
                &["Bookings"],
            ),
            op(
                "post_bookings_by_bookingId_payment",
                "POST",
                "/bookings/{bookingId}/payment",
                "Pay for a Booking",
                &["Payments"],
            ),
        ]
    );
}

#[test]
fn openapi_3_1_without_paths_imports_no_operations() {
    let info = json!({ "title": "Hooks", "version": "1" });
    let webhooks = json!({ "openapi": "3.1.0", "info": info, "webhooks": { "ping": {} } });
    assert_eq!(ok(&webhooks).operations, []);
    let components = json!({ "openapi": "3.1.1", "info": info, "components": {} });
    assert_eq!(ok(&components).operations, []);
}

#[test]
fn methods_are_listed_in_a_fixed_order_and_paths_in_document_order() {
    let doc = super::doc(json!({
        "/z": { "trace": {}, "post": {}, "get": {} },
        "/a": { "delete": {}, "head": {} },
    }));
    let listed: Vec<(String, String)> = ok(&doc)
        .operations
        .into_iter()
        .map(|o| (o.method, o.path))
        .collect();
    let expected = [
        ("GET", "/z"),
        ("POST", "/z"),
        ("TRACE", "/z"),
        ("DELETE", "/a"),
        ("HEAD", "/a"),
    ];
    assert_eq!(listed, expected.map(|(m, p)| (m.to_owned(), p.to_owned())));
}

#[test]
fn derived_ids_avoid_explicit_and_each_other_regardless_of_key_order() {
    // `/pets/by_id` and `/pets/{id}` both derive `get_pets_by_id`; `get_pets` is taken by
    // an explicit id on another operation.
    let forward = super::doc(json!({
        "/pets/{id}": { "get": { "parameters": [{ "name": "id", "in": "path", "required": true }] } },
        "/pets/by_id": { "get": {} },
        "/pets": { "get": {} },
        "/other": { "post": { "operationId": "get_pets" } },
    }));
    let ids = |doc| -> Vec<(String, String)> {
        let mut ops: Vec<_> = ok(doc)
            .operations
            .into_iter()
            .map(|o| (o.path, o.operation_id))
            .collect();
        ops.sort();
        ops
    };
    let expected: Vec<(String, String)> = [
        ("/other", "get_pets"),
        ("/pets", "get_pets_2"),
        ("/pets/by_id", "get_pets_by_id"),
        ("/pets/{id}", "get_pets_by_id_2"),
    ]
    .iter()
    .map(|(p, i)| ((*p).to_owned(), (*i).to_owned()))
    .collect();
    assert_eq!(ids(&forward), expected);

    let paths = forward["paths"].as_object().unwrap();
    let reversed: serde_json::Map<_, _> = paths
        .iter()
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let reversed = super::doc(serde_json::Value::Object(reversed));
    assert_eq!(ids(&reversed), expected);
    // The same content in another key order is the same document.
    assert_eq!(
        import(&forward).unwrap().sha256,
        import(&reversed).unwrap().sha256
    );
}

#[test]
fn path_level_parameters_can_be_overridden_and_referenced() {
    let doc = super::doc(json!({
        "/pets/{id}/toys/{toy}": {
            "parameters": [
                { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
                { "name": "toy", "in": "path", "required": true },
            ],
            "get": {
                "parameters": [
                    { "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } },
                    { "$ref": "#/paths/~1pets~1%7Bid%7D~1toys~1%7Btoy%7D/parameters/1" },
                ],
            },
        },
    }));
    let imported = ok(&doc);
    assert_eq!(imported.operations.len(), 1);
    assert_eq!(
        imported.operations[0].operation_id,
        "get_pets_by_id_toys_by_toy"
    );
}
