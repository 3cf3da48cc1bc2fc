//! Integration tests of tollgate-policy (one test binary, STYLE.md).

mod compile;
mod decide;
mod equivalence;
mod fixtures;
