//! Diffing a manifest against the marketplace: the ordered steps that make the catalog
//! match the manifest, each a ready-to-send admin API request once ids are known.

use crate::error::{ManifestError, Unresolved};
use crate::load::verify_acceptance;
use crate::load::{List, Manifest};
use crate::spec::{
    ApiSpec, AppSpec, PlanApiSpec, PlanSpec, PlanTermsSpec, SlugRef, VerificationKey,
};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tollgate_core::apikey::KeyMode;
use tollgate_core::hash::canonical_sha256;
use tollgate_core::model::{
    Acceptance, Api, ApiStatus, App, CreateApi, CreateApp, CreateOrg, CreatePlan, CreateTerms,
    ImportSubscription, Org, OrgKind, Plan, PlanApi, PlanStatus, Subscription, SubscriptionState,
    TermSheet, TermsStatus, UpdateApi, UpdateApp, UpdateOrg, UpdatePlan,
};
use tollgate_core::{ApiId, AppId, OrgId, PlanId, TermsId};

/// The marketplace as it is now, as the admin API lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub orgs: Vec<Org>,
    /// Each API with its imported OpenAPI document, if any.
    pub apis: Vec<(Api, Option<serde_json::Value>)>,
    pub plans: Vec<Plan>,
    pub apps: Vec<App>,
    /// The term sheets of the orgs, drafts and published.
    pub terms: Vec<TermSheet>,
    /// The subscriptions of the orgs' apps (any state), each with its signed acceptance
    /// records, oldest first.
    pub subscriptions: Vec<(Subscription, Vec<Acceptance>)>,
    /// The public keys of every key that signed acceptance records in the marketplace
    /// (`GET /v1/verification-keys`).
    pub verification_keys: Vec<VerificationKey>,
}

/// One field an update step changes, rendered for people (`--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    /// The current value, as compact JSON.
    pub from: String,
    /// The value the manifest asks for, as compact JSON.
    pub to: String,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} → {}", self.field, self.from, self.to)
    }
}

/// An object a step acts on: one that exists now (with the revision it will have when
/// the step runs), or one an earlier step of the same plan creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<I> {
    Existing { id: I, if_match: i64 },
    New,
}

/// Turns slugs into ids: those of the current catalog, and of objects created earlier
/// in the run.
pub trait Resolver {
    fn org(&self, slug: &str) -> Option<OrgId>;
    fn api(&self, org: &str, slug: &str) -> Option<ApiId>;
    fn plan(&self, org: &str, slug: &str) -> Option<PlanId>;
    fn app(&self, org: &str, slug: &str) -> Option<AppId>;
    /// A term sheet version of `org`, by the sheet's own id and its version.
    fn terms(&self, org: &str, sheet_id: &str, version: &str) -> Option<TermsId>;
}

/// The id book an executor keeps: seeded from the catalog, then fed each created
/// object's response with [`Ids::record`].
#[derive(Debug, Clone, Default)]
pub struct Ids {
    orgs: HashMap<String, OrgId>,
    apis: HashMap<(String, String), ApiId>,
    plans: HashMap<(String, String), PlanId>,
    apps: HashMap<(String, String), AppId>,
    /// `(org slug, sheet id, version)`.
    terms: HashMap<(String, String, String), TermsId>,
}

impl Ids {
    /// The ids of everything in `catalog`.
    pub fn from_catalog(catalog: &Catalog) -> Self {
        let mut ids = Ids::default();
        let mut slug_of = HashMap::new();
        for o in &catalog.orgs {
            ids.orgs.insert(o.slug.clone(), o.id);
            slug_of.insert(o.id, o.slug.clone());
        }
        let org = |id: &OrgId| slug_of.get(id).cloned().unwrap_or_else(|| id.to_string());
        for (a, _) in &catalog.apis {
            ids.apis.insert((org(&a.org_id), a.slug.clone()), a.id);
        }
        for p in &catalog.plans {
            ids.plans.insert((org(&p.org_id), p.slug.clone()), p.id);
        }
        for a in &catalog.apps {
            ids.apps.insert((org(&a.org_id), a.slug.clone()), a.id);
        }
        for t in &catalog.terms {
            ids.terms.insert(
                (org(&t.org_id), t.sheet_id.clone(), t.version.clone()),
                t.id,
            );
        }
        ids
    }

    /// Records the id of the object `step` created, read from the admin API's response
    /// body (its `id` field; for term sheets also `sheet_id` and `version`, else those
    /// of the step). Steps that create nothing are ignored.
    pub fn record(&mut self, step: &Step, response: &serde_json::Value) -> Result<(), Unresolved> {
        let id = || {
            response
                .get("id")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<uuid::Uuid>().ok())
                .ok_or_else(|| Unresolved(format!("the id in the response to `{step}`")))
        };
        match step {
            Step::CreateOrg { body } => {
                self.orgs.insert(body.slug.clone(), OrgId(id()?));
            }
            Step::CreateApi { spec } => {
                self.apis
                    .insert((spec.org.clone(), spec.slug.clone()), ApiId(id()?));
            }
            Step::CreatePlan { spec } => {
                self.plans
                    .insert((spec.org.clone(), spec.slug.clone()), PlanId(id()?));
            }
            Step::CreateApp { spec } => {
                self.apps
                    .insert((spec.org.clone(), spec.slug.clone()), AppId(id()?));
            }
            Step::CreateTerms {
                org,
                sheet_id,
                version,
                ..
            } => {
                let text = |key: &str, default: &str| {
                    response
                        .get(key)
                        .and_then(|v| v.as_str())
                        .unwrap_or(default)
                        .to_owned()
                };
                self.terms.insert(
                    (
                        org.clone(),
                        text("sheet_id", sheet_id),
                        text("version", version),
                    ),
                    TermsId(id()?),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

impl Resolver for Ids {
    fn org(&self, slug: &str) -> Option<OrgId> {
        self.orgs.get(slug).copied()
    }
    fn api(&self, org: &str, slug: &str) -> Option<ApiId> {
        self.apis.get(&(org.to_owned(), slug.to_owned())).copied()
    }
    fn plan(&self, org: &str, slug: &str) -> Option<PlanId> {
        self.plans.get(&(org.to_owned(), slug.to_owned())).copied()
    }
    fn app(&self, org: &str, slug: &str) -> Option<AppId> {
        self.apps.get(&(org.to_owned(), slug.to_owned())).copied()
    }
    fn terms(&self, org: &str, sheet_id: &str, version: &str) -> Option<TermsId> {
        self.terms
            .get(&(org.to_owned(), sheet_id.to_owned(), version.to_owned()))
            .copied()
    }
}

/// One admin API request of a plan. Objects are named by slug; ids are looked up
/// through a [`Resolver`] when the step runs, since objects created earlier in the same
/// run have no id at planning time.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `POST /v1/orgs`.
    CreateOrg { body: CreateOrg },
    /// `PATCH /v1/orgs/{id}`.
    UpdateOrg {
        slug: String,
        id: OrgId,
        if_match: i64,
        body: UpdateOrg,
        changes: Vec<FieldChange>,
    },
    /// `POST /v1/apis`: the API as a draft, with its OpenAPI document if it has one.
    CreateApi { spec: ApiSpec },
    /// `PUT /v1/apis/{id}/openapi`.
    PutOpenApi {
        org: String,
        slug: String,
        id: ApiId,
        if_match: i64,
        document: serde_json::Value,
    },
    /// `PATCH /v1/apis/{id}` with fields only.
    UpdateApi {
        org: String,
        slug: String,
        id: ApiId,
        if_match: i64,
        body: UpdateApi,
        changes: Vec<FieldChange>,
    },
    /// `PATCH /v1/apis/{id}` with `status` (and `sunset` when deprecating).
    SetApiStatus {
        org: String,
        slug: String,
        target: Target<ApiId>,
        from: ApiStatus,
        to: ApiStatus,
        sunset: Option<OffsetDateTime>,
    },
    /// `POST /v1/terms`: a term sheet version, stored as a draft. `document` is the
    /// validated sheet as JSON; `sha256` its identity.
    CreateTerms {
        org: String,
        sheet_id: String,
        version: String,
        sha256: String,
        document: serde_json::Value,
    },
    /// `POST /v1/terms/{id}/publish` (no body).
    PublishTerms {
        org: String,
        sheet_id: String,
        version: String,
        target: Target<TermsId>,
    },
    /// `POST /v1/plans`: the plan as a draft.
    CreatePlan { spec: PlanSpec },
    /// `PATCH /v1/plans/{id}` with fields, APIs (by slug in `apis`) and the offered term
    /// sheet (by id and version in `terms`), both resolved when run.
    UpdatePlan {
        org: String,
        slug: String,
        id: PlanId,
        if_match: i64,
        body: UpdatePlan,
        apis: Option<Vec<PlanApiSpec>>,
        terms: Option<PlanTermsSpec>,
        changes: Vec<FieldChange>,
    },
    /// `PATCH /v1/plans/{id}` with `terms_id`, for a plan created earlier in the run.
    SetPlanTerms {
        org: String,
        slug: String,
        terms: PlanTermsSpec,
    },
    /// `PATCH /v1/plans/{id}` with `status`.
    SetPlanStatus {
        org: String,
        slug: String,
        target: Target<PlanId>,
        from: PlanStatus,
        to: PlanStatus,
    },
    /// `POST /v1/apps`.
    CreateApp { spec: AppSpec },
    /// `PATCH /v1/apps/{id}`.
    UpdateApp {
        org: String,
        slug: String,
        id: AppId,
        if_match: i64,
        body: UpdateApp,
        changes: Vec<FieldChange>,
    },
    /// `POST /v1/subscriptions/import`: a subscription with its signed acceptance records
    /// (oldest first, exactly as exported; verified by `plan`) and the public keys of
    /// the keys that signed them.
    ImportSubscription {
        app: SlugRef,
        plan: SlugRef,
        state: SubscriptionState,
        mode: KeyMode,
        acceptances: Vec<Acceptance>,
        verification_keys: Vec<VerificationKey>,
    },
}

fn lower<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn list_changes(changes: &[FieldChange]) -> String {
    changes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateOrg { body } => write!(f, "create org {}", body.slug),
            Step::UpdateOrg { slug, changes, .. } => {
                write!(f, "update org {slug}: {}", list_changes(changes))
            }
            Step::CreateApi { spec } => write!(f, "create api {}/{}", spec.org, spec.slug),
            Step::PutOpenApi { org, slug, .. } => {
                write!(f, "replace openapi document of api {org}/{slug}")
            }
            Step::UpdateApi {
                org, slug, changes, ..
            } => write!(f, "update api {org}/{slug}: {}", list_changes(changes)),
            Step::SetApiStatus {
                org,
                slug,
                from,
                to,
                sunset,
                ..
            } => {
                let sunset = sunset
                    .and_then(|s| s.format(&Rfc3339).ok())
                    .unwrap_or_default();
                match to {
                    _ if from == to => write!(f, "set sunset of api {org}/{slug} to {sunset}"),
                    ApiStatus::Published => write!(f, "publish api {org}/{slug}"),
                    ApiStatus::Deprecated => {
                        write!(f, "deprecate api {org}/{slug} (sunset {sunset})")
                    }
                    ApiStatus::Retired => write!(f, "retire api {org}/{slug}"),
                    ApiStatus::Draft => write!(f, "make api {org}/{slug} a draft"),
                }
            }
            Step::CreateTerms {
                org,
                sheet_id,
                version,
                ..
            } => write!(f, "create terms {org}/{sheet_id} {version}"),
            Step::PublishTerms {
                org,
                sheet_id,
                version,
                ..
            } => write!(f, "publish terms {org}/{sheet_id} {version}"),
            Step::SetPlanTerms { org, slug, terms } => write!(
                f,
                "set terms of plan {org}/{slug} to {} {}",
                terms.id, terms.version
            ),
            Step::CreatePlan { spec } => write!(f, "create plan {}/{}", spec.org, spec.slug),
            Step::UpdatePlan {
                org, slug, changes, ..
            } => write!(f, "update plan {org}/{slug}: {}", list_changes(changes)),
            Step::SetPlanStatus { org, slug, to, .. } => match to {
                PlanStatus::Published => write!(f, "publish plan {org}/{slug}"),
                PlanStatus::Retired => write!(f, "retire plan {org}/{slug}"),
                PlanStatus::Draft => write!(f, "make plan {org}/{slug} a draft"),
            },
            Step::CreateApp { spec } => write!(f, "create app {}/{}", spec.org, spec.slug),
            Step::UpdateApp {
                org, slug, changes, ..
            } => write!(f, "update app {org}/{slug}: {}", list_changes(changes)),
            Step::ImportSubscription {
                app,
                plan,
                state,
                acceptances,
                ..
            } => write!(
                f,
                "import subscription of app {app} to plan {plan} ({}, {} signed acceptance{})",
                lower(state),
                acceptances.len(),
                if acceptances.len() == 1 { "" } else { "s" }
            ),
        }
    }
}

fn org_id(ids: &impl Resolver, org: &str) -> Result<OrgId, Unresolved> {
    ids.org(org).ok_or_else(|| Unresolved(format!("org {org}")))
}

fn api_id(ids: &impl Resolver, org: &str, slug: &str) -> Result<ApiId, Unresolved> {
    ids.api(org, slug)
        .ok_or_else(|| Unresolved(format!("api {org}/{slug}")))
}

fn terms_id(ids: &impl Resolver, org: &str, t: &PlanTermsSpec) -> Result<TermsId, Unresolved> {
    ids.terms(org, &t.id, &t.version)
        .ok_or_else(|| Unresolved(format!("terms {org}/{} {}", t.id, t.version)))
}

fn plan_id(ids: &impl Resolver, org: &str, slug: &str) -> Result<PlanId, Unresolved> {
    ids.plan(org, slug)
        .ok_or_else(|| Unresolved(format!("plan {org}/{slug}")))
}

fn app_id(ids: &impl Resolver, org: &str, slug: &str) -> Result<AppId, Unresolved> {
    ids.app(org, slug)
        .ok_or_else(|| Unresolved(format!("app {org}/{slug}")))
}

fn plan_apis(
    ids: &impl Resolver,
    org: &str,
    apis: &[PlanApiSpec],
) -> Result<Vec<PlanApi>, Unresolved> {
    apis.iter()
        .map(|a| {
            Ok(PlanApi {
                api_id: api_id(ids, org, own_slug(org, &a.api))?,
                operations: a.operations.clone(),
            })
        })
        .collect()
}

/// The slug of a plan's API reference, which may be written `org/slug` for its own org.
pub(crate) fn own_slug<'a>(org: &str, api: &'a str) -> &'a str {
    match api.split_once('/') {
        Some((o, s)) if o == org => s,
        _ => api,
    }
}

/// JSON of a request body without the `null`s of fields left out, which PATCH bodies
/// treat as "unchanged" anyway.
fn json_without_nulls<T: Serialize>(body: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(body).unwrap_or(serde_json::Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    v
}

impl Step {
    /// The HTTP method and path of the request.
    pub fn method_and_path(
        &self,
        ids: &impl Resolver,
    ) -> Result<(&'static str, String), Unresolved> {
        Ok(match self {
            Step::CreateOrg { .. } => ("POST", "/v1/orgs".into()),
            Step::UpdateOrg { id, .. } => ("PATCH", format!("/v1/orgs/{id}")),
            Step::CreateApi { .. } => ("POST", "/v1/apis".into()),
            Step::PutOpenApi { id, .. } => ("PUT", format!("/v1/apis/{id}/openapi")),
            Step::UpdateApi { id, .. } => ("PATCH", format!("/v1/apis/{id}")),
            Step::SetApiStatus {
                org, slug, target, ..
            } => {
                let id = match target {
                    Target::Existing { id, .. } => *id,
                    Target::New => api_id(ids, org, slug)?,
                };
                ("PATCH", format!("/v1/apis/{id}"))
            }
            Step::CreateTerms { .. } => ("POST", "/v1/terms".into()),
            Step::PublishTerms {
                org,
                sheet_id,
                version,
                target,
            } => {
                let id = match target {
                    Target::Existing { id, .. } => *id,
                    Target::New => terms_id(
                        ids,
                        org,
                        &PlanTermsSpec {
                            id: sheet_id.clone(),
                            version: version.clone(),
                        },
                    )?,
                };
                ("POST", format!("/v1/terms/{id}/publish"))
            }
            Step::CreatePlan { .. } => ("POST", "/v1/plans".into()),
            Step::UpdatePlan { id, .. } => ("PATCH", format!("/v1/plans/{id}")),
            Step::SetPlanTerms { org, slug, .. } => {
                ("PATCH", format!("/v1/plans/{}", plan_id(ids, org, slug)?))
            }
            Step::SetPlanStatus {
                org, slug, target, ..
            } => {
                let id = match target {
                    Target::Existing { id, .. } => *id,
                    Target::New => plan_id(ids, org, slug)?,
                };
                ("PATCH", format!("/v1/plans/{id}"))
            }
            Step::CreateApp { .. } => ("POST", "/v1/apps".into()),
            Step::UpdateApp { id, .. } => ("PATCH", format!("/v1/apps/{id}")),
            Step::ImportSubscription { .. } => ("POST", "/v1/subscriptions/import".into()),
        })
    }

    /// The JSON request body, exactly as the admin API takes it.
    pub fn body(&self, ids: &impl Resolver) -> Result<serde_json::Value, Unresolved> {
        Ok(match self {
            Step::CreateOrg { body } => json_without_nulls(body),
            Step::UpdateOrg { body, .. } => json_without_nulls(body),
            Step::CreateApi { spec } => json_without_nulls(&CreateApi {
                org_id: org_id(ids, &spec.org)?,
                slug: spec.slug.clone(),
                name: spec.name.clone(),
                version: spec.version.clone().unwrap_or_else(|| "v1".into()),
                description: spec.description.clone().unwrap_or_default(),
                base_path: spec.base_path.clone(),
                hosts: spec.hosts.clone().unwrap_or_default(),
                upstreams: spec.upstreams.clone(),
                sandbox_upstreams: spec.sandbox_upstreams.clone(),
                mtls: spec.mtls,
                public: spec.public,
                openapi: spec.openapi.as_ref().and_then(|o| o.document()).cloned(),
            }),
            Step::PutOpenApi { document, .. } => document.clone(),
            Step::UpdateApi { body, .. } => json_without_nulls(body),
            Step::SetApiStatus { to, sunset, .. } => json_without_nulls(&UpdateApi {
                status: Some(*to),
                sunset: *sunset,
                ..UpdateApi::default()
            }),
            Step::CreatePlan { spec } => json_without_nulls(&CreatePlan {
                org_id: org_id(ids, &spec.org)?,
                slug: spec.slug.clone(),
                name: spec.name.clone(),
                description: spec.description.clone().unwrap_or_default(),
                visibility: spec.visibility,
                approval_required: spec.approval_required.unwrap_or(false),
                apis: plan_apis(ids, &spec.org, &spec.apis)?,
                max_key_lifetime_days: spec.max_key_lifetime_days,
            }),
            Step::CreateTerms { org, document, .. } => json_without_nulls(&CreateTerms {
                org_id: org_id(ids, org)?,
                document: document.clone(),
            }),
            Step::PublishTerms { .. } => serde_json::Value::Null,
            Step::UpdatePlan {
                org,
                body,
                apis,
                terms,
                ..
            } => {
                let mut body = body.clone();
                if let Some(apis) = apis {
                    body.apis = Some(plan_apis(ids, org, apis)?);
                }
                if let Some(t) = terms {
                    body.terms_id = Some(terms_id(ids, org, t)?);
                }
                json_without_nulls(&body)
            }
            Step::SetPlanTerms { org, terms, .. } => json_without_nulls(&UpdatePlan {
                terms_id: Some(terms_id(ids, org, terms)?),
                ..UpdatePlan::default()
            }),
            Step::SetPlanStatus { to, .. } => json_without_nulls(&UpdatePlan {
                status: Some(*to),
                ..UpdatePlan::default()
            }),
            Step::CreateApp { spec } => json_without_nulls(&CreateApp {
                org_id: org_id(ids, &spec.org)?,
                slug: spec.slug.clone(),
                name: spec.name.clone(),
                description: spec.description.clone().unwrap_or_default(),
            }),
            Step::UpdateApp { body, .. } => json_without_nulls(body),
            Step::ImportSubscription {
                app,
                plan,
                state,
                mode,
                acceptances,
                verification_keys,
            } => json_without_nulls(&ImportSubscription {
                app_id: app_id(ids, &app.org, &app.slug)?,
                plan_id: plan_id(ids, &plan.org, &plan.slug)?,
                state: *state,
                mode: *mode,
                acceptances: acceptances.clone(),
                verification_keys: verification_keys.clone(),
            }),
        })
    }

    /// The revision to send as `If-Match` (the object's revision when this step runs,
    /// counting the steps of this plan before it); `None` for objects created in this
    /// run and for creations. It assumes, as the admin API does, that every change
    /// raises an object's revision by exactly one — and a plan only holds steps that
    /// change something.
    pub fn if_match(&self) -> Option<i64> {
        match self {
            Step::UpdateOrg { if_match, .. }
            | Step::PutOpenApi { if_match, .. }
            | Step::UpdateApi { if_match, .. }
            | Step::UpdatePlan { if_match, .. }
            | Step::UpdateApp { if_match, .. } => Some(*if_match),
            Step::SetApiStatus {
                target: Target::Existing { if_match, .. },
                ..
            }
            | Step::SetPlanStatus {
                target: Target::Existing { if_match, .. },
                ..
            }
            | Step::PublishTerms {
                target: Target::Existing { if_match, .. },
                ..
            } => Some(*if_match),
            _ => None,
        }
    }

    /// The field changes an update step makes (empty for other steps).
    pub fn changes(&self) -> &[FieldChange] {
        match self {
            Step::UpdateOrg { changes, .. }
            | Step::UpdateApi { changes, .. }
            | Step::UpdatePlan { changes, .. }
            | Step::UpdateApp { changes, .. } => changes,
            _ => &[],
        }
    }
}

// ------------------------------------------------------------------------------ planning

fn show<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Collects the changed fields of one object. A field the manifest leaves out is `None`
/// and is not compared.
#[derive(Default)]
struct Diff {
    changes: Vec<FieldChange>,
}

impl Diff {
    fn field<T: Serialize + PartialEq + Clone>(
        &mut self,
        name: &str,
        current: &T,
        desired: Option<&T>,
    ) -> Option<T> {
        let d = desired?;
        if d == current {
            return None;
        }
        self.changes.push(FieldChange {
            field: name.into(),
            from: show(current),
            to: show(d),
        });
        Some(d.clone())
    }
}

/// The steps that make `current` match `desired`, in an order the admin API accepts:
///
/// 1. orgs (create, update);
/// 2. APIs: create as draft (with their OpenAPI document), replace changed documents,
///    update fields;
/// 3. API status changes, except retiring;
/// 4. term sheets: store those whose content (SHA-256) the org does not have yet, and
///    publish drafts the manifest wants published (`publish`, default true);
/// 5. plans: create as draft, update fields, APIs and offered terms (set after step 4,
///    so the sheet is published); then plan status changes, after steps 3 and 4 so a
///    plan is published only once its APIs and terms are;
/// 6. APIs retired (after the plans, which may still need to name them);
/// 7. apps;
/// 8. subscriptions: each one the manifest lists whose app has no open (non-cancelled)
///    subscription to the plan is imported with its signed acceptance records, which
///    are verified first (with the manifest's `verification_keys`, else the
///    marketplace's); an existing subscription is left as it is, state included.
///
/// A subscription to a plan with terms needs acceptance records, and each accepted
/// hash must be a term sheet of the plan's org (in the manifest or the marketplace).
///
/// A sheet whose `(id, version)` the org already has with other content is an error:
/// published versions never change, so a change is a new version.
///
/// Objects in the marketplace that the manifest does not mention are left alone; nothing
/// is ever deleted. Only fields present in the manifest are compared. Problems that need
/// the catalog to be seen (unknown orgs or APIs, impossible lifecycle moves) are
/// reported all at once, with the file, line and field of the manifest entry.
pub fn plan(desired: &Manifest, current: &Catalog) -> Result<Vec<Step>, Vec<ManifestError>> {
    Planner::new(desired, current).run()
}

struct Planner<'a> {
    m: &'a Manifest,
    c: &'a Catalog,
    errors: Vec<ManifestError>,
    org_by_slug: HashMap<&'a str, &'a Org>,
    org_slug: HashMap<OrgId, &'a str>,
    api_by_key: HashMap<(OrgId, &'a str), &'a (Api, Option<serde_json::Value>)>,
    api_by_id: HashMap<ApiId, &'a Api>,
    /// The status each API of the manifest has once API steps (but not retirements)
    /// have run; `(org slug, api slug)`.
    api_status_for_plans: HashMap<(String, String), ApiStatus>,
    /// Whether each term sheet of the manifest is published once term steps have run;
    /// `(org slug, sheet id, version)`.
    terms_published_for_plans: HashMap<(String, String, String), bool>,
    /// The next revision of existing objects, by id, as steps accumulate.
    revisions: HashMap<uuid::Uuid, i64>,
}

impl<'a> Planner<'a> {
    fn new(m: &'a Manifest, c: &'a Catalog) -> Self {
        let org_by_slug = c.orgs.iter().map(|o| (o.slug.as_str(), o)).collect();
        let org_slug = c.orgs.iter().map(|o| (o.id, o.slug.as_str())).collect();
        let api_by_key = c
            .apis
            .iter()
            .map(|e| ((e.0.org_id, e.0.slug.as_str()), e))
            .collect();
        let api_by_id = c.apis.iter().map(|(a, _)| (a.id, a)).collect();
        Planner {
            m,
            c,
            errors: Vec::new(),
            org_by_slug,
            org_slug,
            api_by_key,
            api_by_id,
            api_status_for_plans: HashMap::new(),
            terms_published_for_plans: HashMap::new(),
            revisions: HashMap::new(),
        }
    }

    /// `If-Match` for the next change of an existing object.
    fn next_revision(&mut self, id: uuid::Uuid, current: i64) -> i64 {
        let r = self.revisions.entry(id).or_insert(current);
        let this = *r;
        *r += 1;
        this
    }

    fn err(&mut self, list: List, i: usize, pointer: &str, message: impl Into<String>) {
        self.errors.push(self.m.error(list, i, pointer, message));
    }

    /// The kind the org will have, or `None` if it is nowhere.
    fn org_kind(&self, slug: &str) -> Option<OrgKind> {
        self.m
            .orgs
            .iter()
            .find(|o| o.slug == slug)
            .map(|o| o.kind)
            .or_else(|| self.org_by_slug.get(slug).map(|o| o.kind))
    }

    /// Checks the org of an entity exists and may own it.
    fn check_org(&mut self, list: List, i: usize, org: &str, provider: bool) {
        match self.org_kind(org) {
            None => self.err(
                list,
                i,
                "/org",
                format!("unknown org {org:?}: define it under `orgs:` or create it first"),
            ),
            Some(k) if provider && !k.provides() => self.err(
                list,
                i,
                "/org",
                format!("org {org:?} is a consumer; only provider orgs (kind provider or both) have APIs and plans"),
            ),
            Some(k) if !provider && !k.consumes() => self.err(
                list,
                i,
                "/org",
                format!("org {org:?} is a provider; only consumer orgs (kind consumer or both) have apps"),
            ),
            Some(_) => {}
        }
    }

    fn current_org_id(&self, slug: &str) -> Option<OrgId> {
        self.org_by_slug.get(slug).map(|o| o.id)
    }

    fn run(mut self) -> Result<Vec<Step>, Vec<ManifestError>> {
        let mut steps = Vec::new();
        self.orgs(&mut steps);
        let mut api_status = Vec::new();
        let mut api_retire = Vec::new();
        self.apis(&mut steps, &mut api_status, &mut api_retire);
        steps.extend(api_status);
        self.terms(&mut steps);
        let mut plan_status = Vec::new();
        self.plans(&mut steps, &mut plan_status);
        steps.extend(plan_status);
        steps.extend(api_retire);
        self.apps(&mut steps);
        self.subscriptions(&mut steps);
        if self.errors.is_empty() {
            Ok(steps)
        } else {
            Err(self.errors)
        }
    }

    fn orgs(&mut self, steps: &mut Vec<Step>) {
        let m = self.m;
        for o in &m.orgs {
            let Some(cur) = self.org_by_slug.get(o.slug.as_str()).copied() else {
                steps.push(Step::CreateOrg {
                    body: CreateOrg {
                        slug: o.slug.clone(),
                        name: o.name.clone(),
                        kind: o.kind,
                    },
                });
                continue;
            };
            let mut d = Diff::default();
            let body = UpdateOrg {
                name: d.field("name", &cur.name, Some(&o.name)),
                kind: d.field("kind", &cur.kind, Some(&o.kind)),
            };
            if !d.changes.is_empty() {
                steps.push(Step::UpdateOrg {
                    slug: o.slug.clone(),
                    id: cur.id,
                    if_match: self.next_revision(cur.id.0, cur.revision),
                    body,
                    changes: d.changes,
                });
            }
        }
    }

    fn apis(&mut self, steps: &mut Vec<Step>, status: &mut Vec<Step>, retire: &mut Vec<Step>) {
        let m = self.m;
        for (i, a) in m.apis.iter().enumerate() {
            self.check_org(List::Apis, i, &a.org, true);
            let existing = self
                .current_org_id(&a.org)
                .and_then(|oid| self.api_by_key.get(&(oid, a.slug.as_str())).copied());
            let desired_doc = a.openapi.as_ref().and_then(|o| o.document());
            let (from, target, has_doc, cur_sunset) = match existing {
                None => {
                    steps.push(Step::CreateApi { spec: a.clone() });
                    (ApiStatus::Draft, None, desired_doc.is_some(), None)
                }
                Some((cur, cur_doc)) => {
                    if let Some(doc) = desired_doc {
                        let want = canonical_sha256(doc);
                        let have = match cur_doc {
                            Some(d) => canonical_sha256(d),
                            None => cur.openapi.as_ref().map(|i| i.sha256.clone()),
                        };
                        if want != have {
                            if cur.status == ApiStatus::Retired {
                                self.err(
                                    List::Apis,
                                    i,
                                    "/openapi",
                                    "the API is retired; its OpenAPI document cannot change",
                                );
                            } else {
                                steps.push(Step::PutOpenApi {
                                    org: a.org.clone(),
                                    slug: a.slug.clone(),
                                    id: cur.id,
                                    if_match: self.next_revision(cur.id.0, cur.revision),
                                    document: doc.clone(),
                                });
                            }
                        }
                    }
                    let mut d = Diff::default();
                    let body = UpdateApi {
                        name: d.field("name", &cur.name, Some(&a.name)),
                        version: d.field("version", &cur.version, a.version.as_ref()),
                        description: d.field(
                            "description",
                            &cur.description,
                            a.description.as_ref(),
                        ),
                        base_path: d.field("base_path", &cur.base_path, Some(&a.base_path)),
                        hosts: d.field("hosts", &cur.hosts, a.hosts.as_ref()),
                        upstreams: d.field("upstreams", &cur.upstreams, Some(&a.upstreams)),
                        sandbox_upstreams: d.field(
                            "sandbox_upstreams",
                            &cur.sandbox_upstreams,
                            Some(&a.sandbox_upstreams),
                        ),
                        mtls: d.field("mtls", &cur.mtls, Some(&a.mtls)),
                        public: d.field("public", &cur.public, Some(&a.public)),
                        status: None,
                        sunset: None,
                    };
                    if !d.changes.is_empty() {
                        steps.push(Step::UpdateApi {
                            org: a.org.clone(),
                            slug: a.slug.clone(),
                            id: cur.id,
                            if_match: self.next_revision(cur.id.0, cur.revision),
                            body,
                            changes: d.changes,
                        });
                    }
                    let has_doc = desired_doc.is_some() || cur.openapi.is_some();
                    (cur.status, Some(cur), has_doc, cur.sunset)
                }
            };

            let to = a.status.unwrap_or(from);
            let key = (a.org.clone(), a.slug.clone());
            let path = match api_path(from, to) {
                Some(p) => p,
                None => {
                    self.err(
                        List::Apis,
                        i,
                        "/status",
                        format!(
                            "cannot go from {} to {}: the lifecycle is draft → published ⇄ deprecated → retired, and retired is final",
                            lower(&from),
                            lower(&to)
                        ),
                    );
                    self.api_status_for_plans.insert(key, from);
                    continue;
                }
            };
            let mut path = path;
            // Same status but another sunset date: re-send `deprecated` with the new date.
            if path.is_empty() && to == ApiStatus::Deprecated && a.sunset != cur_sunset {
                path.push(ApiStatus::Deprecated);
            }
            if path.contains(&ApiStatus::Published) && !has_doc {
                self.err(
                    List::Apis,
                    i,
                    "/status",
                    "publishing needs an OpenAPI document: add `openapi:`",
                );
            }
            let mut before = from;
            let mut for_plans = from;
            for next in path {
                let target = match target {
                    Some(cur) => Target::Existing {
                        id: cur.id,
                        if_match: self.next_revision(cur.id.0, cur.revision),
                    },
                    None => Target::New,
                };
                let step = Step::SetApiStatus {
                    org: a.org.clone(),
                    slug: a.slug.clone(),
                    target,
                    from: before,
                    to: next,
                    sunset: if next == ApiStatus::Deprecated {
                        a.sunset
                    } else {
                        None
                    },
                };
                if next == ApiStatus::Retired {
                    retire.push(step);
                } else {
                    for_plans = next;
                    status.push(step);
                }
                before = next;
            }
            self.api_status_for_plans.insert(key, for_plans);
        }
    }

    /// The status an API has when plans are published: from the manifest, else the
    /// catalog; `None` if the API is nowhere.
    fn api_status_at_plans(&self, org: &str, slug: &str) -> Option<ApiStatus> {
        if let Some(s) = self
            .api_status_for_plans
            .get(&(org.to_owned(), slug.to_owned()))
        {
            return Some(*s);
        }
        let oid = self.current_org_id(org)?;
        self.api_by_key.get(&(oid, slug)).map(|(a, _)| a.status)
    }

    fn terms(&mut self, steps: &mut Vec<Step>) {
        let (m, c) = (self.m, self.c);
        for (i, t) in m.terms.iter().enumerate() {
            self.check_org(List::Terms, i, &t.org, true);
            let sheet = match m.sheet(i) {
                Ok(s) => s,
                Err(e) => {
                    self.errors.extend(e);
                    continue;
                }
            };
            let publish = t.publish.unwrap_or(true);
            let oid = self.current_org_id(&t.org);
            let of_org = |x: &&TermSheet| Some(x.org_id) == oid;
            let key = (t.org.clone(), sheet.sheet_id.clone(), sheet.version.clone());
            let name = format!("{} {}", sheet.sheet_id, sheet.version);
            if let Some(cur) = c
                .terms
                .iter()
                .filter(of_org)
                .find(|x| x.sha256 == sheet.sha256)
            {
                match (cur.status, publish) {
                    (TermsStatus::Draft, true) => steps.push(Step::PublishTerms {
                        org: t.org.clone(),
                        sheet_id: sheet.sheet_id,
                        version: sheet.version,
                        target: Target::Existing {
                            id: cur.id,
                            if_match: self.next_revision(cur.id.0, cur.revision),
                        },
                    }),
                    (TermsStatus::Published, false) => self.err(
                        List::Terms,
                        i,
                        "/publish",
                        format!(
                            "term sheet {name} is published, and publishing cannot be undone: remove `publish: false`"
                        ),
                    ),
                    _ => {}
                }
                self.terms_published_for_plans
                    .insert(key, publish || cur.status == TermsStatus::Published);
                continue;
            }
            if let Some(other) = c
                .terms
                .iter()
                .filter(of_org)
                .find(|x| x.sheet_id == sheet.sheet_id && x.version == sheet.version)
            {
                let (pointer, at) = match &sheet.from_file {
                    Some(at) => ("/file", format!("{at}: version: ")),
                    None => ("/document/version", String::new()),
                };
                self.err(
                    List::Terms,
                    i,
                    pointer,
                    format!(
                        "{at}term sheet {name} of org {:?} is already in the marketplace with other content (sha256 {}, this one {}); a change is a new version: raise `version`",
                        t.org, other.sha256, sheet.sha256
                    ),
                );
                continue;
            }
            steps.push(Step::CreateTerms {
                org: t.org.clone(),
                sheet_id: sheet.sheet_id.clone(),
                version: sheet.version.clone(),
                sha256: sheet.sha256,
                document: sheet.document,
            });
            if publish {
                steps.push(Step::PublishTerms {
                    org: t.org.clone(),
                    sheet_id: sheet.sheet_id,
                    version: sheet.version,
                    target: Target::New,
                });
            }
            self.terms_published_for_plans.insert(key, publish);
        }
    }

    /// Whether a plan's term sheet is published when plans are updated: from the
    /// manifest, else the catalog; `None` if the sheet is nowhere.
    fn terms_published_at_plans(&self, org: &str, t: &PlanTermsSpec) -> Option<bool> {
        let key = (org.to_owned(), t.id.clone(), t.version.clone());
        if let Some(p) = self.terms_published_for_plans.get(&key) {
            return Some(*p);
        }
        let oid = self.current_org_id(org)?;
        self.c
            .terms
            .iter()
            .find(|x| x.org_id == oid && x.sheet_id == t.id && x.version == t.version)
            .map(|x| x.status == TermsStatus::Published)
    }

    fn plans(&mut self, steps: &mut Vec<Step>, status: &mut Vec<Step>) {
        let (m, c) = (self.m, self.c);
        for (i, p) in m.plans.iter().enumerate() {
            self.check_org(List::Plans, i, &p.org, true);
            let mut refs_ok = true;
            for (j, pa) in p.apis.iter().enumerate() {
                let slug = own_slug(&p.org, &pa.api);
                if slug.contains('/') {
                    continue; // another org's API: reported when the manifest was read
                }
                if self.api_status_at_plans(&p.org, slug).is_none() {
                    refs_ok = false;
                    self.err(
                        List::Plans,
                        i,
                        &format!("/apis/{j}/api"),
                        format!(
                            "no API {slug:?} in org {:?}, neither in the manifest nor in the marketplace",
                            p.org
                        ),
                    );
                }
            }
            // The version normalized as the admin API stores it.
            let desired_terms = p.terms.as_ref().map(|t| PlanTermsSpec {
                id: t.id.clone(),
                version: semver::Version::parse(&t.version)
                    .map_or_else(|_| t.version.clone(), |v| v.to_string()),
            });
            if let Some(dt) = &desired_terms {
                match self.terms_published_at_plans(&p.org, dt) {
                    None => self.err(
                        List::Plans,
                        i,
                        "/terms",
                        format!(
                            "no term sheet {} {} in org {:?}, neither in the manifest (under `terms:`) nor in the marketplace",
                            dt.id, dt.version, p.org
                        ),
                    ),
                    Some(false) => self.err(
                        List::Plans,
                        i,
                        "/terms",
                        format!(
                            "term sheet {} {} stays a draft, and a plan can offer only a published sheet: publish it (leave out `publish: false`)",
                            dt.id, dt.version
                        ),
                    ),
                    Some(true) => {}
                }
            }
            let desired_apis: Vec<PlanApiSpec> = p
                .apis
                .iter()
                .map(|pa| PlanApiSpec {
                    api: own_slug(&p.org, &pa.api).to_owned(),
                    operations: pa.operations.clone(),
                })
                .collect();
            let existing = self
                .current_org_id(&p.org)
                .and_then(|oid| c.plans.iter().find(|c| c.org_id == oid && c.slug == p.slug));
            let (from, target) = match existing {
                None => {
                    let mut spec = p.clone();
                    spec.apis = desired_apis.clone();
                    spec.terms = None;
                    steps.push(Step::CreatePlan { spec });
                    if let Some(terms) = desired_terms {
                        steps.push(Step::SetPlanTerms {
                            org: p.org.clone(),
                            slug: p.slug.clone(),
                            terms,
                        });
                    }
                    (PlanStatus::Draft, Target::New)
                }
                Some(cur) => {
                    let cur_apis: Vec<PlanApiSpec> = cur
                        .apis
                        .iter()
                        .map(|pa| PlanApiSpec {
                            api: self.api_slug_of(pa.api_id, cur.org_id),
                            operations: pa.operations.clone(),
                        })
                        .collect();
                    let mut d = Diff::default();
                    let body = UpdatePlan {
                        name: d.field("name", &cur.name, Some(&p.name)),
                        description: d.field(
                            "description",
                            &cur.description,
                            p.description.as_ref(),
                        ),
                        visibility: d.field("visibility", &cur.visibility, Some(&p.visibility)),
                        approval_required: d.field(
                            "approval_required",
                            &cur.approval_required,
                            p.approval_required.as_ref(),
                        ),
                        status: None,
                        apis: None,
                        // Resolved when the step runs: the sheet may be new.
                        terms_id: None,
                        max_key_lifetime_days: d
                            .field(
                                "max_key_lifetime_days",
                                &cur.max_key_lifetime_days,
                                p.max_key_lifetime_days.map(Some).as_ref(),
                            )
                            .flatten(),
                    };
                    let apis = d.field("apis", &cur_apis, Some(&desired_apis));
                    let cur_terms = cur.terms_id.map(|id| {
                        c.terms.iter().find(|t| t.id == id).map_or_else(
                            || PlanTermsSpec {
                                id: id.to_string(),
                                version: String::new(),
                            },
                            |t| PlanTermsSpec {
                                id: t.sheet_id.clone(),
                                version: t.version.clone(),
                            },
                        )
                    });
                    let terms = match desired_terms {
                        Some(dt) if cur_terms.as_ref() != Some(&dt) => {
                            d.changes.push(FieldChange {
                                field: "terms".into(),
                                from: show(&cur_terms),
                                to: show(&dt),
                            });
                            Some(dt)
                        }
                        _ => None,
                    };
                    if !d.changes.is_empty() {
                        if cur.status == PlanStatus::Retired {
                            self.err(
                                List::Plans,
                                i,
                                &format!("/{}", d.changes[0].field),
                                "the plan is retired; a retired plan cannot change",
                            );
                        } else {
                            steps.push(Step::UpdatePlan {
                                org: p.org.clone(),
                                slug: p.slug.clone(),
                                id: cur.id,
                                if_match: self.next_revision(cur.id.0, cur.revision),
                                body,
                                apis,
                                terms,
                                changes: d.changes,
                            });
                        }
                    }
                    (
                        cur.status,
                        Target::Existing {
                            id: cur.id,
                            if_match: cur.revision,
                        },
                    )
                }
            };
            let to = p.status.unwrap_or(from);
            if to == from {
                continue;
            }
            if !from.can_become(to) {
                self.err(
                    List::Plans,
                    i,
                    "/status",
                    format!(
                        "cannot go from {} to {}: the lifecycle is draft → published → retired, and retired is final",
                        lower(&from),
                        lower(&to)
                    ),
                );
                continue;
            }
            if to == PlanStatus::Published && refs_ok {
                for pa in &desired_apis {
                    let st = self.api_status_at_plans(&p.org, &pa.api);
                    if let Some(st) = st.filter(|s| !s.in_catalog()) {
                        self.err(
                            List::Plans,
                            i,
                            "/status",
                            format!(
                                "cannot publish: API {:?} is {}; publish the API too",
                                pa.api,
                                lower(&st)
                            ),
                        );
                    }
                }
            }
            let target = match target {
                Target::Existing { id, if_match } => Target::Existing {
                    id,
                    if_match: self.next_revision(id.0, if_match),
                },
                Target::New => Target::New,
            };
            status.push(Step::SetPlanStatus {
                org: p.org.clone(),
                slug: p.slug.clone(),
                target,
                from,
                to,
            });
        }
    }

    /// The manifest name of a plan's API: its slug, or `org/slug` for another org's.
    fn api_slug_of(&self, id: ApiId, plan_org: OrgId) -> String {
        match self.api_by_id.get(&id) {
            Some(a) if a.org_id == plan_org => a.slug.clone(),
            Some(a) => format!(
                "{}/{}",
                self.org_slug.get(&a.org_id).copied().unwrap_or("?"),
                a.slug
            ),
            None => id.to_string(),
        }
    }

    fn apps(&mut self, steps: &mut Vec<Step>) {
        let (m, c) = (self.m, self.c);
        for (i, a) in m.apps.iter().enumerate() {
            self.check_org(List::Apps, i, &a.org, false);
            let existing = self
                .current_org_id(&a.org)
                .and_then(|oid| c.apps.iter().find(|c| c.org_id == oid && c.slug == a.slug));
            let Some(cur) = existing else {
                steps.push(Step::CreateApp { spec: a.clone() });
                continue;
            };
            let mut d = Diff::default();
            let body = UpdateApp {
                name: d.field("name", &cur.name, Some(&a.name)),
                description: d.field("description", &cur.description, a.description.as_ref()),
            };
            if !d.changes.is_empty() {
                steps.push(Step::UpdateApp {
                    org: a.org.clone(),
                    slug: a.slug.clone(),
                    id: cur.id,
                    if_match: self.next_revision(cur.id.0, cur.revision),
                    body,
                    changes: d.changes,
                });
            }
        }
    }

    /// Whether the manifest or the catalog has app `r`, in an org that exists.
    fn app_exists(&self, r: &SlugRef) -> bool {
        self.m
            .apps
            .iter()
            .any(|a| a.org == r.org && a.slug == r.slug)
            || self.current_org_id(&r.org).is_some_and(|oid| {
                self.c
                    .apps
                    .iter()
                    .any(|a| a.org_id == oid && a.slug == r.slug)
            })
    }

    /// The plan `r` in the catalog, if it is there.
    fn current_plan(&self, r: &SlugRef) -> Option<&'a Plan> {
        let c = self.c;
        let oid = self.current_org_id(&r.org)?;
        c.plans.iter().find(|p| p.org_id == oid && p.slug == r.slug)
    }

    /// Whether plan `r` offers terms once plans are applied: the manifest's `terms`,
    /// else the catalog's; `None` when the plan is nowhere.
    fn plan_has_terms(&self, r: &SlugRef) -> Option<bool> {
        let in_manifest = self
            .m
            .plans
            .iter()
            .find(|p| p.org == r.org && p.slug == r.slug);
        let current = self.current_plan(r);
        match (in_manifest, current) {
            (None, None) => None,
            (Some(p), _) if p.terms.is_some() => Some(true),
            (_, Some(cur)) => Some(cur.terms_id.is_some()),
            (Some(_), None) => Some(false),
        }
    }

    /// Whether org `org` has a term sheet with hash `sha256`, in the manifest or the
    /// catalog.
    fn org_has_sheet(&self, org: &str, sha256: &str) -> bool {
        let m = self.m;
        let in_manifest = m.terms.iter().enumerate().any(|(k, t)| {
            t.org == org
                && m.sheet(k)
                    .is_ok_and(|s| s.sha256.eq_ignore_ascii_case(sha256))
        });
        in_manifest
            || self.current_org_id(org).is_some_and(|oid| {
                self.c
                    .terms
                    .iter()
                    .any(|t| t.org_id == oid && t.sha256.eq_ignore_ascii_case(sha256))
            })
    }

    fn subscriptions(&mut self, steps: &mut Vec<Step>) {
        let (m, c) = (self.m, self.c);
        // Keys: the manifest's, else the marketplace's; the two must agree.
        let mut keys: HashMap<&str, &VerificationKey> = HashMap::new();
        for k in &c.verification_keys {
            keys.insert(&k.key_id, k);
        }
        for (k, key) in m.verification_keys.iter().enumerate() {
            if let Some(cur) = keys.get(key.key_id.as_str())
                && cur.public_key != key.public_key
            {
                self.err(
                    List::VerificationKeys,
                    k,
                    "/public_key",
                    format!(
                        "the marketplace knows key {} with another public key ({}); one key id, one key",
                        key.key_id, cur.public_key
                    ),
                );
            }
            // The manifest's key checks its records (a clash is reported once, above).
            keys.insert(&key.key_id, key);
        }
        for (i, s) in m.subscriptions.iter().enumerate() {
            let mut ok = true;
            match self.org_kind(&s.app.org) {
                None => {
                    ok = false;
                    self.err(
                        List::Subscriptions,
                        i,
                        "/app/org",
                        format!(
                            "unknown org {:?}: define it under `orgs:` or create it first",
                            s.app.org
                        ),
                    );
                }
                Some(_) if !self.app_exists(&s.app) => {
                    ok = false;
                    self.err(
                        List::Subscriptions,
                        i,
                        "/app/slug",
                        format!(
                            "no app {:?} in org {:?}, neither in the manifest (under `apps:`) nor in the marketplace",
                            s.app.slug, s.app.org
                        ),
                    );
                }
                Some(_) => {}
            }
            let has_terms = match self.org_kind(&s.plan.org) {
                None => {
                    ok = false;
                    self.err(
                        List::Subscriptions,
                        i,
                        "/plan/org",
                        format!(
                            "unknown org {:?}: define it under `orgs:` or create it first",
                            s.plan.org
                        ),
                    );
                    None
                }
                Some(_) => {
                    let t = self.plan_has_terms(&s.plan);
                    if t.is_none() {
                        ok = false;
                        self.err(
                            List::Subscriptions,
                            i,
                            "/plan/slug",
                            format!(
                                "no plan {:?} in org {:?}, neither in the manifest (under `plans:`) nor in the marketplace",
                                s.plan.slug, s.plan.org
                            ),
                        );
                    }
                    t
                }
            };
            if has_terms == Some(true) && s.acceptances.is_empty() {
                ok = false;
                self.err(
                    List::Subscriptions,
                    i,
                    "",
                    format!(
                        "plan {} offers terms, so its subscriptions need their signed acceptance records under `acceptances:` (as `tollgate export` writes them)",
                        s.plan
                    ),
                );
            }
            let mut used: Vec<VerificationKey> = Vec::new();
            for (j, a) in s.acceptances.iter().enumerate() {
                if self.org_kind(&s.plan.org).is_some()
                    && !self.org_has_sheet(&s.plan.org, &a.record.terms_sha256)
                {
                    ok = false;
                    self.err(
                        List::Subscriptions,
                        i,
                        &format!("/acceptances/{j}/record/terms_sha256"),
                        format!(
                            "org {:?} has no term sheet with this hash ({} {}), neither in the manifest (under `terms:`) nor in the marketplace: add the sheet that was accepted",
                            s.plan.org, a.record.sheet_id, a.record.sheet_version
                        ),
                    );
                }
                let Some(key) = keys.get(a.key_id.as_str()).copied() else {
                    ok = false;
                    self.err(
                        List::Subscriptions,
                        i,
                        &format!("/acceptances/{j}/key_id"),
                        format!(
                            "no public key for key {}, neither in the manifest (under `verification_keys:`) nor in the marketplace",
                            a.key_id
                        ),
                    );
                    continue;
                };
                if let Err(message) = verify_acceptance(a, &key.public_key) {
                    ok = false;
                    self.err(
                        List::Subscriptions,
                        i,
                        &format!("/acceptances/{j}/signature"),
                        message,
                    );
                    continue;
                }
                if !used.contains(key) {
                    used.push(key.clone());
                }
            }
            if !ok {
                continue;
            }
            // An open subscription of the app to the plan: left as it is.
            let app_id = self.current_org_id(&s.app.org).and_then(|oid| {
                c.apps
                    .iter()
                    .find(|a| a.org_id == oid && a.slug == s.app.slug)
                    .map(|a| a.id)
            });
            let plan_id = self.current_plan(&s.plan).map(|p| p.id);
            let open = app_id.zip(plan_id).is_some_and(|(app, plan)| {
                c.subscriptions.iter().any(|(x, _)| {
                    x.app_id == app
                        && x.plan_id == plan
                        && x.mode == s.mode
                        && x.state != SubscriptionState::Cancelled
                })
            });
            if open {
                continue;
            }
            used.sort_by(|a, b| a.key_id.cmp(&b.key_id));
            steps.push(Step::ImportSubscription {
                app: s.app.clone(),
                plan: s.plan.clone(),
                state: s.state,
                mode: s.mode,
                acceptances: s.acceptances.clone(),
                verification_keys: used,
            });
        }
    }
}

/// The statuses an API passes through from `from` to `to` (excluding `from`), going
/// through `published` when there is no direct move (draft → deprecated); `None` when
/// the lifecycle forbids it.
fn api_path(from: ApiStatus, to: ApiStatus) -> Option<Vec<ApiStatus>> {
    if from == to {
        Some(Vec::new())
    } else if from.can_become(to) {
        Some(vec![to])
    } else if from.can_become(ApiStatus::Published) && ApiStatus::Published.can_become(to) {
        Some(vec![ApiStatus::Published, to])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApiStatus::*;

    #[test]
    fn api_paths() {
        assert_eq!(api_path(Draft, Draft), Some(vec![]));
        assert_eq!(api_path(Draft, Published), Some(vec![Published]));
        assert_eq!(
            api_path(Draft, Deprecated),
            Some(vec![Published, Deprecated])
        );
        assert_eq!(api_path(Draft, Retired), Some(vec![Retired]));
        assert_eq!(api_path(Deprecated, Published), Some(vec![Published]));
        assert_eq!(api_path(Retired, Published), None);
        assert_eq!(api_path(Published, Draft), None);
    }
}
