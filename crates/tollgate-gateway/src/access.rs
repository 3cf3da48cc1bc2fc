//! Who may call what, as one immutable part of the snapshot: the credential index (API
//! keys by keyed digest), each app's subscriptions with the plan version they are served
//! under (compiled Cedar slice, limit clauses, data facts), the Cedar entity directory
//! and the operator's CIDR → region table.
//!
//! The control plane builds it ([`Access::build`]) from committed state; the request path
//! only reads it: a hashed lookup per step, no lock, no allocation except where noted.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use time::OffsetDateTime;
use tollgate_core::apikey::KeyMode;
use tollgate_core::model::{ApiKeyInfo, PlanApi, Subscription, SubscriptionState};
use tollgate_core::{ApiId, ApiKeyId, AppId, OrgId, PlanId, SubscriptionId};
use tollgate_limits::{LimitKey, Period, QuotaSpec, RatePer, RateSpec};
use tollgate_policy::{CompiledPlan, Directory, RegionTable, SubscriptionFacts};

/// A keyed digest (HMAC-SHA256) of a credential secret.
pub type Digest = [u8; 32];

/// Hashes digests by their first eight bytes: they are HMAC outputs, uniformly
/// distributed and not chosen by a caller who lacks the key, so no further mixing is
/// needed.
#[derive(Default, Clone, Copy)]
pub(crate) struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 ^= u64::from_le_bytes(word);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The caller a credential stands for: an app of a consumer org, in one mode, with the
/// key's own restrictions.
#[derive(Debug)]
pub struct Principal {
    /// The credential's id (API key id, OAuth client id, …), for metering and audit.
    pub credential_id: String,
    pub app_id: AppId,
    /// `app_id` as text, as the Cedar principal and the decision cache take it.
    pub app_id_str: Box<str>,
    pub org_id: OrgId,
    /// Live credentials reach live subscriptions only, test credentials test ones.
    pub mode: KeyMode,
    /// Scopes the credential carries.
    pub scopes: Vec<String>,
    /// API slug → operation ids the credential is limited to; `None` = no limit.
    pub operations: Option<HashMap<String, HashSet<String>>>,
    /// The limiter subject of per-credential rate limits: a 64-bit fold of the
    /// credential's id.
    pub subject: u64,
}

impl Principal {
    /// Whether the credential's own operation list allows `operation` of `api_slug`.
    pub fn may_call(&self, api_slug: &str, operation: &str) -> bool {
        match &self.operations {
            None => true,
            Some(by_api) => by_api
                .get(api_slug)
                .is_some_and(|ops| ops.contains(operation)),
        }
    }
}

/// One API key as the gateway checks it.
#[derive(Debug)]
pub struct KeyEntry {
    pub id: ApiKeyId,
    pub digest: Digest,
    pub principal: Arc<Principal>,
    /// Unix seconds; the key is refused from this instant on.
    pub expires_at: i64,
    /// Unix seconds of the revocation, if revoked.
    pub revoked_at: Option<i64>,
    /// Allowed client networks; `None` = any address. A list that failed to parse is an
    /// empty table: the key then matches no address (fail closed).
    pub ip_allowlist: Option<RegionTable>,
}

impl KeyEntry {
    /// Whether `ip` may use the key.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.ip_allowlist
            .as_ref()
            .is_none_or(|table| table.lookup(ip).is_some())
    }
}

/// The data facts of one granted operation under a plan version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationInput {
    /// The API's slug.
    pub api: String,
    /// The operation's id in the catalog.
    pub operation_id: String,
    /// The term sheet's limit group of the operation.
    pub group: Option<String>,
    /// Data categories the operation returns.
    pub categories: Vec<String>,
}

/// A rate limit clause of a term sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateInput {
    pub group: Option<String>,
    pub requests: u64,
    pub per: RatePer,
    pub burst: u64,
    /// Count each credential separately (else the whole subscription).
    pub per_credential: bool,
}

/// The period a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPer {
    Day,
    CalendarMonth,
    /// The subscription's billing period (anchored on its start).
    BillingPeriod,
}

/// A quota clause of a term sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaInput {
    pub group: Option<String>,
    pub requests: u64,
    pub per: QuotaPer,
}

/// One plan version as the control plane hands it over: its compiled Cedar slice plus
/// what the request path needs of its term sheet.
#[derive(Debug)]
pub struct PlanInput {
    pub plan_id: PlanId,
    /// The APIs and operations the plan includes.
    pub coverage: Vec<PlanApi>,
    /// The Cedar slice; its `key` names the plan version in the directory.
    pub compiled: CompiledPlan,
    /// The sheet's granted operations.
    pub operations: Vec<OperationInput>,
    pub rates: Vec<RateInput>,
    pub quotas: Vec<QuotaInput>,
    /// The zone in which quota days and months begin.
    pub limits_tz: TimeZone,
}

/// A rate limit clause, ready to check.
#[derive(Debug)]
pub struct RateClause {
    /// Name in the `RateLimit` fields, e.g. `second` or `search-minute`.
    pub name: String,
    pub spec: RateSpec,
    /// Stable id of the clause (group + period): counters carry over between snapshots
    /// and plan versions that keep the clause.
    pub limit_id: u32,
    /// Counted per credential rather than per subscription.
    pub per_credential: bool,
}

/// A quota clause (the spec itself is per subscription: billing periods differ).
#[derive(Debug)]
pub struct QuotaClause {
    /// Name in the `RateLimit` fields, e.g. `day` or `search-month`.
    pub name: String,
    pub requests: u64,
    pub per: QuotaPer,
    pub limit_id: u32,
}

/// What the request path needs of one operation under a plan version.
#[derive(Debug, Default)]
pub struct OperationRuntime {
    pub categories: Vec<String>,
    /// Indexes into [`PlanRuntime::rates`].
    pub rates: Vec<usize>,
    /// Indexes into [`PlanRuntime::quotas`].
    pub quotas: Vec<usize>,
}

/// One plan version, compiled for the request path.
#[derive(Debug)]
pub struct PlanRuntime {
    pub plan_id: PlanId,
    pub compiled: CompiledPlan,
    /// API → operations included (`None` = all of the API's operations).
    coverage: HashMap<ApiId, Option<HashSet<String>>>,
    /// API slug → operation id → facts.
    operations: HashMap<String, HashMap<String, OperationRuntime>>,
    /// Limits of operations the sheet does not list (its sheet-wide clauses).
    default_operation: OperationRuntime,
    pub rates: Vec<RateClause>,
    pub quotas: Vec<QuotaClause>,
    pub limits_tz: TimeZone,
}

/// A 32-bit id of a limit clause: FNV-1a of its kind, group and period.
fn clause_id(kind: &str, group: Option<&str>, per: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in [kind, "\0", group.unwrap_or(""), "\0", per] {
        for b in part.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

fn clause_name(group: Option<&str>, per: &str) -> String {
    match group {
        Some(g) => format!("{g}-{per}"),
        None => per.to_owned(),
    }
}

fn rate_per_name(per: RatePer) -> &'static str {
    match per {
        RatePer::Second => "second",
        RatePer::Minute => "minute",
        RatePer::Hour => "hour",
    }
}

fn quota_per_name(per: QuotaPer) -> &'static str {
    match per {
        QuotaPer::Day => "day",
        QuotaPer::CalendarMonth => "month",
        QuotaPer::BillingPeriod => "period",
    }
}

impl PlanRuntime {
    /// Compiles a plan version's limits and facts. A rate clause with a zero or
    /// oversized number is an error naming it (validation of the sheet prevents both).
    pub fn new(input: PlanInput) -> Result<Self, AccessError> {
        let key = input.compiled.key().to_owned();
        let mut rates = Vec::with_capacity(input.rates.len());
        for r in &input.rates {
            let per = rate_per_name(r.per);
            let spec =
                RateSpec::new(r.requests, r.per, r.burst).map_err(|e| AccessError::Plan {
                    key: key.clone(),
                    message: format!("rate limit {}: {e}", clause_name(r.group.as_deref(), per)),
                })?;
            let kind = if r.per_credential {
                "rate/credential"
            } else {
                "rate"
            };
            rates.push(RateClause {
                name: clause_name(r.group.as_deref(), per),
                spec,
                limit_id: clause_id(kind, r.group.as_deref(), per),
                per_credential: r.per_credential,
            });
        }
        let quotas: Vec<QuotaClause> = input
            .quotas
            .iter()
            .map(|q| {
                let per = quota_per_name(q.per);
                QuotaClause {
                    name: clause_name(q.group.as_deref(), per),
                    requests: q.requests,
                    per: q.per,
                    limit_id: clause_id("quota", q.group.as_deref(), per),
                }
            })
            .collect();
        let limits_of = |group: Option<&str>| OperationRuntime {
            categories: Vec::new(),
            rates: (0..rates.len())
                .filter(|&i| {
                    let g = input.rates[i].group.as_deref();
                    g.is_none() || g == group
                })
                .collect(),
            quotas: (0..quotas.len())
                .filter(|&i| {
                    let g = input.quotas[i].group.as_deref();
                    g.is_none() || g == group
                })
                .collect(),
        };
        let mut operations: HashMap<String, HashMap<String, OperationRuntime>> = HashMap::new();
        for op in &input.operations {
            let mut runtime = limits_of(op.group.as_deref());
            runtime.categories = op.categories.clone();
            operations
                .entry(op.api.clone())
                .or_default()
                .insert(op.operation_id.clone(), runtime);
        }
        let default_operation = limits_of(None);
        let coverage = input
            .coverage
            .iter()
            .map(|a| {
                (
                    a.api_id,
                    a.operations
                        .as_ref()
                        .map(|ops| ops.iter().cloned().collect::<HashSet<_>>()),
                )
            })
            .collect();
        Ok(Self {
            plan_id: input.plan_id,
            compiled: input.compiled,
            coverage,
            operations,
            default_operation,
            rates,
            quotas,
            limits_tz: input.limits_tz,
        })
    }

    /// The plan version's key (`<sheet or plan id>@<sha256>`).
    pub fn key(&self) -> &str {
        self.compiled.key()
    }

    /// Whether the plan includes `operation` of API `api`.
    pub fn covers(&self, api: ApiId, operation: &str) -> bool {
        match self.coverage.get(&api) {
            None => false,
            Some(None) => true,
            Some(Some(ops)) => ops.contains(operation),
        }
    }

    /// The facts and limits of an operation.
    pub fn operation(&self, api_slug: &str, operation: &str) -> &OperationRuntime {
        self.operations
            .get(api_slug)
            .and_then(|ops| ops.get(operation))
            .unwrap_or(&self.default_operation)
    }
}

/// One subscription as the request path uses it.
#[derive(Debug)]
pub struct SubscriptionEntry {
    pub id: SubscriptionId,
    pub app_id: AppId,
    pub consumer_org_id: OrgId,
    pub provider_org_id: OrgId,
    pub mode: KeyMode,
    pub state: SubscriptionState,
    /// SHA-256 of the term sheet the subscription is served under.
    pub terms_sha256: Option<Box<str>>,
    pub plan: Arc<PlanRuntime>,
    /// The limiter subject: a 64-bit fold of the subscription id.
    pub subject: u64,
    /// One spec per [`PlanRuntime::quotas`] clause (billing periods start at the
    /// subscription's start).
    pub quotas: Box<[QuotaSpec]>,
}

impl SubscriptionEntry {
    /// The limiter key of a clause of this subscription.
    pub fn limit_key(&self, limit_id: u32) -> LimitKey {
        LimitKey::new(self.subject, limit_id)
    }
}

/// An OAuth client as the gateway and the token endpoint see it.
#[derive(Debug)]
pub struct OAuthClientEntry {
    pub client: tollgate_core::model::OAuthClient,
    /// The app the client acts for, with the client's scopes (a token narrows them).
    pub principal: Arc<Principal>,
    /// `client_secret_basic`: the keyed digest of the secret.
    pub secret_digest: Option<Digest>,
    /// `private_key_jwt`: the client's registered keys, parsed.
    pub keys: Option<tollgate_oauth::KeySet>,
}

/// A registered request-signing key (RFC 9421) of an app.
#[derive(Debug)]
pub struct SigningKeyEntry {
    pub key: tollgate_httpsig::VerifyingKey,
    pub principal: Arc<Principal>,
    /// Unix seconds; refused from then on.
    pub expires_at: i64,
}

/// The signing keys of a snapshot as the signature verifier resolves them.
#[derive(Debug)]
pub struct SigningKeys<'a>(&'a HashMap<String, SigningKeyEntry>);

impl tollgate_httpsig::KeyResolver for SigningKeys<'_> {
    fn resolve(&self, keyid: Option<&str>) -> Option<&tollgate_httpsig::VerifyingKey> {
        self.0.get(keyid?).map(|e| &e.key)
    }
}

/// The OAuth side of the index: clients, the access-token verifier, revoked tokens.
#[derive(Debug, Default)]
pub struct OAuthInput {
    /// Clients not revoked, with their secret digests (lowercase hex).
    pub clients: Vec<(tollgate_core::model::OAuthClient, Option<String>)>,
    /// Verifies access tokens (the marketplace's token-signing keys, issuer, audience).
    pub verifier: Option<tollgate_oauth::AccessTokenVerifier>,
    /// `jti`s of revoked tokens that have not expired.
    pub revoked: Vec<String>,
}

/// What [`Access::build`] takes: committed state, already joined by the control plane.
#[derive(Debug, Default)]
pub struct AccessInput {
    /// Every API key with its stored keyed digest (lowercase hex).
    pub keys: Vec<(ApiKeyInfo, String)>,
    /// Every subscription that is not cancelled, with the plan version it is served
    /// under. Subscriptions without a compiled plan are left out by the caller.
    pub subscriptions: Vec<(Subscription, Arc<PlanRuntime>)>,
    /// API id → slug, for the routed APIs.
    pub api_slugs: HashMap<ApiId, String>,
    /// The operator's CIDR → region table.
    pub regions: RegionTable,
    /// OAuth clients and token verification.
    pub oauth: OAuthInput,
    /// Request-signing keys not revoked, each `hmac-sha256` key with its shared secret,
    /// already opened by the control plane (`None` when it could not be: the key is
    /// then left out, with a problem). Wiped once the verifying key is built.
    pub signing_keys: Vec<(
        tollgate_core::model::SigningKeyInfo,
        Option<zeroize::Zeroizing<Vec<u8>>>,
    )>,
    /// APIs whose calls must come with a TLS client certificate.
    pub mtls_required: HashSet<ApiId>,
    /// APIs anyone may call without a credential (not authenticated, limited or metered).
    pub public: HashSet<ApiId>,
}

/// Why the access part of a snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("plan version {key}: {message}")]
    Plan { key: String, message: String },
    #[error("subscriptions: {0}")]
    Directory(String),
}

/// The credential and subscription index of one snapshot.
#[derive(Debug)]
pub struct Access {
    keys: HashMap<Digest, Arc<KeyEntry>, BuildHasherDefault<DigestHasher>>,
    subscriptions: HashMap<AppId, Box<[Arc<SubscriptionEntry>]>>,
    api_slugs: HashMap<ApiId, Box<str>>,
    directory: Directory,
    regions: RegionTable,
    oauth_clients: HashMap<String, Arc<OAuthClientEntry>>,
    token_verifier: Option<tollgate_oauth::AccessTokenVerifier>,
    revoked_tokens: HashSet<uuid::Uuid>,
    signing_keys: HashMap<String, SigningKeyEntry>,
    mtls_required: HashSet<ApiId>,
    public: HashSet<ApiId>,
}

impl Default for Access {
    fn default() -> Self {
        Self {
            keys: HashMap::default(),
            subscriptions: HashMap::new(),
            api_slugs: HashMap::new(),
            directory: Directory::new(&[]).expect("an empty directory builds"),
            regions: RegionTable::new(),
            oauth_clients: HashMap::new(),
            token_verifier: None,
            revoked_tokens: HashSet::new(),
            signing_keys: HashMap::new(),
            mtls_required: HashSet::new(),
            public: HashSet::new(),
        }
    }
}

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn fold(id: uuid::Uuid) -> u64 {
    let v = id.as_u128();
    (v as u64) ^ ((v >> 64) as u64)
}

/// A jiff timestamp of a `time` instant (whole nanoseconds; out of range → epoch).
pub fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp::from_nanosecond(t.unix_timestamp_nanos()).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Access {
    /// Builds the index. Keys whose digest is not 64 hex digits are left out (and
    /// reported); an IP allowlist that does not parse makes its key match no address.
    pub fn build(input: AccessInput) -> Result<(Self, Vec<String>), AccessError> {
        let mut problems = Vec::new();
        let mut keys = HashMap::with_capacity_and_hasher(input.keys.len(), Default::default());
        for (info, digest_hex) in input.keys {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(&digest_hex, &mut digest).is_err() {
                problems.push(format!("api key {}: stored digest is not hex", info.id));
                continue;
            }
            let ip_allowlist = if info.ip_allowlist.is_empty() {
                None
            } else {
                let table =
                    RegionTable::from_entries(info.ip_allowlist.iter().map(|c| (c.as_str(), "ok")))
                        .unwrap_or_else(|e| {
                            problems.push(format!(
                        "api key {}: IP allowlist does not parse ({e}); the key matches no address",
                        info.id
                    ));
                            RegionTable::new()
                        });
                Some(table)
            };
            let operations = info.operations.as_ref().map(|ops| {
                let mut by_api: HashMap<String, HashSet<String>> = HashMap::new();
                for op in ops {
                    if let Some((api, id)) = op.split_once('/') {
                        by_api
                            .entry(api.to_owned())
                            .or_default()
                            .insert(id.to_owned());
                    }
                }
                by_api
            });
            let principal = Arc::new(Principal {
                subject: fold(info.id.0),
                credential_id: info.id.to_string(),
                app_id: info.app_id,
                app_id_str: info.app_id.to_string().into(),
                org_id: info.org_id,
                mode: info.mode,
                scopes: info.scopes,
                operations,
            });
            keys.insert(
                digest,
                Arc::new(KeyEntry {
                    id: info.id,
                    digest,
                    principal,
                    expires_at: unix(info.expires_at),
                    revoked_at: info.revoked_at.map(unix),
                    ip_allowlist,
                }),
            );
        }

        let mut facts = Vec::with_capacity(input.subscriptions.len());
        let mut subscriptions: HashMap<AppId, Vec<Arc<SubscriptionEntry>>> = HashMap::new();
        for (sub, plan) in input.subscriptions {
            if sub.state == SubscriptionState::Cancelled {
                continue;
            }
            facts.push(SubscriptionFacts {
                subscription_id: sub.id.to_string(),
                app_id: sub.app_id.to_string(),
                org_id: sub.consumer_org_id.to_string(),
                plan_key: plan.key().to_owned(),
                active: sub.state == SubscriptionState::Active,
            });
            let anchor = timestamp(sub.created_at);
            let quotas = plan
                .quotas
                .iter()
                .map(|q| {
                    let period = match q.per {
                        QuotaPer::Day => Period::Day,
                        QuotaPer::CalendarMonth => Period::CalendarMonth,
                        QuotaPer::BillingPeriod => Period::Anniversary { anchor },
                    };
                    QuotaSpec::new(q.requests, period, plan.limits_tz.clone())
                })
                .collect();
            subscriptions
                .entry(sub.app_id)
                .or_default()
                .push(Arc::new(SubscriptionEntry {
                    id: sub.id,
                    app_id: sub.app_id,
                    consumer_org_id: sub.consumer_org_id,
                    provider_org_id: sub.provider_org_id,
                    mode: sub.mode,
                    state: sub.state,
                    terms_sha256: sub.terms_sha256.map(Into::into),
                    subject: fold(sub.id.0),
                    quotas,
                    plan,
                }));
        }
        let directory =
            Directory::new(&facts).map_err(|e| AccessError::Directory(e.to_string()))?;
        let mut signing_keys = HashMap::with_capacity(input.signing_keys.len());
        for (k, secret) in input.signing_keys {
            let key = match (
                k.alg.parse::<tollgate_httpsig::Algorithm>(),
                &k.public_key_pem,
            ) {
                (Ok(tollgate_httpsig::Algorithm::HmacSha256), _) => match &secret {
                    Some(secret) => tollgate_httpsig::VerifyingKey::hmac_sha256(secret)
                        .map_err(|e| e.to_string()),
                    None => Err("its secret could not be opened".to_owned()),
                },
                (Ok(alg), Some(pem)) => {
                    tollgate_httpsig::VerifyingKey::from_public_key_pem(alg, pem.as_bytes())
                        .map_err(|e| e.to_string())
                }
                (Ok(_), None) => Err("no public key".to_owned()),
                (Err(e), _) => Err(e.to_string()),
            };
            // The plaintext secret is wiped here; the verifying key keeps its own copy.
            drop(secret);
            let key = match key {
                Ok(key) => key,
                Err(e) => {
                    problems.push(format!("signing key {}: unusable ({e})", k.id));
                    continue;
                }
            };
            let principal = Arc::new(Principal {
                subject: fold(k.id.0),
                credential_id: k.id.to_string(),
                app_id: k.app_id,
                app_id_str: k.app_id.to_string().into(),
                org_id: k.org_id,
                mode: k.mode,
                scopes: k.scopes.clone(),
                operations: None,
            });
            signing_keys.insert(
                k.id.to_string(),
                SigningKeyEntry {
                    key,
                    principal,
                    expires_at: unix(k.expires_at),
                },
            );
        }
        let mut oauth_clients = HashMap::with_capacity(input.oauth.clients.len());
        for (client, digest_hex) in input.oauth.clients {
            let secret_digest = match digest_hex {
                None => None,
                Some(hex) => {
                    let mut digest = [0u8; 32];
                    if hex::decode_to_slice(&hex, &mut digest).is_err() {
                        problems.push(format!(
                            "OAuth client {}: stored digest is not hex",
                            client.id
                        ));
                        continue;
                    }
                    Some(digest)
                }
            };
            let keys = match &client.jwks {
                None => None,
                Some(jwks) => match tollgate_oauth::Jwks::parse(jwks)
                    .and_then(|j| tollgate_oauth::KeySet::new(&j))
                {
                    Ok(keys) => Some(keys),
                    Err(e) => {
                        problems.push(format!("OAuth client {}: JWKS unusable ({e})", client.id));
                        continue;
                    }
                },
            };
            let principal = Arc::new(Principal {
                subject: fold(client.id.0),
                credential_id: client.id.to_string(),
                app_id: client.app_id,
                app_id_str: client.app_id.to_string().into(),
                org_id: client.org_id,
                mode: client.mode,
                scopes: client.scopes.clone(),
                operations: None,
            });
            oauth_clients.insert(
                client.id.to_string(),
                Arc::new(OAuthClientEntry {
                    client,
                    principal,
                    secret_digest,
                    keys,
                }),
            );
        }
        Ok((
            Self {
                keys,
                subscriptions: subscriptions
                    .into_iter()
                    .map(|(app, subs)| (app, subs.into_boxed_slice()))
                    .collect(),
                api_slugs: input
                    .api_slugs
                    .into_iter()
                    .map(|(id, slug)| (id, slug.into_boxed_str()))
                    .collect(),
                directory,
                regions: input.regions,
                oauth_clients,
                token_verifier: input.oauth.verifier,
                revoked_tokens: input
                    .oauth
                    .revoked
                    .iter()
                    .filter_map(|jti| jti.parse().ok())
                    .collect(),
                signing_keys,
                mtls_required: input.mtls_required,
                public: input.public,
            },
            problems,
        ))
    }

    /// The key with this digest, if any.
    pub fn key(&self, digest: &Digest) -> Option<&Arc<KeyEntry>> {
        self.keys.get(digest)
    }

    /// An app's subscriptions (not cancelled), in no particular order.
    pub fn subscriptions_of(&self, app: AppId) -> &[Arc<SubscriptionEntry>] {
        self.subscriptions.get(&app).map_or(&[], |s| s)
    }

    /// An OAuth client (not revoked) by its `client_id`.
    pub fn oauth_client(&self, client_id: &str) -> Option<&Arc<OAuthClientEntry>> {
        self.oauth_clients.get(client_id)
    }

    /// The access-token verifier, when the marketplace issues tokens.
    pub fn token_verifier(&self) -> Option<&tollgate_oauth::AccessTokenVerifier> {
        self.token_verifier.as_ref()
    }

    /// The registered request-signing keys, as the signature verifier resolves them.
    pub fn signing_keys(&self) -> SigningKeys<'_> {
        SigningKeys(&self.signing_keys)
    }

    /// Whether anyone may call the API without a credential.
    pub fn is_public(&self, api: ApiId) -> bool {
        self.public.contains(&api)
    }

    /// Whether the API's calls must come with a TLS client certificate.
    pub fn requires_mtls(&self, api: ApiId) -> bool {
        self.mtls_required.contains(&api)
    }

    /// A registered request-signing key by its id (`keyid`).
    pub fn signing_key(&self, keyid: &str) -> Option<&SigningKeyEntry> {
        self.signing_keys.get(keyid)
    }

    /// Whether the token with this `jti` was revoked.
    pub fn is_revoked(&self, jti: &uuid::Uuid) -> bool {
        self.revoked_tokens.contains(jti)
    }

    /// The slug of a routed API.
    pub fn api_slug(&self, api: ApiId) -> Option<&str> {
        self.api_slugs.get(&api).map(|s| &**s)
    }

    /// The Cedar entities of the subscriptions.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The region of a client address.
    pub fn region(&self, ip: IpAddr) -> Option<&str> {
        self.regions.lookup(ip)
    }

    /// How many keys and subscriptions the index holds.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.keys.len(),
            self.subscriptions.values().map(|s| s.len()).sum(),
        )
    }
}

/// The outcome of looking for the subscription a call runs under.
#[derive(Debug)]
pub enum SubscriptionLookup<'a> {
    /// An active subscription of the caller's mode whose plan includes the operation.
    Active(&'a Arc<SubscriptionEntry>),
    /// Such subscriptions exist but none is active.
    Inactive,
    /// None of the app's subscriptions of this mode includes the operation.
    None,
}

impl Access {
    /// The subscription a call of `principal` to `operation` of `api` runs under.
    pub fn subscription_for(
        &self,
        principal: &Principal,
        api: ApiId,
        operation: &str,
    ) -> SubscriptionLookup<'_> {
        let mut inactive = false;
        for sub in self.subscriptions_of(principal.app_id) {
            if sub.mode != principal.mode || !sub.plan.covers(api, operation) {
                continue;
            }
            if sub.state == SubscriptionState::Active {
                return SubscriptionLookup::Active(sub);
            }
            inactive = true;
        }
        if inactive {
            SubscriptionLookup::Inactive
        } else {
            SubscriptionLookup::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clause_ids_are_stable_and_distinct() {
        assert_eq!(
            clause_id("rate", None, "second"),
            clause_id("rate", None, "second")
        );
        let ids: HashSet<u32> = [
            clause_id("rate", None, "second"),
            clause_id("rate", Some("a"), "second"),
            clause_id("quota", None, "second"),
            clause_id("rate", None, "minute"),
        ]
        .into_iter()
        .collect();
        assert_eq!(ids.len(), 4);
        assert_eq!(clause_name(Some("search"), "month"), "search-month");
        assert_eq!(clause_name(None, "day"), "day");
    }
}
