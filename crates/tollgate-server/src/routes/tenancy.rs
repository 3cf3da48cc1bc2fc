//! Organizations, their members, and personal API tokens.

use super::{ReadErrors, WriteErrors};
use crate::auth::{Caller, PERSONAL_TOKEN_PREFIX};
use crate::error::{ApiError, check};
use crate::extract::{ApiJson, ApiQuery, IfMatch, path_id};
use crate::ops::{Change, PageQuery, audit, commit, with_etag};
use crate::state::{AppState, generate_secret};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use tollgate_core::model::*;
use tollgate_core::roles::{Action, Role};
use tollgate_core::{ErrorCode, OrgId, TokenId, UserId};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type St = State<Arc<AppState>>;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(get_user, update_user))
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(get_org, update_org, delete_org))
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// The caller and their memberships.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
}

/// One org the caller belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Membership {
    pub org_id: OrgId,
    pub role: Role,
}

/// Who am I: the user behind the token and the orgs they belong to.
#[utoipa::path(get, path = "/v1/me", tag = "tenancy", responses((status = 200, body = Me), ReadErrors), security(("bearer" = [])))]
async fn me(caller: Caller) -> Json<Me> {
    let mut memberships: Vec<_> = caller
        .orgs
        .iter()
        .map(|(o, r)| Membership {
            org_id: *o,
            role: *r,
        })
        .collect();
    memberships.sort_by_key(|m| m.org_id);
    Json(Me {
        user: caller.user,
        memberships,
    })
}

/// Reads a user: yourself, or anyone for operators and marketplace auditors.
#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "tenancy", params(("user_id" = String, Path)), responses((status = 200, body = User), ReadErrors), security(("bearer" = [])))]
async fn get_user(
    State(st): St,
    caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<User>, ApiError> {
    let id: UserId = path_id(&user_id, "user")?;
    if id != caller.user.id && caller.marketplace_role().is_none() {
        return Err(ApiError::not_found("user"));
    }
    let mut tx = st.store.read().await?;
    Ok(Json(
        tx.get_user(id)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?,
    ))
}

/// Grants or removes a marketplace role (operator or marketplace auditor). Operators only;
/// the bootstrap operator keeps its role.
#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = "tenancy", request_body = UpdateUser, params(("user_id" = String, Path)),
    responses((status = 200, body = User), WriteErrors), security(("bearer" = [])))]
async fn update_user(
    State(st): St,
    caller: Caller,
    Path(user_id): Path<String>,
    ApiJson(req): ApiJson<UpdateUser>,
) -> Result<Json<User>, ApiError> {
    let id: UserId = path_id(&user_id, "user")?;
    match caller.marketplace_role() {
        Some(tollgate_core::roles::MarketplaceRole::Operator) => {}
        Some(_) => {
            return Err(ApiError::forbidden(
                "only operators grant marketplace roles",
            ));
        }
        None => return Err(ApiError::not_found("user")),
    }
    if id == st.operator.id {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the bootstrap operator keeps its role",
        ));
    }
    let mut tx = st.store.write().await?;
    let before = tx
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let after = User {
        marketplace_role: req.marketplace_role,
        ..before.clone()
    };
    if after != before {
        tx.set_marketplace_role(id, req.marketplace_role).await?;
        audit(
            &st,
            &mut tx,
            &caller,
            Change {
                action: "user.set_marketplace_role",
                target_type: "user",
                target_id: id.to_string(),
                org_id: None,
                before: Some(&before),
                after: Some(&after),
            },
        )
        .await?;
        commit(&st, tx, false).await?;
    }
    Ok(Json(after))
}

/// Lists the orgs the caller belongs to (every org, for operators and auditors).
#[utoipa::path(get, path = "/v1/orgs", tag = "tenancy", params(PageQuery), responses((status = 200, body = Page<Org>), ReadErrors), security(("bearer" = [])))]
async fn list_orgs(
    State(st): St,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Page<Org>>, ApiError> {
    let page = q.params()?;
    let mut tx = st.store.read().await?;
    Ok(Json(tx.list_orgs(&caller.scope(), &page).await?))
}

/// Creates an organization; a member who creates one becomes its owner (operators add
/// owners through the members route).
#[utoipa::path(post, path = "/v1/orgs", tag = "tenancy", request_body = CreateOrg,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for a retried request")),
    responses((status = 201, body = Org, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn create_org(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreateOrg>,
) -> Result<Response, ApiError> {
    check(req.validate())?;
    if caller.marketplace_role() == Some(tollgate_core::roles::MarketplaceRole::Auditor) {
        return Err(ApiError::forbidden(
            "marketplace auditors can read but not change objects",
        ));
    }
    let now = st.now();
    let org = Org {
        id: OrgId::new(),
        slug: req.slug,
        name: req.name,
        kind: req.kind,
        created_at: now,
        updated_at: now,
        revision: 1,
    };
    let mut tx = st.store.write().await?;
    if tx.get_org_by_slug(&org.slug).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("an org with slug {:?} already exists", org.slug),
        ));
    }
    tx.insert_org(&org).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "org.create",
            target_type: "org",
            target_id: org.id.to_string(),
            org_id: Some(org.id),
            before: None,
            after: Some(&org),
        },
    )
    .await?;
    // A member who creates an org owns it. Operators see every org already; they add
    // the owners through the members route instead of joining.
    if caller.marketplace_role().is_none() {
        let member = Member {
            org_id: org.id,
            user_id: caller.user.id,
            email: caller.user.email.clone(),
            name: caller.user.name.clone(),
            role: Role::Owner,
            created_at: now,
            revision: 1,
        };
        tx.insert_member(&member).await?;
        audit(
            &st,
            &mut tx,
            &caller,
            Change {
                action: "member.add",
                target_type: "member",
                target_id: format!("{}/{}", org.id, member.user_id),
                org_id: Some(org.id),
                before: None,
                after: Some(&member),
            },
        )
        .await?;
    }
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::CREATED, org.revision, &org))
}

async fn load_org(st: &AppState, caller: &Caller, raw: &str) -> Result<Org, ApiError> {
    let id: OrgId = path_id(raw, "organization")?;
    if !caller.sees(id) {
        return Err(ApiError::not_found("organization"));
    }
    let mut tx = st.store.read().await?;
    tx.get_org(id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

/// Reads an organization.
#[utoipa::path(get, path = "/v1/orgs/{org_id}", tag = "tenancy", params(("org_id" = String, Path)), responses((status = 200, body = Org, headers(("ETag" = String))), ReadErrors), security(("bearer" = [])))]
async fn get_org(
    State(st): St,
    caller: Caller,
    Path(org_id): Path<String>,
) -> Result<Response, ApiError> {
    let org = load_org(&st, &caller, &org_id).await?;
    Ok(with_etag(StatusCode::OK, org.revision, &org))
}

/// Changes an organization's name or kind.
#[utoipa::path(patch, path = "/v1/orgs/{org_id}", tag = "tenancy", request_body = UpdateOrg,
    params(("org_id" = String, Path), ("If-Match" = Option<String>, Header, description = "ETag of the version you read; 412 if it changed since")),
    responses((status = 200, body = Org, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn update_org(
    State(st): St,
    caller: Caller,
    Path(org_id): Path<String>,
    if_match: IfMatch,
    ApiJson(req): ApiJson<UpdateOrg>,
) -> Result<Response, ApiError> {
    let id: OrgId = path_id(&org_id, "organization")?;
    caller.require(id, Action::UpdateOrg, "organization")?;
    check(req.validate())?;
    let mut tx = st.store.write().await?;
    let before = tx
        .get_org(id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if_match.check(before.revision)?;
    let mut org = before.clone();
    if let Some(n) = req.name {
        org.name = n;
    }
    if let Some(k) = req.kind {
        org.kind = k;
    }
    if org == before {
        return Ok(with_etag(StatusCode::OK, org.revision, &org));
    }
    org.revision += 1;
    org.updated_at = st.now();
    tx.update_org(&org, before.revision).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "org.update",
            target_type: "org",
            target_id: id.to_string(),
            org_id: Some(id),
            before: Some(&before),
            after: Some(&org),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::OK, org.revision, &org))
}

/// Deletes an organization that owns no APIs, plans, apps or subscriptions.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}", tag = "tenancy",
    params(("org_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted"), WriteErrors), security(("bearer" = [])))]
async fn delete_org(
    State(st): St,
    caller: Caller,
    Path(org_id): Path<String>,
    if_match: IfMatch,
) -> Result<StatusCode, ApiError> {
    let id: OrgId = path_id(&org_id, "organization")?;
    caller.require(id, Action::DeleteOrg, "organization")?;
    let mut tx = st.store.write().await?;
    let before = tx
        .get_org(id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if_match.check(before.revision)?;
    if tx.org_object_count(id).await? > 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the org still owns APIs, plans, apps or subscriptions; retire and remove them first",
        ));
    }
    tx.delete_org(id).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "org.delete",
            target_type: "org",
            target_id: id.to_string(),
            org_id: Some(id),
            before: Some(&before),
            after: None,
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists an organization's members.
#[utoipa::path(get, path = "/v1/orgs/{org_id}/members", tag = "tenancy", params(("org_id" = String, Path)), responses((status = 200, body = Vec<Member>), ReadErrors), security(("bearer" = [])))]
async fn list_members(
    State(st): St,
    caller: Caller,
    Path(org_id): Path<String>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let id: OrgId = path_id(&org_id, "organization")?;
    caller.require(id, Action::Read, "organization")?;
    let mut tx = st.store.read().await?;
    tx.get_org(id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    Ok(Json(tx.list_members(id).await?))
}

/// A new membership; `initial_token` is present when the user was created by this call.
#[derive(Debug, Serialize, ToSchema)]
pub struct AddedMember {
    #[serde(flatten)]
    pub member: Member,
    /// The new user's first personal token: shown once, hand it over securely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_token: Option<CreatedToken>,
}

fn owner_guard(caller: &Caller, org: OrgId, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&Role::Owner)
        && !caller.is_operator()
        && caller.role_in(org) != Some(Role::Owner)
    {
        return Err(ApiError::forbidden(
            "only owners can grant or remove the owner role",
        ));
    }
    Ok(())
}

/// Adds a member by email; a user unknown to the marketplace is created.
#[utoipa::path(post, path = "/v1/orgs/{org_id}/members", tag = "tenancy", request_body = AddMember,
    params(("org_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = AddedMember), WriteErrors), security(("bearer" = [])))]
async fn add_member(
    State(st): St,
    caller: Caller,
    Path(org_id): Path<String>,
    ApiJson(req): ApiJson<AddMember>,
) -> Result<Response, ApiError> {
    let id: OrgId = path_id(&org_id, "organization")?;
    caller.require(id, Action::ManageMembers, "organization")?;
    check(req.validate())?;
    owner_guard(&caller, id, &[req.role])?;
    let email = req.email.trim().to_ascii_lowercase();
    let now = st.now();
    let mut tx = st.store.write().await?;
    tx.get_org(id)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let (user, initial_token) = match tx.get_user_by_email(&email).await? {
        Some(u) => (u, None),
        None => {
            let u = User {
                id: UserId::new(),
                email: email.clone(),
                name: req.name.clone().unwrap_or_else(|| email.clone()),
                marketplace_role: None,
                created_at: now,
            };
            tx.insert_user(&u).await?;
            let created = new_token(&st, &mut tx, u.id, "initial", 30).await?;
            (u, Some(created))
        }
    };
    if tx.get_member(id, user.id).await?.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("{email} is already a member"),
        ));
    }
    let member = Member {
        org_id: id,
        user_id: user.id,
        email: user.email,
        name: user.name,
        role: req.role,
        created_at: now,
        revision: 1,
    };
    tx.insert_member(&member).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "member.add",
            target_type: "member",
            target_id: format!("{id}/{}", member.user_id),
            org_id: Some(id),
            before: None,
            after: Some(&member),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok((
        StatusCode::CREATED,
        Json(AddedMember {
            member,
            initial_token,
        }),
    )
        .into_response())
}

/// Changes a member's role. An org always keeps at least one owner.
#[utoipa::path(patch, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "tenancy", request_body = UpdateMember,
    params(("org_id" = String, Path), ("user_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Member, headers(("ETag" = String))), WriteErrors), security(("bearer" = [])))]
async fn update_member(
    State(st): St,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
    if_match: IfMatch,
    ApiJson(req): ApiJson<UpdateMember>,
) -> Result<Response, ApiError> {
    let org: OrgId = path_id(&org_id, "organization")?;
    caller.require(org, Action::ManageMembers, "organization")?;
    let user: UserId = path_id(&user_id, "member")?;
    let mut tx = st.store.write().await?;
    let before = tx
        .get_member(org, user)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if_match.check(before.revision)?;
    owner_guard(&caller, org, &[before.role, req.role])?;
    if before.role == Role::Owner && req.role != Role::Owner && tx.owner_count(org).await? <= 1 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "an organization must keep at least one owner",
        ));
    }
    let mut m = before.clone();
    if m.role == req.role {
        return Ok(with_etag(StatusCode::OK, m.revision, &m));
    }
    m.role = req.role;
    m.revision += 1;
    tx.update_member_role(&m, before.revision).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "member.update",
            target_type: "member",
            target_id: format!("{org}/{user}"),
            org_id: Some(org),
            before: Some(&before),
            after: Some(&m),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(with_etag(StatusCode::OK, m.revision, &m))
}

/// Removes a member. An org always keeps at least one owner.
#[utoipa::path(delete, path = "/v1/orgs/{org_id}/members/{user_id}", tag = "tenancy",
    params(("org_id" = String, Path), ("user_id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Removed"), WriteErrors), security(("bearer" = [])))]
async fn remove_member(
    State(st): St,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
    if_match: IfMatch,
) -> Result<StatusCode, ApiError> {
    let org: OrgId = path_id(&org_id, "organization")?;
    caller.require(org, Action::ManageMembers, "organization")?;
    let user: UserId = path_id(&user_id, "member")?;
    let mut tx = st.store.write().await?;
    let before = tx
        .get_member(org, user)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    if_match.check(before.revision)?;
    owner_guard(&caller, org, &[before.role])?;
    if before.role == Role::Owner && tx.owner_count(org).await? <= 1 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "an organization must keep at least one owner",
        ));
    }
    tx.delete_member(org, user).await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "member.remove",
            target_type: "member",
            target_id: format!("{org}/{user}"),
            org_id: Some(org),
            before: Some(&before),
            after: None,
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Makes a personal token for `user` inside `tx` (no audit: callers audit).
pub(crate) async fn new_token(
    st: &AppState,
    tx: &mut tollgate_store::Tx,
    user: UserId,
    name: &str,
    days: u32,
) -> Result<CreatedToken, ApiError> {
    let secret = generate_secret(PERSONAL_TOKEN_PREFIX)?;
    let now = st.now();
    let token = Token {
        id: TokenId::new(),
        user_id: user,
        name: name.to_owned(),
        prefix: secret[..12].to_owned(),
        created_at: now,
        expires_at: now + time::Duration::days(i64::from(days)),
        revoked_at: None,
    };
    tx.insert_token(&token, &st.token_digest(&secret)).await?;
    Ok(CreatedToken { token, secret })
}

/// Lists the caller's personal tokens (never their secrets).
#[utoipa::path(get, path = "/v1/tokens", tag = "tenancy", responses((status = 200, body = Vec<Token>), ReadErrors), security(("bearer" = [])))]
async fn list_tokens(State(st): St, caller: Caller) -> Result<Json<Vec<Token>>, ApiError> {
    let mut tx = st.store.read().await?;
    Ok(Json(tx.list_tokens(caller.user.id).await?))
}

/// Creates a personal token for the caller. The secret is in this response only.
#[utoipa::path(post, path = "/v1/tokens", tag = "tenancy", request_body = CreateToken,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CreatedToken), WriteErrors), security(("bearer" = [])))]
async fn create_token(
    State(st): St,
    caller: Caller,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<Response, ApiError> {
    check(req.validate())?;
    let mut tx = st.store.write().await?;
    let created = new_token(
        &st,
        &mut tx,
        caller.user.id,
        &req.name,
        req.expires_in_days.unwrap_or(90),
    )
    .await?;
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "token.create",
            target_type: "token",
            target_id: created.token.id.to_string(),
            org_id: None,
            before: None,
            after: Some(&created.token),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes one of the caller's personal tokens, effective at once.
#[utoipa::path(delete, path = "/v1/tokens/{token_id}", tag = "tenancy", params(("token_id" = String, Path)),
    responses((status = 204, description = "Revoked"), WriteErrors), security(("bearer" = [])))]
async fn revoke_token(
    State(st): St,
    caller: Caller,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: TokenId = path_id(&token_id, "token")?;
    let mut tx = st.store.write().await?;
    let before = tx
        .get_token(id)
        .await?
        .filter(|t| t.user_id == caller.user.id)
        .ok_or_else(|| ApiError::not_found("token"))?;
    let now = st.now();
    tx.revoke_token(id, now).await?;
    let after = Token {
        revoked_at: Some(before.revoked_at.unwrap_or(now)),
        ..before.clone()
    };
    audit(
        &st,
        &mut tx,
        &caller,
        Change {
            action: "token.revoke",
            target_type: "token",
            target_id: id.to_string(),
            org_id: None,
            before: Some(&before),
            after: Some(&after),
        },
    )
    .await?;
    commit(&st, tx, false).await?;
    Ok(StatusCode::NO_CONTENT)
}
