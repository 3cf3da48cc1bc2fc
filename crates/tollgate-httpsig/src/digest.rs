//! `Content-Digest` (RFC 9530): computing the field for a body and checking a body
//! against it, at once or chunk by chunk as a streamed body arrives.

use aws_lc_rs::digest;
use http::HeaderMap;
use sfv::visitor::{DictionaryVisitor, EntryVisitor, Ignored, InnerListVisitor, ItemVisitor};
use sfv::{BareItemFromInput, KeyRef};

use crate::Error;
use crate::component::Abort;

/// A digest algorithm of the Hash Algorithms for HTTP Digest Fields registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `sha-256`.
    Sha256,
    /// `sha-512`.
    Sha512,
}

impl DigestAlgorithm {
    /// The registered key (`sha-256`, `sha-512`).
    pub fn key(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            DigestAlgorithm::Sha512 => "sha-512",
        }
    }

    fn from_key(key: &str) -> Option<Self> {
        match key {
            "sha-256" => Some(DigestAlgorithm::Sha256),
            "sha-512" => Some(DigestAlgorithm::Sha512),
            _ => None,
        }
    }

    fn aws(self) -> &'static digest::Algorithm {
        match self {
            DigestAlgorithm::Sha256 => &digest::SHA256,
            DigestAlgorithm::Sha512 => &digest::SHA512,
        }
    }
}

/// The `Content-Digest` field value for `body`: `sha-256=:…:`.
pub fn content_digest(body: &[u8], alg: DigestAlgorithm) -> String {
    let hash = digest::digest(alg.aws(), body);
    let mut dict = sfv::DictSerializer::new();
    let _ = dict.bare_item(KeyRef::constant(alg.key()), hash.as_ref());
    dict.finish().unwrap_or_default()
}

/// Checks `body` against the message's `Content-Digest` field.
pub fn verify_content_digest(headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    let mut check = ContentDigestCheck::from_headers(headers)?;
    check.update(body);
    check.finish()
}

/// A body check that hashes chunks as they arrive: every digest the field gives with an
/// algorithm implemented here must match, and at least one must be given.
#[derive(Clone)]
pub struct ContentDigestCheck {
    expected: Vec<(DigestAlgorithm, Vec<u8>)>,
    contexts: Vec<digest::Context>,
}

impl std::fmt::Debug for ContentDigestCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.expected.iter().map(|(a, _)| a.key()).collect();
        f.debug_struct("ContentDigestCheck")
            .field("algorithms", &algs)
            .finish()
    }
}

impl ContentDigestCheck {
    /// Reads the `Content-Digest` field (every field line).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Error> {
        let mut expected = Vec::with_capacity(1);
        let mut lines = 0;
        for line in headers.get_all("content-digest") {
            lines += 1;
            let text = std::str::from_utf8(line.as_bytes())
                .map_err(|_| Error::InvalidDigest("field is not ASCII".into()))?;
            sfv::Parser::new(text)
                .parse_dictionary_with_visitor(DigestsVisitor {
                    expected: &mut expected,
                })
                .map_err(|e| Error::InvalidDigest(e.to_string()))?;
        }
        if lines == 0 {
            return Err(Error::InvalidDigest("no Content-Digest field".into()));
        }
        Self::new(expected)
    }

    /// Reads one `Content-Digest` field value.
    pub fn parse(field_value: &str) -> Result<Self, Error> {
        let mut expected = Vec::with_capacity(1);
        sfv::Parser::new(field_value)
            .parse_dictionary_with_visitor(DigestsVisitor {
                expected: &mut expected,
            })
            .map_err(|e| Error::InvalidDigest(e.to_string()))?;
        Self::new(expected)
    }

    fn new(expected: Vec<(DigestAlgorithm, Option<Vec<u8>>)>) -> Result<Self, Error> {
        let mut out = Vec::with_capacity(expected.len());
        for (alg, value) in expected {
            let Some(value) = value else {
                return Err(Error::InvalidDigest(format!(
                    "{} is not a byte sequence",
                    alg.key()
                )));
            };
            out.push((alg, value));
        }
        if out.is_empty() {
            return Err(Error::InvalidDigest("no sha-256 or sha-512 digest".into()));
        }
        let contexts = out
            .iter()
            .map(|(alg, _)| digest::Context::new(alg.aws()))
            .collect();
        Ok(ContentDigestCheck {
            expected: out,
            contexts,
        })
    }

    /// Hashes the next chunk of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        for c in &mut self.contexts {
            c.update(chunk);
        }
    }

    /// Compares the digests of the whole body with the field.
    pub fn finish(self) -> Result<(), Error> {
        for ((alg, want), ctx) in self.expected.iter().zip(self.contexts) {
            if ctx.finish().as_ref() != want.as_slice() {
                return Err(Error::DigestMismatch {
                    algorithm: alg.key(),
                });
            }
        }
        Ok(())
    }
}

/// Keeps the members with known algorithms; a repeated key takes the last value.
struct DigestsVisitor<'v> {
    expected: &'v mut Vec<(DigestAlgorithm, Option<Vec<u8>>)>,
}

impl<'de> DictionaryVisitor<'de> for DigestsVisitor<'_> {
    type Out = ();
    type Error = Abort;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Abort> {
        let Some(alg) = DigestAlgorithm::from_key(key.as_str()) else {
            return Ok(None);
        };
        let index = match self.expected.iter().position(|(a, _)| *a == alg) {
            Some(i) => {
                self.expected[i].1 = None;
                i
            }
            None => {
                self.expected.push((alg, None));
                self.expected.len() - 1
            }
        };
        Ok(Some(DigestEntry {
            slot: &mut self.expected[index].1,
        }))
    }

    fn finish(self) -> Result<(), Abort> {
        Ok(())
    }
}

struct DigestEntry<'v> {
    slot: &'v mut Option<Vec<u8>>,
}

impl<'de> EntryVisitor<'de> for DigestEntry<'_> {
    type Error = Abort;

    fn item(self) -> Result<impl ItemVisitor<'de>, Abort> {
        Ok(move |bare: BareItemFromInput<'de>| {
            if let BareItemFromInput::ByteSequence(bytes) = bare {
                *self.slot = Some(bytes);
            }
            Ok::<_, Abort>(Ignored)
        })
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Abort> {
        Ok(Ignored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9530_examples() {
        // RFC 9530 §2 example: {"hello": "world"}.
        let body = br#"{"hello": "world"}"#;
        assert_eq!(
            content_digest(body, DigestAlgorithm::Sha256),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert_eq!(
            content_digest(body, DigestAlgorithm::Sha512),
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
        );
    }

    #[test]
    fn checks_every_known_digest() {
        let body = b"payload";
        let both = format!(
            "{}, {}, md5=:AAAA:",
            content_digest(body, DigestAlgorithm::Sha256),
            content_digest(body, DigestAlgorithm::Sha512)
        );
        let mut c = ContentDigestCheck::parse(&both).unwrap();
        c.update(b"pay");
        c.update(b"load");
        c.finish().unwrap();

        let mut c = ContentDigestCheck::parse(&both).unwrap();
        c.update(b"paylaod");
        assert_eq!(
            c.finish(),
            Err(Error::DigestMismatch {
                algorithm: "sha-256"
            })
        );

        // One good and one bad digest is a mismatch, not a pass.
        let mixed = format!(
            "{}, sha-512=:AAAA:",
            content_digest(body, DigestAlgorithm::Sha256)
        );
        let mut c = ContentDigestCheck::parse(&mixed).unwrap();
        c.update(body);
        assert!(c.finish().is_err());

        for bad in ["md5=:AAAA:", "sha-256=1", "sha-256=:AAA", ""] {
            assert!(ContentDigestCheck::parse(bad).is_err(), "{bad}");
        }
    }
}
