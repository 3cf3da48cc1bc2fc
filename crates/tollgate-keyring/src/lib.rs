//! The marketplace keyring: every signing, MAC and encryption key Tollgate uses, each with
//! an id, a purpose and a rotation state, its private part sealed under a master key.
//!
//! # Shape
//!
//! - [`KeyPurpose`] names what a key is for and fixes its [`KeyAlgorithm`] and its default
//!   rotation overlap.
//! - [`MasterKey`] is the 32-byte root secret the binary reads from a file; it seals every
//!   private key at rest and never leaves memory in any other form.
//! - [`KeyRecord`] is plain data the store persists: public part in clear, private part
//!   sealed. Records are the only thing that outlives a process.
//! - [`Keyring`] is opened from the records and the master key, holds the unsealed keys in
//!   memory, and performs every key use: [`Keyring::sign`], [`Keyring::verify`],
//!   [`Keyring::hmac`], [`Keyring::encrypt`] / [`Keyring::decrypt`] (envelope encryption,
//!   see [`envelope`]). Each use reports the [`KeyId`] it used, so callers can record it
//!   (DESIGN §5: "every key use records its key id").
//!
//! # Lifecycle
//!
//! A key is `pending` (published, not yet used), then `active` (the one key of its purpose
//! that signs, MACs or encrypts), then `retiring` (still verifies or decrypts until its
//! `retire_at`), then `retired` (kept as a record, its secret no longer unsealed).
//! [`Keyring::rotate`] and [`Keyring::apply_time`] move keys along; every change comes back
//! as records for the caller to persist.
//!
//! # Example
//!
//! ```
//! use time::macros::datetime;
//! use tollgate_keyring::{KeyPurpose, Keyring, MasterKey, envelope};
//!
//! let master = MasterKey::from_encoded(&MasterKey::generate()?.encode())?;
//! let now = datetime!(2026-01-01 00:00 UTC);
//! // Records come from the store; every record a call returns goes back to it.
//! let mut keyring = Keyring::open(Vec::new(), &master)?;
//! let created = keyring.ensure_all(now)?;
//! assert_eq!(created.len(), KeyPurpose::ALL.len());
//!
//! let signature = keyring.sign(KeyPurpose::InvoiceSigning, b"invoice 42")?;
//! keyring.verify(signature.key_id, b"invoice 42", &signature.bytes)?;
//!
//! let blob = keyring.encrypt(b"upstream api key", b"apis/42/credential")?;
//! let rotation = keyring.rotate(KeyPurpose::DataEncryption, now, None)?;
//! assert_ne!(envelope::kek_id(&blob)?, rotation.new.id);
//! assert_eq!(*keyring.decrypt(&blob, b"apis/42/credential")?, b"upstream api key");
//! # Ok::<(), tollgate_keyring::Error>(())
//! ```
//!
//! # Invariants
//!
//! The crate is pure: no file or network IO, no async, and it never reads the clock — `now`
//! is always an argument. All cryptography is aws-lc-rs; secrets in memory live in types
//! that zeroize on drop.

pub mod envelope;
mod error;
mod keyring;
mod master;
mod purpose;
mod record;

pub use error::{Error, Result};
pub use keyring::{HmacTag, Keyring, Rotation, Signature, verify_ed25519};
pub use master::MasterKey;
pub use purpose::{KeyAlgorithm, KeyPurpose};
pub use record::{KeyRecord, KeyState};
pub use tollgate_core::KeyId;
/// Secrets this crate hands out (webhook secrets, opened plaintext) come in this wrapper,
/// which zeroizes them on drop.
pub use zeroize::Zeroizing;
