//! Envelope encryption for data at rest: the blob format behind [`Keyring::encrypt`] and
//! [`Keyring::decrypt`].
//!
//! [`Keyring::encrypt`] draws a fresh 32-byte data key (DEK) per message, encrypts the
//! data with it, and wraps the DEK with the active `data_encryption` key (the KEK). Both
//! layers are AES-256-GCM with 96-bit random nonces. The blob names its KEK, so
//! [`Keyring::decrypt`] finds the right key after any number of rotations.
//!
//! # Layout (version 1)
//!
//! ```text
//! offset  len    field
//!      0  1      version = 0x01
//!      1  16     KEK key id (the UUID's 16 bytes, RFC 9562 order)
//!     17  12     wrap nonce
//!     29  48     wrapped DEK = AES-256-GCM(KEK, wrap nonce, DEK): 32-byte ct || 16-byte tag
//!     77  12     data nonce
//!     89  n + 16 data = AES-256-GCM(DEK, data nonce, plaintext): n-byte ct || 16-byte tag
//! ```
//!
//! The DEK wrap is authenticated with AAD `"tollgate-keyring/envelope/v1" || blob[0..17]`
//! (version and KEK id), so a wrapped DEK cannot be relabelled with another key id. The
//! data is authenticated with AAD `blob[0..77] || caller aad`: the whole header is bound
//! to the ciphertext, and the header's fixed length keeps the concatenation with the
//! caller's aad unambiguous. Changing any byte of the blob, or the caller's aad, makes
//! decryption fail.
//!
//! With random nonces one KEK should wrap fewer than 2^32 DEKs (NIST SP 800-38D); rotate
//! `data_encryption` long before that. Each DEK encrypts exactly one message.
//!
//! [`Keyring::encrypt`]: crate::Keyring::encrypt
//! [`Keyring::decrypt`]: crate::Keyring::decrypt

use std::ops::Range;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{Error, KeyId, Result};

/// The format version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the data ciphertext: version, KEK id, wrap nonce, wrapped DEK, data nonce.
pub const HEADER_LEN: usize = DATA_NONCE.end;
/// The shortest valid blob: the header and the tag of an empty plaintext.
pub const MIN_LEN: usize = HEADER_LEN + TAG_LEN;

const WRAP_LABEL: &[u8] = b"tollgate-keyring/envelope/v1";
const DEK_LEN: usize = 32;
const TAG_LEN: usize = 16;
const KEK_ID: Range<usize> = 1..17;
const WRAP_NONCE: Range<usize> = KEK_ID.end..KEK_ID.end + NONCE_LEN;
const WRAPPED_DEK: Range<usize> = WRAP_NONCE.end..WRAP_NONCE.end + DEK_LEN + TAG_LEN;
const DATA_NONCE: Range<usize> = WRAPPED_DEK.end..WRAPPED_DEK.end + NONCE_LEN;

/// The id of the KEK that sealed `blob`, read without decrypting anything; lets a caller
/// record which key protects a value, or find values still under an old key.
pub fn kek_id(blob: &[u8]) -> Result<KeyId> {
    check_frame(blob)?;
    // The range is 16 bytes long, so this conversion cannot fail; a `Vec` is the one
    // conversion into a UUID that does not need the `uuid` crate named here.
    blob[KEK_ID]
        .to_vec()
        .try_into()
        .map(KeyId)
        .map_err(|_| Error::MalformedEnvelope("bad key id"))
}

fn check_frame(blob: &[u8]) -> Result<()> {
    match blob.first() {
        None => Err(Error::MalformedEnvelope("empty")),
        Some(&VERSION) if blob.len() < MIN_LEN => Err(Error::MalformedEnvelope("too short")),
        Some(&VERSION) => Ok(()),
        Some(&other) => Err(Error::UnsupportedEnvelopeVersion(other)),
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut bytes = Zeroizing::new([0u8; N]);
    aws_lc_rs::rand::fill(bytes.as_mut()).map_err(|_| Error::Crypto("random generation"))?;
    Ok(bytes)
}

fn wrap_aad(blob: &[u8]) -> Vec<u8> {
    [WRAP_LABEL, &blob[..KEK_ID.end]].concat()
}

fn data_aad(blob: &[u8], aad: &[u8]) -> Vec<u8> {
    [&blob[..HEADER_LEN], aad].concat()
}

/// Seals `plaintext` under a fresh DEK wrapped by `kek`, whose id is `kek_id`.
pub(crate) fn seal(
    kek_id: KeyId,
    kek: &LessSafeKey,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let dek = random::<DEK_LEN>()?;
    let wrap_nonce = random::<NONCE_LEN>()?;
    let data_nonce = random::<NONCE_LEN>()?;
    let seal_failed = |_| Error::Crypto("aes-256-gcm seal");

    let mut blob = Vec::with_capacity(MIN_LEN + plaintext.len());
    blob.push(VERSION);
    blob.extend_from_slice(kek_id.0.as_bytes());
    blob.extend_from_slice(wrap_nonce.as_ref());
    // The DEK is written in clear and encrypted in place right after, so no other copy of
    // it is made.
    blob.extend_from_slice(dek.as_ref());
    let aad_bytes = wrap_aad(&blob);
    let tag = kek
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(*wrap_nonce),
            Aad::from(aad_bytes),
            &mut blob[WRAP_NONCE.end..],
        )
        .map_err(seal_failed)?;
    blob.extend_from_slice(tag.as_ref());

    blob.extend_from_slice(data_nonce.as_ref());
    let aad_bytes = data_aad(&blob, aad);
    blob.extend_from_slice(plaintext);
    let tag = aead_key(dek.as_ref())?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(*data_nonce),
            Aad::from(aad_bytes),
            &mut blob[HEADER_LEN..],
        )
        .map_err(seal_failed)?;
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Opens a blob from [`seal`], asking `kek_for` for the KEK named inside it.
pub(crate) fn open<'k>(
    blob: &[u8],
    aad: &[u8],
    kek_for: impl FnOnce(KeyId) -> Result<&'k LessSafeKey>,
) -> Result<Zeroizing<Vec<u8>>> {
    let key_id = kek_id(blob)?;
    let kek = kek_for(key_id)?;
    let tampered = |_| Error::EnvelopeOpen { key_id };

    let mut dek = Zeroizing::new([0u8; DEK_LEN + TAG_LEN]);
    dek.copy_from_slice(&blob[WRAPPED_DEK]);
    let dek = kek
        .open_in_place(
            nonce(&blob[WRAP_NONCE]),
            Aad::from(wrap_aad(blob)),
            dek.as_mut(),
        )
        .map_err(tampered)?;

    let mut data = Zeroizing::new(blob[HEADER_LEN..].to_vec());
    let len = aead_key(dek)?
        .open_in_place(
            nonce(&blob[DATA_NONCE]),
            Aad::from(data_aad(blob, aad)),
            data.as_mut_slice(),
        )
        .map_err(tampered)?
        .len();
    data.truncate(len);
    Ok(data)
}

fn nonce(bytes: &[u8]) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(bytes);
    Nonce::assume_unique_for_key(nonce)
}

pub(crate) fn aead_key(key: &[u8]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Crypto("aes-256-gcm key construction"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> LessSafeKey {
        aead_key(&[9u8; 32]).unwrap()
    }

    #[test]
    fn layout_constants_match_the_documented_table() {
        assert_eq!(
            (KEK_ID, WRAP_NONCE, WRAPPED_DEK, DATA_NONCE),
            (1..17, 17..29, 29..77, 77..89)
        );
        assert_eq!((HEADER_LEN, MIN_LEN), (89, 105));
    }

    #[test]
    fn blob_has_the_documented_layout() {
        let id = KeyId::new();
        let kek = kek();
        let blob = seal(id, &kek, b"hello", b"ctx").unwrap();
        assert_eq!(blob.len(), MIN_LEN + 5);
        assert_eq!(blob[0], 1);
        assert_eq!(&blob[KEK_ID], id.0.as_bytes());
        assert_eq!(kek_id(&blob).unwrap(), id);
        // The plaintext does not appear in clear.
        assert!(!blob.windows(5).any(|w| w == b"hello"));
        let opened = open(&blob, b"ctx", |asked| {
            assert_eq!(asked, id);
            Ok(&kek)
        })
        .unwrap();
        assert_eq!(opened.as_slice(), b"hello");
    }

    #[test]
    fn frame_errors_are_specific() {
        assert!(matches!(
            kek_id(&[]),
            Err(Error::MalformedEnvelope("empty"))
        ));
        assert!(matches!(
            kek_id(&[1; MIN_LEN - 1]),
            Err(Error::MalformedEnvelope("too short"))
        ));
        assert!(matches!(
            kek_id(&[2; MIN_LEN]),
            Err(Error::UnsupportedEnvelopeVersion(2))
        ));
        assert!(kek_id(&[1; MIN_LEN]).is_ok());
    }
}
