//! Realistic plans, operator policies and a directory shared by the tests.

use jiff::civil::{Weekday, date};
use tollgate_policy::{
    CompiledPlan, Directory, Grant, Hours, OperatorPolicies, PlanTerms, RequestFacts, SensitiveOp,
    SubscriptionFacts, Window, compile,
};

pub const WEATHER: &str = "weather-pro@3f1c9a0e";
pub const HEALTH: &str = "health-records@b7d2e415";
pub const BATCH: &str = "night-batch@90aa11cd";

pub const WEEKDAYS: [Weekday; 5] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
];

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// Business hours in Paris, EU regions only, two scoped grants, blackout dates.
pub fn weather_terms() -> PlanTerms {
    PlanTerms {
        key: WEATHER.into(),
        grants: vec![
            Grant {
                api: "weather".into(),
                operations: s(&["getForecast", "getCurrent"]),
                scopes: s(&["weather:read"]),
            },
            Grant {
                api: "weather".into(),
                operations: s(&["getHistory"]),
                scopes: s(&["weather:read", "weather:history"]),
            },
        ],
        window: Some(Window {
            tz: "Europe/Paris".into(),
            allow: vec![Hours {
                days: WEEKDAYS.to_vec(),
                from_minute: 8 * 60,
                to_minute: 18 * 60,
            }],
            blackout: vec![date(2026, 12, 25), date(2027, 1, 1)],
        }),
        regions: Some(s(&["eu-west", "eu-central"])),
        sensitive: vec![],
        purposes: None,
    }
}

/// Personal data: consent per category, purposes, two APIs, no window.
pub fn health_terms() -> PlanTerms {
    PlanTerms {
        key: HEALTH.into(),
        grants: vec![
            Grant {
                api: "records".into(),
                operations: s(&["listPatients", "getPatient", "getLabResults"]),
                scopes: s(&["records:read"]),
            },
            Grant {
                api: "geo".into(),
                operations: s(&["lookup"]),
                scopes: vec![],
            },
        ],
        window: None,
        regions: Some(s(&["eu-west"])),
        sensitive: vec![
            SensitiveOp {
                api: "records".into(),
                operation: "getPatient".into(),
                categories: s(&["health", "contact"]),
                consent_required: true,
            },
            SensitiveOp {
                api: "records".into(),
                operation: "getLabResults".into(),
                categories: s(&["contact", "health"]),
                consent_required: true,
            },
            SensitiveOp {
                api: "geo".into(),
                operation: "lookup".into(),
                categories: s(&["location"]),
                consent_required: true,
            },
            SensitiveOp {
                api: "records".into(),
                operation: "listPatients".into(),
                categories: s(&["contact"]),
                consent_required: false,
            },
        ],
        purposes: Some(s(&["treatment", "research"])),
    }
}

/// Overnight batch window in New York, any region.
pub fn batch_terms() -> PlanTerms {
    PlanTerms {
        key: BATCH.into(),
        grants: vec![Grant {
            api: "batch".into(),
            operations: s(&["submitJob", "getJob"]),
            scopes: vec![],
        }],
        window: Some(Window {
            tz: "America/New_York".into(),
            allow: vec![Hours {
                days: WEEKDAYS.to_vec(),
                from_minute: 22 * 60,
                to_minute: 6 * 60,
            }],
            blackout: vec![],
        }),
        regions: None,
        sensitive: vec![],
        purposes: None,
    }
}

pub const OPERATOR: &str = r#"// Operator-wide: no traffic from embargoed regions, whatever the plan says.
@id("operator/embargo")
forbid (principal, action, resource)
when { context has region && ["embargo-a", "embargo-b"].contains(context.region) };
"#;

pub fn operator() -> OperatorPolicies {
    OperatorPolicies::parse(OPERATOR).unwrap()
}

pub fn plans() -> Vec<CompiledPlan> {
    let op = operator();
    [weather_terms(), health_terms(), batch_terms()]
        .iter()
        .map(|t| compile(t, &op).unwrap())
        .collect()
}

pub fn subscriptions() -> Vec<SubscriptionFacts> {
    let sub = |id: &str, app: &str, org: &str, plan: &str, active: bool| SubscriptionFacts {
        subscription_id: id.into(),
        app_id: app.into(),
        org_id: org.into(),
        plan_key: plan.into(),
        active,
    };
    vec![
        sub("s-alpha-weather", "alpha", "acme", WEATHER, true),
        sub("s-alpha-health", "alpha", "acme", HEALTH, true),
        sub("s-beta-weather", "beta", "globex", WEATHER, false),
        sub("s-beta-batch", "beta", "globex", BATCH, true),
        sub("s-gamma-health", "gamma", "initech", HEALTH, false),
        sub("s-gamma-health-2", "gamma", "initech", HEALTH, true),
        sub("s-delta-batch", "delta", "acme", BATCH, false),
    ]
}

pub fn directory() -> Directory {
    Directory::new(&subscriptions()).unwrap()
}

/// Owned request facts, borrowed as [`RequestFacts`].
#[derive(Debug, Clone)]
pub struct Facts {
    pub app_id: String,
    pub api: String,
    pub operation: String,
    pub scopes: Vec<String>,
    pub region: Option<String>,
    pub data_categories: Vec<String>,
    pub purpose: Option<String>,
    pub consent: Vec<String>,
    pub auth_method: String,
}

impl Facts {
    pub fn new(app: &str, api: &str, op: &str) -> Self {
        Self {
            app_id: app.into(),
            api: api.into(),
            operation: op.into(),
            scopes: vec![],
            region: Some("eu-west".into()),
            data_categories: vec![],
            purpose: None,
            consent: vec![],
            auth_method: "api_key".into(),
        }
    }

    pub fn scopes(mut self, v: &[&str]) -> Self {
        self.scopes = s(v);
        self
    }

    pub fn region(mut self, r: Option<&str>) -> Self {
        self.region = r.map(str::to_owned);
        self
    }

    pub fn consent(mut self, v: &[&str]) -> Self {
        self.consent = s(v);
        self
    }

    pub fn purpose(mut self, p: &str) -> Self {
        self.purpose = Some(p.into());
        self
    }

    pub fn facts(&self) -> RequestFacts<'_> {
        RequestFacts {
            app_id: &self.app_id,
            api: &self.api,
            operation: &self.operation,
            scopes: &self.scopes,
            region: self.region.as_deref(),
            data_categories: &self.data_categories,
            purpose: self.purpose.as_deref(),
            consent: &self.consent,
            auth_method: &self.auth_method,
        }
    }
}
