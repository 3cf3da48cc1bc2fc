//! Marketplace as code: read catalog manifests (YAML, TOML or JSON), check them, diff them
//! against the marketplace's current catalog into ordered admin API steps, and render a
//! catalog back to a manifest. Pure apart from reading the files it is given: the
//! `tollgate` binary fetches the catalog, calls [`plan`], prints and runs the steps.
//!
//! # The manifest
//!
//! A file holds any of seven top-level lists, all optional. Unknown keys are errors.
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
//! terms:                          # term sheet versions (see the tollgate-terms crate)
//!   - org: acme-weather           # a provider org (in a manifest or already in the marketplace)
//!     file: ./weather-free.terms.yaml  # path relative to this file (YAML, TOML or JSON) …
//!     publish: true               # default true; false keeps a new sheet a draft
//!   - org: acme-weather
//!     document:                   # … or the sheet inline
//!       id: weather-pro
//!       version: 1.0.0
//!       # title, effective, jurisdiction, governing_law, language, grants, notice, …
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
//!     terms: { id: weather-free, version: 1.0.0 }  # optional: the published sheet it offers
//! apps:
//!   - org: globex
//!     slug: dashboard
//!     name: Globex Dashboard
//!     description: ""
//! subscriptions:                  # carried over with their signed acceptance records
//!   - app: { org: globex, slug: dashboard }
//!     plan: { org: acme-weather, slug: free }
//!     state: active               # active | pending | suspended
//!     acceptances:                # oldest first, exactly as `tollgate export` wrote them
//!       - record:                 # the signed record (tollgate.acceptance.v1)
//!           type: tollgate.acceptance.v1
//!           id: 0190…             # keeps its id in every marketplace
//!           terms_sha256: 4f1c…   # the sheet accepted: must be a sheet of the plan's org
//!           # subscription_id, app_id, plan_id, …, accepted_by, accepted_at, ip, user_agent
//!         key_id: 0190…           # the key that signed it
//!         signature: MEUC…        # base64 Ed25519 over the RFC 8785 JSON of `record`
//! verification_keys:              # public keys of the keys that signed the records
//!   - key_id: 0190…
//!     public_key: q83v…           # raw 32-byte Ed25519 public key, base64
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
//! name such files in `openapi:`. Likewise **a file whose top level has `id`, `version`
//! and `grants` but none of the seven manifest lists is a term sheet**,
//! skipped; manifests name such files in `terms[].file`. Entities from all files form one
//! manifest.
//!
//! # Term sheets
//!
//! Each `terms:` entry is parsed and validated with `tollgate-terms` when the manifest is
//! read (a problem in a sheet file is reported on the entry's `file` field, its message
//! holding the sheet's own `file:line: field: message`; a problem in an inline sheet on
//! `terms[i].document.<field>`). A sheet is identified by its canonical SHA-256: applying
//! stores it (`POST /v1/terms`) only when its org has no sheet with that hash, and
//! publishes it when `publish` (default true) and it is a draft. A sheet whose
//! `(id, version)` the org already has with other content is an error: a change is a new
//! version. Sheets in the marketplace that the manifest does not list are left alone. A
//! plan's `terms: {id, version}` names a sheet of the plan's own org; it must be
//! published (by the manifest or already), and is set before the plan is published.
//!
//! # Subscriptions and signed acceptances
//!
//! A `subscriptions:` entry names an app and a plan by `{org, slug}` and carries the
//! subscription's signed acceptance records: the proof that someone accepted a term
//! sheet version. They are imported as they are (`POST /v1/subscriptions/import`),
//! keeping their ids and contents; nothing is re-signed, so a record and its signature
//! mean the same in every marketplace. Every signature is verified before anything is
//! sent: when the manifest is read with the keys under `verification_keys:`, and by
//! [`plan`] with those or the marketplace's (`GET /v1/verification-keys`). A changed
//! record or signature is an error on `subscriptions[i].acceptances[j].signature`.
//!
//! A subscription is imported only when its app has no open (non-cancelled)
//! subscription to the plan. **An existing subscription is left alone, its state
//! included**: states are decided by people (approvals, suspensions), not manifests, so
//! a `state:` that differs from the marketplace's is not applied. A plan with terms
//! needs acceptance records, and each accepted hash must be a sheet of the plan's org
//! (in the manifest or the marketplace; sheets are content-addressed, so the same sheet
//! has the same hash everywhere). Cancelled subscriptions are not carried over.
//!
//! # Errors
//!
//! Every problem of every file is collected before failing, each a [`ManifestError`]
//! shown as `file:line: field: message`, e.g.
//! `catalog/apis.yaml:12: apis[1].base_path: must be a path like /weather/v1: …`. Syntax and
//! type errors come from the parsers; invalid values (core's request validation),
//! duplicate identities, `sunset` without `deprecated`, unreadable `openapi:` files,
//! invalid term sheets, plans naming another org's API, malformed acceptance records and
//! keys, and signatures that do not verify with the manifest's keys are found by
//! [`load`]; unknown orgs, APIs, apps, plans and term sheets (absent from both the
//! manifest and the marketplace), impossible lifecycle moves, publishing a plan whose
//! APIs stay unpublished, offering a draft sheet, a changed sheet under an existing
//! version, a subscription without the acceptances its plan's terms need and a
//! signature that does not verify with the marketplace's key are found by [`plan`].
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
//! [`export`] renders a catalog as YAML (OpenAPI documents and term sheets inline, sorted
//! by slug; drafts with `publish: false`; plans with the `terms` they offer) that
//! reproduces it when applied to an empty marketplace; [`export_toml`] does the same in
//! TOML. Subscriptions are exported for the catalog's apps to the catalog's plans, with
//! their acceptance records verbatim and the verification keys those name; a
//! subscription to a plan of an org outside the catalog (one the caller does not
//! manage) is left out silently, as are cancelled ones.

mod error;
mod export;
mod load;
mod plan;
mod spec;

pub use error::{ManifestError, Unresolved};
pub use export::{export, export_toml, to_manifest};
pub use load::{Manifest, load, parse_str};
pub use plan::{Catalog, FieldChange, Ids, Resolver, Step, Target, plan};
pub use spec::{
    ApiSpec, AppSpec, ManifestFile, OpenApi, OrgSpec, PlanApiSpec, PlanSpec, PlanTermsSpec,
    SlugRef, SubscriptionSpec, TermsSpec, VerificationKey,
};
pub use tollgate_core::locate::Format;
