//! Usage events: what every metered call becomes — a CloudEvents 1.0 JSON event — and the
//! canonical bytes that make it a leaf of the usage ledger.
//!
//! # Leaf encoding, version 1
//!
//! `0x01 ‖ JCS(event)`: one version byte, then the event as RFC 8785 canonical JSON (keys
//! sorted by UTF-16 code units, no insignificant whitespace, strings escaped as
//! ECMAScript's `JSON.stringify` does). [`UsageEvent::leaf`] writes it directly: every
//! struct below declares its fields in canonical order, provider fields are a sorted map of
//! scalars, and numbers are integers within ±2^53, so plain serialization already *is*
//! the canonical form; a test holds it equal to a general JCS encoder. A new shape of
//! event is a new version byte, never a silent change to old leaves (DESIGN.md §1).
//!
//! Events carry metadata only, never payloads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::apikey::KeyMode;
use crate::{ApiId, AppId, OrgId, SubscriptionId};

/// The leaf encoding version [`UsageEvent::leaf`] writes.
pub const LEAF_VERSION: u8 = 1;
/// CloudEvents `specversion`.
pub const SPEC_VERSION: &str = "1.0";
/// `type` of a call metered by the gateway.
pub const GATEWAY_CALL_TYPE: &str = "dev.tollgate.usage.call.v1";
/// `type` of usage a provider reported through the ingestion API.
pub const REPORTED_TYPE: &str = "dev.tollgate.usage.reported.v1";
/// The largest integer a canonical leaf may hold (IEEE 754 doubles are exact up to it;
/// RFC 8785 writes larger ones in exponent form).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// One usage event, CloudEvents 1.0 JSON format. Fields are declared in canonical
/// (sorted) order; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    pub data: UsageData,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// Unique per `source` (the gateway uses the call's UUIDv7, also sent to the consumer
    /// as `Tollgate-Usage-Id`); (`source`, `id`) is the idempotency key.
    pub id: String,
    /// Who produced the event: `/tollgate/<node>/gateway`, or `/providers/<org id>` for
    /// reported usage.
    pub source: String,
    /// `1.0`.
    pub specversion: String,
    /// The subscription the usage belongs to.
    pub subject: String,
    /// When the call ended (gateway clock), RFC 3339 UTC with microseconds.
    pub time: String,
    /// [`GATEWAY_CALL_TYPE`] or [`REPORTED_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// What a usage event says about the call. Declared in canonical (sorted) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageData {
    pub api_id: ApiId,
    pub app_id: AppId,
    /// Keyed hash of the client IP (never the address itself), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_hash: Option<String>,
    pub consumer_org_id: OrgId,
    /// The API key, OAuth client or signing key id (never a secret).
    pub credential_id: String,
    /// Provider-reported fields (e.g. `amount` for percentage pricing): strings,
    /// booleans and integers within ±2^53 only — amounts as decimal strings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldValue>,
    /// Microseconds from the request's arrival at the gateway to the end of the response.
    pub latency_us: u64,
    pub method: String,
    /// `live` or `test`: which log the event belongs to.
    pub mode: KeyMode,
    pub operation_id: String,
    /// Ids of the policies that allowed the call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_ids: Vec<String>,
    pub provider_org_id: OrgId,
    /// The gateway failed the call before the upstream served it (connect error, open
    /// breaker, timeout…) and gave back the limits it took: it counts against no quota.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refunded: bool,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// The configuration snapshot that served the call (0 for reported usage).
    pub snapshot_version: u64,
    /// HTTP status sent to the consumer.
    pub status: u16,
    pub subscription_id: SubscriptionId,
    /// SHA-256 of the term sheet the call was served under: billing rates by its prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_sha256: Option<String>,
}

/// A provider-reported field value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Integer(i64),
    String(String),
}

/// Why a usage event is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("{0} must be {1}")]
    Field(&'static str, &'static str),
    #[error("field {0:?}: integers must lie within ±2^53 (write larger amounts as strings)")]
    Integer(String),
    #[error("leaf version {0} is not known")]
    Version(u8),
    #[error("not a usage event: {0}")]
    Decode(String),
}

impl UsageEvent {
    /// Checks the envelope and the data for what a leaf may hold.
    pub fn validate(&self) -> Result<(), UsageError> {
        if self.specversion != SPEC_VERSION {
            return Err(UsageError::Field("specversion", "\"1.0\""));
        }
        if self.datacontenttype != "application/json" {
            return Err(UsageError::Field("datacontenttype", "\"application/json\""));
        }
        if self.id.is_empty() || self.id.len() > 200 {
            return Err(UsageError::Field("id", "1 to 200 characters"));
        }
        if self.source.is_empty() || self.source.len() > 200 {
            return Err(UsageError::Field("source", "1 to 200 characters"));
        }
        if self.subject != self.data.subscription_id.to_string() {
            return Err(UsageError::Field("subject", "the subscription id of data"));
        }
        if parse_time(&self.time).is_none() {
            return Err(UsageError::Field("time", "an RFC 3339 timestamp"));
        }
        for (name, value) in &self.data.fields {
            // ASCII names sort the same by UTF-8 bytes (the map's order) and by UTF-16
            // code units (RFC 8785's), which keeps the plain serialization canonical.
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !name_ok {
                return Err(UsageError::Field(
                    "data.fields names",
                    "1 to 64 ASCII letters, digits, '_', '-' or '.'",
                ));
            }
            if let FieldValue::Integer(n) = value
                && !(-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(n)
            {
                return Err(UsageError::Integer(name.clone()));
            }
        }
        Ok(())
    }

    /// The event's time.
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        parse_time(&self.time)
    }

    /// The version-1 leaf: `0x01 ‖ JCS(self)` (module docs). Call [`UsageEvent::validate`]
    /// first for events from outside; gateway events are valid by construction.
    pub fn leaf(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(640);
        out.push(LEAF_VERSION);
        serde_json::to_writer(&mut out, self).expect("a usage event serializes");
        out
    }

    /// Reads a leaf back.
    pub fn from_leaf(leaf: &[u8]) -> Result<Self, UsageError> {
        match leaf.split_first() {
            Some((&LEAF_VERSION, json)) => {
                serde_json::from_slice(json).map_err(|e| UsageError::Decode(e.to_string()))
            }
            Some((&v, _)) => Err(UsageError::Version(v)),
            None => Err(UsageError::Decode("empty leaf".to_owned())),
        }
    }
}

/// RFC 3339 UTC with exactly six fractional digits: one spelling per instant, so the
/// same call always gives the same leaf.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Parses an RFC 3339 timestamp.
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(text: &str, fields: BTreeMap<String, FieldValue>) -> UsageEvent {
        let sub = SubscriptionId::new();
        UsageEvent {
            data: UsageData {
                api_id: ApiId::new(),
                app_id: AppId::new(),
                client_ip_hash: Some(text.to_owned()),
                consumer_org_id: OrgId::new(),
                credential_id: text.to_owned(),
                fields,
                latency_us: 1234,
                method: "GET".to_owned(),
                mode: KeyMode::Live,
                operation_id: text.to_owned(),
                policy_ids: vec!["p1".to_owned(), text.to_owned()],
                provider_org_id: OrgId::new(),
                refunded: text.len().is_multiple_of(2),
                request_bytes: 0,
                response_bytes: 1024,
                snapshot_version: 7,
                status: 200,
                subscription_id: sub,
                terms_sha256: Some("ab".repeat(32)),
            },
            datacontenttype: "application/json".to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            source: "/tollgate/node-1/gateway".to_owned(),
            specversion: "1.0".to_owned(),
            subject: sub.to_string(),
            time: format_time(OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(5)),
            kind: GATEWAY_CALL_TYPE.to_owned(),
        }
    }

    proptest! {
        /// The fast encoding is RFC 8785 canonical JSON, whatever the strings hold
        /// (control characters, quotes, non-ASCII, astral planes) and whatever fields.
        #[test]
        fn leaf_is_jcs(text in "\\PC*|[\\x00-\\x1f\"\\\\/\u{7f}-\u{10ffff}]{0,12}",
                       keys in proptest::collection::vec("[a-zA-Z0-9_.-]{1,6}", 0..4),
                       n in -MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER) {
            let mut fields = BTreeMap::new();
            for (i, k) in keys.into_iter().enumerate() {
                let v = match i % 3 {
                    0 => FieldValue::Integer(n),
                    1 => FieldValue::String(text.clone()),
                    _ => FieldValue::Bool(true),
                };
                fields.insert(k, v);
            }
            let e = event(&text, fields);
            prop_assert!(e.validate().is_ok());
            let leaf = e.leaf();
            let mut jcs = vec![LEAF_VERSION];
            jcs.extend(serde_jcs::to_vec(&e).unwrap());
            prop_assert_eq!(&leaf, &jcs);
            prop_assert_eq!(UsageEvent::from_leaf(&leaf).unwrap(), e);
        }
    }

    #[test]
    fn validation_and_versions() {
        let mut e = event("x", BTreeMap::new());
        assert!(e.validate().is_ok());
        assert_eq!(e.time, "1970-01-01T00:00:00.000005Z");
        e.data
            .fields
            .insert("big".into(), FieldValue::Integer(1 << 53));
        assert_eq!(e.validate(), Err(UsageError::Integer("big".into())));
        let mut e = event("x", BTreeMap::new());
        e.data.fields.insert("é".into(), FieldValue::Bool(true));
        assert!(e.validate().is_err());
        let mut e = event("x", BTreeMap::new());
        e.subject = SubscriptionId::new().to_string();
        assert!(e.validate().is_err());
        let mut leaf = event("x", BTreeMap::new()).leaf();
        leaf[0] = 2;
        assert_eq!(UsageEvent::from_leaf(&leaf), Err(UsageError::Version(2)));
    }
}
