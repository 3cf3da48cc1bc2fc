//! Algorithms (RFC 9421 §3.3) and key material on aws-lc-rs: verifying keys from SPKI
//! PEM/DER, signing keys from PKCS#8 (or SEC1/PKCS#1) PEM/DER, HMAC secrets as bytes.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::Arc;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey, RsaKeyPair,
};
use rustls_pki_types::pem::{PemObject, SectionKind};

use crate::Error;

/// A signature algorithm from the HTTP Signature Algorithms registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `rsa-pss-sha512`: RSASSA-PSS, SHA-512, 64-byte salt (RSA 2048–8192 bits).
    RsaPssSha512,
    /// `ecdsa-p256-sha256`: ECDSA on P-256 with SHA-256, signature `r ‖ s` (64 bytes).
    EcdsaP256Sha256,
    /// `ed25519`: EdDSA on Curve25519.
    Ed25519,
    /// `hmac-sha256`: HMAC with SHA-256 over a shared secret.
    HmacSha256,
}

impl Algorithm {
    /// Every implemented algorithm.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::RsaPssSha512,
        Algorithm::EcdsaP256Sha256,
        Algorithm::Ed25519,
        Algorithm::HmacSha256,
    ];

    /// The registered name, as in the `alg` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RsaPssSha512 => "rsa-pss-sha512",
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::HmacSha256 => "hmac-sha256",
        }
    }

    /// Whether the key is a shared secret rather than a key pair.
    pub fn is_symmetric(self) -> bool {
        self == Algorithm::HmacSha256
    }

    fn verification(self) -> Option<&'static dyn signature::VerificationAlgorithm> {
        match self {
            Algorithm::RsaPssSha512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
            Algorithm::EcdsaP256Sha256 => Some(&signature::ECDSA_P256_SHA256_FIXED),
            Algorithm::Ed25519 => Some(&signature::ED25519),
            Algorithm::HmacSha256 => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Algorithm::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::UnsupportedAlgorithm(s.to_owned()))
    }
}

/// A key that checks signatures: a parsed public key (parsed once, so per-request
/// verification does no DER work) or an HMAC secret.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: VerifyInner,
}

#[derive(Clone)]
enum VerifyInner {
    Public {
        alg: Algorithm,
        key: ParsedPublicKey,
    },
    // Boxed: aws-lc's HMAC key holds its precomputed state inline (over 1 KiB).
    Hmac(Box<hmac::Key>),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print HMAC secrets; public keys are long and not useful in logs.
        f.debug_struct("VerifyingKey")
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// A public key for `alg` from DER: SubjectPublicKeyInfo (RFC 5280) for every
    /// algorithm; aws-lc-rs also accepts a raw 32-byte Ed25519 key, an uncompressed
    /// P-256 point and a PKCS#1 `RSAPublicKey`.
    pub fn from_public_key_der(alg: Algorithm, der: &[u8]) -> Result<Self, Error> {
        let Some(verification) = alg.verification() else {
            return Err(Error::InvalidKey(format!(
                "{alg} uses a shared secret, not a public key"
            )));
        };
        let key = ParsedPublicKey::new(verification, der)
            .map_err(|e| Error::InvalidKey(format!("not a {alg} public key: {e}")))?;
        Ok(VerifyingKey {
            inner: VerifyInner::Public { alg, key },
        })
    }

    /// A public key for `alg` from the first `PUBLIC KEY` (SPKI) block of a PEM text;
    /// other blocks (a private key in the same file) are skipped.
    pub fn from_public_key_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, Error> {
        Self::from_public_key_der(alg, &public_key_der(pem)?)
    }

    /// A public key from PEM whose algorithm is read from the key itself: Ed25519,
    /// P-256, or RSA (taken as `rsa-pss-sha512`, the RSA algorithm implemented here).
    pub fn from_public_key_pem_any(pem: &[u8]) -> Result<Self, Error> {
        let der = public_key_der(pem)?;
        [
            Algorithm::Ed25519,
            Algorithm::EcdsaP256Sha256,
            Algorithm::RsaPssSha512,
        ]
        .into_iter()
        .find_map(|alg| Self::from_public_key_der(alg, &der).ok())
        .ok_or_else(|| {
            Error::InvalidKey("public key is not Ed25519, P-256 or RSA (2048+ bits)".into())
        })
    }

    /// An HMAC-SHA256 shared secret.
    pub fn hmac_sha256(secret: &[u8]) -> Result<Self, Error> {
        Ok(VerifyingKey {
            inner: VerifyInner::Hmac(hmac_key(secret)?),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match &self.inner {
            VerifyInner::Public { alg, .. } => *alg,
            VerifyInner::Hmac(_) => Algorithm::HmacSha256,
        }
    }

    /// Whether `signature` is valid for `message` (HMAC tags compare in constant time).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            VerifyInner::Public { key, .. } => key.verify_sig(message, signature).is_ok(),
            VerifyInner::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
        }
    }
}

impl AsRef<VerifyingKey> for VerifyingKey {
    fn as_ref(&self) -> &VerifyingKey {
        self
    }
}

fn hmac_key(secret: &[u8]) -> Result<Box<hmac::Key>, Error> {
    if secret.is_empty() {
        return Err(Error::InvalidKey("empty HMAC secret".into()));
    }
    Ok(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret)))
}

fn public_key_der(pem: &[u8]) -> Result<Vec<u8>, Error> {
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let (kind, der) = section.map_err(|e| Error::InvalidKey(format!("bad PEM: {e}")))?;
        if kind == SectionKind::PublicKey {
            return Ok(der);
        }
    }
    Err(Error::InvalidKey(
        "no PUBLIC KEY block in the PEM text".into(),
    ))
}

/// DER of the id-RSASSA-PSS object identifier (1.2.840.113549.1.1.10): aws-lc-rs loads
/// such PKCS#8 keys for nothing, so they get a precise error.
const RSASSA_PSS_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
];

/// A key that makes signatures.
pub struct SigningKey {
    inner: SignInner,
}

enum SignInner {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Hmac(Box<hmac::Key>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A private key for `alg` from DER: PKCS#8 for every algorithm; also SEC1
    /// (`EC PRIVATE KEY`) for P-256 and PKCS#1 (`RSA PRIVATE KEY`) for RSA.
    pub fn from_private_key_der(alg: Algorithm, der: &[u8]) -> Result<Self, Error> {
        let bad = |e: aws_lc_rs::error::KeyRejected| {
            Error::InvalidKey(format!("not a {alg} private key: {e}"))
        };
        let inner = match alg {
            Algorithm::Ed25519 => SignInner::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(bad)?),
            Algorithm::EcdsaP256Sha256 => SignInner::Ecdsa(
                EcdsaKeyPair::from_private_key_der(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                )
                .map_err(bad)?,
            ),
            Algorithm::RsaPssSha512 => {
                if der
                    .windows(RSASSA_PSS_OID.len())
                    .any(|w| w == RSASSA_PSS_OID)
                {
                    return Err(Error::InvalidKey(
                        "PKCS#8 keys restricted to id-RSASSA-PSS cannot sign here; convert \
                         the key to PKCS#1 (`openssl rsa -in KEY -traditional`)"
                            .into(),
                    ));
                }
                SignInner::Rsa(
                    RsaKeyPair::from_pkcs8(der)
                        .or_else(|_| RsaKeyPair::from_der(der))
                        .map_err(bad)?,
                )
            }
            Algorithm::HmacSha256 => {
                return Err(Error::InvalidKey(format!(
                    "{alg} uses a shared secret, not a private key"
                )));
            }
        };
        Ok(SigningKey { inner })
    }

    /// A private key for `alg` from the first private-key block of a PEM text
    /// (`PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`).
    pub fn from_private_key_pem(alg: Algorithm, pem: &[u8]) -> Result<Self, Error> {
        for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let (kind, der) = section.map_err(|e| Error::InvalidKey(format!("bad PEM: {e}")))?;
            if matches!(
                kind,
                SectionKind::PrivateKey | SectionKind::EcPrivateKey | SectionKind::RsaPrivateKey
            ) {
                return Self::from_private_key_der(alg, &der);
            }
        }
        Err(Error::InvalidKey(
            "no private key block in the PEM text".into(),
        ))
    }

    /// An HMAC-SHA256 shared secret.
    pub fn hmac_sha256(secret: &[u8]) -> Result<Self, Error> {
        Ok(SigningKey {
            inner: SignInner::Hmac(hmac_key(secret)?),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match &self.inner {
            SignInner::Ed25519(_) => Algorithm::Ed25519,
            SignInner::Ecdsa(_) => Algorithm::EcdsaP256Sha256,
            SignInner::Rsa(_) => Algorithm::RsaPssSha512,
            SignInner::Hmac(_) => Algorithm::HmacSha256,
        }
    }

    /// Signs `message`; ECDSA returns the fixed 64-byte `r ‖ s`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.inner {
            SignInner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            SignInner::Ecdsa(k) => k
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto("ECDSA signing failed")),
            SignInner::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PSS_SHA512,
                    &SystemRandom::new(),
                    message,
                    &mut out,
                )
                .map_err(|_| Error::Crypto("RSA-PSS signing failed"))?;
                Ok(out)
            }
            SignInner::Hmac(k) => Ok(hmac::sign(k, message).as_ref().to_vec()),
        }
    }

    /// The matching verifying key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, Error> {
        let alg = self.algorithm();
        let public = match &self.inner {
            SignInner::Ed25519(k) => k.public_key().as_ref().to_vec(),
            SignInner::Ecdsa(k) => k.public_key().as_ref().to_vec(),
            SignInner::Rsa(k) => k.public_key().as_ref().to_vec(),
            SignInner::Hmac(k) => {
                return Ok(VerifyingKey {
                    inner: VerifyInner::Hmac(k.clone()),
                });
            }
        };
        VerifyingKey::from_public_key_der(alg, &public)
    }
}

/// Finds the verifying key for a signature's `keyid` (`None` when the signature names
/// none). The gateway implements it over its configuration snapshot; maps of keys and a
/// single key implement it here.
pub trait KeyResolver {
    /// The key for `keyid`, or `None` when it is unknown.
    fn resolve(&self, keyid: Option<&str>) -> Option<&VerifyingKey>;
}

/// A single key answers for every `keyid` (the CLI's `--key FILE`).
impl KeyResolver for VerifyingKey {
    fn resolve(&self, _keyid: Option<&str>) -> Option<&VerifyingKey> {
        Some(self)
    }
}

impl<K, V, S> KeyResolver for HashMap<K, V, S>
where
    K: Borrow<str> + std::hash::Hash + Eq,
    V: AsRef<VerifyingKey>,
    S: BuildHasher,
{
    fn resolve(&self, keyid: Option<&str>) -> Option<&VerifyingKey> {
        self.get(keyid?).map(AsRef::as_ref)
    }
}

impl<K, V> KeyResolver for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<VerifyingKey>,
{
    fn resolve(&self, keyid: Option<&str>) -> Option<&VerifyingKey> {
        self.get(keyid?).map(AsRef::as_ref)
    }
}

impl<T: KeyResolver + ?Sized> KeyResolver for &T {
    fn resolve(&self, keyid: Option<&str>) -> Option<&VerifyingKey> {
        (**self).resolve(keyid)
    }
}

impl<T: KeyResolver + ?Sized> KeyResolver for Arc<T> {
    fn resolve(&self, keyid: Option<&str>) -> Option<&VerifyingKey> {
        (**self).resolve(keyid)
    }
}

/// A resolver from a closure, for callers whose keys live behind their own lookup:
/// `FnResolver::new(|keyid| table.find(keyid?))`.
pub struct FnResolver<'k, F> {
    f: F,
    // Ties the returned keys' lifetime to the resolver, so `resolve` may hand them out.
    _keys: PhantomData<&'k VerifyingKey>,
}

impl<'k, F> FnResolver<'k, F>
where
    F: Fn(Option<&str>) -> Option<&'k VerifyingKey>,
{
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        FnResolver {
            f,
            _keys: PhantomData,
        }
    }
}

impl<F> fmt::Debug for FnResolver<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnResolver")
    }
}

impl<'k, F> KeyResolver for FnResolver<'k, F>
where
    F: Fn(Option<&str>) -> Option<&'k VerifyingKey>,
{
    fn resolve(&self, keyid: Option<&str>) -> Option<&VerifyingKey> {
        (self.f)(keyid)
    }
}
