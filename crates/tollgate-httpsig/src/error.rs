//! The crate's one error type, with a stable code per variant for the gateway's problem
//! table.

/// Why a message could not be signed or a signature was refused.
///
/// The gateway maps [`Error::code`] to an HTTP status and a problem `type`; the variants
/// carry what a log line or a problem `detail` needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message has no `Signature-Input` or no `Signature` field, or not the label
    /// asked for.
    #[error("missing signature{}", label_suffix(.label))]
    MissingSignature {
        /// The label that was looked for, if one was.
        label: Option<String>,
    },
    /// `Signature-Input` is not a valid dictionary of signature parameters.
    #[error("malformed Signature-Input: {0}")]
    MalformedSignatureInput(String),
    /// `Signature` is not a valid dictionary of byte sequences.
    #[error("malformed Signature: {0}")]
    MalformedSignature(String),
    /// A covered component cannot be derived under RFC 9421 (unknown derived
    /// component, unknown or conflicting parameters, trailers).
    #[error("unsupported component {component}: {reason}")]
    UnsupportedComponent {
        /// The component identifier as serialized.
        component: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A covered component is not in the message (absent field, absent query
    /// parameter, `@status` of a request, …), so no signature base can be built.
    #[error("covered component {component} is not in the message: {reason}")]
    ComponentNotInMessage {
        /// The component identifier as serialized.
        component: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// The policy requires a component that the signature does not cover.
    #[error("signature does not cover required component {0}")]
    MissingCoveredComponent(String),
    /// The signature names no `keyid` and the policy or the key resolver needs one.
    #[error("signature has no keyid")]
    MissingKeyId,
    /// No key is known under the signature's `keyid`.
    #[error("unknown keyid {0:?}")]
    UnknownKeyId(String),
    /// The signature's `alg` parameter names an algorithm this crate does not implement.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The signature's `alg` parameter differs from the algorithm of the resolved key.
    #[error("algorithm mismatch: signature says {declared}, key is {key}")]
    AlgorithmMismatch {
        /// The `alg` parameter.
        declared: String,
        /// The key's algorithm.
        key: &'static str,
    },
    /// The signature does not verify over the signature base.
    #[error("signature {label} does not verify")]
    BadSignature {
        /// The signature's label.
        label: String,
    },
    /// `Content-Digest` is malformed or names no algorithm this crate implements.
    #[error("invalid Content-Digest: {0}")]
    InvalidDigest(String),
    /// The body does not hash to the `Content-Digest` value (a tampered body).
    #[error("body does not match Content-Digest {algorithm}")]
    DigestMismatch {
        /// The digest algorithm that disagreed (`sha-256` or `sha-512`).
        algorithm: &'static str,
    },
    /// The signature has no `created` parameter and the policy requires one.
    #[error("signature has no created parameter")]
    MissingCreated,
    /// `created` is later than `now` plus the allowed clock skew.
    #[error("signature created at {created} is in the future (now {now})")]
    CreatedInFuture {
        /// The `created` parameter (Unix seconds).
        created: i64,
        /// The verifier's time (Unix seconds).
        now: i64,
    },
    /// `created` is older than the policy's maximum age.
    #[error("signature created at {created} is older than {max_age} s (now {now})")]
    Stale {
        /// The `created` parameter (Unix seconds).
        created: i64,
        /// The verifier's time (Unix seconds).
        now: i64,
        /// The policy's maximum age in seconds.
        max_age: u64,
    },
    /// `expires` has passed.
    #[error("signature expired at {expires} (now {now})")]
    Expired {
        /// The `expires` parameter (Unix seconds).
        expires: i64,
        /// The verifier's time (Unix seconds).
        now: i64,
    },
    /// The policy requires a `nonce` and the signature has none.
    #[error("signature has no nonce")]
    MissingNonce,
    /// The nonce was already seen for this key within the replay window.
    #[error("nonce {nonce:?} was already used")]
    ReplayedNonce {
        /// The replayed nonce.
        nonce: String,
    },
    /// The replay cache is full of live nonces; refusing is the only exact answer.
    #[error("nonce cache is full")]
    NonceCacheFull,
    /// A key could not be read or does not suit the algorithm.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A value given to the signer cannot be serialized (label, parameter, component).
    #[error("invalid signature parameters: {0}")]
    InvalidParameters(String),
    /// A raw HTTP message could not be parsed.
    #[error("invalid HTTP message: {0}")]
    InvalidMessage(String),
    /// The crypto library failed where it should not (signing, randomness).
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}

fn label_suffix(label: &Option<String>) -> String {
    match label {
        Some(l) => format!(" {l:?}"),
        None => String::new(),
    }
}

impl Error {
    /// A stable, lowercase code for the gateway's problem table (`type` suffix and
    /// metrics label). Codes never change once released.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingSignature { .. } => "signature-missing",
            Error::MalformedSignatureInput(_) | Error::MalformedSignature(_) => {
                "signature-malformed"
            }
            Error::UnsupportedComponent { .. } => "signature-component-unsupported",
            Error::ComponentNotInMessage { .. } => "signature-component-absent",
            Error::MissingCoveredComponent(_) => "signature-component-required",
            Error::MissingKeyId => "signature-keyid-missing",
            Error::UnknownKeyId(_) => "signature-keyid-unknown",
            Error::UnsupportedAlgorithm(_) => "signature-algorithm-unsupported",
            Error::AlgorithmMismatch { .. } => "signature-algorithm-mismatch",
            Error::BadSignature { .. } => "signature-invalid",
            Error::InvalidDigest(_) => "content-digest-invalid",
            Error::DigestMismatch { .. } => "content-digest-mismatch",
            Error::MissingCreated => "signature-created-missing",
            Error::CreatedInFuture { .. } => "signature-created-future",
            Error::Stale { .. } => "signature-stale",
            Error::Expired { .. } => "signature-expired",
            Error::MissingNonce => "signature-nonce-missing",
            Error::ReplayedNonce { .. } => "signature-replayed",
            Error::NonceCacheFull => "signature-nonce-cache-full",
            Error::InvalidKey(_) => "key-invalid",
            Error::InvalidParameters(_) => "signature-parameters-invalid",
            Error::InvalidMessage(_) => "message-invalid",
            Error::Crypto(_) => "crypto-failure",
        }
    }

    /// Whether the fault lies with the client's message (true) or with this side's
    /// configuration or state (false: bad key material, full replay cache, crypto).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::InvalidKey(_) | Error::NonceCacheFull | Error::Crypto(_)
        )
    }
}
