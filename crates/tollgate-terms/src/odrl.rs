//! ODRL 2.2 export: a JSON-LD `Offer` per sheet and an `Agreement` per acceptance, so
//! partners' policy tools can read the terms. The `@context` is embedded (no remote
//! document to fetch), so the output expands offline.
//!
//! Mapping:
//! - each granted operation is a permission to `use` its target
//!   `urn:tollgate:api:<api>:op:<operation>`, with constraints: `dateTime` ≥ the
//!   effective date; `tg:scope` isAllOf the scopes; `spatial` isAnyOf the regions;
//!   `purpose` isAnyOf the purposes (DPV IRIs where DPV has the purpose); `count` ≤ each
//!   rate limit and quota, with the period as `unit` (`tg:perSecond`, `tg:perDay`,
//!   `tg:perCalendarMonth`, …) and the limit group as `tg:group`; the weekly windows as
//!   an `or` of `and`s over `tg:dayOfWeek` (1 = Monday) and `tg:timeOfDay`, local to
//!   `tg:timeZone`;
//! - duties: `obtainConsent` when calls need the data subject's consent; `delete` with
//!   `elapsedTime` ≤ the retention;
//! - prohibitions: `use` of every target during each blackout;
//! - the data categories and sensitivity are annotations (`tg:dataCategory`,
//!   `tg:sensitivity`), the sheet's hash is `tg:sha256`.

use crate::model::*;
use crate::validate::{OperationFacts, ValidatedSheet};
use serde_json::{Map, Value, json};

/// The namespace of Tollgate's ODRL profile terms.
pub const TG: &str = "https://tollgate.dev/ns/terms#";

/// The profile IRI the exported policies declare.
pub const PROFILE: &str = "https://tollgate.dev/ns/terms";

/// The ODRL 2.2 actions, left operands and operators the export uses, for checks.
pub const ODRL_TERMS: &[&str] = &[
    "use",
    "obtainConsent",
    "delete",
    "dateTime",
    "spatial",
    "purpose",
    "count",
    "elapsedTime",
    "eq",
    "lt",
    "lteq",
    "gteq",
    "isAnyOf",
    "isAllOf",
];

/// The embedded JSON-LD context: the ODRL 2.2 terms used, Tollgate's profile terms.
pub fn context() -> Value {
    let id = |iri: &str| json!({ "@id": iri, "@type": "@id" });
    let vocab = |iri: &str| json!({ "@id": iri, "@type": "@vocab" });
    json!({
        "@version": 1.1,
        "@vocab": "http://www.w3.org/ns/odrl/2/",
        "odrl": "http://www.w3.org/ns/odrl/2/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "dct": "http://purl.org/dc/terms/",
        "dpv": "https://w3id.org/dpv#",
        "tg": TG,
        "uid": "@id",
        "Offer": "odrl:Offer",
        "Agreement": "odrl:Agreement",
        "profile": id("odrl:profile"),
        "assigner": id("odrl:assigner"),
        "assignee": id("odrl:assignee"),
        "target": id("odrl:target"),
        "permission": id("odrl:permission"),
        "prohibition": id("odrl:prohibition"),
        "duty": id("odrl:duty"),
        "constraint": id("odrl:constraint"),
        "action": vocab("odrl:action"),
        "leftOperand": vocab("odrl:leftOperand"),
        "operator": vocab("odrl:operator"),
        "unit": vocab("odrl:unit"),
        "rightOperand": { "@id": "odrl:rightOperand" },
        "and": { "@id": "odrl:and", "@container": "@list" },
        "or": { "@id": "odrl:or", "@container": "@list" },
        "title": "dct:title",
        "issued": { "@id": "dct:issued", "@type": "xsd:dateTime" },
        "tg:sha256": {},
        "tg:version": {},
        "tg:group": {},
        "tg:timeZone": {},
        "tg:burst": { "@type": "xsd:integer" },
        "tg:perCredential": { "@type": "xsd:boolean" },
        "tg:dataCategory": {},
        "tg:sensitivity": {},
        "tg:reason": {},
        "tg:offer": { "@type": "@id" },
    })
}

/// Who accepted which sheet, for an `Agreement`.
#[derive(Debug, Clone)]
pub struct Acceptance<'a> {
    /// IRI of the acceptance record, e.g. `urn:tollgate:acceptance:<uuid>`.
    pub uid: &'a str,
    /// IRI of the accepting party, e.g. `urn:tollgate:subscription:<uuid>`.
    pub assignee: &'a str,
    /// When it was accepted.
    pub accepted_at: jiff::Timestamp,
}

/// The sheet as an ODRL `Offer` from `assigner` (the provider's IRI).
pub fn offer(v: &ValidatedSheet, assigner: &str) -> Value {
    policy(v, "Offer", &sheet_uid(v), assigner, None)
}

/// The sheet as an ODRL `Agreement` between `assigner` and the accepting party.
pub fn agreement(v: &ValidatedSheet, assigner: &str, acceptance: &Acceptance<'_>) -> Value {
    policy(v, "Agreement", acceptance.uid, assigner, Some(acceptance))
}

/// `urn:tollgate:terms:<id>:<version>`.
pub fn sheet_uid(v: &ValidatedSheet) -> String {
    format!(
        "urn:tollgate:terms:{}:{}",
        v.sheet().id,
        iri_escape(&v.version().to_string())
    )
}

/// The target IRI of an operation.
pub fn target(op: &OperationFacts) -> String {
    let name = match (&op.operation_id, &op.operation) {
        (Some(id), _) => id.clone(),
        (None, o) => o.to_string(),
    };
    format!("urn:tollgate:api:{}:op:{}", op.api, iri_escape(&name))
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `:`.
fn iri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn constraint(left: &str, op: &str, right: Value) -> Value {
    json!({ "leftOperand": left, "operator": op, "rightOperand": right })
}

fn typed(value: impl Into<Value>, ty: &str) -> Value {
    json!({ "@value": value.into(), "@type": ty })
}

fn purpose_iri(p: &str) -> String {
    let dpv = match p {
        "service-provision" => "ServiceProvision",
        "customer-management" => "CustomerManagement",
        "personalisation" => "Personalisation",
        "marketing" => "Marketing",
        "analytics" => "ServiceUsageAnalytics",
        "research" => "ResearchAndDevelopment",
        "fraud-prevention" => "FraudPreventionAndDetection",
        "security" => "EnforceSecurity",
        "legal-compliance" => "LegalCompliance",
        "payment" => "PaymentManagement",
        _ => return format!("{TG}purpose/{p}"),
    };
    format!("https://w3id.org/dpv#{dpv}")
}

fn windows_constraint(w: &Windows) -> Option<Value> {
    if w.allowed.is_empty() {
        return None;
    }
    let alternatives: Vec<Value> = w
        .allowed
        .iter()
        .map(|win| {
            let days: Vec<Value> = win
                .days
                .iter()
                .map(|d| typed(d.number(), "xsd:integer"))
                .collect();
            let time = |t: ClockTime| {
                // `24:00` is the end of the day: `< 24:00:00` is written `≤ 23:59:59`.
                if t.minutes() == 1440 {
                    ("lteq", typed("23:59:59", "xsd:time"))
                } else {
                    ("lt", typed(format!("{t}:00"), "xsd:time"))
                }
            };
            let (to_op, to) = time(win.to);
            json!({ "and": [
                constraint("tg:dayOfWeek", "isAnyOf", Value::Array(days)),
                constraint("tg:timeOfDay", "gteq", typed(format!("{}:00", win.from), "xsd:time")),
                constraint("tg:timeOfDay", to_op, to),
            ]})
        })
        .collect();
    Some(json!({ "or": alternatives, "tg:timeZone": w.time_zone }))
}

fn limit_constraints(v: &ValidatedSheet, op: &OperationFacts) -> Vec<Value> {
    let mut out = Vec::new();
    for r in v.rate_limits_for(op) {
        let unit = match r.per {
            RatePeriod::Second => "tg:perSecond",
            RatePeriod::Minute => "tg:perMinute",
            RatePeriod::Hour => "tg:perHour",
        };
        let mut c = constraint("count", "lteq", typed(r.requests, "xsd:integer"));
        c["unit"] = unit.into();
        c["tg:burst"] = r.burst.unwrap_or(r.requests).into();
        if r.per_credential {
            c["tg:perCredential"] = true.into();
        }
        c["tg:group"] = r.group.clone().unwrap_or_else(|| "all".into()).into();
        out.push(c);
    }
    for q in v.quotas_for(op) {
        let unit = match q.per {
            QuotaPeriod::Day => "tg:perDay",
            QuotaPeriod::CalendarMonth => "tg:perCalendarMonth",
            QuotaPeriod::BillingPeriod => "tg:perBillingPeriod",
        };
        let mut c = constraint("count", "lteq", typed(q.requests, "xsd:integer"));
        c["unit"] = unit.into();
        c["tg:group"] = q.group.clone().unwrap_or_else(|| "all".into()).into();
        out.push(c);
    }
    out
}

fn policy(
    v: &ValidatedSheet,
    kind: &str,
    uid: &str,
    assigner: &str,
    acceptance: Option<&Acceptance<'_>>,
) -> Value {
    let s = v.sheet();
    let mut common = vec![constraint(
        "dateTime",
        "gteq",
        typed(s.effective.to_string(), "xsd:date"),
    )];
    if let Some(regions) = &s.data.regions {
        let r: Vec<Value> = regions
            .iter()
            .map(|r| json!({ "@id": format!("urn:tollgate:region:{r}") }))
            .collect();
        common.push(constraint("spatial", "isAnyOf", Value::Array(r)));
    }
    if !s.data.purposes.is_empty() {
        let p: Vec<Value> = s
            .data
            .purposes
            .iter()
            .map(|p| json!({ "@id": purpose_iri(&p.0) }))
            .collect();
        common.push(constraint("purpose", "isAnyOf", Value::Array(p)));
    }
    if let Some(c) = s.windows.as_ref().and_then(windows_constraint) {
        common.push(c);
    }

    let permissions: Vec<Value> = v
        .operations()
        .iter()
        .map(|op| {
            let mut constraints = common.clone();
            if !op.scopes.is_empty() {
                constraints.push(constraint("tg:scope", "isAllOf", json!(op.scopes)));
            }
            constraints.extend(limit_constraints(v, op));
            let mut p = Map::new();
            p.insert("target".into(), target(op).into());
            p.insert("action".into(), "use".into());
            p.insert("constraint".into(), Value::Array(constraints));
            let mut duties = Vec::new();
            if op.consent_required {
                duties.push(json!({ "action": "obtainConsent" }));
            }
            if let Some(days) = s.data.retention_days.filter(|_| !op.categories.is_empty()) {
                duties.push(json!({
                    "action": "delete",
                    "constraint": [constraint(
                        "elapsedTime",
                        "lteq",
                        typed(format!("P{days}D"), "xsd:duration"),
                    )],
                }));
            }
            if !duties.is_empty() {
                p.insert("duty".into(), Value::Array(duties));
            }
            if !op.categories.is_empty() {
                p.insert(
                    "tg:dataCategory".into(),
                    json!(op.categories.iter().map(|c| &c.0).collect::<Vec<_>>()),
                );
            }
            p.insert("tg:sensitivity".into(), op.sensitivity.as_str().into());
            Value::Object(p)
        })
        .collect();

    let targets: Vec<Value> = v.operations().iter().map(|o| target(o).into()).collect();
    let targets = &targets;
    let prohibitions: Vec<Value> = s
        .windows
        .iter()
        .flat_map(|w| {
            w.blackout.iter().map(move |b| {
                let to = b.to.unwrap_or(b.from);
                let mut p = json!({
                    "target": targets.clone(),
                    "action": "use",
                    "constraint": [
                        constraint("dateTime", "gteq", typed(b.from.to_string(), "xsd:date")),
                        constraint("dateTime", "lteq", typed(to.to_string(), "xsd:date")),
                    ],
                    "tg:timeZone": w.time_zone,
                });
                if let Some(r) = &b.reason {
                    p["tg:reason"] = r.clone().into();
                }
                p
            })
        })
        .collect();

    let mut out = Map::new();
    out.insert("@context".into(), context());
    out.insert("@type".into(), kind.into());
    out.insert("uid".into(), uid.into());
    out.insert("profile".into(), PROFILE.into());
    out.insert("title".into(), s.title.clone().into());
    out.insert("tg:version".into(), v.version().to_string().into());
    out.insert("tg:sha256".into(), v.sha256().into());
    out.insert("assigner".into(), assigner.into());
    if let Some(a) = acceptance {
        out.insert("assignee".into(), a.assignee.into());
        out.insert("issued".into(), a.accepted_at.to_string().into());
        out.insert("tg:offer".into(), sheet_uid(v).into());
    }
    out.insert("permission".into(), Value::Array(permissions));
    if !prohibitions.is_empty() {
        out.insert("prohibition".into(), Value::Array(prohibitions));
    }
    Value::Object(out)
}
