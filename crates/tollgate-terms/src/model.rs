//! The term sheet as written in a file: every field a provider can set, with the doc
//! comments that are its user documentation. Parsing accepts YAML, TOML and JSON (see
//! `load`); checking the values against each other is `validate`'s job.
//!
//! A complete sheet in YAML:
//!
//! ```yaml
//! id: weather-standard
//! version: 1.0.0
//! title: Weather API — Standard
//! effective: 2026-01-01
//! jurisdiction: FR
//! governing_law: the laws of France
//! language: en
//! sections:
//!   - id: acceptable-use
//!     title: Acceptable use
//!     body: Do not resell raw forecasts.
//! grants:
//!   - api: weather
//!     operations: [getWeather, "GET /alerts/{region}"]
//!     scopes: [weather:read]
//!     group: standard
//! limits:
//!   rate: [{ group: standard, requests: 10, per: second, burst: 20 }]
//!   quota: [{ group: standard, requests: 100000, per: calendar_month }]
//! windows:
//!   time_zone: Europe/Paris
//!   allowed: [{ days: [mon, tue, wed, thu, fri], from: "08:00", to: "18:00" }]
//! sla:
//!   availability: "99.9"
//!   credits: [{ below: "99.9", credit: "10" }, { below: "99", credit: "25" }]
//! notice: { days: 30, on_expiry: move }
//! ```

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;
use std::str::FromStr;

/// One term sheet: the human text and the machine clauses of one version of a plan's
/// terms. Its identity is the SHA-256 of its canonical form (see `hash`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TermSheet {
    /// Optional URL of the JSON Schema the file follows, for editors. It is not part of
    /// the terms: it does not enter the hash, the rendering or the diff.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The sheet's slug, stable across versions: lowercase letters, digits and `-`,
    /// 1–63 characters, e.g. `weather-standard`.
    pub id: String,
    /// The version, in semantic versioning (`1.2.0`). A published version never changes;
    /// a new version is a new sheet.
    pub version: String,
    /// The name people see, e.g. `Weather API — Standard terms`.
    pub title: String,
    /// The date (`YYYY-MM-DD`) from which these terms apply.
    pub effective: IsoDate,
    /// Where the contract is made: an ISO 3166-1 alpha-2 country code, optionally with a
    /// subdivision (`FR`, `US-CA`), or `EU`.
    pub jurisdiction: String,
    /// The law that governs the contract, in words, e.g. `the laws of France`.
    pub governing_law: String,
    /// The language of the human text, as a BCP 47 tag (`en`, `fr-CH`).
    pub language: String,
    /// The human text, in order: acceptable use, liability, termination, … Each body is
    /// Markdown; raw HTML in it is shown as text, never interpreted.
    #[serde(default)]
    pub sections: Vec<Section>,
    /// What a subscriber may call. Each operation appears in one grant only; operations
    /// not granted are denied.
    pub grants: Vec<Grant>,
    /// What the subscriber may do with the data the granted operations return.
    #[serde(default)]
    pub data: DataPolicy,
    /// Rate limits and quotas.
    #[serde(default)]
    pub limits: Limits,
    /// When calls are allowed. Absent: at any time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Windows>,
    /// What the provider promises about availability and latency, and the service
    /// credits owed when it falls short. Absent: no promise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<Sla>,
    /// The prices, inline or by reference to an immutable price version. The sheet's hash
    /// covers them either way, so a price change is a new sheet version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// How changes are announced and what happens to subscriptions that have not
    /// accepted a newer version when the notice ends.
    pub notice: Notice,
}

/// One section of human text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Slug naming the section across versions (`acceptable-use`), so a diff can tell a
    /// changed section from a new one.
    pub id: String,
    /// Heading, plain text.
    pub title: String,
    /// Markdown. Line endings and trailing blank space do not matter (they are
    /// normalised before hashing).
    pub body: String,
}

/// A set of operations of one API that share scopes, a limit group and data facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The API's slug in the catalog, e.g. `weather`.
    pub api: String,
    /// The operations, each either an `operationId` (`getWeather`) or a method and a path
    /// template relative to the API's base path (`GET /alerts/{region}`).
    pub operations: Vec<OperationRef>,
    /// OAuth scopes the caller's credential must all carry to call these operations,
    /// e.g. `weather:read`. Empty: no scope needed.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The operation group whose rate limits and quotas count these calls, e.g.
    /// `standard`. Absent: only the sheet-wide limits apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The personal data these operations return.
    #[serde(default)]
    pub data: GrantData,
}

/// What personal data a grant's operations return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantData {
    /// Data categories from the controlled vocabulary (W3C DPV-style: `contact`,
    /// `financial`, `location`, `health`, …; see `vocab::CATEGORIES`) or extensions
    /// starting with `x-`. Empty: no personal data.
    #[serde(default)]
    pub categories: Vec<Category>,
    /// How sensitive the data is. Absent: the least level the categories allow (`public`
    /// without categories, `personal` with, `sensitive` with a special category such as
    /// `health`). A level below that is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Sensitivity>,
    /// Whether each call needs a valid consent token of the data subject. Absent: true
    /// exactly when the sensitivity is `sensitive`; `false` with `sensitive` is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_required: Option<bool>,
}

/// How sensitive the data of an operation is, from least to most.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// No personal data.
    Public,
    /// Personal data (GDPR art. 4).
    Personal,
    /// Special categories (GDPR art. 9: health, biometric, …) or otherwise sensitive
    /// data; calls always need the data subject's consent.
    Sensitive,
}

impl Sensitivity {
    /// The level as a number (0, 1, 2) for comparisons in policies.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The lowercase name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Public => "public",
            Sensitivity::Personal => "personal",
            Sensitivity::Sensitive => "sensitive",
        }
    }
}

/// A data category: a name of `vocab::CATEGORIES` or an `x-` extension.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Category(pub String);

/// A purpose of processing: a name of `vocab::PURPOSES` or an `x-` extension.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct Purpose(pub String);

/// What the subscriber may do with the data it receives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataPolicy {
    /// Purposes the data may be used for (`service-provision`, `research`, …; see
    /// `vocab::PURPOSES`, or `x-` extensions). Required when any operation returns
    /// personal data; empty otherwise means any purpose.
    #[serde(default)]
    pub purposes: Vec<Purpose>,
    /// How many days the subscriber may keep the data; `0` means not beyond the
    /// request. Absent: no limit stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Regions calls may come from, by name (`eu`, `ch`). The operator maps client IP
    /// ranges to region names; a region no range maps to never matches. Absent: any
    /// region; an empty list is an error (it would allow none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
}

/// Rate limits and quotas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// IANA time zone in which quota days and calendar months begin. Absent: `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Rate limits: at most one per group and period.
    #[serde(default)]
    pub rate: Vec<RateLimit>,
    /// Quotas: at most one per group and period.
    #[serde(default)]
    pub quota: Vec<Quota>,
}

/// A rate limit (enforced with GCRA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// The operation group it counts (see `Grant::group`). Absent: all calls under the
    /// sheet together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Requests allowed per period; at least 1.
    pub requests: u64,
    /// `second`, `minute` or `hour`.
    pub per: RatePeriod,
    /// How many requests may arrive at once. Absent: equal to `requests` (writing that
    /// value or omitting it is the same sheet, with the same hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// Count each credential (API key, OAuth client) of the subscriber separately,
    /// instead of all calls under the subscription together. Absent: `false`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub per_credential: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The period of a rate limit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RatePeriod {
    Second,
    Minute,
    Hour,
}

impl RatePeriod {
    /// Length in seconds.
    pub fn seconds(self) -> u64 {
        match self {
            RatePeriod::Second => 1,
            RatePeriod::Minute => 60,
            RatePeriod::Hour => 3600,
        }
    }

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            RatePeriod::Second => "second",
            RatePeriod::Minute => "minute",
            RatePeriod::Hour => "hour",
        }
    }
}

/// A quota: a count of requests per period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// The operation group it counts. Absent: all calls under the sheet together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Requests allowed per period; at least 1.
    pub requests: u64,
    /// `day`, `calendar_month` (in `limits.time_zone`) or `billing_period` (the
    /// subscription's billing period, anniversary-based).
    pub per: QuotaPeriod,
}

/// The period of a quota.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Day,
    CalendarMonth,
    BillingPeriod,
}

impl QuotaPeriod {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaPeriod::Day => "day",
            QuotaPeriod::CalendarMonth => "calendar_month",
            QuotaPeriod::BillingPeriod => "billing_period",
        }
    }
}

/// When calls are allowed, in one IANA time zone (daylight saving time included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    /// IANA time zone name, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// Weekly windows. Empty: any day and hour (only blackouts apply). Windows of the
    /// same day must not overlap.
    #[serde(default)]
    pub allowed: Vec<Window>,
    /// Dates (local to `time_zone`) on which no call is allowed.
    #[serde(default)]
    pub blackout: Vec<Blackout>,
}

/// A weekly window: the listed days, from `from` (included) to `to` (excluded).
/// A window that crosses midnight is written as two windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Weekdays: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub days: Vec<Weekday>,
    /// Local start, `HH:MM`.
    pub from: ClockTime,
    /// Local end, `HH:MM` (`24:00` for midnight at the end of the day); after `from`.
    pub to: ClockTime,
}

/// A blackout: the dates `from` to `to`, both included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    /// First date, `YYYY-MM-DD`.
    pub from: IsoDate,
    /// Last date, included. Absent: the same as `from` (a single day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<IsoDate>,
    /// Why, shown to subscribers (`Christmas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The service level promised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// Availability target in percent, as a decimal string (`"99.9"`); 0–100.
    #[serde(with = "decimal")]
    #[schemars(schema_with = "decimal::schema")]
    pub availability: Decimal,
    /// Latency target. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// The period over which availability is measured: `calendar_month` (default),
    /// `billing_period` or `day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<SlaWindow>,
    /// Service credits: for measured availability below `below` percent, a credit of
    /// `credit` percent of the period's fees. The lowest threshold reached applies;
    /// lower thresholds must give strictly higher credits.
    #[serde(default)]
    pub credits: Vec<Credit>,
}

/// A latency target: the `percentile`-th percentile of response times stays under `ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Percentile, 1–99 (`95`, `99`).
    pub percentile: u8,
    /// Milliseconds, at least 1.
    pub ms: u32,
}

/// The SLA measurement period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaWindow {
    Day,
    CalendarMonth,
    BillingPeriod,
}

impl SlaWindow {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaWindow::Day => "day",
            SlaWindow::CalendarMonth => "calendar_month",
            SlaWindow::BillingPeriod => "billing_period",
        }
    }
}

/// One step of the service-credit schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credit {
    /// Availability threshold in percent (`"99.9"`), at most the target.
    #[serde(with = "decimal")]
    #[schemars(schema_with = "decimal::schema")]
    pub below: Decimal,
    /// Credit in percent of the period's fees (`"10"`), more than 0 and at most 100.
    #[serde(with = "decimal")]
    #[schemars(schema_with = "decimal::schema")]
    pub credit: Decimal,
}

/// The prices of the plan under these terms: exactly one of `inline` and `ref`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PricingFile", into = "PricingFile")]
pub enum Pricing {
    /// `inline`: the price book itself, in tollgate-billing's price book format (id,
    /// version, currency, billing cycle, base fee, meters, charges, …; see
    /// `tollgate_billing::PriceBook`). It is kept here as plain data and checked by
    /// `validate`, which reports each problem at its field. Write amounts as strings
    /// (`"0.002"`): numbers with a fraction are refused, since canonical JSON would store
    /// them as binary floating point.
    Inline(serde_json::Value),
    /// `ref`: a reference to an immutable price version.
    Ref(PriceRef),
}

/// The file shape of `Pricing`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricingFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inline: Option<serde_json::Value>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    reference: Option<PriceRef>,
}

impl TryFrom<PricingFile> for Pricing {
    type Error = &'static str;

    fn try_from(f: PricingFile) -> Result<Self, Self::Error> {
        match (f.inline, f.reference) {
            (Some(v), None) => Ok(Pricing::Inline(v)),
            (None, Some(r)) => Ok(Pricing::Ref(r)),
            _ => Err("set exactly one of `inline` (the price block) and `ref` ({id, sha256})"),
        }
    }
}

impl From<Pricing> for PricingFile {
    fn from(p: Pricing) -> Self {
        match p {
            Pricing::Inline(v) => PricingFile {
                inline: Some(v),
                reference: None,
            },
            Pricing::Ref(r) => PricingFile {
                inline: None,
                reference: Some(r),
            },
        }
    }
}

/// A reference to an immutable price version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceRef {
    /// The price version's id.
    pub id: String,
    /// SHA-256 of the price version's canonical JSON, 64 lowercase hex digits.
    pub sha256: String,
}

/// Notice of changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    /// Days between the publication of a newer version and the moment subscriptions
    /// still on this one are handled by `on_expiry`.
    pub days: u32,
    /// What happens then to subscriptions that did not accept the newer version:
    /// `move` (they move to it) or `suspend` (calls are refused until they accept).
    pub on_expiry: OnExpiry,
}

/// What happens to a subscription on an old version when the notice ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    Move,
    Suspend,
}

impl OnExpiry {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            OnExpiry::Move => "move",
            OnExpiry::Suspend => "suspend",
        }
    }
}

// ------------------------------------------------------------------------ scalar types

/// An operation named by `operationId` or by method and path template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperationRef {
    /// `getWeather`.
    Id(String),
    /// `GET /alerts/{region}`: method upper case, path as written.
    Route { method: String, path: String },
}

pub(crate) const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];

impl FromStr for OperationRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some((m, p)) = s.split_once(' ') {
            let method = m.to_ascii_uppercase();
            if !METHODS.contains(&method.as_str()) {
                return Err(format!(
                    "{m:?} is not an HTTP method; write an operationId or `METHOD /path`"
                ));
            }
            let path = p.trim();
            tollgate_core::path_template::PathTemplate::parse(path)
                .map_err(|e| format!("path {path:?} {e}"))?;
            return Ok(OperationRef::Route {
                method,
                path: path.to_owned(),
            });
        }
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.chars().any(|c| c.is_whitespace() || c == '`' || c == '/') {
            return Err(format!("{s:?} is not an operationId"));
        }
        Ok(OperationRef::Id(s.to_owned()))
    }
}

impl fmt::Display for OperationRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperationRef::Id(id) => f.write_str(id),
            OperationRef::Route { method, path } => write!(f, "{method} {path}"),
        }
    }
}

impl Serialize for OperationRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OperationRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// All days, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// 1 for Monday … 7 for Sunday (ISO 8601).
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// The day numbered 1 (Monday) to 7 (Sunday).
    pub fn from_number(n: u8) -> Option<Weekday> {
        Weekday::ALL.get(usize::from(n.checked_sub(1)?)).copied()
    }

    /// Short name as written in files (`mon`).
    pub fn as_str(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }

    /// English name (`Monday`).
    pub fn name(self) -> &'static str {
        [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ][self as usize]
    }
}

impl Serialize for Weekday {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Weekday {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let lower = s.to_ascii_lowercase();
        Weekday::ALL
            .into_iter()
            .find(|w| lower == w.as_str() || lower == w.name().to_ascii_lowercase())
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "{s:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"
                ))
            })
    }
}

/// A local time of day to the minute, `HH:MM`, from `00:00` to `24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    /// The time `minutes` after midnight (at most 1440, i.e. `24:00`).
    pub fn from_minutes(minutes: u16) -> Option<ClockTime> {
        (minutes <= 1440).then_some(ClockTime(minutes))
    }

    /// Minutes after midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl FromStr for ClockTime {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time of day HH:MM (00:00 to 24:00)");
        // TOML local times arrive as `HH:MM:SS`; seconds must then be zero.
        let (hm, secs) = match s.len() {
            5 => (s, None),
            8 => (&s[..5], Some(&s[5..])),
            _ => return Err(bad()),
        };
        if secs.is_some_and(|x| x != ":00") {
            return Err(bad());
        }
        let (h, m) = hm.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m >= 60 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(ClockTime(h * 60 + m))
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_any(DateLike("a time of day HH:MM"))?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoDate(pub jiff::civil::Date);

impl FromStr for IsoDate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a date YYYY-MM-DD");
        if s.len() != 10 {
            return Err(bad());
        }
        s.parse::<jiff::civil::Date>()
            .map(IsoDate)
            .map_err(|_| bad())
    }
}

impl fmt::Display for IsoDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for IsoDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IsoDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_any(DateLike("a date YYYY-MM-DD"))?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Accepts a string, or TOML's native date/time (which its deserializer hands over as a
/// one-entry map), so `effective = 2026-01-01` works unquoted in TOML.
struct DateLike(&'static str);

impl<'de> de::Visitor<'de> for DateLike {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        match map.next_entry::<String, String>()? {
            Some((k, v)) if k.contains("datetime") => Ok(v),
            _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }
}

/// Serde for decimals: written as strings; read from strings, integers or (for hand
/// written YAML/TOML like `99.9`) floats through their shortest decimal form.
pub(crate) mod decimal {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&v.normalize())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(V)
    }

    /// The JSON Schema of what `deserialize` reads (see `crate::schema`).
    pub fn schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::schema::decimal_schema(g)
    }

    struct V;

    impl de::Visitor<'_> for V {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal number written as a string, e.g. \"99.9\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            Decimal::from_str_exact(v.trim())
                .map_err(|_| E::custom(format!("{v:?} is not a decimal number")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            self.visit_str(&v.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    /// The example at the top of this file is a valid sheet (keeps the docs honest).
    #[test]
    fn the_documented_example_is_valid() {
        let src = include_str!("model.rs");
        let start = src.find("//! ```yaml\n").unwrap() + "//! ```yaml\n".len();
        let end = start + src[start..].find("//! ```\n").unwrap();
        let yaml: String = src[start..end]
            .lines()
            .map(|l| l.strip_prefix("//! ").unwrap_or("").to_owned() + "\n")
            .collect();
        let loaded = crate::parse_str(std::path::Path::new("doc.yaml"), None, &yaml).unwrap();
        let v = loaded.validate().unwrap();
        assert_eq!(v.operations().len(), 2);
    }
}
