//! Leaf encoding. The tree treats leaves as opaque bytes; Tollgate's usage leaves are
//! version 1: the byte `0x01` followed by the RFC 8785 (JCS) canonical JSON of the event.
//!
//! Canonical JSON makes the leaf, and so its hash, a function of the event's content alone
//! (key order, number formatting and escaping are fixed), so anyone holding the event can
//! recompute the leaf hash and check an inclusion proof. The version byte lets a later
//! encoding coexist in the same log; `decode` rejects versions it does not know and bodies
//! that are not in canonical form, so two different byte strings never decode to the same
//! event.

use crate::error::{Error, Result};

/// The version byte of JCS-encoded JSON leaves.
pub const V1: u8 = 0x01;

/// `0x01 ‖ JCS(json)`.
pub fn encode_v1(json: &serde_json::Value) -> Vec<u8> {
    let mut out = vec![V1];
    // A serde_json::Value holds no non-finite numbers and no non-string keys, the only things
    // JCS refuses, and writing to a Vec cannot fail.
    serde_jcs::to_writer(&mut out, json).expect("a serde_json::Value is always JCS-serializable");
    out
}

/// Checks the version byte and canonical form, and returns the JSON value.
pub fn decode(leaf: &[u8]) -> Result<serde_json::Value> {
    let (&version, body) = leaf.split_first().ok_or(Error::LeafEmpty)?;
    if version != V1 {
        return Err(Error::LeafVersion(version));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(Error::LeafJson)?;
    if encode_v1(&value)[1..] != *body {
        return Err(Error::LeafNotCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_is_canonical() {
        let v = json!({"b": 1, "a": [1.5, "x\u{e9}"], "c": {"z": null, "y": true}});
        let leaf = encode_v1(&v);
        assert_eq!(leaf[0], 0x01);
        assert_eq!(
            std::str::from_utf8(&leaf[1..]).unwrap(),
            "{\"a\":[1.5,\"x\u{e9}\"],\"b\":1,\"c\":{\"y\":true,\"z\":null}}"
        );
        assert_eq!(decode(&leaf).unwrap(), v);
    }

    #[test]
    fn bad_leaves_are_rejected() {
        assert!(matches!(decode(b""), Err(Error::LeafEmpty)));
        assert!(matches!(decode(b"\x02{}"), Err(Error::LeafVersion(2))));
        assert!(matches!(decode(b"\x01{"), Err(Error::LeafJson(_))));
        assert!(matches!(
            decode(b"\x01{\"b\":1,\"a\":2}"),
            Err(Error::LeafNotCanonical)
        ));
        assert!(matches!(decode(b"\x01{ }"), Err(Error::LeafNotCanonical)));
    }
}
