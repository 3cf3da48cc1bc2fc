//! Term sheets: store (validated, content-addressed, immutable), list, show, render, diff,
//! export as ODRL, show the compiled policy, publish. Published sheets are readable by
//! every authenticated member (they are part of the catalog); drafts only by their org.

use super::{ReadErrors, WriteErrors};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, IfMatch, path_id};
use crate::ops::{Change, PageQuery, audit, commit, with_etag};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tollgate_core::model::*;
use tollgate_core::roles::Action;
use tollgate_core::{ErrorCode, FieldError, OrgId, TermsId};
use tollgate_store::{ApiFilter, PageParams, Scope, Tx};
use tollgate_terms::{KnownOperation, ValidatedSheet};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list_terms, create_terms))
        .routes(routes!(get_terms))
        .routes(routes!(render_terms))
        .routes(routes!(diff_terms))
        .routes(routes!(odrl_terms))
        .routes(routes!(policy_terms))
        .routes(routes!(publish_terms))
}

/// Converts a dotted field path (`grants[0].operations[1]`) into a JSON pointer
/// (`/grants/0/operations/1`) into the request's `document`.
fn pointer(prefix: &str, field: &str) -> String {
    let mut out = prefix.to_owned();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&tollgate_core::validate::pointer_token(name));
        }
        for idx in rest
            .split('[')
            .map(|s| s.trim_end_matches(']'))
            .filter(|s| !s.is_empty())
        {
            out.push('/');
            out.push_str(idx);
        }
    }
    out
}

fn invalid(errors: Vec<tollgate_terms::TermsError>) -> ApiError {
    let n = errors.len();
    let mut e = ApiError::new(
        ErrorCode::ValidationFailed,
        format!(
            "the term sheet has {n} problem{}",
            if n == 1 { "" } else { "s" }
        ),
    );
    e.errors = errors
        .into_iter()
        .map(|t| FieldError {
            pointer: pointer("/document", &t.field),
            detail: t.message,
        })
        .collect();
    e
}

/// Parses and validates a sheet document; with `ops`, also checks every granted operation
/// exists in the org's APIs.
pub(crate) fn validate_document(
    doc: &serde_json::Value,
    ops: Option<&[KnownOperation]>,
) -> Result<ValidatedSheet, ApiError> {
    let text = serde_json::to_string(doc).map_err(ApiError::internal)?;
    let loaded = tollgate_terms::parse_str(
        std::path::Path::new("document"),
        Some(tollgate_terms::Format::Json),
        &text,
    )
    .map_err(invalid)?;
    match ops {
        Some(ops) => loaded.validate_against(ops),
        None => loaded.validate(),
    }
    .map_err(invalid)
}

/// Every operation of every API of `org`, by API slug.
async fn org_operations(tx: &mut Tx, org: OrgId) -> Result<Vec<KnownOperation>, ApiError> {
    let apis = tx
        .list_apis(
            &Scope::Orgs(vec![org]),
            &ApiFilter {
                org_id: Some(org),
                status: None,
            },
            &PageParams {
                after: None,
                limit: 10_000,
            },
        )
        .await?
        .items;
    let mut out = Vec::new();
    for api in apis {
        for op in tx.list_operations(api.id).await? {
            out.push(KnownOperation {
                api: api.slug.clone(),
                operation_id: op.operation_id,
                method: op.method,
                path: op.path,
            });
        }
    }
    Ok(out)
}

/// A stored sheet, validated again (stored documents are canonical, so this cannot fail
/// unless the store was edited behind Tollgate's back).
pub(crate) fn revalidate(t: &TermSheet) -> Result<ValidatedSheet, ApiError> {
    let v = validate_document(&t.document, None).map_err(|e| {
        ApiError::internal(format!(
            "stored term sheet {} is invalid: {}",
            t.id, e.detail
        ))
    })?;
    if v.sha256() != t.sha256 {
        return Err(ApiError::internal(format!(
            "stored term sheet {} does not match its hash",
            t.id
        )));
    }
    Ok(v)
}

/// Filters of the term sheet list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TermsListQuery {
    /// Only sheets of this org.
    pub org_id: Option<OrgId>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists own term sheets and every published one.
#[utoipa::path(get, path = "/v1/terms", tag = "terms", params(TermsListQuery), responses((status = 200, body = Page<TermSheet>), ReadErrors), security(("bearer" = [])))]
async fn list_terms(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<TermsListQuery>,
) -> Result<Json<Page<TermSheet>>, ApiError> {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .params()?;
    let mut tx = st.store.read().await?;
    Ok(Json(tx.list_terms(&caller.scope(), q.org_id, &page).await?))
}

/// Stores a term sheet version as a draft. The sheet is validated (every granted
/// operation must exist in the org's APIs) and identified by its canonical SHA-256;
/// storing the same content again returns the existing version.
#[utoipa::path(post, path = "/v1/terms", tag = "terms", request_body = CreateTerms,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = TermSheet, headers(("ETag" = String))), (status = 200, body = TermSheet, description = "The same content was stored before"), WriteErrors), security(("bearer" = [])))]
async fn create_terms(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreateTerms>,
) -> Result<Response, ApiError> {
    caller.require(req.org_id, Action::ManagePlans, "organization")?;
    let mut tx = st.store.write().await?;
    let org = tx
        .get_org(req.org_id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if !org.kind.provides() {
        return Err(ApiError::validation(vec![FieldError {
            pointer: "/org_id".into(),
            detail: "is a consumer-only organization".into(),
        }]));
    }
    let ops = org_operations(&mut tx, org.id).await?;
    let v = validate_document(&req.document, Some(&ops))?;
    // Prices by reference: the org's stored price book of that hash and id.
    if let Some(r) = v.price_ref() {
        match tx.get_price_book(org.id, &r.sha256).await? {
            Some((id, _, _)) if id == r.id => {}
            Some((id, _, _)) => {
                return Err(ApiError::validation(vec![FieldError {
                    pointer: "/document/pricing/ref/id".into(),
                    detail: format!("the price book with this sha256 is {id:?}"),
                }]));
            }
            None => {
                return Err(ApiError::validation(vec![FieldError {
                    pointer: "/document/pricing/ref/sha256".into(),
                    detail: "no price book of the organization has this hash: store it first (POST /v1/orgs/{org_id}/price-books)".into(),
                }]));
            }
        }
    }
    if let Some(existing) = tx.get_terms_by_hash(org.id, v.sha256()).await? {
        return Ok(with_etag(StatusCode::OK, existing.revision, &existing));
    }
    let sheet = v.sheet();
    let version = v.version().to_string();
    if let Some(other) = tx.get_terms_by_version(org.id, &sheet.id, &version).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "{} v{version} already exists with other content (sha256 {}); a change is a new version",
                sheet.id, other.sha256
            ),
        ));
    }
    let t = TermSheet {
        id: TermsId::new(),
        org_id: org.id,
        sheet_id: sheet.id.clone(),
        version,
        sha256: v.sha256().to_owned(),
        status: TermsStatus::Draft,
        document: serde_json::to_value(sheet).map_err(ApiError::internal)?,
        created_at: st.now(),
        published_at: None,
        revision: 1,
    };
    tx.insert_terms(&t).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "terms.create",
            target_type: "terms",
            target_id: t.id.to_string(),
            org_id: Some(t.org_id),
            before: None,
            after: Some(&t),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::CREATED, t.revision, &t))
}

async fn visible_terms(tx: &mut Tx, caller: &Caller, raw: &str) -> Result<TermSheet, ApiError> {
    let id: TermsId = path_id(raw, "term sheet")?;
    tx.get_terms(id)
        .await?
        .filter(|t| caller.sees(t.org_id) || t.status == TermsStatus::Published)
        .ok_or_else(|| ApiError::not_found("term sheet"))
}

/// Reads a term sheet version.
#[utoipa::path(get, path = "/v1/terms/{terms_id}", tag = "terms", params(("terms_id" = String, Path)),
    responses((status = 200, body = TermSheet, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
async fn get_terms(
    State(st): St,
    caller: Caller,
    Path(terms_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let t = visible_terms(&mut tx, &caller, &terms_id).await?;
    Ok(with_etag(StatusCode::OK, t.revision, &t))
}

/// Rendering format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RenderQuery {
    /// `markdown` (default) or `html`.
    pub format: Option<String>,
}

/// The whole sheet in plain words: its sections, then every machine clause, as Markdown
/// or HTML.
#[utoipa::path(get, path = "/v1/terms/{terms_id}/rendered", tag = "terms", params(("terms_id" = String, Path), RenderQuery),
    responses((status = 200, description = "The rendered sheet", content(("text/markdown"), ("text/html"))), ReadErrors), security(("bearer" = [])))]
async fn render_terms(
    State(st): St,
    caller: Caller,
    Path(terms_id): Path<String>,
    ApiQuery(q): ApiQuery<RenderQuery>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let t = visible_terms(&mut tx, &caller, &terms_id).await?;
    let v = revalidate(&t)?;
    match q.format.as_deref().unwrap_or("markdown") {
        "markdown" | "md" => Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            tollgate_terms::render::markdown(&v),
        )
            .into_response()),
        "html" => Ok((
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            tollgate_terms::render::html(&v),
        )
            .into_response()),
        other => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("unknown format {other:?}: use markdown or html"),
        )),
    }
}

/// What changed between two versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct TermsDiff {
    pub from: TermsId,
    pub to: TermsId,
    /// Every changed clause with its classification.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<tollgate_terms::Change>,
    /// How many changes of each kind.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
}

/// The version to compare against.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The older version.
    pub from: TermsId,
}

/// Clause-by-clause changes from another version to this one, each classified as more
/// permissive, more restrictive, price up/down/changed, text only or neutral.
#[utoipa::path(get, path = "/v1/terms/{terms_id}/diff", tag = "terms", params(("terms_id" = String, Path), DiffQuery),
    responses((status = 200, body = TermsDiff), ReadErrors), security(("bearer" = [])))]
async fn diff_terms(
    State(st): St,
    caller: Caller,
    Path(terms_id): Path<String>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<TermsDiff>, ApiError> {
    let mut tx = st.store.read().await?;
    let new = visible_terms(&mut tx, &caller, &terms_id).await?;
    let old = visible_terms(&mut tx, &caller, &q.from.to_string()).await?;
    let changes = tollgate_terms::diff(&revalidate(&old)?, &revalidate(&new)?);
    let summary = tollgate_terms::diff::kinds(&changes)
        .into_iter()
        .map(|(k, n)| {
            (
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                serde_json::json!(n),
            )
        })
        .collect::<serde_json::Map<_, _>>();
    Ok(Json(TermsDiff {
        from: old.id,
        to: new.id,
        changes,
        summary: serde_json::Value::Object(summary),
    }))
}

/// The sheet as an ODRL 2.2 `Offer` (JSON-LD, context embedded).
#[utoipa::path(get, path = "/v1/terms/{terms_id}/odrl", tag = "terms", params(("terms_id" = String, Path)),
    responses((status = 200, description = "ODRL 2.2 Offer", content_type = "application/ld+json", body = Object), ReadErrors), security(("bearer" = [])))]
async fn odrl_terms(
    State(st): St,
    caller: Caller,
    Path(terms_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let t = visible_terms(&mut tx, &caller, &terms_id).await?;
    let v = revalidate(&t)?;
    let offer = tollgate_terms::odrl::offer(&v, &format!("urn:tollgate:org:{}", t.org_id));
    Ok(([(header::CONTENT_TYPE, "application/ld+json")], Json(offer)).into_response())
}

/// The Cedar policy the sheet compiles to (what the gateway enforces).
#[utoipa::path(get, path = "/v1/terms/{terms_id}/policy", tag = "terms", params(("terms_id" = String, Path)),
    responses((status = 200, description = "Cedar policies", content(("text/plain"))), ReadErrors), security(("bearer" = [])))]
async fn policy_terms(
    State(st): St,
    caller: Caller,
    Path(terms_id): Path<String>,
) -> Result<Response, ApiError> {
    let mut tx = st.store.read().await?;
    let t = visible_terms(&mut tx, &caller, &terms_id).await?;
    let v = revalidate(&t)?;
    let cedar = crate::policy::compile(&t, &v, &st.operator_policies())?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cedar.cedar_text().to_owned(),
    )
        .into_response())
}

/// Publishes a draft: it must compile to a valid Cedar policy; from then on it is
/// immutable and plans of the org may offer it.
#[utoipa::path(post, path = "/v1/terms/{terms_id}/publish", tag = "terms",
    params(("terms_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = TermSheet, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn publish_terms(
    State(st): St,
    caller: Caller,
    Path(terms_id): Path<String>,
    if_match: IfMatch,
) -> Result<Response, ApiError> {
    let mut tx = st.store.write().await?;
    let before = visible_terms(&mut tx, &caller, &terms_id).await?;
    caller.require(before.org_id, Action::ManagePlans, "term sheet")?;
    if_match.check(before.revision)?;
    if before.status == TermsStatus::Published {
        return Ok(with_etag(StatusCode::OK, before.revision, &before));
    }
    let v = revalidate(&before)?;
    // A sheet that does not compile is refused here, naming the clause.
    crate::policy::compile(&before, &v, &st.operator_policies())?;
    let now = st.now();
    tx.publish_terms(before.id, now, before.revision).await?;
    let after = TermSheet {
        status: TermsStatus::Published,
        published_at: Some(now),
        revision: before.revision + 1,
        ..before.clone()
    };
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "terms.publish",
            target_type: "terms",
            target_id: after.id.to_string(),
            org_id: Some(after.org_id),
            before: Some(&before),
            after: Some(&after),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::OK, after.revision, &after))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dotted_paths_become_pointers() {
        assert_eq!(
            super::pointer("/document", "grants[0].operations[1]"),
            "/document/grants/0/operations/1"
        );
        assert_eq!(
            super::pointer("/document", "limits.rate[2].requests"),
            "/document/limits/rate/2/requests"
        );
        assert_eq!(super::pointer("/document", ""), "/document");
        assert_eq!(super::pointer("/document", "a/b"), "/document/a~1b");
    }
}
