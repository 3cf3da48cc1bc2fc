//! Shared fixtures: the RFC 9421 vectors file (copied from the published appendix) and
//! helpers to read its keys and messages.

use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;
use tollgate_httpsig::{Algorithm, SigningKey, VerifyingKey};

pub const VECTORS: &str = include_str!("../vectors/rfc9421_vectors.json");

pub fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| serde_json::from_str(VECTORS).unwrap())
}

pub fn case(name: &str, field: &str) -> &'static str {
    vectors()["cases"][name][field]
        .as_str()
        .unwrap_or_else(|| panic!("{name}.{field}"))
}

pub fn message(name: &str) -> &'static str {
    vectors()["messages"][name].as_str().unwrap()
}

pub fn pem(key: &str) -> &'static str {
    vectors()["keys"][key]["pem"].as_str().unwrap()
}

pub fn hmac_secret() -> Vec<u8> {
    let b64 = vectors()["keys"]["test-shared-secret"]["base64"]
        .as_str()
        .unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// The verifying key of a vector key name.
pub fn public(key: &str) -> VerifyingKey {
    match key {
        "test-shared-secret" => VerifyingKey::hmac_sha256(&hmac_secret()).unwrap(),
        "test-key-rsa-pss" => {
            VerifyingKey::from_public_key_pem(Algorithm::RsaPssSha512, pem(key).as_bytes()).unwrap()
        }
        "test-key-ecc-p256" => {
            VerifyingKey::from_public_key_pem(Algorithm::EcdsaP256Sha256, pem(key).as_bytes())
                .unwrap()
        }
        "test-key-ed25519" => {
            VerifyingKey::from_public_key_pem(Algorithm::Ed25519, pem(key).as_bytes()).unwrap()
        }
        other => panic!("no key {other}"),
    }
}

/// The signing key of a vector key name.
pub fn private(key: &str) -> SigningKey {
    match key {
        "test-shared-secret" => SigningKey::hmac_sha256(&hmac_secret()).unwrap(),
        "test-key-rsa" => {
            SigningKey::from_private_key_pem(Algorithm::RsaPssSha512, pem(key).as_bytes()).unwrap()
        }
        "test-key-ecc-p256" => {
            SigningKey::from_private_key_pem(Algorithm::EcdsaP256Sha256, pem(key).as_bytes())
                .unwrap()
        }
        "test-key-ed25519" => {
            SigningKey::from_private_key_pem(Algorithm::Ed25519, pem(key).as_bytes()).unwrap()
        }
        other => panic!("no key {other}"),
    }
}

/// `raw` with `Signature-Input` and `Signature` field lines added at the end of the head.
pub fn with_signature(raw: &str, input: &str, signature: &str) -> String {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    format!("{head}\nSignature-Input: {input}\nSignature: {signature}\n\n{body}")
}
