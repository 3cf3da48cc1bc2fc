//! Reading term sheets from YAML, TOML or JSON (by extension, else by content), with
//! errors that name the file, the line and the field. The only IO is reading the file
//! the caller names.

use crate::error::{Issue, TermsError};
use crate::locate::{FieldPath, Format, from_serde, line_of_offset, locate};
use crate::model::TermSheet;
use crate::schema;
use crate::validate::{KnownOperation, ValidatedSheet, validate, validate_against};
use std::path::{Path, PathBuf};

/// A parsed (not yet validated) sheet with the text it came from, so that semantic
/// errors found later can be given a line.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub sheet: TermSheet,
    /// The file it was read from (as given).
    pub file: PathBuf,
    pub format: Format,
    pub text: String,
}

impl Loaded {
    /// Validates the sheet; problems come back with file and line.
    pub fn validate(&self) -> Result<ValidatedSheet, Vec<TermsError>> {
        validate(&self.sheet).map_err(|e| self.place(e))
    }

    /// Validates the sheet and its operations against `ops` (e.g. those of an imported
    /// OpenAPI document).
    pub fn validate_against(
        &self,
        ops: &[KnownOperation],
    ) -> Result<ValidatedSheet, Vec<TermsError>> {
        validate_against(&self.sheet, ops).map_err(|e| self.place(e))
    }

    /// Gives each issue this file and the line of its field.
    pub fn place(&self, issues: Vec<Issue>) -> Vec<TermsError> {
        issues
            .into_iter()
            .map(|i| TermsError {
                file: self.file.clone(),
                line: locate(self.format, &self.text, &FieldPath::parse(&i.field)),
                field: i.field,
                message: i.message,
            })
            .collect()
    }
}

/// Reads and parses the file at `path`.
pub fn load(path: &Path) -> Result<Loaded, Vec<TermsError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![TermsError {
            file: path.to_owned(),
            line: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_str(path, None, &text)
}

/// Reads, parses and validates the file at `path`.
pub fn load_validated(path: &Path) -> Result<ValidatedSheet, Vec<TermsError>> {
    load(path)?.validate()
}

/// Parses a sheet held in memory, as if read from `file` (which names it in errors and,
/// when `format` is `None`, tells the format by its extension, else by content).
pub fn parse_str(
    file: &Path,
    format: Option<Format>,
    text: &str,
) -> Result<Loaded, Vec<TermsError>> {
    let format = format
        .or_else(|| Format::from_path(file))
        .unwrap_or_else(|| Format::sniff(text));
    let err = |field: FieldPath, line: Option<usize>, message: String| TermsError {
        file: file.to_owned(),
        line: line.or_else(|| locate(format, text, &field)),
        field: field.to_string(),
        message,
    };
    if text.trim().is_empty() {
        return Err(vec![err(FieldPath::default(), None, "is empty".into())]);
    }
    // The schema first, on the document as plain JSON data: it lists every structural
    // problem at once, where serde stops at the first. The typed parse stays the
    // authority: a document it accepts is accepted (the schema cannot see that YAML
    // reads a plain `1.0` as text for a text field), and when the schema passes but the
    // parse fails (rare), serde's error is the answer.
    let issues = as_json(format, text)
        .map(|doc| schema::check(&doc))
        .unwrap_or_default();
    match (parse_typed(format, text, &err), issues.is_empty()) {
        (Ok(sheet), _) => Ok(Loaded {
            sheet,
            file: file.to_owned(),
            format,
            text: text.to_owned(),
        }),
        (Err(e), true) => Err(vec![e]),
        (Err(_), false) => {
            let mut errors: Vec<TermsError> = issues
                .into_iter()
                .map(|i| err(FieldPath::parse(&i.field), None, i.message))
                .collect();
            // In the order of the file; problems without a line (missing top-level
            // fields) last.
            errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(errors)
        }
    }
}

/// The document as plain JSON data, as the schema check sees it (TOML dates and times
/// become text); `None` when it does not read as such (a syntax error, a non-text key,
/// a TOML float JSON cannot hold), in which case the typed parse reports the problem.
pub fn as_json(format: Format, text: &str) -> Option<serde_json::Value> {
    match format {
        Format::Json => serde_json::from_str(text).ok(),
        Format::Yaml => yaml_serde::from_str(text).ok(),
        Format::Toml => toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| toml_to_json(toml::Value::Table(t))),
    }
}

/// TOML to JSON data; dates and times become their text (`2026-01-01`, `08:00:00`), as
/// the model reads them.
fn toml_to_json(v: toml::Value) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    Some(match v {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => J::Number(serde_json::Number::from_f64(f)?),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_to_json).collect::<Option<_>>()?),
        toml::Value::Table(t) => J::Object(
            t.into_iter()
                .map(|(k, v)| Some((k, toml_to_json(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// The typed parse with serde: the first problem only, with its line where the parser
/// knows it.
fn parse_typed(
    format: Format,
    text: &str,
    err: &dyn Fn(FieldPath, Option<usize>, String) -> TermsError,
) -> Result<TermSheet, TermsError> {
    match format {
        Format::Yaml => {
            let de = yaml_serde::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let line = e.inner().location().map(|l| l.line());
                let path = from_serde(e.path());
                let msg = clean_message(&e.inner().to_string(), &path);
                err(path, line, msg)
            })
        }
        Format::Toml => match toml::Deserializer::parse(text) {
            Err(e) => {
                let line = e.span().map(|s| line_of_offset(text, s.start));
                Err(err(FieldPath::default(), line, e.message().to_owned()))
            }
            Ok(de) => serde_path_to_error::deserialize(de).map_err(|e| {
                let line = e.inner().span().map(|s| line_of_offset(text, s.start));
                let msg = e.inner().message().to_owned();
                err(from_serde(e.path()), line, msg)
            }),
        },
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let json_err = |field: FieldPath, e: &serde_json::Error| {
                let line = Some(e.line()).filter(|&l| l > 0);
                let msg = clean_message(&e.to_string(), &field);
                err(field, line, msg)
            };
            match serde_path_to_error::deserialize(&mut de) {
                Err(e) => Err(json_err(from_serde(e.path()), e.inner())),
                // Trailing text after the sheet is an error too.
                Ok(s) => de
                    .end()
                    .map(|()| s)
                    .map_err(|e| json_err(FieldPath::default(), &e)),
            }
        }
    }
}

/// Drops the position and path that YAML and JSON errors repeat in their text, since
/// `TermsError` carries both separately.
fn clean_message(msg: &str, path: &FieldPath) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => &msg[..i],
        _ => msg,
    };
    // yaml_serde prefixes `path: ` for errors inside the document.
    if let Some(rest) = msg.strip_prefix(&format!("{path}: ")) {
        return rest.to_owned();
    }
    match msg.split_once(": ") {
        Some((p, rest)) if !p.contains(' ') && (p.contains('.') || p.contains('[')) => {
            rest.to_owned()
        }
        _ => msg.to_owned(),
    }
}
