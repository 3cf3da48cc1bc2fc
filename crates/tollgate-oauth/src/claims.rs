//! Pieces every kind of token shares: the time checks, jti generation, scope syntax and
//! the RFC 8705 certificate thumbprint.

use std::fmt;

use aws_lc_rs::digest;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::b64;
use crate::{Error, Result};

/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::seconds(30);

/// Checks the time claims at `now` (unix seconds) with `leeway` seconds of skew allowed:
/// expired once `exp + leeway <= now`; not yet valid while `nbf` or `iat` is after
/// `now + leeway`. `exp` is required.
pub(crate) fn check_times(
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    now: i64,
    leeway: i64,
) -> Result<()> {
    let exp = exp.ok_or(Error::MissingClaim("exp"))?;
    if exp.saturating_add(leeway) <= now {
        return Err(Error::Expired);
    }
    let future = now.saturating_add(leeway);
    if nbf.is_some_and(|nbf| nbf > future) || iat.is_some_and(|iat| iat > future) {
        return Err(Error::NotYetValid);
    }
    Ok(())
}

/// A NumericDate as a UTC date-time.
pub(crate) fn to_datetime(secs: i64, claim: &'static str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Error::InvalidClaim(claim))
}

/// Leeway in whole seconds, never negative.
pub(crate) fn leeway_secs(leeway: Duration) -> i64 {
    leeway.whole_seconds().max(0)
}

/// A fresh `jti`: a UUIDv7 whose time part is `now` (not the machine's clock) and whose
/// other 74 bits are random, so ids sort by issue time and cannot be guessed.
pub fn new_jti(now: OffsetDateTime) -> Result<Uuid> {
    let mut random = [0u8; 10];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| Error::Key("random generation"))?;
    let millis = u64::try_from(now.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| Error::Key("time before 1970"))?;
    Ok(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

/// Checks a space-separated scope list (RFC 6749 §3.3): tokens of `%x21 / %x23-5B /
/// %x5D-7E` separated by single spaces. The empty string is the empty list.
pub fn check_scope(scope: &str) -> Result<()> {
    if scope.is_empty() {
        return Ok(());
    }
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    };
    if scope.split(' ').all(token_ok) {
        Ok(())
    } else {
        Err(Error::InvalidScope(scope.to_owned()))
    }
}

/// The scopes to grant a client for a token request (RFC 6749 §3.3): every requested
/// scope must be one the client was registered with; without a `scope` parameter the
/// client gets all of its registered scopes. Duplicates are dropped, order is kept.
pub fn grant_scope(requested: Option<&str>, allowed: &[String]) -> Result<String> {
    let Some(requested) = requested else {
        return Ok(allowed.join(" "));
    };
    check_scope(requested)?;
    let mut granted: Vec<&str> = Vec::new();
    for s in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(Error::InvalidScope(s.to_owned()));
        }
        if !granted.contains(&s) {
            granted.push(s);
        }
    }
    Ok(granted.join(" "))
}

/// The SHA-256 thumbprint of a client's X.509 certificate (DER), as RFC 8705 §3.1 binds
/// access tokens to it with `cnf.x5t#S256`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertThumbprint(pub [u8; 32]);

impl CertThumbprint {
    /// The thumbprint of a certificate given as DER.
    pub fn of_der(certificate: &[u8]) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, certificate).as_ref());
        Self(out)
    }

    /// Reads the base64url form (the `x5t#S256` value).
    pub fn from_base64url(text: &str) -> Option<Self> {
        b64::decode_array(text).map(Self)
    }

    /// The base64url form (the `x5t#S256` value).
    pub fn to_base64url(&self) -> String {
        b64::encode(&self.0)
    }
}

impl fmt::Debug for CertThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertThumbprint({})", self.to_base64url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn time_checks_apply_the_leeway_on_every_side() {
        let now = 1_000;
        let check = |exp, nbf, iat, expected: Result<()>| {
            assert_eq!(
                check_times(exp, nbf, iat, now, 30),
                expected,
                "{exp:?} {nbf:?} {iat:?}"
            );
        };
        check(Some(1_001), None, None, Ok(()));
        check(Some(971), None, None, Ok(()));
        check(Some(970), None, None, Err(Error::Expired));
        check(None, None, None, Err(Error::MissingClaim("exp")));
        check(Some(2_000), Some(1_030), Some(1_030), Ok(()));
        check(Some(2_000), Some(1_031), None, Err(Error::NotYetValid));
        check(Some(2_000), None, Some(1_031), Err(Error::NotYetValid));
        check(Some(i64::MAX), Some(i64::MIN), None, Ok(()));
        assert_eq!(
            check_times(Some(1_000), None, None, 1_000, 0),
            Err(Error::Expired)
        );
    }

    #[test]
    fn jti_is_a_v7_uuid_of_now() {
        let now = datetime!(2026-01-01 00:00:00.123 UTC);
        let a = new_jti(now).unwrap();
        let b = new_jti(now).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        assert_eq!((secs as i64, nanos), (now.unix_timestamp(), 123_000_000));
    }

    #[test]
    fn scopes_follow_rfc_6749_syntax() {
        for ok in ["", "a", "read write", "data:read x/y!", "~"] {
            check_scope(ok).unwrap();
        }
        for bad in [" ", "a  b", " a", "a ", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(check_scope(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn granted_scopes_are_a_subset_of_the_registered_ones() {
        let allowed = vec!["read".to_owned(), "write".to_owned()];
        assert_eq!(grant_scope(None, &allowed).unwrap(), "read write");
        assert_eq!(grant_scope(Some("write"), &allowed).unwrap(), "write");
        assert_eq!(
            grant_scope(Some("write read write"), &allowed).unwrap(),
            "write read"
        );
        assert_eq!(grant_scope(Some(""), &allowed).unwrap(), "");
        assert_eq!(
            grant_scope(Some("read admin"), &allowed),
            Err(Error::InvalidScope("admin".into()))
        );
        assert!(grant_scope(Some("read  write"), &allowed).is_err());
        assert_eq!(grant_scope(None, &[]).unwrap(), "");
    }

    #[test]
    fn thumbprints_round_trip() {
        let t = CertThumbprint::of_der(b"not really a certificate");
        assert_eq!(CertThumbprint::from_base64url(&t.to_base64url()), Some(t));
        assert_eq!(t.to_base64url().len(), 43);
        assert_eq!(CertThumbprint::from_base64url("AAAA"), None);
    }
}
