//! A stand-in for the admin API: applies steps to an in-memory catalog the way the
//! server does, so tests can apply a plan and plan again. Bodies go through the core
//! request types (all `deny_unknown_fields`), so a wrong body shape fails here.

use base64::Engine as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tollgate_core::hash::canonical_sha256;
use tollgate_core::model::*;
use tollgate_core::{ApiId, AppId, OrgId, PlanId, SubscriptionId, TermsId};
use tollgate_manifest::{Catalog, Ids, Step};

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// The import endpoint's contract: every signature verifies (with the keys sent or
/// those the marketplace knows), every accepted hash is a sheet of the plan's org, no
/// open subscription of the app to the plan; records are stored as they are.
fn import_subscription(cat: &mut Catalog, r: ImportSubscription) -> Subscription {
    assert_ne!(r.state, SubscriptionState::Cancelled, "422 /state");
    let app = cat.apps.iter().find(|a| a.id == r.app_id).expect("404 app");
    let plan = cat
        .plans
        .iter()
        .find(|p| p.id == r.plan_id)
        .expect("404 plan");
    for (i, a) in r.acceptances.iter().enumerate() {
        let key = r
            .verification_keys
            .iter()
            .chain(&cat.verification_keys)
            .find(|k| k.key_id == a.key_id)
            .unwrap_or_else(|| panic!("422 /acceptances/{i}/key_id: unknown key"));
        tollgate_keyring::verify_ed25519(
            &b64(&key.public_key),
            &a.record.signing_bytes(),
            &b64(&a.signature),
        )
        .unwrap_or_else(|_| panic!("422 /acceptances/{i}/signature"));
        assert!(
            cat.terms
                .iter()
                .any(|t| t.org_id == plan.org_id && t.sha256 == a.record.terms_sha256),
            "422 /acceptances/{i}: not a sheet of the plan's org"
        );
    }
    if plan.terms_id.is_some() {
        assert!(
            !r.acceptances.is_empty(),
            "422 /acceptances: the plan has terms"
        );
    }
    assert!(
        !cat.subscriptions.iter().any(|(s, _)| s.app_id == r.app_id
            && s.plan_id == r.plan_id
            && s.state != SubscriptionState::Cancelled),
        "409: an open subscription exists"
    );
    let sub = Subscription {
        id: SubscriptionId::new(),
        app_id: app.id,
        consumer_org_id: app.org_id,
        plan_id: plan.id,
        provider_org_id: plan.org_id,
        state: r.state,
        mode: r.mode,
        terms_sha256: r.acceptances.last().map(|a| a.record.terms_sha256.clone()),
        history: Vec::new(),
        created_at: T0,
        updated_at: T0,
        revision: 1,
    };
    for k in r.verification_keys {
        if !cat.verification_keys.iter().any(|x| x.key_id == k.key_id) {
            cat.verification_keys.push(k);
        }
    }
    cat.subscriptions.push((sub.clone(), r.acceptances));
    sub
}

const T0: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

fn parse<T: serde::de::DeserializeOwned>(body: Value) -> T {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("bad body {body}: {e}"))
}

fn id_in(path: &str) -> uuid::Uuid {
    path.split('/').nth(3).unwrap().parse().unwrap()
}

fn info(doc: &Value) -> OpenApiInfo {
    OpenApiInfo {
        openapi: doc["openapi"].as_str().unwrap_or_default().into(),
        title: doc["info"]["title"].as_str().unwrap_or_default().into(),
        version: doc["info"]["version"].as_str().unwrap_or_default().into(),
        sha256: canonical_sha256(doc).unwrap(),
        operation_count: 0,
    }
}

fn check_rev(step: &Step, revision: &mut i64) {
    if let Some(m) = step.if_match() {
        assert_eq!(m, *revision, "If-Match of `{step}`");
    }
    *revision += 1;
}

/// Runs `steps` against `cat` like the `tollgate apply` executor would.
pub fn apply(cat: &mut Catalog, steps: &[Step]) {
    let mut ids = Ids::from_catalog(cat);
    for step in steps {
        let (method, path) = step.method_and_path(&ids).unwrap();
        let body = step.body(&ids).unwrap();
        // The response of a creation: the new object's id, or (terms) the whole object.
        let mut response = None;
        let created = match (method, path.as_str()) {
            ("POST", "/v1/orgs") => {
                let r: CreateOrg = parse(body);
                let id = OrgId::new();
                cat.orgs.push(Org {
                    id,
                    slug: r.slug,
                    name: r.name,
                    kind: r.kind,
                    created_at: T0,
                    updated_at: T0,
                    revision: 1,
                });
                Some(id.0)
            }
            ("POST", "/v1/apis") => {
                let r: CreateApi = parse(body);
                assert!(
                    cat.orgs
                        .iter()
                        .any(|o| o.id == r.org_id && o.kind.provides())
                );
                let id = ApiId::new();
                cat.apis.push((
                    Api {
                        id,
                        org_id: r.org_id,
                        slug: r.slug,
                        name: r.name,
                        version: r.version,
                        description: r.description,
                        base_path: r.base_path,
                        hosts: r.hosts,
                        upstreams: r.upstreams,
                        sandbox_upstreams: r.sandbox_upstreams,
                        mtls: r.mtls,
                        public: r.public,
                        status: ApiStatus::Draft,
                        sunset: None,
                        openapi: r.openapi.as_ref().map(info),
                        created_at: T0,
                        updated_at: T0,
                        revision: 1,
                    },
                    r.openapi,
                ));
                Some(id.0)
            }
            ("POST", "/v1/plans") => {
                let r: CreatePlan = parse(body);
                for pa in &r.apis {
                    let (api, _) = cat.apis.iter().find(|(a, _)| a.id == pa.api_id).unwrap();
                    assert_eq!(api.org_id, r.org_id);
                    assert_ne!(api.status, ApiStatus::Retired);
                }
                let id = PlanId::new();
                cat.plans.push(Plan {
                    id,
                    org_id: r.org_id,
                    slug: r.slug,
                    name: r.name,
                    description: r.description,
                    visibility: r.visibility,
                    approval_required: r.approval_required,
                    status: PlanStatus::Draft,
                    apis: r.apis,
                    terms_id: None,
                    max_key_lifetime_days: r.max_key_lifetime_days,
                    created_at: T0,
                    updated_at: T0,
                    revision: 1,
                });
                Some(id.0)
            }
            ("POST", "/v1/apps") => {
                let r: CreateApp = parse(body);
                assert!(
                    cat.orgs
                        .iter()
                        .any(|o| o.id == r.org_id && o.kind.consumes())
                );
                let id = AppId::new();
                cat.apps.push(App {
                    id,
                    org_id: r.org_id,
                    slug: r.slug,
                    name: r.name,
                    description: r.description,
                    created_at: T0,
                    updated_at: T0,
                    revision: 1,
                });
                Some(id.0)
            }
            ("POST", "/v1/terms") => {
                let r: CreateTerms = parse(body);
                assert!(
                    cat.orgs
                        .iter()
                        .any(|o| o.id == r.org_id && o.kind.provides())
                );
                let text = serde_json::to_string(&r.document).unwrap();
                let v = tollgate_terms::parse_str(
                    "document".as_ref(),
                    Some(tollgate_terms::Format::Json),
                    &text,
                )
                .and_then(|l| l.validate())
                .unwrap_or_else(|e| panic!("invalid sheet: {e:?}"));
                for g in &v.sheet().grants {
                    assert!(
                        cat.apis
                            .iter()
                            .any(|(a, _)| a.org_id == r.org_id && a.slug == g.api),
                        "grant of unknown API {}",
                        g.api
                    );
                }
                let existing = cat
                    .terms
                    .iter()
                    .find(|t| t.org_id == r.org_id && t.sha256 == v.sha256());
                let t = match existing {
                    // Same content: 200 with the stored version.
                    Some(t) => t.clone(),
                    None => {
                        let version = v.version().to_string();
                        assert!(
                            !cat.terms.iter().any(|t| t.org_id == r.org_id
                                && t.sheet_id == v.sheet().id
                                && t.version == version),
                            "409: same version, other content"
                        );
                        let t = TermSheet {
                            id: TermsId::new(),
                            org_id: r.org_id,
                            sheet_id: v.sheet().id.clone(),
                            version,
                            sha256: v.sha256().to_owned(),
                            status: TermsStatus::Draft,
                            document: serde_json::to_value(v.sheet()).unwrap(),
                            created_at: T0,
                            published_at: None,
                            revision: 1,
                        };
                        cat.terms.push(t.clone());
                        t
                    }
                };
                response = Some(serde_json::to_value(&t).unwrap());
                None
            }
            ("POST", p) if p.starts_with("/v1/terms/") && p.ends_with("/publish") => {
                assert_eq!(body, Value::Null, "publish takes no body");
                let id = TermsId(id_in(p));
                let t = cat.terms.iter_mut().find(|t| t.id == id).unwrap();
                check_rev(step, &mut t.revision);
                assert_eq!(t.status, TermsStatus::Draft, "publish a draft only");
                t.status = TermsStatus::Published;
                t.published_at = Some(T0);
                None
            }
            ("POST", "/v1/subscriptions/import") => {
                let sub = import_subscription(cat, parse(body));
                response = Some(serde_json::to_value(&sub).unwrap());
                None
            }
            ("PATCH", p) if p.starts_with("/v1/orgs/") => {
                let id = OrgId(id_in(p));
                let r: UpdateOrg = parse(body);
                let o = cat.orgs.iter_mut().find(|o| o.id == id).unwrap();
                check_rev(step, &mut o.revision);
                o.name = r.name.unwrap_or(o.name.clone());
                o.kind = r.kind.unwrap_or(o.kind);
                None
            }
            ("PUT", p) if p.ends_with("/openapi") => {
                let id = ApiId(id_in(p));
                let (a, doc) = cat.apis.iter_mut().find(|(a, _)| a.id == id).unwrap();
                assert_ne!(a.status, ApiStatus::Retired);
                check_rev(step, &mut a.revision);
                a.openapi = Some(info(&body));
                *doc = Some(body);
                None
            }
            ("PATCH", p) if p.starts_with("/v1/apis/") => {
                let id = ApiId(id_in(p));
                let r: UpdateApi = parse(body);
                assert!(r.validate().is_empty(), "{:?}", r.validate());
                let (a, _) = cat.apis.iter_mut().find(|(a, _)| a.id == id).unwrap();
                check_rev(step, &mut a.revision);
                if let Some(v) = r.name {
                    a.name = v;
                }
                if let Some(v) = r.version {
                    a.version = v;
                }
                if let Some(v) = r.description {
                    a.description = v;
                }
                if let Some(v) = r.base_path {
                    a.base_path = v;
                }
                if let Some(v) = r.hosts {
                    a.hosts = v;
                }
                if let Some(v) = r.sandbox_upstreams {
                    a.sandbox_upstreams = v;
                }
                if let Some(v) = r.mtls {
                    a.mtls = v;
                }
                if let Some(v) = r.upstreams {
                    a.upstreams = v;
                }
                if let Some(to) = r.status {
                    assert!(a.status.can_become(to), "{:?} -> {to:?}", a.status);
                    if to == ApiStatus::Published {
                        assert!(a.openapi.is_some(), "publishing needs a document");
                    }
                    a.status = to;
                    a.sunset = if to == ApiStatus::Deprecated {
                        r.sunset
                    } else {
                        None
                    };
                }
                None
            }
            ("PATCH", p) if p.starts_with("/v1/plans/") => {
                let id = PlanId(id_in(p));
                let r: UpdatePlan = parse(body);
                let apis = cat.apis.clone();
                let terms = cat.terms.clone();
                let plan = cat.plans.iter_mut().find(|x| x.id == id).unwrap();
                assert_ne!(plan.status, PlanStatus::Retired);
                check_rev(step, &mut plan.revision);
                if let Some(v) = r.name {
                    plan.name = v;
                }
                if let Some(v) = r.description {
                    plan.description = v;
                }
                if let Some(v) = r.visibility {
                    plan.visibility = v;
                }
                if let Some(v) = r.max_key_lifetime_days {
                    plan.max_key_lifetime_days = Some(v);
                }
                if let Some(v) = r.approval_required {
                    plan.approval_required = v;
                }
                if let Some(v) = r.apis {
                    plan.apis = v;
                }
                if let Some(t) = r.terms_id {
                    let sheet = terms.iter().find(|s| s.id == t).expect("unknown terms_id");
                    assert_eq!(sheet.org_id, plan.org_id, "a sheet of the plan's org");
                    assert_eq!(
                        sheet.status,
                        TermsStatus::Published,
                        "only a published sheet can be offered"
                    );
                    plan.terms_id = Some(t);
                }
                if let Some(to) = r.status {
                    assert!(plan.status.can_become(to));
                    plan.status = to;
                }
                if plan.status == PlanStatus::Published {
                    for pa in &plan.apis {
                        let (a, _) = apis.iter().find(|(a, _)| a.id == pa.api_id).unwrap();
                        assert!(
                            a.status.in_catalog(),
                            "plan published before API {}",
                            a.slug
                        );
                    }
                }
                None
            }
            ("PATCH", p) if p.starts_with("/v1/apps/") => {
                let id = AppId(id_in(p));
                let r: UpdateApp = parse(body);
                let a = cat.apps.iter_mut().find(|x| x.id == id).unwrap();
                check_rev(step, &mut a.revision);
                a.name = r.name.unwrap_or(a.name.clone());
                a.description = r.description.unwrap_or(a.description.clone());
                None
            }
            other => panic!("unexpected request {other:?}"),
        };
        if let Some(id) = created {
            response = Some(json!({ "id": id.to_string() }));
        }
        if let Some(r) = response {
            ids.record(step, &r).unwrap();
        }
    }
}
