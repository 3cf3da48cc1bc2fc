//! Who is calling, and what they may see and do.
//!
//! A caller presents `Authorization: Bearer <token>`: either the operator token made on
//! first start, or a member's personal API token (`tgp_…`). Tokens are never stored:
//! only an HMAC-SHA256 of them under a secret pepper, compared in constant time (the
//! database lookup is by that keyed hash, so timing reveals nothing about the secret).
//!
//! Tenant isolation lives here: [`Caller::require`] answers 404 for an org the caller is
//! not a member of — the same answer as for an object that does not exist — and 403 only
//! for a member whose role lacks the permission.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, header, request::Parts};
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_core::model::{Actor, User};
use tollgate_core::roles::{Action, MarketplaceRole, Role};
use tollgate_core::{ErrorCode, OrgId, TokenId};
use tollgate_store::Scope;

/// Prefix of personal API tokens, so secret scanners and people can recognise them.
pub const PERSONAL_TOKEN_PREFIX: &str = "tgp_";

/// An authenticated caller of the admin API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// The token used, if a personal token (none for the operator bootstrap token).
    pub token_id: Option<TokenId>,
    pub orgs: HashMap<OrgId, Role>,
    pub request_id: String,
}

impl Caller {
    /// The marketplace role, if any.
    pub fn marketplace_role(&self) -> Option<MarketplaceRole> {
        self.user.marketplace_role
    }

    /// Whether the caller is a marketplace operator.
    pub fn is_operator(&self) -> bool {
        self.marketplace_role() == Some(MarketplaceRole::Operator)
    }

    /// The orgs whose private objects the caller may read.
    pub fn scope(&self) -> Scope {
        if self.marketplace_role().is_some() {
            Scope::All
        } else {
            Scope::Orgs(self.orgs.keys().copied().collect())
        }
    }

    /// The orgs in which the caller may perform `action` (for audit reads).
    pub fn scope_for(&self, action: Action) -> Scope {
        match self.marketplace_role() {
            Some(r) if r.allows(action) => Scope::All,
            _ => Scope::Orgs(
                self.orgs
                    .iter()
                    .filter(|(_, r)| r.allows(action))
                    .map(|(o, _)| *o)
                    .collect(),
            ),
        }
    }

    /// Whether the caller sees the org's private objects.
    pub fn sees(&self, org: OrgId) -> bool {
        self.marketplace_role().is_some() || self.orgs.contains_key(&org)
    }

    /// The caller's role in `org`, if a member.
    pub fn role_in(&self, org: OrgId) -> Option<Role> {
        self.orgs.get(&org).copied()
    }

    /// Allows `action` in `org`, or answers 404 (not a member: the org's objects do not
    /// exist for this caller) or 403 (a member whose role does not permit it).
    pub fn require(&self, org: OrgId, action: Action, what: &str) -> Result<(), ApiError> {
        if let Some(r) = self.marketplace_role() {
            return if r.allows(action) {
                Ok(())
            } else {
                Err(ApiError::forbidden(
                    "marketplace auditors can read but not change objects",
                ))
            };
        }
        match self.orgs.get(&org) {
            None => Err(ApiError::not_found(what)),
            Some(role) if role.allows(action) => Ok(()),
            Some(role) => Err(ApiError::forbidden(format!(
                "the {} role cannot do this; ask an owner or admin of the organization",
                serde_json::to_value(role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ))),
        }
    }

    /// The actor recorded in the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user.id,
            email: self.user.email.clone(),
        }
    }
}

fn unauthenticated(detail: &str) -> ApiError {
    let mut e = ApiError::new(ErrorCode::Unauthenticated, detail);
    e.headers.push((
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tollgate-admin\""),
    ));
    e
}

/// The request id set by the request-id layer.
pub fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let raw = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthenticated("send `Authorization: Bearer <token>`"))?;
        let raw = raw
            .to_str()
            .map_err(|_| unauthenticated("the Authorization header is not valid text"))?;
        let (scheme, token) = raw
            .split_once(' ')
            .ok_or_else(|| unauthenticated("use the Bearer scheme"))?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(unauthenticated("use `Authorization: Bearer <token>`"));
        }
        let token = token.trim();
        let request_id = request_id(parts);
        let digest = state.token_digest(token);
        if state.is_operator_token(&digest) {
            return Ok(Caller {
                user: state.operator.clone(),
                token_id: None,
                orgs: HashMap::new(),
                request_id,
            });
        }
        if !token.starts_with(PERSONAL_TOKEN_PREFIX) {
            return Err(unauthenticated("the token is not valid"));
        }
        let mut tx = state.store.read().await?;
        let Some((t, user)) = tx.find_token(&digest).await? else {
            return Err(unauthenticated("the token is not valid"));
        };
        let now = state.clock.now();
        if t.revoked_at.is_some() {
            return Err(unauthenticated("the token was revoked"));
        }
        if t.expires_at <= now {
            return Err(unauthenticated("the token has expired; create a new one"));
        }
        let orgs = tx.memberships(user.id).await?.into_iter().collect();
        Ok(Caller {
            user,
            token_id: Some(t.id),
            orgs,
            request_id,
        })
    }
}
