//! Corrections after finalization (DESIGN.md §1: a finalized invoice is never edited):
//! credit notes, split into what reduces the amount still due and what is credited or
//! refunded beyond it, and SLA service credits.

use crate::Error;
use crate::currency::{RoundingMode, round};
use crate::dec;
use crate::invoice::{LineKind, RatedInvoice};
use crate::pricing::{add, mul};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a credit note credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditRequest {
    /// An amount of the invoice's total (taxes included).
    Amount(Decimal),
    /// Whole lines, by index in `RatedInvoice::lines`; only positive lines (charges and
    /// their taxes) can be credited.
    Lines(Vec<usize>),
}

/// How a credit note splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditSplit {
    /// The credit note's amount.
    #[serde(with = "dec::exact")]
    pub total: Decimal,
    /// The part that reduces what the customer still owes on the invoice.
    #[serde(with = "dec::exact")]
    pub reduces_amount_due: Decimal,
    /// The part beyond it: refunded, or added to the customer's credit balance.
    #[serde(with = "dec::exact")]
    pub credited_beyond: Decimal,
}

/// Splits a credit note on a finalized invoice. `paid` is what the customer paid on it
/// so far (not counting prepaid credit, which the invoice already consumed);
/// `already_credited` is the sum of earlier credit notes on it. A note may credit at
/// most what the invoice charged (`total`) less earlier notes.
pub fn credit_note(
    invoice: &RatedInvoice,
    paid: Decimal,
    already_credited: Decimal,
    request: &CreditRequest,
) -> Result<CreditSplit, Error> {
    if paid < Decimal::ZERO || already_credited < Decimal::ZERO {
        return Err(Error::InvalidInput(
            "paid and credited amounts must not be negative".into(),
        ));
    }
    let total = match request {
        CreditRequest::Amount(a) => *a,
        CreditRequest::Lines(ix) => {
            let mut seen = std::collections::BTreeSet::new();
            let mut sum = Decimal::ZERO;
            for &i in ix {
                let line = invoice
                    .lines
                    .get(i)
                    .ok_or_else(|| Error::InvalidInput(format!("invoice has no line {i}")))?;
                if !seen.insert(i) {
                    return Err(Error::InvalidInput(format!("line {i} is named twice")));
                }
                if line.amount <= Decimal::ZERO || line.kind == LineKind::CreditConsumption {
                    return Err(Error::InvalidInput(format!(
                        "line {i} is not a charge and cannot be credited"
                    )));
                }
                sum = add(sum, line.amount)?;
            }
            sum
        }
    };
    if total < Decimal::ZERO {
        return Err(Error::InvalidInput(
            "a credit note amount must not be negative".into(),
        ));
    }
    let creditable = invoice.total - already_credited;
    if total > creditable {
        return Err(Error::InvalidInput(format!(
            "credit of {total} is more than the {creditable} left to credit on the invoice"
        )));
    }
    // What is still owed: the amount due after prepaid credit, less payments and less
    // earlier credit notes (each of which first reduced what was owed).
    let outstanding = (invoice.amount_due - paid - already_credited).max(Decimal::ZERO);
    let reduces = total.min(outstanding);
    Ok(CreditSplit {
        total,
        reduces_amount_due: reduces,
        credited_beyond: total - reduces,
    })
}

/// An SLA's availability target and credit schedule, as a term sheet's `sla` clause
/// states them (`tollgate_terms::model::Sla` maps onto this field by field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaTerms {
    /// Availability target in percent (`99.9`).
    pub availability: Decimal,
    /// `(below, credit)`: below `below` percent measured, `credit` percent of the
    /// period's fees. The lowest threshold reached applies.
    pub credits: Vec<(Decimal, Decimal)>,
}

/// An SLA outcome for a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaCredit {
    /// Whether the availability target was met.
    pub met: bool,
    /// The threshold that applies, if any.
    #[serde(with = "dec::opt")]
    pub below: Option<Decimal>,
    /// Credit percent applied (0 when none).
    #[serde(with = "dec::exact")]
    pub percent: Decimal,
    /// The fees the percentage is of.
    #[serde(with = "dec::exact")]
    pub fees: Decimal,
    /// `fees × percent / 100`, exact.
    #[serde(with = "dec::exact")]
    pub amount_unrounded: Decimal,
    /// The credit, rounded once.
    #[serde(with = "dec::exact")]
    pub amount: Decimal,
}

/// Measured availability as `(good, total)` responses: the share of non-5xx
/// responses among `statuses`. Kept as a pair so comparisons against thresholds are
/// exact (no repeating decimals).
pub fn availability_counts(statuses: impl IntoIterator<Item = u16>) -> (u64, u64) {
    let mut good = 0;
    let mut total = 0;
    for s in statuses {
        total += 1;
        if !(500..600).contains(&s) {
            good += 1;
        }
    }
    (good, total)
}

/// The SLA credit on `fees` (a period's pre-tax fees) for a measured availability of
/// `good / total` responses. No responses at all counts as available.
pub fn sla_credit(
    sla: &SlaTerms,
    good: u64,
    total: u64,
    fees: Decimal,
    minor_units: u32,
    rounding: RoundingMode,
) -> Result<SlaCredit, Error> {
    if good > total {
        return Err(Error::InvalidInput(
            "more good responses than responses".into(),
        ));
    }
    // measured < threshold  ⇔  good × 100 < threshold × total, exactly.
    let below = |threshold: Decimal| -> Result<bool, Error> {
        if total == 0 {
            return Ok(false);
        }
        let lhs = mul(Decimal::from(good), Decimal::ONE_HUNDRED)?;
        let rhs = mul(threshold, Decimal::from(total))?;
        Ok(lhs < rhs)
    };
    let met = !below(sla.availability)?;
    let mut applies: Option<(Decimal, Decimal)> = None;
    for &(threshold, credit) in &sla.credits {
        if below(threshold)? && applies.is_none_or(|(t, _)| threshold < t) {
            applies = Some((threshold, credit));
        }
    }
    let percent = applies.map_or(Decimal::ZERO, |(_, c)| c);
    let unrounded = mul(fees, percent)? / Decimal::ONE_HUNDRED;
    Ok(SlaCredit {
        met,
        below: applies.map(|(t, _)| t),
        percent,
        fees,
        amount_unrounded: unrounded,
        amount: round(unrounded, minor_units, rounding),
    })
}
