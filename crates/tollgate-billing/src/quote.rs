//! Quotes: what one billing period of a price book costs for usage someone expects, priced
//! by the very function that prices invoice lines, so a quote is what the invoice will
//! say for that usage.

use crate::Error;
use crate::currency::RoundingMode;
use crate::dec::{self, DecimalString};
use crate::invoice::{InvoiceLine, LineKind};
use crate::model::{Aggregate, PriceBook, PriceBookRef, PriceModel};
use crate::pricing::add;
use crate::rate::{BookCtx, base_fee_line, price_charge, shortfall_line};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The usage to quote, for one whole billing period of one price book.
///
/// ```json
/// { "quantities": { "calls": "120000" },
///   "amounts": { "payments": ["12.50", "80", "4.99"] } }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteInput {
    /// The period's quantity of each meter, by meter id, as decimal strings
    /// (`{"calls": "120000"}`): a count of events, a sum or maximum of a field, or a
    /// number of distinct values, before free units. A meter left out has no usage and
    /// gets no line, as on an invoice of a period without its events.
    #[serde(default, with = "dec::map")]
    #[schemars(with = "BTreeMap<String, DecimalString>")]
    pub quantities: BTreeMap<String, Decimal>,
    /// The transaction amounts of a `sum` meter, one per event in the order they would
    /// happen, by meter id. Required for meters priced by a `percentage` charge, whose
    /// fee, minimum, maximum and free allowance apply per transaction; for every other
    /// charge (`graduated_percentage` included) the total is enough, and is the sum of
    /// these amounts when no quantity is given.
    #[serde(default, with = "dec::map_list")]
    #[schemars(with = "BTreeMap<String, Vec<DecimalString>>")]
    pub amounts: BTreeMap<String, Vec<Decimal>>,
}

/// A quote: the lines an invoice of one whole period would carry for the quoted usage,
/// and their total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    /// The price book quoted.
    pub price_book: PriceBookRef,
    /// ISO 4217 code of every amount.
    pub currency: String,
    /// The rounding mode of every line.
    pub rounding: RoundingMode,
    /// In invoice order: the base fee of one whole period, one usage line per charge
    /// whose meter has usage, and the shortfall up to the minimum commitment. Usage
    /// lines carry no events, term sheet or service period: nothing has happened yet.
    pub lines: Vec<InvoiceLine>,
    /// Σ of the lines' rounded amounts.
    #[serde(with = "dec::exact")]
    pub subtotal: Decimal,
    /// The subtotal: a quote has no coupons, taxes or prepaid credit, which belong to a
    /// customer rather than to a price book.
    #[serde(with = "dec::exact")]
    pub total: Decimal,
}

/// Quotes one whole billing period of `book` for the usage in `input`.
///
/// Usage lines come from the same per-charge pricing function as the lines of
/// [`crate::rate`]: the quote of the quantities a period's events aggregate to equals
/// that invoice's usage lines (amounts, tiers, percentage detail, rounding). Errors name
/// the meter: one the book does not define, a negative quantity or amount, amounts for a
/// meter that is not a `sum`, a quantity that is not the sum of the amounts given with
/// it, or a `percentage` charge whose meter has a quantity but no amounts.
pub fn quote(book: &PriceBook, input: &QuoteInput) -> Result<Quote, Error> {
    let ctx = BookCtx::new(book)?;
    let problem = |meter: &str, problem: String| Error::InvalidQuote {
        meter: meter.to_string(),
        problem,
    };
    for meter in input.quantities.keys().chain(input.amounts.keys()) {
        if !book.meters.iter().any(|m| m.id == *meter) {
            return Err(problem(
                meter,
                format!("price book {} has no such meter", book.id),
            ));
        }
    }
    for (meter, q) in &input.quantities {
        if *q < Decimal::ZERO {
            return Err(problem(meter, format!("quantity {q} is negative")));
        }
    }
    for (meter, amounts) in &input.amounts {
        let aggregate = book
            .meters
            .iter()
            .find(|m| m.id == *meter)
            .map(|m| m.aggregate);
        if aggregate != Some(Aggregate::Sum) {
            return Err(problem(
                meter,
                "amounts are the transactions of a sum meter; give this meter's quantity".into(),
            ));
        }
        if let Some((i, a)) = amounts
            .iter()
            .enumerate()
            .find(|(_, a)| **a < Decimal::ZERO)
        {
            return Err(problem(
                meter,
                format!("amount #{} ({a}) is negative", i + 1),
            ));
        }
    }

    let mut lines = Vec::new();
    let mut base = Decimal::ZERO;
    if let Some(fee) = &book.base_fee {
        base = fee.amount;
        lines.push(base_fee_line(&ctx, LineKind::Base, fee.amount));
    }
    let mut usage = Decimal::ZERO;
    for charge in &book.charges {
        let meter = charge.meter.as_str();
        let amounts = input.amounts.get(meter);
        let total = amounts
            .map(|a| a.iter().copied().try_fold(Decimal::ZERO, add))
            .transpose()?;
        let quantity = match (input.quantities.get(meter), total) {
            (Some(q), Some(t)) if *q != t => {
                return Err(problem(
                    meter,
                    format!("quantity {q} is not the sum of its amounts ({t})"),
                ));
            }
            (Some(q), _) => *q,
            (None, Some(t)) => t,
            (None, None) => continue,
        };
        let per_event: &[Decimal] = match (&charge.price, amounts) {
            (PriceModel::Percentage { .. }, Some(a)) => a,
            (PriceModel::Percentage { .. }, None) if quantity.is_zero() => &[],
            (PriceModel::Percentage { .. }, None) => {
                return Err(problem(
                    meter,
                    format!(
                        "charge {:?} is a percentage of each transaction: give the meter's \
                         amounts, one per transaction",
                        charge.id
                    ),
                ));
            }
            _ => &[],
        };
        let line = price_charge(&ctx, charge, quantity, per_event)?;
        usage = add(usage, line.amount)?;
        lines.push(line);
    }
    if let Some(commitment) = book.minimum_commitment {
        let spend = add(base, usage)?;
        lines.extend(shortfall_line(
            &ctx.reference,
            commitment,
            spend,
            ctx.minor,
            book.rounding,
        ));
    }
    let subtotal = lines
        .iter()
        .map(|l| l.amount)
        .try_fold(Decimal::ZERO, add)?;
    Ok(Quote {
        price_book: ctx.reference.clone(),
        currency: book.currency.clone(),
        rounding: book.rounding,
        lines,
        subtotal,
        total: subtotal,
    })
}
