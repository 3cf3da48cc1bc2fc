//! JWKS: rendering, strict parsing, round trips, and the RFC 8037 test vectors.

use serde_json::{Value, json};
use tollgate_oauth::{Alg, Error, Jwk, Jwks, KeySet, PublicKey, Signer, SigningKey};

use crate::*;

#[test]
fn jwks_round_trips_through_json() {
    let ed = key(Alg::EdDSA, "ed");
    let es = key(Alg::Es256, "es");
    let jwks = Jwks {
        keys: vec![ed.public_jwk(), es.public_jwk()],
    };
    let json = jwks.to_json();
    let keys = json["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let PublicKey::Ed25519(x) = ed.public_key() else {
        unreachable!()
    };
    assert_eq!(
        keys[0],
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x), "kid": "ed", "alg": "EdDSA", "use": "sig"})
    );
    let PublicKey::P256 { x, y } = es.public_key() else {
        unreachable!()
    };
    assert_eq!(
        keys[1],
        json!({"kty": "EC", "crv": "P-256", "x": b64(&x), "y": b64(&y), "kid": "es", "alg": "ES256", "use": "sig"})
    );
    assert_eq!(Jwks::parse(&json).unwrap(), jwks);
    assert_eq!(Jwks::parse_str(&json.to_string()).unwrap(), jwks);
    let set = KeySet::new(&jwks).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.jwks(), jwks);
    // A verifier built from the parsed document accepts tokens of both keys.
    let verifier = tollgate_oauth::AccessTokenVerifier::new(
        KeySet::new(&Jwks::parse(&json).unwrap()).unwrap(),
        ISS,
        AUD,
    );
    for k in [&ed, &es] {
        verifier
            .verify(&claims().issue(k, ISS, AUD).unwrap(), NOW)
            .unwrap();
    }
}

#[test]
fn rfc_8037_vectors() {
    // RFC 8037 Appendix A.1–A.4: the Ed25519 key, its thumbprint, and the signature of
    // the example JWS (Ed25519 is deterministic). Cross-checked with pyca/cryptography.
    let seed = unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    let pkcs8 = [&hex_bytes("302e020100300506032b657004220420")[..], &seed].concat();
    let key = SigningKey::from_pkcs8(Alg::EdDSA, "rfc8037", &pkcs8).unwrap();
    let jwk = Jwk {
        kid: None,
        key: key.public_key(),
    };
    assert_eq!(
        jwk.key,
        PublicKey::Ed25519(
            unb64("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
                .try_into()
                .unwrap()
        )
    );
    assert_eq!(
        jwk.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    let sig = key
        .sign(b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc")
        .unwrap();
    assert_eq!(
        b64(&sig),
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    // The EC key of RFC 7517 Appendix A.1; its RFC 7638 thumbprint computed with Python's
    // json and hashlib.
    let es = Jwks::parse(&json!({"keys": [{"kty": "EC", "crv": "P-256",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}))
    .unwrap();
    assert_eq!(
        es.keys[0].thumbprint(),
        "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
    );
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn jwks_parsing_is_strict_and_names_the_key() {
    let ed = key(Alg::EdDSA, "ed").public_jwk();
    let good = serde_json::to_value(&ed).unwrap();
    let es = serde_json::to_value(key(Alg::Es256, "es").public_jwk()).unwrap();
    let with = |base: &Value, edit: Value| {
        let mut v = base.clone();
        for (k, x) in edit.as_object().unwrap() {
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        json!({"keys": [good.clone(), v]})
    };
    let at1 = |reason| Err(Error::InvalidJwk { index: 1, reason });
    let cases: Vec<(Value, Result<(), Error>)> = vec![
        (json!({"keys": [good.clone()]}), Ok(())),
        (
            with(&good, json!({"kid": null, "alg": null, "use": null})),
            Ok(()),
        ),
        (
            with(&good, json!({"key_ops": ["verify"], "kid": "other"})),
            Ok(()),
        ),
        (with(&es, json!({"alg": null})), Ok(())),
        (with(&good, json!({"alg": "Ed25519", "kid": "b"})), Ok(())),
        (
            json!([]),
            Err(Error::InvalidJwks("not an object with a keys array")),
        ),
        (
            json!({"keys": {}}),
            Err(Error::InvalidJwks("not an object with a keys array")),
        ),
        (json!({"keys": []}), Err(Error::InvalidJwks("no keys"))),
        (
            json!({"keys": [good.clone(), good.clone()]}),
            Err(Error::InvalidJwks("two keys share a kid")),
        ),
        (
            json!({"keys": [good.clone(), 1]}),
            at1("not a jwk object with string members"),
        ),
        (
            json!({"keys": [good.clone(), ["OKP", "Ed25519", good["x"].clone()]]}),
            at1("not a jwk object with string members"),
        ),
        (
            json!([[good.clone()]]),
            Err(Error::InvalidJwks("not an object with a keys array")),
        ),
        (
            with(&good, json!({"kid": 5})),
            at1("not a jwk object with string members"),
        ),
        (
            with(&good, json!({"d": "c2VjcmV0"})),
            at1("contains a private key (d); register the public key only"),
        ),
        (
            with(&es, json!({"d": "c2VjcmV0"})),
            at1("contains a private key (d); register the public key only"),
        ),
        (with(&good, json!({"use": "enc"})), at1("use is not sig")),
        (
            with(&good, json!({"key_ops": ["sign"]})),
            at1("key_ops does not include verify"),
        ),
        (
            with(&good, json!({"alg": "ES256"})),
            at1("alg does not match the key type (EdDSA for Ed25519, ES256 for P-256)"),
        ),
        (
            with(&good, json!({"alg": "HS256"})),
            at1("alg does not match the key type (EdDSA for Ed25519, ES256 for P-256)"),
        ),
        (
            with(&es, json!({"alg": "EdDSA"})),
            at1("alg does not match the key type (EdDSA for Ed25519, ES256 for P-256)"),
        ),
        (
            with(&good, json!({"crv": "X25519"})),
            at1("unsupported OKP curve; use Ed25519"),
        ),
        (
            with(&good, json!({"crv": "Ed448"})),
            at1("unsupported OKP curve; use Ed25519"),
        ),
        (
            with(&es, json!({"crv": "P-384"})),
            at1("unsupported EC curve; use P-256"),
        ),
        (
            with(&good, json!({"x": null})),
            at1("x is not 32 bytes of base64url"),
        ),
        (
            with(&good, json!({"x": "AAAA"})),
            at1("x is not 32 bytes of base64url"),
        ),
        (
            with(
                &good,
                json!({"x": format!("{}=", good["x"].as_str().unwrap())}),
            ),
            at1("x is not 32 bytes of base64url"),
        ),
        (
            with(&good, json!({"y": good["x"].clone()})),
            at1("an OKP key has no y"),
        ),
        (
            with(&es, json!({"y": null})),
            at1("y is not 32 bytes of base64url"),
        ),
        // A point that is not on the curve (invalid-curve attacks).
        (
            with(&es, json!({"y": b64(&[7u8; 32])})),
            at1("not a valid public key"),
        ),
        (
            json!({"keys": [good.clone(), {"kty": "oct", "k": "c2VjcmV0"}]}),
            at1("symmetric keys are not accepted"),
        ),
        (
            json!({"keys": [good.clone(), {"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
            at1("RSA keys are not supported; use Ed25519 or P-256"),
        ),
        (
            json!({"keys": [good.clone(), {"kty": "XYZ"}]}),
            at1("unsupported kty"),
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(Jwks::parse(&doc).map(|_| ()), expected, "{doc}");
    }
    assert_eq!(
        Jwks::parse_str("{").map(|_| ()),
        Err(Error::InvalidJwks("not json"))
    );
    let e = Jwks::parse(&with(&good, json!({"use": "enc"}))).unwrap_err();
    assert_eq!(e.to_string(), "key 1: use is not sig");
}

#[test]
fn tokens_without_kid_need_a_single_candidate_key() {
    // Client assertions may omit kid; the client's only key of that alg is then used.
    let a = key(Alg::Es256, "a");
    let set = |keys: Vec<Jwk>| KeySet::new(&Jwks { keys }).unwrap();
    let anonymous = |k: &SigningKey| Jwk {
        kid: None,
        key: k.public_key(),
    };
    let verifier =
        tollgate_oauth::ClientAssertionVerifier::new(ISS, "https://market.example/oauth/token");
    let client = "client-7";
    let payload = json!({"iss": client, "sub": client, "aud": ISS, "exp": NOW.unix_timestamp() + 60, "jti": "j"});
    let token = forge(&a, &json!({"alg": "ES256"}), &payload);
    let run = |keys: &KeySet| {
        verifier
            .verify(
                &token,
                None,
                NOW,
                |_| Some(keys),
                &mut |_: &str, _: &str, _| true,
            )
            .map(|_| ())
    };
    assert_eq!(run(&set(vec![anonymous(&a)])), Ok(()));
    assert_eq!(
        run(&set(vec![a.public_jwk()])),
        Ok(()),
        "a kid on the key does not matter"
    );
    let b = key(Alg::Es256, "b");
    assert_eq!(
        run(&set(vec![a.public_jwk(), b.public_jwk()])),
        Err(Error::UnknownKey),
        "ambiguous"
    );
    let ed = key(Alg::EdDSA, "ed");
    assert_eq!(
        run(&set(vec![a.public_jwk(), ed.public_jwk()])),
        Ok(()),
        "one key per alg"
    );
    assert_eq!(run(&set(vec![ed.public_jwk()])), Err(Error::UnknownKey));
    assert_eq!(run(&set(vec![])), Err(Error::UnknownKey));
}
