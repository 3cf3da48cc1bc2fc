//! Client authentication: `client_secret_basic`, token requests, `private_key_jwt`.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tollgate_oauth::{
    Alg, ClientAssertionVerifier, ClientAuth, Error, Form, JWT_BEARER_ASSERTION_TYPE, KeySet,
    TokenRequest, form_decode, parse_client_secret_basic,
};

use crate::*;

fn basic(raw: &[u8]) -> String {
    format!("Basic {}", STANDARD.encode(raw))
}

#[test]
fn client_secret_basic_decodes_form_encoding() {
    let check = |header: &str, expected: Result<(&str, &str), Error>| {
        let got = parse_client_secret_basic(header);
        let got = got
            .as_ref()
            .map(|c| (c.client_id.as_str(), c.client_secret.as_str()))
            .map_err(Clone::clone);
        assert_eq!(got, expected, "{header}");
    };
    check(&basic(b"client:secret"), Ok(("client", "secret")));
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    check(&basic(b"a%3Ab:s%3Ac"), Ok(("a:b", "s:c")));
    check(&basic(b"id+1:p+w%2Bd"), Ok(("id 1", "p w+d")));
    check(&basic(b"caf%C3%A9:%25%26%3D"), Ok(("café", "%&=")));
    // Splits at the first colon; a raw colon in the secret stays.
    check(&basic(b"id:se:cret"), Ok(("id", "se:cret")));
    // Scheme is case-insensitive; extra spaces and missing padding are tolerated.
    check(
        &format!("basic {}", STANDARD.encode(b"id:s")),
        Ok(("id", "s")),
    );
    check(
        &format!("BASIC   {}  ", STANDARD.encode(b"id:s")),
        Ok(("id", "s")),
    );
    check(
        &format!("Basic {}", STANDARD.encode(b"id:se").trim_end_matches('=')),
        Ok(("id", "se")),
    );

    let invalid = |reason| Err(Error::InvalidClient(reason));
    check(
        &basic(b"client-secret"),
        invalid("basic credentials have no colon"),
    );
    check(&basic(b":secret"), invalid("empty client id"));
    check(&basic(b"client:"), invalid("empty client secret"));
    check(
        &basic(b"c%3:s"),
        invalid("basic credentials are not form-urlencoded"),
    );
    check(
        &basic(b"c:s%"),
        invalid("basic credentials are not form-urlencoded"),
    );
    check(
        &basic(b"c:s%zz"),
        invalid("basic credentials are not form-urlencoded"),
    );
    check(
        &basic(b"c:s%+1"),
        invalid("basic credentials are not form-urlencoded"),
    );
    check(
        &basic(b"c:%FF"),
        invalid("basic credentials are not form-urlencoded"),
    );
    check(
        &basic(b"c:\xff"),
        invalid("basic credentials are not utf-8"),
    );
    check("Basic !!!!", invalid("basic credentials are not base64"));
    check("Basic", invalid("authorization is not Basic credentials"));
    check("Bearer abc", invalid("authorization scheme is not Basic"));
    check(
        "Basicabc",
        invalid("authorization is not Basic credentials"),
    );

    let creds = parse_client_secret_basic(&basic(b"client:hunter2")).unwrap();
    let shown = format!("{creds:?}");
    assert!(shown.contains("client") && !shown.contains("hunter2"));
}

#[test]
fn form_bodies_follow_rfc_6749() {
    assert_eq!(form_decode("a+b%20c").as_deref(), Some("a b c"));
    assert!(matches!(
        form_decode("plain"),
        Some(std::borrow::Cow::Borrowed("plain"))
    ));
    for bad in ["%", "%4", "%g0", "%-1", "%C3"] {
        assert_eq!(form_decode(bad), None, "{bad}");
    }
    let form = Form::parse("a=1&b=&&c&d=x%3Dy&e=%F0%9F%A6%80").unwrap();
    assert_eq!(form.get("a"), Some("1"));
    assert_eq!(form.get("b"), None, "an empty value counts as absent");
    assert_eq!(form.get("c"), None);
    assert_eq!(form.get("d"), Some("x=y"));
    assert_eq!(form.get("e"), Some("🦀"));
    assert_eq!(
        Form::parse("a=1&a=2").err(),
        Some(Error::InvalidRequest("a parameter is repeated"))
    );
    assert_eq!(Form::parse("a=1&a=").unwrap().get("a"), Some("1"));
    assert!(matches!(
        Form::parse("a=%ZZ"),
        Err(Error::InvalidRequest(_))
    ));
}

#[test]
fn token_requests_carry_exactly_one_client_authentication() {
    let basic_header = basic(b"c1:s1");
    let auth = Some(basic_header.as_str());
    let assertion_params = format!(
        "client_assertion_type={}&client_assertion=a.b.c",
        form_escape(JWT_BEARER_ASSERTION_TYPE)
    );

    let r = TokenRequest::parse("grant_type=client_credentials&scope=read+write", auth).unwrap();
    assert_eq!(r.scope.as_deref(), Some("read write"));
    assert!(matches!(r.client, ClientAuth::SecretBasic(ref c) if c.client_id == "c1"));
    let r = TokenRequest::parse("grant_type=client_credentials&client_id=c1", auth).unwrap();
    assert!(matches!(r.client, ClientAuth::SecretBasic(_)));
    assert_eq!(r.scope, None);

    let r = TokenRequest::parse(
        &format!("grant_type=client_credentials&{assertion_params}"),
        None,
    )
    .unwrap();
    assert!(
        matches!(r.client, ClientAuth::PrivateKeyJwt { client_id: None, ref assertion } if assertion == "a.b.c")
    );
    let r = TokenRequest::parse(
        &format!("grant_type=client_credentials&client_id=c9&{assertion_params}"),
        None,
    )
    .unwrap();
    assert!(
        matches!(r.client, ClientAuth::PrivateKeyJwt { client_id: Some(ref id), .. } if id == "c9")
    );

    let r = TokenRequest::parse("grant_type=client_credentials&client_id=c2", None).unwrap();
    assert!(matches!(r.client, ClientAuth::TlsClient { ref client_id } if client_id == "c2"));

    let cases: Vec<(String, Option<&str>, Error)> = vec![
        (
            "scope=read".into(),
            auth,
            Error::InvalidRequest("grant_type is required"),
        ),
        (
            "grant_type=password".into(),
            auth,
            Error::UnsupportedGrantType,
        ),
        (
            "grant_type=authorization_code".into(),
            auth,
            Error::UnsupportedGrantType,
        ),
        (
            "grant_type=client_credentials&grant_type=client_credentials".into(),
            auth,
            Error::InvalidRequest("a parameter is repeated"),
        ),
        (
            "grant_type=client_credentials&scope=a%20%20b".into(),
            auth,
            Error::InvalidScope("a  b".into()),
        ),
        (
            "grant_type=client_credentials".into(),
            None,
            Error::InvalidClient("no client authentication"),
        ),
        (
            "grant_type=client_credentials&client_id=c1&client_secret=s1".into(),
            None,
            Error::InvalidClient(
                "client_secret_post is not supported; send the secret with HTTP Basic",
            ),
        ),
        (
            "grant_type=client_credentials&client_id=other".into(),
            auth,
            Error::InvalidRequest("client_id does not match the authorization header"),
        ),
        (
            format!("grant_type=client_credentials&{assertion_params}"),
            auth,
            Error::InvalidRequest("more than one client authentication method"),
        ),
        (
            "grant_type=client_credentials&client_assertion=a.b.c".into(),
            None,
            Error::InvalidRequest("client_assertion needs client_assertion_type"),
        ),
        (
            format!(
                "grant_type=client_credentials&client_assertion_type={}",
                form_escape(JWT_BEARER_ASSERTION_TYPE)
            ),
            None,
            Error::InvalidRequest("client_assertion_type without client_assertion"),
        ),
        (
            "grant_type=client_credentials&client_assertion_type=urn:x&client_assertion=a.b.c"
                .into(),
            None,
            Error::InvalidClient("unsupported client_assertion_type"),
        ),
        (
            "grant_type=client_credentials".into(),
            Some("Bearer x"),
            Error::InvalidClient("authorization scheme is not Basic"),
        ),
    ];
    for (body, auth, expected) in cases {
        assert_eq!(
            TokenRequest::parse(&body, auth).err(),
            Some(expected),
            "{body} {auth:?}"
        );
    }
}

fn form_escape(text: &str) -> String {
    text.replace(':', "%3A")
}

const TOKEN_ENDPOINT: &str = "https://market.example/oauth/token";
const CLIENT: &str = "0199a5d0-0000-7000-8000-00000000c11e";

/// A client with one key, the server's verifier, and a replay store.
struct Setup {
    client_key: SigningKey,
    keys: KeySet,
    verifier: ClientAssertionVerifier,
    seen: HashSet<(String, String)>,
}

fn setup(alg: Alg) -> Setup {
    let client_key = key(alg, "client-key-1");
    Setup {
        keys: key_set(&[&client_key]),
        client_key,
        verifier: ClientAssertionVerifier::new(ISS, TOKEN_ENDPOINT),
        seen: HashSet::new(),
    }
}

fn assertion_claims(jti: &str) -> Value {
    json!({
        "iss": CLIENT, "sub": CLIENT, "aud": TOKEN_ENDPOINT, "jti": jti,
        "iat": NOW.unix_timestamp(), "exp": NOW.unix_timestamp() + 60,
    })
}

impl Setup {
    fn verify(
        &mut self,
        assertion: &str,
        client_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let keys = &self.keys;
        let seen = &mut self.seen;
        self.verifier
            .verify(
                assertion,
                client_id,
                now,
                |id| (id == CLIENT).then_some(keys),
                &mut |client: &str, jti: &str, _exp: OffsetDateTime| {
                    seen.insert((client.to_owned(), jti.to_owned()))
                },
            )
            .map(|v| {
                assert_eq!(v.client_id, CLIENT);
                assert!(v.expires_at > NOW - Duration::minutes(10));
            })
    }

    fn sign(&self, header: Value, claims: &Value) -> String {
        forge(&self.client_key, &header, claims)
    }

    fn assertion(&self, claims: &Value) -> String {
        self.sign(
            json!({"alg": self.client_key.alg().as_str(), "typ": "JWT", "kid": "client-key-1"}),
            claims,
        )
    }
}

#[test]
fn private_key_jwt_accepts_a_good_assertion_once() {
    for alg in [Alg::EdDSA, Alg::Es256] {
        let mut s = setup(alg);
        let token = s.assertion(&assertion_claims("jti-1"));
        assert_eq!(s.verify(&token, None, NOW), Ok(()));
        assert_eq!(
            s.verify(&token, None, NOW),
            Err(Error::Replayed),
            "same jti again"
        );
        // The same jti in a freshly signed assertion is a replay too.
        let again = s.assertion(&assertion_claims("jti-1"));
        assert_eq!(s.verify(&again, None, NOW), Err(Error::Replayed));
        assert!(s.seen.contains(&(CLIENT.to_owned(), "jti-1".to_owned())));

        // The issuer identifier is an accepted audience too, alone or in an array; a
        // client_id parameter must match; typ may be absent or the RFC 7523bis one.
        let mut c = assertion_claims("jti-2");
        c["aud"] = json!([ISS]);
        assert_eq!(s.verify(&s.assertion(&c), Some(CLIENT), NOW), Ok(()));
        let mut c = assertion_claims("jti-3");
        c["aud"] = json!(ISS);
        let h = json!({"alg": alg.as_str(), "kid": "client-key-1"});
        assert_eq!(s.verify(&s.sign(h, &c), None, NOW), Ok(()));
        let h =
            json!({"alg": alg.as_str(), "typ": "client-authentication+jwt", "kid": "client-key-1"});
        assert_eq!(
            s.verify(&s.sign(h, &assertion_claims("jti-4")), None, NOW),
            Ok(())
        );
    }
}

#[test]
fn private_key_jwt_rejections() {
    let mut s = setup(Alg::Es256);
    let exp = NOW.unix_timestamp() + 60;
    let edit = |e: Value| {
        let mut c = assertion_claims("j");
        for (k, v) in e.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let cases: Vec<(Value, Error)> = vec![
        (
            json!({"aud": "https://other.example/oauth/token"}),
            Error::WrongAudience,
        ),
        (json!({"aud": [AUD]}), Error::WrongAudience),
        (json!({"aud": null}), Error::MissingClaim("aud")),
        (json!({"exp": NOW.unix_timestamp() - 31}), Error::Expired),
        (json!({"exp": null}), Error::MissingClaim("exp")),
        (
            json!({"exp": NOW.unix_timestamp() + 3601}),
            Error::LifetimeTooLong,
        ),
        (json!({"nbf": exp}), Error::NotYetValid),
        (json!({"iat": exp}), Error::NotYetValid),
        (json!({"jti": null}), Error::MissingClaim("jti")),
        (json!({"jti": ""}), Error::InvalidClaim("jti")),
        (json!({"sub": "someone-else"}), Error::InvalidClaim("sub")),
        (json!({"sub": null}), Error::MissingClaim("sub")),
        (json!({"iss": null}), Error::MissingClaim("iss")),
        (
            json!({"iss": "unknown", "sub": "unknown"}),
            Error::UnknownClient,
        ),
    ];
    for (e, expected) in cases {
        let token = s.assertion(&edit(e.clone()));
        assert_eq!(s.verify(&token, None, NOW), Err(expected), "{e}");
    }
    assert!(s.seen.is_empty(), "no failed assertion records its jti");

    let good = s.assertion(&assertion_claims("j"));
    assert_eq!(
        s.verify(&good, Some("another-client"), NOW),
        Err(Error::InvalidClient(
            "client_id does not match the assertion"
        ))
    );
    // Signed by a key the client did not register, or changed after signing.
    let stranger = key(Alg::Es256, "client-key-1");
    let forged = forge(
        &stranger,
        &json!({"alg": "ES256", "kid": "client-key-1"}),
        &assertion_claims("j"),
    );
    assert_eq!(s.verify(&forged, None, NOW), Err(Error::BadSignature));
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&assertion_claims("k")).unwrap()),
        parts[2]
    );
    assert_eq!(s.verify(&tampered, None, NOW), Err(Error::BadSignature));
    assert!(s.seen.is_empty(), "a forged assertion cannot burn a jti");
    // An access token can never be a client assertion.
    let h = json!({"alg": "ES256", "typ": "at+jwt", "kid": "client-key-1"});
    assert_eq!(
        s.verify(&s.sign(h, &assertion_claims("j")), None, NOW),
        Err(Error::WrongType)
    );
    let h = json!({"alg": "none", "kid": "client-key-1"});
    assert_eq!(
        s.verify(&s.sign(h, &assertion_claims("j")), None, NOW),
        Err(Error::UnsupportedAlg)
    );
    let h = json!({"alg": "ES256", "kid": "other-key"});
    assert_eq!(
        s.verify(&s.sign(h, &assertion_claims("j")), None, NOW),
        Err(Error::UnknownKey)
    );

    // The lifetime limit is configurable.
    s.verifier =
        ClientAssertionVerifier::new(ISS, TOKEN_ENDPOINT).with_max_lifetime(Duration::seconds(30));
    assert_eq!(s.verify(&good, None, NOW), Err(Error::LifetimeTooLong));
    assert_eq!(s.verify(&good, None, NOW + Duration::seconds(30)), Ok(()));
}
