//! The crate's one error type.

/// What can go wrong building policies, directories and region tables. Decisions are
/// values ([`crate::Decision`]), never errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A clause of the plan terms cannot be compiled; `clause` is its path, e.g.
    /// `grants[2].operations` or `window.allow[0]`.
    #[error("clause {clause}: {message}")]
    Clause { clause: String, message: String },
    /// The operator policies do not parse or do not validate against the schema.
    #[error("operator policies: {message}")]
    Operator { message: String },
    /// Two policies of one set have the same id.
    #[error("duplicate policy id {id}")]
    DuplicateId { id: String },
    /// The subscription facts do not form a valid entity set.
    #[error("directory: {message}")]
    Directory { message: String },
    /// An entry of the CIDR → region table is invalid.
    #[error("region table entry {entry:?}: {message}")]
    Region { entry: String, message: String },
}

impl PolicyError {
    pub(crate) fn clause(clause: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Clause {
            clause: clause.into(),
            message: message.into(),
        }
    }
}
