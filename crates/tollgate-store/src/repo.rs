//! Repository methods on [`Tx`]: one function per query, the same SQL on both backends.
//!
//! Rows are read into private `*Row` structs of plain column types and converted into
//! domain types here, so callers never see SQL types. Enums are stored as their serde
//! names (`published`, `active`, …).

use crate::{Result, StoreError, Tx, on_tx};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, QueryBuilder};
use time::OffsetDateTime;
use tollgate_core::model::*;
use tollgate_core::roles::{MarketplaceRole, Role};
use tollgate_core::*;

fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("enums serialise as strings"),
    }
}

fn parse_enum<T: DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("unknown enum value {s:?}")))
}

fn parse_id<T: std::str::FromStr>(s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id {s:?}")))
}

/// Which orgs' objects a caller may see. Operators and marketplace auditors see all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Orgs(Vec<OrgId>),
}

/// Keyset pagination: items after `after` (an id, exclusive), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct PageParams {
    pub after: Option<String>,
    pub limit: i64,
}

/// Cuts one extra fetched row into a `next_cursor`.
fn paginate<T>(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit.max(1) as usize;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, next_cursor }
}

fn push_scope<DB: sqlx::Database>(qb: &mut QueryBuilder<DB>, column: &str, scope: &Scope)
where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    if let Scope::Orgs(orgs) = scope {
        if orgs.is_empty() {
            qb.push("1 = 0");
            return;
        }
        qb.push(column);
        qb.push(" IN (");
        let mut sep = qb.separated(", ");
        for o in orgs {
            sep.push_bind(o.to_string());
        }
        qb.push(")");
    } else {
        qb.push("1 = 1");
    }
}

// ------------------------------------------------------------------------ rows

#[derive(FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    marketplace_role: Option<String>,
    created_at: OffsetDateTime,
}

impl UserRow {
    fn into_user(self) -> Result<User> {
        Ok(User {
            id: parse_id(&self.id)?,
            email: self.email,
            name: self.name,
            marketplace_role: self
                .marketplace_role
                .as_deref()
                .map(parse_enum)
                .transpose()?,
            created_at: self.created_at,
        })
    }
}

#[derive(FromRow)]
struct TokenRow {
    id: String,
    user_id: String,
    name: String,
    prefix: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl TokenRow {
    fn into_token(self) -> Result<Token> {
        Ok(Token {
            id: parse_id(&self.id)?,
            user_id: parse_id(&self.user_id)?,
            name: self.name,
            prefix: self.prefix,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(FromRow)]
struct OrgRow {
    id: String,
    slug: String,
    name: String,
    kind: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revision: i64,
}

impl OrgRow {
    fn into_org(self) -> Result<Org> {
        Ok(Org {
            id: parse_id(&self.id)?,
            slug: self.slug,
            name: self.name,
            kind: parse_enum(&self.kind)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct MemberRow {
    org_id: String,
    user_id: String,
    email: String,
    name: String,
    role: String,
    created_at: OffsetDateTime,
    revision: i64,
}

impl MemberRow {
    fn into_member(self) -> Result<Member> {
        Ok(Member {
            org_id: parse_id(&self.org_id)?,
            user_id: parse_id(&self.user_id)?,
            email: self.email,
            name: self.name,
            role: parse_enum(&self.role)?,
            created_at: self.created_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct ApiRow {
    id: String,
    org_id: String,
    slug: String,
    name: String,
    version: String,
    description: String,
    base_path: String,
    hosts: Json<Vec<String>>,
    upstreams: Json<Vec<String>>,
    sandbox_upstreams: Json<Vec<String>>,
    mtls: String,
    public: bool,
    status: String,
    sunset: Option<OffsetDateTime>,
    openapi_info: Option<Json<OpenApiInfo>>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revision: i64,
}

const API_COLS: &str = "id, org_id, slug, name, version, description, base_path, hosts, upstreams, sandbox_upstreams, mtls, public, status, sunset, openapi_info, created_at, updated_at, revision";

impl ApiRow {
    fn into_api(self) -> Result<Api> {
        Ok(Api {
            id: parse_id(&self.id)?,
            org_id: parse_id(&self.org_id)?,
            slug: self.slug,
            name: self.name,
            version: self.version,
            description: self.description,
            base_path: self.base_path,
            hosts: self.hosts.0,
            upstreams: self.upstreams.0,
            sandbox_upstreams: self.sandbox_upstreams.0,
            mtls: parse_enum(&self.mtls)?,
            public: self.public,
            status: parse_enum(&self.status)?,
            sunset: self.sunset,
            openapi: self.openapi_info.map(|j| j.0),
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct OperationRow {
    api_id: String,
    operation_id: String,
    method: String,
    path: String,
    summary: String,
    deprecated: bool,
}

impl OperationRow {
    fn into_operation(self) -> Result<Operation> {
        Ok(Operation {
            api_id: parse_id(&self.api_id)?,
            operation_id: self.operation_id,
            method: self.method,
            path: self.path,
            summary: self.summary,
            deprecated: self.deprecated,
        })
    }
}

#[derive(FromRow)]
struct PlanRow {
    id: String,
    org_id: String,
    slug: String,
    name: String,
    description: String,
    visibility: String,
    approval_required: bool,
    status: String,
    terms_id: Option<String>,
    max_key_lifetime_days: Option<i64>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revision: i64,
}

const PLAN_COLS: &str = "id, org_id, slug, name, description, visibility, approval_required, status, terms_id, max_key_lifetime_days, created_at, updated_at, revision";

impl PlanRow {
    fn into_plan(self, apis: Vec<PlanApi>) -> Result<Plan> {
        Ok(Plan {
            id: parse_id(&self.id)?,
            org_id: parse_id(&self.org_id)?,
            slug: self.slug,
            name: self.name,
            description: self.description,
            visibility: parse_enum(&self.visibility)?,
            approval_required: self.approval_required,
            status: parse_enum(&self.status)?,
            apis,
            terms_id: self.terms_id.as_deref().map(parse_id).transpose()?,
            max_key_lifetime_days: self
                .max_key_lifetime_days
                .map(|d| {
                    u32::try_from(d)
                        .map_err(|_| StoreError::Corrupt(format!("bad key lifetime {d}")))
                })
                .transpose()?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct PlanApiRow {
    plan_id: String,
    api_id: String,
    operations: Option<Json<Vec<String>>>,
}

#[derive(FromRow)]
struct AppRow {
    id: String,
    org_id: String,
    slug: String,
    name: String,
    description: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revision: i64,
}

impl AppRow {
    fn into_app(self) -> Result<App> {
        Ok(App {
            id: parse_id(&self.id)?,
            org_id: parse_id(&self.org_id)?,
            slug: self.slug,
            name: self.name,
            description: self.description,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct SubscriptionRow {
    id: String,
    app_id: String,
    consumer_org_id: String,
    plan_id: String,
    provider_org_id: String,
    state: String,
    mode: String,
    terms_sha256: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revision: i64,
}

impl SubscriptionRow {
    fn into_subscription(self, history: Vec<SubscriptionTransition>) -> Result<Subscription> {
        Ok(Subscription {
            id: parse_id(&self.id)?,
            app_id: parse_id(&self.app_id)?,
            consumer_org_id: parse_id(&self.consumer_org_id)?,
            plan_id: parse_id(&self.plan_id)?,
            provider_org_id: parse_id(&self.provider_org_id)?,
            state: parse_enum(&self.state)?,
            mode: parse_enum(&self.mode)?,
            terms_sha256: self.terms_sha256,
            history,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision,
        })
    }
}

const SUB_COLS: &str = "id, app_id, consumer_org_id, plan_id, provider_org_id, state, mode, terms_sha256, created_at, updated_at, revision";

#[derive(FromRow)]
struct TransitionRow {
    subscription_id: String,
    from_state: Option<String>,
    to_state: String,
    actor: String,
    reason: String,
    at: OffsetDateTime,
}

impl TransitionRow {
    fn into_transition(self) -> Result<SubscriptionTransition> {
        Ok(SubscriptionTransition {
            from: self.from_state.as_deref().map(parse_enum).transpose()?,
            to: parse_enum(&self.to_state)?,
            actor: parse_id(&self.actor)?,
            reason: self.reason,
            at: self.at,
        })
    }
}

#[derive(FromRow)]
struct AuditRow {
    seq: i64,
    id: String,
    at: OffsetDateTime,
    actor_user_id: String,
    actor_email: String,
    org_id: Option<String>,
    action: String,
    target_type: String,
    target_id: String,
    request_id: String,
    before_sha256: Option<String>,
    after_sha256: Option<String>,
    prev_hash: String,
    hash: String,
}

impl AuditRow {
    fn into_entry(self) -> Result<AuditEntry> {
        Ok(AuditEntry {
            id: parse_id(&self.id)?,
            seq: self.seq,
            at: self.at,
            actor: Actor {
                user_id: parse_id(&self.actor_user_id)?,
                email: self.actor_email,
            },
            org_id: self.org_id.as_deref().map(parse_id).transpose()?,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            request_id: self.request_id,
            before_sha256: self.before_sha256,
            after_sha256: self.after_sha256,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

#[derive(FromRow)]
struct TermsRow {
    id: String,
    org_id: String,
    sheet_id: String,
    version: String,
    sha256: String,
    status: String,
    document: Json<serde_json::Value>,
    created_at: OffsetDateTime,
    published_at: Option<OffsetDateTime>,
    revision: i64,
}

impl TermsRow {
    fn into_terms(self) -> Result<TermSheet> {
        Ok(TermSheet {
            id: parse_id(&self.id)?,
            org_id: parse_id(&self.org_id)?,
            sheet_id: self.sheet_id,
            version: self.version,
            sha256: self.sha256,
            status: parse_enum(&self.status)?,
            document: self.document.0,
            created_at: self.created_at,
            published_at: self.published_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct NoticeRow {
    id: String,
    subscription_id: String,
    consumer_org_id: String,
    provider_org_id: String,
    plan_id: String,
    from_sha256: Option<String>,
    to_terms_id: String,
    to_sha256: String,
    on_expiry: String,
    created_at: OffsetDateTime,
    ends_at: OffsetDateTime,
    resolved_at: Option<OffsetDateTime>,
    resolution: Option<String>,
}

impl NoticeRow {
    fn into_notice(self) -> Result<Notice> {
        Ok(Notice {
            id: parse_id(&self.id)?,
            subscription_id: parse_id(&self.subscription_id)?,
            consumer_org_id: parse_id(&self.consumer_org_id)?,
            provider_org_id: parse_id(&self.provider_org_id)?,
            plan_id: parse_id(&self.plan_id)?,
            from_sha256: self.from_sha256,
            to_terms_id: parse_id(&self.to_terms_id)?,
            to_sha256: self.to_sha256,
            on_expiry: parse_enum(&self.on_expiry)?,
            created_at: self.created_at,
            ends_at: self.ends_at,
            resolved_at: self.resolved_at,
            resolution: self.resolution.as_deref().map(parse_enum).transpose()?,
        })
    }
}

#[derive(FromRow)]
struct ApiKeyRow {
    id: String,
    app_id: String,
    org_id: String,
    mode: String,
    name: String,
    prefix: String,
    scopes: Json<Vec<String>>,
    operations: Option<Json<Vec<String>>>,
    ip_allowlist: Json<Vec<String>>,
    created_by: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    revision: i64,
}

const KEY_COLS: &str = "id, app_id, org_id, mode, name, prefix, scopes, operations, ip_allowlist, created_by, created_at, expires_at, revoked_at, revision";

impl ApiKeyRow {
    fn into_key(self) -> Result<ApiKeyInfo> {
        Ok(ApiKeyInfo {
            id: parse_id(&self.id)?,
            app_id: parse_id(&self.app_id)?,
            org_id: parse_id(&self.org_id)?,
            mode: parse_enum(&self.mode)?,
            name: self.name,
            prefix: self.prefix,
            scopes: self.scopes.0,
            operations: self.operations.map(|j| j.0),
            ip_allowlist: self.ip_allowlist.0,
            created_by: parse_id(&self.created_by)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct OAuthClientRow {
    id: String,
    app_id: String,
    org_id: String,
    mode: String,
    name: String,
    auth_method: String,
    scopes: Json<Vec<String>>,
    jwks: Option<Json<serde_json::Value>>,
    tls_subject: Option<String>,
    tls_thumbprint: Option<String>,
    token_lifetime_seconds: i64,
    created_by: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    revision: i64,
}

const CLIENT_COLS: &str = "id, app_id, org_id, mode, name, auth_method, scopes, jwks, tls_subject, tls_thumbprint, token_lifetime_seconds, created_by, created_at, revoked_at, revision";

impl OAuthClientRow {
    fn into_client(self) -> Result<OAuthClient> {
        Ok(OAuthClient {
            id: parse_id(&self.id)?,
            app_id: parse_id(&self.app_id)?,
            org_id: parse_id(&self.org_id)?,
            mode: parse_enum(&self.mode)?,
            name: self.name,
            auth_method: parse_enum(&self.auth_method)?,
            scopes: self.scopes.0,
            jwks: self.jwks.map(|j| j.0),
            tls_subject: self.tls_subject,
            tls_thumbprint: self.tls_thumbprint,
            token_lifetime_seconds: u32::try_from(self.token_lifetime_seconds).map_err(|_| {
                StoreError::Corrupt(format!(
                    "bad token lifetime {}",
                    self.token_lifetime_seconds
                ))
            })?,
            created_by: parse_id(&self.created_by)?,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            revision: self.revision,
        })
    }
}

#[derive(FromRow)]
struct SigningKeyRow {
    id: String,
    app_id: String,
    org_id: String,
    mode: String,
    name: String,
    alg: String,
    public_key_pem: Option<String>,
    scopes: Json<Vec<String>>,
    created_by: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    revision: i64,
}

/// The columns a [`SigningKeyInfo`] is read from. `secret_sealed` is deliberately not
/// among them: only [`Tx::active_signing_keys_with_secrets`] reads it.
const SIGNING_COLS: &str = "id, app_id, org_id, mode, name, alg, public_key_pem, scopes, created_by, created_at, expires_at, revoked_at, revision";

impl SigningKeyRow {
    fn into_key(self) -> Result<SigningKeyInfo> {
        Ok(SigningKeyInfo {
            id: parse_id(&self.id)?,
            app_id: parse_id(&self.app_id)?,
            org_id: parse_id(&self.org_id)?,
            mode: parse_enum(&self.mode)?,
            name: self.name,
            alg: self.alg,
            public_key_pem: self.public_key_pem,
            scopes: self.scopes.0,
            created_by: parse_id(&self.created_by)?,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            revision: self.revision,
        })
    }
}

/// A stored idempotent response.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct IdempotencyRecord {
    pub method: String,
    pub path: String,
    pub request_sha256: String,
    /// `None` while the first request is still being processed.
    pub status_code: Option<i64>,
    pub response_headers: Option<Json<Vec<(String, String)>>>,
    pub response_body: Option<String>,
    pub created_at: OffsetDateTime,
}

/// A new audit entry before the log assigns its position and hash.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub org_id: Option<OrgId>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub request_id: String,
    pub before_sha256: Option<String>,
    pub after_sha256: Option<String>,
}

/// Filters of `GET /v1/apis`.
#[derive(Debug, Clone, Default)]
pub struct ApiFilter {
    pub org_id: Option<OrgId>,
    pub status: Option<ApiStatus>,
}

/// Filters of `GET /v1/plans`.
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    pub org_id: Option<OrgId>,
    pub status: Option<PlanStatus>,
    pub api_id: Option<ApiId>,
}

/// Filters of `GET /v1/subscriptions`.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    pub app_id: Option<AppId>,
    pub plan_id: Option<PlanId>,
    pub state: Option<SubscriptionState>,
}

/// A stored keyring record: its id, purpose, state and the opaque serialised record.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    pub id: String,
    pub purpose: String,
    pub state: String,
    pub record: serde_json::Value,
}

// ------------------------------------------------------------------------ queries

impl Tx {
    // ---------------------------------------------------------------- meta

    /// A marketplace-wide setting.
    pub async fn get_meta(&mut self, key: &str) -> Result<Option<String>> {
        let v: Option<(String,)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT value FROM meta WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(c)
        .await?);
        Ok(v.map(|r| r.0))
    }

    /// Sets a marketplace-wide setting.
    pub async fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
        .bind(key)
        .bind(value)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    // ---------------------------------------------------------------- users and tokens

    pub async fn insert_user(&mut self, u: &User) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO users (id, email, name, marketplace_role, created_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(u.id.to_string())
        .bind(&u.email)
        .bind(&u.name)
        .bind(u.marketplace_role.as_ref().map(enum_str))
        .bind(u.created_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_user(&mut self, id: UserId) -> Result<Option<User>> {
        let r: Option<UserRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM users WHERE id = $1"
        )
        .bind(id.to_string())
        .fetch_optional(c)
        .await?);
        r.map(UserRow::into_user).transpose()
    }

    /// Looks a user up by email (stored lowercased).
    pub async fn get_user_by_email(&mut self, email: &str) -> Result<Option<User>> {
        let r: Option<UserRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM users WHERE email = $1"
        )
        .bind(email)
        .fetch_optional(c)
        .await?);
        r.map(UserRow::into_user).transpose()
    }

    /// Sets or clears a user's marketplace role.
    pub async fn set_marketplace_role(
        &mut self,
        id: UserId,
        role: Option<MarketplaceRole>,
    ) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE users SET marketplace_role = $2 WHERE id = $1"
        )
        .bind(id.to_string())
        .bind(role.as_ref().map(enum_str))
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Every user holding `role`.
    pub async fn users_with_marketplace_role(
        &mut self,
        role: MarketplaceRole,
    ) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM users WHERE marketplace_role = $1 ORDER BY id"
        )
        .bind(enum_str(&role))
        .fetch_all(c)
        .await?);
        rows.into_iter().map(UserRow::into_user).collect()
    }

    pub async fn insert_token(&mut self, t: &Token, secret_hash: &str) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO tokens (id, user_id, name, prefix, secret_hash, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(t.id.to_string())
        .bind(t.user_id.to_string())
        .bind(&t.name)
        .bind(&t.prefix)
        .bind(secret_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.revoked_at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The token whose keyed secret hash is `secret_hash`, with its user. Expiry and
    /// revocation are for the caller to judge (they depend on `now`).
    pub async fn find_token(&mut self, secret_hash: &str) -> Result<Option<(Token, User)>> {
        let t: Option<TokenRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT id, user_id, name, prefix, created_at, expires_at, revoked_at FROM tokens WHERE secret_hash = $1"
        )
        .bind(secret_hash)
        .fetch_optional(c)
        .await?
        });
        let Some(t) = t else { return Ok(None) };
        let token = t.into_token()?;
        let user = self
            .get_user(token.user_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("token without user".into()))?;
        Ok(Some((token, user)))
    }

    pub async fn list_tokens(&mut self, user: UserId) -> Result<Vec<Token>> {
        let rows: Vec<TokenRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT id, user_id, name, prefix, created_at, expires_at, revoked_at FROM tokens WHERE user_id = $1 ORDER BY id"
        )
        .bind(user.to_string())
        .fetch_all(c)
        .await?
        });
        rows.into_iter().map(TokenRow::into_token).collect()
    }

    pub async fn get_token(&mut self, id: TokenId) -> Result<Option<Token>> {
        let r: Option<TokenRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT id, user_id, name, prefix, created_at, expires_at, revoked_at FROM tokens WHERE id = $1"
        )
        .bind(id.to_string())
        .fetch_optional(c)
        .await?
        });
        r.map(TokenRow::into_token).transpose()
    }

    pub async fn revoke_token(&mut self, id: TokenId, at: OffsetDateTime) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        )
        .bind(id.to_string())
        .bind(at)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    // ---------------------------------------------------------------- orgs and members

    pub async fn insert_org(&mut self, o: &Org) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO orgs (id, slug, name, kind, created_at, updated_at, revision) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(o.id.to_string())
        .bind(&o.slug)
        .bind(&o.name)
        .bind(enum_str(&o.kind))
        .bind(o.created_at)
        .bind(o.updated_at)
        .bind(o.revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_org(&mut self, id: OrgId) -> Result<Option<Org>> {
        let r: Option<OrgRow> =
            on_tx!(self, |c| sqlx::query_as("SELECT * FROM orgs WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(c)
                .await?);
        r.map(OrgRow::into_org).transpose()
    }

    pub async fn get_org_by_slug(&mut self, slug: &str) -> Result<Option<Org>> {
        let r: Option<OrgRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM orgs WHERE slug = $1"
        )
        .bind(slug)
        .fetch_optional(c)
        .await?);
        r.map(OrgRow::into_org).transpose()
    }

    pub async fn list_orgs(&mut self, scope: &Scope, page: &PageParams) -> Result<Page<Org>> {
        let rows: Vec<OrgRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new("SELECT * FROM orgs WHERE ");
            push_scope(&mut qb, "id", scope);
            if let Some(a) = &page.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = rows
            .into_iter()
            .map(OrgRow::into_org)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |o| o.id.to_string()))
    }

    /// Writes `o` if its stored revision is still `expected_revision`.
    pub async fn update_org(&mut self, o: &Org, expected_revision: i64) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE orgs SET name = $2, kind = $3, updated_at = $4, revision = $5 WHERE id = $1 AND revision = $6"
        )
        .bind(o.id.to_string())
        .bind(&o.name)
        .bind(enum_str(&o.kind))
        .bind(o.updated_at)
        .bind(o.revision)
        .bind(expected_revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale)
        }
    }

    /// Deletes an org and its memberships. The caller checks it owns nothing else.
    pub async fn delete_org(&mut self, id: OrgId) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query("DELETE FROM members WHERE org_id = $1")
                .bind(id.to_string())
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM orgs WHERE id = $1")
                .bind(id.to_string())
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// How many APIs, plans, apps and subscriptions reference the org.
    pub async fn org_object_count(&mut self, id: OrgId) -> Result<i64> {
        let n: (i64,) = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT (SELECT count(*) FROM apis WHERE org_id = $1) + (SELECT count(*) FROM plans WHERE org_id = $1)
                  + (SELECT count(*) FROM apps WHERE org_id = $1)
                  + (SELECT count(*) FROM subscriptions WHERE consumer_org_id = $1 OR provider_org_id = $1)"
        )
        .bind(id.to_string())
        .fetch_one(c)
        .await?
        });
        Ok(n.0)
    }

    pub async fn insert_member(&mut self, m: &Member) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO members (org_id, user_id, role, created_at, revision) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(m.org_id.to_string())
        .bind(m.user_id.to_string())
        .bind(enum_str(&m.role))
        .bind(m.created_at)
        .bind(m.revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_member(&mut self, org: OrgId, user: UserId) -> Result<Option<Member>> {
        let r: Option<MemberRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT m.org_id, m.user_id, u.email, u.name, m.role, m.created_at, m.revision
             FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2"
        )
        .bind(org.to_string())
        .bind(user.to_string())
        .fetch_optional(c)
        .await?
        });
        r.map(MemberRow::into_member).transpose()
    }

    pub async fn list_members(&mut self, org: OrgId) -> Result<Vec<Member>> {
        let rows: Vec<MemberRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT m.org_id, m.user_id, u.email, u.name, m.role, m.created_at, m.revision
             FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY m.user_id"
        )
        .bind(org.to_string())
        .fetch_all(c)
        .await?
        });
        rows.into_iter().map(MemberRow::into_member).collect()
    }

    /// The orgs a user belongs to, with the role in each.
    pub async fn memberships(&mut self, user: UserId) -> Result<Vec<(OrgId, Role)>> {
        let rows: Vec<(String, String)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT org_id, role FROM members WHERE user_id = $1 ORDER BY org_id"
        )
        .bind(user.to_string())
        .fetch_all(c)
        .await?);
        rows.into_iter()
            .map(|(o, r)| Ok((parse_id(&o)?, parse_enum(&r)?)))
            .collect()
    }

    pub async fn update_member_role(&mut self, m: &Member, expected_revision: i64) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE members SET role = $3, revision = $4 WHERE org_id = $1 AND user_id = $2 AND revision = $5"
        )
        .bind(m.org_id.to_string())
        .bind(m.user_id.to_string())
        .bind(enum_str(&m.role))
        .bind(m.revision)
        .bind(expected_revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale)
        }
    }

    pub async fn delete_member(&mut self, org: OrgId, user: UserId) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM members WHERE org_id = $1 AND user_id = $2"
        )
        .bind(org.to_string())
        .bind(user.to_string())
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Number of owners of an org (an org never loses its last owner).
    pub async fn owner_count(&mut self, org: OrgId) -> Result<i64> {
        let n: (i64,) = on_tx!(self, |c| sqlx::query_as(
            "SELECT count(*) FROM members WHERE org_id = $1 AND role = 'owner'"
        )
        .bind(org.to_string())
        .fetch_one(c)
        .await?);
        Ok(n.0)
    }

    // ---------------------------------------------------------------- APIs

    pub async fn insert_api(
        &mut self,
        a: &Api,
        openapi_doc: Option<&serde_json::Value>,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO apis (id, org_id, slug, name, version, description, base_path, hosts, upstreams, status, sunset,
                               openapi_doc, openapi_info, created_at, updated_at, revision, sandbox_upstreams, mtls, public)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        )
        .bind(a.id.to_string())
        .bind(a.org_id.to_string())
        .bind(&a.slug)
        .bind(&a.name)
        .bind(&a.version)
        .bind(&a.description)
        .bind(&a.base_path)
        .bind(Json(&a.hosts))
        .bind(Json(&a.upstreams))
        .bind(enum_str(&a.status))
        .bind(a.sunset)
        .bind(openapi_doc.map(Json))
        .bind(a.openapi.as_ref().map(Json))
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.revision)
        .bind(Json(&a.sandbox_upstreams))
        .bind(enum_str(&a.mtls))
        .bind(a.public)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_api(&mut self, id: ApiId) -> Result<Option<Api>> {
        let sql = format!("SELECT {API_COLS} FROM apis WHERE id = $1");
        let r: Option<ApiRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(c)
            .await?);
        r.map(ApiRow::into_api).transpose()
    }

    pub async fn get_api_by_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<Api>> {
        let sql = format!("SELECT {API_COLS} FROM apis WHERE org_id = $1 AND slug = $2");
        let r: Option<ApiRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(org.to_string())
            .bind(slug)
            .fetch_optional(c)
            .await?);
        r.map(ApiRow::into_api).transpose()
    }

    /// The stored OpenAPI document of an API.
    pub async fn get_api_openapi(&mut self, id: ApiId) -> Result<Option<serde_json::Value>> {
        let r: Option<(Option<Json<serde_json::Value>>,)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT openapi_doc FROM apis WHERE id = $1"
        )
        .bind(id.to_string())
        .fetch_optional(c)
        .await?);
        Ok(r.and_then(|r| r.0).map(|j| j.0))
    }

    /// Non-retired APIs with this base path (for the uniqueness check).
    pub async fn apis_with_base_path(&mut self, base_path: &str) -> Result<Vec<Api>> {
        let sql = format!(
            "SELECT {API_COLS} FROM apis WHERE base_path = $1 AND status <> 'retired' ORDER BY id"
        );
        let rows: Vec<ApiRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(base_path)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(ApiRow::into_api).collect()
    }

    /// APIs visible in `scope`: an org's own APIs, plus every published or deprecated API
    /// (the catalog).
    pub async fn list_apis(
        &mut self,
        scope: &Scope,
        filter: &ApiFilter,
        page: &PageParams,
    ) -> Result<Page<Api>> {
        let rows: Vec<ApiRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(format!("SELECT {API_COLS} FROM apis WHERE ("));
            push_scope(&mut qb, "org_id", scope);
            qb.push(" OR status IN ('published', 'deprecated'))");
            if let Some(o) = filter.org_id {
                qb.push(" AND org_id = ").push_bind(o.to_string());
            }
            if let Some(s) = filter.status {
                qb.push(" AND status = ").push_bind(enum_str(&s));
            }
            if let Some(a) = &page.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = rows
            .into_iter()
            .map(ApiRow::into_api)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |a| a.id.to_string()))
    }

    /// Every API the gateway routes (published or deprecated), for the snapshot.
    pub async fn routable_apis(&mut self) -> Result<Vec<(Api, Vec<Operation>)>> {
        let sql = format!(
            "SELECT {API_COLS} FROM apis WHERE status IN ('published', 'deprecated') ORDER BY id"
        );
        let rows: Vec<ApiRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(c)
            .await?);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let api = r.into_api()?;
            let ops = self.list_operations(api.id).await?;
            out.push((api, ops));
        }
        Ok(out)
    }

    pub async fn update_api(&mut self, a: &Api, expected_revision: i64) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE apis SET name = $2, version = $3, description = $4, base_path = $5, hosts = $6, upstreams = $7,
                             status = $8, sunset = $9, openapi_info = $10, updated_at = $11, revision = $12,
                             sandbox_upstreams = $14, mtls = $15, public = $16
             WHERE id = $1 AND revision = $13"
        )
        .bind(a.id.to_string())
        .bind(&a.name)
        .bind(&a.version)
        .bind(&a.description)
        .bind(&a.base_path)
        .bind(Json(&a.hosts))
        .bind(Json(&a.upstreams))
        .bind(enum_str(&a.status))
        .bind(a.sunset)
        .bind(a.openapi.as_ref().map(Json))
        .bind(a.updated_at)
        .bind(a.revision)
        .bind(expected_revision)
        .bind(Json(&a.sandbox_upstreams))
        .bind(enum_str(&a.mtls))
        .bind(a.public)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale)
        }
    }

    /// Replaces an API's OpenAPI document and its operations.
    pub async fn replace_openapi(
        &mut self,
        api: ApiId,
        doc: &serde_json::Value,
        ops: &[Operation],
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE apis SET openapi_doc = $2 WHERE id = $1")
                .bind(api.to_string())
                .bind(Json(doc))
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM operations WHERE api_id = $1")
                .bind(api.to_string())
                .execute(&mut *c)
                .await?;
            for (i, op) in ops.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO operations (api_id, operation_id, method, path, summary, deprecated, position)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(api.to_string())
                .bind(&op.operation_id)
                .bind(&op.method)
                .bind(&op.path)
                .bind(&op.summary)
                .bind(op.deprecated)
                .bind(i as i64)
                .execute(&mut *c)
                .await?;
            }
        });
        Ok(())
    }

    pub async fn list_operations(&mut self, api: ApiId) -> Result<Vec<Operation>> {
        let rows: Vec<OperationRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT api_id, operation_id, method, path, summary, deprecated FROM operations WHERE api_id = $1 ORDER BY position"
        )
        .bind(api.to_string())
        .fetch_all(c)
        .await?
        });
        rows.into_iter().map(OperationRow::into_operation).collect()
    }

    // ---------------------------------------------------------------- plans

    async fn write_plan_apis(&mut self, plan: &Plan) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query("DELETE FROM plan_apis WHERE plan_id = $1")
                .bind(plan.id.to_string())
                .execute(&mut *c)
                .await?;
            for (i, pa) in plan.apis.iter().enumerate() {
                sqlx::query("INSERT INTO plan_apis (plan_id, api_id, operations, position) VALUES ($1, $2, $3, $4)")
                    .bind(plan.id.to_string())
                    .bind(pa.api_id.to_string())
                    .bind(pa.operations.as_ref().map(Json))
                    .bind(i as i64)
                    .execute(&mut *c)
                    .await?;
            }
        });
        Ok(())
    }

    async fn plan_apis_of(&mut self, plan_ids: &[String]) -> Result<Vec<PlanApiRow>> {
        if plan_ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(
                "SELECT plan_id, api_id, operations FROM plan_apis WHERE plan_id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in plan_ids {
                sep.push_bind(id.clone());
            }
            qb.push(") ORDER BY plan_id, position");
            qb.build_query_as().fetch_all(c).await?
        }))
    }

    async fn assemble_plans(&mut self, rows: Vec<PlanRow>) -> Result<Vec<Plan>> {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut apis = self.plan_apis_of(&ids).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mine: Vec<PlanApi> = apis
                .iter()
                .filter(|a| a.plan_id == r.id)
                .map(|a| {
                    Ok(PlanApi {
                        api_id: parse_id(&a.api_id)?,
                        operations: a.operations.as_ref().map(|j| j.0.clone()),
                    })
                })
                .collect::<Result<_>>()?;
            apis.retain(|a| a.plan_id != r.id);
            out.push(r.into_plan(mine)?);
        }
        Ok(out)
    }

    pub async fn insert_plan(&mut self, p: &Plan) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO plans (id, org_id, slug, name, description, visibility, approval_required, status, terms_id, created_at, updated_at, revision, max_key_lifetime_days)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $12, $9, $10, $11, $13)"
        )
        .bind(p.id.to_string())
        .bind(p.org_id.to_string())
        .bind(&p.slug)
        .bind(&p.name)
        .bind(&p.description)
        .bind(enum_str(&p.visibility))
        .bind(p.approval_required)
        .bind(enum_str(&p.status))
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(p.revision)
        .bind(p.terms_id.map(|t| t.to_string()))
        .bind(p.max_key_lifetime_days.map(i64::from))
        .execute(c)
        .await?
        .rows_affected()
        });
        self.write_plan_apis(p).await
    }

    pub async fn get_plan(&mut self, id: PlanId) -> Result<Option<Plan>> {
        let sql = format!("SELECT {PLAN_COLS} FROM plans WHERE id = $1");
        let r: Option<PlanRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(c)
            .await?);
        Ok(self.assemble_plans(r.into_iter().collect()).await?.pop())
    }

    pub async fn get_plan_by_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<Plan>> {
        let sql = format!("SELECT {PLAN_COLS} FROM plans WHERE org_id = $1 AND slug = $2");
        let r: Option<PlanRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(org.to_string())
            .bind(slug)
            .fetch_optional(c)
            .await?);
        Ok(self.assemble_plans(r.into_iter().collect()).await?.pop())
    }

    /// Plans visible in `scope`: own plans, public published or retired plans, and plans
    /// the scope's orgs are subscribed to.
    pub async fn list_plans(
        &mut self,
        scope: &Scope,
        filter: &PlanFilter,
        page: &PageParams,
    ) -> Result<Page<Plan>> {
        let rows: Vec<PlanRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(format!("SELECT {PLAN_COLS} FROM plans WHERE ("));
            push_scope(&mut qb, "org_id", scope);
            qb.push(" OR (visibility = 'public' AND status IN ('published', 'retired'))");
            qb.push(" OR id IN (SELECT plan_id FROM subscriptions WHERE ");
            push_scope(&mut qb, "consumer_org_id", scope);
            qb.push("))");
            if let Some(o) = filter.org_id {
                qb.push(" AND org_id = ").push_bind(o.to_string());
            }
            if let Some(s) = filter.status {
                qb.push(" AND status = ").push_bind(enum_str(&s));
            }
            if let Some(a) = filter.api_id {
                qb.push(" AND id IN (SELECT plan_id FROM plan_apis WHERE api_id = ")
                    .push_bind(a.to_string())
                    .push(")");
            }
            if let Some(a) = &page.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = self.assemble_plans(rows).await?;
        Ok(paginate(items, page.limit, |p| p.id.to_string()))
    }

    /// Whether any subscription of the orgs in `scope` is on `plan`.
    pub async fn scope_subscribes_to(&mut self, scope: &Scope, plan: PlanId) -> Result<bool> {
        let n: (i64,) = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new("SELECT count(*) FROM subscriptions WHERE plan_id = ");
            qb.push_bind(plan.to_string()).push(" AND ");
            push_scope(&mut qb, "consumer_org_id", scope);
            qb.build_query_as().fetch_one(c).await?
        });
        Ok(n.0 > 0)
    }

    pub async fn update_plan(&mut self, p: &Plan, expected_revision: i64) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE plans SET name = $2, description = $3, visibility = $4, approval_required = $5, status = $6,
                              updated_at = $7, revision = $8, terms_id = $10, max_key_lifetime_days = $11
             WHERE id = $1 AND revision = $9"
        )
        .bind(p.id.to_string())
        .bind(&p.name)
        .bind(&p.description)
        .bind(enum_str(&p.visibility))
        .bind(p.approval_required)
        .bind(enum_str(&p.status))
        .bind(p.updated_at)
        .bind(p.revision)
        .bind(expected_revision)
        .bind(p.terms_id.map(|t| t.to_string()))
        .bind(p.max_key_lifetime_days.map(i64::from))
        .execute(c)
        .await?
        .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Stale);
        }
        self.write_plan_apis(p).await
    }

    // ---------------------------------------------------------------- apps

    pub async fn insert_app(&mut self, a: &App) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO apps (id, org_id, slug, name, description, created_at, updated_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(a.id.to_string())
        .bind(a.org_id.to_string())
        .bind(&a.slug)
        .bind(&a.name)
        .bind(&a.description)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_app(&mut self, id: AppId) -> Result<Option<App>> {
        let r: Option<AppRow> =
            on_tx!(self, |c| sqlx::query_as("SELECT * FROM apps WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(c)
                .await?);
        r.map(AppRow::into_app).transpose()
    }

    pub async fn get_app_by_slug(&mut self, org: OrgId, slug: &str) -> Result<Option<App>> {
        let r: Option<AppRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM apps WHERE org_id = $1 AND slug = $2"
        )
        .bind(org.to_string())
        .bind(slug)
        .fetch_optional(c)
        .await?);
        r.map(AppRow::into_app).transpose()
    }

    pub async fn list_apps(
        &mut self,
        scope: &Scope,
        org: Option<OrgId>,
        page: &PageParams,
    ) -> Result<Page<App>> {
        let rows: Vec<AppRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new("SELECT * FROM apps WHERE ");
            push_scope(&mut qb, "org_id", scope);
            if let Some(o) = org {
                qb.push(" AND org_id = ").push_bind(o.to_string());
            }
            if let Some(a) = &page.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = rows
            .into_iter()
            .map(AppRow::into_app)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |a| a.id.to_string()))
    }

    pub async fn update_app(&mut self, a: &App, expected_revision: i64) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE apps SET name = $2, description = $3, updated_at = $4, revision = $5 WHERE id = $1 AND revision = $6"
        )
        .bind(a.id.to_string())
        .bind(&a.name)
        .bind(&a.description)
        .bind(a.updated_at)
        .bind(a.revision)
        .bind(expected_revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale)
        }
    }

    /// Deletes an app; the caller checks that it has no subscriptions left.
    pub async fn delete_app(&mut self, id: AppId) -> Result<()> {
        on_tx!(self, |c| sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id.to_string())
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    // ---------------------------------------------------------------- subscriptions

    pub async fn insert_subscription(&mut self, s: &Subscription) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO subscriptions (id, app_id, consumer_org_id, plan_id, provider_org_id, state, created_at, updated_at, revision, terms_sha256, mode)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        )
        .bind(s.id.to_string())
        .bind(s.app_id.to_string())
        .bind(s.consumer_org_id.to_string())
        .bind(s.plan_id.to_string())
        .bind(s.provider_org_id.to_string())
        .bind(enum_str(&s.state))
        .bind(s.created_at)
        .bind(s.updated_at)
        .bind(s.revision)
        .bind(&s.terms_sha256)
        .bind(s.mode.as_str())
        .execute(c)
        .await?
        .rows_affected()
        });
        for (i, t) in s.history.iter().enumerate() {
            self.insert_transition(s.id, i as i64, t).await?;
        }
        Ok(())
    }

    async fn insert_transition(
        &mut self,
        sub: SubscriptionId,
        seq: i64,
        t: &SubscriptionTransition,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO subscription_transitions (subscription_id, seq, from_state, to_state, actor, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )
        .bind(sub.to_string())
        .bind(seq)
        .bind(t.from.as_ref().map(enum_str))
        .bind(enum_str(&t.to))
        .bind(t.actor.to_string())
        .bind(&t.reason)
        .bind(t.at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    async fn assemble_subscriptions(
        &mut self,
        rows: Vec<SubscriptionRow>,
    ) -> Result<Vec<Subscription>> {
        let mut history: Vec<TransitionRow> = if rows.is_empty() {
            Vec::new()
        } else {
            on_tx!(self, |c| {
                let mut qb = QueryBuilder::new(
                    "SELECT subscription_id, from_state, to_state, actor, reason, at FROM subscription_transitions WHERE subscription_id IN (",
                );
                let mut sep = qb.separated(", ");
                for r in &rows {
                    sep.push_bind(r.id.clone());
                }
                qb.push(") ORDER BY subscription_id, seq");
                qb.build_query_as().fetch_all(c).await?
            })
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (mine, rest): (Vec<_>, Vec<_>) =
                history.into_iter().partition(|t| t.subscription_id == r.id);
            history = rest;
            let history = mine
                .into_iter()
                .map(TransitionRow::into_transition)
                .collect::<Result<_>>()?;
            out.push(r.into_subscription(history)?);
        }
        Ok(out)
    }

    pub async fn get_subscription(&mut self, id: SubscriptionId) -> Result<Option<Subscription>> {
        let sql = format!("SELECT {SUB_COLS} FROM subscriptions WHERE id = $1");
        let r: Option<SubscriptionRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(c)
            .await?);
        Ok(self
            .assemble_subscriptions(r.into_iter().collect())
            .await?
            .pop())
    }

    /// Several subscriptions at once (with their histories), in no particular order;
    /// ids that do not exist are left out.
    pub async fn get_subscriptions(&mut self, ids: &[SubscriptionId]) -> Result<Vec<Subscription>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<SubscriptionRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {SUB_COLS} FROM subscriptions WHERE id IN ("
            ));
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(id.to_string());
            }
            qb.push(")");
            qb.build_query_as().fetch_all(c).await?
        });
        self.assemble_subscriptions(rows).await
    }

    /// The acceptances of several subscriptions, by subscription, each list in the order
    /// [`Tx::list_acceptances`] gives.
    pub async fn acceptances_of(
        &mut self,
        ids: &[SubscriptionId],
    ) -> Result<std::collections::HashMap<SubscriptionId, Vec<Acceptance>>> {
        let mut out: std::collections::HashMap<SubscriptionId, Vec<Acceptance>> =
            std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let rows: Vec<(Json<AcceptanceRecord>, String, String)> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(
                "SELECT record, key_id, signature FROM acceptances WHERE subscription_id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(id.to_string());
            }
            qb.push(") ORDER BY accepted_at, id");
            qb.build_query_as().fetch_all(c).await?
        });
        for (r, key_id, signature) in rows {
            out.entry(r.0.subscription_id)
                .or_default()
                .push(Acceptance {
                    record: r.0,
                    key_id,
                    signature,
                });
        }
        Ok(out)
    }

    /// Subscriptions visible in `scope`: those of its orgs' apps and those to its orgs'
    /// plans.
    pub async fn list_subscriptions(
        &mut self,
        scope: &Scope,
        filter: &SubscriptionFilter,
        page: &PageParams,
    ) -> Result<Page<Subscription>> {
        let rows: Vec<SubscriptionRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new(format!("SELECT {SUB_COLS} FROM subscriptions WHERE ("));
            push_scope(&mut qb, "consumer_org_id", scope);
            qb.push(" OR ");
            push_scope(&mut qb, "provider_org_id", scope);
            qb.push(")");
            if let Some(a) = filter.app_id {
                qb.push(" AND app_id = ").push_bind(a.to_string());
            }
            if let Some(p) = filter.plan_id {
                qb.push(" AND plan_id = ").push_bind(p.to_string());
            }
            if let Some(s) = filter.state {
                qb.push(" AND state = ").push_bind(enum_str(&s));
            }
            if let Some(a) = &page.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = self.assemble_subscriptions(rows).await?;
        Ok(paginate(items, page.limit, |s| s.id.to_string()))
    }

    /// Number of subscriptions of an app that are not cancelled.
    pub async fn open_subscription_count(&mut self, app: AppId) -> Result<i64> {
        let n: (i64,) = on_tx!(self, |c| sqlx::query_as(
            "SELECT count(*) FROM subscriptions WHERE app_id = $1 AND state <> 'cancelled'"
        )
        .bind(app.to_string())
        .fetch_one(c)
        .await?);
        Ok(n.0)
    }

    /// Stores `s` (state, accepted terms) if its stored revision is still
    /// `expected_revision`, and appends the history entries past `known_history`.
    pub async fn update_subscription(
        &mut self,
        s: &Subscription,
        expected_revision: i64,
        known_history: usize,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE subscriptions SET state = $2, updated_at = $3, revision = $4, terms_sha256 = $6 WHERE id = $1 AND revision = $5"
        )
        .bind(s.id.to_string())
        .bind(enum_str(&s.state))
        .bind(s.updated_at)
        .bind(s.revision)
        .bind(expected_revision)
        .bind(&s.terms_sha256)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Stale);
        }
        for (i, t) in s.history.iter().enumerate().skip(known_history) {
            self.insert_transition(s.id, i as i64, t).await?;
        }
        Ok(())
    }

    /// Subscriptions on `plan` whose accepted terms differ from `sha256`.
    pub async fn subscriptions_not_on_terms(
        &mut self,
        plan: PlanId,
        sha256: &str,
    ) -> Result<Vec<Subscription>> {
        let sql = format!(
            "SELECT {SUB_COLS} FROM subscriptions WHERE plan_id = $1 AND state <> 'cancelled' AND (terms_sha256 IS NULL OR terms_sha256 <> $2) ORDER BY id"
        );
        let rows: Vec<SubscriptionRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(plan.to_string())
            .bind(sha256)
            .fetch_all(c)
            .await?);
        self.assemble_subscriptions(rows).await
    }

    // ---------------------------------------------------------------- terms

    pub async fn insert_terms(&mut self, t: &TermSheet) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO term_sheets (id, org_id, sheet_id, version, sha256, status, document, created_at, published_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )
        .bind(t.id.to_string())
        .bind(t.org_id.to_string())
        .bind(&t.sheet_id)
        .bind(&t.version)
        .bind(&t.sha256)
        .bind(enum_str(&t.status))
        .bind(Json(&t.document))
        .bind(t.created_at)
        .bind(t.published_at)
        .bind(t.revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_terms(&mut self, id: TermsId) -> Result<Option<TermSheet>> {
        let r: Option<TermsRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM term_sheets WHERE id = $1"
        )
        .bind(id.to_string())
        .fetch_optional(c)
        .await?);
        r.map(TermsRow::into_terms).transpose()
    }

    pub async fn get_terms_by_hash(
        &mut self,
        org: OrgId,
        sha256: &str,
    ) -> Result<Option<TermSheet>> {
        let r: Option<TermsRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM term_sheets WHERE org_id = $1 AND sha256 = $2"
        )
        .bind(org.to_string())
        .bind(sha256)
        .fetch_optional(c)
        .await?);
        r.map(TermsRow::into_terms).transpose()
    }

    pub async fn get_terms_by_version(
        &mut self,
        org: OrgId,
        sheet_id: &str,
        version: &str,
    ) -> Result<Option<TermSheet>> {
        let r: Option<TermsRow> = on_tx!(self, |c| sqlx::query_as(
            "SELECT * FROM term_sheets WHERE org_id = $1 AND sheet_id = $2 AND version = $3"
        )
        .bind(org.to_string())
        .bind(sheet_id)
        .bind(version)
        .fetch_optional(c)
        .await?);
        r.map(TermsRow::into_terms).transpose()
    }

    /// Term sheets visible in `scope`: an org's own, plus every published sheet (the
    /// catalog's terms are public to members).
    pub async fn list_terms(
        &mut self,
        scope: &Scope,
        org: Option<OrgId>,
        page: &PageParams,
    ) -> Result<Page<TermSheet>> {
        let rows: Vec<TermsRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new("SELECT * FROM term_sheets WHERE (");
            push_scope(&mut qb, "org_id", scope);
            qb.push(" OR status = 'published')");
            if let Some(o) = org {
                qb.push(" AND org_id = ").push_bind(o.to_string());
            }
            if let Some(a) = &page.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = rows
            .into_iter()
            .map(TermsRow::into_terms)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |t| t.id.to_string()))
    }

    /// Marks a draft sheet published.
    pub async fn publish_terms(
        &mut self,
        id: TermsId,
        at: OffsetDateTime,
        expected_revision: i64,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE term_sheets SET status = 'published', published_at = $2, revision = revision + 1
             WHERE id = $1 AND revision = $3 AND status = 'draft'"
        )
        .bind(id.to_string())
        .bind(at)
        .bind(expected_revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale)
        }
    }

    // ---------------------------------------------------------------- API keys

    pub async fn insert_api_key(&mut self, k: &ApiKeyInfo, secret_hash: &str) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO api_keys (id, app_id, org_id, mode, name, prefix, secret_hash, scopes, operations, ip_allowlist,
                                   created_by, created_at, expires_at, revoked_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        )
        .bind(k.id.to_string())
        .bind(k.app_id.to_string())
        .bind(k.org_id.to_string())
        .bind(enum_str(&k.mode))
        .bind(&k.name)
        .bind(&k.prefix)
        .bind(secret_hash)
        .bind(Json(&k.scopes))
        .bind(k.operations.as_ref().map(Json))
        .bind(Json(&k.ip_allowlist))
        .bind(k.created_by.to_string())
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(k.revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_api_key(&mut self, id: ApiKeyId) -> Result<Option<ApiKeyInfo>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1");
        let r: Option<ApiKeyRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(c)
            .await?);
        r.map(ApiKeyRow::into_key).transpose()
    }

    /// The key whose keyed secret hash is `secret_hash`.
    pub async fn find_api_key(&mut self, secret_hash: &str) -> Result<Option<ApiKeyInfo>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE secret_hash = $1");
        let r: Option<ApiKeyRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(secret_hash)
            .fetch_optional(c)
            .await?);
        r.map(ApiKeyRow::into_key).transpose()
    }

    /// Every key of an app, oldest first.
    pub async fn list_api_keys(&mut self, app: AppId) -> Result<Vec<ApiKeyInfo>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE app_id = $1 ORDER BY id");
        let rows: Vec<ApiKeyRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(app.to_string())
            .fetch_all(c)
            .await?);
        rows.into_iter().map(ApiKeyRow::into_key).collect()
    }

    /// Every subscription that is not cancelled, without its history: what the gateway
    /// snapshot needs.
    pub async fn gateway_subscriptions(&mut self) -> Result<Vec<Subscription>> {
        let sql =
            format!("SELECT {SUB_COLS} FROM subscriptions WHERE state <> 'cancelled' ORDER BY id");
        let rows: Vec<SubscriptionRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(c)
            .await?);
        rows.into_iter()
            .map(|r| r.into_subscription(Vec::new()))
            .collect()
    }

    /// Every key with its keyed hash, for the gateway's credential index.
    pub async fn all_api_keys(&mut self) -> Result<Vec<(ApiKeyInfo, String)>> {
        let sql = format!("SELECT {KEY_COLS}, secret_hash FROM api_keys ORDER BY id");
        let rows: Vec<(ApiKeyRow, String)> = on_tx!(self, |c| {
            use sqlx::Row;
            let raw = sqlx::query(AssertSqlSafe(sql)).fetch_all(c).await?;
            let mut out = Vec::with_capacity(raw.len());
            for r in &raw {
                out.push((
                    ApiKeyRow::from_row(r)?,
                    r.try_get::<String, _>("secret_hash")?,
                ));
            }
            out
        });
        rows.into_iter()
            .map(|(r, h)| Ok((r.into_key()?, h)))
            .collect()
    }

    // ---------------------------------------------------------------- signing keys

    /// Inserts a signing key; `secret_sealed` is the keyring-sealed secret of an
    /// `hmac-sha256` key (whose `public_key_pem` is `None`), `None` for a public key.
    pub async fn insert_signing_key(
        &mut self,
        k: &SigningKeyInfo,
        secret_sealed: Option<&[u8]>,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO signing_keys (id, app_id, org_id, mode, name, alg, public_key_pem, scopes, created_by,
                                       created_at, expires_at, revoked_at, revision, secret_sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        )
        .bind(k.id.to_string())
        .bind(k.app_id.to_string())
        .bind(k.org_id.to_string())
        .bind(enum_str(&k.mode))
        .bind(&k.name)
        .bind(&k.alg)
        .bind(k.public_key_pem.as_deref())
        .bind(Json(&k.scopes))
        .bind(k.created_by.to_string())
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(k.revision)
        .bind(secret_sealed)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// An app's signing keys, without their sealed secrets.
    pub async fn list_signing_keys(&mut self, app: AppId) -> Result<Vec<SigningKeyInfo>> {
        let sql = format!("SELECT {SIGNING_COLS} FROM signing_keys WHERE app_id = $1 ORDER BY id");
        let rows: Vec<SigningKeyRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(app.to_string())
            .fetch_all(c)
            .await?);
        rows.into_iter().map(SigningKeyRow::into_key).collect()
    }

    /// Every signing key not revoked, with the sealed secret of each `hmac-sha256` key:
    /// for the gateway snapshot only, which opens the secrets with the keyring.
    pub async fn active_signing_keys_with_secrets(
        &mut self,
    ) -> Result<Vec<(SigningKeyInfo, Option<Vec<u8>>)>> {
        let sql = format!(
            "SELECT {SIGNING_COLS}, secret_sealed FROM signing_keys WHERE revoked_at IS NULL ORDER BY id"
        );
        let rows: Vec<(SigningKeyRow, Option<Vec<u8>>)> = on_tx!(self, |c| {
            use sqlx::Row;
            let raw = sqlx::query(AssertSqlSafe(sql)).fetch_all(c).await?;
            let mut out = Vec::with_capacity(raw.len());
            for r in &raw {
                out.push((
                    SigningKeyRow::from_row(r)?,
                    r.try_get::<Option<Vec<u8>>, _>("secret_sealed")?,
                ));
            }
            out
        });
        rows.into_iter()
            .map(|(r, sealed)| Ok((r.into_key()?, sealed)))
            .collect()
    }

    /// Marks a signing key revoked.
    pub async fn revoke_signing_key(
        &mut self,
        k: &SigningKeyInfo,
        expected_revision: i64,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE signing_keys SET revoked_at = $2, revision = $3 WHERE id = $1 AND revision = $4",
            )
            .bind(k.id.to_string())
            .bind(k.revoked_at)
            .bind(k.revision)
            .bind(expected_revision)
            .execute(c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Stale);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- OAuth clients

    pub async fn insert_oauth_client(
        &mut self,
        k: &OAuthClient,
        secret_hash: Option<&str>,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO oauth_clients (id, app_id, org_id, mode, name, auth_method, secret_hash, scopes, jwks, tls_subject,
                                        tls_thumbprint, token_lifetime_seconds, created_by, created_at, revoked_at, revision)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        )
        .bind(k.id.to_string())
        .bind(k.app_id.to_string())
        .bind(k.org_id.to_string())
        .bind(enum_str(&k.mode))
        .bind(&k.name)
        .bind(enum_str(&k.auth_method))
        .bind(secret_hash)
        .bind(Json(&k.scopes))
        .bind(k.jwks.as_ref().map(Json))
        .bind(&k.tls_subject)
        .bind(&k.tls_thumbprint)
        .bind(i64::from(k.token_lifetime_seconds))
        .bind(k.created_by.to_string())
        .bind(k.created_at)
        .bind(k.revoked_at)
        .bind(k.revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub async fn get_oauth_client(&mut self, id: OAuthClientId) -> Result<Option<OAuthClient>> {
        let sql = format!("SELECT {CLIENT_COLS} FROM oauth_clients WHERE id = $1");
        let r: Option<OAuthClientRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(c)
            .await?);
        r.map(OAuthClientRow::into_client).transpose()
    }

    pub async fn list_oauth_clients(&mut self, app: AppId) -> Result<Vec<OAuthClient>> {
        let sql = format!("SELECT {CLIENT_COLS} FROM oauth_clients WHERE app_id = $1 ORDER BY id");
        let rows: Vec<OAuthClientRow> = on_tx!(self, |c| sqlx::query_as(AssertSqlSafe(sql))
            .bind(app.to_string())
            .fetch_all(c)
            .await?);
        rows.into_iter().map(OAuthClientRow::into_client).collect()
    }

    /// Every client not revoked, with its secret's keyed hash, for the gateway snapshot.
    pub async fn active_oauth_clients(&mut self) -> Result<Vec<(OAuthClient, Option<String>)>> {
        let sql = format!(
            "SELECT {CLIENT_COLS}, secret_hash FROM oauth_clients WHERE revoked_at IS NULL ORDER BY id"
        );
        let rows: Vec<(OAuthClientRow, Option<String>)> = on_tx!(self, |c| {
            use sqlx::Row;
            let raw = sqlx::query(AssertSqlSafe(sql)).fetch_all(c).await?;
            let mut out = Vec::with_capacity(raw.len());
            for r in &raw {
                out.push((
                    OAuthClientRow::from_row(r)?,
                    r.try_get::<Option<String>, _>("secret_hash")?,
                ));
            }
            out
        });
        rows.into_iter()
            .map(|(r, h)| Ok((r.into_client()?, h)))
            .collect()
    }

    /// Marks a client revoked.
    pub async fn revoke_oauth_client(
        &mut self,
        k: &OAuthClient,
        expected_revision: i64,
    ) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE oauth_clients SET revoked_at = $2, revision = $3 WHERE id = $1 AND revision = $4",
            )
            .bind(k.id.to_string())
            .bind(k.revoked_at)
            .bind(k.revision)
            .bind(expected_revision)
            .execute(c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Stale);
        }
        Ok(())
    }

    /// Records a revoked access token (idempotent).
    pub async fn revoke_token_jti(
        &mut self,
        jti: &str,
        client: OAuthClientId,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO revoked_tokens (jti, client_id, expires_at, revoked_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(client.to_string())
            .bind(expires_at)
            .bind(at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Revoked tokens that have not expired at `now`: (jti, expiry).
    pub async fn revoked_tokens(
        &mut self,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime)>> {
        let rows: Vec<(String, OffsetDateTime)> = on_tx!(self, |c| sqlx::query_as(
            "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1 ORDER BY jti"
        )
        .bind(now)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Forgets revoked tokens that expired before `before`.
    pub async fn prune_revoked_tokens(&mut self, before: OffsetDateTime) -> Result<u64> {
        let n = on_tx!(self, |c| sqlx::query(
            "DELETE FROM revoked_tokens WHERE expires_at <= $1"
        )
        .bind(before)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n)
    }

    /// Sets a key's expiry and revocation (rotation and revocation).
    pub async fn update_api_key(&mut self, k: &ApiKeyInfo, expected_revision: i64) -> Result<()> {
        let n = on_tx!(self, |c| {
            sqlx::query(
            "UPDATE api_keys SET expires_at = $2, revoked_at = $3, revision = $4 WHERE id = $1 AND revision = $5"
        )
        .bind(k.id.to_string())
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(k.revision)
        .bind(expected_revision)
        .execute(c)
        .await?
        .rows_affected()
        });
        if n == 1 {
            Ok(())
        } else {
            Err(StoreError::Stale)
        }
    }

    // ---------------------------------------------------------------- verification keys

    /// Remembers an imported public key (no-op if the id is known).
    pub async fn insert_verification_key(
        &mut self,
        key_id: &str,
        purpose: &str,
        public_key: &str,
        at: OffsetDateTime,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO verification_keys (key_id, purpose, public_key, imported_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key_id) DO NOTHING"
        )
        .bind(key_id)
        .bind(purpose)
        .bind(public_key)
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Imported public keys: `(key_id, purpose, base64 public key)`.
    pub async fn list_verification_keys(&mut self) -> Result<Vec<(String, String, String)>> {
        Ok(on_tx!(self, |c| sqlx::query_as(
            "SELECT key_id, purpose, public_key FROM verification_keys ORDER BY key_id"
        )
        .fetch_all(c)
        .await?))
    }

    // ---------------------------------------------------------------- notices

    pub async fn insert_notice(&mut self, n: &Notice) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO notices (id, subscription_id, consumer_org_id, provider_org_id, plan_id, from_sha256, to_terms_id,
                                  to_sha256, on_expiry, created_at, ends_at, resolved_at, resolution)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )
        .bind(n.id.to_string())
        .bind(n.subscription_id.to_string())
        .bind(n.consumer_org_id.to_string())
        .bind(n.provider_org_id.to_string())
        .bind(n.plan_id.to_string())
        .bind(&n.from_sha256)
        .bind(n.to_terms_id.to_string())
        .bind(&n.to_sha256)
        .bind(enum_str(&n.on_expiry))
        .bind(n.created_at)
        .bind(n.ends_at)
        .bind(n.resolved_at)
        .bind(n.resolution.as_ref().map(enum_str))
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Open notices of a subscription.
    pub async fn open_notices(&mut self, sub: SubscriptionId) -> Result<Vec<Notice>> {
        let rows: Vec<NoticeRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT * FROM notices WHERE subscription_id = $1 AND resolved_at IS NULL ORDER BY id"
        )
        .bind(sub.to_string())
        .fetch_all(c)
        .await?
        });
        rows.into_iter().map(NoticeRow::into_notice).collect()
    }

    /// Open notices whose period has ended by `now`, oldest first (at most `limit`).
    pub async fn due_notices(&mut self, now: OffsetDateTime, limit: i64) -> Result<Vec<Notice>> {
        let rows: Vec<NoticeRow> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT * FROM notices WHERE resolved_at IS NULL AND ends_at <= $1 ORDER BY ends_at, id LIMIT $2"
        )
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await?
        });
        rows.into_iter().map(NoticeRow::into_notice).collect()
    }

    /// Closes an open notice.
    pub async fn resolve_notice(
        &mut self,
        id: NoticeId,
        at: OffsetDateTime,
        how: NoticeResolution,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query("UPDATE notices SET resolved_at = $2, resolution = $3 WHERE id = $1 AND resolved_at IS NULL")
            .bind(id.to_string())
            .bind(at)
            .bind(enum_str(&how))
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Notices visible in `scope` (its orgs as consumer or provider), newest first.
    pub async fn list_notices(
        &mut self,
        scope: &Scope,
        subscription: Option<SubscriptionId>,
        page: &PageParams,
    ) -> Result<Page<Notice>> {
        let rows: Vec<NoticeRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new("SELECT * FROM notices WHERE (");
            push_scope(&mut qb, "consumer_org_id", scope);
            qb.push(" OR ");
            push_scope(&mut qb, "provider_org_id", scope);
            qb.push(")");
            if let Some(s) = subscription {
                qb.push(" AND subscription_id = ").push_bind(s.to_string());
            }
            if let Some(a) = &page.after {
                qb.push(" AND id > ").push_bind(a.clone());
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(page.limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = rows
            .into_iter()
            .map(NoticeRow::into_notice)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |n| n.id.to_string()))
    }

    // ---------------------------------------------------------------- acceptances

    /// Stores a signed acceptance as it is, for `subscription` and the sheet `terms` of
    /// this marketplace (for an imported record both differ from the record's own ids).
    pub async fn insert_acceptance(
        &mut self,
        a: &Acceptance,
        subscription: SubscriptionId,
        terms: TermsId,
    ) -> Result<()> {
        let record =
            serde_json::to_value(&a.record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let at = OffsetDateTime::parse(
            &a.record.accepted_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO acceptances (id, subscription_id, terms_id, terms_sha256, record, key_id, signature, accepted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(a.record.id.to_string())
        .bind(subscription.to_string())
        .bind(terms.to_string())
        .bind(&a.record.terms_sha256)
        .bind(Json(record))
        .bind(&a.key_id)
        .bind(&a.signature)
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Every acceptance of a subscription, oldest first.
    pub async fn list_acceptances(&mut self, sub: SubscriptionId) -> Result<Vec<Acceptance>> {
        let rows: Vec<(Json<AcceptanceRecord>, String, String)> = on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT record, key_id, signature FROM acceptances WHERE subscription_id = $1 ORDER BY accepted_at, id"
        )
        .bind(sub.to_string())
        .fetch_all(c)
        .await?
        });
        Ok(rows
            .into_iter()
            .map(|(r, key_id, signature)| Acceptance {
                record: r.0,
                key_id,
                signature,
            })
            .collect())
    }

    // ---------------------------------------------------------------- audit

    /// Appends an entry to the audit log, chaining it to the head. Must run inside a
    /// [`crate::Store::write`] transaction (which holds the head's lock).
    pub async fn append_audit(&mut self, new: NewAudit) -> Result<AuditEntry> {
        let (seq, prev): (i64, String) = on_tx!(self, |c| sqlx::query_as(
            "SELECT seq, hash FROM audit_head WHERE id = 1"
        )
        .fetch_one(c)
        .await?);
        let mut e = AuditEntry {
            id: AuditId::new(),
            seq: seq + 1,
            at: new.at,
            actor: new.actor,
            org_id: new.org_id,
            action: new.action,
            target_type: new.target_type,
            target_id: new.target_id,
            request_id: new.request_id,
            before_sha256: new.before_sha256,
            after_sha256: new.after_sha256,
            prev_hash: prev,
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        on_tx!(self, |c| {
            sqlx::query(
                "INSERT INTO audit_log (seq, id, at, actor_user_id, actor_email, org_id, action, target_type, target_id,
                                        request_id, before_sha256, after_sha256, prev_hash, hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(e.seq)
            .bind(e.id.to_string())
            .bind(e.at)
            .bind(e.actor.user_id.to_string())
            .bind(&e.actor.email)
            .bind(e.org_id.map(|o| o.to_string()))
            .bind(&e.action)
            .bind(&e.target_type)
            .bind(&e.target_id)
            .bind(&e.request_id)
            .bind(&e.before_sha256)
            .bind(&e.after_sha256)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .execute(&mut *c)
            .await?;
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
                .bind(e.seq)
                .bind(&e.hash)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(e)
    }

    /// Audit entries in `scope` after `after_seq`, oldest first.
    pub async fn list_audit(
        &mut self,
        scope: &Scope,
        target_id: Option<&str>,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<Page<AuditEntry>> {
        let rows: Vec<AuditRow> = on_tx!(self, |c| {
            let mut qb = QueryBuilder::new("SELECT * FROM audit_log WHERE ");
            push_scope(&mut qb, "org_id", scope);
            if let Some(t) = target_id {
                qb.push(" AND target_id = ").push_bind(t.to_owned());
            }
            if let Some(a) = after_seq {
                qb.push(" AND seq > ").push_bind(a);
            }
            qb.push(" ORDER BY seq LIMIT ").push_bind(limit + 1);
            qb.build_query_as().fetch_all(c).await?
        });
        let items = rows
            .into_iter()
            .map(AuditRow::into_entry)
            .collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |e| e.seq.to_string()))
    }

    /// The current head of the audit chain: `(seq, hash)`.
    pub async fn audit_head(&mut self) -> Result<(i64, String)> {
        Ok(on_tx!(self, |c| sqlx::query_as(
            "SELECT seq, hash FROM audit_head WHERE id = 1"
        )
        .fetch_one(c)
        .await?))
    }

    // ---------------------------------------------------------------- idempotency

    pub async fn get_idempotency(
        &mut self,
        principal: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(on_tx!(self, |c| {
            sqlx::query_as(
            "SELECT method, path, request_sha256, status_code, response_headers, response_body, created_at
             FROM idempotency WHERE principal = $1 AND key = $2"
        )
        .bind(principal)
        .bind(key)
        .fetch_optional(c)
        .await?
        }))
    }

    /// Claims a key for a request now being processed. Fails with
    /// [`StoreError::Duplicate`] if the key is already claimed.
    pub async fn claim_idempotency(
        &mut self,
        principal: &str,
        key: &str,
        method: &str,
        path: &str,
        request_sha256: &str,
        at: OffsetDateTime,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO idempotency (principal, key, method, path, request_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(principal)
        .bind(key)
        .bind(method)
        .bind(path)
        .bind(request_sha256)
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Stores the response of a claimed key.
    pub async fn complete_idempotency(
        &mut self,
        principal: &str,
        key: &str,
        status: u16,
        headers: &[(String, String)],
        body: &str,
    ) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "UPDATE idempotency SET status_code = $3, response_headers = $4, response_body = $5 WHERE principal = $1 AND key = $2"
        )
        .bind(principal)
        .bind(key)
        .bind(i64::from(status))
        .bind(Json(headers))
        .bind(body)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Releases a claimed key whose request failed without effect, so it can be retried.
    pub async fn release_idempotency(&mut self, principal: &str, key: &str) -> Result<()> {
        on_tx!(self, |c| sqlx::query(
            "DELETE FROM idempotency WHERE principal = $1 AND key = $2 AND status_code IS NULL"
        )
        .bind(principal)
        .bind(key)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Forgets stored responses older than `before` (keys are kept 24 h).
    pub async fn expire_idempotency(&mut self, before: OffsetDateTime) -> Result<u64> {
        // On SQLite timestamps are RFC 3339 text in UTC, which sorts by time to within
        // a second (fractional digits vary); that is ample for a 24-hour expiry.
        Ok(on_tx!(self, |c| sqlx::query(
            "DELETE FROM idempotency WHERE created_at < $1"
        )
        .bind(before)
        .execute(c)
        .await?
        .rows_affected()))
    }

    // ---------------------------------------------------------------- keyring

    pub async fn list_keys(&mut self) -> Result<Vec<StoredKey>> {
        let rows: Vec<(String, String, String, Json<serde_json::Value>)> =
            on_tx!(self, |c| sqlx::query_as(
                "SELECT id, purpose, state, record FROM keys ORDER BY created_at, id"
            )
            .fetch_all(c)
            .await?);
        Ok(rows
            .into_iter()
            .map(|(id, purpose, state, record)| StoredKey {
                id,
                purpose,
                state,
                record: record.0,
            })
            .collect())
    }

    /// Inserts or replaces a keyring record.
    pub async fn upsert_key(&mut self, k: &StoredKey, at: OffsetDateTime) -> Result<()> {
        on_tx!(self, |c| {
            sqlx::query(
            "INSERT INTO keys (id, purpose, state, record, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record, updated_at = excluded.updated_at"
        )
        .bind(&k.id)
        .bind(&k.purpose)
        .bind(&k.state)
        .bind(Json(&k.record))
        .bind(at)
        .execute(c)
        .await?
        .rows_affected()
        });
        Ok(())
    }
}
