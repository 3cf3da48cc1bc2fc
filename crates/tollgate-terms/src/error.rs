//! The errors of the crate: a problem in a term sheet, addressed by file, line and field
//! so a person can go straight to it.

use std::fmt;
use std::path::PathBuf;

/// A problem in a term sheet. `Display` renders `file:line: field: message`, the shape
/// compilers use, so editors and terminals can jump to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TermsError {
    /// The file the problem is in (empty for a sheet built in memory).
    pub file: PathBuf,
    /// 1-based line, when it could be found.
    pub line: Option<usize>,
    /// Path of the field, e.g. `grants[1].operations[0]`; empty for the whole file.
    pub field: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for TermsError {
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

/// A semantic problem found by `validate`, before it is placed in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted path of the field, e.g. `limits.rate[0].requests`.
    pub field: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}
