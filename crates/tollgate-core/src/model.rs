//! Catalog and tenancy objects as the admin API shows them, the requests that create and
//! change them, and their lifecycles. Every stored object carries a `revision` that rises
//! on each change; the admin API exposes it as the `ETag`.

use crate::ids::*;
use crate::roles::{MarketplaceRole, Role};
use crate::validate::{FieldErrors, check_name, check_slug};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

// ---------------------------------------------------------------- organizations

/// What an organization does in the marketplace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// Publishes APIs and plans.
    Provider,
    /// Builds apps that subscribe to plans.
    Consumer,
    /// Both.
    Both,
}

impl OrgKind {
    /// Whether the org may publish APIs and plans.
    pub fn provides(self) -> bool {
        matches!(self, OrgKind::Provider | OrgKind::Both)
    }
    /// Whether the org may own apps and subscribe.
    pub fn consumes(self) -> bool {
        matches!(self, OrgKind::Consumer | OrgKind::Both)
    }
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Org {
    pub id: OrgId,
    /// Unique across the marketplace.
    pub slug: String,
    pub name: String,
    pub kind: OrgKind,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub revision: i64,
}

/// Body of `POST /v1/orgs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    pub slug: String,
    pub name: String,
    pub kind: OrgKind,
}

/// Body of `PATCH /v1/orgs/{org_id}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    pub name: Option<String>,
    pub kind: Option<OrgKind>,
}

impl CreateOrg {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_slug(&mut e, "/slug", &self.slug);
        check_name(&mut e, "/name", &self.name, 200);
        e
    }
}

impl UpdateOrg {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        if let Some(n) = &self.name {
            check_name(&mut e, "/name", n, 200);
        }
        e
    }
}

// ---------------------------------------------------------------- users, members, tokens

/// A person who can act through personal API tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    /// Set for marketplace operators and auditors only.
    pub marketplace_role: Option<MarketplaceRole>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Body of `PATCH /v1/users/{user_id}` (operators only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// `operator`, `auditor`, or `null` to remove the marketplace role.
    pub marketplace_role: Option<MarketplaceRole>,
}

/// A user's membership of an org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub revision: i64,
}

/// Body of `POST /v1/orgs/{org_id}/members`. A user unknown to the marketplace is
/// created, and the response then carries their first personal token, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub email: String,
    /// Display name, used when the user is new.
    #[serde(default)]
    pub name: Option<String>,
    pub role: Role,
}

impl AddMember {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_email(&mut e, "/email", &self.email);
        if let Some(n) = &self.name {
            check_name(&mut e, "/name", n, 200);
        }
        e
    }
}

/// Body of `PATCH /v1/orgs/{org_id}/members/{user_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    pub role: Role,
}

/// A personal API token's metadata; the secret itself is shown only once, at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Token {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the token, so a person can tell tokens apart.
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    /// Lifetime in days (1–365, default 90). Every token expires.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

impl CreateToken {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_name(&mut e, "/name", &self.name, 100);
        if let Some(d) = self.expires_in_days
            && !(1..=365).contains(&d)
        {
            e.push("/expires_in_days", "must be between 1 and 365");
        }
        e
    }
}

/// A newly created token: its metadata and the secret, which is never shown again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    pub secret: String,
}

fn check_email(e: &mut FieldErrors, pointer: &str, email: &str) {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if !ok {
        e.push(pointer, "must be an email address like name@example.com");
    }
}

// ---------------------------------------------------------------- APIs

/// Where an API is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiStatus {
    /// Visible to its own org only; not routed.
    Draft,
    /// In the catalog and routed.
    Published,
    /// Still routed, announced to end at `sunset` (sent as the `Sunset` header).
    Deprecated,
    /// No longer routed or offered. Final.
    Retired,
}

impl ApiStatus {
    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_become(self, to: ApiStatus) -> bool {
        use ApiStatus::*;
        matches!(
            (self, to),
            (Draft, Published)
                | (Draft, Retired)
                | (Published, Deprecated)
                | (Published, Retired)
                | (Deprecated, Published)
                | (Deprecated, Retired)
        ) || self == to
    }

    /// Whether other orgs see it in the catalog.
    pub fn in_catalog(self) -> bool {
        matches!(self, ApiStatus::Published | ApiStatus::Deprecated)
    }
}

/// Summary of an imported OpenAPI document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OpenApiInfo {
    /// `openapi` field of the document, e.g. `3.1.0`.
    pub openapi: String,
    pub title: String,
    pub version: String,
    /// SHA-256 of the canonical JSON of the document.
    pub sha256: String,
    pub operation_count: usize,
}

/// Whether an API's calls must come over mutual TLS (RFC 8705).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MtlsMode {
    /// Client certificates are not looked at for this API.
    #[default]
    Off,
    /// A client certificate is used when presented (certificate-bound tokens).
    Optional,
    /// Every call must come over TLS with a client certificate.
    Required,
}

impl MtlsMode {
    /// Whether this is the default (for `skip_serializing_if`).
    pub fn is_off(&self) -> bool {
        *self == MtlsMode::Off
    }
}

/// An API: a base path on the gateway in front of one or more upstreams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Api {
    pub id: ApiId,
    pub org_id: OrgId,
    /// Unique within the org.
    pub slug: String,
    pub name: String,
    /// The API's own version label, e.g. `v1` or `2024-06-01`.
    pub version: String,
    pub description: String,
    /// Path prefix on the gateway, e.g. `/weather/v1`. Unique across the marketplace.
    pub base_path: String,
    /// Host names it answers on; empty means any host.
    pub hosts: Vec<String>,
    /// Upstream base URLs, `http://` or `https://`.
    pub upstreams: Vec<String>,
    /// Where test-mode calls go (`tg_test_` keys, test OAuth clients); empty: a mock
    /// that answers from the OpenAPI document's examples.
    #[serde(default)]
    pub sandbox_upstreams: Vec<String>,
    /// Mutual TLS for the API's calls: `off` (default), `optional` or `required`.
    #[serde(default)]
    pub mtls: MtlsMode,
    /// Callable by anyone, without a credential or subscription (open data, status
    /// pages): the gateway routes it but neither authenticates, limits nor meters it.
    #[serde(default)]
    pub public: bool,
    pub status: ApiStatus,
    /// When a deprecated API stops being served.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sunset: Option<OffsetDateTime>,
    pub openapi: Option<OpenApiInfo>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub revision: i64,
}

/// Body of `POST /v1/apis`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApi {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
    #[serde(default = "default_api_version")]
    pub version: String,
    #[serde(default)]
    pub description: String,
    pub base_path: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub upstreams: Vec<String>,
    /// Where test-mode calls go; empty (default): the example mock.
    #[serde(default)]
    pub sandbox_upstreams: Vec<String>,
    /// Mutual TLS for the API's calls (default `off`).
    #[serde(default)]
    pub mtls: MtlsMode,
    /// Callable without a credential or subscription (default `false`).
    #[serde(default)]
    pub public: bool,
    /// An OpenAPI 3.0 or 3.1 document (JSON object) to import at once.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub openapi: Option<serde_json::Value>,
}

fn default_api_version() -> String {
    "v1".to_owned()
}

/// Body of `PATCH /v1/apis/{api_id}`: fields left out stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApi {
    pub name: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub base_path: Option<String>,
    pub hosts: Option<Vec<String>>,
    pub upstreams: Option<Vec<String>>,
    /// Where test-mode calls go; `[]` switches to the example mock.
    pub sandbox_upstreams: Option<Vec<String>>,
    /// Mutual TLS for the API's calls.
    pub mtls: Option<MtlsMode>,
    /// Callable without a credential or subscription.
    pub public: Option<bool>,
    /// Lifecycle change; `deprecated` needs `sunset`.
    pub status: Option<ApiStatus>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub sunset: Option<OffsetDateTime>,
}

/// Sandbox upstreams: like upstreams, but none is fine (the mock answers).
fn check_sandbox(e: &mut FieldErrors, ups: &[String]) {
    if ups.len() > 16 {
        e.push("/sandbox_upstreams", "must list at most 16 upstream URLs");
    }
    for (i, u) in ups.iter().enumerate() {
        check_upstream(e, &format!("/sandbox_upstreams/{i}"), u);
    }
}

/// Validates the fields shared by create and update.
pub fn check_api_fields(
    e: &mut FieldErrors,
    name: Option<&str>,
    version: Option<&str>,
    base_path: Option<&str>,
    hosts: Option<&[String]>,
    upstreams: Option<&[String]>,
) {
    if let Some(n) = name {
        check_name(e, "/name", n, 200);
    }
    if let Some(v) = version {
        check_name(e, "/version", v, 64);
    }
    if let Some(p) = base_path {
        check_base_path(e, "/base_path", p);
    }
    if let Some(hosts) = hosts {
        for (i, h) in hosts.iter().enumerate() {
            check_host(e, &format!("/hosts/{i}"), h);
        }
    }
    if let Some(ups) = upstreams {
        if ups.is_empty() {
            e.push("/upstreams", "must list at least one upstream URL");
        }
        if ups.len() > 16 {
            e.push("/upstreams", "must list at most 16 upstream URLs");
        }
        for (i, u) in ups.iter().enumerate() {
            check_upstream(e, &format!("/upstreams/{i}"), u);
        }
    }
}

impl CreateApi {
    /// Every invalid field at once (the OpenAPI document is checked on import).
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_slug(&mut e, "/slug", &self.slug);
        check_api_fields(
            &mut e,
            Some(&self.name),
            Some(&self.version),
            Some(&self.base_path),
            Some(&self.hosts),
            Some(&self.upstreams),
        );
        check_sandbox(&mut e, &self.sandbox_upstreams);
        if self.description.len() > 10_000 {
            e.push("/description", "must be at most 10000 bytes");
        }
        e
    }
}

impl UpdateApi {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_api_fields(
            &mut e,
            self.name.as_deref(),
            self.version.as_deref(),
            self.base_path.as_deref(),
            self.hosts.as_deref(),
            self.upstreams.as_deref(),
        );
        if let Some(s) = &self.sandbox_upstreams {
            check_sandbox(&mut e, s);
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 10_000) {
            e.push("/description", "must be at most 10000 bytes");
        }
        if self.status == Some(ApiStatus::Deprecated) && self.sunset.is_none() {
            e.push("/sunset", "is required when status becomes deprecated");
        }
        e
    }
}

/// A gateway base path: starts with `/`, no trailing `/` (except the root is not
/// allowed), segments of URL-safe characters, no `.`/`..` segments, no templates.
pub fn check_base_path(e: &mut FieldErrors, pointer: &str, p: &str) {
    let segs_ok = p.len() > 1
        && p.len() <= 200
        && p.starts_with('/')
        && !p.ends_with('/')
        && p[1..].split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
    if !segs_ok {
        e.push(
            pointer,
            "must be a path like /weather/v1: starts with '/', no trailing '/', segments of letters, digits, '-', '.', '_' or '~'",
        );
    }
    if p.starts_with("/_tollgate") || p == "/.well-known" || p.starts_with("/.well-known/") {
        e.push(pointer, "is reserved for the gateway itself");
    }
}

fn check_host(e: &mut FieldErrors, pointer: &str, h: &str) {
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !ok {
        e.push(
            pointer,
            "must be a lowercase DNS host name without port, e.g. api.example.com",
        );
    }
}

/// An upstream base URL: `http` or `https`, a host, optional port and path, no query,
/// fragment or credentials.
pub fn check_upstream(e: &mut FieldErrors, pointer: &str, u: &str) {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    let Some(rest) = rest else {
        e.push(pointer, "must be an http:// or https:// URL");
        return;
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        e.push(pointer, "must name a host and must not carry credentials");
    }
    if u.contains('?') || u.contains('#') || u.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        e.push(pointer, "must not contain a query, fragment or whitespace");
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        e.push(pointer, "has an invalid port");
    }
}

/// One operation of an API, from its OpenAPI document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Operation {
    pub api_id: ApiId,
    /// The document's `operationId`, or one derived from method and path when absent.
    pub operation_id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// OpenAPI path template relative to the API's base path, e.g. `/pets/{petId}`.
    pub path: String,
    pub summary: String,
    pub deprecated: bool,
}

// ---------------------------------------------------------------- plans

/// Who can see and subscribe to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// In the catalog for every consumer, on equal terms.
    Public,
    /// Only the provider org sees it; it offers it to consumers directly.
    Private,
}

/// Where a plan is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Draft,
    Published,
    /// No new subscriptions; existing ones continue until cancelled.
    Retired,
}

impl PlanStatus {
    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_become(self, to: PlanStatus) -> bool {
        use PlanStatus::*;
        matches!(
            (self, to),
            (Draft, Published) | (Draft, Retired) | (Published, Retired)
        ) || self == to
    }
}

/// The operations of one API that a plan includes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanApi {
    pub api_id: ApiId,
    /// `operationId`s included; absent means every operation of the API, present and
    /// future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
}

/// A plan: a named set of operations of one or more APIs of its provider org. Terms,
/// limits and prices attach to it in later capabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plan {
    pub id: PlanId,
    pub org_id: OrgId,
    /// Unique within the org.
    pub slug: String,
    pub name: String,
    pub description: String,
    pub visibility: Visibility,
    pub approval_required: bool,
    pub status: PlanStatus,
    pub apis: Vec<PlanApi>,
    /// The published term sheet version the plan offers now. Subscribers accept it.
    #[serde(default)]
    pub terms_id: Option<TermsId>,
    /// The longest lifetime, in days, of an API key of an app subscribed to the plan
    /// (1–3650); absent: the marketplace's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_lifetime_days: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub revision: i64,
}

/// Body of `POST /v1/plans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub visibility: Visibility,
    #[serde(default)]
    pub approval_required: bool,
    pub apis: Vec<PlanApi>,
    /// The longest lifetime, in days, of an API key of a subscribed app (1–3650).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_lifetime_days: Option<u32>,
}

/// Body of `PATCH /v1/plans/{plan_id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    pub name: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub approval_required: Option<bool>,
    pub status: Option<PlanStatus>,
    pub apis: Option<Vec<PlanApi>>,
    /// Offer a (published) term sheet version of the same org. Existing subscriptions
    /// keep the version they accepted until they accept this one.
    #[serde(default)]
    pub terms_id: Option<TermsId>,
    /// The longest lifetime, in days, of an API key of a subscribed app (1–3650).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_lifetime_days: Option<u32>,
}

fn check_key_lifetime(e: &mut FieldErrors, days: Option<u32>) {
    if days.is_some_and(|d| !(1..=3650).contains(&d)) {
        e.push("/max_key_lifetime_days", "must be between 1 and 3650 days");
    }
}

fn check_plan_apis(e: &mut FieldErrors, apis: &[PlanApi]) {
    if apis.is_empty() {
        e.push("/apis", "must include at least one API");
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in apis.iter().enumerate() {
        if !seen.insert(a.api_id) {
            e.push(format!("/apis/{i}/api_id"), "lists the same API twice");
        }
        if let Some(ops) = &a.operations {
            if ops.is_empty() {
                e.push(
                    format!("/apis/{i}/operations"),
                    "must not be empty; leave it out to include every operation",
                );
            }
            let mut seen_ops = std::collections::HashSet::new();
            for (j, op) in ops.iter().enumerate() {
                if !seen_ops.insert(op) {
                    e.push(format!("/apis/{i}/operations/{j}"), "is listed twice");
                }
            }
        }
    }
}

impl CreatePlan {
    /// Every invalid field at once (operation existence is checked against the store).
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_slug(&mut e, "/slug", &self.slug);
        check_name(&mut e, "/name", &self.name, 200);
        check_plan_apis(&mut e, &self.apis);
        check_key_lifetime(&mut e, self.max_key_lifetime_days);
        e
    }
}

impl UpdatePlan {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        if let Some(n) = &self.name {
            check_name(&mut e, "/name", n, 200);
        }
        if let Some(a) = &self.apis {
            check_plan_apis(&mut e, a);
        }
        check_key_lifetime(&mut e, self.max_key_lifetime_days);
        e
    }
}

// ---------------------------------------------------------------- apps

/// A consumer org's application: what credentials are issued to and what subscribes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct App {
    pub id: AppId,
    pub org_id: OrgId,
    /// Unique within the org.
    pub slug: String,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub revision: i64,
}

/// Body of `POST /v1/apps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// Body of `PATCH /v1/apps/{app_id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApp {
    pub name: Option<String>,
    pub description: Option<String>,
}

impl CreateApp {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_slug(&mut e, "/slug", &self.slug);
        check_name(&mut e, "/name", &self.name, 200);
        if self.description.len() > 10_000 {
            e.push("/description", "must be at most 10000 bytes");
        }
        e
    }
}

impl UpdateApp {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        if let Some(n) = &self.name {
            check_name(&mut e, "/name", n, 200);
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 10_000) {
            e.push("/description", "must be at most 10000 bytes");
        }
        e
    }
}

/// Scopes of a credential: 1–100 printable characters without spaces each.
fn check_scopes(e: &mut FieldErrors, scopes: &[String]) {
    for (i, s) in scopes.iter().enumerate() {
        if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            e.push(
                format!("/scopes/{i}"),
                "must be 1-100 printable characters without spaces",
            );
        }
    }
}

// ---------------------------------------------------------------- API keys

/// A consumer API key's metadata; the secret is shown once, at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyInfo {
    pub id: ApiKeyId,
    pub app_id: AppId,
    pub org_id: OrgId,
    /// Live keys reach live subscriptions only; test keys test subscriptions only.
    pub mode: crate::apikey::KeyMode,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// Scopes the key carries (term sheets say which operations need which scopes).
    pub scopes: Vec<String>,
    /// `api_slug/operationId` the key is limited to; absent means every operation the
    /// app's subscriptions grant.
    pub operations: Option<Vec<String>>,
    /// Client addresses allowed to use the key (CIDR); empty means any.
    pub ip_allowlist: Vec<String>,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revision: i64,
}

/// Body of `POST /v1/apps/{app_id}/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    pub mode: crate::apikey::KeyMode,
    /// Lifetime in days, 1–365. Every key expires.
    pub expires_in_days: u32,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
}

/// The longest lifetime of an API key, in days.
pub const MAX_KEY_DAYS: u32 = 365;

impl CreateApiKey {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_name(&mut e, "/name", &self.name, 100);
        if !(1..=MAX_KEY_DAYS).contains(&self.expires_in_days) {
            e.push(
                "/expires_in_days",
                format!("must be between 1 and {MAX_KEY_DAYS}"),
            );
        }
        check_scopes(&mut e, &self.scopes);
        if let Some(ops) = &self.operations {
            if ops.is_empty() {
                e.push(
                    "/operations",
                    "must not be empty; leave it out to allow every granted operation",
                );
            }
            for (i, o) in ops.iter().enumerate() {
                if !matches!(o.split_once('/'), Some((a, op)) if !a.is_empty() && !op.is_empty()) {
                    e.push(format!("/operations/{i}"), "must be api_slug/operationId");
                }
            }
        }
        if self.ip_allowlist.len() > 64 {
            e.push("/ip_allowlist", "must list at most 64 networks");
        }
        for (i, c) in self.ip_allowlist.iter().enumerate() {
            if !valid_cidr(c) {
                e.push(
                    format!("/ip_allowlist/{i}"),
                    "must be an IPv4 or IPv6 network in CIDR notation, e.g. 203.0.113.0/24",
                );
            }
        }
        e
    }
}

/// Whether `s` is `address/prefix-length` (or a bare address).
pub fn valid_cidr(s: &str) -> bool {
    let (addr, len) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
    match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            len.is_none_or(|l| l.parse::<u8>().is_ok_and(|n| n <= max))
        }
        Err(_) => false,
    }
}

/// A newly created key: its metadata and the secret, which is never shown again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyInfo,
    pub secret: String,
}

/// Body of `POST /v1/apps/{app_id}/keys/{key_id}/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKey {
    /// Seconds the old key keeps working (default 24 h; 0 revokes it at once).
    pub overlap_seconds: Option<u64>,
    /// Lifetime of the new key in days (default: the old key's lifetime).
    pub expires_in_days: Option<u32>,
}

// ---------------------------------------------------------------- OAuth clients

/// How an OAuth client proves itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// RFC 6749 §2.3.1: `Authorization: Basic` with the client id and a secret Tollgate
    /// generated (shown once, stored as a keyed hash).
    ClientSecretBasic,
    /// RFC 7523: a JWT signed with a key of the client's registered JWKS.
    PrivateKeyJwt,
    /// RFC 8705 §2.1: a TLS client certificate chaining to the marketplace's client CA
    /// with the registered subject.
    TlsClientAuth,
    /// RFC 8705 §2.2: a registered self-signed certificate, matched by its SHA-256
    /// thumbprint.
    SelfSignedTlsClientAuth,
}

/// An app's OAuth 2.0 client for the client credentials grant. Its access tokens carry
/// the app's identity and at most the client's scopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OAuthClient {
    /// Also the OAuth `client_id`.
    pub id: OAuthClientId,
    pub app_id: AppId,
    pub org_id: OrgId,
    /// Live clients reach live subscriptions only; test clients test ones.
    pub mode: crate::apikey::KeyMode,
    pub name: String,
    pub auth_method: ClientAuthMethod,
    /// Scopes the client may be granted.
    pub scopes: Vec<String>,
    /// `private_key_jwt`: the client's public keys (a JWKS document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// `tls_client_auth`: the certificate subject DN or a SAN (DNS name, URI or e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_subject: Option<String>,
    /// `self_signed_tls_client_auth`: base64url SHA-256 of the certificate (`x5t#S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_thumbprint: Option<String>,
    /// Lifetime of the access tokens issued to the client, in seconds.
    pub token_lifetime_seconds: u32,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revision: i64,
}

/// Longest access-token lifetime a client may ask for (seconds).
pub const MAX_TOKEN_LIFETIME: u32 = 3600;

/// Body of `POST /v1/apps/{app_id}/oauth-clients`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOAuthClient {
    pub name: String,
    #[serde(default)]
    pub mode: crate::apikey::KeyMode,
    pub auth_method: ClientAuthMethod,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub tls_subject: Option<String>,
    #[serde(default)]
    pub tls_thumbprint: Option<String>,
    /// Default 300 (five minutes); at most 3600.
    #[serde(default)]
    pub token_lifetime_seconds: Option<u32>,
}

impl CreateOAuthClient {
    /// Every invalid field at once (a JWKS is parsed by the server).
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_name(&mut e, "/name", &self.name, 100);
        check_scopes(&mut e, &self.scopes);
        if self
            .token_lifetime_seconds
            .is_some_and(|t| !(30..=MAX_TOKEN_LIFETIME).contains(&t))
        {
            e.push(
                "/token_lifetime_seconds",
                format!("must be between 30 and {MAX_TOKEN_LIFETIME}"),
            );
        }
        let needs = |e: &mut FieldErrors, present: bool, field: &str, method: &str| {
            if !present {
                e.push(format!("/{field}"), format!("is required for {method}"));
            }
        };
        let unexpected = |e: &mut FieldErrors, present: bool, field: &str| {
            if present {
                e.push(
                    format!("/{field}"),
                    "does not apply to this auth_method; leave it out",
                );
            }
        };
        let (jwks, subject, thumb) = (
            self.jwks.is_some(),
            self.tls_subject.is_some(),
            self.tls_thumbprint.is_some(),
        );
        match self.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                unexpected(&mut e, jwks, "jwks");
                unexpected(&mut e, subject, "tls_subject");
                unexpected(&mut e, thumb, "tls_thumbprint");
            }
            ClientAuthMethod::PrivateKeyJwt => {
                needs(&mut e, jwks, "jwks", "private_key_jwt");
                unexpected(&mut e, subject, "tls_subject");
                unexpected(&mut e, thumb, "tls_thumbprint");
            }
            ClientAuthMethod::TlsClientAuth => {
                needs(&mut e, subject, "tls_subject", "tls_client_auth");
                unexpected(&mut e, jwks, "jwks");
                unexpected(&mut e, thumb, "tls_thumbprint");
            }
            ClientAuthMethod::SelfSignedTlsClientAuth => {
                needs(
                    &mut e,
                    thumb,
                    "tls_thumbprint",
                    "self_signed_tls_client_auth",
                );
                unexpected(&mut e, jwks, "jwks");
                unexpected(&mut e, subject, "tls_subject");
                if let Some(t) = &self.tls_thumbprint
                    && (t.len() != 43
                        || !t
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
                {
                    e.push(
                        "/tls_thumbprint",
                        "must be the base64url (unpadded) SHA-256 of the certificate, 43 characters",
                    );
                }
            }
        }
        e
    }
}

/// Answer of `POST /v1/apps/{app_id}/oauth-clients`: the client and, for
/// `client_secret_basic`, its secret (shown this once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedOAuthClient {
    #[serde(flatten)]
    pub client: OAuthClient,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

// ---------------------------------------------------------------- signing keys

/// A key an app signs its requests with (RFC 9421 HTTP Message Signatures): a public
/// key it registered, or an HMAC secret the marketplace generated for it. The request's
/// `keyid` is the key's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyInfo {
    /// Also the `keyid` of signatures made with it.
    pub id: SigningKeyId,
    pub app_id: AppId,
    pub org_id: OrgId,
    /// Live keys reach live subscriptions only; test keys test ones.
    pub mode: crate::apikey::KeyMode,
    pub name: String,
    /// `ed25519`, `ecdsa-p256-sha256` or `hmac-sha256`.
    pub alg: String,
    /// The public key, PEM (`-----BEGIN PUBLIC KEY-----`, SPKI); absent for
    /// `hmac-sha256`, whose secret is shown only once, when the key is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
    /// Scopes requests signed with the key carry.
    pub scopes: Vec<String>,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    pub revision: i64,
}

/// Signature algorithms an app's signing key may use.
pub const SIGNING_KEY_ALGS: [&str; 3] = ["ed25519", "ecdsa-p256-sha256", "hmac-sha256"];

/// Body of `POST /v1/apps/{app_id}/signing-keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSigningKey {
    pub name: String,
    #[serde(default)]
    pub mode: crate::apikey::KeyMode,
    /// `ed25519`, `ecdsa-p256-sha256` or `hmac-sha256`.
    pub alg: String,
    /// The public key, PEM (SPKI): required for `ed25519` and `ecdsa-p256-sha256`;
    /// left out for `hmac-sha256`, whose secret the marketplace generates.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Lifetime in days (1–365).
    pub expires_in_days: u32,
}

impl CreateSigningKey {
    /// Every invalid field at once (the key itself is parsed by the server).
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_name(&mut e, "/name", &self.name, 100);
        if !SIGNING_KEY_ALGS.contains(&self.alg.as_str()) {
            e.push("/alg", "must be ed25519, ecdsa-p256-sha256 or hmac-sha256");
        }
        if !(1..=MAX_KEY_DAYS).contains(&self.expires_in_days) {
            e.push(
                "/expires_in_days",
                format!("must be between 1 and {MAX_KEY_DAYS}"),
            );
        }
        match (self.alg.as_str(), &self.public_key_pem) {
            // The shared secret is generated by the marketplace, never chosen by the client.
            ("hmac-sha256", Some(_)) => e.push(
                "/public_key_pem",
                "does not apply to hmac-sha256 (the marketplace generates its secret); leave it out",
            ),
            ("ed25519" | "ecdsa-p256-sha256", None) => {
                e.push("/public_key_pem", format!("is required for {}", self.alg));
            }
            (_, Some(pem)) if pem.len() > 8192 => {
                e.push("/public_key_pem", "must be at most 8192 bytes");
            }
            _ => {}
        }
        check_scopes(&mut e, &self.scopes);
        e
    }
}

/// Answer of `POST /v1/apps/{app_id}/signing-keys`: the key and, for `hmac-sha256`,
/// its secret (32 random bytes, standard base64 as RFC 9421 B.1.5 prints its key),
/// shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedSigningKey {
    #[serde(flatten)]
    pub key: SigningKeyInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

// ---------------------------------------------------------------- subscriptions

/// A subscription's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionState {
    /// Waiting for the provider's approval.
    Pending,
    /// Calls are allowed.
    Active,
    /// Calls are refused until reinstated.
    Suspended,
    /// Ended. Final.
    Cancelled,
}

impl SubscriptionState {
    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_become(self, to: SubscriptionState) -> bool {
        use SubscriptionState::*;
        matches!(
            (self, to),
            (Pending, Active)
                | (Pending, Cancelled)
                | (Active, Suspended)
                | (Active, Cancelled)
                | (Suspended, Active)
                | (Suspended, Cancelled)
        )
    }
}

/// One change of a subscription's state: who, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionTransition {
    pub from: Option<SubscriptionState>,
    pub to: SubscriptionState,
    pub actor: UserId,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// An app's subscription to a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub app_id: AppId,
    /// The app's org.
    pub consumer_org_id: OrgId,
    pub plan_id: PlanId,
    /// The plan's org.
    pub provider_org_id: OrgId,
    pub state: SubscriptionState,
    /// `live` or `test`: live keys reach live subscriptions only, test keys test ones.
    #[serde(default)]
    pub mode: crate::apikey::KeyMode,
    /// SHA-256 of the term sheet version the subscription accepted and is served under.
    #[serde(default)]
    pub terms_sha256: Option<String>,
    /// Every state change, oldest first.
    pub history: Vec<SubscriptionTransition>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub revision: i64,
}

/// Body of `POST /v1/subscriptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    pub app_id: AppId,
    pub plan_id: PlanId,
    /// SHA-256 of the plan's current term sheet: subscribing accepts it, and the
    /// acceptance is recorded and signed. Required when the plan has terms.
    #[serde(default)]
    pub accept_terms: Option<String>,
    /// `live` (default) or `test`: which keys of the app the subscription serves.
    #[serde(default)]
    pub mode: crate::apikey::KeyMode,
    /// Why the consumer asks for access; shown to the provider when approval is needed.
    #[serde(default)]
    pub reason: String,
}

/// Body of `POST /v1/subscriptions/{subscription_id}/transitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionSubscription {
    pub to: SubscriptionState,
    /// Required: every decision is recorded with its reason.
    pub reason: String,
}

impl TransitionSubscription {
    /// Every invalid field at once.
    pub fn validate(&self) -> FieldErrors {
        let mut e = FieldErrors::new();
        check_name(&mut e, "/reason", &self.reason, 1000);
        e
    }
}

// ---------------------------------------------------------------- terms

/// Whether a term sheet version can be offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TermsStatus {
    /// Stored and checked; not yet offered by any plan.
    Draft,
    /// Compiled to policy and offerable. Immutable.
    Published,
}

/// A stored term sheet version. Its content never changes: a change is a new version
/// with a new `sha256`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TermSheet {
    pub id: TermsId,
    pub org_id: OrgId,
    /// The sheet's own id (stable across versions).
    pub sheet_id: String,
    /// Semantic version.
    pub version: String,
    /// SHA-256 (hex) of the canonical JSON of the validated sheet: its identity.
    pub sha256: String,
    pub status: TermsStatus,
    /// The validated sheet.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    pub revision: i64,
}

/// Body of `POST /v1/terms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTerms {
    pub org_id: OrgId,
    /// The term sheet (JSON).
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
}

/// The fields an acceptance signature covers (canonical JSON, version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptanceRecord {
    /// Always `tollgate.acceptance.v1`.
    #[serde(rename = "type")]
    pub type_: String,
    pub id: AcceptanceId,
    pub subscription_id: SubscriptionId,
    pub app_id: AppId,
    pub plan_id: PlanId,
    pub consumer_org_id: OrgId,
    pub provider_org_id: OrgId,
    pub terms_id: TermsId,
    pub terms_sha256: String,
    pub sheet_id: String,
    pub sheet_version: String,
    pub accepted_by: UserId,
    /// RFC 3339, UTC.
    pub accepted_at: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The `type` of version-1 acceptance records.
pub const ACCEPTANCE_V1: &str = "tollgate.acceptance.v1";

impl AcceptanceRecord {
    /// The bytes the marketplace signs: RFC 8785 canonical JSON of the record.
    pub fn signing_bytes(&self) -> Vec<u8> {
        serde_jcs::to_vec(self).unwrap_or_default()
    }
}

/// A signed acceptance: the record, the key that signed it and the Ed25519 signature
/// (base64) over [`AcceptanceRecord::signing_bytes`]. Verify with the key's public part
/// from `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Acceptance {
    pub record: AcceptanceRecord,
    pub key_id: String,
    pub signature: String,
}

/// A public key that verifies signed records (Ed25519, raw 32 bytes, base64).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationKey {
    pub key_id: String,
    pub public_key: String,
}

/// A public key as `GET /v1/verification-keys` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedKey {
    pub key_id: String,
    /// e.g. `acceptance_signing`.
    pub purpose: String,
    pub public_key: String,
    /// `local` (this marketplace's keyring) or `imported` (came with imported records).
    pub origin: String,
}

/// Body of `POST /v1/subscriptions/import` (operators): a subscription moved from another
/// marketplace with its signed acceptances, verified and kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportSubscription {
    pub app_id: AppId,
    pub plan_id: PlanId,
    pub state: SubscriptionState,
    /// `live` (default) or `test`.
    #[serde(default, skip_serializing_if = "crate::apikey::KeyMode::is_live")]
    pub mode: crate::apikey::KeyMode,
    /// The signed acceptances, oldest first, exactly as exported.
    pub acceptances: Vec<Acceptance>,
    /// Public keys of the signers not in this marketplace's keyring.
    #[serde(default)]
    pub verification_keys: Vec<VerificationKey>,
}

/// Body of `POST /v1/subscriptions/{subscription_id}/acceptances`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptTerms {
    /// SHA-256 of the plan's current term sheet, as shown to the subscriber.
    pub terms_sha256: String,
}

/// What happens to a subscription on an old term sheet when the notice period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeExpiry {
    /// It moves to the new version.
    Move,
    /// It is suspended until it accepts the new version.
    Suspend,
}

/// How a notice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeResolution {
    /// The subscriber accepted the new version.
    Accepted,
    /// The notice ended and the subscription moved to the new version.
    Moved,
    /// The notice ended and the subscription was suspended.
    Suspended,
    /// The plan moved on to yet another version; a newer notice replaces this one.
    Superseded,
    /// The subscription was cancelled first.
    Cancelled,
}

/// A notice to a subscriber: the plan now offers another term sheet version. Until
/// `ends_at` the subscription stays on the version it accepted; then `on_expiry`
/// applies unless it accepted the new version. The portal and webhooks announce these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notice {
    pub id: NoticeId,
    pub subscription_id: SubscriptionId,
    pub consumer_org_id: OrgId,
    pub provider_org_id: OrgId,
    pub plan_id: PlanId,
    /// The version the subscription is on (none if it never accepted terms).
    pub from_sha256: Option<String>,
    pub to_terms_id: TermsId,
    pub to_sha256: String,
    pub on_expiry: NoticeExpiry,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    pub resolution: Option<NoticeResolution>,
}

// ---------------------------------------------------------------- audit

/// Who performed an audited action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    pub user_id: UserId,
    pub email: String,
}

/// One audit log entry. Entries are chained: `hash` = SHA-256 over `prev_hash` and the
/// entry's canonical JSON, so removing or editing an entry breaks every later hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub id: AuditId,
    /// Position in the log, from 1, without gaps.
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Actor,
    /// The org the target belongs to, if any.
    pub org_id: Option<OrgId>,
    /// e.g. `api.create`, `subscription.transition`.
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub request_id: String,
    /// SHA-256 of the canonical JSON of the object before the change (absent on create).
    pub before_sha256: Option<String>,
    /// SHA-256 of the canonical JSON of the object after the change (absent on delete).
    pub after_sha256: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields of an audit entry that its hash commits to, in a fixed shape (version 1).
#[derive(Serialize)]
struct AuditHashInput<'a> {
    v: u8,
    seq: i64,
    at: String,
    actor: &'a UserId,
    org_id: &'a Option<OrgId>,
    action: &'a str,
    target_type: &'a str,
    target_id: &'a str,
    request_id: &'a str,
    before_sha256: &'a Option<String>,
    after_sha256: &'a Option<String>,
    prev_hash: &'a str,
}

impl AuditEntry {
    /// The hash this entry must carry given its fields and `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let input = AuditHashInput {
            v: 1,
            seq: self.seq,
            at: self
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            actor: &self.actor.user_id,
            org_id: &self.org_id,
            action: &self.action,
            target_type: &self.target_type,
            target_id: &self.target_id,
            request_id: &self.request_id,
            before_sha256: &self.before_sha256,
            after_sha256: &self.after_sha256,
            prev_hash: &self.prev_hash,
        };
        crate::hash::canonical_sha256(&input).unwrap_or_default()
    }
}

/// The `prev_hash` of the first audit entry.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Checks a contiguous run of audit entries: sequence numbers rise by one, each links to
/// the one before, and each hash matches its content. Returns the first bad `seq`.
pub fn verify_audit_chain(entries: &[AuditEntry], expected_prev: &str) -> Result<(), i64> {
    let mut prev = expected_prev.to_owned();
    let mut prev_seq = None;
    for e in entries {
        if e.prev_hash != prev
            || prev_seq.is_some_and(|s: i64| e.seq != s + 1)
            || e.compute_hash() != e.hash
        {
            return Err(e.seq);
        }
        prev.clone_from(&e.hash);
        prev_seq = Some(e.seq);
    }
    Ok(())
}

/// A page of a list, with the cursor of the next page if there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(e: FieldErrors) -> Vec<String> {
        e.0.into_iter().map(|f| f.pointer).collect()
    }

    #[test]
    fn create_api_reports_every_bad_field_at_once() {
        let req = CreateApi {
            org_id: OrgId::new(),
            slug: "Bad Slug".into(),
            name: " ".into(),
            version: "v1".into(),
            description: String::new(),
            base_path: "weather/".into(),
            hosts: vec!["Api.Example.com".into()],
            upstreams: vec!["ftp://x".into(), "http://a:99999".into()],
            sandbox_upstreams: vec![],
            mtls: MtlsMode::Off,
            public: false,
            openapi: None,
        };
        assert_eq!(
            errs(req.validate()),
            [
                "/slug",
                "/name",
                "/base_path",
                "/hosts/0",
                "/upstreams/0",
                "/upstreams/1"
            ]
        );
    }

    #[test]
    fn base_paths() {
        let ok = |p: &str| {
            let mut e = FieldErrors::new();
            check_base_path(&mut e, "/p", p);
            e.is_empty()
        };
        assert!(ok("/weather/v1"));
        assert!(ok("/a.b_c~d-e"));
        for bad in [
            "/",
            "",
            "weather",
            "/weather/",
            "/a//b",
            "/a/../b",
            "/a/{id}",
            "/_tollgate/x",
            "/.well-known",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }

    #[test]
    fn lifecycles() {
        use ApiStatus::*;
        assert!(Draft.can_become(Published));
        assert!(Published.can_become(Deprecated));
        assert!(!Retired.can_become(Published));
        assert!(!Draft.can_become(Deprecated));
        use SubscriptionState::*;
        assert!(Pending.can_become(Active));
        assert!(Suspended.can_become(Active));
        assert!(!Cancelled.can_become(Active));
        assert!(!Pending.can_become(Suspended));
    }

    #[test]
    fn audit_chain_detects_edits_and_gaps() {
        let mut entries = Vec::new();
        let mut prev = AUDIT_GENESIS.to_owned();
        for seq in 1..=3 {
            let mut e = AuditEntry {
                id: AuditId::new(),
                seq,
                at: time::macros::datetime!(2026-01-01 0:00 UTC),
                actor: Actor {
                    user_id: UserId::new(),
                    email: "a@b.co".into(),
                },
                org_id: None,
                action: "org.create".into(),
                target_type: "org".into(),
                target_id: format!("{seq}"),
                request_id: "r".into(),
                before_sha256: None,
                after_sha256: Some("x".into()),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            e.hash = e.compute_hash();
            prev.clone_from(&e.hash);
            entries.push(e);
        }
        assert_eq!(verify_audit_chain(&entries, AUDIT_GENESIS), Ok(()));
        let mut edited = entries.clone();
        edited[1].action = "org.delete".into();
        assert_eq!(verify_audit_chain(&edited, AUDIT_GENESIS), Err(2));
        let mut gap = entries.clone();
        gap.remove(1);
        assert_eq!(verify_audit_chain(&gap, AUDIT_GENESIS), Err(3));
    }
}
