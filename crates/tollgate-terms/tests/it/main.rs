//! Integration tests of tollgate-terms: one binary (link time), one module per concern.

mod common;
mod diff;
mod errors;
mod hash;
mod odrl;
mod pricing;
mod render;
mod schema;
mod windows;
