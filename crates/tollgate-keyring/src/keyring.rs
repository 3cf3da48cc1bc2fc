//! The in-memory keyring: unsealed keys, rotation, and every key use.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use aws_lc_rs::aead::LessSafeKey;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::envelope;
use crate::{Error, KeyAlgorithm, KeyId, KeyPurpose, KeyRecord, KeyState, MasterKey, Result};

/// Length of an Ed25519 signature.
const SIGNATURE_LEN: usize = 64;
/// Length of an HMAC-SHA-256 tag, and of the symmetric secrets this crate generates.
const SYMMETRIC_LEN: usize = 32;

/// An Ed25519 signature and the key that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The signing key; publish or store it beside the signature.
    pub key_id: KeyId,
    /// The 64-byte signature.
    pub bytes: [u8; SIGNATURE_LEN],
}

/// An HMAC-SHA-256 tag and the key that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HmacTag {
    /// The MAC key.
    pub key_id: KeyId,
    /// The 32-byte tag.
    pub bytes: [u8; SYMMETRIC_LEN],
}

/// What [`Keyring::rotate`] changed: both parts must be persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The new active key.
    pub new: KeyRecord,
    /// Existing records whose state or `retire_at` changed: the previously active key,
    /// now retiring, and retiring keys of the purpose whose time had come.
    pub updated: Vec<KeyRecord>,
}

/// An unsealed private part, parsed once so each use is cheap. Every variant clears its
/// memory on drop: aws-lc frees key material with cleansing, `Zeroizing` does the rest.
enum Secret {
    Ed25519(Ed25519KeyPair),
    Hmac {
        /// Boxed because the precomputed HMAC state is over a kilobyte.
        key: Box<hmac::Key>,
        raw: Zeroizing<Vec<u8>>,
    },
    Aes(LessSafeKey),
}

struct Entry {
    record: KeyRecord,
    /// `None` exactly when the record is retired: retired secrets are never unsealed.
    secret: Option<Secret>,
}

/// Every key of the marketplace, opened from the store's records with the master key.
///
/// Reads (`sign`, `verify`, `hmac`, `encrypt`, `decrypt`, …) take `&self`, so one keyring
/// can be shared behind an `Arc`. Changes (`ensure`, `rotate`, `schedule`, `apply_time`)
/// take `&mut self` and return the records to persist; the keyring itself stores nothing.
pub struct Keyring {
    /// Kept to seal keys this keyring generates later.
    master: MasterKey,
    /// Ordered by id, which is creation order because ids are UUIDv7.
    entries: BTreeMap<KeyId, Entry>,
}

impl Keyring {
    /// Opens the keyring: checks the records are consistent and unseals every record that
    /// is not retired.
    ///
    /// Fails, naming the key, on a record sealed by another master key
    /// ([`Error::WrongMasterKey`]), a sealed secret that does not open for its record
    /// ([`Error::Unseal`]), a malformed record, a duplicate id, or two active keys of one
    /// purpose.
    pub fn open(records: Vec<KeyRecord>, master: &MasterKey) -> Result<Self> {
        let fingerprint = master.fingerprint();
        let mut entries = BTreeMap::new();
        let mut active = BTreeSet::new();
        for record in records {
            check_algorithm(&record, record.purpose.algorithm())?;
            if record.state == KeyState::Active && !active.insert(record.purpose) {
                return Err(Error::MultipleActive(record.purpose));
            }
            let secret = match record.state {
                KeyState::Retired => None,
                _ => Some(unseal(&record, master, &fingerprint)?),
            };
            let id = record.id;
            if entries.insert(id, Entry { record, secret }).is_some() {
                return Err(Error::DuplicateKey(id));
            }
        }
        Ok(Self {
            master: master.duplicate(),
            entries,
        })
    }

    /// Generates a new active key of `purpose`, sealed under `master`, without adding it
    /// to any keyring: for bootstrapping a store. A running keyring uses
    /// [`Keyring::ensure`] or [`Keyring::rotate`] instead, which also keep it in memory.
    pub fn generate(
        purpose: KeyPurpose,
        now: OffsetDateTime,
        master: &MasterKey,
    ) -> Result<KeyRecord> {
        new_key(purpose, KeyState::Active, now, now, master).map(|entry| entry.record)
    }

    /// Makes sure `purpose` has an active key. Returns the new record to persist if one
    /// was created, `None` if an active key already existed.
    pub fn ensure(
        &mut self,
        purpose: KeyPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<KeyRecord>> {
        if self.active(purpose).is_some() {
            return Ok(None);
        }
        let entry = new_key(purpose, KeyState::Active, now, now, &self.master)?;
        Ok(Some(self.insert(entry)))
    }

    /// [`Keyring::ensure`] for every purpose, e.g. at startup; returns the new records.
    pub fn ensure_all(&mut self, now: OffsetDateTime) -> Result<Vec<KeyRecord>> {
        let mut created = Vec::new();
        for purpose in KeyPurpose::ALL {
            created.extend(self.ensure(purpose, now)?);
        }
        Ok(created)
    }

    /// Replaces the active key of `purpose` with a new one.
    ///
    /// The previous active key becomes `retiring` with `retire_at = now + overlap`,
    /// `overlap` defaulting to [`KeyPurpose::default_overlap`] (no `retire_at` if that is
    /// `None`). Retiring keys of the purpose whose `retire_at` is not after `now` become
    /// `retired` — so an overlap of [`Duration::ZERO`], the answer to a compromised key,
    /// retires the old key at once. Pending keys of the purpose are left alone.
    pub fn rotate(
        &mut self,
        purpose: KeyPurpose,
        now: OffsetDateTime,
        overlap: Option<Duration>,
    ) -> Result<Rotation> {
        let overlap = match overlap {
            Some(overlap) if overlap.is_negative() => return Err(Error::NegativeOverlap(overlap)),
            Some(overlap) => Some(overlap),
            None => purpose.default_overlap(),
        };
        // Generate first: if that fails, the keyring is unchanged.
        let entry = new_key(purpose, KeyState::Active, now, now, &self.master)?;
        let mut changed = BTreeSet::new();
        if let Some(old) = self.active_id(purpose) {
            self.demote(old, now, overlap);
            changed.insert(old);
        }
        self.retire_due(Some(purpose), now, &mut changed);
        let new = self.insert(entry);
        Ok(Rotation {
            new,
            updated: self.cloned(&changed),
        })
    }

    /// Creates a `pending` key of `purpose` that becomes active at `activates_at`, so its
    /// public key can be published (JWKS, verifier keys, webhook receivers) before it is
    /// used. [`Keyring::apply_time`] activates it once `now >= activates_at`. Returns the
    /// record to persist.
    pub fn schedule(
        &mut self,
        purpose: KeyPurpose,
        now: OffsetDateTime,
        activates_at: OffsetDateTime,
    ) -> Result<KeyRecord> {
        let entry = new_key(purpose, KeyState::Pending, now, activates_at, &self.master)?;
        Ok(self.insert(entry))
    }

    /// Moves keys along as time passes: pending keys whose `activated_at` has come become
    /// active (the key they replace becomes retiring with its purpose's default overlap,
    /// counted from the activation time), then retiring keys whose `retire_at` is not after
    /// `now` become retired and their secrets are dropped from memory. Returns the changed
    /// records, to persist; call it periodically and before publishing verification keys.
    pub fn apply_time(&mut self, now: OffsetDateTime) -> Vec<KeyRecord> {
        let mut due: Vec<(OffsetDateTime, KeyId, KeyPurpose)> = self
            .entries
            .values()
            .map(|e| &e.record)
            .filter(|r| r.state == KeyState::Pending && r.activated_at <= now)
            .map(|r| (r.activated_at, r.id, r.purpose))
            .collect();
        due.sort();
        let mut changed = BTreeSet::new();
        for (at, id, purpose) in due {
            if let Some(old) = self.active_id(purpose) {
                self.demote(old, at, purpose.default_overlap());
                changed.insert(old);
            }
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.record.state = KeyState::Active;
                changed.insert(id);
            }
        }
        self.retire_due(None, now, &mut changed);
        self.cloned(&changed)
    }

    /// The active key of `purpose`, if any.
    pub fn active(&self, purpose: KeyPurpose) -> Option<&KeyRecord> {
        self.records()
            .find(|r| r.purpose == purpose && r.state == KeyState::Active)
    }

    /// The record with this id, in any state.
    pub fn get(&self, key_id: KeyId) -> Option<&KeyRecord> {
        self.entries.get(&key_id).map(|e| &e.record)
    }

    /// Every record, retired ones included, oldest first. Retired Ed25519 records keep
    /// their public keys, which is what an archive of verifier keys is built from.
    pub fn records(&self) -> impl Iterator<Item = &KeyRecord> {
        self.entries.values().map(|e| &e.record)
    }

    /// The keys of `purpose` to publish for verification at `now` (JWKS, note verifier
    /// keys, webhook secrets shown to receivers), oldest first: pending, active, and
    /// retiring keys whose `retire_at` has not passed. A retiring key past its `retire_at`
    /// is left out even before [`Keyring::apply_time`] retires it.
    pub fn verification_keys(
        &self,
        purpose: KeyPurpose,
        now: OffsetDateTime,
    ) -> impl Iterator<Item = &KeyRecord> {
        self.records().filter(move |r| {
            r.purpose == purpose
                && match r.state {
                    KeyState::Pending | KeyState::Active => true,
                    KeyState::Retiring => r.retire_at.is_none_or(|at| at > now),
                    KeyState::Retired => false,
                }
        })
    }

    /// Signs `msg` with the active key of an Ed25519 `purpose`.
    pub fn sign(&self, purpose: KeyPurpose, msg: &[u8]) -> Result<Signature> {
        let entry = self.active_entry(purpose, KeyAlgorithm::Ed25519)?;
        let Some(Secret::Ed25519(pair)) = &entry.secret else {
            return Err(secret_missing(&entry.record));
        };
        let mut bytes = [0u8; SIGNATURE_LEN];
        bytes.copy_from_slice(pair.sign(msg).as_ref());
        Ok(Signature {
            key_id: entry.record.id,
            bytes,
        })
    }

    /// Verifies an Ed25519 signature by the key `key_id`, which must be active or
    /// retiring. The key's state decides, not the clock: a retiring key verifies until
    /// [`Keyring::apply_time`] (or [`Keyring::rotate`]) retires it.
    pub fn verify(&self, key_id: KeyId, msg: &[u8], signature: &[u8]) -> Result<()> {
        let record = &self
            .usable(key_id, KeyAlgorithm::Ed25519, USE_STATES)?
            .record;
        let public_key = record.public_key.as_deref().ok_or(Error::MalformedRecord {
            key_id,
            reason: "ed25519 key without a public key",
        })?;
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(msg, signature)
            .map_err(|_| Error::BadSignature { key_id })
    }

    /// HMAC-SHA-256 of `msg` with the active key of an HMAC `purpose` (the webhook
    /// secret).
    pub fn hmac(&self, purpose: KeyPurpose, msg: &[u8]) -> Result<HmacTag> {
        let entry = self.active_entry(purpose, KeyAlgorithm::HmacSha256)?;
        let Some(Secret::Hmac { key, .. }) = &entry.secret else {
            return Err(secret_missing(&entry.record));
        };
        let mut bytes = [0u8; SYMMETRIC_LEN];
        bytes.copy_from_slice(hmac::sign(key, msg).as_ref());
        Ok(HmacTag {
            key_id: entry.record.id,
            bytes,
        })
    }

    /// Checks an HMAC-SHA-256 tag by the key `key_id` (active or retiring) in constant
    /// time.
    pub fn hmac_verify(&self, key_id: KeyId, msg: &[u8], tag: &[u8]) -> Result<()> {
        let entry = self.usable(key_id, KeyAlgorithm::HmacSha256, USE_STATES)?;
        let Some(Secret::Hmac { key, .. }) = &entry.secret else {
            return Err(secret_missing(&entry.record));
        };
        hmac::verify(key, msg, tag).map_err(|_| Error::BadMac { key_id })
    }

    /// The raw 32-byte secret of an HMAC key, for formats that hand the secret to the
    /// receiver (Standard Webhooks `whsec_…`). Pending keys are included, so receivers can
    /// be given a secret before it signs.
    pub fn webhook_secret_bytes(&self, key_id: KeyId) -> Result<Zeroizing<Vec<u8>>> {
        let entry = self.usable(key_id, KeyAlgorithm::HmacSha256, PUBLISHED_STATES)?;
        let Some(Secret::Hmac { raw, .. }) = &entry.secret else {
            return Err(secret_missing(&entry.record));
        };
        Ok(raw.clone())
    }

    /// Envelope-encrypts `plaintext` for storage under the active `data_encryption` key;
    /// `aad` is context the caller must present again to decrypt (e.g. table, column and
    /// row id), so a blob copied elsewhere does not decrypt. The blob names its key; see
    /// [`envelope`] for the layout and [`envelope::kek_id`] to read the id.
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let entry = self.active_entry(KeyPurpose::DataEncryption, KeyAlgorithm::Aes256Gcm)?;
        let Some(Secret::Aes(kek)) = &entry.secret else {
            return Err(secret_missing(&entry.record));
        };
        envelope::seal(entry.record.id, kek, plaintext, aad)
    }

    /// Decrypts a blob from [`Keyring::encrypt`] with the key named inside it, active or
    /// retiring, so data sealed before a rotation still opens after it.
    pub fn decrypt(&self, blob: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        envelope::open(blob, aad, |key_id| {
            let entry = self.usable(key_id, KeyAlgorithm::Aes256Gcm, USE_STATES)?;
            match &entry.secret {
                Some(Secret::Aes(kek)) => Ok(kek),
                _ => Err(secret_missing(&entry.record)),
            }
        })
    }

    fn active_id(&self, purpose: KeyPurpose) -> Option<KeyId> {
        self.active(purpose).map(|r| r.id)
    }

    fn active_entry(&self, purpose: KeyPurpose, expected: KeyAlgorithm) -> Result<&Entry> {
        let id = self.active_id(purpose).ok_or(Error::NoActiveKey(purpose))?;
        let entry = &self.entries[&id];
        check_algorithm(&entry.record, expected)?;
        Ok(entry)
    }

    /// The entry `key_id` if it has the expected algorithm and one of the `allowed` states.
    fn usable(
        &self,
        key_id: KeyId,
        expected: KeyAlgorithm,
        allowed: &[KeyState],
    ) -> Result<&Entry> {
        let entry = self.entries.get(&key_id).ok_or(Error::UnknownKey(key_id))?;
        check_algorithm(&entry.record, expected)?;
        if !allowed.contains(&entry.record.state) {
            return Err(Error::KeyUnusable {
                key_id,
                state: entry.record.state,
            });
        }
        Ok(entry)
    }

    fn insert(&mut self, entry: Entry) -> KeyRecord {
        let record = entry.record.clone();
        self.entries.insert(record.id, entry);
        record
    }

    fn demote(&mut self, id: KeyId, at: OffsetDateTime, overlap: Option<Duration>) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.record.state = KeyState::Retiring;
            entry.record.retire_at = overlap.map(|overlap| at + overlap);
        }
    }

    /// Retires the retiring keys (of one purpose, or all) whose `retire_at` is not after
    /// `now`, dropping their secrets.
    fn retire_due(
        &mut self,
        purpose: Option<KeyPurpose>,
        now: OffsetDateTime,
        changed: &mut BTreeSet<KeyId>,
    ) {
        for entry in self.entries.values_mut() {
            let record = &mut entry.record;
            if record.state == KeyState::Retiring
                && purpose.is_none_or(|p| p == record.purpose)
                && record.retire_at.is_some_and(|at| at <= now)
            {
                record.state = KeyState::Retired;
                entry.secret = None;
                changed.insert(record.id);
            }
        }
    }

    fn cloned(&self, ids: &BTreeSet<KeyId>) -> Vec<KeyRecord> {
        ids.iter()
            .map(|id| self.entries[id].record.clone())
            .collect()
    }
}

/// States in which a key verifies, checks MACs and decrypts.
const USE_STATES: &[KeyState] = &[KeyState::Active, KeyState::Retiring];
/// States in which a secret may be handed out to be published.
const PUBLISHED_STATES: &[KeyState] = &[KeyState::Pending, KeyState::Active, KeyState::Retiring];

/// Verifies an Ed25519 signature under a raw 32-byte public key, e.g. one from an archived
/// (retired) record when checking an old checkpoint or invoice.
pub fn verify_ed25519(public_key: &[u8], msg: &[u8], signature: &[u8]) -> Result<()> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(msg, signature)
        .map_err(|_| Error::BadSignatureForPublicKey)
}

fn check_algorithm(record: &KeyRecord, expected: KeyAlgorithm) -> Result<()> {
    if record.algorithm == expected && record.purpose.algorithm() == expected {
        return Ok(());
    }
    Err(Error::WrongAlgorithm {
        key_id: record.id,
        purpose: record.purpose,
        algorithm: record.algorithm,
        expected,
    })
}

/// An entry that should hold a secret of its algorithm does not. `open` and `new_key`
/// establish that it does, so this is a bug, reported rather than panicked on.
fn secret_missing(record: &KeyRecord) -> Error {
    Error::MalformedRecord {
        key_id: record.id,
        reason: "secret not loaded",
    }
}

fn new_key(
    purpose: KeyPurpose,
    state: KeyState,
    now: OffsetDateTime,
    activated_at: OffsetDateTime,
    master: &MasterKey,
) -> Result<Entry> {
    let id = KeyId::new();
    let (plain, public_key) = match purpose.algorithm() {
        KeyAlgorithm::Ed25519 => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| Error::Crypto("ed25519 key generation"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| Error::Crypto("ed25519 key generation"))?;
            let public_key = pair.public_key().as_ref().to_vec();
            (Zeroizing::new(pkcs8.as_ref().to_vec()), Some(public_key))
        }
        KeyAlgorithm::HmacSha256 | KeyAlgorithm::Aes256Gcm => {
            let mut bytes = Zeroizing::new(vec![0u8; SYMMETRIC_LEN]);
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto("random generation"))?;
            (bytes, None)
        }
    };
    let record = KeyRecord {
        id,
        purpose,
        algorithm: purpose.algorithm(),
        state,
        created_at: now,
        activated_at,
        retire_at: None,
        public_key,
        sealed_secret: master.seal_secret(id, purpose, &plain)?,
        master_fingerprint: master.fingerprint(),
    };
    let secret = parse_secret(&record, plain)?;
    Ok(Entry {
        record,
        secret: Some(secret),
    })
}

fn unseal(record: &KeyRecord, master: &MasterKey, fingerprint: &str) -> Result<Secret> {
    // The fingerprint check comes first only for the clearer message; the AEAD tag is
    // what actually rejects a wrong key.
    if record.master_fingerprint != fingerprint {
        return Err(Error::WrongMasterKey {
            key_id: record.id,
            sealed_by: record.master_fingerprint.clone(),
            loaded: fingerprint.to_owned(),
        });
    }
    let plain = master.open_secret(record.id, record.purpose, &record.sealed_secret)?;
    parse_secret(record, plain)
}

fn parse_secret(record: &KeyRecord, plain: Zeroizing<Vec<u8>>) -> Result<Secret> {
    let malformed = |reason| Error::MalformedRecord {
        key_id: record.id,
        reason,
    };
    match record.algorithm {
        KeyAlgorithm::Ed25519 => {
            let pair = Ed25519KeyPair::from_pkcs8(&plain)
                .map_err(|_| malformed("sealed secret is not an ed25519 pkcs#8 document"))?;
            // The public key is stored in clear and not covered by the seal's AAD, so it
            // is checked against the private key here; a swapped public key would
            // otherwise make `verify` accept another key's signatures.
            if record.public_key.as_deref() != Some(pair.public_key().as_ref()) {
                return Err(malformed(
                    "public key does not match the sealed private key",
                ));
            }
            Ok(Secret::Ed25519(pair))
        }
        KeyAlgorithm::HmacSha256 | KeyAlgorithm::Aes256Gcm if plain.len() != SYMMETRIC_LEN => {
            Err(malformed("sealed secret is not 32 bytes"))
        }
        KeyAlgorithm::HmacSha256 | KeyAlgorithm::Aes256Gcm if record.public_key.is_some() => {
            Err(malformed("symmetric key has a public key"))
        }
        KeyAlgorithm::HmacSha256 => Ok(Secret::Hmac {
            key: Box::new(hmac::Key::new(hmac::HMAC_SHA256, &plain)),
            raw: plain,
        }),
        KeyAlgorithm::Aes256Gcm => envelope::aead_key(&plain).map(Secret::Aes),
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("master", &self.master.fingerprint())
            .field("records", &self.records().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 00:00 UTC);

    fn keyring() -> (MasterKey, Keyring) {
        let master = MasterKey::generate().unwrap();
        let mut keyring = Keyring::open(Vec::new(), &master).unwrap();
        assert_eq!(keyring.ensure_all(T0).unwrap().len(), KeyPurpose::ALL.len());
        (master, keyring)
    }

    fn records(keyring: &Keyring) -> Vec<KeyRecord> {
        keyring.records().cloned().collect()
    }

    fn by_purpose(records: &[KeyRecord], purpose: KeyPurpose) -> KeyRecord {
        records
            .iter()
            .find(|r| r.purpose == purpose)
            .unwrap()
            .clone()
    }

    #[test]
    fn generated_records_reopen_and_work() {
        let master = MasterKey::generate().unwrap();
        let generated: Vec<KeyRecord> = KeyPurpose::ALL
            .into_iter()
            .map(|p| Keyring::generate(p, T0, &master).unwrap())
            .collect();
        for record in &generated {
            assert_eq!(record.state, KeyState::Active);
            assert_eq!(record.algorithm, record.purpose.algorithm());
            assert_eq!(record.master_fingerprint, master.fingerprint());
            assert_eq!(
                record.public_key.as_ref().map(Vec::len),
                (record.algorithm == KeyAlgorithm::Ed25519).then_some(32)
            );
        }
        // The store persists JSON (or columns); reopening goes through that form.
        let json = serde_json::to_string(&generated).unwrap();
        let keyring = Keyring::open(serde_json::from_str(&json).unwrap(), &master).unwrap();
        for record in &generated {
            assert_eq!(keyring.active(record.purpose), Some(record));
        }
        let signature = keyring
            .sign(KeyPurpose::InvoiceSigning, b"invoice")
            .unwrap();
        assert_eq!(
            signature.key_id,
            by_purpose(&generated, KeyPurpose::InvoiceSigning).id
        );
        keyring
            .verify(signature.key_id, b"invoice", &signature.bytes)
            .unwrap();
        let blob = keyring.encrypt(b"at rest", b"row 1").unwrap();
        assert_eq!(
            keyring.decrypt(&blob, b"row 1").unwrap().as_slice(),
            b"at rest"
        );
    }

    #[test]
    fn wrong_master_key_is_a_clear_error_naming_the_key() {
        let (_, keyring) = keyring();
        let mut stored = records(&keyring);
        let other = MasterKey::generate().unwrap();
        let first = stored[0].id;
        let err = Keyring::open(stored.clone(), &other).unwrap_err();
        assert!(
            matches!(&err, Error::WrongMasterKey { key_id, loaded, .. }
                if *key_id == first && *loaded == other.fingerprint()),
            "{err}"
        );
        assert!(err.to_string().contains(&first.to_string()), "{err}");

        // Even with the fingerprint forged to match, the seal itself rejects the key.
        for record in &mut stored {
            record.master_fingerprint = other.fingerprint();
        }
        let err = Keyring::open(stored, &other).unwrap_err();
        assert!(
            matches!(err, Error::Unseal { key_id } if key_id == first),
            "{err}"
        );
    }

    #[test]
    fn sealed_secret_moved_to_another_record_does_not_open() {
        let (master, mut keyring) = keyring();
        let old = keyring.active(KeyPurpose::TokenSigning).unwrap().clone();
        keyring.rotate(KeyPurpose::TokenSigning, T0, None).unwrap();
        let stored = records(&keyring);
        let new = by_purpose(
            &stored
                .iter()
                .filter(|r| r.id != old.id)
                .cloned()
                .collect::<Vec<_>>(),
            KeyPurpose::TokenSigning,
        );

        // Same purpose, other record: sealed secret and public key moved together.
        let mut moved = stored.clone();
        for record in &mut moved {
            if record.id == new.id {
                record.sealed_secret = old.sealed_secret.clone();
                record.public_key = old.public_key.clone();
            }
        }
        let err = Keyring::open(moved, &master).unwrap_err();
        assert!(
            matches!(err, Error::Unseal { key_id } if key_id == new.id),
            "{err}"
        );

        // Other purpose with a secret of the same shape (32 random bytes).
        let webhook = by_purpose(&stored, KeyPurpose::WebhookSecret);
        let data = by_purpose(&stored, KeyPurpose::DataEncryption);
        let mut moved = stored.clone();
        for record in &mut moved {
            if record.id == data.id {
                record.sealed_secret = webhook.sealed_secret.clone();
            }
        }
        let err = Keyring::open(moved, &master).unwrap_err();
        assert!(
            matches!(err, Error::Unseal { key_id } if key_id == data.id),
            "{err}"
        );
    }

    #[test]
    fn tampered_records_do_not_open() {
        let (master, keyring) = keyring();
        let stored = records(&keyring);
        let target = by_purpose(&stored, KeyPurpose::CheckpointSigning);
        for i in 0..target.sealed_secret.len() {
            let mut tampered = stored.clone();
            for record in &mut tampered {
                if record.id == target.id {
                    record.sealed_secret[i] ^= 0x01;
                }
            }
            let err = Keyring::open(tampered, &master).unwrap_err();
            assert!(
                matches!(err, Error::Unseal { key_id } if key_id == target.id),
                "byte {i}: {err}"
            );
        }

        // The public key is outside the seal; swapping it is caught by the key-pair check.
        let other = by_purpose(&stored, KeyPurpose::InvoiceSigning);
        let mut swapped = stored.clone();
        for record in &mut swapped {
            if record.id == target.id {
                record.public_key = other.public_key.clone();
            }
        }
        let err = Keyring::open(swapped, &master).unwrap_err();
        assert!(
            matches!(err, Error::MalformedRecord { key_id, .. } if key_id == target.id),
            "{err}"
        );
    }

    #[test]
    fn inconsistent_record_sets_are_rejected() {
        let master = MasterKey::generate().unwrap();
        let a = Keyring::generate(KeyPurpose::TokenSigning, T0, &master).unwrap();
        let b = Keyring::generate(KeyPurpose::TokenSigning, T0, &master).unwrap();
        assert!(matches!(
            Keyring::open(vec![a.clone(), b], &master),
            Err(Error::MultipleActive(KeyPurpose::TokenSigning))
        ));
        let retiring = KeyRecord {
            state: KeyState::Retiring,
            ..a.clone()
        };
        assert!(matches!(
            Keyring::open(vec![a.clone(), retiring], &master),
            Err(Error::DuplicateKey(id)) if id == a.id
        ));
        let mislabelled = KeyRecord {
            algorithm: KeyAlgorithm::HmacSha256,
            ..a.clone()
        };
        assert!(matches!(
            Keyring::open(vec![mislabelled], &master),
            Err(Error::WrongAlgorithm { key_id, .. }) if key_id == a.id
        ));
    }

    #[test]
    fn retired_records_are_not_unsealed() {
        let master = MasterKey::generate().unwrap();
        let record = KeyRecord {
            state: KeyState::Retired,
            sealed_secret: vec![0; 3],
            master_fingerprint: "00000000".to_owned(),
            ..Keyring::generate(KeyPurpose::TokenSigning, T0, &master).unwrap()
        };
        let keyring = Keyring::open(vec![record.clone()], &master).unwrap();
        assert_eq!(keyring.get(record.id), Some(&record));
        assert!(keyring.active(KeyPurpose::TokenSigning).is_none());
    }

    #[test]
    fn ensure_creates_a_key_only_when_none_is_active() {
        let (_, mut keyring) = keyring();
        let before = keyring.active(KeyPurpose::GatewayAssertion).unwrap().id;
        assert_eq!(
            keyring.ensure(KeyPurpose::GatewayAssertion, T0).unwrap(),
            None
        );
        assert!(keyring.ensure_all(T0).unwrap().is_empty());
        assert_eq!(
            keyring.active(KeyPurpose::GatewayAssertion).unwrap().id,
            before
        );
        assert_eq!(keyring.records().count(), KeyPurpose::ALL.len());
    }

    #[test]
    fn signatures_verify_independently_of_the_keyring() {
        let (_, keyring) = keyring();
        let msg = b"checkpoint body";
        let signature = keyring.sign(KeyPurpose::CheckpointSigning, msg).unwrap();
        let record = keyring.get(signature.key_id).unwrap();
        assert_eq!(record.purpose, KeyPurpose::CheckpointSigning);
        let public_key = record.public_key.as_deref().unwrap();

        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(msg, &signature.bytes)
            .unwrap();
        verify_ed25519(public_key, msg, &signature.bytes).unwrap();
        keyring
            .verify(signature.key_id, msg, &signature.bytes)
            .unwrap();

        let changed = b"checkpoint bodY";
        assert!(
            UnparsedPublicKey::new(&ED25519, public_key)
                .verify(changed, &signature.bytes)
                .is_err()
        );
        assert!(matches!(
            keyring.verify(signature.key_id, changed, &signature.bytes),
            Err(Error::BadSignature { key_id }) if key_id == signature.key_id
        ));
        assert!(matches!(
            verify_ed25519(public_key, changed, &signature.bytes),
            Err(Error::BadSignatureForPublicKey)
        ));
        // Another signing purpose's key does not verify it.
        let other = keyring.active(KeyPurpose::InvoiceSigning).unwrap().id;
        assert!(matches!(
            keyring.verify(other, msg, &signature.bytes),
            Err(Error::BadSignature { .. })
        ));
    }

    #[test]
    fn keys_are_only_used_for_their_algorithm() {
        let (_, keyring) = keyring();
        let webhook = keyring.active(KeyPurpose::WebhookSecret).unwrap().id;
        let token = keyring.active(KeyPurpose::TokenSigning).unwrap().id;
        assert!(matches!(
            keyring.sign(KeyPurpose::WebhookSecret, b"m"),
            Err(Error::WrongAlgorithm {
                expected: KeyAlgorithm::Ed25519,
                ..
            })
        ));
        assert!(matches!(
            keyring.hmac(KeyPurpose::TokenSigning, b"m"),
            Err(Error::WrongAlgorithm {
                expected: KeyAlgorithm::HmacSha256,
                ..
            })
        ));
        assert!(matches!(
            keyring.verify(webhook, b"m", &[0; 64]),
            Err(Error::WrongAlgorithm { key_id, .. }) if key_id == webhook
        ));
        assert!(matches!(
            keyring.webhook_secret_bytes(token),
            Err(Error::WrongAlgorithm { key_id, .. }) if key_id == token
        ));
        let unknown = KeyId::new();
        assert!(matches!(
            keyring.verify(unknown, b"m", &[0; 64]),
            Err(Error::UnknownKey(id)) if id == unknown
        ));
        let empty = Keyring::open(Vec::new(), &MasterKey::generate().unwrap()).unwrap();
        assert!(matches!(
            empty.sign(KeyPurpose::TokenSigning, b"m"),
            Err(Error::NoActiveKey(KeyPurpose::TokenSigning))
        ));
        assert!(matches!(
            empty.encrypt(b"m", b""),
            Err(Error::NoActiveKey(KeyPurpose::DataEncryption))
        ));
    }

    #[test]
    fn rotation_keeps_old_signatures_verifiable_until_retired() {
        let (_, mut keyring) = keyring();
        let msg = b"token claims";
        let old = keyring.sign(KeyPurpose::TokenSigning, msg).unwrap();

        let rotated_at = T0 + Duration::days(1);
        let rotation = keyring
            .rotate(KeyPurpose::TokenSigning, rotated_at, None)
            .unwrap();
        assert_eq!(rotation.new.state, KeyState::Active);
        assert_eq!(rotation.new.activated_at, rotated_at);
        assert_eq!(rotation.updated.len(), 1);
        let demoted = &rotation.updated[0];
        assert_eq!(demoted.id, old.key_id);
        assert_eq!(demoted.state, KeyState::Retiring);
        let retire_at = rotated_at + Duration::days(7);
        assert_eq!(demoted.retire_at, Some(retire_at));
        assert_eq!(keyring.get(old.key_id), Some(demoted));

        let new = keyring.sign(KeyPurpose::TokenSigning, msg).unwrap();
        assert_eq!(new.key_id, rotation.new.id);
        assert_ne!(new.key_id, old.key_id);
        keyring.verify(old.key_id, msg, &old.bytes).unwrap();
        keyring.verify(new.key_id, msg, &new.bytes).unwrap();

        let published = |at| {
            keyring
                .verification_keys(KeyPurpose::TokenSigning, at)
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            published(retire_at - Duration::SECOND),
            [old.key_id, new.key_id]
        );
        assert_eq!(published(retire_at), [new.key_id]);

        assert!(keyring.apply_time(retire_at - Duration::SECOND).is_empty());
        keyring.verify(old.key_id, msg, &old.bytes).unwrap();

        let changed = keyring.apply_time(retire_at);
        assert_eq!(changed.len(), 1);
        assert_eq!(
            (changed[0].id, changed[0].state),
            (old.key_id, KeyState::Retired)
        );
        assert!(matches!(
            keyring.verify(old.key_id, msg, &old.bytes),
            Err(Error::KeyUnusable { key_id, state: KeyState::Retired }) if key_id == old.key_id
        ));
        keyring.verify(new.key_id, msg, &new.bytes).unwrap();
        // The archived public key still proves the old signature.
        let archived = keyring.get(old.key_id).unwrap().public_key.clone().unwrap();
        verify_ed25519(&archived, msg, &old.bytes).unwrap();
        assert!(
            keyring
                .apply_time(retire_at + Duration::days(365))
                .is_empty()
        );
    }

    #[test]
    fn rotation_overlap_can_be_chosen() {
        let (_, mut keyring) = keyring();
        let first = keyring.active(KeyPurpose::AcceptanceSigning).unwrap().id;
        let rotation = keyring
            .rotate(KeyPurpose::AcceptanceSigning, T0, Some(Duration::hours(1)))
            .unwrap();
        assert_eq!(rotation.updated[0].retire_at, Some(T0 + Duration::hours(1)));

        // Rotating again after that hour retires the first key in the same step.
        let later = T0 + Duration::hours(2);
        let second = rotation.new.id;
        let rotation = keyring
            .rotate(KeyPurpose::AcceptanceSigning, later, Some(Duration::ZERO))
            .unwrap();
        let states: Vec<_> = rotation.updated.iter().map(|r| (r.id, r.state)).collect();
        // A zero overlap (compromise) retires the replaced key at once.
        assert_eq!(
            states,
            [(first, KeyState::Retired), (second, KeyState::Retired)]
        );

        assert!(matches!(
            keyring.rotate(
                KeyPurpose::AcceptanceSigning,
                later,
                Some(-Duration::SECOND)
            ),
            Err(Error::NegativeOverlap(_))
        ));
        assert_eq!(
            keyring.active(KeyPurpose::AcceptanceSigning).unwrap().id,
            rotation.new.id
        );
    }

    #[test]
    fn rotation_only_touches_its_purpose() {
        let (_, mut keyring) = keyring();
        let invoice = keyring
            .rotate(KeyPurpose::InvoiceSigning, T0, Some(Duration::hours(1)))
            .unwrap();
        let later = T0 + Duration::days(1);
        let rotation = keyring
            .rotate(KeyPurpose::TokenSigning, later, None)
            .unwrap();
        assert!(
            rotation
                .updated
                .iter()
                .all(|r| r.purpose == KeyPurpose::TokenSigning)
        );
        // The invoice key past its retire_at waits for apply_time.
        let old_invoice = invoice.updated[0].id;
        assert_eq!(keyring.get(old_invoice).unwrap().state, KeyState::Retiring);
        let changed = keyring.apply_time(later);
        assert_eq!(
            changed.iter().map(|r| r.id).collect::<Vec<_>>(),
            [old_invoice]
        );
    }

    #[test]
    fn pending_keys_are_published_first_and_activate_on_time() {
        let (_, mut keyring) = keyring();
        let current = keyring.active(KeyPurpose::TokenSigning).unwrap().id;
        let activates_at = T0 + Duration::days(2);
        let pending = keyring
            .schedule(KeyPurpose::TokenSigning, T0, activates_at)
            .unwrap();
        assert_eq!(pending.state, KeyState::Pending);
        assert_eq!(pending.activated_at, activates_at);

        let published: Vec<_> = keyring
            .verification_keys(KeyPurpose::TokenSigning, T0)
            .map(|r| r.id)
            .collect();
        assert_eq!(published, [current, pending.id]);
        assert_eq!(
            keyring.sign(KeyPurpose::TokenSigning, b"m").unwrap().key_id,
            current
        );
        assert!(matches!(
            keyring.verify(pending.id, b"m", &[0; 64]),
            Err(Error::KeyUnusable {
                state: KeyState::Pending,
                ..
            })
        ));

        assert!(
            keyring
                .apply_time(activates_at - Duration::SECOND)
                .is_empty()
        );
        // apply_time runs late; the overlap counts from the scheduled activation.
        let changed = keyring.apply_time(activates_at + Duration::hours(3));
        let states: Vec<_> = changed
            .iter()
            .map(|r| (r.id, r.state, r.retire_at))
            .collect();
        assert_eq!(
            states,
            [
                (
                    current,
                    KeyState::Retiring,
                    Some(activates_at + Duration::days(7))
                ),
                (pending.id, KeyState::Active, None),
            ]
        );
        assert_eq!(
            keyring.sign(KeyPurpose::TokenSigning, b"m").unwrap().key_id,
            pending.id
        );
    }

    #[test]
    fn hmac_tags_check_out_and_reject_changes() {
        let (_, mut keyring) = keyring();
        let tag = keyring.hmac(KeyPurpose::WebhookSecret, b"payload").unwrap();
        let record = keyring.active(KeyPurpose::WebhookSecret).unwrap();
        assert_eq!(tag.key_id, record.id);

        // Independently: HMAC-SHA-256 over the raw secret gives the same tag.
        let secret = keyring.webhook_secret_bytes(tag.key_id).unwrap();
        assert_eq!(secret.len(), 32);
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &secret), b"payload");
        assert_eq!(tag.bytes.as_slice(), expected.as_ref());

        keyring
            .hmac_verify(tag.key_id, b"payload", &tag.bytes)
            .unwrap();
        assert!(matches!(
            keyring.hmac_verify(tag.key_id, b"payloaD", &tag.bytes),
            Err(Error::BadMac { key_id }) if key_id == tag.key_id
        ));
        let mut changed = tag.bytes;
        changed[31] ^= 1;
        assert!(matches!(
            keyring.hmac_verify(tag.key_id, b"payload", &changed),
            Err(Error::BadMac { .. })
        ));
        assert!(matches!(
            keyring.hmac_verify(tag.key_id, b"payload", &tag.bytes[..16]),
            Err(Error::BadMac { .. })
        ));

        // Old tags keep verifying through the 30-day overlap, then stop.
        let rotation = keyring.rotate(KeyPurpose::WebhookSecret, T0, None).unwrap();
        assert_ne!(
            keyring.webhook_secret_bytes(rotation.new.id).unwrap(),
            secret
        );
        keyring
            .hmac_verify(tag.key_id, b"payload", &tag.bytes)
            .unwrap();
        keyring.apply_time(T0 + Duration::days(30));
        assert!(matches!(
            keyring.hmac_verify(tag.key_id, b"payload", &tag.bytes),
            Err(Error::KeyUnusable {
                state: KeyState::Retired,
                ..
            })
        ));
        assert!(matches!(
            keyring.webhook_secret_bytes(tag.key_id),
            Err(Error::KeyUnusable {
                state: KeyState::Retired,
                ..
            })
        ));
    }

    #[test]
    fn envelope_data_survives_rotation_of_the_kek() {
        let (_, mut keyring) = keyring();
        let old_kek = keyring.active(KeyPurpose::DataEncryption).unwrap().id;
        let before = keyring
            .encrypt(b"upstream credential", b"apis/1/secret")
            .unwrap();
        assert_eq!(envelope::kek_id(&before).unwrap(), old_kek);

        let rotation = keyring
            .rotate(KeyPurpose::DataEncryption, T0, None)
            .unwrap();
        assert_eq!(
            rotation.updated[0].retire_at, None,
            "data keys never retire by default"
        );
        let after = keyring
            .encrypt(b"upstream credential", b"apis/1/secret")
            .unwrap();
        assert_eq!(envelope::kek_id(&after).unwrap(), rotation.new.id);

        // Years later the old key still decrypts.
        assert!(keyring.apply_time(T0 + Duration::days(3650)).is_empty());
        for blob in [&before, &after] {
            let plain = keyring.decrypt(blob, b"apis/1/secret").unwrap();
            assert_eq!(plain.as_slice(), b"upstream credential");
        }
    }

    #[test]
    fn envelope_rejects_every_tampered_byte_and_other_aad() {
        let (_, keyring) = keyring();
        let blob = keyring.encrypt(b"secret value", b"ctx").unwrap();
        assert_eq!(blob.len(), envelope::MIN_LEN + 12);
        for i in 0..blob.len() {
            let mut tampered = blob.clone();
            tampered[i] ^= 0x80;
            let err = keyring.decrypt(&tampered, b"ctx").unwrap_err();
            let expected = match i {
                0 => matches!(err, Error::UnsupportedEnvelopeVersion(0x81)),
                1..17 => matches!(err, Error::UnknownKey(_)),
                _ => matches!(err, Error::EnvelopeOpen { .. }),
            };
            assert!(expected, "byte {i}: {err}");
        }
        for aad in [&b""[..], b"ctX", b"ctx\0"] {
            assert!(matches!(
                keyring.decrypt(&blob, aad),
                Err(Error::EnvelopeOpen { .. })
            ));
        }
        assert!(keyring.decrypt(&blob[..blob.len() - 1], b"ctx").is_err());
        let mut longer = blob.clone();
        longer.push(0);
        assert!(keyring.decrypt(&longer, b"ctx").is_err());
        assert_eq!(
            keyring.decrypt(&blob, b"ctx").unwrap().as_slice(),
            b"secret value"
        );
    }

    #[test]
    fn envelope_from_another_keyring_names_the_missing_key() {
        let (_, ours) = keyring();
        let (_, theirs) = keyring();
        let blob = theirs.encrypt(b"x", b"").unwrap();
        let kek = envelope::kek_id(&blob).unwrap();
        assert!(matches!(ours.decrypt(&blob, b""), Err(Error::UnknownKey(id)) if id == kek));
    }

    #[test]
    fn keyring_is_shareable_and_does_not_print_secrets() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Keyring>();

        let (master, keyring) = keyring();
        let webhook = keyring.active(KeyPurpose::WebhookSecret).unwrap().id;
        let secret = keyring.webhook_secret_bytes(webhook).unwrap();
        let shown = format!("{keyring:?}");
        assert!(shown.contains(&webhook.to_string()));
        assert!(!shown.contains(&hex::encode(&*secret)));
        assert!(!shown.contains(&*master.encode()));
        assert!(!shown.contains(&format!("{:?}", &*secret)));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;
        use std::sync::LazyLock;

        static KEYRING: LazyLock<Keyring> = LazyLock::new(|| keyring().1);

        proptest! {
            #[test]
            fn envelope_round_trips(
                plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
                aad in proptest::collection::vec(any::<u8>(), 0..64),
                other in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let blob = KEYRING.encrypt(&plaintext, &aad).unwrap();
                prop_assert_eq!(blob.len(), envelope::MIN_LEN + plaintext.len());
                let opened = KEYRING.decrypt(&blob, &aad).unwrap();
                prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
                prop_assume!(other != aad);
                let is_open_error = matches!(
                    KEYRING.decrypt(&blob, &other),
                    Err(Error::EnvelopeOpen { .. })
                );
                prop_assert!(is_open_error);
            }
        }
    }
}
