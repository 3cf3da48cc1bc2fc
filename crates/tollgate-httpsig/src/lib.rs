//! HTTP message signatures (RFC 9421) and `Content-Digest` (RFC 9530) for the gateway.
//!
//! A request is viewed as a [`Message`] (borrowing `http` parts, the authority and
//! optionally the body); its `Signature-Input`/`Signature` fields parse into
//! [`Signatures`] without copying strings; a [`Verifier`] applies the [`Policy`]
//! (covered components, `created` window, `expires`, `keyid`), resolves the key through a
//! [`KeyResolver`], checks the signature over the [`signature_base`] and the body's
//! digest, and records the nonce in a [`NonceCache`].
//!
//! ```
//! use tollgate_httpsig::{
//!     Algorithm, ComponentId, Message, Policy, SignatureInput, Signatures, SigningKey,
//!     Verifier, content_digest, DigestAlgorithm,
//! };
//!
//! let key = SigningKey::hmac_sha256(b"a shared secret of enough length").unwrap();
//! let mut req = http::Request::post("https://api.example.com/v1/orders?dry=1")
//!     .body(&b"{}"[..])
//!     .unwrap();
//! let digest = content_digest(req.body(), DigestAlgorithm::Sha256);
//! req.headers_mut().insert("content-digest", digest.parse().unwrap());
//!
//! let components = ["@method", "@authority", "@path", "@query", "content-digest"]
//!     .map(|c| ComponentId::new(c).unwrap())
//!     .to_vec();
//! let input = SignatureInput::new("sig1", components)
//!     .and_then(|i| i.with_created(1_700_000_000))
//!     .and_then(|i| i.with_keyid("app-42"))
//!     .unwrap();
//! let signed = tollgate_httpsig::sign(&Message::from_request(&req), &input, &key).unwrap();
//! req.headers_mut().insert("signature-input", signed.signature_input.parse().unwrap());
//! req.headers_mut().insert("signature", signed.signature.parse().unwrap());
//!
//! // The gateway's side.
//! let keys = std::collections::HashMap::from([("app-42".to_owned(), key.verifying_key().unwrap())]);
//! let verifier = Verifier::new(Policy::default());
//! let msg = Message::from_request(&req).with_body(req.body());
//! let sigs = Signatures::parse(req.headers()).unwrap();
//! let ok = verifier.verify(&msg, &sigs, &keys, 1_700_000_010).unwrap();
//! assert_eq!(ok.keyid(), Some("app-42"));
//! assert_eq!(ok.algorithm(), Algorithm::HmacSha256);
//! ```
//!
//! Pure and synchronous: no IO, and the clock is an argument (`now`, Unix seconds).

mod component;
mod digest;
mod error;
mod input;
mod keys;
mod message;
mod policy;
pub mod raw;
mod signature;
mod verifier;

pub use component::{ComponentId, ComponentParam};
pub use digest::{ContentDigestCheck, DigestAlgorithm, content_digest, verify_content_digest};
pub use error::Error;
pub use input::{SigParam, SignatureInput, Signatures};
pub use keys::{Algorithm, FnResolver, KeyResolver, SigningKey, VerifyingKey};
pub use message::Message;
pub use policy::{MemoryNonceCache, NonceCache, NonceOutcome, Policy};
pub use signature::{Signed, sign, signature_base, verify_signature};
pub use verifier::{Verified, Verifier};
