//! The price book: a versioned, immutable list of the prices of one plan in one currency,
//! as written in JSON (inline in a term sheet's `pricing` block, or stored on its own and
//! referenced by `{id, sha256}`). Doc comments here are the user documentation.
//!
//! ```json
//! {
//!   "id": "weather-pro",
//!   "version": "2026-01",
//!   "currency": "USD",
//!   "billing_cycle": { "interval": "month", "anchor": "calendar", "time_zone": "UTC" },
//!   "base_fee": { "amount": "49.00", "timing": "in_advance" },
//!   "meters": [
//!     { "id": "calls", "aggregate": "count", "filter": { "status": ["2xx"] } },
//!     { "id": "payments", "aggregate": "sum", "field": "fields.amount",
//!       "filter": { "operations": ["createPayment"] } }
//!   ],
//!   "charges": [
//!     { "id": "api-calls", "meter": "calls", "free_units": "1000",
//!       "price": { "model": "graduated", "tiers": [
//!         { "up_to": "100000", "unit_price": "0.002" },
//!         { "up_to": null, "unit_price": "0.001", "flat_fee": "10" } ] } },
//!     { "id": "payment-fees", "meter": "payments",
//!       "price": { "model": "percentage", "percent": "2.9", "fixed_fee": "0.30",
//!                  "min_fee": "0.50", "free_events": 10 } }
//!   ],
//!   "minimum_commitment": "100.00"
//! }
//! ```

use crate::currency::RoundingMode;
use crate::dec::{self, DecimalString};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the price book format and of its canonical hash encoding
/// (`{"tollgate_prices": 1, "book": …}`). Changing either is a new version.
pub const FORMAT_VERSION: u32 = 1;

/// One version of the prices of one plan, in one currency. A published version never
/// changes: its identity is the SHA-256 of its canonical JSON ([`PriceBook::sha256`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBook {
    /// The price book's slug, stable across versions: lowercase letters, digits and `-`,
    /// 1–63 characters, e.g. `weather-pro`.
    pub id: String,
    /// The version label (`2026-01`, `3`): a new price is a new version, never an edit.
    pub version: String,
    /// The ISO 4217 code every amount of this book is in (`USD`, `EUR`, `JPY`, `KWD`).
    pub currency: String,
    /// How each invoice line is rounded to the currency's minor units, once:
    /// `half_up` (default), `half_down`, `half_even`, `up`, `down`, `ceiling`, `floor`.
    #[serde(default)]
    pub rounding: RoundingMode,
    /// The billing period. Default: calendar months in UTC.
    #[serde(default)]
    pub billing_cycle: BillingCycle,
    /// Days of free trial from the subscription start: no base fee and no usage charges
    /// before it ends; the first period is then prorated. Default 0.
    #[serde(default)]
    pub trial_days: u32,
    /// Hours after a period's end during which late usage events still count for that
    /// period; the invoice is provisional until then. Default 0.
    #[serde(default)]
    pub grace_hours: u32,
    /// The recurring fee per period. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_fee: Option<BaseFee>,
    /// What is measured: aggregations over the subscription's usage events.
    #[serde(default)]
    pub meters: Vec<Meter>,
    /// What is charged for the measured quantities, one charge per line of the invoice.
    #[serde(default)]
    pub charges: Vec<Charge>,
    /// The least the period's base fee and usage together cost (before discounts and
    /// taxes); below it, the invoice carries a shortfall line for the difference.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    #[schemars(with = "Option<DecimalString>")]
    pub minimum_commitment: Option<Decimal>,
    /// When plan changes take effect. Default: upgrades at once (prorated to the second),
    /// downgrades at the end of the period.
    #[serde(default)]
    pub plan_changes: ChangePolicy,
}

/// The billing period: its length, where it starts, and the time zone its boundaries are
/// local midnights (or local anniversary times) in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingCycle {
    /// `month` (default), `quarter` or `year`.
    #[serde(default)]
    pub interval: Interval,
    /// `calendar` (default): periods start on the 1st of a month (quarters in January,
    /// April, July, October; years on January 1st). `subscription`: periods start on the
    /// subscription start's day and time of day, each month, quarter or year.
    #[serde(default)]
    pub anchor: Anchor,
    /// IANA time zone of the period boundaries (`Europe/Paris`). Default `UTC`.
    #[serde(default = "utc")]
    pub time_zone: String,
}

fn utc() -> String {
    "UTC".into()
}

impl Default for BillingCycle {
    fn default() -> Self {
        BillingCycle {
            interval: Interval::Month,
            anchor: Anchor::Calendar,
            time_zone: utc(),
        }
    }
}

/// The length of a billing period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    /// One month.
    #[default]
    Month,
    /// Three months.
    Quarter,
    /// Twelve months.
    Year,
}

impl Interval {
    /// The number of months in one period.
    pub fn months(self) -> i64 {
        match self {
            Interval::Month => 1,
            Interval::Quarter => 3,
            Interval::Year => 12,
        }
    }
}

/// Where billing periods start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// On the calendar: the 1st of the month (of the quarter, of the year).
    #[default]
    Calendar,
    /// On the subscription start (its anniversary each period).
    Subscription,
}

/// A recurring fee per period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaseFee {
    /// The fee for one full period (`"49.00"`), at least 0.
    #[serde(with = "dec")]
    #[schemars(with = "DecimalString")]
    pub amount: Decimal,
    /// `in_advance` (default): charged at the start of the period it covers, on the
    /// invoice of the period before (or the opening invoice). `in_arrears`: charged on
    /// the invoice of the period it covers, at its end.
    #[serde(default)]
    pub timing: Timing,
}

/// When a base fee is charged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// At the start of the period it covers.
    #[default]
    InAdvance,
    /// At the end of the period it covers.
    InArrears,
}

/// When plan changes take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePolicy {
    /// `immediately` (default): the new plan applies from the moment of the change, with
    /// a credit for the unused time of the old base fee and a prorated charge for the new
    /// one. `period_end`: at the next period boundary.
    #[serde(default = "immediately")]
    pub upgrade: Effective,
    /// `period_end` (default) or `immediately`, as for upgrades.
    #[serde(default = "period_end")]
    pub downgrade: Effective,
}

fn immediately() -> Effective {
    Effective::Immediately
}

fn period_end() -> Effective {
    Effective::PeriodEnd
}

impl Default for ChangePolicy {
    fn default() -> Self {
        ChangePolicy {
            upgrade: Effective::Immediately,
            downgrade: Effective::PeriodEnd,
        }
    }
}

/// When a change (plan change, cancellation) takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effective {
    /// At the moment it is made, prorated to the second.
    Immediately,
    /// At the end of the billing period it is made in.
    PeriodEnd,
}

/// A meter: an aggregation over the subscription's usage events of a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meter {
    /// The meter's id, unique in the book (`calls`).
    pub id: String,
    /// `count` of matching events, `sum` or `max` of a numeric `field`, or `unique_count`
    /// of the distinct values of `field`.
    pub aggregate: Aggregate,
    /// The event field aggregated (not for `count`): `request_bytes`, `response_bytes`,
    /// `latency_ms`, `status`, `operation`, `method`, or `fields.<name>` for a field the
    /// provider reports (`fields.amount`). Events without the field (or, for `sum` and
    /// `max`, without a number in it) do not match the meter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Which events count. Default: all of the subscription's events.
    #[serde(default)]
    pub filter: Filter,
}

/// How a meter aggregates its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The number of matching events.
    Count,
    /// The sum of a numeric field.
    Sum,
    /// The largest value of a numeric field.
    Max,
    /// The number of distinct values of a field.
    UniqueCount,
}

/// Which events a meter counts. Every condition given must hold; an empty list holds
/// for every event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Operation ids (`getForecast`); the event's operation is one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
    /// Status classes (`2xx`, `4xx`, …); the event's response status is in one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<StatusClass>,
    /// HTTP methods in capitals (`GET`, `POST`); the event's method is one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Field equalities: each named field (as in [`Meter::field`]) equals the given
    /// string, integer or boolean, e.g. `{"fields.region": "eu"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub equals: BTreeMap<String, serde_json::Value>,
}

/// A class of HTTP status codes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum StatusClass {
    /// 100–199.
    #[serde(rename = "1xx")]
    Informational,
    /// 200–299.
    #[serde(rename = "2xx")]
    Success,
    /// 300–399.
    #[serde(rename = "3xx")]
    Redirection,
    /// 400–499.
    #[serde(rename = "4xx")]
    ClientError,
    /// 500–599.
    #[serde(rename = "5xx")]
    ServerError,
}

impl StatusClass {
    /// Whether `status` is in this class.
    pub fn contains(self, status: u16) -> bool {
        let hundreds = match self {
            StatusClass::Informational => 1,
            StatusClass::Success => 2,
            StatusClass::Redirection => 3,
            StatusClass::ClientError => 4,
            StatusClass::ServerError => 5,
        };
        status / 100 == hundreds
    }
}

/// A usage charge: a meter's quantity priced by a pricing model. Each charge becomes
/// one invoice line per price book version used in the period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    /// The charge's id, unique in the book; coupons and taxes name lines by it.
    pub id: String,
    /// The id of the meter whose quantity is charged.
    pub meter: String,
    /// What invoices call this line. Default: the charge id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Units free each period, taken off the meter's quantity before pricing (not for
    /// percentage models, which have `free_events` and `free_amount`). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    #[schemars(with = "Option<DecimalString>")]
    pub free_units: Option<Decimal>,
    /// How the quantity is priced.
    pub price: PriceModel,
}

/// A pricing model. Prices may carry up to 20 decimal places (`"0.000000000125"`);
/// only the invoice line is rounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum PriceModel {
    /// The same price for every unit.
    PerUnit {
        /// Price of one unit.
        #[serde(with = "dec")]
        #[schemars(with = "DecimalString")]
        unit_price: Decimal,
    },
    /// A price per block of `package_size` units; a partial block costs a whole one.
    Package {
        /// Units per block, more than 0.
        #[serde(with = "dec")]
        #[schemars(with = "DecimalString")]
        package_size: Decimal,
        /// Price of one block.
        #[serde(with = "dec")]
        #[schemars(with = "DecimalString")]
        package_price: Decimal,
    },
    /// Each unit priced by the tier it falls in; a tier's flat fee is charged once when
    /// the quantity enters it.
    Graduated {
        /// Tiers in increasing `up_to`; the last has `up_to: null`.
        tiers: Vec<Tier>,
    },
    /// Every unit priced at the tier the whole quantity falls in, plus that tier's flat
    /// fee.
    Volume {
        /// Tiers in increasing `up_to`; the last has `up_to: null`.
        tiers: Vec<Tier>,
    },
    /// A percentage of a transaction amount (the meter must `sum` the amount field),
    /// computed per event: `amount × percent / 100 + fixed_fee`, then raised to
    /// `min_fee` and capped at `max_fee`. The free allowance covers the first events of
    /// the period (by time) and ends as soon as either `free_events` events or
    /// `free_amount` of amount were covered; an event that crosses `free_amount` is
    /// charged on the part beyond it.
    Percentage {
        /// Percent of the amount, 0–100 (`"2.9"`).
        #[serde(with = "dec")]
        #[schemars(with = "DecimalString")]
        percent: Decimal,
        /// Fixed fee added per charged event. Default 0.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
        #[schemars(with = "Option<DecimalString>")]
        fixed_fee: Option<Decimal>,
        /// Least fee per charged event.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
        #[schemars(with = "Option<DecimalString>")]
        min_fee: Option<Decimal>,
        /// Largest fee per charged event.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
        #[schemars(with = "Option<DecimalString>")]
        max_fee: Option<Decimal>,
        /// Number of events free each period.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        free_events: Option<u64>,
        /// Transaction amount free each period.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
        #[schemars(with = "Option<DecimalString>")]
        free_amount: Option<Decimal>,
    },
    /// Percentages by tier of the cumulative amount in the period (the meter must `sum`
    /// the amount field); a tier's flat fee is charged once, when the cumulative amount
    /// first enters it.
    GraduatedPercentage {
        /// Tiers in increasing `up_to`; the last has `up_to: null`.
        tiers: Vec<PercentTier>,
    },
}

/// One tier of a unit-priced tiered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The tier covers quantities up to and including this one; `null` (or absent: TOML
    /// has no null) for the last tier, which has no upper bound.
    #[serde(default, with = "dec::opt")]
    #[schemars(with = "Option<DecimalString>")]
    pub up_to: Option<Decimal>,
    /// Price of one unit in this tier.
    #[serde(with = "dec")]
    #[schemars(with = "DecimalString")]
    pub unit_price: Decimal,
    /// Fee charged once when the quantity reaches this tier. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    #[schemars(with = "Option<DecimalString>")]
    pub flat_fee: Option<Decimal>,
}

/// One tier of a graduated percentage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PercentTier {
    /// The tier covers cumulative amounts up to this one; `null` (or absent) for the last
    /// tier.
    #[serde(default, with = "dec::opt")]
    #[schemars(with = "Option<DecimalString>")]
    pub up_to: Option<Decimal>,
    /// Percent of the amount within this tier, 0–100.
    #[serde(with = "dec")]
    #[schemars(with = "DecimalString")]
    pub percent: Decimal,
    /// Fee charged once, when the cumulative amount first enters this tier. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    #[schemars(with = "Option<DecimalString>")]
    pub flat_fee: Option<Decimal>,
}

/// How a term sheet cites a price book: `{id, sha256}` (plus the version, for people).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct PriceBookRef {
    /// The book's id.
    pub id: String,
    /// The book's version label.
    pub version: String,
    /// SHA-256 of the book's canonical JSON, 64 lowercase hex digits.
    pub sha256: String,
}
