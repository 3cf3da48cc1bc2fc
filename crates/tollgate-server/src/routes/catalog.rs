//! Plans (provider side), applications (consumer side) and the subscriptions between
//! them, with their lifecycles and who may move them.

use super::{ReadErrors, WriteErrors};
use crate::acceptance;
use crate::auth::Caller;
use crate::error::{ApiError, check};
use crate::extract::OriginInfo;
use crate::extract::{ApiJson, ApiQuery, IfMatch, path_id};
use crate::ops::{Change, PageQuery, audit, commit, with_etag};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tollgate_core::model::*;
use tollgate_core::roles::Action;
use tollgate_core::{AppId, ErrorCode, FieldError, OrgId, PlanId, SubscriptionId};
use tollgate_store::{PlanFilter, Scope, SubscriptionFilter, Tx};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(get_plan, update_plan))
        .routes(routes!(list_apps, create_app))
        .routes(routes!(get_app, update_app, delete_app))
        .routes(routes!(list_subscriptions, create_subscription))
        .routes(routes!(get_subscription))
        .routes(routes!(transition_subscription))
        .routes(routes!(list_acceptances, accept_terms))
        .routes(routes!(list_notices))
        .routes(routes!(acceptance_odrl))
        .routes(routes!(import_subscription))
        .routes(routes!(verification_keys))
}

fn field(pointer: impl Into<String>, detail: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }
}

// ------------------------------------------------------------------------ plans

/// Filters of the plan list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlanListQuery {
    /// Only plans of this org.
    pub org_id: Option<OrgId>,
    /// Only plans in this state.
    pub status: Option<PlanStatus>,
    /// Only plans that include this API.
    pub api_id: Option<tollgate_core::ApiId>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Checks that every API of a plan belongs to `org` and that listed operations exist.
async fn check_plan_apis(
    tx: &mut Tx,
    org: OrgId,
    apis: &[PlanApi],
    publishing: bool,
) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (i, pa) in apis.iter().enumerate() {
        let api = tx.get_api(pa.api_id).await?.filter(|a| a.org_id == org);
        let Some(api) = api else {
            errors.push(field(
                format!("/apis/{i}/api_id"),
                "no such API in this organization",
            ));
            continue;
        };
        if publishing && !api.status.in_catalog() {
            errors.push(field(
                format!("/apis/{i}/api_id"),
                format!(
                    "API {:?} is {:?}; publish it before publishing the plan",
                    api.slug, api.status
                )
                .to_lowercase(),
            ));
        }
        if api.status == ApiStatus::Retired {
            errors.push(field(format!("/apis/{i}/api_id"), "is retired"));
        }
        if let Some(ops) = &pa.operations {
            let known: Vec<String> = tx
                .list_operations(api.id)
                .await?
                .into_iter()
                .map(|o| o.operation_id)
                .collect();
            for (j, op) in ops.iter().enumerate() {
                if !known.contains(op) {
                    errors.push(field(
                        format!("/apis/{i}/operations/{j}"),
                        format!("API {:?} has no operation {op:?}", api.slug),
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Lists own plans, public plans in the catalog, and plans the caller's org subscribes to.
#[utoipa::path(get, path = "/v1/plans", tag = "plans", params(PlanListQuery), responses((status = 200, body = Page<Plan>), ReadErrors), security(("bearer" = [])))]
async fn list_plans(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<PlanListQuery>,
) -> Result<Json<Page<Plan>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .params()?;
    let mut tx = st.store.read().await?;
    let filter = PlanFilter {
        org_id: q.org_id,
        status: q.status,
        api_id: q.api_id,
    };
    Ok(Json(tx.list_plans(&caller.scope(), &filter, &page).await?))
}

/// Creates a plan in `draft`.
#[utoipa::path(post, path = "/v1/plans", tag = "plans", request_body = CreatePlan,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Plan, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn create_plan(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreatePlan>,
) -> Result<Response, ApiError> {
    caller.require(req.org_id, Action::ManagePlans, "organization")?;
    check(req.validate())?;
    let mut tx = st.store.write().await?;
    let org = tx
        .get_org(req.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if !org.kind.provides() {
        return Err(ApiError::validation(vec![field(
            "/org_id",
            "is a consumer-only organization; make it a provider first",
        )]));
    }
    check_plan_apis(&mut tx, org.id, &req.apis, false).await?;
    if tx.get_plan_by_slug(org.id, &req.slug).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the org already has a plan with slug {:?}", req.slug),
        ));
    }
    let now = st.now();
    let plan = Plan {
        id: PlanId::new(),
        org_id: org.id,
        slug: req.slug,
        name: req.name,
        description: req.description,
        visibility: req.visibility,
        approval_required: req.approval_required,
        status: PlanStatus::Draft,
        apis: req.apis,
        terms_id: None,
        max_key_lifetime_days: req.max_key_lifetime_days,
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    tx.insert_plan(&plan).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "plan.create",
            target_type: "plan",
            target_id: plan.id.to_string(),
            org_id: Some(plan.org_id),
            before: None,
            after: Some(&plan),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::CREATED, plan.revision, &plan))
}

async fn visible_plan(tx: &mut Tx, caller: &Caller, raw: &str) -> Result<Plan, ApiError> {
    let id: PlanId = path_id(raw, "plan")?;
    let plan = tx
        .get_plan(id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan"))?;
    let in_catalog = plan.visibility == Visibility::Public && plan.status != PlanStatus::Draft;
    if caller.sees(plan.org_id)
        || in_catalog
        || tx.scope_subscribes_to(&caller.scope(), plan.id).await?
    {
        Ok(plan)
    } else {
        Err(ApiError::not_found("plan"))
    }
}

/// Reads a plan.
#[utoipa::path(get, path = "/v1/plans/{plan_id}", tag = "plans", params(("plan_id" = String, Path)), responses((status = 200, body = Plan, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
async fn get_plan(
    State(st): St,
    caller: Caller,
    Path(plan_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let plan = visible_plan(&mut tx, &caller, &plan_id).await?;
    Ok(with_etag(StatusCode::OK, plan.revision, &plan))
}

/// Changes a plan: fields, its APIs and operations, and lifecycle `draft → published →
/// retired`.
#[utoipa::path(patch, path = "/v1/plans/{plan_id}", tag = "plans", request_body = UpdatePlan,
    params(("plan_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Plan, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn update_plan(
    State(st): St,
    caller: Caller,
    Path(plan_id): Path<String>,
    if_match: IfMatch,
    ApiJson(req): ApiJson<UpdatePlan>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_plan(&mut tx, &caller, &plan_id).await?;
    caller.require(before.org_id, Action::ManagePlans, "plan")?;
    check(req.validate())?;
    if_match.check(before.revision)?;
    let mut plan = before.clone();
    if let Some(v) = req.name {
        plan.name = v;
    }
    if let Some(v) = req.description {
        plan.description = v;
    }
    if let Some(v) = req.visibility {
        plan.visibility = v;
    }
    if let Some(v) = req.max_key_lifetime_days {
        plan.max_key_lifetime_days = Some(v);
    }
    if let Some(v) = req.approval_required {
        plan.approval_required = v;
    }
    if let Some(v) = req.apis {
        plan.apis = v;
    }
    if let Some(t) = req.terms_id {
        // Only a published sheet of the plan's own org can be offered.
        let terms = tx
            .get_terms(t)
            .await?
            .filter(|s| s.org_id == before.org_id && s.status == TermsStatus::Published);
        if terms.is_none() {
            return Err(ApiError::validation(vec![field(
                "/terms_id",
                "no published term sheet of this organization has this id",
            )]));
        }
        plan.terms_id = Some(t);
    }
    if let Some(to) = req.status {
        if !before.status.can_become(to) {
            return Err(ApiError::transition("plan", before.status, to));
        }
        plan.status = to;
    }
    if plan == before {
        return Ok(with_etag(StatusCode::OK, plan.revision, &plan));
    }
    if before.status == PlanStatus::Retired {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "a retired plan cannot change",
        ));
    }
    check_plan_apis(
        &mut tx,
        plan.org_id,
        &plan.apis,
        plan.status == PlanStatus::Published,
    )
    .await?;
    plan.revision += 1;
    plan.updated_at = st.now();
    tx.update_plan(&plan, before.revision).await?;
    // A new term sheet version: notify subscribers still on another one.
    if plan.terms_id != before.terms_id
        && let Some(t) = plan.terms_id
    {
        let terms = tx
            .get_terms(t)
            .await?
            .ok_or_else(|| ApiError::internal("plan references missing terms"))?;
        crate::notices::announce(&st, &mut tx, &caller, &plan, &terms).await?;
    }
    let action = if plan.status == before.status {
        "plan.update"
    } else {
        "plan.transition"
    };
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action,
            target_type: "plan",
            target_id: plan.id.to_string(),
            org_id: Some(plan.org_id),
            before: Some(&before),
            after: Some(&plan),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok(with_etag(StatusCode::OK, plan.revision, &plan))
}

// ------------------------------------------------------------------------ apps

/// Filters of the app list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AppListQuery {
    /// Only apps of this org.
    pub org_id: Option<OrgId>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists the apps of the caller's orgs.
#[utoipa::path(get, path = "/v1/apps", tag = "apps", params(AppListQuery), responses((status = 200, body = Page<App>), ReadErrors), security(("bearer" = [])))]
async fn list_apps(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<AppListQuery>,
) -> Result<Json<Page<App>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .params()?;
    let mut tx = st.store.read().await?;
    Ok(Json(tx.list_apps(&caller.scope(), q.org_id, &page).await?))
}

/// Creates an application of a consumer org.
#[utoipa::path(post, path = "/v1/apps", tag = "apps", request_body = CreateApp,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = App, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn create_app(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreateApp>,
) -> Result<Response, ApiError> {
    caller.require(req.org_id, Action::ManageApps, "organization")?;
    check(req.validate())?;
    let mut tx = st.store.write().await?;
    let org = tx
        .get_org(req.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if !org.kind.consumes() {
        return Err(ApiError::validation(vec![field(
            "/org_id",
            "is a provider-only organization; make it a consumer first",
        )]));
    }
    if tx.get_app_by_slug(org.id, &req.slug).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the org already has an app with slug {:?}", req.slug),
        ));
    }
    let now = st.now();
    let app = App {
        id: AppId::new(),
        org_id: org.id,
        slug: req.slug,
        name: req.name,
        description: req.description,
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    tx.insert_app(&app).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "app.create",
            target_type: "app",
            target_id: app.id.to_string(),
            org_id: Some(app.org_id),
            before: None,
            after: Some(&app),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::CREATED, app.revision, &app))
}

async fn visible_app(tx: &mut Tx, caller: &Caller, raw: &str) -> Result<App, ApiError> {
    let id: AppId = path_id(raw, "app")?;
    tx.get_app(id)
        .await?
        .filter(|a| caller.sees(a.org_id))
        .ok_or_else(|| ApiError::not_found("app"))
}

/// Reads an application.
#[utoipa::path(get, path = "/v1/apps/{app_id}", tag = "apps", params(("app_id" = String, Path)), responses((status = 200, body = App, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
async fn get_app(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let app = visible_app(&mut tx, &caller, &app_id).await?;
    Ok(with_etag(StatusCode::OK, app.revision, &app))
}

/// Changes an application's name or description.
#[utoipa::path(patch, path = "/v1/apps/{app_id}", tag = "apps", request_body = UpdateApp,
    params(("app_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = App, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn update_app(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
    if_match: IfMatch,
    ApiJson(req): ApiJson<UpdateApp>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_app(&mut tx, &caller, &app_id).await?;
    caller.require(before.org_id, Action::ManageApps, "app")?;
    check(req.validate())?;
    if_match.check(before.revision)?;
    let mut app = before.clone();
    if let Some(v) = req.name {
        app.name = v;
    }
    if let Some(v) = req.description {
        app.description = v;
    }
    if app == before {
        return Ok(with_etag(StatusCode::OK, app.revision, &app));
    }
    app.revision += 1;
    app.updated_at = st.now();
    tx.update_app(&app, before.revision).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "app.update",
            target_type: "app",
            target_id: app.id.to_string(),
            org_id: Some(app.org_id),
            before: Some(&before),
            after: Some(&app),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::OK, app.revision, &app))
}

/// Deletes an application that has no open subscriptions.
#[utoipa::path(delete, path = "/v1/apps/{app_id}", tag = "apps",
    params(("app_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
async fn delete_app(
    State(st): St,
    caller: Caller,
    Path(app_id): Path<String>,
    if_match: IfMatch,
) -> Result<StatusCode, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_app(&mut tx, &caller, &app_id).await?;
    caller.require(before.org_id, Action::ManageApps, "app")?;
    if_match.check(before.revision)?;
    // Subscriptions (even cancelled ones) and their signed acceptances refer to the app:
    // their history must be kept, so such an app is renamed, not deleted.
    if tx.open_subscription_count(before.id).await? > 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the app still has subscriptions that are not cancelled",
        ));
    }
    let any = SubscriptionFilter {
        app_id: Some(before.id),
        ..Default::default()
    };
    let first = tollgate_store::PageParams {
        after: None,
        limit: 1,
    };
    if !tx
        .list_subscriptions(&Scope::All, &any, &first)
        .await?
        .items
        .is_empty()
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the app has a subscription history that must be kept; rename it instead",
        ));
    }
    tx.delete_app(before.id).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "app.delete",
            target_type: "app",
            target_id: before.id.to_string(),
            org_id: Some(before.org_id),
            before: Some(&before),
            after: None,
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------------ subscriptions

/// Filters of the subscription list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionListQuery {
    pub app_id: Option<AppId>,
    pub plan_id: Option<PlanId>,
    pub state: Option<SubscriptionState>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists subscriptions of the caller's apps and to the caller's plans.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "subscriptions", params(SubscriptionListQuery), responses((status = 200, body = Page<Subscription>), ReadErrors), security(("bearer" = [])))]
async fn list_subscriptions(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<SubscriptionListQuery>,
) -> Result<Json<Page<Subscription>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .params()?;
    let mut tx = st.store.read().await?;
    let filter = SubscriptionFilter {
        app_id: q.app_id,
        plan_id: q.plan_id,
        state: q.state,
    };
    Ok(Json(
        tx.list_subscriptions(&caller.scope(), &filter, &page)
            .await?,
    ))
}

/// Subscribes an app to a published plan: `active` at once, or `pending` the provider's
/// approval when the plan requires it.
#[utoipa::path(post, path = "/v1/subscriptions", tag = "subscriptions", request_body = CreateSubscription,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Subscription, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn create_subscription(
    State(st): St,
    caller: Caller,
    origin: OriginInfo,
    ApiJson(req): ApiJson<CreateSubscription>,
) -> Result<Response, ApiError> {
    if req.reason.len() > 1000 {
        return Err(ApiError::validation(vec![field(
            "/reason",
            "must be at most 1000 characters",
        )]));
    }
    let mut tx = st.store.write().await?;
    let app = tx
        .get_app(req.app_id)
        .await?
        .filter(|a| caller.sees(a.org_id));
    let Some(app) = app else {
        return Err(ApiError::validation(vec![field("/app_id", "no such app")]));
    };
    caller.require(app.org_id, Action::Subscribe, "app")?;
    let plan = visible_plan(&mut tx, &caller, &req.plan_id.to_string())
        .await
        .map_err(|_| ApiError::validation(vec![field("/plan_id", "no such plan")]))?;
    if plan.status != PlanStatus::Published {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the plan is not open for subscriptions",
        ));
    }
    let open = tx
        .list_subscriptions(
            &Scope::All,
            &SubscriptionFilter {
                app_id: Some(app.id),
                plan_id: Some(plan.id),
                state: None,
            },
            &tollgate_store::PageParams {
                after: None,
                limit: 200,
            },
        )
        .await?;
    if open
        .items
        .iter()
        .any(|s| s.state != SubscriptionState::Cancelled && s.mode == req.mode)
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the app already has an open subscription of this mode to this plan",
        ));
    }
    // The plan's terms must be accepted, by hash, to subscribe at all.
    let terms = match plan.terms_id {
        Some(t) => {
            let terms = tx
                .get_terms(t)
                .await?
                .ok_or_else(|| ApiError::internal("plan references missing terms"))?;
            acceptance::check_accepts("/accept_terms", req.accept_terms.as_deref(), &terms)?;
            Some(terms)
        }
        None => None,
    };
    let now = st.now();
    let state = if plan.approval_required {
        SubscriptionState::Pending
    } else {
        SubscriptionState::Active
    };
    let reason = if req.reason.trim().is_empty() {
        "subscribed".to_owned()
    } else {
        req.reason
    };
    let sub = Subscription {
        id: SubscriptionId::new(),
        app_id: app.id,
        consumer_org_id: app.org_id,
        plan_id: plan.id,
        provider_org_id: plan.org_id,
        state,
        mode: req.mode,
        terms_sha256: terms.as_ref().map(|t| t.sha256.clone()),
        history: vec![SubscriptionTransition {
            from: None,
            to: state,
            actor: caller.user.id,
            reason,
            at: now,
        }],
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    tx.insert_subscription(&sub).await?;
    if let Some(terms) = &terms {
        let a = acceptance::sign(&st, &caller, &sub, terms, &origin.0).await?;
        tx.insert_acceptance(&a, a.record.subscription_id, a.record.terms_id)
            .await?;
        audit(
            &st,
            &mut tx,
            &caller,
            Change {
                action: "acceptance.create",
                target_type: "acceptance",
                target_id: a.record.id.to_string(),
                org_id: Some(sub.consumer_org_id),
                before: None,
                after: Some(&a),
            },
        )
        .await?;
    }
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "subscription.create",
            target_type: "subscription",
            target_id: sub.id.to_string(),
            org_id: Some(sub.consumer_org_id),
            before: None,
            after: Some(&sub),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok(with_etag(StatusCode::CREATED, sub.revision, &sub))
}

/// A subscription its consumer or provider (or a marketplace role) may see, else 404.
pub(crate) async fn visible_subscription(
    tx: &mut Tx,
    caller: &Caller,
    raw: &str,
) -> Result<Subscription, ApiError> {
    let id: SubscriptionId = path_id(raw, "subscription")?;
    tx.get_subscription(id)
        .await?
        .filter(|s| caller.sees(s.consumer_org_id) || caller.sees(s.provider_org_id))
        .ok_or_else(|| ApiError::not_found("subscription"))
}

/// Reads a subscription with its full history.
#[utoipa::path(get, path = "/v1/subscriptions/{subscription_id}", tag = "subscriptions", params(("subscription_id" = String, Path)),
    responses((status = 200, body = Subscription, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
async fn get_subscription(
    State(st): St,
    caller: Caller,
    Path(subscription_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let sub = visible_subscription(&mut tx, &caller, &subscription_id).await?;
    Ok(with_etag(StatusCode::OK, sub.revision, &sub))
}

/// Moves a subscription: the provider approves (`pending → active`), suspends,
/// reinstates or cancels; the consumer cancels. Every move records who and why.
#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/transitions", tag = "subscriptions", request_body = TransitionSubscription,
    params(("subscription_id" = String, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = Subscription, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn transition_subscription(
    State(st): St,
    caller: Caller,
    Path(subscription_id): Path<String>,
    if_match: IfMatch,
    ApiJson(req): ApiJson<TransitionSubscription>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_subscription(&mut tx, &caller, &subscription_id).await?;
    check(req.validate())?;
    if_match.check(before.revision)?;
    if !before.state.can_become(req.to) {
        return Err(ApiError::transition("subscription", before.state, req.to));
    }
    // No path to `active` without an accepted term sheet when the plan has terms.
    if req.to == SubscriptionState::Active && before.terms_sha256.is_none() {
        let plan = tx
            .get_plan(before.plan_id)
            .await?
            .ok_or_else(|| ApiError::internal("subscription without plan"))?;
        if plan.terms_id.is_some() {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the subscriber has not accepted the plan's terms; it must accept them first",
            ));
        }
    }
    // The provider decides everything; the consumer may only cancel its own.
    let provider_ok = caller.require(
        before.provider_org_id,
        Action::DecideSubscriptions,
        "subscription",
    );
    let consumer_ok = req.to == SubscriptionState::Cancelled
        && caller
            .require(before.consumer_org_id, Action::Subscribe, "subscription")
            .is_ok();
    if provider_ok.is_err() && !consumer_ok {
        return Err(provider_ok
            .err()
            .filter(|e| e.code != ErrorCode::NotFound)
            .unwrap_or_else(|| {
                ApiError::forbidden(
                    "only the plan's provider can approve, suspend or reinstate a subscription",
                )
            }));
    }
    let now = st.now();
    let mut sub = before.clone();
    sub.history.push(SubscriptionTransition {
        from: Some(before.state),
        to: req.to,
        actor: caller.user.id,
        reason: req.reason,
        // On a test clock, the clock's time: billing reads cancellations from here.
        at: crate::billing::now_for(&st, before.id),
    });
    sub.state = req.to;
    sub.revision += 1;
    sub.updated_at = now;
    tx.update_subscription(&sub, before.revision, before.history.len())
        .await?;
    if sub.state == SubscriptionState::Cancelled {
        crate::notices::close(
            &mut tx,
            &sub,
            None,
            NoticeResolution::Cancelled,
            sub.updated_at,
        )
        .await?;
    }
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "subscription.transition",
            target_type: "subscription",
            target_id: sub.id.to_string(),
            org_id: Some(sub.provider_org_id),
            before: Some(&before),
            after: Some(&sub),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok(with_etag(StatusCode::OK, sub.revision, &sub))
}

/// The signed acceptances of a subscription, oldest first.
#[utoipa::path(get, path = "/v1/subscriptions/{subscription_id}/acceptances", tag = "subscriptions", params(("subscription_id" = String, Path)),
    responses((status = 200, body = Vec<Acceptance>), ReadErrors), security(("bearer" = [])))]
async fn list_acceptances(
    State(st): St,
    caller: Caller,
    Path(subscription_id): Path<String>,
) -> Result<Json<Vec<Acceptance>>, ApiError> {
    let mut tx = st.store.read().await?;
    let sub = visible_subscription(&mut tx, &caller, &subscription_id).await?;
    Ok(Json(tx.list_acceptances(sub.id).await?))
}

/// Accepts the plan's current term sheet (by hash) for this subscription. The
/// subscription is served under the accepted version from now on.
#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/acceptances", tag = "subscriptions", request_body = AcceptTerms,
    params(("subscription_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Acceptance), WriteErrors), security(("bearer" = [])))]
async fn accept_terms(
    State(st): St,
    caller: Caller,
    origin: OriginInfo,
    Path(subscription_id): Path<String>,
    ApiJson(req): ApiJson<AcceptTerms>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_subscription(&mut tx, &caller, &subscription_id).await?;
    // Only the consumer accepts terms; a provider (or operator) cannot accept for it.
    if caller.role_in(before.consumer_org_id).is_none() {
        return Err(if caller.sees(before.provider_org_id) {
            ApiError::forbidden("only a member of the subscribing org can accept terms")
        } else {
            ApiError::not_found("subscription")
        });
    }
    caller.require(before.consumer_org_id, Action::Subscribe, "subscription")?;
    if before.state == SubscriptionState::Cancelled {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "a cancelled subscription cannot accept terms",
        ));
    }
    let plan = tx
        .get_plan(before.plan_id)
        .await?
        .ok_or_else(|| ApiError::internal("subscription without plan"))?;
    let Some(terms_id) = plan.terms_id else {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the plan has no terms to accept",
        ));
    };
    let terms = tx
        .get_terms(terms_id)
        .await?
        .ok_or_else(|| ApiError::internal("plan references missing terms"))?;
    acceptance::check_accepts("/terms_sha256", Some(&req.terms_sha256), &terms)?;
    if before.terms_sha256.as_deref() == Some(terms.sha256.as_str()) {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the subscription already accepted these terms",
        ));
    }
    let a = acceptance::sign(&st, &caller, &before, &terms, &origin.0).await?;
    tx.insert_acceptance(&a, a.record.subscription_id, a.record.terms_id)
        .await?;
    let mut sub = before.clone();
    sub.terms_sha256 = Some(terms.sha256.clone());
    sub.revision += 1;
    sub.updated_at = st.now();
    tx.update_subscription(&sub, before.revision, before.history.len())
        .await?;
    crate::notices::close(
        &mut tx,
        &sub,
        sub.terms_sha256.as_deref(),
        NoticeResolution::Superseded,
        sub.updated_at,
    )
    .await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "acceptance.create",
            target_type: "acceptance",
            target_id: a.record.id.to_string(),
            org_id: Some(sub.consumer_org_id),
            before: None,
            after: Some(&a),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

/// Filters of the notice list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NoticeListQuery {
    /// Only notices of this subscription.
    pub subscription_id: Option<SubscriptionId>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Notices of new term sheet versions to the caller's subscriptions (as consumer or
/// provider): what changes, until when the old version holds, and what happens then.
#[utoipa::path(get, path = "/v1/notices", tag = "subscriptions", params(NoticeListQuery), responses((status = 200, body = Page<Notice>), ReadErrors), security(("bearer" = [])))]
async fn list_notices(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<NoticeListQuery>,
) -> Result<Json<Page<Notice>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .params()?;
    let mut tx = st.store.read().await?;
    Ok(Json(
        tx.list_notices(&caller.scope(), q.subscription_id, &page)
            .await?,
    ))
}

/// One acceptance as an ODRL 2.2 `Agreement` (JSON-LD, context embedded) between the
/// provider and the subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{subscription_id}/acceptances/{acceptance_id}/odrl", tag = "subscriptions",
    params(("subscription_id" = String, Path), ("acceptance_id" = String, Path)),
    responses((status = 200, description = "ODRL 2.2 Agreement", content_type = "application/ld+json", body = Object), ReadErrors), security(("bearer" = [])))]
async fn acceptance_odrl(
    State(st): St,
    caller: Caller,
    Path((subscription_id, acceptance_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let sub = visible_subscription(&mut tx, &caller, &subscription_id).await?;
    let wanted: tollgate_core::AcceptanceId =
        crate::extract::path_id(&acceptance_id, "acceptance")?;
    let a = tx
        .list_acceptances(sub.id)
        .await?
        .into_iter()
        .find(|a| a.record.id == wanted)
        .ok_or_else(|| ApiError::not_found("acceptance"))?;
    let terms = tx
        .get_terms(a.record.terms_id)
        .await?
        .ok_or_else(|| ApiError::internal("acceptance without terms"))?;
    let v = crate::routes::terms::revalidate(&terms)?;
    let accepted_at = a
        .record
        .accepted_at
        .parse::<jiff::Timestamp>()
        .map_err(ApiError::internal)?;
    let uid = format!("urn:tollgate:acceptance:{}", a.record.id);
    let assignee = format!("urn:tollgate:subscription:{}", sub.id);
    let doc = tollgate_terms::odrl::agreement(
        &v,
        &format!("urn:tollgate:org:{}", sub.provider_org_id),
        &tollgate_terms::odrl::Acceptance {
            uid: &uid,
            assignee: &assignee,
            accepted_at,
        },
    );
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/ld+json")],
        Json(doc),
    )
        .into_response())
}

/// Imports a subscription from another marketplace with its signed acceptances (operators
/// only). Every signature is verified — with this marketplace's keys or the given public
/// keys, which are then kept — and every accepted sheet must exist here (sheets are
/// content-addressed, so the same content has the same hash everywhere). The records are
/// stored as they are, never re-signed.
#[utoipa::path(post, path = "/v1/subscriptions/import", tag = "subscriptions", request_body = ImportSubscription,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Subscription, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn import_subscription(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<ImportSubscription>,
) -> Result<Response, ApiError> {
    if !caller.is_operator() {
        return Err(if caller.marketplace_role().is_some() {
            ApiError::forbidden("only operators import subscriptions")
        } else {
            ApiError::not_found("route")
        });
    }
    let mut tx = st.store.write().await?;
    let app = tx
        .get_app(req.app_id)
        .await?
        .ok_or_else(|| ApiError::validation(vec![field("/app_id", "no such app")]))?;
    let plan = tx
        .get_plan(req.plan_id)
        .await?
        .ok_or_else(|| ApiError::validation(vec![field("/plan_id", "no such plan")]))?;
    if req.state == SubscriptionState::Cancelled {
        return Err(ApiError::validation(vec![field(
            "/state",
            "cancelled subscriptions are not imported",
        )]));
    }
    if plan.terms_id.is_some() && req.acceptances.is_empty() {
        return Err(ApiError::validation(vec![field(
            "/acceptances",
            "the plan has terms: the subscription's signed acceptances are required",
        )]));
    }
    let open = tx
        .list_subscriptions(
            &Scope::All,
            &SubscriptionFilter {
                app_id: Some(app.id),
                plan_id: Some(plan.id),
                state: None,
            },
            &tollgate_store::PageParams {
                after: None,
                limit: 200,
            },
        )
        .await?;
    if open
        .items
        .iter()
        .any(|s| s.state != SubscriptionState::Cancelled && s.mode == req.mode)
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the app already has an open subscription of this mode to this plan",
        ));
    }
    let now = st.now();
    let mut errors = Vec::new();
    let mut local_terms = Vec::new();
    for (i, a) in req.acceptances.iter().enumerate() {
        let given = req
            .verification_keys
            .iter()
            .find(|k| k.key_id == a.key_id)
            .map(|k| k.public_key.clone());
        let known = acceptance::public_key(&st, &mut tx, &a.key_id).await?;
        match known.or(given) {
            None => errors.push(field(
                format!("/acceptances/{i}/key_id"),
                "unknown signing key: include its public key in verification_keys",
            )),
            Some(pk) => {
                if let Err(e) = acceptance::verify_with(a, &pk) {
                    errors.push(field(format!("/acceptances/{i}/signature"), e));
                }
            }
        }
        match tx.get_terms_by_hash(plan.org_id, &a.record.terms_sha256).await? {
            Some(t) => local_terms.push(t),
            None => errors.push(field(format!("/acceptances/{i}/record/terms_sha256"), "no term sheet of the plan's organization has this hash here; apply the sheet first")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    for k in &req.verification_keys {
        if req.acceptances.iter().any(|a| a.key_id == k.key_id)
            && acceptance::public_key(&st, &mut tx, &k.key_id)
                .await?
                .is_none()
        {
            tx.insert_verification_key(&k.key_id, "acceptance_signing", &k.public_key, now)
                .await?;
        }
    }
    let sub = Subscription {
        id: SubscriptionId::new(),
        app_id: app.id,
        consumer_org_id: app.org_id,
        plan_id: plan.id,
        provider_org_id: plan.org_id,
        state: req.state,
        mode: req.mode,
        terms_sha256: req
            .acceptances
            .last()
            .map(|a| a.record.terms_sha256.clone()),
        history: vec![SubscriptionTransition {
            from: None,
            to: req.state,
            actor: caller.user.id,
            reason: "imported with its signed acceptances".into(),
            at: now,
        }],
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    tx.insert_subscription(&sub).await?;
    for (a, t) in req.acceptances.iter().zip(&local_terms) {
        tx.insert_acceptance(a, sub.id, t.id).await?;
    }
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "subscription.import",
            target_type: "subscription",
            target_id: sub.id.to_string(),
            org_id: Some(sub.consumer_org_id),
            before: None,
            after: Some(&sub),
        },
    )
    .await?;
    commit(&st, tx, true).await?;
    Ok(with_etag(StatusCode::CREATED, sub.revision, &sub))
}

/// Public keys that verify the signed records kept here: this marketplace's signing keys
/// (every state) and keys imported with records.
#[utoipa::path(get, path = "/v1/verification-keys", tag = "subscriptions", responses((status = 200, body = Vec<PublishedKey>), ReadErrors), security(("bearer" = [])))]
async fn verification_keys(
    State(st): St,
    _caller: Caller,
) -> Result<Json<Vec<PublishedKey>>, ApiError> {
    use base64::Engine as _;
    let mut out: Vec<PublishedKey> = {
        let ring = st.keyring.read().await;
        ring.records()
            .filter_map(|r| {
                r.public_key.as_ref().map(|pk| PublishedKey {
                    key_id: r.id.to_string(),
                    purpose: r.purpose.as_str().to_owned(),
                    public_key: base64::engine::general_purpose::STANDARD.encode(pk),
                    origin: "local".into(),
                })
            })
            .collect()
    };
    let mut tx = st.store.read().await?;
    for (key_id, purpose, public_key) in tx.list_verification_keys().await? {
        out.push(PublishedKey {
            key_id,
            purpose,
            public_key,
            origin: "imported".into(),
        });
    }
    Ok(Json(out))
}
