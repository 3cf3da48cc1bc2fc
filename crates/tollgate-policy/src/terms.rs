//! The machine clauses of one plan version that authorization needs, as this crate's own
//! input types (the term-sheet model is mapped onto them by the caller).

use jiff::civil::{Date, Weekday};

/// The clauses of one plan version that compile into its Cedar policy slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanTerms {
    /// `<plan_id>@<sheet_sha256>`: one compiled slice per plan version. It names the
    /// `Plan` entity subscriptions are `in` and prefixes every policy id.
    pub key: String,
    /// What may be called, and with which scopes.
    pub grants: Vec<Grant>,
    /// Allowed hours and blackout dates; `None` = any time.
    pub window: Option<Window>,
    /// Allowed region names (from the operator's CIDR table); `None` = any, including
    /// clients whose address matched no region.
    pub regions: Option<Vec<String>>,
    /// Operations that return personal data, and whether they need consent.
    pub sensitive: Vec<SensitiveOp>,
    /// Permitted purposes; `None` = no purpose needed. When set, every call must declare
    /// one of them.
    pub purposes: Option<Vec<String>>,
}

/// Operations of one API a plan grants, and the scopes a credential needs to call them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// API id.
    pub api: String,
    /// operationIds (non-empty).
    pub operations: Vec<String>,
    /// Scopes the credential must all hold; empty = none.
    pub scopes: Vec<String>,
}

/// When calls are allowed, in one IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// IANA zone name, e.g. `Europe/Paris`.
    pub tz: String,
    /// A call is allowed when it falls into any of these (non-empty).
    pub allow: Vec<Hours>,
    /// Local dates on which no call is allowed.
    pub blackout: Vec<Date>,
}

/// Allowed local hours on some weekdays: `[from_minute, to_minute)` in minutes after
/// midnight. `to_minute` may be 1440 (end of day). When `from_minute > to_minute` the
/// span runs overnight: it starts on the listed days and ends the next morning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hours {
    pub days: Vec<Weekday>,
    pub from_minute: u16,
    pub to_minute: u16,
}

/// An operation whose responses carry personal data of the given categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensitiveOp {
    pub api: String,
    pub operation: String,
    /// Data categories (e.g. `health`, `location`).
    pub categories: Vec<String>,
    /// Whether a call needs the caller's valid consent for every one of the categories.
    pub consent_required: bool,
}
