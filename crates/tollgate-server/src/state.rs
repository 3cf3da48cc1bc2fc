//! The control plane's shared state and its start-up: keyring, token pepper, operator
//! user, and the live gateway snapshot.

use crate::error::ApiError;
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use time::OffsetDateTime;
use tokio::sync::{Mutex, RwLock};
use tollgate_core::model::User;
use tollgate_core::roles::MarketplaceRole;
use tollgate_core::{Clock, UserId};
use tollgate_gateway::SnapshotHandle;
use tollgate_keyring::{KeyRecord, Keyring, MasterKey};
use tollgate_store::{Store, StoreError, StoredKey, Tx};

/// The operator user that the bootstrap admin token acts as.
pub const OPERATOR_EMAIL: &str = "operator@tollgate.local";

/// Everything a handler needs.
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub keyring: RwLock<Keyring>,
    /// Kept to reload the keyring from the store after a failed change.
    pub master: MasterKey,
    /// The user behind the bootstrap admin token.
    pub operator: User,
    /// HMAC key under which tokens are hashed for storage and lookup.
    token_key: hmac::Key,
    /// Keyed digest of the bootstrap admin token.
    operator_digest: String,
    /// The live gateway configuration.
    pub snapshot: SnapshotHandle,
    /// Serialises snapshot rebuilds; holds the last version built.
    pub snapshot_lock: Mutex<u64>,
    /// Set once the first snapshot is live.
    pub ready: AtomicBool,
    /// Set when shutdown begins (readiness then fails so load balancers drain us).
    pub draining: AtomicBool,
    /// Short random id of this marketplace, made on first start (log origins use it).
    pub marketplace_id: String,
    /// Operator-wide Cedar policies (e.g. a global embargo), always applied beside every
    /// plan's policies; every sheet is compiled against them at publish time.
    pub operator_policies: std::sync::RwLock<tollgate_policy::OperatorPolicies>,
    /// The operator's CIDR → region table (term sheets restrict calls by region).
    pub regions: std::sync::RwLock<tollgate_policy::RegionTable>,
    /// Compiled plan versions by plan revision and sheet hash (see `snapshot`).
    pub plan_cache:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tollgate_gateway::PlanRuntime>>>,
    /// Test-mode mocks of APIs, by API id and revision (built from the OpenAPI document).
    pub mock_cache: std::sync::Mutex<
        std::collections::HashMap<(tollgate_core::ApiId, i64), Arc<tollgate_openapi::MockTable>>,
    >,
    /// The marketplace's public URL (the gateway's): the OAuth issuer and the access
    /// tokens' audience. `serve` sets it from the gateway address unless configured.
    pub public_url: std::sync::RwLock<String>,
    /// `jti`s of `private_key_jwt` client assertions already used, until they expire.
    pub assertion_jtis: std::sync::Mutex<std::collections::HashMap<String, OffsetDateTime>>,
    /// The gateway's rate limits and quotas (persisted by housekeeping).
    pub limiter: Arc<tollgate_limits::LocalLimiter>,
    /// The usage ledger, once `serve` opened it (absent in tests that do not need it).
    pub ledger: std::sync::OnceLock<Arc<crate::ledger::Ledger>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("marketplace_id", &self.marketplace_id)
            .finish_non_exhaustive()
    }
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("keyring: {0}")]
    Keyring(#[from] tollgate_keyring::Error),
    #[error("stored key {0} is unreadable: {1}")]
    KeyRecord(String, serde_json::Error),
    #[error("the stored token pepper is corrupt")]
    Pepper,
}

/// Persists keyring records in `tx`.
pub async fn save_keys(
    tx: &mut Tx,
    records: &[KeyRecord],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    for r in records {
        let record = serde_json::to_value(r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let k = StoredKey {
            id: r.id.to_string(),
            purpose: r.purpose.as_str().to_owned(),
            state: r.state.as_str().to_owned(),
            record,
        };
        tx.upsert_key(&k, at).await?;
    }
    Ok(())
}

/// Loads the keyring from the store, creating any missing keys.
pub async fn load_keyring(
    store: &Store,
    master: &MasterKey,
    now: OffsetDateTime,
) -> Result<Keyring, InitError> {
    let mut tx = store.write().await?;
    let mut records = Vec::new();
    for k in tx.list_keys().await? {
        records.push(
            serde_json::from_value::<KeyRecord>(k.record)
                .map_err(|e| InitError::KeyRecord(k.id.clone(), e))?,
        );
    }
    let mut keyring = Keyring::open(records, master)?;
    let mut changed = keyring.apply_time(now);
    changed.extend(keyring.ensure_all(now)?);
    save_keys(&mut tx, &changed, now).await?;
    tx.commit().await?;
    Ok(keyring)
}

impl AppState {
    /// Opens the marketplace state: keyring (keys created on first start), token pepper,
    /// operator user, marketplace id. `admin_token` is the bootstrap operator credential.
    pub async fn init(
        store: Store,
        clock: Arc<dyn Clock>,
        master: MasterKey,
        admin_token: &str,
        snapshot: SnapshotHandle,
    ) -> Result<Self, InitError> {
        let now = truncate(clock.now());
        let keyring = load_keyring(&store, &master, now).await?;

        let mut tx = store.write().await?;
        // The pepper that keys token hashes is a secret at rest: sealed by the keyring.
        const AAD: &[u8] = b"tollgate/token-pepper/v1";
        let pepper = match tx.get_meta("token_pepper").await? {
            Some(sealed) => {
                let blob = STANDARD.decode(sealed).map_err(|_| InitError::Pepper)?;
                keyring.decrypt(&blob, AAD)?.to_vec()
            }
            None => {
                let mut p = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut p).map_err(|_| InitError::Pepper)?;
                let sealed = keyring.encrypt(&p, AAD)?;
                tx.set_meta("token_pepper", &STANDARD.encode(sealed))
                    .await?;
                p
            }
        };
        let marketplace_id = match tx.get_meta("marketplace_id").await? {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
                tx.set_meta("marketplace_id", &id).await?;
                id
            }
        };
        let operator = match tx.get_user_by_email(OPERATOR_EMAIL).await? {
            Some(u) => u,
            None => {
                let u = User {
                    id: UserId::new(),
                    email: OPERATOR_EMAIL.to_owned(),
                    name: "Marketplace operator".to_owned(),
                    marketplace_role: Some(MarketplaceRole::Operator),
                    created_at: now,
                };
                tx.insert_user(&u).await?;
                u
            }
        };
        tx.commit().await?;

        let token_key = hmac::Key::new(hmac::HMAC_SHA256, &pepper);
        let operator_digest = hex::encode(hmac::sign(&token_key, admin_token.as_bytes()));
        Ok(Self {
            store,
            clock,
            keyring: RwLock::new(keyring),
            master,
            operator,
            token_key,
            operator_digest,
            snapshot,
            snapshot_lock: Mutex::new(0),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            marketplace_id,
            operator_policies: std::sync::RwLock::new(tollgate_policy::OperatorPolicies::none()),
            regions: std::sync::RwLock::default(),
            plan_cache: std::sync::Mutex::default(),
            mock_cache: std::sync::Mutex::default(),
            public_url: std::sync::RwLock::new("http://127.0.0.1:7800".to_owned()),
            assertion_jtis: std::sync::Mutex::default(),
            limiter: Arc::new(tollgate_limits::LocalLimiter::new()),
            ledger: std::sync::OnceLock::new(),
        })
    }

    /// The keyed digest under which a token is stored and looked up.
    pub fn token_digest(&self, token: &str) -> String {
        hex::encode(self.token_digest_bytes(token))
    }

    /// The keyed hash of a client address that usage events carry instead of the address
    /// (128 bits, hex): the same address always gives the same hash in this marketplace,
    /// and without the marketplace's pepper it cannot be reversed by trying addresses.
    pub fn client_ip_hash(&self, ip: std::net::IpAddr) -> String {
        let mut ctx = hmac::Context::with_key(&self.token_key);
        ctx.update(b"tollgate/client-ip/v1\0");
        ctx.update(ip.to_string().as_bytes());
        hex::encode(&ctx.sign().as_ref()[..16])
    }

    /// [`AppState::token_digest`] as bytes (what the gateway's index is keyed by).
    pub fn token_digest_bytes(&self, token: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.token_key, token.as_bytes()).as_ref());
        out
    }

    /// Whether `digest` is the bootstrap operator token's, in constant time.
    pub fn is_operator_token(&self, digest: &str) -> bool {
        use subtle::ConstantTimeEq;
        digest
            .as_bytes()
            .ct_eq(self.operator_digest.as_bytes())
            .into()
    }

    /// The current time, truncated to microseconds (what PostgreSQL stores), so an object
    /// returned at creation equals the same object read back.
    pub fn now(&self) -> OffsetDateTime {
        truncate(self.clock.now())
    }

    /// The operator-wide policies in force.
    pub fn operator_policies(&self) -> tollgate_policy::OperatorPolicies {
        self.operator_policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The OAuth issuer and access-token audience.
    pub fn public_url(&self) -> String {
        self.public_url
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The operator's region table.
    pub fn regions(&self) -> tollgate_policy::RegionTable {
        self.regions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the operator policies; compiled plan versions are dropped so the next
    /// snapshot compiles every plan against them.
    pub fn set_operator_policies(&self, policies: tollgate_policy::OperatorPolicies) {
        *self
            .operator_policies
            .write()
            .unwrap_or_else(|e| e.into_inner()) = policies;
        self.plan_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The gateway's API-key check, keyed with the same pepper as stored key digests.
    pub fn credential_authenticator(&self) -> tollgate_gateway::CredentialAuthenticator {
        tollgate_gateway::CredentialAuthenticator::new(self.token_key.clone())
    }

    /// Whether the server is ready for traffic.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }
}

fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

/// A generated secret: `prefix` + 43 characters of URL-safe base64 (256 bits).
pub fn generate_secret(prefix: &str) -> Result<String, ApiError> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).map_err(ApiError::internal)?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}
