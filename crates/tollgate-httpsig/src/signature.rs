//! The signature base (RFC 9421 §2.5), signing (§3.1) and verification (§3.2).

use std::cell::RefCell;

use crate::digest::verify_content_digest;
use crate::{Algorithm, Error, Message, SignatureInput, SigningKey, VerifyingKey};

/// Writes the signature base of `input` over `msg` into `out` (cleared first): one
/// `"<component>": <value>` line per covered component, then the `"@signature-params"`
/// line, lines joined by `\n` with none after the last.
pub fn signature_base(
    msg: &Message<'_>,
    input: &SignatureInput<'_>,
    out: &mut String,
) -> Result<(), Error> {
    out.clear();
    for c in input.components() {
        c.write_sf(out);
        out.push_str(": ");
        msg.write_value(c, out)?;
        out.push('\n');
    }
    out.push_str("\"@signature-params\": ");
    input.write_params_value(out);
    Ok(())
}

thread_local! {
    /// One signature base buffer per thread, so verifying a request does not allocate
    /// for it once the thread has seen a request of that size.
    static BASE: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

/// Bases longer than this are not kept in the thread's buffer afterwards.
const KEEP_BASE_CAPACITY: usize = 16 * 1024;

fn with_base<T>(f: impl FnOnce(&mut String) -> T) -> T {
    BASE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let out = f(&mut buf);
            if buf.capacity() > KEEP_BASE_CAPACITY {
                *buf = String::with_capacity(1024);
            }
            out
        }
        // Re-entered from inside `f` (a resolver that verifies): use a fresh buffer.
        Err(_) => f(&mut String::new()),
    })
}

/// The fields a signer adds to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The `Signature-Input` member: `label=(…);created=…`.
    pub signature_input: String,
    /// The `Signature` member: `label=:…:`.
    pub signature: String,
    /// The signature base that was signed.
    pub base: String,
}

/// Signs `msg` as `input` describes. Add a `Content-Digest` field to the message first
/// when `input` covers it ([`crate::content_digest`]).
pub fn sign(
    msg: &Message<'_>,
    input: &SignatureInput<'_>,
    key: &SigningKey,
) -> Result<Signed, Error> {
    if let Some(alg) = input.alg()
        && alg != key.algorithm().name()
    {
        return Err(Error::AlgorithmMismatch {
            declared: alg.to_owned(),
            key: key.algorithm().name(),
        });
    }
    let mut base = String::with_capacity(512);
    signature_base(msg, input, &mut base)?;
    let bytes = key.sign(base.as_bytes())?;
    let mut dict = sfv::DictSerializer::new();
    let _ = dict.bare_item(
        sfv::KeyRef::from_str(input.label())
            .map_err(|e| Error::InvalidParameters(e.to_string()))?,
        bytes.as_slice(),
    );
    Ok(Signed {
        signature_input: input.field_member(),
        signature: dict.finish().unwrap_or_default(),
        base,
    })
}

/// Checks one signature cryptographically: the `alg` parameter (if any) names the key's
/// algorithm, the signature verifies over the signature base, and when the signature
/// covers `content-digest` and the view has the body, the body matches the digest.
///
/// Says nothing about freshness or which components are covered: that is [`Policy`]'s.
///
/// [`Policy`]: crate::Policy
pub fn verify_signature(
    msg: &Message<'_>,
    input: &SignatureInput<'_>,
    signature: &[u8],
    key: &VerifyingKey,
) -> Result<(), Error> {
    check_alg(input, key)?;
    with_base(|base| {
        signature_base(msg, input, base)?;
        if key.verify(base.as_bytes(), signature) {
            Ok(())
        } else {
            Err(Error::BadSignature {
                label: input.label().to_owned(),
            })
        }
    })?;
    if let Some(body) = msg.body()
        && input.covers("content-digest")
    {
        verify_content_digest(msg.headers(), body)?;
    }
    Ok(())
}

fn check_alg(input: &SignatureInput<'_>, key: &VerifyingKey) -> Result<(), Error> {
    if let Some(declared) = input.alg() {
        let declared_alg: Algorithm = declared.parse()?;
        if declared_alg != key.algorithm() {
            return Err(Error::AlgorithmMismatch {
                declared: declared.to_owned(),
                key: key.algorithm().name(),
            });
        }
    }
    Ok(())
}
