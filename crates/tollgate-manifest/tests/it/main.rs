//! Integration tests of tollgate-manifest: one binary (see STYLE.md), one module per
//! concern.

mod apply;
mod errors;
mod export;
mod parse;
mod sim;
mod subscriptions;
mod terms;

use std::path::PathBuf;

/// A fixture's path.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A fixture applied to an empty marketplace.
pub fn apply_fixture(rel: &str) -> tollgate_manifest::Catalog {
    let m = tollgate_manifest::load(&fixture(rel)).unwrap();
    let mut cat = tollgate_manifest::Catalog::default();
    let steps = tollgate_manifest::plan(&m, &cat).unwrap();
    sim::apply(&mut cat, &steps);
    cat
}
