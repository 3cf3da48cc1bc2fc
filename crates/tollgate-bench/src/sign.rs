//! Request bytes for the load generator: a plain request, or many RFC 9421 ed25519
//! signed requests with unique nonces made before the run (the gateway refuses a
//! replayed nonce), and the ed25519 key pair the harness registers.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use tollgate_httpsig::{Algorithm, ComponentId, Message, SignatureInput, SigningKey};

/// The head of a GET request: request line, `Host`, extra header lines.
pub fn plain(host: &str, path: &str, headers: &[String]) -> Vec<u8> {
    let mut out = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// `count` signed GET requests, each with its own nonce, made on `threads` threads.
pub fn signed(
    host: &str,
    path: &str,
    headers: &[String],
    key_pem: &[u8],
    keyid: &str,
    count: usize,
    threads: usize,
) -> Result<Vec<Vec<u8>>, String> {
    let key =
        SigningKey::from_private_key_pem(Algorithm::Ed25519, key_pem).map_err(|e| e.to_string())?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs() as i64;
    // A per-run prefix keeps nonces unique across runs against one gateway.
    let run = created as u64 ^ u64::from(std::process::id()) << 32;
    let threads = threads.max(1);
    let per = count.div_ceil(threads);
    let key = &key;
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let lo = t * per;
                    let hi = ((t + 1) * per).min(count);
                    (lo..hi)
                        .map(|i| {
                            one(
                                host,
                                path,
                                headers,
                                key,
                                keyid,
                                created,
                                &format!("{run:016x}-{i:x}"),
                            )
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for p in parts {
            all.extend(
                p.join()
                    .map_err(|_| "a signing thread panicked".to_owned())??,
            );
        }
        Ok(all)
    })
}

fn one(
    host: &str,
    path: &str,
    headers: &[String],
    key: &SigningKey,
    keyid: &str,
    created: i64,
    nonce: &str,
) -> Result<Vec<u8>, String> {
    let req = http::Request::get(path)
        .header(http::header::HOST, host)
        .body(())
        .map_err(|e| e.to_string())?;
    let components = ["@method", "@authority", "@path", "@query"]
        .map(|c| ComponentId::new(c).map_err(|e| e.to_string()))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let input = SignatureInput::new("sig1", components)
        .and_then(|i| i.with_created(created))
        .and_then(|i| i.with_keyid(keyid))
        .and_then(|i| i.with_nonce(nonce))
        .map_err(|e| e.to_string())?;
    let signed = tollgate_httpsig::sign(
        &Message::from_request(&req).with_scheme("http"),
        &input,
        key,
    )
    .map_err(|e| e.to_string())?;
    let mut all = headers.to_vec();
    all.push(format!("Signature-Input: {}", signed.signature_input));
    all.push(format!("Signature: {}", signed.signature));
    Ok(plain(host, path, &all))
}

/// A new ed25519 key pair as PEM: (PKCS#8 private key, SPKI public key).
pub fn keygen() -> Result<(String, String), String> {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| e.to_string())?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|e| e.to_string())?;
    // SubjectPublicKeyInfo for id-Ed25519 (RFC 8410): a fixed prefix, then the 32 bytes.
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    Ok((pem("PRIVATE KEY", doc.as_ref()), pem("PUBLIC KEY", &spki)))
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_verify_under_the_gateway_policy() {
        let (private, public) = keygen().unwrap();
        let reqs = signed("127.0.0.1:1", "/a/b", &[], private.as_bytes(), "k1", 3, 2).unwrap();
        assert_eq!(reqs.len(), 3);
        assert_ne!(reqs[0], reqs[1], "unique nonces");
        let vk = tollgate_httpsig::VerifyingKey::from_public_key_pem(
            Algorithm::Ed25519,
            public.as_bytes(),
        )
        .unwrap();
        let keys = std::collections::HashMap::from([("k1".to_owned(), vk)]);
        let verifier = tollgate_httpsig::Verifier::new(tollgate_httpsig::Policy {
            require_nonce: true,
            ..tollgate_httpsig::Policy::default()
        });
        for raw in &reqs {
            let (parts, _) = tollgate_httpsig::raw::parse_request(raw).unwrap();
            let sigs = tollgate_httpsig::Signatures::parse(&parts.headers).unwrap();
            let msg = Message::request(&parts).with_scheme("http");
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            verifier.verify(&msg, &sigs, &keys, now).unwrap();
        }
    }
}
