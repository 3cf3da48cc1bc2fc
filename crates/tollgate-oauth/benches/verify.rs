//! Bench of one access-token verification on the gateway's hot path, EdDSA and ES256,
//! against a key set of three keys (a rotation in progress). Criterion gives the mean; an
//! HdrHistogram of single calls gives p50/p99/p99.9. A breakdown shows the signature check
//! alone, to see what the parsing around it costs.

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey};
use criterion::Criterion;
use hdrhistogram::Histogram;
use time::macros::datetime;
use tollgate_core::apikey::KeyMode;
use tollgate_core::{AppId, OAuthClientId, OrgId};
use tollgate_oauth::{AccessClaims, AccessTokenVerifier, Alg, Jwks, KeySet, PublicKey, SigningKey};

const ISS: &str = "https://market.example";
const AUD: &str = "https://gw.example";

struct Case {
    name: &'static str,
    verifier: AccessTokenVerifier,
    token: String,
    key: ParsedPublicKey,
}

fn case(name: &'static str, alg: Alg) -> Case {
    // The signing key is the last of three, as during a rotation with a pending key.
    let keys: Vec<SigningKey> = ["old", "pending", "current"]
        .iter()
        .map(|kid| SigningKey::generate(alg, *kid).unwrap())
        .collect();
    let jwks = Jwks {
        keys: keys.iter().map(SigningKey::public_jwk).collect(),
    };
    let verifier = AccessTokenVerifier::new(KeySet::new(&jwks).unwrap(), ISS, AUD);
    let now = datetime!(2026-01-01 00:00 UTC);
    let claims = AccessClaims::new(
        OAuthClientId::new(),
        AppId::new(),
        OrgId::new(),
        KeyMode::Live,
        "orders:read orders:write",
        now,
        time::Duration::minutes(5),
    )
    .unwrap();
    let signer = &keys[2];
    let token = claims.issue(signer, ISS, AUD).unwrap();
    let key = match signer.public_key() {
        PublicKey::Ed25519(x) => ParsedPublicKey::new(&ED25519, x).unwrap(),
        PublicKey::P256 { x, y } => {
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, [&[4u8][..], &x, &y].concat()).unwrap()
        }
    };
    Case {
        name,
        verifier,
        token,
        key,
    }
}

fn main() {
    let now = datetime!(2026-01-01 00:01 UTC);
    let cases = [case("eddsa", Alg::EdDSA), case("es256", Alg::Es256)];
    println!("token length: {} bytes", cases[0].token.len());

    let mut criterion = Criterion::default().configure_from_args();
    for c in &cases {
        criterion.bench_function(&format!("verify_access_token/{}", c.name), |b| {
            b.iter(|| c.verifier.verify(black_box(&c.token), now).unwrap())
        });
    }
    criterion.final_summary();

    for c in &cases {
        // Single calls, timed one by one.
        let mut hist = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        let calls = 20_000u32;
        for _ in 0..2_000 {
            black_box(c.verifier.verify(black_box(&c.token), now).unwrap());
        }
        let started = Instant::now();
        for _ in 0..calls {
            let t0 = Instant::now();
            black_box(c.verifier.verify(black_box(&c.token), now).unwrap());
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1_000.0;
        println!(
            "histogram verify_access_token/{} ({calls} calls, {:.1} s): mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs",
            c.name,
            started.elapsed().as_secs_f64(),
            hist.mean() / 1_000.0,
            us(0.50),
            us(0.99),
            us(0.999),
            hist.max() as f64 / 1_000.0
        );

        // The signature check alone over the same input, timed the same way: the
        // difference of the medians is what parsing and the claim checks cost.
        let (input, sig) = c.token.rsplit_once('.').unwrap();
        let sig = base64_decode(sig);
        let mut alone = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
        for _ in 0..calls {
            let t0 = Instant::now();
            c.key.verify_sig(black_box(input.as_bytes()), &sig).unwrap();
            alone.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5) as f64 / 1_000.0;
        println!(
            "breakdown verify_access_token/{}: p50 signature alone {:.2} µs, p50 parsing and checks {:.2} µs",
            c.name,
            p50(&alone),
            p50(&hist) - p50(&alone)
        );
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}
