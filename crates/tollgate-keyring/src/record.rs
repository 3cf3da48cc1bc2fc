//! The persisted form of a key: plain data, public part in clear, private part sealed.

use std::fmt;

use time::OffsetDateTime;

use crate::{KeyAlgorithm, KeyId, KeyPurpose};

/// Where a key is in its life. Only `active` keys sign, MAC or encrypt; `active` and
/// `retiring` keys verify and decrypt; `pending` keys are only published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Created ahead of use so verifiers can fetch its public key first; becomes active at
    /// its `activated_at` (see [`Keyring::schedule`](crate::Keyring::schedule)).
    Pending,
    /// The one key of its purpose used to sign, MAC or encrypt.
    Active,
    /// Rotated out; still verifies and decrypts until `retire_at` (forever if `None`).
    Retiring,
    /// No longer usable; the record stays for the archive of public keys.
    Retired,
}

impl KeyState {
    /// The snake_case name, as in serde and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key as the store persists it. Byte fields are base64 (standard, padded) in serde,
/// times RFC 3339.
///
/// The record is plain data: the keyring changes `state` and `retire_at` and hands the
/// record back for the store to save; nothing else changes after creation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyRecord {
    /// The key id, cited wherever the key was used.
    pub id: KeyId,
    /// What the key is for.
    pub purpose: KeyPurpose,
    /// Always `purpose.algorithm()`; stored so the record describes itself.
    pub algorithm: KeyAlgorithm,
    /// Where the key is in its life.
    pub state: KeyState,
    /// When the key was generated.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the key became (or, while `pending`, will become) active.
    #[serde(with = "time::serde::rfc3339")]
    pub activated_at: OffsetDateTime,
    /// When a `retiring` key stops verifying and decrypting; `None` while pending or
    /// active, and for retiring keys that never retire on their own.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retire_at: Option<OffsetDateTime>,
    /// The Ed25519 public key (32 raw bytes); `None` for symmetric keys.
    #[serde(with = "b64_option")]
    pub public_key: Option<Vec<u8>>,
    /// The private part sealed under the master key: `nonce (12) || ciphertext || tag
    /// (16)`, AES-256-GCM with AAD `"tollgate-keyring/v1" || id (16 bytes) || purpose`.
    /// The plaintext is a PKCS#8 v2 document for Ed25519, 32 raw bytes otherwise.
    #[serde(with = "b64")]
    pub sealed_secret: Vec<u8>,
    /// [`MasterKey::fingerprint`](crate::MasterKey::fingerprint) of the sealing key.
    pub master_fingerprint: String,
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

mod b64_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::b64::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::b64")] Vec<u8>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample() -> KeyRecord {
        KeyRecord {
            id: "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap(),
            purpose: KeyPurpose::TokenSigning,
            algorithm: KeyAlgorithm::Ed25519,
            state: KeyState::Retiring,
            created_at: datetime!(2026-01-02 03:04:05 UTC),
            activated_at: datetime!(2026-01-02 03:04:05 UTC),
            retire_at: Some(datetime!(2026-01-09 03:04:05 UTC)),
            public_key: Some(vec![0xfb, 0xff, 0x01]),
            sealed_secret: vec![1, 2, 3, 4],
            master_fingerprint: "66687aad".to_owned(),
        }
    }

    #[test]
    fn record_json_has_the_documented_shape() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "01890a5d-ac96-774b-bcce-b302099a8057",
                "purpose": "token_signing",
                "algorithm": "ed25519",
                "state": "retiring",
                "created_at": "2026-01-02T03:04:05Z",
                "activated_at": "2026-01-02T03:04:05Z",
                "retire_at": "2026-01-09T03:04:05Z",
                "public_key": "+/8B",
                "sealed_secret": "AQIDBA==",
                "master_fingerprint": "66687aad",
            })
        );
    }

    #[test]
    fn record_json_round_trips_with_and_without_options() {
        let full = sample();
        let bare = KeyRecord {
            retire_at: None,
            public_key: None,
            ..sample()
        };
        for record in [full, bare] {
            let json = serde_json::to_string(&record).unwrap();
            assert_eq!(serde_json::from_str::<KeyRecord>(&json).unwrap(), record);
        }
        let mut json = serde_json::to_value(sample()).unwrap();
        json["sealed_secret"] = "not base64!".into();
        assert!(serde_json::from_value::<KeyRecord>(json).is_err());
    }
}
