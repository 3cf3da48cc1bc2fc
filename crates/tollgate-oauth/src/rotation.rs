//! Key rotation with overlap, on the keyring's own key states.
//!
//! The keyring already has the two purposes and the four states this needs, so nothing is
//! added to it: [`KeyPurpose::TokenSigning`] signs access tokens and
//! [`KeyPurpose::GatewayAssertion`] signs gateway assertions, both Ed25519 with a 7-day
//! default overlap. The states map as follows.
//!
//! | keyring state | signs | in the published JWKS | in the verifier's [`KeySet`] |
//! |---|---|---|---|
//! | `pending` | no | yes | yes |
//! | `active` | yes — [`KeyringSigner`] | yes | yes |
//! | `retiring`, before `retire_at` | no | yes | yes |
//! | `retiring`, at or after `retire_at` | no | no | no |
//! | `retired` | no | no | no |
//!
//! So the published set and the verification set are the same:
//! [`Keyring::verification_keys`] of the purpose at `now`, rendered by
//! [`published_jwks`] and parsed by [`verification_key_set`].
//!
//! **Pending keys verify too.** The keyring itself refuses them (a key that has signed
//! nothing has nothing to verify), but the gateway and upstreams verify from a copy of the
//! key set taken earlier — a snapshot, a cached JWKS. The point of publishing a key before
//! it signs is that every such copy already holds it when the first token signed by it
//! arrives; that only works if the copy treats it as a verification key. Schedule keys
//! with [`Keyring::schedule`] at least one JWKS cache lifetime (the `max-age` the JWKS is
//! served with) before they activate; a plain [`Keyring::rotate`] activates at once, so
//! the gateway's snapshot must be refreshed before the rotation returns (it is: rotation
//! is a mutation), and upstreams may refuse assertions until their JWKS cache refreshes.
//!
//! **Retiring keys verify until every token they signed has expired.** A token signed an
//! instant before rotation lives until `rotated_at + lifetime`, and verifiers accept it
//! for another `leeway`; so the overlap must be at least [`min_overlap`]`(lifetime,
//! leeway)`, which [`check_overlap`] enforces. The keyring's 7 days exceed the longest
//! token lifetime (an hour) by far. After a compromise, rotate with a zero overlap: the
//! key leaves the set at once and its tokens fail with [`Error::UnknownKey`].

use time::{Duration, OffsetDateTime};
use tollgate_keyring::{KeyPurpose, Keyring};

#[cfg(doc)]
use crate::{Error, KeyringSigner};
use crate::{Jwks, KeySet, Result};

/// The JWKS to publish for `purpose` at `now`: pending, active, and retiring keys before
/// their `retire_at`, oldest first, `kid` = key id.
pub fn published_jwks(keyring: &Keyring, purpose: KeyPurpose, now: OffsetDateTime) -> Result<Jwks> {
    Jwks::from_records(keyring.verification_keys(purpose, now))
}

/// The keys a verifier of `purpose` tokens accepts at `now`: the same keys as
/// [`published_jwks`], parsed.
pub fn verification_key_set(
    keyring: &Keyring,
    purpose: KeyPurpose,
    now: OffsetDateTime,
) -> Result<KeySet> {
    KeySet::new(&published_jwks(keyring, purpose, now)?)
}

/// The shortest safe overlap for tokens that live up to `max_token_lifetime` and are
/// verified with `leeway`.
pub fn min_overlap(max_token_lifetime: Duration, leeway: Duration) -> Duration {
    max_token_lifetime + leeway
}

/// Checks a rotation overlap (as [`KeyPurpose::default_overlap`] gives it; `None` =
/// never retires) against [`min_overlap`]. A zero overlap is the deliberate answer to a
/// compromised key and is not checked here.
pub fn check_overlap(
    overlap: Option<Duration>,
    max_token_lifetime: Duration,
    leeway: Duration,
) -> Result<()> {
    let needed = min_overlap(max_token_lifetime, leeway);
    match overlap {
        Some(overlap) if overlap < needed => Err(crate::Error::OverlapTooShort { overlap, needed }),
        _ => Ok(()),
    }
}
