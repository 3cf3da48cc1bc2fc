//! Rendering a catalog as a manifest that, applied to an empty marketplace, rebuilds it,
//! and applied to the same marketplace, changes nothing.

use crate::plan::Catalog;
use crate::spec::{
    ApiSpec, AppSpec, ManifestFile, OpenApi, OrgSpec, PlanApiSpec, PlanSpec, PlanTermsSpec,
    SlugRef, SubscriptionSpec, TermsSpec, VerificationKey,
};
use std::collections::HashMap;
use tollgate_core::model::{Acceptance, ApiStatus, SubscriptionState, TermSheet, TermsStatus};

/// The catalog as a manifest, every field spelled out, sorted by org then slug.
///
/// Subscriptions are those of the catalog's apps to the catalog's plans (a subscription
/// to a plan of an org the catalog does not hold is left out, as are cancelled ones),
/// sorted by app then plan, each with its signed acceptance records verbatim (oldest
/// first), followed by the `verification_keys` those records name.
pub fn to_manifest(catalog: &Catalog) -> ManifestFile {
    let org_slug: HashMap<_, _> = catalog
        .orgs
        .iter()
        .map(|o| (o.id, o.slug.clone()))
        .collect();
    let slug = |id| org_slug.get(&id).cloned().unwrap_or_else(|| id.to_string());
    let api_name: HashMap<_, _> = catalog
        .apis
        .iter()
        .map(|(a, _)| (a.id, (a.org_id, a.slug.clone())))
        .collect();

    let mut orgs: Vec<OrgSpec> = catalog
        .orgs
        .iter()
        .map(|o| OrgSpec {
            slug: o.slug.clone(),
            name: o.name.clone(),
            kind: o.kind,
        })
        .collect();
    orgs.sort_by(|a, b| a.slug.cmp(&b.slug));

    let mut apis: Vec<ApiSpec> = catalog
        .apis
        .iter()
        .map(|(a, doc)| ApiSpec {
            org: slug(a.org_id),
            slug: a.slug.clone(),
            name: a.name.clone(),
            version: Some(a.version.clone()),
            description: Some(a.description.clone()),
            base_path: a.base_path.clone(),
            hosts: Some(a.hosts.clone()),
            upstreams: a.upstreams.clone(),
            sandbox_upstreams: a.sandbox_upstreams.clone(),
            mtls: a.mtls,
            public: a.public,
            status: Some(a.status),
            // A manifest may name a sunset only with `deprecated`.
            sunset: a.sunset.filter(|_| a.status == ApiStatus::Deprecated),
            openapi: doc.clone().map(OpenApi::Inline),
        })
        .collect();
    apis.sort_by(|a, b| (&a.org, &a.slug).cmp(&(&b.org, &b.slug)));

    // Sheets inline, sorted by org, sheet id and version (semantic order), drafts as
    // `publish: false`.
    let version_key = |t: &TermSheet| semver::Version::parse(&t.version).ok();
    let mut sheets: Vec<&TermSheet> = catalog.terms.iter().collect();
    sheets.sort_by(|a, b| {
        (slug(a.org_id), &a.sheet_id, version_key(a), &a.version).cmp(&(
            slug(b.org_id),
            &b.sheet_id,
            version_key(b),
            &b.version,
        ))
    });
    let terms: Vec<TermsSpec> = sheets
        .into_iter()
        .map(|t| TermsSpec {
            org: slug(t.org_id),
            file: None,
            document: Some(t.document.clone()),
            publish: Some(t.status == TermsStatus::Published),
        })
        .collect();
    let terms_ref: HashMap<_, _> = catalog
        .terms
        .iter()
        .map(|t| {
            (
                t.id,
                PlanTermsSpec {
                    id: t.sheet_id.clone(),
                    version: t.version.clone(),
                },
            )
        })
        .collect();

    let mut plans: Vec<PlanSpec> = catalog
        .plans
        .iter()
        .map(|p| PlanSpec {
            org: slug(p.org_id),
            slug: p.slug.clone(),
            name: p.name.clone(),
            description: Some(p.description.clone()),
            visibility: p.visibility,
            approval_required: Some(p.approval_required),
            status: Some(p.status),
            apis: p
                .apis
                .iter()
                .map(|pa| PlanApiSpec {
                    api: match api_name.get(&pa.api_id) {
                        Some((o, s)) if *o == p.org_id => s.clone(),
                        Some((o, s)) => format!("{}/{s}", slug(*o)),
                        None => pa.api_id.to_string(),
                    },
                    operations: pa.operations.clone(),
                })
                .collect(),
            terms: p.terms_id.and_then(|t| terms_ref.get(&t).cloned()),
            max_key_lifetime_days: p.max_key_lifetime_days,
        })
        .collect();
    plans.sort_by(|a, b| (&a.org, &a.slug).cmp(&(&b.org, &b.slug)));

    let mut apps: Vec<AppSpec> = catalog
        .apps
        .iter()
        .map(|a| AppSpec {
            org: slug(a.org_id),
            slug: a.slug.clone(),
            name: a.name.clone(),
            description: Some(a.description.clone()),
        })
        .collect();
    apps.sort_by(|a, b| (&a.org, &a.slug).cmp(&(&b.org, &b.slug)));

    let app_ref: HashMap<_, _> = catalog
        .apps
        .iter()
        .map(|a| {
            (
                a.id,
                SlugRef {
                    org: slug(a.org_id),
                    slug: a.slug.clone(),
                },
            )
        })
        .collect();
    let plan_ref: HashMap<_, _> = catalog
        .plans
        .iter()
        .map(|p| {
            (
                p.id,
                SlugRef {
                    org: slug(p.org_id),
                    slug: p.slug.clone(),
                },
            )
        })
        .collect();
    let mut subscriptions: Vec<SubscriptionSpec> = catalog
        .subscriptions
        .iter()
        .filter(|(s, _)| s.state != SubscriptionState::Cancelled)
        .filter_map(|(s, acceptances)| {
            let mut acceptances: Vec<Acceptance> = acceptances.clone();
            // Oldest first (RFC 3339 UTC sorts as text); ties keep the listed order.
            acceptances.sort_by(|a, b| a.record.accepted_at.cmp(&b.record.accepted_at));
            Some(SubscriptionSpec {
                app: app_ref.get(&s.app_id)?.clone(),
                plan: plan_ref.get(&s.plan_id)?.clone(),
                state: s.state,
                mode: s.mode,
                acceptances,
            })
        })
        .collect();
    subscriptions.sort_by(|a, b| {
        (&a.app, &a.plan, a.mode.as_str()).cmp(&(&b.app, &b.plan, b.mode.as_str()))
    });
    let mut verification_keys: Vec<VerificationKey> = catalog
        .verification_keys
        .iter()
        .filter(|k| {
            subscriptions
                .iter()
                .flat_map(|s| &s.acceptances)
                .any(|a| a.key_id == k.key_id)
        })
        .cloned()
        .collect();
    verification_keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    verification_keys.dedup();

    ManifestFile {
        orgs,
        apis,
        terms,
        plans,
        apps,
        subscriptions,
        verification_keys,
    }
}

/// The catalog as a YAML manifest (OpenAPI documents and term sheets inline).
pub fn export(catalog: &Catalog) -> String {
    // Every field is a string, number, bool, list or mapping: YAML can hold them all.
    yaml_serde::to_string(&to_manifest(catalog)).unwrap_or_default()
}

/// The catalog as a TOML manifest. Fails only when an OpenAPI document holds a `null`,
/// which TOML cannot express; use [`export`] then.
pub fn export_toml(catalog: &Catalog) -> Result<String, toml::ser::Error> {
    toml::to_string(&to_manifest(catalog))
}
