//! The gateway's verifier: policy outcomes (components, freshness, keyid), key lookup,
//! tampered bodies, and replay protection.

use std::collections::HashMap;
use std::sync::Arc;

use tollgate_httpsig::{
    ContentDigestCheck, DigestAlgorithm, Error, FnResolver, MemoryNonceCache, Message, NonceCache,
    NonceOutcome, Policy, SignatureInput, Signatures, SigningKey, Verifier, VerifyingKey,
    content_digest, sign,
};

const T0: i64 = 1_700_000_000;

fn key() -> SigningKey {
    SigningKey::hmac_sha256(b"0123456789abcdef0123456789abcdef").unwrap()
}

fn keys() -> HashMap<String, VerifyingKey> {
    HashMap::from([("app-1".to_owned(), key().verifying_key().unwrap())])
}

struct Signing<'a> {
    components: &'a [&'a str],
    created: Option<i64>,
    expires: Option<i64>,
    keyid: Option<&'a str>,
    nonce: Option<&'a str>,
    body: &'a [u8],
}

impl Default for Signing<'_> {
    fn default() -> Self {
        Signing {
            components: &["@method", "@authority", "@path", "@query", "content-digest"],
            created: Some(T0),
            expires: None,
            keyid: Some("app-1"),
            nonce: None,
            body: b"{\"qty\": 1}",
        }
    }
}

fn signed(s: &Signing<'_>) -> http::Request<Vec<u8>> {
    let mut req = http::Request::post("https://api.example.com/v1/orders?dry=1")
        .body(s.body.to_vec())
        .unwrap();
    if !s.body.is_empty() {
        let digest = content_digest(s.body, DigestAlgorithm::Sha512);
        req.headers_mut()
            .insert("content-digest", digest.parse().unwrap());
    }
    let components = s.components.iter().map(|c| c.parse().unwrap()).collect();
    let mut input = SignatureInput::new("sig1", components).unwrap();
    if let Some(t) = s.created {
        input = input.with_created(t).unwrap();
    }
    if let Some(t) = s.expires {
        input = input.with_expires(t).unwrap();
    }
    if let Some(k) = s.keyid {
        input = input.with_keyid(k).unwrap();
    }
    if let Some(n) = s.nonce {
        input = input.with_nonce(n).unwrap();
    }
    let out = sign(&Message::from_request(&req), &input, &key()).unwrap();
    req.headers_mut()
        .insert("signature-input", out.signature_input.parse().unwrap());
    req.headers_mut()
        .insert("signature", out.signature.parse().unwrap());
    req
}

fn run<N: NonceCache>(
    verifier: &Verifier<N>,
    req: &http::Request<Vec<u8>>,
    now: i64,
) -> Result<(), Error> {
    let msg = Message::from_request(req).with_body(req.body());
    let sigs = Signatures::parse(req.headers())?;
    verifier.verify(&msg, &sigs, &keys(), now).map(|_| ())
}

fn check(s: Signing<'_>, now: i64, expected: Result<(), Error>) {
    let verifier = Verifier::new(Policy::default());
    assert_eq!(run(&verifier, &signed(&s), now), expected);
}

#[test]
fn accepts_a_fresh_complete_signature() {
    check(Signing::default(), T0, Ok(()));
    check(Signing::default(), T0 + 300, Ok(()));
    check(Signing::default(), T0 - 30, Ok(()));
}

#[test]
fn refuses_stale_future_and_expired_signatures() {
    check(
        Signing::default(),
        T0 + 301,
        Err(Error::Stale {
            created: T0,
            now: T0 + 301,
            max_age: 300,
        }),
    );
    check(
        Signing::default(),
        T0 - 31,
        Err(Error::CreatedInFuture {
            created: T0,
            now: T0 - 31,
        }),
    );
    let expiring = || Signing {
        expires: Some(T0 + 10),
        ..Signing::default()
    };
    check(expiring(), T0 + 40, Ok(()));
    check(
        expiring(),
        T0 + 41,
        Err(Error::Expired {
            expires: T0 + 10,
            now: T0 + 41,
        }),
    );
    check(
        Signing {
            created: None,
            ..Signing::default()
        },
        T0,
        Err(Error::MissingCreated),
    );
}

#[test]
fn refuses_missing_components_and_keyids() {
    check(
        Signing {
            components: &["@method", "@authority", "@path", "content-digest"],
            ..Signing::default()
        },
        T0,
        Err(Error::MissingCoveredComponent("@query".into())),
    );
    check(
        Signing {
            components: &["@method", "@authority", "@path", "@query"],
            ..Signing::default()
        },
        T0,
        Err(Error::MissingCoveredComponent("content-digest".into())),
    );
    // Without a body, content-digest is not required.
    check(
        Signing {
            components: &["@method", "@authority", "@path", "@query"],
            body: b"",
            ..Signing::default()
        },
        T0,
        Ok(()),
    );
    // `"@query";req` is not `"@query"`.
    check(
        Signing {
            components: &[
                "@method",
                "@authority",
                "@path",
                "@query-param;name=\"dry\"",
                "content-digest",
            ],
            ..Signing::default()
        },
        T0,
        Err(Error::MissingCoveredComponent("@query".into())),
    );
    check(
        Signing {
            keyid: None,
            ..Signing::default()
        },
        T0,
        Err(Error::MissingKeyId),
    );
    check(
        Signing {
            keyid: Some("app-2"),
            ..Signing::default()
        },
        T0,
        Err(Error::UnknownKeyId("app-2".into())),
    );
}

#[test]
fn refuses_tampered_requests() {
    let verifier = Verifier::new(Policy::default());
    let mut req = signed(&Signing::default());
    req.body_mut()[2] = b'Q';
    assert_eq!(
        run(&verifier, &req, T0),
        Err(Error::DigestMismatch {
            algorithm: "sha-512"
        })
    );

    let mut req = signed(&Signing::default());
    *req.uri_mut() = "https://api.example.com/v1/orders?dry=0".parse().unwrap();
    assert_eq!(
        run(&verifier, &req, T0),
        Err(Error::BadSignature {
            label: "sig1".into()
        })
    );

    let mut req = signed(&Signing::default());
    req.headers_mut().remove("signature");
    assert_eq!(
        run(&verifier, &req, T0),
        Err(Error::MissingSignature { label: None })
    );

    let mut req = signed(&Signing::default());
    req.headers_mut()
        .insert("signature-input", "sig1=\"nope\"".parse().unwrap());
    assert!(matches!(
        run(&verifier, &req, T0),
        Err(Error::MalformedSignatureInput(_))
    ));

    let mut req = signed(&Signing::default());
    req.headers_mut()
        .insert("signature", "sig1=:AA=".parse().unwrap());
    assert!(matches!(
        run(&verifier, &req, T0),
        Err(Error::MalformedSignature(_))
    ));

    // A message without any signature.
    let req = http::Request::get("https://api.example.com/")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        run(&verifier, &req, T0),
        Err(Error::MissingSignature { label: None })
    );
}

#[test]
fn checks_the_configured_label() {
    let policy = Policy {
        label: Some("other".into()),
        ..Policy::default()
    };
    let verifier = Verifier::new(policy);
    assert_eq!(
        run(&verifier, &signed(&Signing::default()), T0),
        Err(Error::MissingSignature {
            label: Some("other".into())
        })
    );
}

#[test]
fn refuses_replayed_nonces_within_the_window() {
    let policy = Policy {
        require_nonce: true,
        ..Policy::default()
    };
    let verifier = Verifier::with_nonce_cache(policy, MemoryNonceCache::new(1024));
    let with_nonce = |n| Signing {
        nonce: Some(n),
        ..Signing::default()
    };
    let req = signed(&with_nonce("n-1"));
    assert_eq!(run(&verifier, &req, T0), Ok(()));
    assert_eq!(
        run(&verifier, &req, T0 + 1),
        Err(Error::ReplayedNonce {
            nonce: "n-1".into()
        })
    );
    assert_eq!(
        run(&verifier, &req, T0 + 300),
        Err(Error::ReplayedNonce {
            nonce: "n-1".into()
        })
    );
    // Past the window the signature is stale: the nonce need not be remembered.
    assert!(matches!(
        run(&verifier, &req, T0 + 301),
        Err(Error::Stale { .. })
    ));
    assert_eq!(run(&verifier, &signed(&with_nonce("n-2")), T0 + 2), Ok(()));
    assert_eq!(
        run(&verifier, &signed(&Signing::default()), T0),
        Err(Error::MissingNonce)
    );

    // A forged signature does not burn the nonce.
    let mut forged = signed(&with_nonce("n-3"));
    *forged.uri_mut() = "https://api.example.com/v1/orders?dry=0".parse().unwrap();
    assert!(matches!(
        run(&verifier, &forged, T0),
        Err(Error::BadSignature { .. })
    ));
    assert_eq!(run(&verifier, &signed(&with_nonce("n-3")), T0), Ok(()));
}

#[test]
fn nonce_cache_is_exact_bounded_and_scoped_by_key() {
    let cache = MemoryNonceCache::new(16);
    assert_eq!(
        cache.check_and_insert("a", "n", T0, T0 + 10),
        NonceOutcome::Fresh
    );
    assert_eq!(
        cache.check_and_insert("a", "n", T0 + 10, T0 + 20),
        NonceOutcome::Replayed
    );
    assert_eq!(
        cache.check_and_insert("b", "n", T0, T0 + 10),
        NonceOutcome::Fresh
    );
    assert_eq!(
        cache.check_and_insert("a", "n", T0 + 11, T0 + 21),
        NonceOutcome::Fresh
    );

    // Fill every shard with live nonces: new ones are refused, never admitted by
    // forgetting an old one.
    let cache = MemoryNonceCache::new(16);
    let mut outcomes = Vec::new();
    for i in 0..200 {
        outcomes.push(cache.check_and_insert("k", &format!("n{i}"), T0, T0 + 100));
    }
    assert!(outcomes.contains(&NonceOutcome::Full));
    assert!(cache.len() <= 16);
    for (i, first) in outcomes.iter().enumerate() {
        let again = cache.check_and_insert("k", &format!("n{i}"), T0 + 1, T0 + 100);
        match first {
            NonceOutcome::Fresh => assert_eq!(again, NonceOutcome::Replayed),
            _ => assert_ne!(again, NonceOutcome::Fresh, "n{i} admitted while full"),
        }
    }
    // Once the horizon passes, the space is reclaimed.
    assert_eq!(
        cache.check_and_insert("k", "later", T0 + 101, T0 + 200),
        NonceOutcome::Fresh
    );
}

#[test]
fn nonce_cache_admits_one_of_concurrent_uses() {
    let cache = Arc::new(MemoryNonceCache::new(1024));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cache = Arc::clone(&cache);
            std::thread::spawn(move || {
                (0..100)
                    .filter(|i| {
                        cache.check_and_insert("k", &format!("n{i}"), T0, T0 + 60)
                            == NonceOutcome::Fresh
                    })
                    .count()
            })
        })
        .collect();
    let fresh: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(fresh, 100);
}

#[test]
fn streaming_bodies_are_left_to_the_caller() {
    let verifier = Verifier::new(Policy::default());
    let req = signed(&Signing::default());
    let msg = Message::from_request(&req);
    let sigs = Signatures::parse(req.headers()).unwrap();
    let resolver_keys = keys();
    let resolver = FnResolver::new(|id: Option<&str>| resolver_keys.get(id?));
    let ok = verifier.verify(&msg, &sigs, &resolver, T0).unwrap();
    assert!(ok.body_unchecked());
    assert_eq!(ok.keyid(), Some("app-1"));
    let mut check = ContentDigestCheck::from_headers(req.headers()).unwrap();
    for chunk in req.body().chunks(3) {
        check.update(chunk);
    }
    assert_eq!(check.finish(), Ok(()));
}
