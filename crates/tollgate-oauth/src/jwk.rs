//! JSON Web Keys (RFC 7517) for the two key types this crate verifies — `OKP`/`Ed25519`
//! (RFC 8037) and `EC`/`P-256` (RFC 7518 §6.2) — and [`KeySet`], a JWK Set parsed once
//! into ready-to-verify keys.

use aws_lc_rs::digest;
use aws_lc_rs::signature::ParsedPublicKey;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use tollgate_keyring::{KeyAlgorithm, KeyRecord};

use crate::b64;
use crate::{Alg, Error, PublicKey, Result};

/// One public key with its optional key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    /// `kid`. Every key this crate publishes has one; a client's registered keys may not,
    /// and then only a token without `kid` can select it (see [`KeySet`]).
    pub kid: Option<String>,
    /// The key itself; its type fixes `alg`.
    pub key: PublicKey,
}

impl Jwk {
    /// The RFC 7638 thumbprint: base64url SHA-256 of the required members in
    /// lexicographic order. A stable, content-derived `kid`.
    pub fn thumbprint(&self) -> String {
        let canonical = match &self.key {
            PublicKey::Ed25519(x) => {
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    b64::encode(x)
                )
            }
            PublicKey::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(x),
                b64::encode(y)
            ),
        };
        b64::encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    }
}

impl Serialize for Jwk {
    /// Members in the order RFC 8037's examples use, then `kid`, `alg`, `use`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match &self.key {
            PublicKey::Ed25519(x) => {
                map.serialize_entry("kty", "OKP")?;
                map.serialize_entry("crv", "Ed25519")?;
                map.serialize_entry("x", &b64::encode(x))?;
            }
            PublicKey::P256 { x, y } => {
                map.serialize_entry("kty", "EC")?;
                map.serialize_entry("crv", "P-256")?;
                map.serialize_entry("x", &b64::encode(x))?;
                map.serialize_entry("y", &b64::encode(y))?;
            }
        }
        if let Some(kid) = &self.kid {
            map.serialize_entry("kid", kid)?;
        }
        map.serialize_entry("alg", self.key.alg().as_str())?;
        map.serialize_entry("use", "sig")?;
        map.end()
    }
}

/// A JWK Set: what `/.well-known/jwks.json` serves, and what a `private_key_jwt` client
/// registers.
///
/// Parsing is strict, because a key set is registered once and then trusted: every key
/// must be a public `OKP`/`Ed25519` or `EC`/`P-256` signature key. A private member
/// (`d`), a symmetric (`oct`) or RSA key, an `alg` other than the key's, `use` other than
/// `sig`, `key_ops` without `verify`, a point off the curve, or a repeated `kid` is an
/// error naming the key — never silently skipped, so a client learns at registration that
/// a key will not work.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Jwks {
    /// The keys, in document order.
    pub keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default, deserialize_with = "b64::present")]
    d: bool,
}

impl Jwks {
    /// Parses and checks a JWK Set given as JSON.
    pub fn parse(value: &serde_json::Value) -> Result<Self> {
        let raw = value
            .is_object()
            .then(|| RawJwks::deserialize(value).ok())
            .flatten()
            .ok_or(Error::InvalidJwks("not an object with a keys array"))?;
        if raw.keys.is_empty() {
            return Err(Error::InvalidJwks("no keys"));
        }
        let keys = raw
            .keys
            .iter()
            .enumerate()
            .map(|(index, v)| parse_jwk(v).map_err(|reason| Error::InvalidJwk { index, reason }))
            .collect::<Result<Vec<_>>>()?;
        let jwks = Self { keys };
        jwks.check_unique_kids()?;
        Ok(jwks)
    }

    /// [`Jwks::parse`] from JSON text.
    pub fn parse_str(text: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| Error::InvalidJwks("not json"))?;
        Self::parse(&value)
    }

    /// The published keys of the keyring records given, `kid` = key id — typically
    /// [`Keyring::verification_keys`](tollgate_keyring::Keyring::verification_keys) of
    /// [`KeyPurpose::TokenSigning`](tollgate_keyring::KeyPurpose::TokenSigning) or
    /// [`KeyPurpose::GatewayAssertion`](tollgate_keyring::KeyPurpose::GatewayAssertion);
    /// see [`rotation`](crate::rotation).
    pub fn from_records<'r>(records: impl IntoIterator<Item = &'r KeyRecord>) -> Result<Self> {
        let keys = records
            .into_iter()
            .enumerate()
            .map(|(index, record)| {
                let invalid = |reason| Error::InvalidJwk { index, reason };
                if record.algorithm != KeyAlgorithm::Ed25519 {
                    return Err(invalid("keyring record is not an ed25519 key"));
                }
                let x = record
                    .public_key
                    .as_deref()
                    .and_then(|k| <[u8; 32]>::try_from(k).ok())
                    .ok_or(invalid("keyring record without a 32-byte public key"))?;
                Ok(Jwk {
                    kid: Some(record.id.to_string()),
                    key: PublicKey::Ed25519(x),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { keys })
    }

    /// The document as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a jwks always serializes")
    }

    fn check_unique_kids(&self) -> Result<()> {
        for (i, a) in self.keys.iter().enumerate() {
            if a.kid.is_some() && self.keys[..i].iter().any(|b| b.kid == a.kid) {
                return Err(Error::InvalidJwks("two keys share a kid"));
            }
        }
        Ok(())
    }
}

impl Serialize for Jwks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Keys<'a>(&'a [Jwk]);
        impl Serialize for Keys<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for key in self.0 {
                    seq.serialize_element(key)?;
                }
                seq.end()
            }
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("keys", &Keys(&self.keys))?;
        map.end()
    }
}

fn parse_jwk(value: &serde_json::Value) -> Result<Jwk, &'static str> {
    let raw = value
        .is_object()
        .then(|| RawJwk::deserialize(value).ok())
        .flatten()
        .ok_or("not a jwk object with string members")?;
    if raw.d {
        return Err("contains a private key (d); register the public key only");
    }
    if let Some(use_) = &raw.use_
        && use_ != "sig"
    {
        return Err("use is not sig");
    }
    if let Some(ops) = &raw.key_ops
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("key_ops does not include verify");
    }
    let coordinate = |member: &Option<String>, name| {
        let text = member.as_deref().ok_or(name)?;
        b64::decode_array::<32>(text).ok_or(name)
    };
    let key = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("OKP", Some("Ed25519")) => {
            if raw.y.is_some() {
                return Err("an OKP key has no y");
            }
            PublicKey::Ed25519(coordinate(&raw.x, "x is not 32 bytes of base64url")?)
        }
        ("EC", Some("P-256")) => PublicKey::P256 {
            x: coordinate(&raw.x, "x is not 32 bytes of base64url")?,
            y: coordinate(&raw.y, "y is not 32 bytes of base64url")?,
        },
        ("OKP", _) => return Err("unsupported OKP curve; use Ed25519"),
        ("EC", _) => return Err("unsupported EC curve; use P-256"),
        ("oct", _) => return Err("symmetric keys are not accepted"),
        ("RSA", _) => return Err("RSA keys are not supported; use Ed25519 or P-256"),
        _ => return Err("unsupported kty"),
    };
    if let Some(alg) = &raw.alg
        && Alg::from_name(alg) != Ok(key.alg())
    {
        return Err("alg does not match the key type (EdDSA for Ed25519, ES256 for P-256)");
    }
    // Parse once here so a point off the curve is refused at registration.
    key.parse().map_err(|_| "not a valid public key")?;
    Ok(Jwk { kid: raw.kid, key })
}

struct Entry {
    jwk: Jwk,
    parsed: ParsedPublicKey,
}

/// A set of verification keys, parsed once: the gateway builds one per snapshot and each
/// verification then finds its key by `kid` with a short scan (sets hold a handful of
/// keys during a rotation) and verifies without parsing it again.
///
/// A token that names a `kid` must find exactly that key. A token without `kid` is
/// accepted only by verifiers that allow it (client assertions) and only when the set has
/// exactly one key of the token's algorithm.
pub struct KeySet {
    entries: Vec<Entry>,
}

impl KeySet {
    /// Parses every key of `jwks`. Fails on a repeated `kid`.
    pub fn new(jwks: &Jwks) -> Result<Self> {
        jwks.check_unique_kids()?;
        let entries = jwks
            .keys
            .iter()
            .enumerate()
            .map(|(index, jwk)| {
                let parsed = jwk.key.parse().map_err(|_| Error::InvalidJwk {
                    index,
                    reason: "not a valid public key",
                })?;
                Ok(Entry {
                    jwk: jwk.clone(),
                    parsed,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { entries })
    }

    /// The keys as a JWK Set, to publish.
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: self.entries.iter().map(|e| e.jwk.clone()).collect(),
        }
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty (then every token is [`Error::UnknownKey`]).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key for a token header's `kid` and `alg`.
    pub(crate) fn find(
        &self,
        kid: Option<&str>,
        alg: Alg,
        require_kid: bool,
    ) -> Result<&ParsedPublicKey> {
        let entry = match kid {
            Some(kid) => self
                .entries
                .iter()
                .find(|e| e.jwk.kid.as_deref() == Some(kid))
                .ok_or(Error::UnknownKey)?,
            None if require_kid => return Err(Error::Malformed("header has no kid")),
            None => {
                let mut candidates = self.entries.iter().filter(|e| e.jwk.key.alg() == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => only,
                    _ => return Err(Error::UnknownKey),
                }
            }
        };
        if entry.jwk.key.alg() != alg {
            return Err(Error::AlgMismatch);
        }
        Ok(&entry.parsed)
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.jwk))
            .finish()
    }
}

impl TryFrom<&Jwks> for KeySet {
    type Error = Error;
    fn try_from(jwks: &Jwks) -> Result<Self> {
        Self::new(jwks)
    }
}
