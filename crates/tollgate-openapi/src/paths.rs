//! The `paths` object: templates and ambiguous pairs, path-item fields, each operation's
//! own fields, the agreement of path parameters with `{placeholders}`, and operationIds.

use crate::operation_id;
use crate::params::{self, Param};
use crate::problems::{Problems, join};
use crate::{ImportedOperation, MAX_OPERATIONS};
use serde_json::{Map, Value};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use tollgate_core::path_template::{PathTemplate, Segment};

/// The HTTP methods a path item may hold, in the order operations are listed.
pub(crate) const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Path-item fields other than methods, `$ref` and `x-` extensions.
const ITEM_FIELDS: [&str; 4] = ["summary", "description", "servers", "parameters"];

/// An operation as found, before its operationId is settled.
struct Found {
    /// Index into [`METHODS`].
    method: usize,
    /// `None` when the path key is not a valid template (already reported).
    template: Option<PathTemplate>,
    path: String,
    pointer: String,
    explicit_id: Option<String>,
    summary: String,
    deprecated: bool,
    tags: Vec<String>,
}

/// Checks the value of `/paths` and lists its operations: paths in document order, and
/// within a path the methods in [`METHODS`] order. Each comes with the JSON pointer of its
/// operation object, such as `/paths/~1pets/get`.
pub(crate) fn collect(
    doc: &Value,
    paths: &Value,
    problems: &mut Problems,
) -> Vec<(ImportedOperation, String)> {
    let Some(paths) = paths.as_object() else {
        problems.push("/paths", "must be an object");
        return Vec::new();
    };
    // Keyed by shape rather than compared pairwise with `same_shape`, so a document with
    // many paths costs linear time.
    let mut shapes: HashMap<Vec<Option<String>>, &str> = HashMap::new();
    let mut found = Vec::new();
    for (key, item) in paths {
        if key.starts_with("x-") {
            continue;
        }
        let pointer = join("/paths", key);
        let template = match PathTemplate::parse(key) {
            Ok(template) => Some(template),
            Err(e) => {
                problems.push(&pointer, format!("is not a valid path template: {e}"));
                None
            }
        };
        if let Some(template) = &template {
            match shapes.entry(shape(template)) {
                Entry::Occupied(first) => problems.push(
                    &pointer,
                    format!(
                        "routes the same requests as {:?}: the two differ only in parameter \
                         names or a trailing '/', which OpenAPI forbids",
                        first.get()
                    ),
                ),
                Entry::Vacant(slot) => {
                    slot.insert(key);
                }
            }
        }
        path_item(
            doc,
            item,
            &pointer,
            key,
            template.as_ref(),
            problems,
            &mut found,
        );
    }
    if found.len() > MAX_OPERATIONS {
        problems.push(
            "/paths",
            format!(
                "has {} operations; Tollgate imports at most {MAX_OPERATIONS} per document",
                found.len()
            ),
        );
    }
    settle_ids(found, problems)
}

/// Literals as themselves and parameters as `None`: equal keys mean `same_shape`.
fn shape(template: &PathTemplate) -> Vec<Option<String>> {
    template
        .segments()
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => Some(l.clone()),
            Segment::Param(_) => None,
        })
        .collect()
}

fn path_item(
    doc: &Value,
    item: &Value,
    pointer: &str,
    key: &str,
    template: Option<&PathTemplate>,
    problems: &mut Problems,
    found: &mut Vec<Found>,
) {
    let Some(item) = item.as_object() else {
        problems.push(pointer, "must be an object");
        return;
    };
    for field in item.keys() {
        let f = field.as_str();
        if METHODS.contains(&f) || ITEM_FIELDS.contains(&f) || f.starts_with("x-") {
            continue;
        }
        let lower = f.to_ascii_lowercase();
        let detail = if f == "$ref" {
            "path item references are not supported for import; inline the path item here"
                .to_owned()
        } else if METHODS.contains(&lower.as_str()) {
            format!("HTTP methods must be written in lower case: use {lower:?}")
        } else {
            "is not a path item field; expected an HTTP method (get, put, post, delete, \
             options, head, patch, trace), summary, description, servers, parameters or an \
             x- extension"
                .to_owned()
        };
        problems.push(join(pointer, f), detail);
    }
    let shared = params::collect(
        doc,
        item.get("parameters"),
        &join(pointer, "parameters"),
        problems,
    );
    if let Some(template) = template {
        check_declared_in_template(&shared, template, problems);
    }
    let path = template.map_or_else(|| key.to_owned(), ToString::to_string);
    for (method, name) in METHODS.iter().enumerate() {
        if let Some(op) = item.get(*name) {
            let mut f = Found {
                method,
                template: template.cloned(),
                path: path.clone(),
                pointer: join(pointer, name),
                explicit_id: None,
                summary: String::new(),
                deprecated: false,
                tags: Vec::new(),
            };
            operation(doc, op, &mut f, &shared, problems);
            found.push(f);
        }
    }
}

/// Every declared path parameter must name a `{placeholder}` of the template.
fn check_declared_in_template(
    declared: &[Param],
    template: &PathTemplate,
    problems: &mut Problems,
) {
    for param in declared.iter().filter(|p| p.in_path()) {
        if !template.params().any(|name| name == param.name) {
            problems.push(
                &param.use_pointer,
                format!(
                    "path parameter {:?} does not appear in the path template \"{template}\"",
                    param.name
                ),
            );
        }
    }
}

fn operation(doc: &Value, op: &Value, f: &mut Found, shared: &[Param], problems: &mut Problems) {
    let Some(op) = op.as_object() else {
        problems.push(&f.pointer, "must be an object");
        return;
    };
    match op.get("operationId") {
        None => {}
        Some(Value::String(id)) => match operation_id::problem(id) {
            Some(detail) => problems.push(join(&f.pointer, "operationId"), detail),
            None => f.explicit_id = Some(id.clone()),
        },
        Some(_) => problems.push(join(&f.pointer, "operationId"), "must be a string"),
    }
    match op.get("summary") {
        None => {}
        Some(Value::String(s)) => f.summary = s.clone(),
        Some(_) => problems.push(join(&f.pointer, "summary"), "must be a string"),
    }
    match op.get("deprecated") {
        None => {}
        Some(Value::Bool(b)) => f.deprecated = *b,
        Some(_) => problems.push(join(&f.pointer, "deprecated"), "must be true or false"),
    }
    tags(op, f, problems);
    let parameters_pointer = join(&f.pointer, "parameters");
    let own = params::collect(doc, op.get("parameters"), &parameters_pointer, problems);
    let Some(template) = &f.template else { return };
    check_declared_in_template(&own, template, problems);
    for name in template.params() {
        let declared = own
            .iter()
            .chain(shared)
            .any(|p| p.in_path() && p.name == name);
        if !declared {
            problems.push(
                &parameters_pointer,
                format!(
                    "path parameter {{{name}}} is not declared; add {{\"name\": {name:?}, \
                     \"in\": \"path\", \"required\": true}} here or to the path item's \
                     parameters"
                ),
            );
        }
    }
}

fn tags(op: &Map<String, Value>, f: &mut Found, problems: &mut Problems) {
    let pointer = join(&f.pointer, "tags");
    match op.get("tags") {
        None => {}
        Some(Value::Array(tags)) => {
            for (i, tag) in tags.iter().enumerate() {
                match tag {
                    Value::String(tag) => f.tags.push(tag.clone()),
                    _ => problems.push(format!("{pointer}/{i}"), "must be a string"),
                }
            }
        }
        Some(_) => problems.push(pointer, "must be an array of strings"),
    }
}

/// Reports duplicate explicit operationIds (on every use after the first) and derives
/// ids for the operations without one; see [`operation_id`] for the rule.
fn settle_ids(found: Vec<Found>, problems: &mut Problems) -> Vec<(ImportedOperation, String)> {
    let mut first_use: HashMap<&str, String> = HashMap::new();
    for f in &found {
        let Some(id) = &f.explicit_id else { continue };
        let pointer = join(&f.pointer, "operationId");
        match first_use.entry(id) {
            Entry::Occupied(first) => problems.push(
                pointer,
                format!(
                    "duplicates operationId {id:?}, first used at {}",
                    first.get()
                ),
            ),
            Entry::Vacant(slot) => {
                slot.insert(pointer);
            }
        }
    }
    let mut taken: HashSet<String> = first_use.keys().map(|id| (*id).to_owned()).collect();
    let mut ids: Vec<Option<String>> = found.iter().map(|f| f.explicit_id.clone()).collect();
    // Derive in (path, method) order so that which operation gets a suffix does not
    // depend on the order of keys in the document.
    let mut pending: Vec<usize> = (0..found.len()).filter(|&i| ids[i].is_none()).collect();
    pending.sort_by(|&a, &b| {
        (&found[a].path, found[a].method).cmp(&(&found[b].path, found[b].method))
    });
    for i in pending {
        // Without a valid template the import fails anyway; leave the id empty.
        let Some(template) = &found[i].template else {
            continue;
        };
        let base = operation_id::derive(METHODS[found[i].method], template);
        let mut id = base.clone();
        let mut n = 2;
        while taken.contains(&id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        taken.insert(id.clone());
        ids[i] = Some(id);
    }
    found
        .into_iter()
        .zip(ids)
        .map(|(f, id)| {
            let operation = ImportedOperation {
                operation_id: id.unwrap_or_default(),
                method: METHODS[f.method].to_ascii_uppercase(),
                path: f.path,
                summary: f.summary,
                deprecated: f.deprecated,
                tags: f.tags,
            };
            (operation, f.pointer)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_keys_agree_with_same_shape() {
        let templates = [
            "/",
            "/pets",
            "/pets/",
            "/pets/{id}",
            "/pets/{petId}",
            "/pets/mine",
            "/{a}",
            "/{a}/{b}",
            "/{x}/{y}/",
            "/pets/{id}/toys",
            "/pets/{id}/{toy}",
        ];
        for a in templates {
            for b in templates {
                let (ta, tb) = (
                    PathTemplate::parse(a).unwrap(),
                    PathTemplate::parse(b).unwrap(),
                );
                assert_eq!(shape(&ta) == shape(&tb), ta.same_shape(&tb), "{a} vs {b}");
            }
        }
    }
}
