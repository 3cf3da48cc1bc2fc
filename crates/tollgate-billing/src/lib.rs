//! Tollgate rating: usage × price book → invoice lines that anyone can recompute.
//! Pure, deterministic and synchronous: no IO, no async, and no clock (`now` is passed
//! in).
//!
//! # The model
//!
//! A [`PriceBook`] is one immutable version of the prices of one plan in one currency:
//! a base fee per billing period (`in_advance` or `in_arrears`), **meters** that
//! aggregate usage events (`count`, `sum`, `max`, `unique_count` of a field, with
//! filters on operation, status class, method and field equality), **charges** that
//! price a meter's quantity (`per_unit`, `package`, `graduated`, `volume`,
//! `percentage`, `graduated_percentage`, with free units), a minimum commitment, a
//! trial, a grace window for late events and the plan-change policy. It is read from
//! JSON ([`PriceBook::from_json`], the very block a term sheet keeps inline), validated
//! with every problem reported at its JSON pointer, described by a JSON Schema
//! ([`PriceBook::json_schema`]) and identified by [`PriceBook::sha256`]: SHA-256 over
//! the RFC 8785 canonical JSON of `{"tollgate_prices": 1, "book": …}`.
//!
//! [`rate`] turns one billing period of a subscription into a [`RatedInvoice`]. Each
//! usage event is rated by the book of the **term sheet hash it was served under**
//! (DESIGN.md §1), so a period spanning a price change has one line per book version
//! and charge. A usage line cites its book (`{id, version, sha256}`), its meter, its
//! quantity, its unit price or tier breakdown, and the events it counted (first and last
//! time, count, SHA-256 of their ids); [`rate_usage_line`] recomputes any such line from
//! the same events and book; [`quote`] prices expected usage ([`QuoteInput`]: quantities
//! per meter, transaction amounts for percentages) into the lines one whole period's
//! invoice would carry, through the same per-charge pricing function. Periods come from `tollgate_limits::period_bounds` (one
//! period function for quotas and billing, DESIGN.md §3), composed into quarters and
//! years by [`billing_period`]. Plan changes and cancellations are prorated to the
//! second ([`prorate`]). Coupons, tax rates, prepaid credit, payouts ([`payout`],
//! [`reconcile`]), credit notes ([`credit_note`]) and SLA credits ([`sla_credit`]) use
//! the same money rules.
//!
//! # The rounding rule
//!
//! Money is `rust_decimal::Decimal`, never floating point, and travels in JSON as decimal
//! strings (`"0.002"`). Prices keep up to 20 decimal places; all arithmetic on them is
//! exact (an overflow is an error, not a rounding). **Each invoice line is rounded once**,
//! from its exact `amount_unrounded` to the currency's ISO 4217 minor units
//! ([`minor_units`]: JPY 0, USD 2, KWD 3, CLF 4, …) with the price book's declared
//! [`RoundingMode`] (`half_up` by default). Discounts and taxes are computed from the
//! rounded lines they apply to and are themselves rounded once, as lines. Every total of
//! an invoice is the sum of rounded lines: nothing is rounded twice and no total is
//! rounded at all.

mod credit;
mod currency;
mod dec;
mod error;
mod event;
mod invoice;
mod model;
mod payout;
mod period;
mod pricing;
mod quote;
mod rate;
mod validate;

pub use credit::{
    CreditRequest, CreditSplit, SlaCredit, SlaTerms, availability_counts, credit_note, sla_credit,
};
pub use currency::{ISO_4217, RoundingMode, minor_units, round};
pub use error::Error;
pub use event::{FieldRef, UsageEvent};
pub use invoice::{
    Cancellation, ChangeKind, Coupon, CouponGrant, Discount, EventRange, Excluded, InvoiceLine,
    InvoiceStatus, LineKind, PlanChange, Proration, RatedInvoice, Subscription, TaxRate, WalletUse,
};
pub use model::{
    Aggregate, Anchor, BaseFee, BillingCycle, ChangePolicy, Charge, Effective, FORMAT_VERSION,
    Filter, Interval, Meter, PercentTier, PriceBook, PriceBookRef, PriceModel, StatusClass, Tier,
    Timing,
};
pub use payout::{MarketplaceFee, Payout, Reconciliation, payout, reconcile};
pub use period::{Span, billing_period, next_period, prorate, trial_end};
pub use pricing::{
    PercentageOutcome, PercentageTerms, Priced, TierUse, graduated_percentage, graduated_tiers,
    package, per_unit, percentage, volume_tiers,
};
pub use quote::{Quote, QuoteInput, quote};
pub use rate::{BASE_CHARGE, RatingInput, event_ids_sha256, rate, rate_opening, rate_usage_line};
pub use validate::{MAX_SCALE, ValidationProblem};
