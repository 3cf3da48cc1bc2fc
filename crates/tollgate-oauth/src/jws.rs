//! Compact JWS (RFC 7515 §7.1) on aws-lc-rs: `base64url(header) '.' base64url(payload) '.'
//! base64url(signature)`, with only `EdDSA` and `ES256`.
//!
//! Verification is strict and ordered so that nothing the token says is believed before it
//! must be: the header is read for `alg`, `kid`, `typ` and `crit` only; the algorithm is
//! checked against an allow-list *and* against the key the `kid` names (so an `HS256`
//! token "signed" with a public key, or an `ES256` token naming an Ed25519 key, is refused
//! before any crypto); the signature is verified; only then is the payload decoded for
//! the caller to read its claims.

use serde::{Deserialize, Serialize};

use crate::b64::{self, Str};
use crate::keys::SIGNATURE_LEN;
use crate::{Alg, Error, KeySet, Result, Signer};

/// Longest token accepted, in bytes; longer input is refused before any decoding. Our
/// tokens are well under 1 KiB; 8 KiB leaves room for clients' assertions.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Headers and payloads up to these sizes decode on the stack.
const HEADER_BUF: usize = 256;
const PAYLOAD_BUF: usize = 1024;

/// What a verifier requires of the `typ` header (RFC 8725 §3.11: explicit typing keeps one
/// kind of JWT from being accepted as another).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypRule {
    /// Exactly this media type (compared per RFC 7515 §4.1.9: case-insensitive, with or
    /// without the `application/` prefix).
    Exactly(&'static str),
    /// Absent, `JWT`, or `client-authentication+jwt` — what client assertion libraries
    /// write. Anything else (notably `at+jwt`) is refused, so an access token can never
    /// pass as a client assertion.
    ClientAssertion,
}

impl TypRule {
    fn accepts(self, typ: Option<&str>) -> bool {
        let bare = typ.map(|t| {
            t.get(..12)
                .filter(|p| p.eq_ignore_ascii_case("application/"))
                .map_or(t, |_| &t[12..])
        });
        match (self, bare) {
            (Self::Exactly(want), Some(t)) => t.eq_ignore_ascii_case(want),
            (Self::Exactly(_), None) => false,
            (Self::ClientAssertion, None) => true,
            (Self::ClientAssertion, Some(t)) => {
                t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("client-authentication+jwt")
            }
        }
    }
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<Str<'a>>,
    #[serde(borrow, default)]
    typ: Option<Str<'a>>,
    #[serde(borrow, default)]
    kid: Option<Str<'a>>,
    /// Extensions the signer requires us to understand (RFC 7515 §4.1.11); we understand
    /// none, so any `crit` is refused — this also refuses unencoded payloads (RFC 7797).
    #[serde(default, deserialize_with = "b64::present")]
    crit: bool,
}

/// The three parts of a compact JWS.
pub(crate) struct Parts<'t> {
    pub header: &'t str,
    pub payload: &'t str,
    /// `header '.' payload`: what the signature covers.
    pub signing_input: &'t str,
    pub signature: &'t str,
}

/// Splits a compact JWS into its parts. Five parts would be a JWE, which is refused.
pub(crate) fn split(token: &str) -> Result<Parts<'_>> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::Malformed("token too long"));
    }
    let mut dots = token.match_indices('.').map(|(i, _)| i);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(Error::Malformed("not a compact jws of three parts"));
    };
    Ok(Parts {
        header: &token[..first],
        payload: &token[first + 1..second],
        signing_input: &token[..second],
        signature: &token[second + 1..],
    })
}

/// Verifies the header and signature of `token` under `keys` and returns the still
/// encoded payload, for the caller to decode and check the claims of.
pub(crate) fn verify<'t>(
    token: &'t str,
    keys: &KeySet,
    typ: TypRule,
    require_kid: bool,
) -> Result<&'t str> {
    let parts = split(token)?;
    let key = b64::with_decoded::<HEADER_BUF, _>(parts.header, "header is not base64url", |h| {
        let header: Header<'_> =
            b64::from_object(h).ok_or(Error::Malformed("header is not a json object"))?;
        let alg = Alg::from_name(&header.alg.ok_or(Error::Malformed("header has no alg"))?)?;
        if header.crit {
            return Err(Error::Malformed("crit header is not supported"));
        }
        if !typ.accepts(header.typ.as_deref()) {
            return Err(Error::WrongType);
        }
        keys.find(header.kid.as_deref(), alg, require_kid)
    })?;
    let signature =
        b64::decode_array::<SIGNATURE_LEN>(parts.signature).ok_or(Error::BadSignature)?;
    key.verify_sig(parts.signing_input.as_bytes(), &signature)
        .map_err(|_| Error::BadSignature)?;
    Ok(parts.payload)
}

/// Decodes a verified payload and hands its bytes to `f`.
pub(crate) fn with_payload<R>(payload: &str, f: impl FnOnce(&[u8]) -> Result<R>) -> Result<R> {
    b64::with_decoded::<PAYLOAD_BUF, _>(payload, "payload is not base64url", f)
}

#[derive(Serialize)]
struct OutHeader<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

/// Signs `claims` as a compact JWS with header `{alg, typ, kid}`.
pub(crate) fn sign<C: Serialize>(signer: &dyn Signer, typ: &str, claims: &C) -> Result<String> {
    let header = serde_json::to_vec(&OutHeader {
        alg: signer.alg().as_str(),
        typ,
        kid: signer.kid(),
    })
    .map_err(|_| Error::Key("header does not serialize"))?;
    let payload = serde_json::to_vec(claims).map_err(|_| Error::Key("claims do not serialize"))?;
    let mut token =
        String::with_capacity((header.len() + payload.len() + SIGNATURE_LEN) * 4 / 3 + 8);
    b64::encode_into(&header, &mut token);
    token.push('.');
    b64::encode_into(&payload, &mut token);
    let signature = signer.sign(token.as_bytes())?;
    token.push('.');
    b64::encode_into(&signature, &mut token);
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_rules_follow_rfc_7515() {
        let at = TypRule::Exactly("at+jwt");
        for ok in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            assert!(at.accepts(Some(ok)), "{ok}");
        }
        for bad in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("at+jwt "),
            Some("application/"),
            Some("x/at+jwt"),
        ] {
            assert!(!at.accepts(bad), "{bad:?}");
        }
        let client = TypRule::ClientAssertion;
        for ok in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("client-authentication+jwt"),
        ] {
            assert!(client.accepts(ok), "{ok:?}");
        }
        for bad in [
            Some("at+jwt"),
            Some("application/at+jwt"),
            Some("tollgate-assertion+jwt"),
            Some(""),
        ] {
            assert!(!client.accepts(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_three_part_tokens_split() {
        assert!(split("a.b.c").is_ok());
        for bad in ["", "a", "a.b", "a.b.c.d", "a.b.c.d.e"] {
            assert!(matches!(split(bad), Err(Error::Malformed(_))), "{bad}");
        }
        let long = format!("a.b.{}", "c".repeat(MAX_TOKEN_LEN));
        assert_eq!(split(&long).err(), Some(Error::Malformed("token too long")));
        let parts = split("hh.pp.ss").unwrap();
        assert_eq!(
            (
                parts.header,
                parts.payload,
                parts.signing_input,
                parts.signature
            ),
            ("hh", "pp", "hh.pp", "ss")
        );
    }
}
