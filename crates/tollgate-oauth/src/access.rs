//! Access tokens: RFC 9068 JWTs issued by the marketplace's token endpoint for the client
//! credentials grant, and verified by the gateway on every request.
//!
//! ```text
//! header  {"alg":"EdDSA","typ":"at+jwt","kid":"<keyring key id>"}
//! payload {"iss":"https://market.example","sub":"<client id>","aud":"https://gw.example",
//!          "exp":1767225900,"iat":1767225600,"jti":"<uuid v7>","client_id":"<client id>",
//!          "scope":"read write","cnf":{"x5t#S256":"…"},
//!          "tg_app":"<app id>","tg_org":"<org id>","tg_mode":"live"}
//! ```
//!
//! `sub` is the client id: with client credentials the client acts for itself (RFC 9068
//! §2.2). `nbf` and `cnf` are optional; `tg_app`, `tg_org` and `tg_mode` are the private
//! claims the gateway needs to find the app's subscriptions without a lookup.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::{Duration, OffsetDateTime};
use tollgate_core::apikey::KeyMode;
use tollgate_core::{AppId, OAuthClientId, OrgId};
use uuid::Uuid;

use crate::b64::{self, Str, numeric_date};
use crate::claims::{self, CertThumbprint, DEFAULT_LEEWAY};
use crate::jws::{self, TypRule};
use crate::{Error, KeySet, Result, Signer};

/// The `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// What an access token says, beyond the issuer and audience the verifier already knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    /// `client_id`, and also `sub`.
    pub client_id: OAuthClientId,
    /// `tg_app`: the app the client belongs to.
    pub app: AppId,
    /// `tg_org`: the app's org.
    pub org: OrgId,
    /// `tg_mode`: live clients reach live subscriptions only, test clients test ones.
    pub mode: KeyMode,
    /// `scope`: the granted scopes, space-separated; empty when none (then the claim is
    /// left out).
    pub scope: String,
    /// `jti`: the token's id, for revocation lists and logs.
    pub jti: Uuid,
    /// `iat`, whole seconds.
    pub issued_at: OffsetDateTime,
    /// `exp`, whole seconds.
    pub expires_at: OffsetDateTime,
    /// `nbf`, whole seconds.
    pub not_before: Option<OffsetDateTime>,
    /// `cnf.x5t#S256` (RFC 8705 §3.1): the token is only good with this client
    /// certificate.
    pub cert_thumbprint: Option<CertThumbprint>,
}

impl AccessClaims {
    /// Claims for a token issued at `now` that lives `lifetime`, with a fresh `jti`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client_id: OAuthClientId,
        app: AppId,
        org: OrgId,
        mode: KeyMode,
        scope: impl Into<String>,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<Self> {
        let issued_at = now
            .replace_nanosecond(0)
            .expect("zero is a valid nanosecond");
        Ok(Self {
            client_id,
            app,
            org,
            mode,
            scope: scope.into(),
            jti: claims::new_jti(now)?,
            issued_at,
            expires_at: issued_at + lifetime,
            not_before: None,
            cert_thumbprint: None,
        })
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// RFC 8705 §3: a token bound to a certificate is only good with that certificate.
    /// `presented` is the thumbprint of the client certificate of the connection, if any.
    /// Unbound tokens pass whatever is presented.
    pub fn check_certificate(&self, presented: Option<&CertThumbprint>) -> Result<()> {
        match (&self.cert_thumbprint, presented) {
            (None, _) => Ok(()),
            // Equal-length byte arrays of public hashes: no need for a constant-time
            // comparison.
            (Some(bound), Some(presented)) if bound == presented => Ok(()),
            (Some(_), _) => Err(Error::CertificateMismatch),
        }
    }

    /// Signs these claims as an access token for `issuer` and `audience`.
    pub fn issue(&self, signer: &dyn Signer, issuer: &str, audience: &str) -> Result<String> {
        issue_access_token(signer, issuer, audience, self)
    }
}

#[derive(Serialize)]
struct OutCnf {
    #[serde(rename = "x5t#S256")]
    x5t_s256: String,
}

#[derive(Serialize)]
struct OutAccess<'a> {
    iss: &'a str,
    sub: &'a OAuthClientId,
    aud: &'a str,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    jti: &'a Uuid,
    client_id: &'a OAuthClientId,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<OutCnf>,
    tg_app: &'a AppId,
    tg_org: &'a OrgId,
    tg_mode: &'static str,
}

/// Signs an access token. Fails if the scope is not valid RFC 6749 scope syntax or the
/// signer fails.
pub fn issue_access_token(
    signer: &dyn Signer,
    issuer: &str,
    audience: &str,
    claims: &AccessClaims,
) -> Result<String> {
    claims::check_scope(&claims.scope)?;
    let out = OutAccess {
        iss: issuer,
        sub: &claims.client_id,
        aud: audience,
        exp: claims.expires_at.unix_timestamp(),
        iat: claims.issued_at.unix_timestamp(),
        nbf: claims.not_before.map(OffsetDateTime::unix_timestamp),
        jti: &claims.jti,
        client_id: &claims.client_id,
        scope: &claims.scope,
        cnf: claims.cert_thumbprint.map(|t| OutCnf {
            x5t_s256: t.to_base64url(),
        }),
        tg_app: &claims.app,
        tg_org: &claims.org,
        tg_mode: claims.mode.as_str(),
    };
    jws::sign(signer, ACCESS_TOKEN_TYP, &out)
}

#[derive(Deserialize)]
struct InCnf<'a> {
    #[serde(borrow, default, rename = "x5t#S256")]
    x5t_s256: Option<Str<'a>>,
}

/// The payload as read: every string borrowed from the decoded bytes where possible.
/// Members not listed are ignored (RFC 7519 §4); a repeated member is an error.
#[derive(Deserialize)]
struct InAccess<'a> {
    #[serde(borrow, default)]
    iss: Option<Str<'a>>,
    #[serde(borrow, default)]
    aud: Option<&'a RawValue>,
    #[serde(borrow, default)]
    sub: Option<Str<'a>>,
    #[serde(borrow, default)]
    client_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    scope: Option<Str<'a>>,
    #[serde(borrow, default)]
    jti: Option<Str<'a>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    /// Read as raw JSON and then as an object: see [`b64::from_object`].
    #[serde(borrow, default)]
    cnf: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tg_app: Option<Str<'a>>,
    #[serde(borrow, default)]
    tg_org: Option<Str<'a>>,
    #[serde(borrow, default)]
    tg_mode: Option<Str<'a>>,
}

/// Checks that an issuer and an audience, given as text, are what `raw` says.
pub(crate) fn check_iss_aud(
    iss: Option<&str>,
    aud: Option<&RawValue>,
    issuer: &str,
    audiences: &[&str],
) -> Result<()> {
    if iss.ok_or(Error::MissingClaim("iss"))? != issuer {
        return Err(Error::WrongIssuer);
    }
    if !b64::aud_contains(aud.ok_or(Error::MissingClaim("aud"))?, audiences)? {
        return Err(Error::WrongAudience);
    }
    Ok(())
}

pub(crate) fn parse_uuid(text: Option<&str>, claim: &'static str) -> Result<Uuid> {
    Uuid::try_parse(text.ok_or(Error::MissingClaim(claim))?).map_err(|_| Error::InvalidClaim(claim))
}

pub(crate) fn parse_mode(text: Option<&str>) -> Result<KeyMode> {
    match text.ok_or(Error::MissingClaim("tg_mode"))? {
        "live" => Ok(KeyMode::Live),
        "test" => Ok(KeyMode::Test),
        _ => Err(Error::InvalidClaim("tg_mode")),
    }
}

/// Verifies access tokens for the gateway: one per snapshot, shared by every request.
///
/// [`AccessTokenVerifier::verify`] checks, in order: the token's shape and size; the
/// header (`alg` `EdDSA`/`ES256` only, `typ` `at+jwt`, no `crit`, a `kid` in the set whose
/// key has that `alg`); the signature; then `iss`, `aud`, `exp`/`nbf`/`iat` with the
/// leeway, and the presence and syntax of `sub` = `client_id`, `jti`, `scope`, `cnf` and
/// the `tg_*` claims. The only allocation on success is the returned scope string.
#[derive(Debug)]
pub struct AccessTokenVerifier {
    keys: KeySet,
    issuer: Box<str>,
    audience: Box<str>,
    leeway: i64,
}

impl AccessTokenVerifier {
    /// A verifier for tokens from `issuer` (the authorization server's issuer identifier)
    /// for `audience` (the gateway's resource identifier), with [`DEFAULT_LEEWAY`].
    pub fn new(keys: KeySet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into().into_boxed_str(),
            audience: audience.into().into_boxed_str(),
            leeway: claims::leeway_secs(DEFAULT_LEEWAY),
        }
    }

    /// Allows `leeway` of clock skew on `exp`, `nbf` and `iat` (negative counts as zero).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = claims::leeway_secs(leeway);
        self
    }

    /// The verification keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies `token` (the bearer credential, without the `Bearer ` prefix) at `now`.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims> {
        let payload = jws::verify(token, &self.keys, TypRule::Exactly(ACCESS_TOKEN_TYP), true)?;
        jws::with_payload(payload, |bytes| {
            let c: InAccess<'_> = b64::from_object(bytes).ok_or(Error::Malformed(
                "claims are not a json object of the right types",
            ))?;
            check_iss_aud(c.iss.as_deref(), c.aud, &self.issuer, &[&self.audience])?;
            claims::check_times(c.exp, c.nbf, c.iat, now.unix_timestamp(), self.leeway)?;
            let client_text = c.client_id.as_deref();
            let client_id = OAuthClientId(parse_uuid(client_text, "client_id")?);
            if c.sub.as_deref().ok_or(Error::MissingClaim("sub"))? != client_text.unwrap_or("") {
                return Err(Error::InvalidClaim("sub"));
            }
            let scope = c.scope.as_deref().unwrap_or("");
            claims::check_scope(scope).map_err(|_| Error::InvalidClaim("scope"))?;
            let cert_thumbprint = match c.cnf {
                None => None,
                Some(cnf) => Some(
                    b64::from_object::<InCnf<'_>>(cnf.get().as_bytes())
                        .and_then(|cnf| cnf.x5t_s256)
                        .and_then(|t| CertThumbprint::from_base64url(&t))
                        .ok_or(Error::InvalidClaim("cnf"))?,
                ),
            };
            let iat = c.iat.ok_or(Error::MissingClaim("iat"))?;
            Ok(AccessClaims {
                client_id,
                app: AppId(parse_uuid(c.tg_app.as_deref(), "tg_app")?),
                org: OrgId(parse_uuid(c.tg_org.as_deref(), "tg_org")?),
                mode: parse_mode(c.tg_mode.as_deref())?,
                scope: scope.to_owned(),
                jti: parse_uuid(c.jti.as_deref(), "jti")?,
                issued_at: claims::to_datetime(iat, "iat")?,
                expires_at: claims::to_datetime(c.exp.unwrap_or(iat), "exp")?,
                not_before: c.nbf.map(|n| claims::to_datetime(n, "nbf")).transpose()?,
                cert_thumbprint,
            })
        })
    }
}
