//! OpenAPI import: validates a provider's OpenAPI 3.0.x or 3.1.x document and lists its
//! operations (operationId, method, path template). Pure: no IO, no remote `$ref`s.
//!
//! The caller parses JSON or YAML into a [`serde_json::Value`]; [`import`] either returns
//! the [`ImportedDocument`] or every problem at once (at most [`MAX_ERRORS`]), each a
//! [`FieldError`] whose `pointer` is an RFC 6901 JSON pointer into the document, such as
//! `/paths/~1pets~1{id}/get/operationId`.
//!
//! Checked: the `openapi` version, `info.title` and `info.version`, the `paths` object
//! (valid and unambiguous templates, known path-item fields), each operation's
//! `operationId`, `summary`, `deprecated` and `tags`, and that declared `in: path`
//! parameters (local `$ref`s resolved) match the template's `{placeholders}` one to one.
//! Not checked: schemas, responses, security, servers. Webhooks are not imported.
//!
//! [`mock`] answers sandbox calls from the same documents: [`MockTable::build`] resolves
//! every operation's responses, examples and schemas once, and [`MockTable::respond`]
//! picks the answer for a request's `Accept` and `Prefer` headers.

pub mod mock;
mod operation_id;
mod params;
mod paths;
mod problems;
mod refs;

pub use mock::{MockError, MockResponse, MockTable};
pub use problems::MAX_ERRORS;
pub use tollgate_core::validate::FieldError;

use problems::Problems;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most operations one document may hold.
pub const MAX_OPERATIONS: usize = 2000;

/// A document that passed every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedDocument {
    /// The `openapi` field as written, e.g. `3.1.0`.
    pub openapi: String,
    /// `info.title`.
    pub title: String,
    /// `info.version`: the provider's version of its API, not of OpenAPI.
    pub version: String,
    /// Lowercase hex SHA-256 of the document's RFC 8785 canonical JSON, so key order and
    /// whitespace (and JSON versus YAML) do not change it.
    pub sha256: String,
    /// Paths in document order; within a path, methods in the order get, put, post,
    /// delete, options, head, patch, trace.
    pub operations: Vec<ImportedOperation>,
}

/// One operation of an imported document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedOperation {
    /// The document's `operationId`, or one derived from method and path when absent:
    /// `GET /pets/{petId}/toys` gives `get_pets_by_petId_toys`, with `_2`, `_3`, …
    /// appended on collision. Unique within the document.
    pub operation_id: String,
    /// Upper case, e.g. `GET`.
    pub method: String,
    /// The path template as normalised by `PathTemplate`'s `Display` (trailing `/`
    /// dropped), e.g. `/pets/{petId}`.
    pub path: String,
    /// `summary`, or empty.
    pub summary: String,
    /// `deprecated`, or false.
    pub deprecated: bool,
    /// `tags`, in order, or empty.
    pub tags: Vec<String>,
}

/// The OpenAPI minor versions Tollgate imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Minor {
    V3_0,
    V3_1,
}

/// Validates `doc` and lists its operations, or returns every problem found.
///
/// A document in a version Tollgate does not import (Swagger 2.0, OpenAPI 3.2, …) gets
/// that one error only, since the remaining checks would describe the wrong language.
pub fn import(doc: &Value) -> Result<ImportedDocument, Vec<FieldError>> {
    let mut problems = Problems::default();
    let Some(root) = doc.as_object() else {
        problems.push("", "an OpenAPI document must be an object");
        return Err(problems.into_errors());
    };
    let Ok(minor) = check_version(root, &mut problems) else {
        return Err(problems.into_errors());
    };
    let (title, version) = check_info(root, &mut problems);
    for field in ["components", "webhooks"] {
        if root.get(field).is_some_and(|v| !v.is_object()) {
            problems.push(format!("/{field}"), "must be an object");
        }
    }
    let operations = match root.get("paths") {
        Some(paths) => paths::collect(doc, paths, &mut problems)
            .into_iter()
            .map(|(operation, _)| operation)
            .collect(),
        None => {
            let others = root.contains_key("webhooks") || root.contains_key("components");
            match minor {
                Some(Minor::V3_1) if others => {}
                Some(Minor::V3_1) => problems.push(
                    "/paths",
                    "is required unless the document has webhooks or components",
                ),
                Some(Minor::V3_0) => problems.push("/paths", "is required in OpenAPI 3.0"),
                None => problems.push("/paths", "is required"),
            }
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems.into_errors());
    }
    // serde_json values always canonicalise; the fallback only guards that assumption.
    let Some(sha256) = tollgate_core::hash::canonical_sha256(doc) else {
        problems.push("", "cannot be written as canonical JSON (RFC 8785)");
        return Err(problems.into_errors());
    };
    Ok(ImportedDocument {
        openapi: root
            .get("openapi")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        title,
        version,
        sha256,
        operations,
    })
}

/// A document in a language Tollgate does not import; reported, and checking stops.
struct Unsupported;

/// `Ok(Some(_))` for a supported version, `Ok(None)` when `openapi` is missing or not a
/// string (reported; the other checks still run).
fn check_version(
    root: &Map<String, Value>,
    problems: &mut Problems,
) -> Result<Option<Minor>, Unsupported> {
    const SWAGGER: &str = "Swagger 2.0 documents are not supported; convert the document to \
                           OpenAPI 3.0 or 3.1 first (for example with swagger2openapi)";
    match root.get("openapi") {
        Some(Value::String(v)) => match parse_version(v) {
            Some(minor) => Ok(Some(minor)),
            None if v == "2" || v.starts_with("2.") => {
                problems.push("/openapi", SWAGGER);
                Err(Unsupported)
            }
            None => {
                problems.push(
                    "/openapi",
                    format!(
                        "OpenAPI version {v:?} is not supported; Tollgate imports 3.0.x and \
                         3.1.x (for example \"3.0.3\" or \"3.1.0\")"
                    ),
                );
                Err(Unsupported)
            }
        },
        Some(Value::Number(_)) => {
            problems.push(
                "/openapi",
                "must be a string such as \"3.1.0\", not a number (in YAML, quote it)",
            );
            Ok(None)
        }
        Some(_) => {
            problems.push("/openapi", "must be a string such as \"3.1.0\"");
            Ok(None)
        }
        None if root.contains_key("swagger") => {
            problems.push("/swagger", SWAGGER);
            Err(Unsupported)
        }
        None => {
            problems.push("/openapi", "is required, e.g. \"openapi\": \"3.1.0\"");
            Ok(None)
        }
    }
}

/// `3.0.x` or `3.1.x` where x is one or more digits.
fn parse_version(v: &str) -> Option<Minor> {
    let (minor, patch) = v.strip_prefix("3.")?.split_once('.')?;
    if patch.is_empty() || !patch.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match minor {
        "0" => Some(Minor::V3_0),
        "1" => Some(Minor::V3_1),
        _ => None,
    }
}

/// `info.title` (a non-blank string) and `info.version` (a string); empty when invalid.
fn check_info(root: &Map<String, Value>, problems: &mut Problems) -> (String, String) {
    let Some(info) = root.get("info") else {
        problems.push("/info", "is required");
        return Default::default();
    };
    let Some(info) = info.as_object() else {
        problems.push("/info", "must be an object");
        return Default::default();
    };
    let title = match info.get("title") {
        Some(Value::String(t)) if t.trim().is_empty() => {
            problems.push("/info/title", "must not be blank");
            String::new()
        }
        Some(Value::String(t)) => t.clone(),
        Some(_) => {
            problems.push("/info/title", "must be a string");
            String::new()
        }
        None => {
            problems.push("/info/title", "is required");
            String::new()
        }
    };
    let version = match info.get("version") {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Number(_)) => {
            problems.push(
                "/info/version",
                "must be a string, not a number (in YAML, quote it)",
            );
            String::new()
        }
        Some(_) => {
            problems.push("/info/version", "must be a string");
            String::new()
        }
        None => {
            problems.push("/info/version", "is required");
            String::new()
        }
    };
    (title, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for (v, expected) in [
            ("3.0.0", Some(Minor::V3_0)),
            ("3.0.3", Some(Minor::V3_0)),
            ("3.1.0", Some(Minor::V3_1)),
            ("3.1.12", Some(Minor::V3_1)),
            ("3.1", None),
            ("3.1.", None),
            ("3.1.0-rc1", None),
            ("3.2.0", None),
            ("2.0", None),
            ("3.10.0", None),
            (" 3.0.0", None),
        ] {
            assert_eq!(parse_version(v), expected, "{v}");
        }
    }
}
