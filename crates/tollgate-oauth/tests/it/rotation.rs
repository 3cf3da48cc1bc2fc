//! Rotation on a real keyring: old tokens verify until they expire, new tokens use the new
//! key, pending keys are trusted before they sign, compromised keys go at once.

use time::Duration;
use tollgate_keyring::{KeyPurpose, KeyState, Keyring, MasterKey};
use tollgate_oauth::rotation::{check_overlap, min_overlap, published_jwks, verification_key_set};
use tollgate_oauth::{AccessTokenVerifier, DEFAULT_LEEWAY, Error, KeyringSigner, Signer};

use crate::*;

/// The longest access-token lifetime a client can be given (`MAX_TOKEN_LIFETIME` of the
/// control plane's client model).
const MAX_TOKEN_LIFETIME: Duration = Duration::hours(1);

fn keyring() -> Keyring {
    let master = MasterKey::generate().unwrap();
    let mut keyring = Keyring::open(Vec::new(), &master).unwrap();
    keyring.ensure_all(NOW).unwrap();
    keyring
}

fn verifier_at(keyring: &Keyring, at: time::OffsetDateTime) -> AccessTokenVerifier {
    AccessTokenVerifier::new(
        verification_key_set(keyring, KeyPurpose::TokenSigning, at).unwrap(),
        ISS,
        AUD,
    )
}

fn issue(keyring: &Keyring, at: time::OffsetDateTime) -> (String, AccessClaims) {
    let signer = KeyringSigner::new(keyring, KeyPurpose::TokenSigning).unwrap();
    let mut c = claims();
    c.issued_at = at;
    c.expires_at = at + MAX_TOKEN_LIFETIME;
    (c.issue(&signer, ISS, AUD).unwrap(), c)
}

#[test]
fn old_tokens_verify_until_they_expire_while_new_ones_use_the_new_key() {
    let mut keyring = keyring();
    let old_key = keyring.active(KeyPurpose::TokenSigning).unwrap().id;
    let (old_token, old_claims) = issue(&keyring, NOW);
    assert_eq!(decode(&old_token).0["kid"], old_key.to_string());

    let rotated_at = NOW + Duration::minutes(10);
    let rotation = keyring
        .rotate(KeyPurpose::TokenSigning, rotated_at, None)
        .unwrap();
    let new_key = rotation.new.id;
    let (new_token, _) = issue(&keyring, rotated_at);
    assert_eq!(decode(&new_token).0["kid"], new_key.to_string());

    // The gateway's snapshot after the rotation holds both keys.
    let verifier = verifier_at(&keyring, rotated_at);
    assert_eq!(verifier.keys().len(), 2);
    let last_second = old_claims.expires_at - Duration::SECOND;
    assert_eq!(
        verifier.verify(&old_token, last_second).unwrap(),
        old_claims
    );
    verifier.verify(&new_token, last_second).unwrap();
    // Then the old token expires on its own, long before its key retires.
    assert_eq!(
        verifier
            .verify(&old_token, old_claims.expires_at + DEFAULT_LEEWAY)
            .err(),
        Some(Error::Expired)
    );

    // At retire_at the old key leaves the published set and the snapshot.
    let retire_at = rotated_at + KeyPurpose::TokenSigning.default_overlap().unwrap();
    assert_eq!(keyring.apply_time(retire_at).len(), 1);
    let jwks = published_jwks(&keyring, KeyPurpose::TokenSigning, retire_at).unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        jwks.keys[0].kid.as_deref(),
        Some(new_key.to_string().as_str())
    );
    let verifier = verifier_at(&keyring, retire_at);
    assert_eq!(
        verifier.verify(&old_token, NOW).err(),
        Some(Error::UnknownKey)
    );
    verifier.verify(&new_token, rotated_at).unwrap();
}

#[test]
fn pending_keys_are_trusted_by_snapshots_taken_before_they_activate() {
    let mut keyring = keyring();
    let activates_at = NOW + Duration::days(1);
    let pending = keyring
        .schedule(KeyPurpose::TokenSigning, NOW, activates_at)
        .unwrap();
    // Published (and in the gateway's snapshot) a day before it signs.
    let jwks = published_jwks(&keyring, KeyPurpose::TokenSigning, NOW)
        .unwrap()
        .to_json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == pending.id.to_string())
    );
    let stale = verifier_at(&keyring, NOW);

    keyring.apply_time(activates_at);
    assert_eq!(keyring.get(pending.id).unwrap().state, KeyState::Active);
    let (token, claims) = issue(&keyring, activates_at);
    assert_eq!(decode(&token).0["kid"], pending.id.to_string());
    assert_eq!(stale.verify(&token, activates_at).unwrap(), claims);
}

#[test]
fn a_compromised_key_rotated_without_overlap_stops_verifying_at_once() {
    let mut keyring = keyring();
    let (token, _) = issue(&keyring, NOW);
    keyring
        .rotate(KeyPurpose::TokenSigning, NOW, Some(Duration::ZERO))
        .unwrap();
    assert_eq!(
        verifier_at(&keyring, NOW).verify(&token, NOW).err(),
        Some(Error::UnknownKey)
    );
}

#[test]
fn default_overlaps_outlast_every_token() {
    for purpose in [KeyPurpose::TokenSigning, KeyPurpose::GatewayAssertion] {
        check_overlap(
            purpose.default_overlap(),
            MAX_TOKEN_LIFETIME,
            DEFAULT_LEEWAY,
        )
        .unwrap();
    }
    assert_eq!(
        min_overlap(Duration::hours(1), Duration::seconds(30)),
        Duration::seconds(3630)
    );
    assert_eq!(
        check_overlap(Some(Duration::hours(1)), MAX_TOKEN_LIFETIME, DEFAULT_LEEWAY),
        Err(Error::OverlapTooShort {
            overlap: Duration::hours(1),
            needed: Duration::seconds(3630)
        })
    );
    check_overlap(None, MAX_TOKEN_LIFETIME, DEFAULT_LEEWAY).unwrap();
}

#[test]
fn keyring_signers_sign_with_the_active_key_of_their_purpose() {
    let keyring = keyring();
    let signer = KeyringSigner::new(&keyring, KeyPurpose::GatewayAssertion).unwrap();
    let active = keyring.active(KeyPurpose::GatewayAssertion).unwrap();
    assert_eq!(signer.kid(), active.id.to_string());
    assert!(
        format!("{signer:?}").contains("gateway_assertion")
            || format!("{signer:?}").contains("GatewayAssertion")
    );
    // A token signed with the gateway-assertion key is no access token.
    let token = claims().issue(&signer, ISS, AUD).unwrap();
    assert_eq!(
        verifier_at(&keyring, NOW).verify(&token, NOW).err(),
        Some(Error::UnknownKey)
    );

    assert!(matches!(
        KeyringSigner::new(&keyring, KeyPurpose::WebhookSecret),
        Err(Error::Key(_))
    ));
    let empty = Keyring::open(Vec::new(), &MasterKey::generate().unwrap()).unwrap();
    assert!(matches!(
        KeyringSigner::new(&empty, KeyPurpose::TokenSigning),
        Err(Error::Keyring(_))
    ));
    // Only Ed25519 records become JWKs.
    let records: Vec<_> = keyring
        .records()
        .filter(|r| r.purpose == KeyPurpose::WebhookSecret)
        .collect();
    assert!(matches!(
        tollgate_oauth::Jwks::from_records(records),
        Err(Error::InvalidJwk { index: 0, .. })
    ));
}
