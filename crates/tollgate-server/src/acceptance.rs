//! Acceptance of term sheets: an immutable record of who accepted which sheet version
//! (by hash) for which subscription, when and from where, signed with the marketplace's
//! acceptance key. A subscription to a plan with terms cannot exist or become active
//! without one, and no admin path bypasses it.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use base64::Engine as _;
use time::format_description::well_known::Rfc3339;
use tollgate_core::model::{ACCEPTANCE_V1, Acceptance, AcceptanceRecord, Subscription, TermSheet};
use tollgate_core::{AcceptanceId, FieldError};
use tollgate_keyring::KeyPurpose;

/// Where the acceptance came from, as seen by the control plane.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Checks that the subscriber accepted exactly `terms` (by hash): 422 otherwise, naming
/// the hash to accept so a client can show the sheet and ask.
pub fn check_accepts(
    field: &str,
    offered: Option<&str>,
    terms: &TermSheet,
) -> Result<(), ApiError> {
    match offered {
        Some(h) if h.eq_ignore_ascii_case(&terms.sha256) => Ok(()),
        Some(_) => Err(ApiError::validation(vec![FieldError {
            pointer: field.to_owned(),
            detail: format!(
                "does not match the plan's current terms {} v{} (sha256 {}); read them and accept that hash",
                terms.sheet_id, terms.version, terms.sha256
            ),
        }])),
        None => Err(ApiError::validation(vec![FieldError {
            pointer: field.to_owned(),
            detail: format!(
                "the plan has terms {} v{}: accept them by sending their sha256 {}",
                terms.sheet_id, terms.version, terms.sha256
            ),
        }])),
    }
}

/// Makes and signs the acceptance of `terms` for `sub` by the caller.
pub async fn sign(
    state: &AppState,
    caller: &Caller,
    sub: &Subscription,
    terms: &TermSheet,
    origin: &Origin,
) -> Result<Acceptance, ApiError> {
    let record = AcceptanceRecord {
        type_: ACCEPTANCE_V1.to_owned(),
        id: AcceptanceId::new(),
        subscription_id: sub.id,
        app_id: sub.app_id,
        plan_id: sub.plan_id,
        consumer_org_id: sub.consumer_org_id,
        provider_org_id: sub.provider_org_id,
        terms_id: terms.id,
        terms_sha256: terms.sha256.clone(),
        sheet_id: terms.sheet_id.clone(),
        sheet_version: terms.version.clone(),
        accepted_by: caller.user.id,
        // A subscription on a test clock accepts at the clock's time (billing reads it).
        accepted_at: crate::billing::now_for(state, sub.id)
            .format(&Rfc3339)
            .map_err(ApiError::internal)?,
        ip: origin.ip.clone(),
        user_agent: origin.user_agent.clone(),
    };
    let ring = state.keyring.read().await;
    let sig = ring
        .sign(KeyPurpose::AcceptanceSigning, &record.signing_bytes())
        .map_err(ApiError::internal)?;
    Ok(Acceptance {
        record,
        key_id: sig.key_id.to_string(),
        signature: base64::engine::general_purpose::STANDARD.encode(sig.bytes),
    })
}

/// Verifies an acceptance's signature with the public key `public_key` (base64 raw
/// Ed25519).
pub fn verify_with(a: &Acceptance, public_key: &str) -> Result<(), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(public_key)
        .map_err(|_| "the public key is not base64".to_owned())?;
    let sig = b64
        .decode(&a.signature)
        .map_err(|_| "the signature is not base64".to_owned())?;
    tollgate_keyring::verify_ed25519(&key, &a.record.signing_bytes(), &sig)
        .map_err(|_| "the signature does not verify".to_owned())
}

/// The public key (base64) of `key_id`: this marketplace's own signing keys (any state,
/// since old records stay verifiable), then imported ones.
pub async fn public_key(
    state: &AppState,
    tx: &mut tollgate_store::Tx,
    key_id: &str,
) -> Result<Option<String>, ApiError> {
    if let Ok(id) = key_id.parse() {
        let ring = state.keyring.read().await;
        if let Some(pk) = ring.get(id).and_then(|r| r.public_key.as_ref()) {
            return Ok(Some(base64::engine::general_purpose::STANDARD.encode(pk)));
        }
    }
    Ok(tx
        .list_verification_keys()
        .await?
        .into_iter()
        .find(|(k, _, _)| k == key_id)
        .map(|(_, _, pk)| pk))
}
