//! Building a [`MockTable`]: each operation's responses resolved, bodies encoded and
//! header values rendered once, with what a shared `$ref` leads to built once.

use super::negotiate::{self, MediaType};
use super::synth::Synth;
use super::{
    Body, MAX_BODY_BYTES, MAX_TABLE_BYTES, MAX_TABLE_FUEL, Media, MockTable, Operation, Response,
    StatusKey,
};
use crate::problems::{Problems, join};
use crate::{paths, refs};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The longest header value a mock answer carries.
const MAX_HEADER_BYTES: usize = 8 << 10;

/// Response headers a document may not set: `Content-Type` (OpenAPI says it is ignored;
/// the media type decides) and the fields that frame the message, which the gateway owns.
const SKIPPED_HEADERS: [&str; 9] = [
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// What one table may hold and spend.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Bytes of bodies and header values.
    pub(super) bytes: usize,
    /// Schema nodes visited by all syntheses together.
    pub(super) fuel: usize,
}

impl Limits {
    pub(super) const TABLE: Limits = Limits {
        bytes: MAX_TABLE_BYTES,
        fuel: MAX_TABLE_FUEL,
    };
}

/// Builds the table for every operation of `doc`, or only for `only`.
pub(super) fn build(doc: &Value, only: Option<&str>, limits: Limits) -> MockTable {
    let mut table = MockTable::default();
    let Some(paths) = doc.get("paths") else {
        return table;
    };
    // The operations and their ids exactly as `import` lists them, so the gateway's
    // operation ids (derived ones included) find their answers. Problems were reported at
    // import; here they only mean less to mock.
    let mut problems = Problems::default();
    let operations = paths::collect(doc, paths, &mut problems);
    let mut compiler = Compiler {
        doc,
        remaining: limits.bytes,
        fuel: limits.fuel,
        responses: HashMap::new(),
        examples: HashMap::new(),
        schemas: HashMap::new(),
        header_values: HashMap::new(),
        empty: table.empty.clone(),
    };
    for (operation, pointer) in operations {
        let id = operation.operation_id;
        if id.is_empty() || only.is_some_and(|only| only != id) || table.contains(&id) {
            continue;
        }
        let Some(object) = doc.pointer(&pointer) else {
            continue;
        };
        let responses = compiler.operation(object, &pointer);
        table.operations.insert(id, Operation { responses });
    }
    table
}

struct Compiler<'d> {
    doc: &'d Value,
    /// Bytes the table may still hold.
    remaining: usize,
    /// Schema nodes syntheses may still visit.
    fuel: usize,
    /// Responses by the pointer of their Response object.
    responses: HashMap<String, Arc<Response>>,
    /// Bodies of examples by the pointer of the example, and whether encoded as JSON.
    examples: HashMap<(String, bool), Body>,
    /// Bodies synthesized from schemas by the pointer of the schema, likewise.
    schemas: HashMap<(String, bool), Body>,
    /// Rendered header values by the pointer of their Header object.
    header_values: HashMap<String, Option<String>>,
    empty: Arc<[u8]>,
}

impl<'d> Compiler<'d> {
    fn operation(
        &mut self,
        operation: &'d Value,
        pointer: &str,
    ) -> Vec<(StatusKey, Arc<Response>)> {
        let Some(Value::Object(responses)) = operation.get("responses") else {
            return Vec::new();
        };
        let base = join(pointer, "responses");
        let mut out = Vec::new();
        for (key, response) in responses {
            let Some(status) = StatusKey::parse(key) else {
                continue;
            };
            let Some((response, pointer)) = refs::follow(self.doc, response, join(&base, key))
            else {
                continue;
            };
            let Some(response) = response.as_object() else {
                continue;
            };
            let compiled = match self.responses.get(&pointer) {
                Some(compiled) => compiled.clone(),
                None => {
                    let compiled = Arc::new(self.response(response, &pointer));
                    self.responses.insert(pointer, compiled.clone());
                    compiled
                }
            };
            out.push((status, compiled));
        }
        out
    }

    fn response(&mut self, response: &'d Map<String, Value>, pointer: &str) -> Response {
        let headers = self.headers(response.get("headers"), &join(pointer, "headers"));
        let mut content = Vec::new();
        if let Some(Value::Object(media_types)) = response.get("content") {
            let base = join(pointer, "content");
            for (key, media) in media_types {
                if let Some(media) = self.media(key, media, &join(&base, key)) {
                    content.push(media);
                }
            }
        }
        Response { headers, content }
    }

    fn media(&mut self, key: &str, media: &'d Value, pointer: &str) -> Option<Media> {
        let declared = MediaType::parse(key)?;
        let (media_type, content_type) = if declared.is_range() {
            let concrete = match (declared.ty.as_str(), declared.subtype.as_str()) {
                ("*" | "application", _) => "application/json",
                ("text", _) => "text/plain",
                _ => "application/octet-stream",
            };
            (MediaType::parse(concrete)?, concrete)
        } else {
            (declared, key.trim())
        };
        let json = media_type.is_json();
        let field = |name: &str| media.as_object().and_then(|o| o.get(name));
        let mut named = Vec::new();
        if let Some(Value::Object(examples)) = field("examples") {
            let base = join(pointer, "examples");
            for (name, example) in examples {
                let Some((example, at)) = refs::follow(self.doc, example, join(&base, name)) else {
                    continue;
                };
                // An example with only an `externalValue` is skipped: it is never fetched.
                if let Some(value) = example.get("value") {
                    named.push((name.clone(), self.encoded(value, at, json)));
                }
            }
        }
        let body = if let Some(example) = field("example") {
            self.encoded(example, join(pointer, "example"), json)
        } else if let Some((_, first)) = named.first() {
            first.clone()
        } else if let Some(schema) = field("schema") {
            self.synthesized(schema, join(pointer, "schema"), json)
        } else {
            Body::Ready(self.empty.clone())
        };
        Some(Media {
            media_type,
            content_type: Arc::from(content_type),
            body,
            named,
        })
    }

    /// `value` (found at `pointer`) encoded for the media type; built once per pointer.
    fn encoded(&mut self, value: &Value, pointer: String, json: bool) -> Body {
        if let Some(body) = self.examples.get(&(pointer.clone(), json)) {
            return body.clone();
        }
        let body = self.store(encode(value, json));
        self.examples.insert((pointer, json), body.clone());
        body
    }

    /// An example synthesized from `schema` (found at `pointer`); built once per schema.
    fn synthesized(&mut self, schema: &'d Value, pointer: String, json: bool) -> Body {
        // A bare `$ref` is keyed by its target, so every use of a shared schema shares the
        // body. With siblings the schema is more than its target and keeps its own key.
        let key = match schema.as_object().and_then(|o| o.get("$ref")) {
            Some(reference) if schema.as_object().is_some_and(|o| o.len() == 1) => {
                match reference.as_str().and_then(refs::local_pointer) {
                    Some(target) => target,
                    None => pointer,
                }
            }
            _ => pointer,
        };
        if let Some(body) = self.schemas.get(&(key.clone(), json)) {
            return body.clone();
        }
        let body = match self.synthesize(schema, MAX_BODY_BYTES) {
            Some(Some(value)) => self.store(encode(&value, json)),
            Some(None) => Body::Ready(self.empty.clone()),
            None => Body::TooLarge,
        };
        self.schemas.insert((key, json), body.clone());
        body
    }

    /// An example of `schema` (see [`Synth::example`]), or `None` when the table has
    /// spent all its fuel: a hostile document then gets refusals, not an endless build.
    fn synthesize(&mut self, schema: &'d Value, bytes: usize) -> Option<Option<Value>> {
        if self.fuel == 0 {
            return None;
        }
        let mut synth = Synth::new(self.doc, bytes, self.fuel);
        let allowance = synth.fuel_left();
        let value = synth.example(schema);
        self.fuel -= allowance - synth.fuel_left();
        Some(value)
    }

    /// Keeps `bytes` as a body if they fit the per-body and per-table limits.
    fn store(&mut self, bytes: Vec<u8>) -> Body {
        if bytes.len() > MAX_BODY_BYTES || bytes.len() > self.remaining {
            return Body::TooLarge;
        }
        self.remaining -= bytes.len();
        Body::Ready(Arc::from(bytes))
    }

    fn headers(&mut self, headers: Option<&'d Value>, pointer: &str) -> Arc<[(String, String)]> {
        let Some(Value::Object(headers)) = headers else {
            return Arc::from([]);
        };
        let mut out = Vec::new();
        for (name, header) in headers {
            if !negotiate::is_token(name)
                || SKIPPED_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
            {
                continue;
            }
            let Some((header, at)) = refs::follow(self.doc, header, join(pointer, name)) else {
                continue;
            };
            let text = match self.header_values.get(&at) {
                Some(text) => text.clone(),
                None => {
                    let text = header.as_object().and_then(|header| {
                        let explode = header.get("explode") == Some(&Value::Bool(true));
                        let value = self.header_value(header)?;
                        render_header(&value, explode)
                    });
                    self.header_values.insert(at, text.clone());
                    text
                }
            };
            let Some(text) = text else {
                continue;
            };
            let size = name.len() + text.len();
            if size > self.remaining {
                continue;
            }
            self.remaining -= size;
            out.push((name.clone(), text));
        }
        Arc::from(out)
    }

    /// A Header object's example: `example`, the first `examples` value, the schema's
    /// example, or (for a header described by `content`) its media type's.
    fn header_value(&mut self, header: &'d Map<String, Value>) -> Option<Cow<'d, Value>> {
        if let Some(value) = self.example_of(header) {
            return Some(Cow::Borrowed(value));
        }
        if let Some(schema) = header.get("schema") {
            return self.synthesize(schema, MAX_HEADER_BYTES)?.map(Cow::Owned);
        }
        let (_, media) = header.get("content")?.as_object()?.iter().next()?;
        let media = media.as_object()?;
        if let Some(value) = self.example_of(media) {
            return Some(Cow::Borrowed(value));
        }
        let schema = media.get("schema")?;
        self.synthesize(schema, MAX_HEADER_BYTES)?.map(Cow::Owned)
    }

    /// `example`, else the first `examples` entry with a `value`.
    fn example_of(&self, object: &'d Map<String, Value>) -> Option<&'d Value> {
        if let Some(example) = object.get("example") {
            return Some(example);
        }
        let examples = object.get("examples")?.as_object()?;
        examples.values().find_map(|example| {
            refs::follow(self.doc, example, String::new())?
                .0
                .get("value")
        })
    }
}

/// A body: compact JSON for JSON media types; for others a string as-is and anything else
/// as JSON.
fn encode(value: &Value, json: bool) -> Vec<u8> {
    match value {
        Value::String(s) if !json => s.as_bytes().to_vec(),
        // Serializing a `Value` cannot fail: its map keys are strings.
        _ => serde_json::to_vec(value).unwrap_or_default(),
    }
}

/// A header value in OpenAPI's `simple` style: arrays as `a,b`, objects as `k,v` (or
/// `k=v` when exploded); `None` for null or a value that cannot be a field value.
fn render_header(value: &Value, explode: bool) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(","),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let separator = if explode { "=" } else { "," };
                format!("{k}{separator}{}", scalar(v))
            })
            .collect::<Vec<_>>()
            .join(","),
        other => scalar(other),
    };
    let text = text.trim();
    let valid = text.len() <= MAX_HEADER_BYTES
        && text.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t');
    valid.then(|| text.to_owned())
}

/// One value of a header: strings as written, other values as JSON.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_rendering() {
        for (value, explode, expected) in [
            (json!("abc"), false, Some("abc")),
            (json!(" padded "), false, Some("padded")),
            (json!(42), false, Some("42")),
            (json!(true), false, Some("true")),
            (json!(["a", 1, null]), false, Some("a,1,")),
            (json!({ "a": 1, "b": "x" }), false, Some("a,1,b,x")),
            (json!({ "a": 1, "b": "x" }), true, Some("a=1,b=x")),
            (json!([{ "n": 1 }]), false, Some("{\"n\":1}")),
            (json!(null), false, None),
            (json!("line\r\nInjected: 1"), false, None),
            (json!("caf\u{e9}"), false, Some("caf\u{e9}")),
        ] {
            assert_eq!(
                render_header(&value, explode).as_deref(),
                expected,
                "{value}"
            );
        }
    }

    /// A document with operations `r0`, `r1`, … each answering `media(i)` as its one
    /// media type, so nothing is shared between them.
    fn operations(n: usize, media: impl Fn(usize) -> Value) -> Value {
        let paths: Map<String, Value> = (0..n)
            .map(|i| {
                let responses = json!({ "200": { "description": "d", "content": media(i) } });
                let operation = json!({ "operationId": format!("r{i}"), "responses": responses });
                (format!("/r{i}"), json!({ "get": operation }))
            })
            .collect();
        json!({ "paths": paths })
    }

    fn too_large(table: &MockTable, id: &str) -> bool {
        matches!(
            table.respond(id, None, None),
            Err(super::super::MockError::TooLarge { .. })
        )
    }

    #[test]
    fn table_bytes_are_bounded() {
        let doc = operations(
            4,
            |i| json!({ "text/plain": { "example": i.to_string().repeat(100) } }),
        );
        let table = build(
            &doc,
            None,
            Limits {
                bytes: 250,
                fuel: 100,
            },
        );
        assert_eq!(
            &*table.respond("r0", None, None).unwrap().body,
            &[b'0'; 100]
        );
        assert_eq!(
            &*table.respond("r1", None, None).unwrap().body,
            &[b'1'; 100]
        );
        assert!(too_large(&table, "r2"));
        assert!(too_large(&table, "r3"));
        let all = build(&doc, None, Limits::TABLE);
        assert!(!too_large(&all, "r3"));
    }

    #[test]
    fn table_fuel_is_bounded() {
        // Each synthesis spends seven units: the object, reading its three property
        // names, and the three properties.
        let doc = operations(4, |i| {
            let properties = json!({ "a": { "type": "string" }, "b": {}, "c": {} });
            let schema = json!({ "type": "object", "title": i, "properties": properties });
            json!({ "application/json": { "schema": schema } })
        });
        let table = build(
            &doc,
            None,
            Limits {
                bytes: 1 << 20,
                fuel: 16,
            },
        );
        for id in ["r0", "r1"] {
            let body = table.respond(id, None, None).unwrap().body;
            assert_eq!(&*body, br#"{"a":"string","b":null,"c":null}"#, "{id}");
        }
        // The last two units of fuel give a cut-short value; then there is none.
        assert!(table.respond("r2", None, None).is_ok());
        assert!(too_large(&table, "r3"));
    }

    #[test]
    fn encoding() {
        assert_eq!(encode(&json!("a\"b"), true), b"\"a\\\"b\"");
        assert_eq!(encode(&json!("a\"b"), false), b"a\"b");
        assert_eq!(encode(&json!({ "a": [1, 2] }), false), b"{\"a\":[1,2]}");
        assert_eq!(encode(&json!({ "a": [1, 2] }), true), b"{\"a\":[1,2]}");
    }
}
