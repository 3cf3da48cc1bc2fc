//! The usage event as the rater sees it (DESIGN.md §1: id, time, subscription, operation,
//! status, bytes, latency and the term sheet hash it was served under), and meters
//! compiled against it so that a million events are matched without re-parsing names.

use crate::model::{Aggregate, Filter, Meter, StatusClass};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::str::FromStr;

/// One usage event, a leaf of the usage ledger as far as billing cares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    /// The event id (unique in the ledger).
    pub id: String,
    /// When the request ended, by the gateway's clock (or the subscription's test clock).
    pub time: Timestamp,
    /// The subscription the call was made under.
    pub subscription: String,
    /// The operation id called.
    pub operation: String,
    /// The HTTP method, in capitals.
    pub method: String,
    /// The response status sent to the client.
    pub status: u16,
    /// Request body bytes.
    pub request_bytes: u64,
    /// Response body bytes.
    pub response_bytes: u64,
    /// Time to the end of the response, in milliseconds.
    pub latency_ms: u64,
    /// SHA-256 of the term sheet the call was served under: its prices rate the event.
    pub term_sheet: String,
    /// Fields the provider reported, e.g. `{"amount": "12.50"}` for percentage pricing.
    /// Numbers are best written as decimal strings.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
}

/// A field of an event, resolved once from its name in the price book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    /// `operation`.
    Operation,
    /// `method`.
    Method,
    /// `status`.
    Status,
    /// `request_bytes`.
    RequestBytes,
    /// `response_bytes`.
    ResponseBytes,
    /// `latency_ms`.
    LatencyMs,
    /// `fields.<name>`: a provider-reported field.
    Custom(String),
}

impl FieldRef {
    /// Resolves a field name from a price book; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<FieldRef> {
        Some(match name {
            "operation" => FieldRef::Operation,
            "method" => FieldRef::Method,
            "status" => FieldRef::Status,
            "request_bytes" => FieldRef::RequestBytes,
            "response_bytes" => FieldRef::ResponseBytes,
            "latency_ms" => FieldRef::LatencyMs,
            _ => {
                let custom = name.strip_prefix("fields.")?;
                if custom.is_empty() {
                    return None;
                }
                FieldRef::Custom(custom.to_string())
            }
        })
    }

    /// Whether the field can hold a number (`sum` and `max` need one).
    pub fn is_numeric_capable(&self) -> bool {
        !matches!(self, FieldRef::Operation | FieldRef::Method)
    }

    /// The field's number in `e`, if it has one. Provider fields are read from decimal
    /// strings or JSON numbers (through their shortest decimal text).
    pub fn number(&self, e: &UsageEvent) -> Option<Decimal> {
        match self {
            FieldRef::Operation | FieldRef::Method => None,
            FieldRef::Status => Some(Decimal::from(e.status)),
            FieldRef::RequestBytes => Some(Decimal::from(e.request_bytes)),
            FieldRef::ResponseBytes => Some(Decimal::from(e.response_bytes)),
            FieldRef::LatencyMs => Some(Decimal::from(e.latency_ms)),
            FieldRef::Custom(name) => match e.fields.get(name)? {
                Value::String(s) => Decimal::from_str_exact(s).ok(),
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        Some(Decimal::from(i))
                    } else if let Some(u) = n.as_u64() {
                        Some(Decimal::from(u))
                    } else {
                        Decimal::from_str(&n.to_string()).ok()
                    }
                }
                _ => None,
            },
        }
    }

    /// The field's value in `e` as a JSON value, for equality filters and distinct counts.
    pub fn value(&self, e: &UsageEvent) -> Option<Value> {
        Some(match self {
            FieldRef::Operation => Value::from(e.operation.as_str()),
            FieldRef::Method => Value::from(e.method.as_str()),
            FieldRef::Status => Value::from(e.status),
            FieldRef::RequestBytes => Value::from(e.request_bytes),
            FieldRef::ResponseBytes => Value::from(e.response_bytes),
            FieldRef::LatencyMs => Value::from(e.latency_ms),
            FieldRef::Custom(name) => e.fields.get(name)?.clone(),
        })
    }

    /// Equality with a filter value without cloning the event's value.
    fn equals(&self, e: &UsageEvent, want: &Value) -> bool {
        match (self, want) {
            (FieldRef::Operation, Value::String(s)) => e.operation == *s,
            (FieldRef::Method, Value::String(s)) => e.method == *s,
            (FieldRef::Custom(name), _) => e.fields.get(name) == Some(want),
            _ => self.value(e).as_ref() == Some(want),
        }
    }
}

/// A meter resolved against the event shape: which events match and what they measure.
#[derive(Debug, Clone)]
pub(crate) struct CompiledMeter {
    pub aggregate: Aggregate,
    pub field: Option<FieldRef>,
    operations: Vec<String>,
    status: Vec<StatusClass>,
    methods: Vec<String>,
    equals: Vec<(FieldRef, Value)>,
}

impl CompiledMeter {
    /// Compiles a validated meter (unknown field names were refused by validation).
    pub fn new(m: &Meter) -> CompiledMeter {
        let Filter {
            operations,
            status,
            methods,
            equals,
        } = &m.filter;
        CompiledMeter {
            aggregate: m.aggregate,
            field: m.field.as_deref().and_then(FieldRef::parse),
            operations: operations.clone(),
            status: status.clone(),
            methods: methods.clone(),
            equals: equals
                .iter()
                .filter_map(|(k, v)| Some((FieldRef::parse(k)?, v.clone())))
                .collect(),
        }
    }

    /// Whether `e` passes the filter (not yet whether it has the measured field).
    pub fn matches(&self, e: &UsageEvent) -> bool {
        (self.operations.is_empty() || self.operations.contains(&e.operation))
            && (self.status.is_empty() || self.status.iter().any(|c| c.contains(e.status)))
            && (self.methods.is_empty() || self.methods.contains(&e.method))
            && self.equals.iter().all(|(f, v)| f.equals(e, v))
    }

    /// What `e` contributes: `Some(1)` for a count, the field's number for sum and max,
    /// `Some(0)` for a distinct count that has the field (the distinct values are
    /// collected by the caller); `None` when the event does not contribute.
    pub fn measure(&self, e: &UsageEvent) -> Option<Decimal> {
        if !self.matches(e) {
            return None;
        }
        match (self.aggregate, &self.field) {
            (Aggregate::Count, _) => Some(Decimal::ONE),
            (Aggregate::Sum | Aggregate::Max, Some(f)) => f.number(e),
            (Aggregate::UniqueCount, Some(f)) => f.value(e).map(|_| Decimal::ZERO),
            (_, None) => None,
        }
    }
}
