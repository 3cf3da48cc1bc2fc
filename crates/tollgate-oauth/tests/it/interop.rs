//! Interop with an independent implementation: tokens signed by PyJWT (committed test
//! vectors, `tests/vectors/pyjwt.json`, made by `gen_pyjwt.py`) verify here, so the test
//! needs no Python. The other direction — PyJWT verifying our tokens and JWKS — is
//! `export_for_pyjwt` below with `tests/vectors/check_ours.py`, run by hand.

use serde_json::Value;
use time::OffsetDateTime;
use tollgate_core::apikey::KeyMode;
use tollgate_oauth::{
    AccessTokenVerifier, CertThumbprint, ClientAssertionVerifier, Error, Jwks, KeySet,
};

use crate::*;

fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/pyjwt.json")).unwrap()
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap()
}

#[test]
fn pyjwt_access_tokens_verify() {
    let v = vectors();
    let keys = KeySet::new(&Jwks::parse(&v["jwks"]).unwrap()).unwrap();
    let verifier = AccessTokenVerifier::new(keys, text(&v, "iss"), text(&v, "aud"));
    let iat = OffsetDateTime::from_unix_timestamp(v["iat"].as_i64().unwrap()).unwrap();
    for name in ["access_eddsa", "access_es256"] {
        let c = verifier.verify(text(&v, name), iat).unwrap();
        assert_eq!(c.client_id.to_string(), text(&v, "client_id"), "{name}");
        assert_eq!(c.app.to_string(), text(&v, "app"));
        assert_eq!(c.org.to_string(), text(&v, "org"));
        assert_eq!((c.mode, c.scope.as_str()), (KeyMode::Live, "read write"));
        assert_eq!(c.issued_at, iat);
        assert_eq!(c.expires_at, iat + time::Duration::seconds(300));
        assert_eq!(
            c.cert_thumbprint,
            (name == "access_es256").then(|| {
                CertThumbprint::from_base64url("n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg")
                    .unwrap()
            })
        );
        // And the usual rejections hold for them too.
        assert_eq!(
            verifier
                .verify(text(&v, name), iat + time::Duration::hours(1))
                .err(),
            Some(Error::Expired)
        );
        let mut tampered = text(&v, name).to_owned();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verifier.verify(&tampered, iat).is_err());
    }
}

#[test]
fn pyjwt_client_assertion_verifies() {
    let v = vectors();
    let keys = KeySet::new(&Jwks::parse(&v["client_jwks"]).unwrap()).unwrap();
    let verifier = ClientAssertionVerifier::new(text(&v, "iss"), text(&v, "token_endpoint"));
    let iat = OffsetDateTime::from_unix_timestamp(v["iat"].as_i64().unwrap()).unwrap();
    let client = text(&v, "client_id");
    let mut seen = Vec::new();
    let verified = verifier
        .verify(
            text(&v, "client_assertion"),
            Some(client),
            iat,
            |id| (id == client).then_some(&keys),
            &mut |c: &str, j: &str, _| {
                seen.push((c.to_owned(), j.to_owned()));
                true
            },
        )
        .unwrap();
    assert_eq!(verified.client_id, client);
    assert_eq!(seen, [(client.to_owned(), verified.jti.clone())]);
}

/// Writes our JWKS and tokens for `check_ours.py`:
/// `TOLLGATE_OAUTH_EXPORT=/tmp/ours.json cargo test -p tollgate-oauth --test it -- --ignored export_for_pyjwt`
/// then `python check_ours.py /tmp/ours.json`.
#[test]
#[ignore = "writes a file for a manual PyJWT check"]
fn export_for_pyjwt() {
    let Ok(path) = std::env::var("TOLLGATE_OAUTH_EXPORT") else {
        eprintln!("TOLLGATE_OAUTH_EXPORT not set; nothing written");
        return;
    };
    let ed = key(tollgate_oauth::Alg::EdDSA, "ours-ed25519");
    let es = key(tollgate_oauth::Alg::Es256, "ours-p256");
    let c = claims();
    let doc = serde_json::json!({
        "iss": ISS, "aud": AUD, "now": NOW.unix_timestamp(),
        "jwks": Jwks { keys: vec![ed.public_jwk(), es.public_jwk()] }.to_json(),
        "tokens": [c.issue(&ed, ISS, AUD).unwrap(), c.issue(&es, ISS, AUD).unwrap()],
        "client_id": c.client_id,
    });
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}
