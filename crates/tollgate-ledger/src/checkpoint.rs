//! C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the signed statement "the log `origin` has
//! `size` entries with root `root`", carried in a signed note whose key name is the origin.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{Error, Result};
use crate::note::{self, NoteSigner, VerifierKey};
use crate::tree::Hash;

/// A checkpoint and the signed note it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Extension lines after the root, without their newlines.
    pub extensions: Vec<String>,
    /// The whole signed note, byte for byte as stored and served.
    pub note: String,
}

/// `<origin>\n<size>\n<base64 root>\n`: the checkpoint body this crate signs (no extensions).
pub fn body(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", B64.encode(root))
}

impl Checkpoint {
    /// Builds and signs a checkpoint; the signer's key name must be the origin.
    pub fn sign(origin: &str, size: u64, root: Hash, signer: &dyn NoteSigner) -> Result<Self> {
        note::validate_key_name(origin)?;
        if signer.name() != origin {
            return Err(Error::SignerName {
                signer: signer.name().to_string(),
                origin: origin.to_string(),
            });
        }
        let note = note::sign(&body(origin, size, &root), signer)?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
            note,
        })
    }

    /// Verifies the note against `keys`, then parses its text as a checkpoint of `origin`.
    pub fn open(msg: &[u8], origin: &str, keys: &[VerifierKey]) -> Result<Self> {
        let n = note::open(msg, keys)?;
        let cp = Self::parse_text(&n.text, msg)?;
        if cp.origin != origin {
            return Err(Error::OriginMismatch {
                expected: origin.to_string(),
                found: cp.origin,
            });
        }
        Ok(cp)
    }

    /// Parses a signed checkpoint note WITHOUT checking signatures: for callers that verified
    /// the note before (the log re-reading its own fsynced file after verifying the newest).
    pub fn parse_unverified(msg: &[u8]) -> Result<Self> {
        let text =
            std::str::from_utf8(msg).map_err(|_| Error::MalformedCheckpoint("not utf-8".into()))?;
        let split = text.rfind("\n\n").ok_or_else(|| {
            Error::MalformedCheckpoint("no blank line before the signatures".into())
        })?;
        Self::parse_text(&text[..split + 1], msg)
    }

    fn parse_text(text: &str, msg: &[u8]) -> Result<Self> {
        let bad = |s: &str| Error::MalformedCheckpoint(s.to_string());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("body does not end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("empty origin"))?;
        let size = lines.next().ok_or_else(|| bad("missing tree size"))?;
        // Decimal without sign or leading zeros, as the spec's ASCII decimal.
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad("tree size is not a canonical decimal number"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| bad("tree size does not fit in 64 bits"))?;
        let root = lines.next().ok_or_else(|| bad("missing root hash"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("root hash is not 32 bytes of standard base64"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
            note: String::from_utf8(msg.to_vec()).map_err(|_| bad("not utf-8"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::Ed25519Signer;

    #[test]
    fn sign_then_open_round_trips() {
        let s = Ed25519Signer::generate("example.com/ledger").unwrap();
        let cp = Checkpoint::sign("example.com/ledger", 120, [3u8; 32], &s).unwrap();
        assert!(cp.note.starts_with("example.com/ledger\n120\nAwMD"));
        assert!(cp.note.contains("\n\n\u{2014} example.com/ledger "));
        let back =
            Checkpoint::open(cp.note.as_bytes(), "example.com/ledger", &[s.verifier()]).unwrap();
        assert_eq!(back, cp);
        assert!(
            Checkpoint::open(cp.note.as_bytes(), "example.com/other", &[s.verifier()]).is_err()
        );
        let tampered = cp.note.replace("\n120\n", "\n121\n");
        assert!(
            Checkpoint::open(tampered.as_bytes(), "example.com/ledger", &[s.verifier()]).is_err()
        );
    }

    #[test]
    fn signer_must_be_the_origin_and_origin_must_be_a_key_name() {
        let s = Ed25519Signer::generate("example.com/a").unwrap();
        assert!(Checkpoint::sign("example.com/b", 1, [0; 32], &s).is_err());
        assert!(Checkpoint::sign("bad origin", 1, [0; 32], &s).is_err());
        assert!(Checkpoint::sign("bad+origin", 1, [0; 32], &s).is_err());
    }

    #[test]
    fn extensions_parse_and_bad_bodies_do_not() {
        let s = Ed25519Signer::generate("o").unwrap();
        let root = B64.encode([1u8; 32]);
        let ok = note::sign(&format!("o\n5\n{root}\next one\n"), &s).unwrap();
        let cp = Checkpoint::open(ok.as_bytes(), "o", &[s.verifier()]).unwrap();
        assert_eq!(cp.extensions, vec!["ext one".to_string()]);
        for body in [
            format!("o\n05\n{root}\n"),
            format!("o\n-5\n{root}\n"),
            format!("o\n5\n{}\n", B64.encode([1u8; 31])),
            "o\n5\n".to_string(),
            format!("\n5\n{root}\n"),
            format!("o\n5\n{root}\n\n"),
        ] {
            let n = note::sign(&body, &s).unwrap();
            assert!(
                Checkpoint::open(n.as_bytes(), "o", &[s.verifier()]).is_err(),
                "{body:?}"
            );
        }
    }
}
