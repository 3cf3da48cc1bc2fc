//! Term sheets, "terms as code": one versioned, content-addressed document carrying the
//! human text and the machine clauses of a plan's terms. This crate parses sheets from
//! YAML, TOML or JSON (`load`), checks them (`validate`), computes their identity
//! (`hash`), renders them for people (`render`), lists what changed between two versions
//! (`diff`) and exports them as ODRL 2.2 (`odrl`). Its JSON Schema, derived from the
//! model, is `schema::json_schema()`, published at `schema::SCHEMA_ID`. Compiling to Cedar lives in
//! `tollgate-policy`, which consumes `ValidatedSheet`'s resolved facts. Inline prices are
//! a tollgate-billing `PriceBook`, checked by billing's rules (`pricing`) and handed to
//! the rater by `ValidatedSheet::price_book`.
//!
//! Pure: no clock (times are passed in), no network, no IO beyond reading the files a
//! caller names.

pub mod diff;
pub mod error;
pub mod hash;
pub mod load;
pub mod locate;
pub mod model;
pub mod odrl;
mod pricing;
pub mod render;
pub mod schema;
pub mod validate;
pub mod vocab;

pub use diff::{Change, ChangeKind, diff};
pub use error::{Issue, TermsError};
pub use load::{Loaded, load, load_validated, parse_str};
pub use locate::Format;
pub use model::TermSheet;
/// The price book of inline pricing (`ValidatedSheet::price_book`).
pub use tollgate_billing::PriceBook;
pub use validate::{
    KnownOperation, LocalFacts, OperationFacts, ResolvedWindows, ValidatedSheet, WindowCheck,
    validate, validate_against,
};
