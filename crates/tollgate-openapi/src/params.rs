//! Parameter lists (`parameters` of a path item or an operation): local `$ref`
//! resolution and the checks needed to line declared path parameters up with the
//! `{placeholders}` of a template. Parameter schemas are not looked at.

use crate::problems::{Problems, join};
use crate::refs::{MAX_REF_HOPS, percent_decode};
use serde_json::Value;

const LOCATIONS: [&str; 4] = ["query", "header", "path", "cookie"];

/// A parameter whose `name` and `in` are known (it may still have other problems, which
/// are already recorded).
#[derive(Debug)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) location: String,
    /// The list element, e.g. `/paths/~1pets~1{id}/parameters/0`.
    pub(crate) pointer: String,
    /// Where to blame a misplaced use: the element's `name`, or its `$ref` when the
    /// definition lives elsewhere (the shared definition itself is fine).
    pub(crate) use_pointer: String,
}

impl Param {
    pub(crate) fn in_path(&self) -> bool {
        self.location == "path"
    }
}

/// Checks the `parameters` value found at `pointer` (if any) and returns the parameters
/// whose `name` and `in` could be read.
pub(crate) fn collect(
    doc: &Value,
    list: Option<&Value>,
    pointer: &str,
    problems: &mut Problems,
) -> Vec<Param> {
    let Some(list) = list else { return Vec::new() };
    let Some(items) = list.as_array() else {
        problems.push(pointer, "must be an array");
        return Vec::new();
    };
    let mut out: Vec<Param> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_pointer = format!("{pointer}/{i}");
        let Some((definition, definition_pointer)) = resolve(doc, item, &item_pointer, problems)
        else {
            continue;
        };
        let Some((name, location)) = check_definition(definition, &definition_pointer, problems)
        else {
            continue;
        };
        // OpenAPI identifies a parameter by name and location; a second one would leave
        // it unclear which definition applies.
        if let Some(first) = out
            .iter()
            .find(|q| q.name == name && q.location == location)
        {
            problems.push(
                &item_pointer,
                format!(
                    "declares the {location} parameter {name:?} a second time; \
                     it is already declared at {}",
                    first.pointer
                ),
            );
            continue;
        }
        let use_pointer = if definition_pointer == item_pointer {
            join(&item_pointer, "name")
        } else {
            join(&item_pointer, "$ref")
        };
        out.push(Param {
            name,
            location,
            pointer: item_pointer,
            use_pointer,
        });
    }
    out
}

/// Follows local `$ref`s from `item` to the definition; returns it with its pointer.
fn resolve<'d>(
    doc: &'d Value,
    item: &'d Value,
    item_pointer: &str,
    problems: &mut Problems,
) -> Option<(&'d Value, String)> {
    let mut current = item;
    let mut pointer = item_pointer.to_owned();
    let mut visited = vec![pointer.clone()];
    while let Some(reference) = current.as_object().and_then(|o| o.get("$ref")) {
        let ref_pointer = join(&pointer, "$ref");
        let Some(reference) = reference.as_str() else {
            problems.push(ref_pointer, "must be a string");
            return None;
        };
        let Some(fragment) = reference.strip_prefix('#') else {
            problems.push(
                ref_pointer,
                format!(
                    "{reference:?} is not a reference into this document; only local \
                     references such as \"#/components/parameters/Name\" are supported"
                ),
            );
            return None;
        };
        let Some(target_pointer) = percent_decode(fragment) else {
            problems.push(
                ref_pointer,
                format!("{reference:?} has invalid percent-encoding"),
            );
            return None;
        };
        if visited.contains(&target_pointer) {
            problems.push(
                ref_pointer,
                format!("{reference:?} leads to a reference cycle"),
            );
            return None;
        }
        if visited.len() > MAX_REF_HOPS {
            problems.push(
                ref_pointer,
                format!("{reference:?} is more than {MAX_REF_HOPS} references deep"),
            );
            return None;
        }
        let Some(target) = doc.pointer(&target_pointer) else {
            problems.push(
                ref_pointer,
                format!("{reference:?} does not resolve: there is nothing at that location"),
            );
            return None;
        };
        visited.push(target_pointer.clone());
        current = target;
        pointer = target_pointer;
    }
    Some((current, pointer))
}

/// Checks one parameter definition; returns its `name` and `in` when both are valid.
fn check_definition(
    definition: &Value,
    pointer: &str,
    problems: &mut Problems,
) -> Option<(String, String)> {
    let Some(obj) = definition.as_object() else {
        problems.push(pointer, "must be a parameter object");
        return None;
    };
    let name = match obj.get("name") {
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => {
            problems.push(join(pointer, "name"), "must be a string");
            None
        }
        None => {
            problems.push(join(pointer, "name"), "is required");
            None
        }
    };
    let location = match obj.get("in") {
        Some(Value::String(l)) if LOCATIONS.contains(&l.as_str()) => Some(l.clone()),
        Some(_) => {
            problems.push(
                join(pointer, "in"),
                "must be one of \"query\", \"header\", \"path\" or \"cookie\"",
            );
            None
        }
        None => {
            problems.push(join(pointer, "in"), "is required");
            None
        }
    };
    if location.as_deref() == Some("path") && obj.get("required") != Some(&Value::Bool(true)) {
        problems.push(
            join(pointer, "required"),
            "must be true: OpenAPI requires every path parameter to be required",
        );
    }
    Some((name?, location?))
}
