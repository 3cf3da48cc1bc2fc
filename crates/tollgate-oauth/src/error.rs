//! The crate's one error type, with the stable code each variant answers with.

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong. Token variants are distinct so the gateway can answer each
/// with its own 401 problem type; messages never contain token contents or secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---------------------------------------------------------------- tokens (JWS / JWT)
    /// Not a compact JWS, bad base64url, bad JSON, a claim of the wrong JSON type, a `crit`
    /// header, or a token over the size limit.
    #[error("malformed token: {0}")]
    Malformed(&'static str),

    /// `alg` is `none`, an HMAC algorithm, or anything but `EdDSA`/`Ed25519` and `ES256`.
    #[error("unsupported token algorithm")]
    UnsupportedAlg,

    /// `alg` is supported but is not the algorithm of the key the token names.
    #[error("token algorithm does not match its key")]
    AlgMismatch,

    /// The `kid` is not in the verifier's key set (or the token names no key and the set
    /// has no single candidate).
    #[error("token signed by an unknown key")]
    UnknownKey,

    /// The signature does not verify under the named key: the token was changed or forged.
    #[error("token signature does not verify")]
    BadSignature,

    /// The `typ` header is not the one this kind of token must carry.
    #[error("wrong token type")]
    WrongType,

    /// `iss` is not the expected issuer.
    #[error("wrong token issuer")]
    WrongIssuer,

    /// `aud` does not contain the expected audience.
    #[error("wrong token audience")]
    WrongAudience,

    /// `exp` has passed, leeway included.
    #[error("token expired")]
    Expired,

    /// `nbf` or `iat` lies in the future beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,

    /// A required claim is absent.
    #[error("token lacks the {0} claim")]
    MissingClaim(&'static str),

    /// A claim is present but its value is not acceptable (named in the message).
    #[error("invalid {0} claim")]
    InvalidClaim(&'static str),

    /// A client assertion's `exp` lies further ahead than the verifier allows.
    #[error("client assertion lives too long")]
    LifetimeTooLong,

    /// A client assertion's `jti` was seen before.
    #[error("client assertion replayed")]
    Replayed,

    /// The access token is bound to a certificate (`cnf.x5t#S256`) other than the one
    /// presented, or none was presented.
    #[error("token is bound to another client certificate")]
    CertificateMismatch,

    // ---------------------------------------------------------------- token endpoint
    /// The request is malformed (RFC 6749 §5.2 `invalid_request`).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),

    /// Client authentication failed or is malformed (RFC 6749 §5.2 `invalid_client`).
    #[error("invalid client: {0}")]
    InvalidClient(&'static str),

    /// A `private_key_jwt` client that is unknown or has no registered keys.
    #[error("unknown client")]
    UnknownClient,

    /// `grant_type` is not `client_credentials`.
    #[error("unsupported grant type")]
    UnsupportedGrantType,

    /// A requested scope is malformed or not granted to the client.
    #[error("invalid scope {0:?}")]
    InvalidScope(String),

    // ---------------------------------------------------------------- keys
    /// A JWK Set is not an object with a non-empty `keys` array, or repeats a `kid`.
    #[error("invalid jwks: {0}")]
    InvalidJwks(&'static str),

    /// One key of a JWK Set is unusable; `index` is its position in `keys`.
    #[error("key {index}: {reason}")]
    InvalidJwk { index: usize, reason: &'static str },

    /// A private key could not be read or generated, or signing failed.
    #[error("key error: {0}")]
    Key(&'static str),

    /// The keyring refused (no active key, wrong algorithm, …).
    #[error("keyring: {0}")]
    Keyring(String),

    /// Rotation overlap shorter than the longest token lifetime plus leeway.
    #[error("rotation overlap {overlap} is shorter than the token lifetime plus leeway ({needed})")]
    OverlapTooShort {
        overlap: time::Duration,
        needed: time::Duration,
    },
}

impl From<tollgate_keyring::Error> for Error {
    fn from(e: tollgate_keyring::Error) -> Self {
        Self::Keyring(e.to_string())
    }
}

/// The RFC 6749 §5.2 / RFC 6750 §3.1 error code a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// RFC 6749 §5.2.
    InvalidRequest,
    /// RFC 6749 §5.2: answered with 401 and `WWW-Authenticate` when the client used
    /// `Authorization`.
    InvalidClient,
    /// RFC 6749 §5.2.
    InvalidGrant,
    /// RFC 6749 §5.2.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §5.2.
    InvalidScope,
    /// RFC 6750 §3.1: a bearer token the resource server refuses.
    InvalidToken,
}

impl OAuthErrorCode {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidToken => "invalid_token",
        }
    }
}

impl Error {
    /// A stable kebab-case code per variant: the suffix of the problem `type` the gateway
    /// answers with and the `reason` field of logs. Token failures share the `token-`
    /// prefix.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "token-malformed",
            Self::UnsupportedAlg => "token-unsupported-alg",
            Self::AlgMismatch => "token-alg-mismatch",
            Self::UnknownKey => "token-unknown-key",
            Self::BadSignature => "token-bad-signature",
            Self::WrongType => "token-wrong-type",
            Self::WrongIssuer => "token-wrong-issuer",
            Self::WrongAudience => "token-wrong-audience",
            Self::Expired => "token-expired",
            Self::NotYetValid => "token-not-yet-valid",
            Self::MissingClaim(_) => "token-missing-claim",
            Self::InvalidClaim(_) => "token-invalid-claim",
            Self::LifetimeTooLong => "token-lifetime-too-long",
            Self::Replayed => "token-replayed",
            Self::CertificateMismatch => "token-certificate-mismatch",
            Self::InvalidRequest(_) => "invalid-request",
            Self::InvalidClient(_) => "invalid-client",
            Self::UnknownClient => "unknown-client",
            Self::UnsupportedGrantType => "unsupported-grant-type",
            Self::InvalidScope(_) => "invalid-scope",
            Self::InvalidJwks(_) => "invalid-jwks",
            Self::InvalidJwk { .. } => "invalid-jwk",
            Self::Key(_) => "key",
            Self::Keyring(_) => "keyring",
            Self::OverlapTooShort { .. } => "overlap-too-short",
        }
    }

    /// The OAuth error code for this failure: what the token endpoint answers when a
    /// client's request or authentication fails (token errors of a client assertion are
    /// `invalid_client`), and `invalid_token` for an access token the gateway refuses.
    /// `None` for server-side failures (keys, keyring), which are 500s.
    pub const fn oauth_error(&self, at_token_endpoint: bool) -> Option<OAuthErrorCode> {
        Some(match self {
            Self::InvalidRequest(_) => OAuthErrorCode::InvalidRequest,
            Self::UnsupportedGrantType => OAuthErrorCode::UnsupportedGrantType,
            Self::InvalidScope(_) => OAuthErrorCode::InvalidScope,
            Self::InvalidClient(_) | Self::UnknownClient => OAuthErrorCode::InvalidClient,
            Self::Malformed(_)
            | Self::UnsupportedAlg
            | Self::AlgMismatch
            | Self::UnknownKey
            | Self::BadSignature
            | Self::WrongType
            | Self::WrongIssuer
            | Self::WrongAudience
            | Self::Expired
            | Self::NotYetValid
            | Self::MissingClaim(_)
            | Self::InvalidClaim(_)
            | Self::LifetimeTooLong
            | Self::Replayed
            | Self::CertificateMismatch => {
                if at_token_endpoint {
                    OAuthErrorCode::InvalidClient
                } else {
                    OAuthErrorCode::InvalidToken
                }
            }
            Self::InvalidJwks(_)
            | Self::InvalidJwk { .. }
            | Self::Key(_)
            | Self::Keyring(_)
            | Self::OverlapTooShort { .. } => return None,
        })
    }
}
