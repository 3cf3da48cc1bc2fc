//! The token endpoint's input: `application/x-www-form-urlencoded` bodies, the client
//! credentials token request, and client authentication by `client_secret_basic`
//! (RFC 6749 §2.3.1) or `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9).

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::b64::{self, Str, numeric_date};
use crate::claims::{self, DEFAULT_LEEWAY};
use crate::jws::{self, TypRule};
use crate::{Error, KeySet, Result};

/// `client_assertion_type` for `private_key_jwt` (RFC 7523 §2.2).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The one grant this authorization server supports.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// Decodes one `application/x-www-form-urlencoded` name or value: `+` is a space, `%XX` a
/// byte, and the result must be UTF-8. Unlike lenient decoders, a `%` not followed by two
/// hex digits is an error rather than passed through. Borrows when nothing is encoded.
pub fn form_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                // `from_str_radix` would accept a sign.
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// A parsed form body. Following RFC 6749 §3.1–3.2, a parameter with an empty value counts
/// as absent and a parameter given twice makes the request invalid.
#[derive(Debug)]
pub struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    /// Parses `body`.
    pub fn parse(body: &'a str) -> Result<Self> {
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        for piece in body.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let bad = Error::InvalidRequest("body is not valid form-urlencoded utf-8");
            let name = form_decode(name).ok_or(bad.clone())?;
            let value = form_decode(value).ok_or(bad)?;
            if value.is_empty() {
                continue;
            }
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(Error::InvalidRequest("a parameter is repeated"));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs })
    }

    /// The value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &**v)
    }
}

/// Credentials from `Authorization: Basic` (RFC 6749 §2.3.1). The secret is cleared from
/// memory on drop and never printed.
pub struct ClientSecretBasic {
    /// The client id, form-decoded.
    pub client_id: String,
    /// The client secret, form-decoded.
    pub client_secret: Zeroizing<String>,
}

impl std::fmt::Debug for ClientSecretBasic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretBasic")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Standard base64; padding optional, since some clients leave it out.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Parses an `Authorization` header value of scheme `Basic` (case-insensitive): base64 of
/// `id ':' secret`, where RFC 6749 §2.3.1 form-urlencodes both parts first — so the split
/// is at the first colon, and `%3A` in either part is a literal colon.
pub fn parse_client_secret_basic(authorization: &str) -> Result<ClientSecretBasic> {
    let (scheme, rest) = authorization.split_once(' ').ok_or(Error::InvalidClient(
        "authorization is not Basic credentials",
    ))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::InvalidClient("authorization scheme is not Basic"));
    }
    let encoded = rest.trim_matches(' ');
    let decoded = Zeroizing::new(
        BASIC_B64
            .decode(encoded)
            .map_err(|_| Error::InvalidClient("basic credentials are not base64"))?,
    );
    let text = std::str::from_utf8(&decoded)
        .map_err(|_| Error::InvalidClient("basic credentials are not utf-8"))?;
    let (id, secret) = text
        .split_once(':')
        .ok_or(Error::InvalidClient("basic credentials have no colon"))?;
    let not_form = Error::InvalidClient("basic credentials are not form-urlencoded");
    let client_id = form_decode(id).ok_or(not_form.clone())?.into_owned();
    let client_secret = Zeroizing::new(form_decode(secret).ok_or(not_form)?.into_owned());
    if client_id.is_empty() {
        return Err(Error::InvalidClient("empty client id"));
    }
    if client_secret.is_empty() {
        return Err(Error::InvalidClient("empty client secret"));
    }
    Ok(ClientSecretBasic {
        client_id,
        client_secret,
    })
}

/// How a token request authenticates its client (RFC 6749 §2.3: exactly one way).
#[derive(Debug)]
pub enum ClientAuth {
    /// `client_secret_basic`: compare the secret's keyed digest with the stored one.
    SecretBasic(ClientSecretBasic),
    /// `private_key_jwt`: check the assertion with [`ClientAssertionVerifier`].
    /// `client_id` is the optional form parameter (RFC 7521 §4.2).
    PrivateKeyJwt {
        client_id: Option<String>,
        assertion: String,
    },
    /// Only a `client_id`: the client must be a `tls_client_auth` or
    /// `self_signed_tls_client_auth` client (RFC 8705), authenticated by the connection's
    /// certificate.
    TlsClient { client_id: String },
}

impl ClientAuth {
    /// The client authentication of a token, introspection or revocation request: its
    /// form body and `Authorization` header (errors as [`TokenRequest::parse`] describes).
    pub fn parse(body: &str, authorization: Option<&str>) -> Result<Self> {
        Self::from_form(&Form::parse(body)?, authorization)
    }

    fn from_form(form: &Form<'_>, authorization: Option<&str>) -> Result<Self> {
        if form.get("client_secret").is_some() {
            return Err(Error::InvalidClient(
                "client_secret_post is not supported; send the secret with HTTP Basic",
            ));
        }
        let client_id = form.get("client_id");
        let assertion = form.get("client_assertion");
        let assertion_type = form.get("client_assertion_type");
        Ok(match (authorization, assertion, assertion_type) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(Error::InvalidRequest(
                    "more than one client authentication method",
                ));
            }
            (Some(header), None, None) => {
                let basic = parse_client_secret_basic(header)?;
                if client_id.is_some_and(|id| id != basic.client_id) {
                    return Err(Error::InvalidRequest(
                        "client_id does not match the authorization header",
                    ));
                }
                ClientAuth::SecretBasic(basic)
            }
            (None, Some(assertion), Some(JWT_BEARER_ASSERTION_TYPE)) => ClientAuth::PrivateKeyJwt {
                client_id: client_id.map(str::to_owned),
                assertion: assertion.to_owned(),
            },
            (None, Some(_), Some(_)) => {
                return Err(Error::InvalidClient("unsupported client_assertion_type"));
            }
            (None, Some(_), None) => {
                return Err(Error::InvalidRequest(
                    "client_assertion needs client_assertion_type",
                ));
            }
            (None, None, Some(_)) => {
                return Err(Error::InvalidRequest(
                    "client_assertion_type without client_assertion",
                ));
            }
            (None, None, None) => match client_id {
                Some(id) => ClientAuth::TlsClient {
                    client_id: id.to_owned(),
                },
                None => return Err(Error::InvalidClient("no client authentication")),
            },
        })
    }
}

/// A client credentials token request (RFC 6749 §4.4.2).
#[derive(Debug)]
pub struct TokenRequest {
    /// The requested scope, syntax-checked; see [`grant_scope`](crate::grant_scope).
    pub scope: Option<String>,
    /// The client's authentication.
    pub client: ClientAuth,
}

impl TokenRequest {
    /// Parses a token request from its form body and `Authorization` header.
    ///
    /// Errors: a missing or other `grant_type` ([`Error::InvalidRequest`],
    /// [`Error::UnsupportedGrantType`]); bad scope syntax ([`Error::InvalidScope`]); two
    /// authentication methods at once, a `client_id` that contradicts the Basic one, or an
    /// incomplete assertion pair ([`Error::InvalidRequest`]); no authentication, an
    /// unsupported `client_assertion_type`, `client_secret` in the body
    /// (`client_secret_post` is not offered), or bad Basic credentials
    /// ([`Error::InvalidClient`]).
    pub fn parse(body: &str, authorization: Option<&str>) -> Result<Self> {
        let form = Form::parse(body)?;
        match form.get("grant_type") {
            None => return Err(Error::InvalidRequest("grant_type is required")),
            Some(CLIENT_CREDENTIALS) => {}
            Some(_) => return Err(Error::UnsupportedGrantType),
        }
        let scope = form.get("scope");
        if let Some(scope) = scope {
            claims::check_scope(scope)?;
        }
        let client = ClientAuth::from_form(&form, authorization)?;
        Ok(Self {
            scope: scope.map(str::to_owned),
            client,
        })
    }
}

/// Remembers client assertion ids until they expire, so each is accepted once
/// (RFC 7523 §3 item 7). The store is the caller's: in memory, or shared between replicas.
pub trait JtiStore {
    /// Records `jti` for `client_id` until `expires_at`; `false` if it was already
    /// recorded (a replay).
    fn first_use(&mut self, client_id: &str, jti: &str, expires_at: OffsetDateTime) -> bool;
}

impl<F: FnMut(&str, &str, OffsetDateTime) -> bool> JtiStore for F {
    fn first_use(&mut self, client_id: &str, jti: &str, expires_at: OffsetDateTime) -> bool {
        self(client_id, jti, expires_at)
    }
}

/// A client assertion that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClientAssertion {
    /// `iss` = `sub`: the authenticated client.
    pub client_id: String,
    /// The assertion's `jti`, now recorded in the [`JtiStore`].
    pub jti: String,
    /// The assertion's `exp`.
    pub expires_at: OffsetDateTime,
}

#[derive(Deserialize)]
struct InClientAssertion<'a> {
    #[serde(borrow, default)]
    iss: Option<Str<'a>>,
    #[serde(borrow, default)]
    sub: Option<Str<'a>>,
    #[serde(borrow, default)]
    aud: Option<&'a RawValue>,
    #[serde(borrow, default)]
    jti: Option<Str<'a>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
}

/// Checks `private_key_jwt` client assertions at the token endpoint.
///
/// An assertion must: be a compact JWS `EdDSA`/`ES256` with `typ` absent, `JWT` or
/// `client-authentication+jwt` (never `at+jwt`); have `iss` = `sub` = the client id (and
/// equal the `client_id` parameter if sent); verify under a key the client registered
/// (`kid` chooses it; without `kid`, the client's only key of that algorithm); name this
/// server in `aud` — its issuer identifier or its token endpoint URL; carry `exp`, not
/// expired and at most [`ClientAssertionVerifier::with_max_lifetime`] ahead, `nbf`/`iat`
/// not in the future (leeway allowed), and a `jti` not seen before. The `jti` is recorded
/// only once everything else has passed, so a forged assertion cannot burn one.
#[derive(Clone, Debug)]
pub struct ClientAssertionVerifier {
    issuer: String,
    token_endpoint: String,
    leeway: i64,
    max_lifetime: i64,
}

/// The longest client assertion lifetime accepted by default, counted from `now`: an hour,
/// the most that common client libraries and other providers allow; the replay store
/// holds each `jti` that long at most.
pub const DEFAULT_MAX_ASSERTION_LIFETIME: Duration = Duration::hours(1);

impl ClientAssertionVerifier {
    /// A verifier for this server's issuer identifier and token endpoint URL.
    pub fn new(issuer: impl Into<String>, token_endpoint: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            token_endpoint: token_endpoint.into(),
            leeway: claims::leeway_secs(DEFAULT_LEEWAY),
            max_lifetime: DEFAULT_MAX_ASSERTION_LIFETIME.whole_seconds(),
        }
    }

    /// Allows `leeway` of clock skew.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = claims::leeway_secs(leeway);
        self
    }

    /// Refuses assertions whose `exp` is more than `max` after `now`.
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max.whole_seconds().max(0);
        self
    }

    /// Verifies `assertion` at `now`. `client_id` is the form parameter, if sent;
    /// `keys_for` finds the registered keys of the client the assertion names (`None`: no
    /// such client, or not a `private_key_jwt` client); `jtis` records the assertion id.
    pub fn verify<'k>(
        &self,
        assertion: &str,
        client_id: Option<&str>,
        now: OffsetDateTime,
        keys_for: impl FnOnce(&str) -> Option<&'k KeySet>,
        jtis: &mut dyn JtiStore,
    ) -> Result<VerifiedClientAssertion> {
        let parts = jws::split(assertion)?;
        // The claims are read before the signature is checked only to learn whose keys to
        // check it with; nothing else is believed until it verifies.
        jws::with_payload(parts.payload, |bytes| {
            let c: InClientAssertion<'_> = b64::from_object(bytes).ok_or(Error::Malformed(
                "claims are not a json object of the right types",
            ))?;
            let iss = c.iss.as_deref().ok_or(Error::MissingClaim("iss"))?;
            let sub = c.sub.as_deref().ok_or(Error::MissingClaim("sub"))?;
            if iss != sub {
                return Err(Error::InvalidClaim("sub"));
            }
            if client_id.is_some_and(|id| id != iss) {
                return Err(Error::InvalidClient(
                    "client_id does not match the assertion",
                ));
            }
            let keys = keys_for(iss).ok_or(Error::UnknownClient)?;
            jws::verify(assertion, keys, TypRule::ClientAssertion, false)?;
            let audiences = [self.issuer.as_str(), self.token_endpoint.as_str()];
            if !b64::aud_contains(c.aud.ok_or(Error::MissingClaim("aud"))?, &audiences)? {
                return Err(Error::WrongAudience);
            }
            let now = now.unix_timestamp();
            claims::check_times(c.exp, c.nbf, c.iat, now, self.leeway)?;
            let exp = c.exp.unwrap_or(now);
            if exp.saturating_sub(now) > self.max_lifetime {
                return Err(Error::LifetimeTooLong);
            }
            let jti = c.jti.as_deref().ok_or(Error::MissingClaim("jti"))?;
            if jti.is_empty() {
                return Err(Error::InvalidClaim("jti"));
            }
            let expires_at = claims::to_datetime(exp, "exp")?;
            if !jtis.first_use(iss, jti, expires_at) {
                return Err(Error::Replayed);
            }
            Ok(VerifiedClientAssertion {
                client_id: iss.to_owned(),
                jti: jti.to_owned(),
                expires_at,
            })
        })
    }
}
