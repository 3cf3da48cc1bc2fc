//! The pure core of OAuth 2.0 client credentials for the marketplace and its gateway:
//! access tokens, their verification on the hot path, JWKS, client authentication, key
//! rotation, the token endpoint's documents, and the gateway assertion upstreams verify.
//!
//! # Shape
//!
//! - [`AccessClaims`] / [`issue_access_token`] / [`AccessTokenVerifier`]: RFC 9068 JWT
//!   access tokens (`typ: at+jwt`). The gateway builds one verifier per snapshot from a
//!   [`KeySet`] and calls [`AccessTokenVerifier::verify`] per request.
//! - [`GatewayAssertion`] / [`GatewayAssertionVerifier`]: the JWT the gateway attaches to
//!   forwarded calls (`typ: tollgate-assertion+jwt`), signed with its own key set; the
//!   verifier is what an upstream runs.
//! - [`Jwk`], [`Jwks`], [`KeySet`]: RFC 7517/8037 keys — `OKP`/`Ed25519` and
//!   `EC`/`P-256` — rendered, parsed strictly, and parsed once more into ready-to-verify
//!   keys.
//! - [`Signer`], [`SigningKey`], [`KeyringSigner`]: what signs — a key in memory, or the
//!   active key of a keyring purpose. [`rotation`] maps the keyring's pending / active /
//!   retiring / retired states onto signing and published key sets.
//! - [`TokenRequest`], [`parse_client_secret_basic`], [`ClientAssertionVerifier`] and
//!   [`JtiStore`]: the token endpoint's input and client authentication
//!   (`client_secret_basic`, `private_key_jwt`, or a client id for mTLS).
//! - [`AuthorizationServerMetadata`], [`TokenResponse`], [`ErrorResponse`],
//!   [`IntrospectionResponse`], [`RevocationRequest`]: RFC 8414, 6749 §5, 7662, 7009.
//! - [`Error`]: one enum; each token failure is its own variant with a stable
//!   [`Error::code`], so the gateway answers each with its own 401 problem type.
//!
//! # Why compact JWS by hand
//!
//! JWS here is implemented directly on aws-lc-rs, serde_json and base64 rather than with
//! `jsonwebtoken` 10 (evaluated with its `aws_lc_rs` backend, which supports `EdDSA` and
//! `ES256`, cannot express `alg: none`, and refuses a key of the wrong family): it has no
//! `typ` check (so a second header parse per token), no `iat`-in-the-future check, and
//! per verification it parses the header twice into owned strings, boxes a verifier with
//! a cloned key, re-parses the public key, and deserializes the claims twice. Only two
//! algorithms are needed, the format is three base64url parts, and the checks that matter
//! are the ones any caller must write anyway; doing it here keeps verification to a stack
//! decode, one signature check over a pre-parsed key and one borrowed JSON parse.
//!
//! # Example
//!
//! ```
//! use time::macros::datetime;
//! use tollgate_core::{apikey::KeyMode, AppId, OAuthClientId, OrgId};
//! use tollgate_oauth::{AccessClaims, AccessTokenVerifier, Alg, Jwks, KeySet, SigningKey};
//!
//! let key = SigningKey::generate(Alg::EdDSA, "k1")?;
//! let keys = KeySet::new(&Jwks { keys: vec![key.public_jwk()] })?;
//! let verifier = AccessTokenVerifier::new(keys, "https://market.example", "https://gw.example");
//!
//! let now = datetime!(2026-01-01 00:00 UTC);
//! let claims = AccessClaims::new(OAuthClientId::new(), AppId::new(), OrgId::new(),
//!     KeyMode::Live, "read", now, time::Duration::minutes(5))?;
//! let token = claims.issue(&key, "https://market.example", "https://gw.example")?;
//! assert_eq!(verifier.verify(&token, now)?, claims);
//! # Ok::<(), tollgate_oauth::Error>(())
//! ```
//!
//! # Invariants
//!
//! Pure: no IO, no async, and no clock reads — `now` is always an argument (even a `jti`
//! takes its time from it). All cryptography is aws-lc-rs. Nothing a token says is
//! trusted before its signature verifies under a key the caller supplied; keys named or
//! embedded in a token (`jku`, `jwk`, `x5u`, `x5c`) are never used.

mod access;
mod assertion;
mod b64;
mod claims;
mod client_auth;
mod error;
mod jwk;
mod jws;
mod keys;
mod metadata;
pub mod mtls;
pub mod rotation;

pub use access::{ACCESS_TOKEN_TYP, AccessClaims, AccessTokenVerifier, issue_access_token};
pub use assertion::{
    AuthMethod, DEFAULT_ASSERTION_LIFETIME, GATEWAY_ASSERTION_TYP, GatewayAssertion,
    GatewayAssertionVerifier,
};
pub use claims::{CertThumbprint, DEFAULT_LEEWAY, check_scope, grant_scope, new_jti};
pub use client_auth::{
    CLIENT_CREDENTIALS, ClientAssertionVerifier, ClientAuth, ClientSecretBasic,
    DEFAULT_MAX_ASSERTION_LIFETIME, Form, JWT_BEARER_ASSERTION_TYPE, JtiStore, TokenRequest,
    VerifiedClientAssertion, form_decode, parse_client_secret_basic,
};
pub use error::{Error, OAuthErrorCode, Result};
pub use jwk::{Jwk, Jwks, KeySet};
pub use jws::MAX_TOKEN_LEN;
pub use keys::{Alg, KeyringSigner, PublicKey, SIGNATURE_LEN, Signer, SigningKey};
pub use metadata::{
    AuthorizationServerMetadata, ErrorResponse, IntrospectionResponse, RevocationRequest,
    TOKEN_ENDPOINT_AUTH_METHODS, TokenResponse, TokenTypeHint,
};
