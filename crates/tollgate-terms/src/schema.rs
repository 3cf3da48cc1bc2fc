//! The JSON Schema of term sheets, derived from the Rust model (`model`) so it cannot
//! drift from what the parser reads, and the structural check that uses it.
//!
//! The schema is published at [`SCHEMA_ID`]; a generated copy is committed at
//! `crates/tollgate-terms/schema/terms-v1.json` and a test fails when it is stale.
//! Regenerate it with `UPDATE_SCHEMA=1 cargo test -p tollgate-terms schema`.
//!
//! The schema says what the parser accepts, as far as JSON Schema can say it: field
//! names, types, enumerations, required fields, and the text formats of times, dates,
//! decimals, weekdays and operations. It does not repeat `validate`'s semantic checks
//! (slugs, semantic versions, time zones, overlaps, …): a sheet that fails them still
//! parses, and `validate` lists those problems with its own words.
//!
//! `pricing.inline` is described by tollgate-billing's price book schema
//! (`PriceBook::json_schema()`, published at `https://tollgate.dev/schemas/prices/v1.json`),
//! embedded under `$defs/PriceBook` with its definitions renamed `PriceBook.<name>`, so
//! an editor checks inline prices with the one file and no second download.

use crate::error::Issue;
use crate::locate::{FieldPath, Seg};
use crate::model::{ClockTime, IsoDate, METHODS, OperationRef, PriceRef, Pricing, Weekday};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use jsonschema::{ValidationError, Validator};
use rust_decimal::Decimal;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::OnceLock;
use tollgate_billing::PriceBook;

/// The stable URL of the term sheet schema, version 1; the schema's `$id`. A sheet may
/// name it in its `$schema` field for editors.
pub const SCHEMA_ID: &str = "https://tollgate.dev/schemas/terms/v1.json";

/// The JSON Schema (draft 2020-12) of a term sheet, with `$id` [`SCHEMA_ID`].
pub fn json_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let root = generator.into_root_schema_for::<crate::model::TermSheet>();
    let Value::Object(generated) = root.to_value() else {
        unreachable!("a struct's schema is an object")
    };
    // `$schema`, `$id` and `title` first, for people reading the file.
    let mut out = Map::new();
    out.insert(
        "$schema".into(),
        Value::from("https://json-schema.org/draft/2020-12/schema"),
    );
    out.insert("$id".into(), Value::from(SCHEMA_ID));
    out.insert("title".into(), Value::from("Tollgate term sheet"));
    for (k, v) in generated {
        if !matches!(k.as_str(), "$schema" | "$id" | "title") {
            out.insert(k, v);
        }
    }
    Value::Object(out)
}

/// The schema as pretty JSON with a final newline: the content of the committed
/// `schema/terms-v1.json`.
pub fn json_schema_pretty() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).expect("a Value serializes");
    s.push('\n');
    s
}

struct Compiled {
    schema: Value,
    validator: Validator,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let schema = json_schema();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .expect("the term sheet schema compiles");
        Compiled { schema, validator }
    })
}

/// Checks `doc` against the schema and returns every violation, each with the dotted
/// path of its field (`grants[0].operations[1]`); empty when the document conforms.
pub fn check(doc: &Value) -> Vec<Issue> {
    let c = compiled();
    let mut out: Vec<Issue> = Vec::new();
    for e in c.validator.iter_errors(doc) {
        for issue in issues_of(&c.schema, &e) {
            if !out.contains(&issue) {
                out.push(issue);
            }
        }
    }
    out
}

/// The instance path of an error as a field path.
fn field_path(e: &ValidationError<'_>) -> FieldPath {
    FieldPath(
        e.instance_path()
            .iter()
            .map(|s| match s {
                LocationSegment::Property(p) => Seg::Key(p.into_owned()),
                LocationSegment::Index(i) => Seg::Index(i),
            })
            .collect(),
    )
}

fn child(path: &FieldPath, key: &str) -> String {
    let mut p = path.clone();
    p.0.push(Seg::Key(key.to_owned()));
    p.to_string()
}

/// The issues one validation error stands for (one per unknown field, else one).
fn issues_of(schema: &Value, e: &ValidationError<'_>) -> Vec<Issue> {
    let path = field_path(e);
    let kind = e.kind();
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = sibling_properties(schema, e);
            return unexpected
                .iter()
                .map(|k| Issue {
                    field: child(&path, k),
                    message: match &known {
                        Some(known) => format!("unknown field `{k}`, expected one of {known}"),
                        None => format!("unknown field `{k}`"),
                    },
                })
                .collect();
        }
        ValidationErrorKind::Required { property } => {
            let k = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            return vec![Issue {
                field: child(&path, &k),
                message: format!("missing field `{k}`"),
            }];
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // `Option<T>` is `anyOf [T, null]`: report why the value is not a T.
            let live: Vec<&Vec<ValidationError<'static>>> = context
                .iter()
                .filter(|branch| !branch.iter().all(|b| is_type_error_here(b, e)))
                .collect();
            if let [only] = live.as_slice()
                && parser_message(e).is_none()
            {
                return only.iter().flat_map(|b| issues_of(schema, b)).collect();
            }
        }
        _ => {}
    }
    let message = parser_message(e)
        .or_else(|| exactly_one_message(schema, e))
        .or_else(|| one_of_consts_message(schema, e))
        .unwrap_or_else(|| plain_message(kind, e.instance()));
    vec![Issue {
        field: path.to_string(),
        message,
    }]
}

fn is_type_error_here(b: &ValidationError<'_>, parent: &ValidationError<'_>) -> bool {
    matches!(b.kind(), ValidationErrorKind::Type { .. })
        && b.instance_path() == parent.instance_path()
}

/// The message for the kinds that are not about a custom-parsed type.
fn plain_message(kind: &ValidationErrorKind, instance: &Value) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => article(&t.to_string()),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| article(&t.to_string()))
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("expected {expected}, found {}", describe(instance))
        }
        ValidationErrorKind::Enum { options } => {
            let names: Vec<String> = options
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    format!(
                        "`{}`",
                        o.as_str().map_or_else(|| o.to_string(), str::to_owned)
                    )
                })
                .collect();
            format!("{} is not one of {}", describe(instance), names.join(", "))
        }
        ValidationErrorKind::Minimum { limit } => format!("{instance} is less than {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("{instance} is more than {limit}"),
        _ => {
            let e = ValidationErrorKind::keyword(kind).to_owned();
            format!("{} does not satisfy `{e}`", describe(instance))
        }
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" | "array" | "object" => format!("an {t}"),
        "null" => "null".into(),
        _ => format!("a {t}"),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The schema node at `pointer` (a JSON pointer into `schema`).
fn node<'a>(schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    schema.pointer(pointer)
}

/// The `$defs` entry the failing keyword belongs to, when it is the definition's own
/// (`/$defs/ClockTime/pattern`), not one of a property inside it.
fn own_def(e: &ValidationError<'_>) -> Option<String> {
    let segs: Vec<String> = e.schema_path().iter().map(|s| s.to_string()).collect();
    let i = segs.iter().rposition(|s| s == "$defs")?;
    // `$defs/<Name>/<keyword>[/<index>]`, without descending into properties.
    let rest = &segs[i + 2..];
    let inside_property = rest
        .iter()
        .any(|s| matches!(s.as_str(), "properties" | "items" | "additionalProperties"));
    (!inside_property)
        .then(|| segs.get(i + 1).cloned())
        .flatten()
}

/// For types with hand-written parsing, the parser's own message for the value.
fn parser_message(e: &ValidationError<'_>) -> Option<String> {
    let def = own_def(e)?;
    let v = e.instance().clone().into_owned();
    fn err<T: for<'de> Deserialize<'de>>(v: Value) -> Option<String> {
        serde_json::from_value::<T>(v).err().map(|e| e.to_string())
    }
    match def.as_str() {
        "ClockTime" => err::<ClockTime>(v),
        "IsoDate" => err::<IsoDate>(v),
        "OperationRef" => err::<OperationRef>(v),
        "Weekday" => err::<Weekday>(v),
        "Decimal" => err::<DecimalValue>(v),
        _ => None,
    }
}

/// For a `oneOf` whose branches each require one field: "set exactly one of …".
fn exactly_one_message(schema: &Value, e: &ValidationError<'_>) -> Option<String> {
    if !matches!(
        e.kind(),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::OneOfMultipleValid { .. }
    ) {
        return None;
    }
    let branches = node(schema, e.schema_path().as_str())?.as_array()?;
    let keys: Option<Vec<String>> = branches
        .iter()
        .map(|b| match b.get("required")?.as_array()?.as_slice() {
            [k] => Some(format!("`{}`", k.as_str()?)),
            _ => None,
        })
        .collect();
    Some(format!("set exactly one of {}", keys?.join(" and ")))
}

/// For a `oneOf` of constants (an enum whose variants carry docs): "… is not one of …".
fn one_of_consts_message(schema: &Value, e: &ValidationError<'_>) -> Option<String> {
    if !matches!(e.kind(), ValidationErrorKind::OneOfNotValid { .. }) {
        return None;
    }
    let branches = node(schema, e.schema_path().as_str())?.as_array()?;
    let names: Option<Vec<String>> = branches
        .iter()
        .map(|b| Some(format!("`{}`", b.get("const")?.as_str()?)))
        .collect();
    Some(format!(
        "{} is not one of {}",
        describe(e.instance()),
        names?.join(", ")
    ))
}

/// The known fields of the object schema whose `additionalProperties` failed.
fn sibling_properties(schema: &Value, e: &ValidationError<'_>) -> Option<String> {
    let p = e.schema_path().as_str();
    let parent = p.strip_suffix("/additionalProperties")?;
    let props = node(schema, parent)?.get("properties")?.as_object()?;
    Some(
        props
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

// ------------------------------------------------------- schemas of hand-parsed types

/// Case-insensitive ECMA-262 pattern text for an ASCII word.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A path template as `PathTemplate::parse` accepts it: `/`, or `/`-separated literal
/// segments (no blanks, control characters, `?`, `#`, braces) and `{parameters}`, with
/// an optional trailing `/`.
const PATH_TEMPLATE: &str = r"/(?:(?:\{[^{}/]+\}|[^{}/\s?#\x00-\x1f\x7f-\x9f]+)(?:/(?:\{[^{}/]+\}|[^{}/\s?#\x00-\x1f\x7f-\x9f]+))*/?)?";

impl JsonSchema for OperationRef {
    fn schema_name() -> Cow<'static, str> {
        "OperationRef".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let methods: Vec<String> = METHODS.iter().map(|m| any_case(m)).collect();
        let pattern = format!(
            r"^\s*(?:[^\s`/]+|(?:{}) \s*{PATH_TEMPLATE})\s*$",
            methods.join("|")
        );
        json_schema!({
            "description": "An operation: its `operationId` (`getWeather`), or an HTTP method and a path template relative to the API's base path (`GET /alerts/{region}`; the method in any case).",
            "type": "string",
            "pattern": pattern,
            "examples": ["getWeather", "GET /alerts/{region}"]
        })
    }
}

impl JsonSchema for Weekday {
    fn schema_name() -> Cow<'static, str> {
        "Weekday".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let days: Vec<String> = Weekday::ALL
            .iter()
            .map(|d| {
                let short = any_case(d.as_str());
                let tail = any_case(&d.name()[3..]);
                format!("{short}(?:{tail})?")
            })
            .collect();
        json_schema!({
            "description": "A day of the week: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun` (full English names and any case are accepted too).",
            "type": "string",
            "pattern": format!("^(?:{})$", days.join("|")),
            "examples": ["mon", "fri"]
        })
    }
}

impl JsonSchema for ClockTime {
    fn schema_name() -> Cow<'static, str> {
        "ClockTime".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A local time of day to the minute, `HH:MM`, from `00:00` to `24:00` (`HH:MM:00` is accepted too, as TOML writes local times).",
            "type": "string",
            "pattern": "^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)(?::00)?$",
            "examples": ["08:00", "24:00"]
        })
    }
}

impl JsonSchema for IsoDate {
    fn schema_name() -> Cow<'static, str> {
        "IsoDate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A calendar date, `YYYY-MM-DD`.",
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "examples": ["2026-01-01"]
        })
    }
}

/// A decimal as the model reads it (see `model::decimal`), for the schema's `Decimal`
/// definition and the parser's messages.
#[derive(Deserialize)]
#[serde(transparent)]
#[allow(dead_code)] // only parsed, for its error messages
struct DecimalValue(#[serde(with = "crate::model::decimal")] Decimal);

impl JsonSchema for DecimalValue {
    fn schema_name() -> Cow<'static, str> {
        "Decimal".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A decimal number, best written as a string (`\"99.9\"`) so no binary rounding happens; integers and plain numbers are read through their shortest decimal form.",
            "type": ["string", "number"],
            "pattern": r"^\s*[+-]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)\s*$",
            "examples": ["99.9", "10"]
        })
    }
}

/// The schema of a decimal field (`#[schemars(schema_with)]` in the model).
pub(crate) fn decimal_schema(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<DecimalValue>()
}

/// The name of the price book's schema in `$defs`, and the prefix of its definitions
/// (billing's `Decimal`, strings or integers, is not ours, which reads floats too).
const PRICE_BOOK: &str = "PriceBook";

/// Adds billing's price book schema to the generator's definitions (once) and returns a
/// reference to it.
fn price_book_schema(g: &mut SchemaGenerator) -> Schema {
    let defs = g
        .settings()
        .definitions_path
        .trim_start_matches('/')
        .to_owned();
    let reference = format!("#/{defs}/{PRICE_BOOK}");
    if !g.definitions().contains_key(PRICE_BOOK) {
        let mut book = PriceBook::json_schema();
        let inner = book
            .as_object_mut()
            .and_then(|o| {
                // Metadata of a root schema; the description says where it is published.
                o.remove("$schema");
                o.remove("$id");
                o.remove("$defs")
            })
            .unwrap_or_default();
        rename_refs(&mut book, &defs);
        g.definitions_mut().insert(PRICE_BOOK.into(), book);
        if let Value::Object(inner) = inner {
            for (name, mut def) in inner {
                rename_refs(&mut def, &defs);
                g.definitions_mut()
                    .insert(format!("{PRICE_BOOK}.{name}"), def);
            }
        }
    }
    json_schema!({ "$ref": reference })
}

/// Points the `$ref`s of billing's schema (`#/$defs/Tier`) at the renamed definitions.
fn rename_refs(v: &mut Value, defs: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "$ref"
                    && let Some(name) = x.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    *x = Value::from(format!("#/{defs}/{PRICE_BOOK}.{name}"));
                } else {
                    rename_refs(x, defs);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_refs(x, defs)),
        _ => {}
    }
}

impl JsonSchema for Pricing {
    fn schema_name() -> Cow<'static, str> {
        "Pricing".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let price_ref = g.subschema_for::<PriceRef>();
        let price_book = price_book_schema(g);
        json_schema!({
            "description": "The prices of the plan under these terms: exactly one of `inline` (the price book itself) and `ref` (a reference to an immutable price version).",
            "type": "object",
            "properties": {
                "inline": {
                    "description": "The price book itself, in the format of https://tollgate.dev/schemas/prices/v1.json. Write amounts as strings (`\"0.002\"`): numbers with a fraction are refused, since canonical JSON would store them as binary floating point.",
                    "anyOf": [price_book, { "type": "null" }]
                },
                "ref": {
                    "description": "A reference to an immutable price version.",
                    "anyOf": [price_ref, { "type": "null" }]
                }
            },
            "additionalProperties": false,
            "oneOf": [
                {
                    "required": ["inline"],
                    "properties": { "inline": { "not": { "type": "null" } }, "ref": { "type": "null" } }
                },
                {
                    "required": ["ref"],
                    "properties": { "ref": { "not": { "type": "null" } }, "inline": { "type": "null" } }
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed copy is current. `UPDATE_SCHEMA=1` rewrites it instead.
    #[test]
    fn schema_file_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/terms-v1.json");
        let want = json_schema_pretty();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale; regenerate it with `UPDATE_SCHEMA=1 cargo test -p tollgate-terms schema`",
            path.display()
        );
    }
}
