//! Algorithms, public keys and the signers that make tokens: a [`SigningKey`] held in
//! memory, or the marketplace [`Keyring`] through [`KeyringSigner`].

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
};
use tollgate_keyring::{KeyAlgorithm, KeyPurpose, Keyring};

use crate::{Error, Result};

/// Length of both supported signatures: Ed25519, and ES256 as `r || s` (RFC 7518 §3.4).
pub const SIGNATURE_LEN: usize = 64;

/// The JWS algorithms this crate signs and verifies. Everything else — `none`, HMAC, RSA —
/// is refused before any key is touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// Ed25519 (RFC 8037). Written as `EdDSA`; `Ed25519` (RFC 9864) is read as the same.
    EdDSA,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    Es256,
}

impl Alg {
    /// The `alg` value this crate writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// Reads a header or JWK `alg`. Case matters (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "EdDSA" | "Ed25519" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::Es256),
            _ => Err(Error::UnsupportedAlg),
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A public verification key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// Ed25519: the 32-byte public key (JWK `OKP` / `Ed25519`, member `x`).
    Ed25519([u8; 32]),
    /// P-256: the affine coordinates (JWK `EC` / `P-256`, members `x` and `y`).
    P256 { x: [u8; 32], y: [u8; 32] },
}

impl PublicKey {
    /// The algorithm this key verifies.
    pub const fn alg(&self) -> Alg {
        match self {
            Self::Ed25519(_) => Alg::EdDSA,
            Self::P256 { .. } => Alg::Es256,
        }
    }

    /// Parses the key for aws-lc once, checking it (a P-256 point must lie on the curve),
    /// so each verification skips that work.
    pub(crate) fn parse(&self) -> Result<ParsedPublicKey> {
        let parsed = match self {
            Self::Ed25519(x) => ParsedPublicKey::new(&ED25519, x),
            Self::P256 { x, y } => {
                let mut point = [0u8; 65];
                point[0] = 0x04;
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            }
        };
        parsed.map_err(|_| Error::Key("public key rejected"))
    }

    fn from_sec1_uncompressed(bytes: &[u8]) -> Result<Self> {
        match bytes {
            [0x04, rest @ ..] if rest.len() == 64 => {
                let mut x = [0u8; 32];
                let mut y = [0u8; 32];
                x.copy_from_slice(&rest[..32]);
                y.copy_from_slice(&rest[32..]);
                Ok(Self::P256 { x, y })
            }
            _ => Err(Error::Key("not an uncompressed p-256 point")),
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::b64::encode;
        match self {
            Self::Ed25519(x) => write!(f, "Ed25519({})", encode(x)),
            Self::P256 { x, y } => write!(f, "P256({}, {})", encode(x), encode(y)),
        }
    }
}

/// Something that signs JWS: it names its algorithm and key id up front, because both go
/// into the protected header that the signature covers.
pub trait Signer {
    /// The algorithm of every signature this signer makes.
    fn alg(&self) -> Alg;
    /// The `kid` to put in the header.
    fn kid(&self) -> &str;
    /// Signs the JWS signing input (`base64url(header) '.' base64url(payload)`).
    fn sign(&self, signing_input: &[u8]) -> Result<[u8; SIGNATURE_LEN]>;
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    Es256(EcdsaKeyPair),
}

/// A private key in memory with its key id: for clients' `private_key_jwt` assertions,
/// tests, and deployments that keep a signing key outside the keyring. aws-lc clears the
/// key material when it is dropped.
pub struct SigningKey {
    kid: String,
    pair: Pair,
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(alg: Alg, kid: impl Into<String>) -> Result<Self> {
        let pair = match alg {
            Alg::EdDSA => Pair::Ed25519(
                Ed25519KeyPair::generate().map_err(|_| Error::Key("ed25519 generation"))?,
            ),
            Alg::Es256 => Pair::Es256(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| Error::Key("p-256 generation"))?,
            ),
        };
        Ok(Self {
            kid: kid.into(),
            pair,
        })
    }

    /// Reads a PKCS#8 document (v1 or v2 for Ed25519; v1 for P-256).
    pub fn from_pkcs8(alg: Alg, kid: impl Into<String>, der: &[u8]) -> Result<Self> {
        let pair = match alg {
            Alg::EdDSA => Pair::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|_| Error::Key("not an ed25519 pkcs#8 document"))?,
            ),
            Alg::Es256 => Pair::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| Error::Key("not a p-256 pkcs#8 document"))?,
            ),
        };
        Ok(Self {
            kid: kid.into(),
            pair,
        })
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match &self.pair {
            Pair::Ed25519(pair) => {
                let mut x = [0u8; 32];
                x.copy_from_slice(pair.public_key().as_ref());
                PublicKey::Ed25519(x)
            }
            // aws-lc hands out P-256 public keys as uncompressed SEC1 points.
            Pair::Es256(pair) => PublicKey::from_sec1_uncompressed(pair.public_key().as_ref())
                .expect("aws-lc p-256 public keys are uncompressed points"),
        }
    }

    /// The public half as a JWK carrying this key's id.
    pub fn public_jwk(&self) -> crate::Jwk {
        crate::Jwk {
            kid: Some(self.kid.clone()),
            key: self.public_key(),
        }
    }
}

impl Signer for SigningKey {
    fn alg(&self) -> Alg {
        match self.pair {
            Pair::Ed25519(_) => Alg::EdDSA,
            Pair::Es256(_) => Alg::Es256,
        }
    }

    fn kid(&self) -> &str {
        &self.kid
    }

    fn sign(&self, signing_input: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        let mut out = [0u8; SIGNATURE_LEN];
        match &self.pair {
            Pair::Ed25519(pair) => out.copy_from_slice(pair.sign(signing_input).as_ref()),
            Pair::Es256(pair) => {
                let sig = pair
                    .sign(&SystemRandom::new(), signing_input)
                    .map_err(|_| Error::Key("p-256 signing"))?;
                out.copy_from_slice(sig.as_ref());
            }
        }
        Ok(out)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg())
            .finish_non_exhaustive()
    }
}

/// Signs with the active key of a keyring purpose ([`KeyPurpose::TokenSigning`] for access
/// tokens, [`KeyPurpose::GatewayAssertion`] for gateway assertions). The `kid` is the
/// keyring's [`KeyId`](tollgate_keyring::KeyId) in hyphenated form, as in the JWKS that
/// [`Jwks::from_records`](crate::Jwks::from_records) renders.
///
/// The active key is read once, at construction; the keyring is borrowed shared, so it
/// cannot rotate under the signer.
pub struct KeyringSigner<'k> {
    keyring: &'k Keyring,
    purpose: KeyPurpose,
    kid: String,
}

impl<'k> KeyringSigner<'k> {
    /// Fails if the purpose is not Ed25519 or has no active key.
    pub fn new(keyring: &'k Keyring, purpose: KeyPurpose) -> Result<Self> {
        if purpose.algorithm() != KeyAlgorithm::Ed25519 {
            return Err(Error::Key("keyring purpose does not sign with ed25519"));
        }
        let record = keyring
            .active(purpose)
            .ok_or(tollgate_keyring::Error::NoActiveKey(purpose))?;
        Ok(Self {
            keyring,
            purpose,
            kid: record.id.to_string(),
        })
    }
}

impl Signer for KeyringSigner<'_> {
    fn alg(&self) -> Alg {
        Alg::EdDSA
    }

    fn kid(&self) -> &str {
        &self.kid
    }

    fn sign(&self, signing_input: &[u8]) -> Result<[u8; SIGNATURE_LEN]> {
        let signature = self.keyring.sign(self.purpose, signing_input)?;
        // The header already names `kid`; a signature by any other key would not verify.
        if signature.key_id.to_string() != self.kid {
            return Err(Error::Key("the keyring's active key changed"));
        }
        Ok(signature.bytes)
    }
}

impl fmt::Debug for KeyringSigner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringSigner")
            .field("purpose", &self.purpose)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}
