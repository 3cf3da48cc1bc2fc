//! Integration tests of tollgate-oauth: every rejection of the verifiers, JWKS round trips,
//! client authentication, rotation on a real keyring, and interop with PyJWT.

mod access;
mod assertion;
mod client_auth;
mod interop;
mod jwks;
mod metadata;
mod props;
mod rotation;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use tollgate_core::apikey::KeyMode;
use tollgate_core::{AppId, OAuthClientId, OrgId};
use tollgate_oauth::{AccessClaims, AccessTokenVerifier, Alg, Jwks, KeySet, Signer, SigningKey};

pub const ISS: &str = "https://market.example";
pub const AUD: &str = "https://gw.example";
pub const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn key(alg: Alg, kid: &str) -> SigningKey {
    SigningKey::generate(alg, kid).unwrap()
}

pub fn key_set(keys: &[&SigningKey]) -> KeySet {
    KeySet::new(&Jwks {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    })
    .unwrap()
}

pub fn verifier(keys: &[&SigningKey]) -> AccessTokenVerifier {
    AccessTokenVerifier::new(key_set(keys), ISS, AUD)
}

pub fn claims() -> AccessClaims {
    AccessClaims::new(
        OAuthClientId::new(),
        AppId::new(),
        OrgId::new(),
        KeyMode::Live,
        "read write",
        NOW,
        time::Duration::minutes(5),
    )
    .unwrap()
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// Signs any header and payload with `key`, for tokens the issuing API would never make.
pub fn forge(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(payload).unwrap())
    );
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&sig))
}

/// The header and payload of a token, decoded.
pub fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap()
    };
    (part(), part())
}

/// A header as the issuer writes it.
pub fn header(key: &SigningKey, typ: &str) -> Value {
    json!({"alg": key.alg().as_str(), "typ": typ, "kid": key.kid()})
}
