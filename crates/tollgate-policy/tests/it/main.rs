//! Integration tests of tollgate-policy (one test binary, STYLE.md).

mod cache;
mod compile;
mod decide;
mod equivalence;
mod fixtures;
