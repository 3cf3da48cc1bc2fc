//! The gateway assertion: a short-lived JWT the gateway attaches to each request it
//! forwards, so an upstream can check the call came through the marketplace and learn who
//! made it under which subscription, without trusting plain headers.
//!
//! ```text
//! header  {"alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":"<keyring key id>"}
//! payload {"iss":"https://market.example","aud":"<the upstream's audience>",
//!          "sub":"<app id>","exp":…,"iat":…,"jti":"<uuid v7>","scope":"read",
//!          "tg_org":"…","tg_plan":"…","tg_subscription":"…","tg_mode":"live",
//!          "tg_auth":"oauth","client_id":"<client id, with tg_auth oauth>"}
//! ```
//!
//! It is signed with the keyring's [`KeyPurpose::GatewayAssertion`] keys, a set separate
//! from access tokens so neither kind of token can pass as the other (their `typ` differs
//! too), published as their own JWKS for upstreams. `aud` is each upstream's own
//! identifier, so an assertion one provider receives is useless at another's API.
//!
//! [`KeyPurpose::GatewayAssertion`]: tollgate_keyring::KeyPurpose::GatewayAssertion

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::{Duration, OffsetDateTime};
use tollgate_core::apikey::KeyMode;
use tollgate_core::{AppId, OAuthClientId, OrgId, PlanId, SubscriptionId};
use uuid::Uuid;

use crate::access::{check_iss_aud, parse_mode, parse_uuid};
use crate::b64::{self, Str, numeric_date};
use crate::claims::{self, DEFAULT_LEEWAY};
use crate::jws::{self, TypRule};
use crate::{Error, KeySet, Result, Signer};

/// The `typ` of gateway assertions.
pub const GATEWAY_ASSERTION_TYP: &str = "tollgate-assertion+jwt";

/// A minute: long enough for a slow upstream hop and clock skew, short enough that a
/// leaked assertion is soon worthless. The gateway may reuse one assertion per
/// (subscription, upstream) until shortly before it expires.
pub const DEFAULT_ASSERTION_LIFETIME: Duration = Duration::seconds(60);

/// How the caller authenticated at the gateway (`tg_auth`); the same names the policy
/// context uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A Tollgate API key.
    ApiKey,
    /// An OAuth access token (client credentials).
    OAuth,
    /// A TLS client certificate.
    Mtls,
    /// A signed request.
    Signature,
}

impl AuthMethod {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::OAuth => "oauth",
            Self::Mtls => "mtls",
            Self::Signature => "signature",
        }
    }

    fn from_name(name: &str) -> Result<Self> {
        match name {
            "api_key" => Ok(Self::ApiKey),
            "oauth" => Ok(Self::OAuth),
            "mtls" => Ok(Self::Mtls),
            "signature" => Ok(Self::Signature),
            _ => Err(Error::InvalidClaim("tg_auth")),
        }
    }
}

/// What a gateway assertion says about a forwarded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayAssertion {
    /// `sub`: the calling app.
    pub app: AppId,
    /// `tg_org`: the app's org.
    pub org: OrgId,
    /// `tg_plan`: the plan the call is served under.
    pub plan: PlanId,
    /// `tg_subscription`: the subscription the call is served under.
    pub subscription: SubscriptionId,
    /// `tg_mode`: live or test traffic.
    pub mode: KeyMode,
    /// `scope`: the caller's scopes, space-separated (empty: the claim is left out).
    pub scope: String,
    /// `tg_auth`: how the caller authenticated.
    pub auth_method: AuthMethod,
    /// `client_id`: the OAuth client, when `auth_method` is [`AuthMethod::OAuth`].
    pub client_id: Option<OAuthClientId>,
    /// `jti`.
    pub jti: Uuid,
    /// `iat`, whole seconds.
    pub issued_at: OffsetDateTime,
    /// `exp`, whole seconds.
    pub expires_at: OffsetDateTime,
}

impl GatewayAssertion {
    /// An assertion issued at `now` living [`DEFAULT_ASSERTION_LIFETIME`], with a fresh
    /// `jti` and no client id.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        app: AppId,
        org: OrgId,
        plan: PlanId,
        subscription: SubscriptionId,
        mode: KeyMode,
        scope: impl Into<String>,
        auth_method: AuthMethod,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let issued_at = now
            .replace_nanosecond(0)
            .expect("zero is a valid nanosecond");
        Ok(Self {
            app,
            org,
            plan,
            subscription,
            mode,
            scope: scope.into(),
            auth_method,
            client_id: None,
            jti: claims::new_jti(now)?,
            issued_at,
            expires_at: issued_at + DEFAULT_ASSERTION_LIFETIME,
        })
    }

    /// Signs the assertion for one upstream.
    pub fn issue(&self, signer: &dyn Signer, issuer: &str, audience: &str) -> Result<String> {
        claims::check_scope(&self.scope)?;
        let out = OutAssertion {
            iss: issuer,
            aud: audience,
            sub: &self.app,
            exp: self.expires_at.unix_timestamp(),
            iat: self.issued_at.unix_timestamp(),
            jti: &self.jti,
            scope: &self.scope,
            tg_org: &self.org,
            tg_plan: &self.plan,
            tg_subscription: &self.subscription,
            tg_mode: self.mode.as_str(),
            tg_auth: self.auth_method.as_str(),
            client_id: self.client_id.as_ref(),
        };
        jws::sign(signer, GATEWAY_ASSERTION_TYP, &out)
    }
}

#[derive(Serialize)]
struct OutAssertion<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a AppId,
    exp: i64,
    iat: i64,
    jti: &'a Uuid,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    tg_org: &'a OrgId,
    tg_plan: &'a PlanId,
    tg_subscription: &'a SubscriptionId,
    tg_mode: &'static str,
    tg_auth: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a OAuthClientId>,
}

#[derive(Deserialize)]
struct InAssertion<'a> {
    #[serde(borrow, default)]
    iss: Option<Str<'a>>,
    #[serde(borrow, default)]
    aud: Option<&'a RawValue>,
    #[serde(borrow, default)]
    sub: Option<Str<'a>>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(borrow, default)]
    jti: Option<Str<'a>>,
    #[serde(borrow, default)]
    scope: Option<Str<'a>>,
    #[serde(borrow, default)]
    tg_org: Option<Str<'a>>,
    #[serde(borrow, default)]
    tg_plan: Option<Str<'a>>,
    #[serde(borrow, default)]
    tg_subscription: Option<Str<'a>>,
    #[serde(borrow, default)]
    tg_mode: Option<Str<'a>>,
    #[serde(borrow, default)]
    tg_auth: Option<Str<'a>>,
    #[serde(borrow, default)]
    client_id: Option<Str<'a>>,
}

/// What an upstream does with a gateway assertion: built once from the marketplace's
/// gateway-assertion JWKS, its issuer, and the upstream's own audience.
#[derive(Debug)]
pub struct GatewayAssertionVerifier {
    keys: KeySet,
    issuer: Box<str>,
    audience: Box<str>,
    leeway: i64,
}

impl GatewayAssertionVerifier {
    /// A verifier with [`DEFAULT_LEEWAY`].
    pub fn new(keys: KeySet, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys,
            issuer: issuer.into().into_boxed_str(),
            audience: audience.into().into_boxed_str(),
            leeway: claims::leeway_secs(DEFAULT_LEEWAY),
        }
    }

    /// Allows `leeway` of clock skew.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = claims::leeway_secs(leeway);
        self
    }

    /// Verifies an assertion at `now`: the same header, signature and time checks as
    /// access tokens, `typ` `tollgate-assertion+jwt`, then every claim above.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<GatewayAssertion> {
        let payload = jws::verify(
            token,
            &self.keys,
            TypRule::Exactly(GATEWAY_ASSERTION_TYP),
            true,
        )?;
        jws::with_payload(payload, |bytes| {
            let c: InAssertion<'_> = b64::from_object(bytes).ok_or(Error::Malformed(
                "claims are not a json object of the right types",
            ))?;
            check_iss_aud(c.iss.as_deref(), c.aud, &self.issuer, &[&self.audience])?;
            claims::check_times(c.exp, c.nbf, c.iat, now.unix_timestamp(), self.leeway)?;
            let scope = c.scope.as_deref().unwrap_or("");
            claims::check_scope(scope).map_err(|_| Error::InvalidClaim("scope"))?;
            let auth_method =
                AuthMethod::from_name(c.tg_auth.as_deref().ok_or(Error::MissingClaim("tg_auth"))?)?;
            let client_id = c
                .client_id
                .as_deref()
                .map(|id| parse_uuid(Some(id), "client_id").map(OAuthClientId))
                .transpose()?;
            let iat = c.iat.ok_or(Error::MissingClaim("iat"))?;
            Ok(GatewayAssertion {
                app: AppId(parse_uuid(c.sub.as_deref(), "sub")?),
                org: OrgId(parse_uuid(c.tg_org.as_deref(), "tg_org")?),
                plan: PlanId(parse_uuid(c.tg_plan.as_deref(), "tg_plan")?),
                subscription: SubscriptionId(parse_uuid(
                    c.tg_subscription.as_deref(),
                    "tg_subscription",
                )?),
                mode: parse_mode(c.tg_mode.as_deref())?,
                scope: scope.to_owned(),
                auth_method,
                client_id,
                jti: parse_uuid(c.jti.as_deref(), "jti")?,
                issued_at: claims::to_datetime(iat, "iat")?,
                expires_at: claims::to_datetime(c.exp.unwrap_or(iat), "exp")?,
            })
        })
    }
}
