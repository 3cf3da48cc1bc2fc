//! Rendering a catalog as a manifest that, applied to an empty marketplace, rebuilds it,
//! and applied to the same marketplace, changes nothing.

use crate::plan::Catalog;
use crate::spec::{
    ApiSpec, AppSpec, ManifestFile, OpenApi, OrgSpec, PlanApiSpec, PlanSpec, PlanTermsSpec,
    TermsSpec,
};
use std::collections::HashMap;
use tollgate_core::model::{ApiStatus, TermSheet, TermsStatus};

/// The catalog as a manifest, every field spelled out, sorted by org then slug.
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

    ManifestFile {
        orgs,
        apis,
        terms,
        plans,
        apps,
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
