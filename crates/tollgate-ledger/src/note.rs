//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures: key names, key ids,
//! verifier key text, signing through a `NoteSigner` the caller owns, and parsing plus
//! verification of signed notes against known keys.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Signature type byte of Ed25519 in signed-note key ids and verifier keys.
const ALG_ED25519: u8 = 0x01;
/// The em dash and space that open every signature line.
const SIG_PREFIX: &str = "\u{2014} ";
/// More signatures than this make a note malformed (golang.org/x/mod/sumdb/note's limit; the
/// spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Checks a key name: non-empty, no Unicode white space, no `+`, no control characters.
pub fn validate_key_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidKeyName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.chars().any(char::is_whitespace) {
        return bad("contains white space");
    }
    if name.contains('+') {
        return bad("contains '+'");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    Ok(())
}

/// `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]` as a big-endian integer.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public_key);
    let d: [u8; 32] = h.finalize().into();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Signs note texts. The ledger never holds private keys: the server implements this over its
/// keyring; `Ed25519Signer` is the in-process implementation for tests, benches and tools.
pub trait NoteSigner {
    /// The key name; for checkpoints it must equal the log origin.
    fn name(&self) -> &str;
    /// The raw 32-byte Ed25519 public key.
    fn public_key(&self) -> [u8; 32];
    /// An Ed25519 signature over `msg`.
    fn sign(&self, msg: &[u8]) -> Result<[u8; 64]>;
}

/// A `NoteSigner` over an in-memory aws-lc-rs key pair.
pub struct Ed25519Signer {
    name: String,
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Ed25519Signer {
    /// A fresh random key.
    pub fn generate(name: &str) -> Result<Self> {
        validate_key_name(name)?;
        let key = Ed25519KeyPair::generate().map_err(|e| Error::Signing(e.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            key,
        })
    }

    /// A key from its 32-byte RFC 8032 seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self> {
        validate_key_name(name)?;
        let key =
            Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| Error::Signing(e.to_string()))?;
        Ok(Self {
            name: name.to_string(),
            key,
        })
    }

    /// The verifier key matching this signer.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey::new(&self.name, self.public_key()).expect("name was validated")
    }
}

impl NoteSigner for Ed25519Signer {
    fn name(&self) -> &str {
        &self.name
    }

    fn public_key(&self) -> [u8; 32] {
        self.key
            .public_key()
            .as_ref()
            .try_into()
            .expect("ed25519 public keys are 32 bytes")
    }

    fn sign(&self, msg: &[u8]) -> Result<[u8; 64]> {
        let sig = self.key.sign(msg);
        sig.as_ref()
            .try_into()
            .map_err(|_| Error::Signing(format!("signature of {} bytes", sig.as_ref().len())))
    }
}

/// A known Ed25519 key: `<name>+<8 hex digits of key id>+<base64(0x01 ‖ public key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    public_key: [u8; 32],
}

impl VerifierKey {
    pub fn new(name: &str, public_key: [u8; 32]) -> Result<Self> {
        validate_key_name(name)?;
        Ok(Self {
            name: name.to_string(),
            id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parses the verifier key text, checking that the key id matches the key.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason| Error::MalformedVerifierKey {
            key: text.to_string(),
            reason,
        };
        // The base64 part may itself contain '+', so split at the first two only.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        validate_key_name(name).map_err(|_| bad("invalid key name"))?;
        if id.len() != 8
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("key id is not 8 lowercase hex digits"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("key id is not hex"))?;
        let raw = B64
            .decode(key)
            .map_err(|_| bad("key is not standard base64"))?;
        if raw.len() != 33 {
            return Err(bad("key is not 33 bytes"));
        }
        if raw[0] != ALG_ED25519 {
            return Err(bad("key type is not ed25519"));
        }
        let public_key: [u8; 32] = raw[1..].try_into().expect("33 - 1 bytes");
        if key_id(name, &public_key) != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(Self {
            name: name.to_string(),
            id,
            public_key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public_key
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(msg, sig)
            .is_ok()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(&self.public_key);
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// A parsed signed note. `verified` lists the signatures that verified against known keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The note text, including its final newline.
    pub text: String,
    pub signatures: Vec<NoteSignature>,
    pub verified: Vec<NoteSignature>,
}

/// Signs `text` (which must end in a newline) and returns the whole signed note.
pub fn sign(text: &str, signer: &dyn NoteSigner) -> Result<String> {
    validate_text(text)?;
    let name = signer.name();
    validate_key_name(name)?;
    let id = key_id(name, &signer.public_key());
    let sig = signer.sign(text.as_bytes())?;
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&id.to_be_bytes());
    blob.extend_from_slice(&sig);
    Ok(format!("{text}\n{SIG_PREFIX}{name} {}\n", B64.encode(blob)))
}

fn validate_text(text: &str) -> Result<()> {
    if !text.ends_with('\n') {
        return Err(Error::MalformedNote(
            "text does not end in a newline".into(),
        ));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(Error::MalformedNote(
            "text contains a control character".into(),
        ));
    }
    Ok(())
}

/// Parses a signed note and verifies it against `known` keys: signatures by unknown keys are
/// ignored, a signature by a known key (same name and id) that fails is an error, and at least
/// one known key must have signed.
pub fn open(msg: &[u8], known: &[VerifierKey]) -> Result<Note> {
    let malformed = |s: &str| Error::MalformedNote(s.to_string());
    let msg = std::str::from_utf8(msg).map_err(|_| malformed("not utf-8"))?;
    if msg.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("contains a control character"));
    }
    if !msg.ends_with('\n') {
        return Err(malformed("does not end in a newline"));
    }
    // The text is separated from the signatures by the last empty line.
    let split = msg
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&msg[..split + 1], &msg[split + 2..]);
    if sigs.is_empty() {
        return Err(malformed("no signature lines"));
    }
    let mut signatures = Vec::new();
    for line in sigs[..sigs.len() - 1].split('\n') {
        if signatures.len() == MAX_SIGNATURES {
            return Err(malformed("more than 100 signatures"));
        }
        let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
            malformed("signature line does not start with an em dash and a space")
        })?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("signature line has no space after the key name"))?;
        validate_key_name(name).map_err(|_| malformed("invalid key name in a signature line"))?;
        let blob = B64
            .decode(b64)
            .map_err(|_| malformed("signature is not standard base64"))?;
        if blob.len() < 5 {
            return Err(malformed("signature is shorter than a key id and one byte"));
        }
        signatures.push(NoteSignature {
            name: name.to_string(),
            key_id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
            signature: blob[4..].to_vec(),
        });
    }
    let mut verified = Vec::new();
    for s in &signatures {
        let Some(key) = known.iter().find(|k| k.name == s.name && k.id == s.key_id) else {
            continue;
        };
        if !key.verify(text.as_bytes(), &s.signature) {
            return Err(Error::BadSignature {
                name: s.name.clone(),
                key_id: s.key_id,
            });
        }
        if !verified.contains(s) {
            verified.push(s.clone());
        }
    }
    if verified.is_empty() {
        return Err(Error::NoteUnverified { known: known.len() });
    }
    Ok(Note {
        text: text.to_string(),
        signatures,
        verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note: the PeterNeumann example key and note.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter_note() -> String {
        format!("{PETER_TEXT}\n{PETER_SIG}")
    }

    fn peter_signer() -> Ed25519Signer {
        // PRIVATE+KEY+name+id+base64: the base64 part may contain '+'.
        let b64 = PETER_SKEY.splitn(5, '+').nth(4).unwrap();
        let raw = B64.decode(b64).unwrap();
        assert_eq!(raw[0], ALG_ED25519);
        Ed25519Signer::from_seed("PeterNeumann", raw[1..].try_into().unwrap()).unwrap()
    }

    #[test]
    fn go_reference_note_verifies() {
        let key = VerifierKey::parse(PETER_VKEY).unwrap();
        assert_eq!(key.id(), 0xc74f20a3);
        assert_eq!(key.to_string(), PETER_VKEY);
        let note = open(peter_note().as_bytes(), &[key]).unwrap();
        assert_eq!(note.text, PETER_TEXT);
        assert_eq!(note.verified.len(), 1);
        assert_eq!(note.verified[0].name, "PeterNeumann");
    }

    #[test]
    fn signer_reproduces_the_go_reference_signature() {
        // Ed25519 is deterministic, so the same seed must give the published bytes.
        let s = peter_signer();
        assert_eq!(s.verifier().to_string(), PETER_VKEY);
        assert_eq!(sign(PETER_TEXT, &s).unwrap(), peter_note());
    }

    #[test]
    fn key_parsing_rejects_bad_keys() {
        for bad in [
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3",
            "PeterNeumann+c74f20a3+!!!!",
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        ] {
            assert!(VerifierKey::parse(bad).is_err(), "{bad}");
        }
        for bad in ["", "a b", "a+b", "a\nb", "a\u{a0}b"] {
            assert!(validate_key_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_keys_are_ignored_but_a_known_key_is_required() {
        let peter = VerifierKey::parse(PETER_VKEY).unwrap();
        let other = Ed25519Signer::generate("example.com/log").unwrap();
        // A note signed by peter and by an unknown key: verifies with peter's key alone.
        let both = format!(
            "{}{}",
            peter_note(),
            sign(PETER_TEXT, &other)
                .unwrap()
                .split_once("\n\n")
                .unwrap()
                .1
        );
        let n = open(both.as_bytes(), std::slice::from_ref(&peter)).unwrap();
        assert_eq!(n.signatures.len(), 2);
        assert_eq!(n.verified.len(), 1);
        // Only unknown keys: rejected.
        assert!(matches!(
            open(peter_note().as_bytes(), &[other.verifier()]),
            Err(Error::NoteUnverified { .. })
        ));
        // Same name, different key: that is an unknown key, not a failed signature.
        let impostor = Ed25519Signer::generate("PeterNeumann").unwrap();
        assert!(matches!(
            open(peter_note().as_bytes(), &[impostor.verifier()]),
            Err(Error::NoteUnverified { .. })
        ));
    }

    #[test]
    fn malformed_and_tampered_notes_are_rejected() {
        let peter = [VerifierKey::parse(PETER_VKEY).unwrap()];
        let good = peter_note();
        let sig_line = PETER_SIG;
        let many = format!("{PETER_TEXT}\n{}", sig_line.repeat(101));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "missing blank line",
                format!("{PETER_TEXT}{sig_line}").into_bytes(),
            ),
            (
                "no final newline",
                good.trim_end_matches('\n').as_bytes().to_vec(),
            ),
            ("bad base64", good.replace("x08go", "x08g!").into_bytes()),
            (
                "hyphen instead of em dash",
                good.replace('\u{2014}', "-").into_bytes(),
            ),
            ("more than 100 signatures", many.into_bytes()),
            (
                "not utf-8",
                [PETER_TEXT.as_bytes(), b"\xff\n\n", sig_line.as_bytes()].concat(),
            ),
            (
                "control character",
                good.replace("answer", "ans\rwer").into_bytes(),
            ),
            (
                "tampered text",
                good.replace("answer", "Answer").into_bytes(),
            ),
            ("no signatures", format!("{PETER_TEXT}\n").into_bytes()),
            (
                "tab in key name",
                good.replace("PeterNeumann ", "Peter\tNeumann ")
                    .into_bytes(),
            ),
        ];
        for (what, msg) in cases {
            assert!(open(&msg, &peter).is_err(), "{what} accepted");
        }
        // A text without its final newline cannot be signed.
        assert!(sign(PETER_TEXT.trim_end(), &peter_signer()).is_err());
        // 100 identical valid signatures are still acceptable.
        let hundred = format!("{PETER_TEXT}\n{}", sig_line.repeat(100));
        assert!(open(hundred.as_bytes(), &peter).is_ok());
    }
}
