//! Integration tests of tollgate-billing (one binary, as STYLE.md asks): price books,
//! rating scenarios worked by hand, payouts and corrections, properties, and a snapshot
//! of a full invoice.

mod books;
mod corrections;
mod docs_examples;
mod props;
mod quotes;
mod scenarios;
mod snapshot;
mod support;
