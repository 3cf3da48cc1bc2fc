//! The master key: the one root secret that seals every private key at rest.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce};
use aws_lc_rs::digest;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use crate::{Error, KeyId, KeyPurpose, Result};

/// Domain separation for sealed record secrets; a new sealing format gets a new label.
const SEAL_LABEL: &[u8] = b"tollgate-keyring/v1";

/// The master key, 32 random bytes. It seals the private part of every [`KeyRecord`]
/// with AES-256-GCM; the binary reads it from a file, the keyring never stores it.
///
/// The bytes are zeroized on drop and never printed: `Debug` shows `MasterKey(..)`. Use
/// [`MasterKey::fingerprint`] to tell master keys apart.
///
/// [`KeyRecord`]: crate::KeyRecord
pub struct MasterKey(Zeroizing<[u8; MasterKey::LEN]>);

impl MasterKey {
    /// Length of a master key in bytes.
    pub const LEN: usize = 32;

    /// A fresh random master key.
    pub fn generate() -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; Self::LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| Error::Crypto("random generation"))?;
        Ok(Self(bytes))
    }

    /// Parses a master key from text: base64 (standard or URL-safe alphabet, padded or
    /// not) or 64 hex characters, surrounding whitespace ignored (key files end in a
    /// newline). Anything that does not decode to exactly 32 bytes is rejected.
    pub fn from_encoded(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::InvalidMasterKey { reason: "empty" });
        }
        let mut bytes = Zeroizing::new([0u8; Self::LEN]);
        // 64 hex characters cannot be mistaken for base64 of 32 bytes (43 or 44
        // characters), so the order of these attempts does not change any result.
        if text.len() == 2 * Self::LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode_to_slice(text, bytes.as_mut())
                .map_err(|_| Error::InvalidMasterKey { reason: "bad hex" })?;
            return Ok(Self(bytes));
        }
        let config = GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(false);
        let alphabet = if text.contains(['-', '_']) {
            &alphabet::URL_SAFE
        } else {
            &alphabet::STANDARD
        };
        let decoded = Zeroizing::new(GeneralPurpose::new(alphabet, config).decode(text).map_err(
            |_| Error::InvalidMasterKey {
                reason: "expected base64 of 32 bytes or 64 hex characters",
            },
        )?);
        if decoded.len() != Self::LEN {
            return Err(Error::InvalidMasterKey {
                reason: "decodes to the wrong length, expected 32 bytes",
            });
        }
        bytes.copy_from_slice(&decoded);
        Ok(Self(bytes))
    }

    /// The key as standard padded base64, the form [`MasterKey::from_encoded`] reads.
    pub fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }

    /// The first 8 hex characters of SHA-256 over the key bytes. Records store it so an
    /// operator can tell which master key sealed them; it is far too short to help an
    /// attacker and too short to be a security check (the AEAD tag is that).
    pub fn fingerprint(&self) -> String {
        let digest = digest::digest(&digest::SHA256, self.0.as_ref());
        hex::encode(&digest.as_ref()[..4])
    }

    /// A second handle on the same key, for the keyring to seal keys it creates later.
    pub(crate) fn duplicate(&self) -> Self {
        Self(Zeroizing::new(*self.0))
    }

    fn aead_key(&self) -> Result<LessSafeKey> {
        crate::envelope::aead_key(self.0.as_ref())
    }

    /// Seals a record's secret: `nonce (12) || ciphertext || tag (16)`, bound to the
    /// record by the AAD so the blob cannot be moved to another record.
    pub(crate) fn seal_secret(
        &self,
        id: KeyId,
        purpose: KeyPurpose,
        secret: &[u8],
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| Error::Crypto("random generation"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + secret.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(secret);
        let (_, in_out) = out.split_at_mut(NONCE_LEN);
        let tag = self
            .aead_key()?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(seal_aad(id, purpose)),
                in_out,
            )
            .map_err(|_| Error::Crypto("aes-256-gcm seal"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens what [`MasterKey::seal_secret`] produced for the same record.
    pub(crate) fn open_secret(
        &self,
        id: KeyId,
        purpose: KeyPurpose,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let Some((nonce, ciphertext)) = sealed.split_first_chunk::<NONCE_LEN>() else {
            return Err(Error::Unseal { key_id: id });
        };
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .aead_key()?
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(seal_aad(id, purpose)),
                buf.as_mut_slice(),
            )
            .map_err(|_| Error::Unseal { key_id: id })?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// `"tollgate-keyring/v1" || key id (16 bytes) || purpose name`. The label and id have
/// fixed lengths, so the concatenation is unambiguous.
fn seal_aad(id: KeyId, purpose: KeyPurpose) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEAL_LABEL.len() + 16 + purpose.as_str().len());
    aad.extend_from_slice(SEAL_LABEL);
    aad.extend_from_slice(id.0.as_bytes());
    aad.extend_from_slice(purpose.as_str().as_bytes());
    aad
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    /// Bytes chosen so their base64 contains both `+`/`/` (standard) and `-`/`_` (URL-safe)
    /// characters, which makes the alphabet choice observable.
    const BYTES: [u8; 32] = [
        0xfb, 0xff, 0xbf, 0xfb, 0xef, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
        0x18, 0x19,
    ];

    fn key_bytes(key: &MasterKey) -> [u8; 32] {
        *key.0
    }

    #[test]
    fn accepts_every_documented_encoding() {
        let encodings = [
            STANDARD.encode(BYTES),
            STANDARD_NO_PAD.encode(BYTES),
            URL_SAFE.encode(BYTES),
            URL_SAFE_NO_PAD.encode(BYTES),
            hex::encode(BYTES),
            hex::encode_upper(BYTES),
            format!("  {}\n", STANDARD.encode(BYTES)),
        ];
        assert!(encodings[0].contains('+') || encodings[0].contains('/'));
        assert!(encodings[2].contains('-') || encodings[2].contains('_'));
        for text in encodings {
            let key = MasterKey::from_encoded(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(key_bytes(&key), BYTES, "{text}");
        }
    }

    #[test]
    fn rejects_wrong_lengths_and_garbage_with_a_clear_error() {
        let cases = [
            String::new(),
            "   ".to_owned(),
            STANDARD.encode([7u8; 31]),
            STANDARD.encode([7u8; 33]),
            hex::encode([7u8; 31]),
            "z".repeat(64),
            "not a key at all!".to_owned(),
        ];
        for text in cases {
            let err = MasterKey::from_encoded(&text).unwrap_err();
            assert!(
                matches!(err, Error::InvalidMasterKey { .. }),
                "{text:?}: {err}"
            );
            assert!(err.to_string().starts_with("invalid master key: "));
        }
    }

    #[test]
    fn encode_round_trips_and_keys_differ() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_ne!(key_bytes(&a), key_bytes(&b));
        let again = MasterKey::from_encoded(&a.encode()).unwrap();
        assert_eq!(key_bytes(&again), key_bytes(&a));
        assert_eq!(again.fingerprint(), a.fingerprint());
    }

    #[test]
    fn fingerprint_is_a_sha256_prefix() {
        let key = MasterKey::from_encoded(&hex::encode(BYTES)).unwrap();
        let digest = digest::digest(&digest::SHA256, &BYTES);
        assert_eq!(key.fingerprint(), hex::encode(&digest.as_ref()[..4]));
        assert_eq!(key.fingerprint().len(), 8);
        let other = MasterKey::from_encoded(&hex::encode([0u8; 32])).unwrap();
        // SHA-256 of 32 zero bytes begins 66687aad (computed with Python's hashlib).
        assert_eq!(other.fingerprint(), "66687aad");
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let key = MasterKey::from_encoded(&hex::encode(BYTES)).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert_eq!(format!("{key:?}"), "MasterKey(..)");
        assert!(!shown.contains(&hex::encode(BYTES)));
        assert!(!shown.contains(&STANDARD_NO_PAD.encode(BYTES)));
    }

    #[test]
    fn sealed_secrets_are_bound_to_id_and_purpose() {
        let master = MasterKey::generate().unwrap();
        let id = KeyId::new();
        let sealed = master
            .seal_secret(id, KeyPurpose::WebhookSecret, b"secret")
            .unwrap();
        assert_eq!(sealed.len(), 12 + 6 + 16);
        let opened = master
            .open_secret(id, KeyPurpose::WebhookSecret, &sealed)
            .unwrap();
        assert_eq!(opened.as_slice(), b"secret");

        let other_id = KeyId::new();
        assert!(matches!(
            master.open_secret(other_id, KeyPurpose::WebhookSecret, &sealed),
            Err(Error::Unseal { key_id }) if key_id == other_id
        ));
        assert!(matches!(
            master.open_secret(id, KeyPurpose::DataEncryption, &sealed),
            Err(Error::Unseal { .. })
        ));
        let wrong = MasterKey::generate().unwrap();
        assert!(matches!(
            wrong.open_secret(id, KeyPurpose::WebhookSecret, &sealed),
            Err(Error::Unseal { .. })
        ));
        assert!(matches!(
            master.open_secret(id, KeyPurpose::WebhookSecret, &sealed[..11]),
            Err(Error::Unseal { .. })
        ));
    }
}
