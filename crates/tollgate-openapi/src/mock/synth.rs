//! Example values synthesized from JSON Schemas (OpenAPI 3.0's dialect and 3.1's JSON
//! Schema 2020-12), for responses whose document gives no example.
//!
//! At each level the first of `const`, `example`, `examples[0]`, `default` and `enum[0]`
//! wins; otherwise the value follows the type: objects get their properties (required
//! ones first, `writeOnly` ones never, since these are responses), arrays one item (or
//! `minItems`), strings a fixed sample per `format`, numbers the value closest to 0 within
//! the bounds. `allOf` branches are merged (the `example`/`default` of one branch of
//! several describes only a part, so it is not used for the whole), `oneOf`/`anyOf` take
//! their first branch that is not just `null`, and a `$ref` with siblings counts as
//! `allOf: [siblings, target]` with the siblings' annotations winning (as in 3.1; a 3.0
//! document that writes siblings evidently means them too). `$ref`s resolve against the
//! document root only: `$id`, `$anchor` and `$dynamicRef` are not followed.
//!
//! Documents are provider input and may be hostile, so work is bounded three ways: a
//! schema met again through `$ref` inside itself stops the recursion (an optional property
//! or array item is left out, a required one gets an empty value of its type), nesting is
//! capped at [`MAX_DEPTH`], and each value may visit at most [`FUEL`] schema nodes and copy
//! at most its byte budget of literal examples from the document. The output is always
//! the same for the same document: no clock, no randomness.

use crate::refs;
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, HashSet};

/// How deeply objects and arrays nest in a synthesized value.
pub const MAX_DEPTH: usize = 16;

/// How many schema nodes one synthesized value may visit (each `properties` or `required`
/// entry read counts as one too). Wide fan-out through shared `$ref`s (ten properties each
/// referring to a schema with ten properties, …) would otherwise be exponential.
pub const FUEL: usize = 10_000;

/// How deeply `$ref`, `allOf`, `oneOf` and `anyOf` nest within one level of a value.
const MAX_COMBINATION_DEPTH: usize = 32;

/// How many `$ref`s may be open at once along one path through the value.
const MAX_OPEN_REFS: usize = 64;

/// The most items a synthesized array gets, whatever its `minItems`.
const MAX_ITEMS: u64 = 8;

/// The longest plain string `minLength` can ask for.
const MAX_STRING: usize = 1024;

/// Keywords that give a schema a shape of its own; a schema with none of them besides a
/// recursive `$ref` is that recursion and nothing more.
const SHAPING: [&str; 22] = [
    "type",
    "properties",
    "additionalProperties",
    "required",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "example",
    "examples",
    "default",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
];

/// One synthesis: the document, the stack of open `$ref`s, and what is left to spend.
pub(crate) struct Synth<'d> {
    doc: &'d Value,
    fuel: usize,
    /// Bytes of literal values (examples, defaults, enums) still allowed to be copied.
    bytes: usize,
    /// Pointers of the `$ref` targets being expanded along the current path.
    open: Vec<String>,
}

impl<'d> Synth<'d> {
    /// A synthesis that may visit `fuel` schema nodes (at most [`FUEL`]) and copy up to
    /// `bytes` of literal values from `doc`.
    pub(crate) fn new(doc: &'d Value, bytes: usize, fuel: usize) -> Self {
        Synth {
            doc,
            fuel: fuel.min(FUEL),
            bytes,
            open: Vec::new(),
        }
    }

    /// An example of `schema`, or `None` when the schema is `writeOnly` (never part of a
    /// response) or refers only to itself.
    pub(crate) fn example(&mut self, schema: &'d Value) -> Option<Value> {
        self.value(&[schema], 0, true)
    }

    /// The fuel not spent yet.
    pub(crate) fn fuel_left(&self) -> usize {
        self.fuel
    }

    /// An example satisfying all of `schemas` at nesting `depth`. `None` means "leave it
    /// out": `writeOnly`, or cut short (recursion, depth, fuel) where `required` is false.
    fn value(&mut self, schemas: &[&'d Value], depth: usize, required: bool) -> Option<Value> {
        let mut flat = Flat::default();
        for schema in schemas {
            self.gather(schema, true, &mut flat, 0);
        }
        let out = self.produce(&flat, depth, required);
        self.open.truncate(self.open.len() - flat.opened);
        out
    }

    /// Collects the schema objects that apply at this level into `flat`: `schema` itself,
    /// its `$ref` target, its `allOf` branches and the chosen `oneOf`/`anyOf` branch.
    /// `annotations` is false for parts whose `example`/`default` describe only a part of
    /// the value (branches of a multi-branch `allOf`).
    fn gather(&mut self, schema: &'d Value, annotations: bool, flat: &mut Flat<'d>, level: usize) {
        if level > MAX_COMBINATION_DEPTH || self.fuel == 0 {
            return;
        }
        self.fuel -= 1;
        let Some(map) = schema.as_object() else {
            return;
        };
        if let Some(reference) = map.get("$ref") {
            if map.len() > 1 {
                flat.parts.push(Part { map, annotations });
            }
            if let Some((target, pointer)) =
                reference.as_str().and_then(|r| refs::target(self.doc, r))
            {
                if self.open.contains(&pointer) || self.open.len() >= MAX_OPEN_REFS {
                    flat.cut.get_or_insert(target);
                } else {
                    self.open.push(pointer);
                    flat.opened += 1;
                    self.gather(target, annotations, flat, level + 1);
                }
            }
        } else {
            flat.parts.push(Part { map, annotations });
        }
        if let Some(Value::Array(branches)) = map.get("allOf") {
            let whole = annotations && branches.len() == 1;
            for branch in branches {
                if self.fuel == 0 {
                    break;
                }
                self.gather(branch, whole, flat, level + 1);
            }
        }
        for combinator in ["oneOf", "anyOf"] {
            if let Some(Value::Array(branches)) = map.get(combinator) {
                let chosen = branches
                    .iter()
                    .take(self.fuel)
                    .find(|b| !is_null_schema(b))
                    .or(branches.first());
                if let Some(branch) = chosen {
                    self.gather(branch, annotations, flat, level + 1);
                }
            }
        }
    }

    fn produce(&mut self, flat: &Flat<'d>, depth: usize, required: bool) -> Option<Value> {
        if flat.any("writeOnly", |v| v == &Value::Bool(true)) {
            return None;
        }
        if let Some(target) = flat.cut {
            let shaped = flat
                .parts
                .iter()
                .any(|p| SHAPING.iter().any(|k| p.map.contains_key(*k)));
            if !shaped {
                let kind = target.as_object().map_or(Kind::Any, |map| {
                    Flat {
                        parts: vec![Part {
                            map,
                            annotations: false,
                        }],
                        ..Flat::default()
                    }
                    .kind()
                });
                return required.then(|| kind.minimal());
            }
        }
        let kind = flat.kind();
        if depth > MAX_DEPTH || self.fuel == 0 {
            return required.then(|| kind.minimal());
        }
        if let Some(v) = flat.get("const") {
            return Some(self.copy(v, kind));
        }
        if let Some(v) = flat.annotation("example") {
            return Some(self.copy(v, kind));
        }
        if let Some(v) = flat
            .annotation("examples")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return Some(self.copy(v, kind));
        }
        if let Some(v) = flat.annotation("default") {
            return Some(self.copy(v, kind));
        }
        if let Some(v) = flat
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return Some(self.copy(v, kind));
        }
        Some(match kind {
            Kind::Object => self.object(flat, depth),
            Kind::Array => self.array(flat, depth),
            Kind::String => string(flat),
            Kind::Integer => integer(flat),
            Kind::Number => number(flat),
            Kind::Boolean => Value::Bool(true),
            Kind::Null | Kind::Any => Value::Null,
        })
    }

    fn object(&mut self, flat: &Flat<'d>, depth: usize) -> Value {
        // Reading the lists costs fuel too: otherwise a schema with a huge `required` list
        // used from many places would cost that list's length each time for free.
        let mut scan = self.fuel;
        let mut names: Vec<&'d str> = Vec::new();
        let mut schemas: HashMap<&'d str, Vec<&'d Value>> = HashMap::new();
        for part in &flat.parts {
            if let Some(Value::Object(properties)) = part.map.get("properties") {
                for (name, schema) in properties.iter().take(scan) {
                    schemas
                        .entry(name.as_str())
                        .or_insert_with(|| {
                            names.push(name.as_str());
                            Vec::new()
                        })
                        .push(schema);
                }
                scan -= properties.len().min(scan);
            }
        }
        let mut required: Vec<&'d str> = Vec::new();
        let mut is_required: HashSet<&'d str> = HashSet::new();
        for part in &flat.parts {
            if let Some(Value::Array(list)) = part.map.get("required") {
                for name in list.iter().take(scan).filter_map(Value::as_str) {
                    if is_required.insert(name) {
                        required.push(name);
                    }
                }
                scan -= list.len().min(scan);
            }
        }
        self.fuel = scan;
        let additional = flat
            .parts
            .iter()
            .find_map(|p| p.map.get("additionalProperties").filter(|a| a.is_object()));
        let mut out = Map::new();
        for name in names.iter().filter(|n| is_required.contains(*n)) {
            if let Some(v) = self.value(&schemas[name], depth + 1, true) {
                out.insert((*name).to_owned(), v);
            }
        }
        // Required but not described: the schema for other properties says what they hold.
        if let Some(additional) = additional {
            for name in required.iter().filter(|n| !schemas.contains_key(*n)) {
                if let Some(v) = self.value(&[additional], depth + 1, true) {
                    out.insert((*name).to_owned(), v);
                }
            }
        }
        for name in names.iter().filter(|n| !is_required.contains(*n)) {
            if self.fuel == 0 {
                break;
            }
            if let Some(v) = self.value(&schemas[name], depth + 1, false) {
                out.insert((*name).to_owned(), v);
            }
        }
        // A map (`additionalProperties` only) gets one entry, named as Swagger UI does.
        if names.is_empty()
            && required.is_empty()
            && let Some(additional) = additional
            && let Some(v) = self.value(&[additional], depth + 1, false)
        {
            out.insert("additionalProp1".to_owned(), v);
        }
        Value::Object(out)
    }

    fn array(&mut self, flat: &Flat<'d>, depth: usize) -> Value {
        let min = flat.max_u64("minItems").unwrap_or(0);
        let max = flat.min_u64("maxItems").unwrap_or(u64::MAX);
        let want = usize::try_from(min.max(1).min(max).min(MAX_ITEMS)).unwrap_or(0);
        let mut out = Vec::new();
        if let Some(Value::Array(prefix)) = flat.get("prefixItems") {
            for schema in prefix.iter().take(MAX_ITEMS as usize) {
                if out.len() as u64 >= max {
                    break;
                }
                match self.value(&[schema], depth + 1, true) {
                    Some(v) => out.push(v),
                    None => break,
                }
            }
        }
        let items = flat
            .get("items")
            .filter(|i| i.is_object() || **i == Value::Bool(true));
        if let Some(items) = items
            && out.len() < want
            && let Some(v) = self.value(&[items], depth + 1, (out.len() as u64) < min)
        {
            // Copies of one synthesized item: the same work is not done `want` times.
            out.resize(want, v);
        }
        Value::Array(out)
    }

    /// `v`, copied if the byte budget allows; once it does not, every further literal is
    /// replaced by an empty value of the expected kind.
    fn copy(&mut self, v: &Value, kind: Kind) -> Value {
        match size_within(v, self.bytes) {
            Some(size) => {
                self.bytes -= size;
                v.clone()
            }
            None => {
                self.bytes = 0;
                kind.minimal()
            }
        }
    }
}

/// The schema objects that apply at one level of the value, in the order found.
#[derive(Default)]
struct Flat<'d> {
    parts: Vec<Part<'d>>,
    /// `$ref` targets pushed onto [`Synth::open`] while gathering, popped when done.
    opened: usize,
    /// The target of the first `$ref` not followed because it was already open.
    cut: Option<&'d Value>,
}

#[derive(Clone, Copy)]
struct Part<'d> {
    map: &'d Map<String, Value>,
    /// Whether `example`, `examples` and `default` here describe the whole value.
    annotations: bool,
}

impl<'d> Flat<'d> {
    /// The first part's value of a constraint keyword.
    fn get(&self, key: &str) -> Option<&'d Value> {
        self.parts.iter().find_map(|p| p.map.get(key))
    }

    /// The first value of an annotation keyword among the parts it describes.
    fn annotation(&self, key: &str) -> Option<&'d Value> {
        self.parts
            .iter()
            .filter(|p| p.annotations)
            .find_map(|p| p.map.get(key))
    }

    fn any(&self, key: &str, test: impl Fn(&Value) -> bool) -> bool {
        self.parts.iter().any(|p| p.map.get(key).is_some_and(&test))
    }

    fn has(&self, keys: &[&str]) -> bool {
        self.parts
            .iter()
            .any(|p| keys.iter().any(|k| p.map.contains_key(*k)))
    }

    fn max_u64(&self, key: &str) -> Option<u64> {
        self.parts
            .iter()
            .filter_map(|p| p.map.get(key)?.as_u64())
            .max()
    }

    fn min_u64(&self, key: &str) -> Option<u64> {
        self.parts
            .iter()
            .filter_map(|p| p.map.get(key)?.as_u64())
            .min()
    }

    /// The first `type` (in 3.1 a list: its first entry other than `null`), else the kind
    /// its keywords imply.
    fn kind(&self) -> Kind {
        if let Some(ty) = self.get("type") {
            return match ty {
                Value::String(name) => Kind::named(name),
                Value::Array(names) => {
                    let names = || names.iter().filter_map(Value::as_str);
                    match names().find(|n| *n != "null") {
                        Some(name) => Kind::named(name),
                        None if names().next().is_some() => Kind::Null,
                        None => Kind::Any,
                    }
                }
                _ => Kind::Any,
            };
        }
        if self.has(&[
            "properties",
            "additionalProperties",
            "required",
            "patternProperties",
            "minProperties",
            "maxProperties",
        ]) {
            Kind::Object
        } else if self.has(&["items", "prefixItems", "minItems", "maxItems"]) {
            Kind::Array
        } else if let Some(format) = self.get("format").and_then(Value::as_str) {
            match format {
                "int32" | "int64" => Kind::Integer,
                "float" | "double" => Kind::Number,
                _ => Kind::String,
            }
        } else if self.has(&["minLength", "maxLength", "pattern"]) {
            Kind::String
        } else if self.has(&[
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
        ]) {
            Kind::Number
        } else {
            Kind::Any
        }
    }

    /// The tightest lower and upper bounds, each with whether it is exclusive. Both the
    /// 3.0 form (`exclusiveMinimum: true` beside `minimum`) and the 3.1 form
    /// (`exclusiveMinimum: 5`) are read.
    fn bounds(&self) -> (Option<Bound>, Option<Bound>) {
        let mut lower: Option<Bound> = None;
        let mut upper: Option<Bound> = None;
        let tighter_lower = |cur: Option<Bound>, new: Bound| match cur {
            Some(c) if c.0 > new.0 || (c.0 == new.0 && c.1) => Some(c),
            _ => Some(new),
        };
        let tighter_upper = |cur: Option<Bound>, new: Bound| match cur {
            Some(c) if c.0 < new.0 || (c.0 == new.0 && c.1) => Some(c),
            _ => Some(new),
        };
        for p in &self.parts {
            let flag = |k: &str| p.map.get(k) == Some(&Value::Bool(true));
            let number = |k: &str| {
                p.map
                    .get(k)
                    .and_then(Value::as_f64)
                    .filter(|f| f.is_finite())
            };
            if let Some(min) = number("minimum") {
                lower = tighter_lower(lower, (min, flag("exclusiveMinimum")));
            }
            if let Some(min) = number("exclusiveMinimum") {
                lower = tighter_lower(lower, (min, true));
            }
            if let Some(max) = number("maximum") {
                upper = tighter_upper(upper, (max, flag("exclusiveMaximum")));
            }
            if let Some(max) = number("exclusiveMaximum") {
                upper = tighter_upper(upper, (max, true));
            }
        }
        (lower, upper)
    }

    fn multiple_of(&self) -> Option<f64> {
        self.get("multipleOf")
            .and_then(Value::as_f64)
            .filter(|m| m.is_finite() && *m > 0.0)
    }
}

/// A numeric bound and whether it is exclusive.
type Bound = (f64, bool);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
    Null,
    /// No type known: the value is `null`.
    Any,
}

impl Kind {
    fn named(name: &str) -> Kind {
        match name {
            "object" => Kind::Object,
            "array" => Kind::Array,
            "string" => Kind::String,
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "null" => Kind::Null,
            _ => Kind::Any,
        }
    }

    /// The empty value of this kind, where a value is needed but no more work may be done.
    fn minimal(self) -> Value {
        match self {
            Kind::Object => Value::Object(Map::new()),
            Kind::Array => Value::Array(Vec::new()),
            Kind::String => Value::String(String::new()),
            Kind::Integer | Kind::Number => Value::from(0),
            Kind::Boolean => Value::Bool(false),
            Kind::Null | Kind::Any => Value::Null,
        }
    }
}

/// `{"type": "null"}` (or `type: ["null"]`): the branch `anyOf` uses to allow null.
fn is_null_schema(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(types)) => types.iter().all(|t| t == "null"),
        _ => false,
    }
}

fn string(flat: &Flat<'_>) -> Value {
    let sample = match flat.get("format").and_then(Value::as_str) {
        Some("date-time") => "2024-01-01T00:00:00Z",
        Some("date") => "2024-01-01",
        Some("time") => "00:00:00Z",
        Some("duration") => "P1D",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        Some("email" | "idn-email") => "user@example.com",
        Some("uri" | "url" | "iri" | "uri-reference" | "iri-reference") => "https://example.com/",
        Some("hostname" | "idn-hostname") => "example.com",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        Some("byte") => "c3RyaW5n",
        Some("password") => "********",
        _ => {
            let mut s = String::from("string");
            let min = flat.max_u64("minLength").unwrap_or(0);
            let min = usize::try_from(min).unwrap_or(usize::MAX).min(MAX_STRING);
            if s.len() < min {
                s.extend(std::iter::repeat_n('x', min - s.len()));
            }
            if let Some(max) = flat.min_u64("maxLength")
                && let Ok(max) = usize::try_from(max)
                && s.len() > max
            {
                // ASCII only, so any length is a character boundary.
                s.truncate(max);
            }
            return Value::String(s);
        }
    };
    Value::String(sample.to_owned())
}

/// The integer closest to 0 within the bounds (and on `multipleOf` where one fits).
fn integer(flat: &Flat<'_>) -> Value {
    let (lower, upper) = flat.bounds();
    let lo = lower.map(|(v, exclusive)| if exclusive { v.floor() + 1.0 } else { v.ceil() });
    let hi = upper.map(|(v, exclusive)| if exclusive { v.ceil() - 1.0 } else { v.floor() });
    let mut c = 0.0_f64;
    if let Some(lo) = lo
        && c < lo
    {
        c = lo;
    }
    if let Some(hi) = hi
        && c > hi
    {
        c = hi;
    }
    if let Some(m) = flat.multiple_of().filter(|m| m.fract() == 0.0) {
        let up = (c / m).ceil() * m;
        c = if hi.is_some_and(|hi| up > hi) {
            (c / m).floor() * m
        } else {
            up
        };
    }
    whole_number(c)
}

/// The number closest to 0 within the bounds: an exclusive bound is stepped past by 1, or
/// to the middle when both bounds are given.
fn number(flat: &Flat<'_>) -> Value {
    let (lower, upper) = flat.bounds();
    let mut c = 0.0_f64;
    if let Some((lo, exclusive)) = lower
        && (c < lo || (exclusive && c == lo))
    {
        c = match (exclusive, upper) {
            (false, _) => lo,
            (true, Some((hi, _))) => lo / 2.0 + hi / 2.0,
            (true, None) => lo + 1.0,
        };
    }
    if let Some((hi, exclusive)) = upper
        && (c > hi || (exclusive && c == hi))
    {
        c = match (exclusive, lower) {
            (false, _) => hi,
            (true, Some((lo, _))) => lo / 2.0 + hi / 2.0,
            (true, None) => hi - 1.0,
        };
    }
    if let Some(m) = flat.multiple_of() {
        let up = (c / m).ceil() * m;
        if upper.is_none_or(|(hi, _)| up <= hi) {
            c = up;
        }
    }
    if c.fract() == 0.0 {
        whole_number(c)
    } else {
        Number::from_f64(c).map_or(Value::from(0), Value::Number)
    }
}

/// `c` as a JSON integer (saturating at the `i64` range; 0 if not finite).
fn whole_number(c: f64) -> Value {
    if c.is_finite() {
        // `as` saturates, which is what an out-of-range bound deserves.
        Value::from(c as i64)
    } else {
        Value::from(0)
    }
}

/// Roughly the size of `v` as compact JSON, or `None` once it exceeds `limit`. Iterative,
/// so deeply nested values cannot overflow the stack.
fn size_within(v: &Value, limit: usize) -> Option<usize> {
    let mut size = 0usize;
    let mut pending = vec![v];
    while let Some(v) = pending.pop() {
        size += match v {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 20,
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                pending.extend(items);
                items.len() + 2
            }
            Value::Object(map) => {
                for (k, item) in map {
                    size += k.len() + 4;
                    pending.push(item);
                }
                2
            }
        };
        if size > limit {
            return None;
        }
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Synthesizes `#/s` of a document whose `components.schemas` are `schemas`.
    fn check_in(schemas: Value, schema: Value, expected: Option<Value>) {
        let doc = json!({ "s": schema, "components": { "schemas": schemas } });
        let got = Synth::new(&doc, 1 << 20, FUEL).example(&doc["s"]);
        assert_eq!(got, expected, "{schema:#}");
    }

    fn check(schema: Value, expected: Value) {
        check_in(json!({}), schema, Some(expected));
    }

    #[test]
    fn literals_win_in_order() {
        check(
            json!({ "type": "string", "const": "c", "example": "e", "default": "d" }),
            json!("c"),
        );
        check(
            json!({ "type": "string", "example": "e", "examples": ["x"], "default": "d" }),
            json!("e"),
        );
        check(
            json!({ "type": "string", "examples": ["x", "y"], "default": "d" }),
            json!("x"),
        );
        check(
            json!({ "type": "string", "default": "d", "enum": ["a"] }),
            json!("d"),
        );
        check(json!({ "type": "string", "enum": ["a", "b"] }), json!("a"));
        check(json!({ "enum": [3, "b"] }), json!(3));
        check(json!({ "type": "string", "example": null }), Value::Null);
    }

    #[test]
    fn scalars() {
        check(json!({ "type": "string" }), json!("string"));
        check(
            json!({ "type": "string", "minLength": 8 }),
            json!("stringxx"),
        );
        check(json!({ "type": "string", "maxLength": 3 }), json!("str"));
        check(
            json!({ "type": "string", "minLength": 100000 }),
            Value::String(format!("string{}", "x".repeat(MAX_STRING - 6))),
        );
        check(json!({ "type": "boolean" }), json!(true));
        check(json!({ "type": "null" }), Value::Null);
        check(json!({}), Value::Null);
        check(json!(true), Value::Null);
        check(json!({ "type": ["null", "integer"] }), json!(0));
        check(
            json!({ "type": "string", "nullable": true }),
            json!("string"),
        );
        check(json!({ "pattern": "^a+$" }), json!("string"));
    }

    #[test]
    fn formats() {
        for (format, expected) in [
            ("date-time", "2024-01-01T00:00:00Z"),
            ("date", "2024-01-01"),
            ("uuid", "00000000-0000-4000-8000-000000000000"),
            ("email", "user@example.com"),
            ("uri", "https://example.com/"),
            ("ipv4", "192.0.2.1"),
            ("byte", "c3RyaW5n"),
            ("iso-country-code", "string"),
        ] {
            check(
                json!({ "type": "string", "format": format }),
                json!(expected),
            );
        }
        check(json!({ "format": "int64" }), json!(0));
        check(
            json!({ "format": "uuid" }),
            json!("00000000-0000-4000-8000-000000000000"),
        );
    }

    #[test]
    fn numbers_within_bounds() {
        check(json!({ "type": "integer" }), json!(0));
        check(json!({ "type": "integer", "minimum": 1 }), json!(1));
        check(json!({ "type": "integer", "minimum": 1.5 }), json!(2));
        check(json!({ "type": "integer", "maximum": -3 }), json!(-3));
        check(
            json!({ "type": "integer", "minimum": 0, "exclusiveMinimum": true }),
            json!(1),
        );
        check(
            json!({ "type": "integer", "exclusiveMinimum": 0 }),
            json!(1),
        );
        check(
            json!({ "type": "integer", "exclusiveMaximum": -5 }),
            json!(-6),
        );
        check(
            json!({ "type": "integer", "minimum": 7, "multipleOf": 5 }),
            json!(10),
        );
        check(
            json!({ "type": "integer", "minimum": 1e30 }),
            json!(i64::MAX),
        );
        check(json!({ "type": "number" }), json!(0));
        check(json!({ "type": "number", "minimum": 2.5 }), json!(2.5));
        check(
            json!({ "type": "number", "exclusiveMinimum": 2.5 }),
            json!(3.5),
        );
        check(
            json!({ "type": "number", "exclusiveMinimum": 0, "maximum": 1 }),
            json!(0.5),
        );
        check(
            json!({ "type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1 }),
            json!(0.5),
        );
        check(json!({ "type": "number", "maximum": -0.5 }), json!(-0.5));
        check(
            json!({ "type": "number", "minimum": 0.1, "multipleOf": 0.25 }),
            json!(0.25),
        );
        check(json!({ "minimum": 3 }), json!(3));
    }

    #[test]
    fn objects_put_required_properties_first_and_skip_write_only() {
        let schema = json!({
            "type": "object",
            "required": ["name", "id"],
            "properties": {
                "tag": { "type": "string" },
                "id": { "type": "integer", "format": "int64" },
                "secret": { "type": "string", "writeOnly": true },
                "name": { "type": "string", "example": "Rex" },
                "kind": { "type": "string", "enum": ["dog", "cat"], "default": "cat" },
            },
        });
        let got = Synth::new(&Value::Null, 1 << 20, FUEL)
            .example(&schema)
            .unwrap();
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            r#"{"id":0,"name":"Rex","tag":"string","kind":"cat"}"#
        );
        check(
            json!({ "type": "object", "additionalProperties": { "type": "integer" } }),
            json!({ "additionalProp1": 0 }),
        );
        check(
            json!({ "required": ["a"], "additionalProperties": { "type": "string" } }),
            json!({ "a": "string" }),
        );
        check(json!({ "type": "object" }), json!({}));
        check_in(json!({}), json!({ "writeOnly": true }), None);
    }

    #[test]
    fn arrays() {
        check(
            json!({ "type": "array", "items": { "type": "string" } }),
            json!(["string"]),
        );
        check(
            json!({ "type": "array", "items": { "type": "integer" }, "minItems": 3 }),
            json!([0, 0, 0]),
        );
        check(
            json!({ "type": "array", "items": { "type": "integer" }, "minItems": 1000 }),
            json!([0, 0, 0, 0, 0, 0, 0, 0]),
        );
        check(
            json!({ "type": "array", "items": { "type": "integer" }, "maxItems": 0 }),
            json!([]),
        );
        check(json!({ "type": "array" }), json!([]));
        check(
            json!({ "type": "array", "prefixItems": [{ "type": "string" }, { "type": "boolean" }] }),
            json!(["string", true]),
        );
        check(
            json!({ "type": "array", "items": { "type": "integer" }, "example": [1, 2] }),
            json!([1, 2]),
        );
    }

    #[test]
    fn combinations() {
        let schemas = json!({
            "Base": {
                "type": "object",
                "required": ["id"],
                "properties": { "id": { "type": "string", "format": "uuid" } },
                "example": { "id": "only-the-base" },
            },
            "Named": { "properties": { "name": { "type": "string" } } },
            "Cat": { "type": "object", "properties": { "meow": { "type": "boolean" } } },
            "Dog": { "type": "object", "properties": { "bark": { "type": "boolean" } } },
            "Money": { "type": "string", "example": "12.50" },
        });
        // allOf merges; a part's example does not stand for the whole.
        check_in(
            schemas.clone(),
            json!({ "allOf": [
                { "$ref": "#/components/schemas/Base" },
                { "$ref": "#/components/schemas/Named" },
                { "properties": { "age": { "type": "integer", "minimum": 1 } }, "required": ["age"] },
            ] }),
            Some(
                json!({ "id": "00000000-0000-4000-8000-000000000000", "age": 1, "name": "string" }),
            ),
        );
        // A lone allOf branch (the 3.0 way to add a description to a $ref) keeps it.
        check_in(
            schemas.clone(),
            json!({ "allOf": [{ "$ref": "#/components/schemas/Money" }], "description": "d" }),
            Some(json!("12.50")),
        );
        check_in(
            schemas.clone(),
            json!({ "oneOf": [{ "$ref": "#/components/schemas/Cat" }, { "$ref": "#/components/schemas/Dog" }] }),
            Some(json!({ "meow": true })),
        );
        check_in(
            schemas.clone(),
            json!({ "anyOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Dog" }] }),
            Some(json!({ "bark": true })),
        );
        // 3.1: siblings of $ref apply too, and win.
        check_in(
            schemas.clone(),
            json!({ "$ref": "#/components/schemas/Money", "example": "7.00" }),
            Some(json!("7.00")),
        );
        check_in(
            schemas,
            json!({ "$ref": "#/components/schemas/Cat", "properties": { "name": { "const": "Tom" } } }),
            Some(json!({ "name": "Tom", "meow": true })),
        );
        // Unresolvable references contribute nothing.
        check_in(
            json!({}),
            json!({ "$ref": "other.yaml#/Pet" }),
            Some(Value::Null),
        );
    }

    #[test]
    fn recursion_terminates() {
        let schemas = json!({
            "Node": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": { "type": "string" },
                    "parent": { "$ref": "#/components/schemas/Node" },
                    "children": { "type": "array", "items": { "$ref": "#/components/schemas/Node" } },
                },
            },
            "List": {
                "type": "object",
                "required": ["value", "next"],
                "properties": {
                    "value": { "type": "integer" },
                    "next": { "$ref": "#/components/schemas/List" },
                },
            },
            "A": { "allOf": [{ "$ref": "#/components/schemas/B" }] },
            "B": { "allOf": [{ "$ref": "#/components/schemas/A" }], "type": "object" },
            "Self": { "$ref": "#/components/schemas/Self" },
        });
        check_in(
            schemas.clone(),
            json!({ "$ref": "#/components/schemas/Node" }),
            Some(json!({ "name": "string", "children": [] })),
        );
        check_in(
            schemas.clone(),
            json!({ "$ref": "#/components/schemas/List" }),
            Some(json!({ "value": 0, "next": {} })),
        );
        check_in(
            schemas.clone(),
            json!({ "$ref": "#/components/schemas/A" }),
            Some(json!({})),
        );
        check_in(
            schemas,
            json!({ "$ref": "#/components/schemas/Self" }),
            Some(Value::Null),
        );
    }

    #[test]
    fn fan_out_is_bounded() {
        // Ten properties per level, eight levels, all through $ref: 10^8 leaves unbounded.
        let mut schemas = Map::new();
        for level in 0..8 {
            let next = json!({ "$ref": format!("#/components/schemas/L{}", level + 1) });
            let properties: Map<String, Value> =
                (0..10).map(|i| (format!("p{i}"), next.clone())).collect();
            schemas.insert(
                format!("L{level}"),
                json!({ "type": "object", "properties": properties }),
            );
        }
        schemas.insert("L8".into(), json!({ "type": "string" }));
        let doc = json!({ "components": { "schemas": schemas } });
        let schema = json!({ "$ref": "#/components/schemas/L0" });
        let got = Synth::new(&doc, 1 << 20, FUEL).example(&schema).unwrap();
        let size = serde_json::to_vec(&got).unwrap().len();
        assert!(size < 1 << 20, "{size}");
        assert_eq!(
            got["p0"]["p0"]["p0"]["p0"]["p0"]["p0"]["p0"]["p0"],
            "string"
        );
    }

    #[test]
    fn literal_copies_are_bounded() {
        let big = "x".repeat(1000);
        let doc = json!({ "components": { "schemas": {
            "Big": { "type": "string", "example": big },
        } } });
        let schema = json!({
            "type": "array",
            "minItems": 3,
            "items": { "type": "object", "properties": {
                "a": { "$ref": "#/components/schemas/Big" },
                "b": { "$ref": "#/components/schemas/Big" },
            } },
        });
        let got = Synth::new(&doc, 1500, FUEL).example(&schema).unwrap();
        assert_eq!(got[0]["a"].as_str().unwrap().len(), 1000);
        assert_eq!(got[0]["b"], "");
    }

    #[test]
    fn sizes() {
        assert_eq!(size_within(&json!("abc"), 100), Some(5));
        assert_eq!(
            size_within(&json!({ "a": [1, 2] }), 100),
            Some(2 + 5 + 4 + 40)
        );
        assert_eq!(size_within(&json!([[[["deep"]]]]), 10), None);
    }
}
