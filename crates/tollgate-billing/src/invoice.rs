//! What the rater reads besides price books (subscriptions, coupons, tax rates) and what
//! it returns: the rated invoice and its lines, each carrying enough to recompute it.

use crate::currency::RoundingMode;
use crate::dec::{self, DecimalString};
use crate::model::{Effective, PriceBookRef};
use crate::period::Span;
use crate::pricing::{PercentageOutcome, TierUse};
use jiff::Timestamp;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A subscription's plan history, as far as billing needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The subscription id; usage events of other subscriptions are not rated.
    pub id: String,
    /// When it started (the anchor of subscription-anchored cycles and of the trial).
    pub started: Timestamp,
    /// Hash of the term sheet accepted at the start.
    pub term_sheet: String,
    /// Plan changes, each to the term sheet accepted at that moment.
    #[serde(default)]
    pub changes: Vec<PlanChange>,
    /// The cancellation, if one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
}

/// A change of plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanChange {
    /// When it was asked for.
    pub at: Timestamp,
    /// Hash of the new term sheet.
    pub term_sheet: String,
    /// `upgrade` or `downgrade`: which of the old price book's change policies applies.
    pub kind: ChangeKind,
}

/// Whether a plan change is an upgrade or a downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// To a dearer plan.
    Upgrade,
    /// To a cheaper plan.
    Downgrade,
}

/// A cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cancellation {
    /// When it was asked for.
    pub at: Timestamp,
    /// `immediately` (service ends at `at`; an advance fee is credited for the unused
    /// time) or `period_end` (service ends with the period `at` is in).
    pub effective: Effective,
}

/// A coupon: a discount on the whole invoice or on named lines, for a number of periods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coupon {
    /// The coupon's id, shown on its discount line.
    pub id: String,
    /// What it takes off.
    pub discount: Discount,
    /// Charge ids it applies to (`base` for the base fee and its prorations); empty for
    /// the whole invoice before taxes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<String>,
    /// For how many periods it applies; absent: forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<u32>,
}

/// A discount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    /// A percentage of the lines it applies to.
    Percent {
        /// 0–100.
        #[serde(with = "dec")]
        #[schemars(with = "DecimalString")]
        percent: Decimal,
    },
    /// A fixed amount, never more than the lines it applies to.
    Amount {
        /// In the invoice's currency.
        #[serde(with = "dec")]
        #[schemars(with = "DecimalString")]
        amount: Decimal,
    },
}

/// A coupon on a subscription, with how many periods it already discounted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponGrant {
    /// The coupon.
    pub coupon: Coupon,
    /// Periods already discounted by it (0 for a new one).
    #[serde(default)]
    pub periods_applied: u32,
}

/// A tax rate of one jurisdiction. Billing applies given rates; choosing them is not its
/// job (there is no tax engine here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRate {
    /// The rate's id (`fr-vat-20`).
    pub id: String,
    /// The jurisdiction (`FR`, `US-CA`).
    pub jurisdiction: String,
    /// What invoices call it (`VAT 20 %`).
    pub name: String,
    /// Percent, 0–100.
    #[serde(with = "dec")]
    #[schemars(with = "DecimalString")]
    pub percent: Decimal,
    /// Charge ids it applies to (`base` for base fee lines); empty for every line. The
    /// base is the lines' rounded amounts less the discounts allocated to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<String>,
}

/// What a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A base fee for a whole period or, prorated, for part of one.
    Base,
    /// A usage charge.
    Usage,
    /// A credit for the unused time of an advance base fee.
    ProrationCredit,
    /// A prorated advance base fee for part of a period (after an immediate change).
    ProrationCharge,
    /// The difference up to the minimum commitment.
    Shortfall,
    /// A coupon's discount (negative).
    Discount,
    /// A tax.
    Tax,
    /// Prepaid credit consumed (negative).
    CreditConsumption,
}

/// The events a usage line was computed from, so anyone holding the subscription's
/// ledger entries can pick the same ones and check them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRange {
    /// Time of the first contributing event.
    pub first: Timestamp,
    /// Time of the last contributing event.
    pub last: Timestamp,
    /// Number of contributing events.
    pub count: u64,
    /// SHA-256 over the contributing events' ids, each followed by `\n`, in event time
    /// order with ties by id (see [`crate::event_ids_sha256`]).
    pub ids_sha256: String,
}

/// How a prorated line was prorated: `seconds / period_seconds` of the full fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proration {
    /// Seconds charged or credited.
    pub seconds: i64,
    /// Seconds in the whole period.
    pub period_seconds: i64,
    /// The full-period fee prorated.
    #[serde(with = "dec::exact")]
    pub full_amount: Decimal,
}

/// One invoice line. `amount` is `amount_unrounded` rounded once to the currency's
/// minor units with the invoice's rounding mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceLine {
    /// What the line is for.
    pub kind: LineKind,
    /// What people read.
    pub description: String,
    /// The price book that priced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_book: Option<PriceBookRef>,
    /// The term sheet (hash) the priced events or fee were served under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_sheet: Option<String>,
    /// The charge id (`base` for base fees, the coupon id for discounts, the tax rate id
    /// for taxes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<String>,
    /// The meter of a usage line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    /// The time the line is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_period: Option<Span>,
    /// Usage of an earlier period that arrived after its invoice (rated on its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
    /// The meter's quantity, before free units.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    pub quantity: Option<Decimal>,
    /// Free units taken off the quantity.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    pub free_units: Option<Decimal>,
    /// Price per unit (per block for packages) of an untiered line.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    pub unit_price: Option<Decimal>,
    /// The tier breakdown of a tiered line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierUse>,
    /// The detail of a per-event percentage line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<PercentageOutcome>,
    /// How a base fee line was prorated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proration: Option<Proration>,
    /// The percent of a discount or tax line.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    pub percent: Option<Decimal>,
    /// The amount a discount or tax was computed on.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "dec::opt")]
    pub base_amount: Option<Decimal>,
    /// The events of a usage line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventRange>,
    /// The exact amount.
    #[serde(with = "dec::exact")]
    pub amount_unrounded: Decimal,
    /// The amount charged: `amount_unrounded` rounded once.
    #[serde(with = "dec::exact")]
    pub amount: Decimal,
}

impl InvoiceLine {
    pub(crate) fn new(kind: LineKind, description: String) -> InvoiceLine {
        InvoiceLine {
            kind,
            description,
            price_book: None,
            term_sheet: None,
            charge: None,
            meter: None,
            service_period: None,
            late: false,
            quantity: None,
            free_units: None,
            unit_price: None,
            tiers: Vec::new(),
            percentage: None,
            proration: None,
            percent: None,
            base_amount: None,
            events: None,
            amount_unrounded: Decimal::ZERO,
            amount: Decimal::ZERO,
        }
    }
}

/// Whether late events may still change the invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// `now` is before the period's end plus the grace window: late events may still
    /// arrive, so the invoice must not be finalized yet.
    Provisional,
    /// The grace window is over: the invoice can be finalized and signed.
    Final,
}

/// What happened to the prepaid wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletUse {
    /// The balance before this invoice.
    #[serde(with = "dec::exact")]
    pub balance_before: Decimal,
    /// What this invoice consumed.
    #[serde(with = "dec::exact")]
    pub consumed: Decimal,
    /// The balance after.
    #[serde(with = "dec::exact")]
    pub balance_after: Decimal,
}

/// Events given to the rater that no line of this invoice counts, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Excluded {
    /// Events of another subscription.
    pub other_subscription: u64,
    /// Events at or after the period's end (they belong to a later invoice).
    pub after_period: u64,
    /// Events during the free trial.
    pub in_trial: u64,
    /// Events after the service ended (immediate cancellation).
    pub after_service_end: u64,
}

/// A rated invoice: lines, and totals that are sums of the lines' rounded amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatedInvoice {
    /// The subscription.
    pub subscription: String,
    /// The period rated.
    pub period: Span,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The rounding mode of every line.
    pub rounding: RoundingMode,
    /// Whether late events may still change it.
    pub status: InvoiceStatus,
    /// The lines, in a fixed order: base fees and prorations by time, usage by price
    /// book and charge, shortfall, discounts, taxes, credit consumption.
    pub lines: Vec<InvoiceLine>,
    /// Σ of base, usage, proration and shortfall lines.
    #[serde(with = "dec::exact")]
    pub subtotal: Decimal,
    /// Σ of discount lines (negative or 0).
    #[serde(with = "dec::exact")]
    pub discounts: Decimal,
    /// Σ of tax lines.
    #[serde(with = "dec::exact")]
    pub tax: Decimal,
    /// `subtotal + discounts`: what the provider earns (payouts use it).
    #[serde(with = "dec::exact")]
    pub pre_tax_total: Decimal,
    /// `pre_tax_total + tax`.
    #[serde(with = "dec::exact")]
    pub total: Decimal,
    /// `total` less prepaid credit consumed: Σ of all lines.
    #[serde(with = "dec::exact")]
    pub amount_due: Decimal,
    /// The prepaid wallet.
    pub wallet: WalletUse,
    /// Events not counted, by reason.
    pub excluded: Excluded,
}
