//! RFC 9421 Appendix B: every example's signature base reproduced byte for byte, every
//! signature verified, deterministic signatures (Ed25519, HMAC) reproduced, and any
//! change to a covered component, the signature or a parameter refused.

use tollgate_httpsig::raw::{parse_request, parse_response};
use tollgate_httpsig::{
    Algorithm, DigestAlgorithm, Error, Message, SignatureInput, Signatures, SigningKey,
    VerifyingKey, content_digest, sign, signature_base, verify_signature,
};

use crate::common::{case, message, private, public, with_signature};

/// The Appendix B signatures over the test request: (case, key).
const REQUEST_CASES: [(&str, &str); 5] = [
    ("sig-b21", "test-key-rsa-pss"),
    ("sig-b22", "test-key-rsa-pss"),
    ("sig-b23", "test-key-rsa-pss"),
    ("sig-b25", "test-shared-secret"),
    ("sig-b26", "test-key-ed25519"),
];

/// Verifies the first signature of a raw request with `key`; the signature base is
/// compared with `expected_base` when given.
fn verify_request(raw: &str, key: &VerifyingKey, expected_base: Option<&str>) -> Result<(), Error> {
    let (parts, body) = parse_request(raw.as_bytes())?;
    let msg = Message::request(&parts).with_body(body);
    let sigs = Signatures::parse(&parts.headers)?;
    let (input, signature) = sigs.first()?;
    if let Some(expected) = expected_base {
        let mut base = String::new();
        signature_base(&msg, input, &mut base)?;
        assert_eq!(base, expected, "signature base of {}", input.label());
    }
    verify_signature(&msg, input, signature, key)
}

fn signed_request(name: &str) -> String {
    with_signature(
        message("test-request"),
        case(name, "Signature-Input"),
        case(name, "Signature"),
    )
}

#[test]
fn request_examples_reproduce_base_and_verify() {
    for (name, key) in REQUEST_CASES {
        let result = verify_request(
            &signed_request(name),
            &public(key),
            Some(case(name, "signature_base")),
        );
        assert_eq!(result, Ok(()), "{name}");
    }
}

#[test]
fn parsed_inputs_reserialize_exactly() {
    for name in [
        "sig-b21", "sig-b22", "sig-b23", "sig-b24", "sig-b25", "sig-b26",
    ] {
        let field = case(name, "Signature-Input");
        let headers = http::HeaderMap::from_iter([
            ("signature-input".parse().unwrap(), field.parse().unwrap()),
            (
                "signature".parse().unwrap(),
                case(name, "Signature").parse().unwrap(),
            ),
        ]);
        let sigs = Signatures::parse(&headers).unwrap();
        assert_eq!(sigs.inputs()[0].field_member(), field, "{name}");
    }
}

/// Ed25519 and HMAC-SHA256 are deterministic: signing the vector's input reproduces the
/// vector's `Signature` exactly.
#[test]
fn deterministic_signatures_are_reproduced() {
    let (parts, body) = parse_request(message("test-request").as_bytes()).unwrap();
    let msg = Message::request(&parts).with_body(body);
    for (name, key) in [
        ("sig-b25", "test-shared-secret"),
        ("sig-b26", "test-key-ed25519"),
    ] {
        let headers = http::HeaderMap::from_iter([
            (
                "signature-input".parse().unwrap(),
                case(name, "Signature-Input").parse().unwrap(),
            ),
            (
                "signature".parse().unwrap(),
                case(name, "Signature").parse().unwrap(),
            ),
        ]);
        let sigs = Signatures::parse(&headers).unwrap();
        let signed = sign(&msg, &sigs.inputs()[0], &private(key)).unwrap();
        assert_eq!(signed.base, case(name, "signature_base"), "{name}");
        assert_eq!(
            signed.signature_input,
            case(name, "Signature-Input"),
            "{name}"
        );
        assert_eq!(signed.signature, case(name, "Signature"), "{name}");
    }
}

/// PSS and ECDSA are randomized: a fresh signature differs from the vector's but verifies
/// with the vector's public key.
#[test]
fn randomized_signatures_verify_with_the_published_keys() {
    let raw = message("test-request");
    // The PSS vector key's PKCS#8 names id-RSASSA-PSS, which aws-lc-rs does not load
    // for signing; B.1.1's RSA key (PKCS#1) signs rsa-pss-sha512 just as well.
    let rsa = private("test-key-rsa");
    let rsa_public = rsa.verifying_key().unwrap();
    for name in ["sig-b21", "sig-b22", "sig-b23"] {
        let (parts, body) = parse_request(raw.as_bytes()).unwrap();
        let msg = Message::request(&parts).with_body(body);
        let headers = http::HeaderMap::from_iter([
            (
                "signature-input".parse().unwrap(),
                case(name, "Signature-Input").parse().unwrap(),
            ),
            (
                "signature".parse().unwrap(),
                case(name, "Signature").parse().unwrap(),
            ),
        ]);
        let sigs = Signatures::parse(&headers).unwrap();
        let signed = sign(&msg, &sigs.inputs()[0], &rsa).unwrap();
        assert_ne!(signed.signature, case(name, "Signature"));
        let again = with_signature(raw, &signed.signature_input, &signed.signature);
        assert_eq!(verify_request(&again, &rsa_public, None), Ok(()), "{name}");
        // PSS is randomized: signing twice gives two different valid signatures.
        let twice = sign(&msg, &sigs.inputs()[0], &rsa).unwrap();
        assert_ne!(twice.signature, signed.signature);
    }
    // ECDSA over the request, with the SEC1 `EC PRIVATE KEY` block of the vectors.
    let input = case("sig-b26", "Signature-Input").replace("test-key-ed25519", "test-key-ecc-p256");
    let (parts, body) = parse_request(raw.as_bytes()).unwrap();
    let msg = Message::request(&parts).with_body(body);
    let headers = http::HeaderMap::from_iter([
        ("signature-input".parse().unwrap(), input.parse().unwrap()),
        (
            "signature".parse().unwrap(),
            "sig-b26=:AA==:".parse().unwrap(),
        ),
    ]);
    let sigs = Signatures::parse(&headers).unwrap();
    let signed = sign(&msg, &sigs.inputs()[0], &private("test-key-ecc-p256")).unwrap();
    let sig_b64 = signed.signature.split(':').nth(1).unwrap();
    assert_eq!(sig_b64.len(), 88, "64-byte r‖s, not DER");
    let again = with_signature(raw, &signed.signature_input, &signed.signature);
    assert_eq!(
        verify_request(&again, &public("test-key-ecc-p256"), None),
        Ok(())
    );
}

/// B.2.4 signs the response with ECDSA over a `Content-Digest` that, as printed in the
/// RFC, is not the digest of the body (erratum): the published signature verifies with
/// the digest recomputed from the body.
#[test]
fn response_example_verifies_with_the_recomputed_digest() {
    let raw = with_signature(
        message("test-response"),
        case("sig-b24", "Signature-Input"),
        case("sig-b24", "Signature"),
    );
    let (mut parts, body) = parse_response(raw.as_bytes()).unwrap();
    let key = public("test-key-ecc-p256");

    let check = |parts: &http::response::Parts| -> Result<String, Error> {
        let msg = Message::response(parts);
        let sigs = Signatures::parse(&parts.headers)?;
        let (input, signature) = sigs.first()?;
        let mut base = String::new();
        signature_base(&msg, input, &mut base)?;
        verify_signature(&msg, input, signature, &key)?;
        Ok(base)
    };

    // As printed: the base differs from the vector's and the signature fails.
    assert!(matches!(check(&parts), Err(Error::BadSignature { .. })));

    let digest = content_digest(body, DigestAlgorithm::Sha512);
    parts
        .headers
        .insert("content-digest", digest.parse().unwrap());
    assert_eq!(check(&parts).unwrap(), case("sig-b24", "signature_base"));

    // With the body in view the digest is also checked against it.
    let msg = Message::response(&parts).with_body(body);
    let sigs = Signatures::parse(&parts.headers).unwrap();
    let (input, signature) = sigs.first().unwrap();
    assert_eq!(verify_signature(&msg, input, signature, &key), Ok(()));
    let tampered = br#"{"message": "good cat"}"#;
    let msg = Message::response(&parts).with_body(tampered);
    assert_eq!(
        verify_signature(&msg, input, signature, &key),
        Err(Error::DigestMismatch {
            algorithm: "sha-512"
        })
    );
}

/// B.4's TLS-terminating proxy example: a `Client-Cert` field and ECDSA.
#[test]
fn proxy_example_verifies() {
    let raw = case("ttrp", "signed_request");
    let result = verify_request(
        raw,
        &public("test-key-ecc-p256"),
        Some(case("ttrp", "signature_base")),
    );
    assert_eq!(result, Ok(()));
}

/// B.3's transformations: changes outside the covered components keep the signature
/// valid; changes to them do not.
#[test]
fn transformations_keep_or_break_the_signature() {
    let key = public("test-key-ed25519");
    let raw = case("transform", "signed_request");
    assert_eq!(
        verify_request(raw, &key, Some(case("transform", "signature_base"))),
        Ok(())
    );
    let variants = &crate::common::vectors()["cases"]["transform"];
    for v in variants["still_valid_variants"].as_array().unwrap() {
        let raw = v.as_str().unwrap();
        assert_eq!(verify_request(raw, &key, None), Ok(()), "{raw}");
    }
    for v in variants["invalid_variants"].as_array().unwrap() {
        let raw = v.as_str().unwrap();
        assert!(
            matches!(
                verify_request(raw, &key, None),
                Err(Error::BadSignature { .. })
            ),
            "{raw}"
        );
    }
}

/// Applies `edit` to the signed raw request of `name` and expects `want`.
fn check_tamper(name: &str, key: &str, edit: impl Fn(&str) -> String, want: fn(&Error) -> bool) {
    let raw = edit(&signed_request(name));
    let got = verify_request(&raw, &public(key), None);
    assert!(
        got.as_ref().is_err_and(want),
        "{name}: {got:?} after edit:\n{raw}"
    );
}

fn bad_signature(e: &Error) -> bool {
    matches!(e, Error::BadSignature { .. })
}

#[test]
fn changing_a_covered_component_breaks_every_example() {
    let cases = [
        ("sig-b22", "test-key-rsa-pss", "Pet=dog", "Pet=cat"),
        (
            "sig-b22",
            "test-key-rsa-pss",
            "Host: example.com",
            "Host: example.org",
        ),
        ("sig-b23", "test-key-rsa-pss", "POST /foo", "PUT /foo"),
        ("sig-b23", "test-key-rsa-pss", "param=Value", "param=value"),
        (
            "sig-b23",
            "test-key-rsa-pss",
            "Content-Length: 18",
            "Content-Length: 19",
        ),
        ("sig-b25", "test-shared-secret", "02:07:55", "02:07:56"),
        (
            "sig-b25",
            "test-shared-secret",
            "application/json",
            "application/xml",
        ),
        ("sig-b26", "test-key-ed25519", "POST /foo", "POST /fob"),
        ("sig-b26", "test-key-ed25519", "02:07:55", "02:07:56"),
    ];
    for (name, key, from, to) in cases {
        check_tamper(name, key, |raw| raw.replacen(from, to, 1), bad_signature);
    }
    // A covered field that disappears cannot be verified at all.
    check_tamper(
        "sig-b26",
        "test-key-ed25519",
        |raw| raw.replacen("Date: Tue, 20 Apr 2021 02:07:55 GMT\n", "", 1),
        |e| matches!(e, Error::ComponentNotInMessage { .. }),
    );
    // Uncovered parts may change: B.2.6 does not cover the query.
    let raw = signed_request("sig-b26").replacen("Pet=dog", "Pet=cat", 1);
    assert_eq!(
        verify_request(&raw, &public("test-key-ed25519"), None),
        Ok(())
    );
}

#[test]
fn changing_the_body_breaks_covered_digests() {
    // B.2.3 covers content-digest: the body is bound through it.
    check_tamper(
        "sig-b23",
        "test-key-rsa-pss",
        |raw| raw.replacen(r#""world"}"#, r#""World"}"#, 1),
        |e| matches!(e, Error::DigestMismatch { .. }),
    );
}

#[test]
fn changing_the_signature_breaks_every_example() {
    for (name, key) in REQUEST_CASES {
        let sig = case(name, "Signature");
        // Flip one base64 character in the middle of the byte sequence.
        let mid = sig.find(":").unwrap() + 10;
        let flipped = {
            let mut b = sig.as_bytes().to_vec();
            b[mid] = if b[mid] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        check_tamper(
            name,
            key,
            |raw| raw.replacen(sig, &flipped, 1),
            bad_signature,
        );
        // A truncated signature is refused too.
        let short = format!("{}=:AAAA:", name);
        check_tamper(name, key, |raw| raw.replacen(sig, &short, 1), bad_signature);
    }
}

#[test]
fn changing_a_signature_parameter_breaks_every_example() {
    for (name, key) in REQUEST_CASES {
        check_tamper(
            name,
            key,
            |raw| raw.replacen("created=1618884473", "created=1618884474", 1),
            bad_signature,
        );
        check_tamper(
            name,
            key,
            |raw| raw.replacen(";keyid=\"test-", ";keyid=\"Test-", 1),
            bad_signature,
        );
        check_tamper(
            name,
            key,
            |raw| raw.replacen("created=1618884473", "created=1618884473;nonce=\"x\"", 1),
            bad_signature,
        );
    }
    // Removing a covered component from the list changes the base.
    check_tamper(
        "sig-b26",
        "test-key-ed25519",
        |raw| raw.replacen("(\"date\" ", "(", 1),
        bad_signature,
    );
    // Reordering parameters changes the base too.
    check_tamper(
        "sig-b26",
        "test-key-ed25519",
        |raw| {
            raw.replacen(
                ";created=1618884473;keyid=\"test-key-ed25519\"",
                ";keyid=\"test-key-ed25519\";created=1618884473",
                1,
            )
        },
        bad_signature,
    );
}

#[test]
fn alg_parameter_must_match_the_key() {
    let with_alg = |alg: &'static str| {
        move |raw: &str| {
            raw.replacen(
                "created=1618884473;keyid=\"test-key-ed25519\"",
                &format!("created=1618884473;keyid=\"test-key-ed25519\";alg=\"{alg}\""),
                1,
            )
        }
    };
    check_tamper(
        "sig-b26",
        "test-key-ed25519",
        with_alg("hmac-sha256"),
        |e| matches!(e, Error::AlgorithmMismatch { .. }),
    );
    check_tamper(
        "sig-b26",
        "test-key-ed25519",
        with_alg("rsa-v1_5-sha256"),
        |e| matches!(e, Error::UnsupportedAlgorithm(_)),
    );
    // The right alg passes the check but, being a new parameter, changes the base.
    check_tamper(
        "sig-b26",
        "test-key-ed25519",
        with_alg("ed25519"),
        bad_signature,
    );
}

#[test]
fn keys_load_from_the_published_pem() {
    for (key, alg) in [
        ("test-key-rsa-pss", Algorithm::RsaPssSha512),
        ("test-key-ecc-p256", Algorithm::EcdsaP256Sha256),
        ("test-key-ed25519", Algorithm::Ed25519),
    ] {
        let pem = crate::common::pem(key).as_bytes();
        assert_eq!(
            VerifyingKey::from_public_key_pem_any(pem)
                .unwrap()
                .algorithm(),
            alg
        );
        if key != "test-key-rsa-pss" {
            assert_eq!(private(key).verifying_key().unwrap().algorithm(), alg);
        }
        // A key of another algorithm is refused.
        let other = if alg == Algorithm::Ed25519 {
            Algorithm::EcdsaP256Sha256
        } else {
            Algorithm::Ed25519
        };
        assert!(VerifyingKey::from_public_key_pem(other, pem).is_err());
    }
    assert!(VerifyingKey::from_public_key_pem_any(b"not pem").is_err());
    // The PSS-only PKCS#8 of B.1.2 is refused with advice rather than an opaque error.
    let err = SigningKey::from_private_key_pem(
        Algorithm::RsaPssSha512,
        crate::common::pem("test-key-rsa-pss").as_bytes(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("id-RSASSA-PSS"), "{err}");
}

#[test]
fn signature_input_round_trips_through_the_builder() {
    let components = [
        "date",
        "@method",
        "@path",
        "@authority",
        "content-type",
        "content-length",
    ]
    .map(|c| tollgate_httpsig::ComponentId::new(c).unwrap())
    .to_vec();
    let input = SignatureInput::new("sig-b26", components)
        .and_then(|i| i.with_created(1618884473))
        .and_then(|i| i.with_keyid("test-key-ed25519"))
        .unwrap();
    assert_eq!(input.field_member(), case("sig-b26", "Signature-Input"));
}
