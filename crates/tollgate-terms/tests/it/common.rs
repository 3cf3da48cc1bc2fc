//! Shared helpers: the fixtures and a way to edit a sheet and revalidate it.

use std::path::{Path, PathBuf};
use tollgate_terms::{TermSheet, ValidatedSheet, load, validate};

pub const FIXTURES: [&str; 3] = [
    "weather-standard.yaml",
    "health-records.toml",
    "fintech-payments.json",
];

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The parsed (not validated) fixture.
pub fn sheet(name: &str) -> TermSheet {
    match load(&fixture_path(name)) {
        Ok(l) => l.sheet,
        Err(e) => panic!("{name}: {e:?}"),
    }
}

/// The validated fixture.
pub fn valid(name: &str) -> ValidatedSheet {
    let l = load(&fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    l.validate().unwrap_or_else(|e| {
        panic!(
            "{name}: {}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// Validates an edited sheet, panicking with the issues if it is invalid.
pub fn revalidate(s: &TermSheet) -> ValidatedSheet {
    validate(s).unwrap_or_else(|e| panic!("{e:?}"))
}
