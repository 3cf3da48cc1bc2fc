//! APIs: create, read, change (including lifecycle), import an OpenAPI document, list
//! operations. Published and deprecated APIs are the catalog, readable by every
//! authenticated caller; drafts and retired APIs only by their org.

use super::{ReadErrors, WriteErrors};
use crate::auth::Caller;
use crate::error::{ApiError, check};
use crate::extract::{ApiJson, ApiQuery, IfMatch, path_id};
use crate::ops::{Change, PageQuery, audit, commit, with_etag};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;
use tollgate_core::model::*;
use tollgate_core::roles::Action;
use tollgate_core::{ApiId, ErrorCode, OrgId};
use tollgate_store::{ApiFilter, Tx};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_apis, create_api))
        .routes(routes!(get_api, update_api))
        .routes(routes!(get_openapi, put_openapi))
        .routes(routes!(list_operations))
}

/// Filters of the API list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApiListQuery {
    /// Only APIs of this org.
    pub org_id: Option<OrgId>,
    /// Only APIs in this state.
    pub status: Option<ApiStatus>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists the catalog (published and deprecated APIs) plus the caller's own APIs.
#[utoipa::path(get, path = "/v1/apis", tag = "apis", params(ApiListQuery), responses((status = 200, body = Page<Api>), ReadErrors), security(("bearer" = [])))]
async fn list_apis(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<ApiListQuery>,
) -> Result<Json<Page<Api>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .params()?;
    let mut tx = st.store.read().await?;
    let filter = ApiFilter {
        org_id: q.org_id,
        status: q.status,
    };
    Ok(Json(tx.list_apis(&caller.scope(), &filter, &page).await?))
}

/// Checks that no other live API answers on the same base path and an overlapping host
/// set (an empty host list overlaps everything).
async fn check_route_free(tx: &mut Tx, api: &Api) -> Result<(), ApiError> {
    for other in tx.apis_with_base_path(&api.base_path).await? {
        if other.id == api.id {
            continue;
        }
        let overlap = api.hosts.is_empty()
            || other.hosts.is_empty()
            || api.hosts.iter().any(|h| other.hosts.contains(h));
        if overlap {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "base path {} is already served by another API on an overlapping host",
                    api.base_path
                ),
            ));
        }
    }
    Ok(())
}

/// Validates and imports an OpenAPI document into operations of `api`.
fn import(api: ApiId, doc: &serde_json::Value) -> Result<(OpenApiInfo, Vec<Operation>), ApiError> {
    let imported = tollgate_openapi::import(doc).map_err(|errors| {
        let n = errors.len();
        let mut e = ApiError::new(
            ErrorCode::InvalidOpenApi,
            format!(
                "the OpenAPI document has {n} problem{}",
                if n == 1 { "" } else { "s" }
            ),
        );
        e.errors = errors;
        e
    })?;
    let ops = imported
        .operations
        .iter()
        .map(|o| Operation {
            api_id: api,
            operation_id: o.operation_id.clone(),
            method: o.method.clone(),
            path: o.path.clone(),
            summary: o.summary.clone(),
            deprecated: o.deprecated,
        })
        .collect::<Vec<_>>();
    let info = OpenApiInfo {
        openapi: imported.openapi,
        title: imported.title,
        version: imported.version,
        sha256: imported.sha256,
        operation_count: ops.len(),
    };
    Ok((info, ops))
}

/// Creates an API in `draft`, optionally importing its OpenAPI document.
#[utoipa::path(post, path = "/v1/apis", tag = "apis", request_body = CreateApi,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = Api, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn create_api(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreateApi>,
) -> Result<Response, ApiError> {
    caller.require(req.org_id, Action::ManageApis, "organization")?;
    check(req.validate())?;
    let now = st.now();
    let id = ApiId::new();
    let imported = req.openapi.as_ref().map(|d| import(id, d)).transpose()?;
    let mut tx = st.store.write().await?;
    let org = tx
        .get_org(req.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if !org.kind.provides() {
        return Err(ApiError::validation(vec![tollgate_core::FieldError {
            pointer: "/org_id".into(),
            detail: "is a consumer-only organization; make it a provider first".into(),
        }]));
    }
    if tx.get_api_by_slug(org.id, &req.slug).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the org already has an API with slug {:?}", req.slug),
        ));
    }
    let api = Api {
        id,
        org_id: org.id,
        slug: req.slug,
        name: req.name,
        version: req.version,
        description: req.description,
        base_path: req.base_path,
        hosts: req.hosts,
        upstreams: req.upstreams,
        sandbox_upstreams: req.sandbox_upstreams,
        mtls: req.mtls,
        public: req.public,
        status: ApiStatus::Draft,
        sunset: None,
        openapi: imported.as_ref().map(|(i, _)| i.clone()),
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    check_route_free(&mut tx, &api).await?;
    tx.insert_api(&api, None).await?;
    if let (Some(doc), Some((_, ops))) = (&req.openapi, &imported) {
        tx.replace_openapi(api.id, doc, ops).await?;
    }
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "api.create",
            target_type: "api",
            target_id: api.id.to_string(),
            org_id: Some(api.org_id),
            before: None,
            after: Some(&api),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::CREATED, api.revision, &api))
}

/// Loads an API the caller may read.
pub(crate) async fn visible_api(tx: &mut Tx, caller: &Caller, raw: &str) -> Result<Api, ApiError> {
    let id: ApiId = path_id(raw, "API")?;
    let api = tx
        .get_api(id)
        .await?
        .ok_or_else(|| ApiError::not_found("API"))?;
    if caller.sees(api.org_id) || api.status.in_catalog() {
        Ok(api)
    } else {
        Err(ApiError::not_found("API"))
    }
}

/// Reads an API.
#[utoipa::path(get, path = "/v1/apis/{api_id}", tag = "apis", params(("api_id" = String, Path)), responses((status = 200, body = Api, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
async fn get_api(
    State(st): St,
    caller: Caller,
    Path(api_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let api = visible_api(&mut tx, &caller, &api_id).await?;
    Ok(with_etag(StatusCode::OK, api.revision, &api))
}

/// Changes an API: fields, and lifecycle `draft → published → deprecated (with sunset)
/// → retired`. Routing changes are live on the gateway when this returns.
#[utoipa::path(patch, path = "/v1/apis/{api_id}", tag = "apis", request_body = UpdateApi,
    params(("api_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Api, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn update_api(
    State(st): St,
    caller: Caller,
    Path(api_id): Path<String>,
    if_match: IfMatch,
    ApiJson(req): ApiJson<UpdateApi>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_api(&mut tx, &caller, &api_id).await?;
    caller.require(before.org_id, Action::ManageApis, "API")?;
    check(req.validate())?;
    if_match.check(before.revision)?;
    let mut api = before.clone();
    if let Some(v) = req.name {
        api.name = v;
    }
    if let Some(v) = req.version {
        api.version = v;
    }
    if let Some(v) = req.description {
        api.description = v;
    }
    if let Some(v) = req.base_path {
        api.base_path = v;
    }
    if let Some(v) = req.hosts {
        api.hosts = v;
    }
    if let Some(v) = req.sandbox_upstreams {
        api.sandbox_upstreams = v;
    }
    if let Some(v) = req.mtls {
        api.mtls = v;
    }
    if let Some(v) = req.public {
        api.public = v;
    }
    if let Some(v) = req.upstreams {
        api.upstreams = v;
    }
    if let Some(to) = req.status {
        if !before.status.can_become(to) {
            return Err(ApiError::transition("API", before.status, to));
        }
        if to == ApiStatus::Published && api.openapi.is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidTransition,
                "import an OpenAPI document before publishing: the gateway routes only declared operations",
            ));
        }
        api.status = to;
        api.sunset = if to == ApiStatus::Deprecated {
            req.sunset
        } else {
            None
        };
    } else if req.sunset.is_some() {
        if api.status != ApiStatus::Deprecated {
            return Err(ApiError::validation(vec![tollgate_core::FieldError {
                pointer: "/sunset".into(),
                detail: "can only be set on a deprecated API".into(),
            }]));
        }
        api.sunset = req.sunset;
    }
    if api == before {
        return Ok(with_etag(StatusCode::OK, api.revision, &api));
    }
    if api.status != ApiStatus::Retired {
        check_route_free(&mut tx, &api).await?;
    }
    api.revision += 1;
    api.updated_at = st.now();
    tx.update_api(&api, before.revision).await?;
    let action = if api.status == before.status {
        "api.update"
    } else {
        "api.transition"
    };
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action,
            target_type: "api",
            target_id: api.id.to_string(),
            org_id: Some(api.org_id),
            before: Some(&before),
            after: Some(&api),
        },
    )
    .await?;
    let routed = before.status.in_catalog() || api.status.in_catalog();
    commit(&st, tx, routed).await?;
    Ok(with_etag(StatusCode::OK, api.revision, &api))
}

/// The API's imported OpenAPI document.
#[utoipa::path(get, path = "/v1/apis/{api_id}/openapi", tag = "apis", params(("api_id" = String, Path)),
    responses((status = 200, description = "The OpenAPI document as imported", body = Object), ReadErrors), security(("bearer" = [])))]
async fn get_openapi(
    State(st): St,
    caller: Caller,
    Path(api_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut tx = st.store.read().await?;
    let api = visible_api(&mut tx, &caller, &api_id).await?;
    tx.get_api_openapi(api.id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("OpenAPI document (none imported yet)"))
}

/// Imports (replaces) the API's OpenAPI 3.0/3.1 document and its operations. The body is
/// the document itself, as JSON.
#[utoipa::path(put, path = "/v1/apis/{api_id}/openapi", tag = "apis", request_body(content = Object, description = "An OpenAPI 3.0 or 3.1 document"),
    params(("api_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Api, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn put_openapi(
    State(st): St,
    caller: Caller,
    Path(api_id): Path<String>,
    if_match: IfMatch,
    ApiJson(doc): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_api(&mut tx, &caller, &api_id).await?;
    caller.require(before.org_id, Action::ManageApis, "API")?;
    if_match.check(before.revision)?;
    if before.status == ApiStatus::Retired {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            "a retired API cannot change",
        ));
    }
    let (info, ops) = import(before.id, &doc)?;
    if before
        .openapi
        .as_ref()
        .is_some_and(|i| i.sha256 == info.sha256)
    {
        return Ok(with_etag(StatusCode::OK, before.revision, &before));
    }
    let mut api = before.clone();
    api.openapi = Some(info);
    api.revision += 1;
    api.updated_at = st.now();
    tx.update_api(&api, before.revision).await?;
    tx.replace_openapi(api.id, &doc, &ops).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "api.import_openapi",
            target_type: "api",
            target_id: api.id.to_string(),
            org_id: Some(api.org_id),
            before: Some(&before),
            after: Some(&api),
        },
    )
    .await?;
    commit(&st, tx, api.status.in_catalog()).await?;
    Ok(with_etag(StatusCode::OK, api.revision, &api))
}

/// Lists the API's operations, from its OpenAPI document.
#[utoipa::path(get, path = "/v1/apis/{api_id}/operations", tag = "apis", params(("api_id" = String, Path)),
    responses((status = 200, body = Vec<Operation>), ReadErrors), security(("bearer" = [])))]
async fn list_operations(
    State(st): St,
    caller: Caller,
    Path(api_id): Path<String>,
) -> Result<Json<Vec<Operation>>, ApiError> {
    let mut tx = st.store.read().await?;
    let api = visible_api(&mut tx, &caller, &api_id).await?;
    Ok(Json(tx.list_operations(api.id).await?))
}
