//! The crate's one error type.

use crate::{KeyAlgorithm, KeyPurpose, KeyState};
use tollgate_core::KeyId;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the keyring. Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The master key text is neither 32 bytes of base64 nor 64 hex characters.
    #[error("invalid master key: {reason}")]
    InvalidMasterKey { reason: &'static str },

    /// A record was sealed under a different master key than the one loaded.
    #[error(
        "key {key_id} was sealed by master key {sealed_by}, but the loaded master key is {loaded}"
    )]
    WrongMasterKey {
        key_id: KeyId,
        sealed_by: String,
        loaded: String,
    },

    /// The sealed secret does not open under this master key for this record: it was
    /// corrupted, or moved from another record.
    #[error(
        "cannot unseal key {key_id}: its sealed secret is corrupted, belongs to another record, or was sealed by another master key"
    )]
    Unseal { key_id: KeyId },

    /// A record is internally inconsistent (bad secret length, public key mismatch, …).
    #[error("key {key_id} is malformed: {reason}")]
    MalformedRecord { key_id: KeyId, reason: &'static str },

    /// Two records share one id.
    #[error("duplicate key id {0}")]
    DuplicateKey(KeyId),

    /// More than one record of a purpose is active; the store must hold at most one.
    #[error("more than one active {0} key")]
    MultipleActive(KeyPurpose),

    /// No record with this id is in the keyring.
    #[error("unknown key {0}")]
    UnknownKey(KeyId),

    /// The purpose has no active key; call [`Keyring::ensure`](crate::Keyring::ensure).
    #[error("no active {0} key")]
    NoActiveKey(KeyPurpose),

    /// The key exists but is of the wrong kind for the operation.
    #[error("key {key_id} ({purpose}) is {algorithm}, not {expected}")]
    WrongAlgorithm {
        key_id: KeyId,
        purpose: KeyPurpose,
        algorithm: KeyAlgorithm,
        expected: KeyAlgorithm,
    },

    /// The key exists but its state forbids the operation (e.g. verifying with a retired
    /// key, or with a pending key that has never signed).
    #[error("key {key_id} is {state} and cannot be used for this")]
    KeyUnusable { key_id: KeyId, state: KeyState },

    /// An Ed25519 signature does not verify under the named key.
    #[error("signature does not verify under key {key_id}")]
    BadSignature { key_id: KeyId },

    /// An Ed25519 signature does not verify under a caller-supplied public key.
    #[error("signature does not verify under the given public key")]
    BadSignatureForPublicKey,

    /// An HMAC tag does not verify under the named key.
    #[error("mac does not verify under key {key_id}")]
    BadMac { key_id: KeyId },

    /// An envelope blob is too short or otherwise not a blob this crate wrote.
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(&'static str),

    /// An envelope blob has a version this crate does not know.
    #[error("unsupported envelope version {0}")]
    UnsupportedEnvelopeVersion(u8),

    /// An envelope blob does not open: a byte of it, or the aad, changed.
    #[error("envelope sealed under key {key_id} does not open: the blob or its aad was changed")]
    EnvelopeOpen { key_id: KeyId },

    /// A rotation overlap was negative.
    #[error("rotation overlap must not be negative, got {0}")]
    NegativeOverlap(time::Duration),

    /// Text that is not a known key purpose.
    #[error("unknown key purpose {0:?}")]
    UnknownPurpose(String),

    /// The crypto backend failed (random generation or key construction); not expected.
    #[error("crypto backend failed: {0}")]
    Crypto(&'static str),
}
