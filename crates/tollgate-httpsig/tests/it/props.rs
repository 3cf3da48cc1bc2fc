//! Properties: for random requests, sign → verify round-trips, and changing any single
//! byte of a covered header field breaks the signature.

use http::{HeaderName, HeaderValue};
use proptest::prelude::*;
use tollgate_httpsig::{
    ComponentId, DigestAlgorithm, Error, Message, SignatureInput, Signatures, SigningKey,
    content_digest, sign, verify_signature,
};

use crate::common::{hmac_secret, private};

#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    path: String,
    query: Option<String>,
    fields: Vec<String>,
    body: Vec<u8>,
}

/// Field values as HTTP carries them: visible ASCII with inner spaces, no leading or
/// trailing whitespace (which the signature base trims).
fn field_value() -> impl Strategy<Value = String> {
    "[!-~]([ !-~]{0,30}[!-~])?"
}

fn request() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        prop::collection::vec("[a-zA-Z0-9._~-]{1,8}", 0..4),
        prop::option::of("[a-z]{1,5}=[a-zA-Z0-9%]{0,6}(&[a-z]{1,5}=[a-z0-9]{0,4}){0,3}"),
        prop::collection::vec(field_value(), 1..5),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(method, segments, query, fields, body)| Req {
            method,
            path: format!("/{}", segments.join("/")),
            query,
            fields,
            body,
        })
}

fn build(req: &Req) -> http::Request<Vec<u8>> {
    let uri = match &req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.clone(),
    };
    let mut r = http::Request::builder()
        .method(req.method)
        .uri(uri)
        .header("host", "api.example.com")
        .body(req.body.clone())
        .unwrap();
    for (i, v) in req.fields.iter().enumerate() {
        r.headers_mut().append(
            HeaderName::try_from(format!("x-f{i}")).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    if !req.body.is_empty() {
        let digest = content_digest(&req.body, DigestAlgorithm::Sha256);
        r.headers_mut()
            .insert("content-digest", digest.parse().unwrap());
    }
    r
}

fn components(req: &Req) -> Vec<ComponentId<'static>> {
    let mut names: Vec<String> = ["@method", "@authority", "@path", "@query", "@target-uri"]
        .map(String::from)
        .to_vec();
    names.extend((0..req.fields.len()).map(|i| format!("x-f{i}")));
    if !req.body.is_empty() {
        names.push("content-digest".into());
    }
    names.iter().map(|n| n.parse().unwrap()).collect()
}

/// Signs `r` with `key` and adds the fields.
fn sign_into(r: &mut http::Request<Vec<u8>>, req: &Req, key: &SigningKey, nonce: &str) {
    let input = SignatureInput::new("sig1", components(req))
        .and_then(|i| i.with_created(1_700_000_000))
        .and_then(|i| i.with_keyid("k"))
        .and_then(|i| i.with_nonce(nonce))
        .unwrap();
    let signed = sign(&Message::from_request(r), &input, key).unwrap();
    r.headers_mut()
        .insert("signature-input", signed.signature_input.parse().unwrap());
    r.headers_mut()
        .insert("signature", signed.signature.parse().unwrap());
}

fn verify(r: &http::Request<Vec<u8>>, key: &SigningKey) -> Result<(), Error> {
    let msg = Message::from_request(r).with_body(r.body());
    let sigs = Signatures::parse(r.headers())?;
    let (input, sig) = sigs.first()?;
    verify_signature(&msg, input, sig, &key.verifying_key()?)
}

fn keys() -> [SigningKey; 2] {
    [
        private("test-key-ed25519"),
        SigningKey::hmac_sha256(&hmac_secret()).unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sign_then_verify_round_trips(req in request(), nonce in "[a-zA-Z0-9]{1,16}") {
        for key in keys() {
            let mut r = build(&req);
            sign_into(&mut r, &req, &key, &nonce);
            prop_assert_eq!(verify(&r, &key), Ok(()));
        }
    }

    #[test]
    fn any_byte_of_a_covered_field_matters(
        req in request(),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        replacement in b'!'..=b'~',
    ) {
        for key in keys() {
            let mut r = build(&req);
            sign_into(&mut r, &req, &key, "n");
            let i = which.index(req.fields.len());
            let mut value = req.fields[i].clone().into_bytes();
            let j = at.index(value.len());
            prop_assume!(value[j] != replacement);
            value[j] = replacement;
            r.headers_mut().insert(
                HeaderName::try_from(format!("x-f{i}")).unwrap(),
                HeaderValue::from_bytes(&value).unwrap(),
            );
            let result = verify(&r, &key);
            prop_assert!(
                matches!(result, Err(Error::BadSignature { .. })),
                "{:?}",
                result
            );
        }
    }

    #[test]
    fn any_byte_of_the_body_matters(req in request(), at in any::<prop::sample::Index>(), flip in 1u8..) {
        prop_assume!(!req.body.is_empty());
        let key = &keys()[0];
        let mut r = build(&req);
        sign_into(&mut r, &req, key, "n");
        let j = at.index(r.body().len());
        r.body_mut()[j] ^= flip;
        let result = verify(&r, key);
        prop_assert!(matches!(result, Err(Error::DigestMismatch { .. })), "{:?}", result);
    }
}
