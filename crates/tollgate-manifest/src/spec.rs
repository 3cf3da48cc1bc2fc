//! The manifest's shape: what a file may say about orgs, APIs, term sheets, plans,
//! apps, subscriptions and the keys that signed their acceptances. The doc comments here are the user documentation of each field.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tollgate_core::apikey::KeyMode;
use tollgate_core::model::MtlsMode;
pub use tollgate_core::model::VerificationKey;
use tollgate_core::model::{
    Acceptance, ApiStatus, OrgKind, PlanStatus, SubscriptionState, Visibility,
};

/// One manifest file: any of the seven lists, all optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<OrgSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<ApiSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<TermsSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<PlanSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionSpec>,
    /// The public parts of the keys that signed the subscriptions' acceptance records
    /// (`key_id`, and `public_key`: the raw 32-byte Ed25519 key, base64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_keys: Vec<VerificationKey>,
}

/// An organization, identified by its slug across the whole marketplace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    /// Identity: unique across the marketplace.
    pub slug: String,
    pub name: String,
    /// `provider`, `consumer` or `both`.
    pub kind: OrgKind,
}

/// An API of a provider org, identified by `(org, slug)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// Slug of the owning org (in this manifest or already in the marketplace).
    pub org: String,
    /// Identity within the org.
    pub slug: String,
    pub name: String,
    /// Version label; `v1` when an API is created without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Empty when created without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Gateway path prefix, e.g. `/weather/v1`.
    pub base_path: String,
    /// Host names it answers on; none (any host) when created without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<String>>,
    /// Upstream base URLs.
    pub upstreams: Vec<String>,
    /// Where test-mode calls go; none: a mock answering from the OpenAPI examples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandbox_upstreams: Vec<String>,
    /// Mutual TLS for the API's calls: `off` (default), `optional` or `required`.
    #[serde(default, skip_serializing_if = "MtlsMode::is_off")]
    pub mtls: MtlsMode,
    /// Callable by anyone, without a credential or subscription (default `false`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// `draft`, `published`, `deprecated` or `retired`; new APIs start as `draft`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApiStatus>,
    /// When a deprecated API stops being served (RFC 3339); only with `deprecated`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_timestamp",
        serialize_with = "ser_timestamp"
    )]
    pub sunset: Option<OffsetDateTime>,
    /// The OpenAPI document: a path relative to the manifest file, or inline. After
    /// loading it is always [`OpenApi::Inline`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<OpenApi>,
}

/// Where an API's OpenAPI document comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenApi {
    /// A YAML or JSON file, relative to the manifest that names it.
    File(String),
    /// The document itself.
    Inline(serde_json::Value),
}

impl OpenApi {
    /// The document, once loaded.
    pub fn document(&self) -> Option<&serde_json::Value> {
        match self {
            OpenApi::Inline(v) => Some(v),
            OpenApi::File(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for OpenApi {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Going through a YAML value keeps YAML's non-string keys (`200:` under
        // `responses`), which JSON's own value type would refuse.
        let v = yaml_serde::Value::deserialize(d)?;
        match v {
            yaml_serde::Value::String(s) => Ok(OpenApi::File(s)),
            yaml_serde::Value::Mapping(_) => Ok(OpenApi::Inline(yaml_to_json(v))),
            _ => Err(serde::de::Error::custom(
                "must be a file path or an OpenAPI document (a mapping)",
            )),
        }
    }
}

impl Serialize for OpenApi {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OpenApi::File(p) => s.serialize_str(p),
            OpenApi::Inline(v) => v.serialize(s),
        }
    }
}

/// The key under which the `toml` crate passes a date or datetime to serde.
const TOML_DATETIME: &str = "$__toml_private_datetime";

/// A YAML value as JSON: keys become strings, tags are dropped, TOML dates and datetimes
/// become their text.
pub(crate) fn yaml_to_json(v: yaml_serde::Value) -> serde_json::Value {
    use serde_json::Value as J;
    use yaml_serde::Value as Y;
    match v {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(J::Null, J::Number)
            }
        }
        Y::String(s) => J::String(s),
        Y::Sequence(items) => J::Array(items.into_iter().map(yaml_to_json).collect()),
        // A TOML date or datetime, as the `toml` crate hands it over.
        Y::Mapping(m)
            if m.len() == 1
                && m.keys().next().and_then(Y::as_str) == Some(TOML_DATETIME)
                && m.values().next().is_some_and(Y::is_string) =>
        {
            yaml_to_json(m.into_iter().next().map(|(_, v)| v).unwrap_or(Y::Null))
        }
        Y::Mapping(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => match yaml_to_json(other) {
                            J::String(s) => s,
                            j => j.to_string(),
                        },
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

/// A plan of a provider org, identified by `(org, slug)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSpec {
    pub org: String,
    /// Identity within the org.
    pub slug: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `public` or `private`.
    pub visibility: Visibility,
    /// `false` when created without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_required: Option<bool>,
    /// `draft`, `published` or `retired`; new plans start as `draft`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PlanStatus>,
    /// The APIs it includes, by slug within the plan's org.
    pub apis: Vec<PlanApiSpec>,
    /// The term sheet version the plan offers: a published sheet of the plan's org, in
    /// this manifest (under `terms:`) or already in the marketplace. Left out: the plan
    /// keeps whatever terms it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<PlanTermsSpec>,
    /// The longest lifetime, in days, of an API key of a subscribed app (1–3650). Left
    /// out: the plan keeps whatever limit it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_key_lifetime_days: Option<u32>,
}

/// Which term sheet version a plan offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanTermsSpec {
    /// The sheet's own `id`, e.g. `weather-pro`.
    pub id: String,
    /// The sheet's `version` (semantic versioning), e.g. `1.0.0`.
    pub version: String,
}

/// A term sheet version of a provider org. A sheet is identified by the SHA-256 of its
/// canonical form: content already in the marketplace is not stored again, and a
/// changed sheet must carry a new `version` (published versions never change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TermsSpec {
    /// Slug of the owning org (in this manifest or already in the marketplace).
    pub org: String,
    /// A sheet file (YAML, TOML or JSON), relative to the manifest file. Exactly one of
    /// `file` and `document`; after loading it is always `None` and `document` holds the
    /// sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The sheet itself, inline. After loading: the validated sheet as JSON, as the admin
    /// API stores it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_document"
    )]
    pub document: Option<serde_json::Value>,
    /// Publish the sheet (so plans may offer it); `true` when left out. A published
    /// sheet cannot become a draft again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<bool>,
}

/// Reads an inline document through a YAML value, which keeps YAML's non-string keys
/// and TOML's dates.
fn de_document<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    let v = yaml_serde::Value::deserialize(d)?;
    match v {
        yaml_serde::Value::Null => Ok(None),
        yaml_serde::Value::Mapping(_) => Ok(Some(yaml_to_json(v))),
        _ => Err(serde::de::Error::custom(
            "must be a term sheet (a mapping); to name a file, use `file:`",
        )),
    }
}

/// One API of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanApiSpec {
    /// Slug of an API of the plan's org.
    pub api: String,
    /// `operationId`s included; absent means every operation, present and future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operations: Option<Vec<String>>,
}

/// An app of a consumer org, identified by `(org, slug)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    pub org: String,
    /// Identity within the org.
    pub slug: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Reads an RFC 3339 timestamp from a string, or from a TOML datetime (which the `toml`
/// crate hands over as a one-entry map).
fn de_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<OffsetDateTime>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp like 2027-01-01T00:00:00Z")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            OffsetDateTime::parse(s, &Rfc3339).map(Some).map_err(|_| {
                E::custom(format!(
                    "{s:?} is not an RFC 3339 timestamp like 2027-01-01T00:00:00Z"
                ))
            })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let Some((_, s)) = m.next_entry::<String, String>()? else {
                return Err(serde::de::Error::custom("expected a timestamp"));
            };
            self.visit_str(&s)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

fn ser_timestamp<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.format(&Rfc3339).map_err(serde::ser::Error::custom)?),
        None => s.serialize_none(),
    }
}

/// An app's subscription to a plan, identified by `(app, plan, mode)`, carried over with the
/// signed acceptance records it was made with. Applying imports it when the app has no
/// open (non-cancelled) subscription to the plan; an existing one is left as it is —
/// its state included, since subscription states are decided by people (approval,
/// suspension), not by manifests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// The subscribing app: `{org, slug}` of an app of a consumer org.
    pub app: SlugRef,
    /// The plan: `{org, slug}` of a plan of a provider org.
    pub plan: SlugRef,
    /// `active`, `pending` or `suspended` (cancelled subscriptions are not carried over).
    pub state: SubscriptionState,
    /// `live` (default) or `test`: which of the app's keys the subscription serves.
    #[serde(default, skip_serializing_if = "KeyMode::is_live")]
    pub mode: KeyMode,
    /// The signed acceptance records, oldest first, exactly as `tollgate export` wrote
    /// them: `record`, `key_id` and `signature` (base64 Ed25519 over the RFC 8785 JSON of
    /// `record`). Required when the plan offers terms. They are verified before anything
    /// is sent and imported as they are: never re-signed, never changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acceptances: Vec<Acceptance>,
}

/// An object named by its org's slug and its own slug.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlugRef {
    pub org: String,
    pub slug: String,
}

impl std::fmt::Display for SlugRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.org, self.slug)
    }
}
