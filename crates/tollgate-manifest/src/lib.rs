//! Marketplace as code: read catalog manifests (YAML, TOML or JSON), check them, diff them
//! against the marketplace's current catalog into ordered admin API steps, and render a
//! catalog back to a manifest. Pure apart from reading the files it is given: the
//! `tollgate` binary fetches the catalog, calls [`plan`], prints and runs the steps.
//!
//! # The manifest
//!
//! A file holds any of four top-level lists, all optional. Unknown keys are errors.
//!
//! ```yaml
//! orgs:
//!   - slug: acme-weather          # identity, unique across the marketplace
//!     name: Acme Weather
//!     kind: provider              # provider | consumer | both
//!   - slug: globex
//!     name: Globex
//!     kind: consumer
//! apis:
//!   - org: acme-weather           # org slug (in a manifest or already in the marketplace)
//!     slug: weather               # identity within the org
//!     name: Weather
//!     version: v1                 # default v1
//!     description: Forecasts      # default ""
//!     base_path: /weather/v1
//!     hosts: []                   # default [] (any host)
//!     upstreams: [http://127.0.0.1:9000]
//!     status: published           # draft | published | deprecated | retired; new APIs start draft
//!     # sunset: 2027-01-01T00:00:00Z   # only with status: deprecated (and then required)
//!     openapi: ./weather.openapi.yaml  # path relative to this file (YAML or JSON), or inline mapping
//! plans:
//!   - org: acme-weather
//!     slug: free
//!     name: Free
//!     description: ""
//!     visibility: public          # public | private
//!     approval_required: false    # default false
//!     status: published           # draft | published | retired; new plans start draft
//!     apis:
//!       - api: weather            # API slug within the plan's org
//!         operations: [getForecast]   # optional; absent = every operation
//! apps:
//!   - org: globex
//!     slug: dashboard
//!     name: Globex Dashboard
//!     description: ""
//! ```
//!
//! TOML has the same shape (`[[orgs]]`, `[[apis]]`, `[[plans.apis]]`, …; a `sunset` may be
//! a TOML datetime or a string), and so does JSON.
//!
//! # Files and folders
//!
//! [`load`] takes a file or a folder. A folder is read recursively in sorted path order:
//! files ending `.yaml`, `.yml`, `.toml` or `.json`; hidden files and folders (name
//! starting with `.`) are skipped. In a folder, **a file whose top level has an `openapi`
//! (or `swagger`) key is an OpenAPI document, not a manifest**, and is skipped; manifests
//! name such files in `openapi:`. Entities from all files form one manifest.
//!
//! # Errors
//!
//! Every problem of every file is collected before failing, each a [`ManifestError`]
//! shown as `file:line: field: message`, e.g.
//! `catalog/apis.yaml:12: apis[1].base_path: must be a path like /weather/v1: …`. Syntax and
//! type errors come from the parsers; invalid values (core's request validation),
//! duplicate identities, `sunset` without `deprecated`, unreadable `openapi:` files and
//! plans naming another org's API are found by [`load`]; unknown orgs and APIs (absent
//! from both the manifest and the marketplace), impossible lifecycle moves and publishing
//! a plan whose APIs stay unpublished are found by [`plan`].
//!
//! # Applying
//!
//! [`plan`] compares only what the manifest says: a field left out (say `description`)
//! keeps its value in the marketplace, and objects the manifest does not mention are left
//! alone — apply never deletes. Planning again after applying gives no steps. Steps name
//! objects by slug; an executor keeps an [`Ids`] book ([`Ids::from_catalog`], then
//! [`Ids::record`] after each step) and asks each step for
//! [`Step::method_and_path`], [`Step::body`] and [`Step::if_match`].
//!
//! # Exporting
//!
//! [`export`] renders a catalog as YAML (OpenAPI documents inline, sorted by slug) that
//! reproduces it when applied to an empty marketplace; [`export_toml`] does the same in
//! TOML.

mod error;
mod export;
mod load;
mod locate;
mod plan;
mod spec;

pub use error::{ManifestError, Unresolved};
pub use export::{export, export_toml, to_manifest};
pub use load::{Manifest, load, parse_str};
pub use locate::Format;
pub use plan::{Catalog, FieldChange, Ids, Resolver, Step, Target, plan};
pub use spec::{ApiSpec, AppSpec, ManifestFile, OpenApi, OrgSpec, PlanApiSpec, PlanSpec};
