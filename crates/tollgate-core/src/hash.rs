//! Content hashes over canonical JSON (RFC 8785), used wherever Tollgate commits to the
//! state of an object: audit before/after digests today, term sheets and invoices later.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of the RFC 8785 canonical JSON of `value`.
///
/// Returns `None` only if `value` cannot be represented as JSON (for example a map with
/// non-string keys), which none of Tollgate's domain types can produce.
pub fn canonical_sha256<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let bytes = serde_jcs::to_vec(value).ok()?;
    Some(sha256_hex(&bytes))
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":[true,"x"]}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str("{ \"a\" : [ true , \"x\" ] ,\n \"b\" : 1 }").unwrap();
        assert_eq!(canonical_sha256(&a), canonical_sha256(&b));
        assert_ne!(
            canonical_sha256(&a),
            canonical_sha256(&json!({"b":2,"a":[true,"x"]}))
        );
    }

    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
