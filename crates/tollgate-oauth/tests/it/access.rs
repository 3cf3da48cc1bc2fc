//! Access tokens: issue, verify, and every rejection.

use aws_lc_rs::hmac;
use serde_json::{Value, json};
use time::Duration;
use tollgate_core::apikey::KeyMode;
use tollgate_oauth::{
    ACCESS_TOKEN_TYP, AccessTokenVerifier, Alg, CertThumbprint, Error, MAX_TOKEN_LEN, PublicKey,
    Signer, issue_access_token,
};

use crate::*;

/// One verifier and its two keys (EdDSA `ed`, ES256 `es`), and the payload of a good token.
struct World {
    ed: SigningKey,
    es: SigningKey,
    verifier: AccessTokenVerifier,
    claims: AccessClaims,
    payload: Value,
}

fn world() -> World {
    let ed = key(Alg::EdDSA, "ed");
    let es = key(Alg::Es256, "es");
    let verifier = verifier(&[&ed, &es]);
    let claims = claims();
    let (_, payload) = decode(&claims.issue(&ed, ISS, AUD).unwrap());
    World {
        ed,
        es,
        verifier,
        claims,
        payload,
    }
}

/// Verifies `token` at `NOW` and compares the outcome.
fn check(w: &World, token: &str, expected: Result<(), Error>) {
    let got = w.verifier.verify(token, NOW).map(|c| {
        assert_eq!(c, w.claims);
    });
    assert_eq!(got, expected, "{token}");
}

/// `payload` with `edit` applied to it (`null` removes a member).
fn edited(payload: &Value, edit: Value) -> Value {
    let mut p = payload.clone();
    for (k, v) in edit.as_object().unwrap() {
        if v.is_null() {
            p.as_object_mut().unwrap().remove(k);
        } else {
            p[k] = v.clone();
        }
    }
    p
}

#[test]
fn issued_tokens_verify_with_both_algorithms() {
    let w = world();
    for key in [&w.ed, &w.es] {
        let token = w.claims.issue(key, ISS, AUD).unwrap();
        let (header, payload) = decode(&token);
        assert_eq!(
            header,
            json!({"alg": key.alg().as_str(), "typ": "at+jwt", "kid": key.kid()})
        );
        let c = &w.claims;
        assert_eq!(
            payload,
            json!({
                "iss": ISS, "sub": c.client_id, "aud": AUD,
                "exp": c.expires_at.unix_timestamp(), "iat": c.issued_at.unix_timestamp(),
                "jti": c.jti, "client_id": c.client_id, "scope": "read write",
                "tg_app": c.app, "tg_org": c.org, "tg_mode": "live",
            })
        );
        check(&w, &token, Ok(()));
    }
    assert!(w.claims.has_scope("write") && !w.claims.has_scope("wri"));
    assert_eq!(w.claims.scopes().collect::<Vec<_>>(), ["read", "write"]);
}

#[test]
fn optional_claims_round_trip() {
    let w = world();
    let mut claims = w.claims.clone();
    claims.not_before = Some(NOW - Duration::seconds(5));
    claims.cert_thumbprint = Some(CertThumbprint::of_der(b"cert"));
    claims.scope = String::new();
    claims.mode = KeyMode::Test;
    let token = issue_access_token(&w.es, ISS, AUD, &claims).unwrap();
    let (_, payload) = decode(&token);
    assert_eq!(
        payload["cnf"],
        json!({"x5t#S256": CertThumbprint::of_der(b"cert").to_base64url()})
    );
    assert_eq!(payload.get("scope"), None, "an empty scope is left out");
    assert_eq!(payload["tg_mode"], "test");
    assert_eq!(w.verifier.verify(&token, NOW).unwrap(), claims);

    // RFC 8705: the bound certificate, and only it, goes with the token.
    let bound = CertThumbprint::of_der(b"cert");
    claims.check_certificate(Some(&bound)).unwrap();
    for presented in [None, Some(&CertThumbprint::of_der(b"other"))] {
        assert_eq!(
            claims.check_certificate(presented),
            Err(Error::CertificateMismatch)
        );
    }
    w.claims.check_certificate(None).unwrap();

    let mut bad = w.claims.clone();
    bad.scope = "a  b".into();
    assert!(matches!(
        bad.issue(&w.ed, ISS, AUD),
        Err(Error::InvalidScope(_))
    ));
}

#[test]
fn alg_none_and_hmac_are_refused_before_any_key_is_used() {
    let w = world();
    let payload = b64(&serde_json::to_vec(&w.payload).unwrap());
    let unsigned = |alg: &str| {
        let h = json!({"alg": alg, "typ": "at+jwt", "kid": "ed"});
        format!("{}.{payload}.", b64(&serde_json::to_vec(&h).unwrap()))
    };
    for alg in [
        "none", "None", "NONE", "", "eddsa", "RS256", "PS256", "ES384", "ES256K", "Ed448", "HS256",
    ] {
        check(&w, &unsigned(alg), Err(Error::UnsupportedAlg));
    }

    // HS256 "signed" with the public key as the HMAC secret, in every form an attacker
    // could find it: raw bytes, base64url, and the JWK document.
    let PublicKey::Ed25519(raw) = w.ed.public_key() else {
        unreachable!("an EdDSA key")
    };
    let jwk_text = serde_json::to_string(&w.ed.public_jwk()).unwrap();
    for secret in [raw.to_vec(), b64(&raw).into_bytes(), jwk_text.into_bytes()] {
        for alg in ["HS256", "HS384", "HS512"] {
            let h = json!({"alg": alg, "typ": "at+jwt", "kid": "ed"});
            let input = format!("{}.{payload}", b64(&serde_json::to_vec(&h).unwrap()));
            let tag = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, &secret),
                input.as_bytes(),
            );
            check(
                &w,
                &format!("{input}.{}", b64(tag.as_ref())),
                Err(Error::UnsupportedAlg),
            );
        }
    }
    // A missing alg is malformed.
    let token = forge(&w.ed, &json!({"typ": "at+jwt", "kid": "ed"}), &w.payload);
    check(&w, &token, Err(Error::Malformed("header has no alg")));
}

#[test]
fn the_header_alg_must_be_the_alg_of_the_named_key() {
    let w = world();
    // An ES256 signature claiming to be by the Ed25519 key, and the reverse.
    let token = forge(
        &w.es,
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "ed"}),
        &w.payload,
    );
    check(&w, &token, Err(Error::AlgMismatch));
    let token = forge(
        &w.ed,
        &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "es"}),
        &w.payload,
    );
    check(&w, &token, Err(Error::AlgMismatch));
    // `Ed25519` (RFC 9864) names the same algorithm as `EdDSA`.
    let token = forge(
        &w.ed,
        &json!({"alg": "Ed25519", "typ": "at+jwt", "kid": "ed"}),
        &w.payload,
    );
    check(&w, &token, Ok(()));
}

#[test]
fn kid_must_name_a_key_of_the_set() {
    let w = world();
    let stranger = key(Alg::EdDSA, "stranger");
    check(
        &w,
        &w.claims.issue(&stranger, ISS, AUD).unwrap(),
        Err(Error::UnknownKey),
    );
    // Same kid as a known key but signed by another: the signature fails.
    let impostor = key(Alg::EdDSA, "ed");
    check(
        &w,
        &w.claims.issue(&impostor, ISS, AUD).unwrap(),
        Err(Error::BadSignature),
    );
    // Access tokens must name their key.
    let token = forge(&w.ed, &json!({"alg": "EdDSA", "typ": "at+jwt"}), &w.payload);
    check(&w, &token, Err(Error::Malformed("header has no kid")));
    let token = forge(
        &w.ed,
        &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": 7}),
        &w.payload,
    );
    check(
        &w,
        &token,
        Err(Error::Malformed("header is not a json object")),
    );
}

#[test]
fn typ_must_be_at_jwt() {
    let w = world();
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        check(&w, &forge(&w.ed, &header(&w.ed, typ), &w.payload), Ok(()));
    }
    for typ in ["JWT", "jwt", "tollgate-assertion+jwt", "at+jwt2", ""] {
        check(
            &w,
            &forge(&w.ed, &header(&w.ed, typ), &w.payload),
            Err(Error::WrongType),
        );
    }
    let token = forge(&w.ed, &json!({"alg": "EdDSA", "kid": "ed"}), &w.payload);
    check(&w, &token, Err(Error::WrongType));
    assert_eq!(ACCESS_TOKEN_TYP, "at+jwt");
}

#[test]
fn crit_headers_are_refused() {
    let w = world();
    let h = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed", "crit": ["b64"], "b64": false});
    check(
        &w,
        &forge(&w.ed, &h, &w.payload),
        Err(Error::Malformed("crit header is not supported")),
    );
    // Unknown header members are ignored (RFC 7515 §4), embedded keys never used.
    let h = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed", "x-extra": 1,
                   "jwk": w.es.public_jwk(), "jku": "https://evil.example/jwks"});
    check(&w, &forge(&w.ed, &h, &w.payload), Ok(()));
}

#[test]
fn claims_are_checked_after_the_signature() {
    let w = world();
    let cases: Vec<(Value, Result<(), Error>)> = vec![
        (
            json!({"iss": "https://evil.example"}),
            Err(Error::WrongIssuer),
        ),
        (json!({"iss": null}), Err(Error::MissingClaim("iss"))),
        (
            json!({"iss": 1}),
            Err(Error::Malformed(
                "claims are not a json object of the right types",
            )),
        ),
        (
            json!({"aud": "https://other.example"}),
            Err(Error::WrongAudience),
        ),
        (
            json!({"aud": ["https://other.example"]}),
            Err(Error::WrongAudience),
        ),
        (json!({"aud": []}), Err(Error::WrongAudience)),
        (json!({"aud": ["https://other.example", AUD]}), Ok(())),
        (json!({"aud": null}), Err(Error::MissingClaim("aud"))),
        (
            json!({"aud": [AUD, 3]}),
            Err(Error::Malformed(
                "aud is not a string or an array of strings",
            )),
        ),
        (json!({"exp": null}), Err(Error::MissingClaim("exp"))),
        (
            json!({"exp": "soon"}),
            Err(Error::Malformed(
                "claims are not a json object of the right types",
            )),
        ),
        (json!({"iat": null}), Err(Error::MissingClaim("iat"))),
        (json!({"sub": null}), Err(Error::MissingClaim("sub"))),
        (
            json!({"sub": "someone-else"}),
            Err(Error::InvalidClaim("sub")),
        ),
        (
            json!({"client_id": null}),
            Err(Error::MissingClaim("client_id")),
        ),
        (
            json!({"client_id": "c", "sub": "c"}),
            Err(Error::InvalidClaim("client_id")),
        ),
        (json!({"jti": null}), Err(Error::MissingClaim("jti"))),
        (
            json!({"jti": "not-a-uuid"}),
            Err(Error::InvalidClaim("jti")),
        ),
        (json!({"tg_app": null}), Err(Error::MissingClaim("tg_app"))),
        (json!({"tg_org": "x"}), Err(Error::InvalidClaim("tg_org"))),
        (
            json!({"tg_mode": null}),
            Err(Error::MissingClaim("tg_mode")),
        ),
        (
            json!({"tg_mode": "Live"}),
            Err(Error::InvalidClaim("tg_mode")),
        ),
        (json!({"scope": "a  b"}), Err(Error::InvalidClaim("scope"))),
        (json!({"cnf": {}}), Err(Error::InvalidClaim("cnf"))),
        (
            json!({"cnf": {"x5t#S256": "AAAA"}}),
            Err(Error::InvalidClaim("cnf")),
        ),
        (
            json!({"cnf": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}),
            Err(Error::InvalidClaim("cnf")),
        ),
        (json!({"cnf": "x"}), Err(Error::InvalidClaim("cnf"))),
        // Unknown claims are ignored (RFC 7519 §4).
        (json!({"x-extra": {"deep": [1, 2]}}), Ok(())),
    ];
    for (edit, expected) in cases {
        let token = forge(
            &w.ed,
            &header(&w.ed, "at+jwt"),
            &edited(&w.payload, edit.clone()),
        );
        let got = w.verifier.verify(&token, NOW).map(|_| ());
        assert_eq!(got, expected, "{edit}");
    }
}

#[test]
fn time_claims_apply_with_leeway() {
    let w = world();
    let exp = w.claims.expires_at;
    let token = w.claims.issue(&w.ed, ISS, AUD).unwrap();
    let at = |t| w.verifier.verify(&token, t).map(|_| ());
    assert_eq!(at(exp - Duration::SECOND), Ok(()));
    assert_eq!(
        at(exp + Duration::seconds(29)),
        Ok(()),
        "default leeway is 30 s"
    );
    assert_eq!(at(exp + Duration::seconds(30)), Err(Error::Expired));
    assert_eq!(at(exp + Duration::days(1)), Err(Error::Expired));
    // Issued in the future (clock skew beyond the leeway).
    assert_eq!(at(w.claims.issued_at - Duration::seconds(30)), Ok(()));
    assert_eq!(
        at(w.claims.issued_at - Duration::seconds(31)),
        Err(Error::NotYetValid)
    );

    let strict = verifier(&[&w.ed]).with_leeway(Duration::ZERO);
    assert_eq!(strict.verify(&token, exp).map(|_| ()), Err(Error::Expired));
    assert_eq!(
        strict.verify(&token, exp - Duration::SECOND).map(|_| ()),
        Ok(())
    );

    let nbf = NOW.unix_timestamp() + 60;
    let token = forge(
        &w.ed,
        &header(&w.ed, "at+jwt"),
        &edited(&w.payload, json!({"nbf": nbf})),
    );
    check(&w, &token, Err(Error::NotYetValid));
    assert!(
        w.verifier
            .verify(&token, NOW + Duration::seconds(30))
            .is_ok()
    );
    let token = forge(
        &w.ed,
        &header(&w.ed, "at+jwt"),
        &edited(&w.payload, json!({"iat": nbf})),
    );
    check(&w, &token, Err(Error::NotYetValid));
}

#[test]
fn tampering_breaks_the_signature() {
    let w = world();
    for key in [&w.ed, &w.es] {
        let token = w.claims.issue(key, ISS, AUD).unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        // A payload granting more scope, under the original header and signature.
        let more = edited(&w.payload, json!({"scope": "read write admin"}));
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            b64(&serde_json::to_vec(&more).unwrap()),
            parts[2]
        );
        check(&w, &swapped, Err(Error::BadSignature));

        // One flipped bit anywhere in the signature.
        let sig = unb64(parts[2]);
        for i in [0, 31, 32, 63] {
            let mut bad = sig.clone();
            bad[i] ^= 1;
            check(
                &w,
                &format!("{}.{}.{}", parts[0], parts[1], b64(&bad)),
                Err(Error::BadSignature),
            );
        }
        // Wrong lengths, a DER-style ES256 signature, an empty one.
        for bad in [
            &sig[..63],
            &[&sig[..], &[0]].concat()[..],
            &[0x30; 70][..],
            &[][..],
        ] {
            check(
                &w,
                &format!("{}.{}.{}", parts[0], parts[1], b64(bad)),
                Err(Error::BadSignature),
            );
        }
        // A header changed after signing (still valid and acceptable): the signature
        // covers it.
        let h = json!({"typ": "at+jwt", "alg": key.alg().as_str(), "kid": key.kid()});
        let reordered = format!(
            "{}.{}.{}",
            b64(&serde_json::to_vec(&h).unwrap()),
            parts[1],
            parts[2]
        );
        check(&w, &reordered, Err(Error::BadSignature));
    }
}

#[test]
fn malformed_tokens_are_malformed() {
    let w = world();
    let token = w.claims.issue(&w.ed, ISS, AUD).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let cases: Vec<String> = vec![
        String::new(),
        "abc".into(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.x.y"),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("{} .{}.{}", parts[0], parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"[1]"), parts[1], parts[2]),
        // An array of the header's values in member order is not a header.
        format!(
            "{}.{}.{}",
            b64(br#"["EdDSA","at+jwt","ed"]"#),
            parts[1],
            parts[2]
        ),
        format!("{}.{}.{}", b64(b"{"), parts[1], parts[2]),
        format!("a{}", "b".repeat(MAX_TOKEN_LEN)),
    ];
    for bad in cases {
        let got = w.verifier.verify(&bad, NOW);
        assert!(
            matches!(got, Err(Error::Malformed(_))),
            "{bad:.80}: {got:?}"
        );
    }
    // The payload is not even decoded before the signature checks out, and padding
    // changes the signing input.
    let padded = format!("{}.{}=.{}", parts[0], parts[1], parts[2]);
    check(&w, &padded, Err(Error::BadSignature));
    // A payload that is not a JSON object, or repeats a claim, under a good signature.
    let h = b64(&serde_json::to_vec(&header(&w.ed, "at+jwt")).unwrap());
    let with_payload = |payload: &[u8]| {
        let input = format!("{h}.{}", b64(payload));
        let sig = w.ed.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&sig))
    };
    let text = serde_json::to_string(&w.payload).unwrap();
    let repeated = text.replacen('{', r#"{"exp":9999999999,"#, 1);
    let positional =
        serde_json::to_vec(&w.payload.as_object().unwrap().values().collect::<Vec<_>>()).unwrap();
    for payload in [
        b"[]".to_vec(),
        positional,
        b"null".to_vec(),
        b"{".to_vec(),
        repeated.into_bytes(),
    ] {
        let got = w.verifier.verify(&with_payload(&payload), NOW);
        assert!(matches!(got, Err(Error::Malformed(_))), "{got:?}");
    }
    // Large payloads decode on the heap and still verify.
    let big = edited(&w.payload, json!({"x-padding": "p".repeat(4000)}));
    check(&w, &forge(&w.ed, &header(&w.ed, "at+jwt"), &big), Ok(()));
}

#[test]
fn error_codes_are_distinct_for_the_gateway() {
    use tollgate_oauth::OAuthErrorCode;
    let errors = [
        Error::Malformed("x"),
        Error::BadSignature,
        Error::UnknownKey,
        Error::WrongAudience,
        Error::WrongIssuer,
        Error::WrongType,
        Error::Expired,
        Error::NotYetValid,
        Error::UnsupportedAlg,
        Error::AlgMismatch,
        Error::MissingClaim("x"),
        Error::InvalidClaim("x"),
        Error::CertificateMismatch,
    ];
    let mut codes: Vec<_> = errors.iter().map(Error::code).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
    for e in &errors {
        assert!(e.code().starts_with("token-"));
        assert_eq!(e.oauth_error(false), Some(OAuthErrorCode::InvalidToken));
        assert_eq!(e.oauth_error(true), Some(OAuthErrorCode::InvalidClient));
        let message = e.to_string();
        assert!(!message.ends_with('.') && message.chars().next().unwrap().is_lowercase());
    }
}
