//! The one error type of the crate: a problem in a manifest, addressed by file, line and
//! field so a person can go straight to it.

use std::fmt;
use std::path::PathBuf;

/// A problem in a manifest file. `Display` renders `file:line: field: message`, the shape
/// compilers use, so editors and terminals can jump to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
    /// Path of the field, e.g. `apis[1].base_path`; empty for the whole file.
    pub field: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

/// A step refers to an object created earlier in the same run whose id the executor has
/// not recorded: the executor skipped `Ids::record` or ran steps out of order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no id known for {0}; record the id of every created object before running later steps")]
pub struct Unresolved(pub String);
