//! Cost of verifying one Ed25519-signed gateway request: parsing `Signature-Input` and
//! `Signature`, building the signature base, and the Ed25519 check — alone, and through
//! the `Verifier` (policy + body digest). Criterion gives the means; an hdrhistogram of
//! per-request latency gives p50/p99.

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use hdrhistogram::Histogram;
use tollgate_httpsig::{
    Algorithm, ComponentId, DigestAlgorithm, Message, Policy, SignatureInput, Signatures,
    SigningKey, Verifier, content_digest, sign, signature_base, verify_signature,
};

/// RFC 9421 B.1.4's Ed25519 test key.
const ED25519_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----";

const CREATED: i64 = 1_750_000_000;

/// A typical API call through the gateway: JSON POST with a query, the usual fields, and
/// a signature over method, authority, path, query, content type and body digest.
fn request(key: &SigningKey) -> http::Request<Vec<u8>> {
    let body = br#"{"sku":"A-1042","quantity":3,"ship_to":{"country":"FR","postcode":"75011"},"notes":"leave at the door"}"#.to_vec();
    let mut req = http::Request::post("/v1/orders?region=eu&dry_run=false")
        .header("host", "api.example.com")
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("accept", "application/json")
        .header("user-agent", "tollgate-bench/1.0")
        .header("x-request-id", "01J9Z6Q1V3W8K2M4N6P8R0T2V4")
        .body(body)
        .unwrap();
    let digest = content_digest(req.body(), DigestAlgorithm::Sha256);
    req.headers_mut()
        .insert("content-digest", digest.parse().unwrap());
    let components = [
        "@method",
        "@authority",
        "@path",
        "@query",
        "content-type",
        "content-digest",
    ]
    .map(|c| ComponentId::new(c).unwrap())
    .to_vec();
    let input = SignatureInput::new("sig1", components)
        .and_then(|i| i.with_created(CREATED))
        .and_then(|i| i.with_keyid("app-7f3a9c"))
        .and_then(|i| i.with_nonce("x0TqfK2mJwR4sHnV"))
        .unwrap();
    let signed = sign(&Message::from_request(&req), &input, key).unwrap();
    req.headers_mut()
        .insert("signature-input", signed.signature_input.parse().unwrap());
    req.headers_mut()
        .insert("signature", signed.signature.parse().unwrap());
    req
}

fn benches(c: &mut Criterion) {
    let signing =
        SigningKey::from_private_key_pem(Algorithm::Ed25519, ED25519_PKCS8.as_bytes()).unwrap();
    let key = signing.verifying_key().unwrap();
    let req = request(&signing);

    c.bench_function("parse_signature_fields", |b| {
        b.iter(|| black_box(Signatures::parse(black_box(req.headers())).unwrap()))
    });

    let mut base = String::with_capacity(1024);
    c.bench_function("signature_base", |b| {
        let sigs = Signatures::parse(req.headers()).unwrap();
        let (input, _) = sigs.first().unwrap();
        let msg = Message::from_request(&req);
        b.iter(|| {
            signature_base(black_box(&msg), input, &mut base).unwrap();
            black_box(base.len())
        })
    });

    // The brief's unit: signature base + Ed25519 verification of one request,
    // including parsing its signature fields.
    c.bench_function("ed25519_verify_request", |b| {
        b.iter(|| {
            let msg = Message::from_request(black_box(&req));
            let sigs = Signatures::parse(req.headers()).unwrap();
            let (input, sig) = sigs.first().unwrap();
            verify_signature(&msg, input, sig, &key).unwrap();
        })
    });

    // What the gateway runs: policy, key lookup, signature, body digest (no replay cache:
    // the same nonce would be refused on the second iteration).
    let verifier = Verifier::new(Policy::default());
    let keys = std::collections::HashMap::from([("app-7f3a9c".to_owned(), key.clone())]);
    c.bench_function("verifier_ed25519_with_body_digest", |b| {
        b.iter(|| {
            let msg = Message::from_request(black_box(&req)).with_body(req.body());
            let sigs = Signatures::parse(req.headers()).unwrap();
            black_box(
                verifier
                    .verify(&msg, &sigs, &keys, CREATED + 5)
                    .unwrap()
                    .label()
                    .len(),
            )
        })
    });
}

/// Per-request latency of `ed25519_verify_request` (one request per sample: an Ed25519
/// verification is far above the timer's resolution).
fn histogram() {
    let signing =
        SigningKey::from_private_key_pem(Algorithm::Ed25519, ED25519_PKCS8.as_bytes()).unwrap();
    let key = signing.verifying_key().unwrap();
    let req = request(&signing);
    let mut hist = Histogram::<u64>::new(3).unwrap();
    for _ in 0..20_000 {
        let start = Instant::now();
        let msg = Message::from_request(black_box(&req));
        let sigs = Signatures::parse(req.headers()).unwrap();
        let (input, sig) = sigs.first().unwrap();
        verify_signature(&msg, input, sig, &key).unwrap();
        hist.record(start.elapsed().as_nanos() as u64).unwrap();
    }
    println!(
        "ed25519_verify_request per request: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    histogram();
}
