//! Gateway assertions, from the upstream's side: verify with the published JWKS only.

use serde_json::json;
use time::Duration;
use tollgate_core::apikey::KeyMode;
use tollgate_core::{AppId, OAuthClientId, OrgId, PlanId, SubscriptionId};
use tollgate_keyring::{KeyPurpose, Keyring, MasterKey};
use tollgate_oauth::rotation::published_jwks;
use tollgate_oauth::{
    AuthMethod, DEFAULT_ASSERTION_LIFETIME, Error, GATEWAY_ASSERTION_TYP, GatewayAssertion,
    GatewayAssertionVerifier, Jwks, KeySet, KeyringSigner,
};

use crate::*;

const UPSTREAM: &str = "https://api.provider-a.example";

fn assertion() -> GatewayAssertion {
    let mut a = GatewayAssertion::new(
        AppId::new(),
        OrgId::new(),
        PlanId::new(),
        SubscriptionId::new(),
        KeyMode::Test,
        "read",
        AuthMethod::OAuth,
        NOW,
    )
    .unwrap();
    a.client_id = Some(OAuthClientId::new());
    a
}

#[test]
fn upstreams_verify_assertions_with_the_published_jwks() {
    let mut keyring = Keyring::open(Vec::new(), &MasterKey::generate().unwrap()).unwrap();
    keyring.ensure_all(NOW).unwrap();
    // What the marketplace serves, as text; what the upstream fetched and parsed.
    let served = published_jwks(&keyring, KeyPurpose::GatewayAssertion, NOW)
        .unwrap()
        .to_json()
        .to_string();
    let upstream = GatewayAssertionVerifier::new(
        KeySet::new(&Jwks::parse_str(&served).unwrap()).unwrap(),
        ISS,
        UPSTREAM,
    );

    let signer = KeyringSigner::new(&keyring, KeyPurpose::GatewayAssertion).unwrap();
    let a = assertion();
    let token = a.issue(&signer, ISS, UPSTREAM).unwrap();
    let (header, payload) = decode(&token);
    assert_eq!(header["typ"], GATEWAY_ASSERTION_TYP);
    assert_eq!(
        payload,
        json!({
            "iss": ISS, "aud": UPSTREAM, "sub": a.app, "exp": NOW.unix_timestamp() + 60,
            "iat": NOW.unix_timestamp(), "jti": a.jti, "scope": "read", "tg_org": a.org,
            "tg_plan": a.plan, "tg_subscription": a.subscription, "tg_mode": "test",
            "tg_auth": "oauth", "client_id": a.client_id.unwrap(),
        })
    );
    assert_eq!(upstream.verify(&token, NOW).unwrap(), a);
    assert_eq!(a.expires_at - a.issued_at, DEFAULT_ASSERTION_LIFETIME);

    // Another provider's upstream refuses it: the audience is per upstream.
    let other = GatewayAssertionVerifier::new(
        KeySet::new(&Jwks::parse_str(&served).unwrap()).unwrap(),
        ISS,
        "https://api.provider-b.example",
    );
    assert_eq!(other.verify(&token, NOW).err(), Some(Error::WrongAudience));
    // Short-lived.
    assert_eq!(
        upstream.verify(&token, NOW + Duration::seconds(90)).err(),
        Some(Error::Expired)
    );
    assert!(
        upstream
            .with_leeway(Duration::seconds(60))
            .verify(&token, NOW + Duration::seconds(90))
            .is_ok()
    );

    // Access tokens and assertions never pass as each other, even under one key.
    let k = key(tollgate_oauth::Alg::EdDSA, "k");
    let as_upstream = GatewayAssertionVerifier::new(key_set(&[&k]), ISS, UPSTREAM);
    let access = claims().issue(&k, ISS, UPSTREAM).unwrap();
    assert_eq!(
        as_upstream.verify(&access, NOW).err(),
        Some(Error::WrongType)
    );
    let as_gateway = tollgate_oauth::AccessTokenVerifier::new(key_set(&[&k]), ISS, UPSTREAM);
    let token = assertion().issue(&k, ISS, UPSTREAM).unwrap();
    assert_eq!(as_gateway.verify(&token, NOW).err(), Some(Error::WrongType));
}

#[test]
fn assertion_claims_are_all_checked() {
    let k = key(tollgate_oauth::Alg::Es256, "k");
    let upstream = GatewayAssertionVerifier::new(key_set(&[&k]), ISS, UPSTREAM);
    let mut a = assertion();
    a.client_id = None;
    a.auth_method = AuthMethod::ApiKey;
    a.scope = String::new();
    let token = a.issue(&k, ISS, UPSTREAM).unwrap();
    assert_eq!(upstream.verify(&token, NOW).unwrap(), a);
    let (_, payload) = decode(&token);
    let h = header(&k, GATEWAY_ASSERTION_TYP);
    let cases = [
        ("tg_auth", json!(null), Error::MissingClaim("tg_auth")),
        ("tg_auth", json!("password"), Error::InvalidClaim("tg_auth")),
        ("tg_plan", json!(null), Error::MissingClaim("tg_plan")),
        (
            "tg_subscription",
            json!("x"),
            Error::InvalidClaim("tg_subscription"),
        ),
        ("sub", json!(null), Error::MissingClaim("sub")),
        ("client_id", json!("x"), Error::InvalidClaim("client_id")),
        ("iss", json!("https://evil.example"), Error::WrongIssuer),
        ("nbf", json!(NOW.unix_timestamp() + 600), Error::NotYetValid),
    ];
    for (claim, value, expected) in cases {
        let mut p = payload.clone();
        if value.is_null() {
            p.as_object_mut().unwrap().remove(claim);
        } else {
            p[claim] = value;
        }
        assert_eq!(
            upstream.verify(&forge(&k, &h, &p), NOW).err(),
            Some(expected),
            "{claim}"
        );
    }
    for m in [
        AuthMethod::ApiKey,
        AuthMethod::OAuth,
        AuthMethod::Mtls,
        AuthMethod::Signature,
    ] {
        let mut a = a.clone();
        a.auth_method = m;
        assert_eq!(
            upstream
                .verify(&a.issue(&k, ISS, UPSTREAM).unwrap(), NOW)
                .unwrap()
                .auth_method,
            m
        );
    }
}
