//! The pricing models as pure functions of a quantity (or of per-event amounts): what a
//! line costs before rounding, and the tier breakdown that shows how.

use crate::Error;
use crate::dec;
use crate::model::{PercentTier, Tier};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Exact multiplication; an overflow is an error, never a wrapped or rounded amount.
pub(crate) fn mul(a: Decimal, b: Decimal) -> Result<Decimal, Error> {
    a.checked_mul(b).ok_or(Error::Overflow("multiplication"))
}

/// Exact addition (see [`mul`]).
pub(crate) fn add(a: Decimal, b: Decimal) -> Result<Decimal, Error> {
    a.checked_add(b).ok_or(Error::Overflow("addition"))
}

/// How many units of a quantity one tier took, and what they cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierUse {
    /// The tier's lower bound (exclusive): the previous tier's `up_to`, or 0.
    #[serde(with = "dec::exact")]
    pub from: Decimal,
    /// The tier's upper bound (inclusive); `null` for the open last tier.
    #[serde(with = "dec::opt")]
    pub to: Option<Decimal>,
    /// Units (or, for percentages, amount) priced in this tier.
    #[serde(with = "dec::exact")]
    pub units: Decimal,
    /// Price per unit in this tier (for percentages, the rate: `percent / 100`).
    #[serde(with = "dec::exact")]
    pub unit_price: Decimal,
    /// The tier's flat fee, charged because the quantity entered it.
    #[serde(with = "dec::exact")]
    pub flat_fee: Decimal,
    /// `units × unit_price + flat_fee`, exact.
    #[serde(with = "dec::exact")]
    pub amount: Decimal,
}

/// A priced quantity: the exact amount and, for tiered models, the breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// The exact (unrounded) amount.
    pub amount: Decimal,
    /// The tiers used (empty for untiered models).
    pub tiers: Vec<TierUse>,
}

/// Bounds and prices of one tier, whatever the model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TierSpec {
    pub up_to: Option<Decimal>,
    pub unit_price: Decimal,
    pub flat_fee: Decimal,
}

/// A book's tiers as [`TierSpec`]s, converted as they are walked: pricing a quantity
/// allocates nothing but its breakdown.
pub(crate) fn unit_tiers(tiers: &[Tier]) -> impl ExactSizeIterator<Item = TierSpec> + '_ {
    tiers.iter().map(|t| TierSpec {
        up_to: t.up_to,
        unit_price: t.unit_price,
        flat_fee: t.flat_fee.unwrap_or_default(),
    })
}

/// Percent tiers as unit tiers whose unit is one unit of amount and whose price is the
/// rate (`percent / 100`, exact).
pub(crate) fn percent_tiers(tiers: &[PercentTier]) -> impl ExactSizeIterator<Item = TierSpec> + '_ {
    tiers.iter().map(|t| TierSpec {
        up_to: t.up_to,
        unit_price: t.percent / Decimal::ONE_HUNDRED,
        flat_fee: t.flat_fee.unwrap_or_default(),
    })
}

/// `quantity × unit_price`.
pub fn per_unit(quantity: Decimal, unit_price: Decimal) -> Result<Priced, Error> {
    Ok(Priced {
        amount: mul(quantity.max(Decimal::ZERO), unit_price)?,
        tiers: Vec::new(),
    })
}

/// `ceil(quantity / package_size) × package_price`: a partial block costs a whole one.
pub fn package(
    quantity: Decimal,
    package_size: Decimal,
    package_price: Decimal,
) -> Result<Priced, Error> {
    if package_size <= Decimal::ZERO {
        return Err(Error::InvalidInput(
            "package size must be more than 0".into(),
        ));
    }
    let blocks = (quantity.max(Decimal::ZERO) / package_size).ceil();
    Ok(Priced {
        amount: mul(blocks, package_price)?,
        tiers: Vec::new(),
    })
}

/// Graduated tiers: the units in each tier at that tier's price, plus the flat fee of
/// every tier the quantity entered (a quantity of 0 enters none).
pub(crate) fn graduated<I>(quantity: Decimal, tiers: I) -> Result<Priced, Error>
where
    I: IntoIterator<Item = TierSpec>,
    I::IntoIter: ExactSizeIterator,
{
    let tiers = tiers.into_iter();
    let mut out = Priced {
        amount: Decimal::ZERO,
        // At most one entry per tier: one allocation, none while walking.
        tiers: Vec::with_capacity(if quantity > Decimal::ZERO {
            tiers.len()
        } else {
            0
        }),
    };
    let mut from = Decimal::ZERO;
    for t in tiers {
        if quantity <= from {
            break;
        }
        let top = t.up_to.map_or(quantity, |u| u.min(quantity));
        let units = top - from;
        let amount = add(mul(units, t.unit_price)?, t.flat_fee)?;
        out.amount = add(out.amount, amount)?;
        out.tiers.push(TierUse {
            from,
            to: t.up_to,
            units,
            unit_price: t.unit_price,
            flat_fee: t.flat_fee,
            amount,
        });
        match t.up_to {
            Some(u) => from = u,
            None => break,
        }
    }
    Ok(out)
}

/// Volume tiers: every unit at the price of the tier the whole quantity falls in, plus
/// that tier's flat fee (a quantity of 0 costs nothing).
pub(crate) fn volume(
    quantity: Decimal,
    tiers: impl IntoIterator<Item = TierSpec>,
) -> Result<Priced, Error> {
    if quantity <= Decimal::ZERO {
        return Ok(Priced {
            amount: Decimal::ZERO,
            tiers: Vec::new(),
        });
    }
    let mut from = Decimal::ZERO;
    for t in tiers {
        if t.up_to.is_none_or(|u| quantity <= u) {
            let amount = add(mul(quantity, t.unit_price)?, t.flat_fee)?;
            return Ok(Priced {
                amount,
                tiers: vec![TierUse {
                    from,
                    to: t.up_to,
                    units: quantity,
                    unit_price: t.unit_price,
                    flat_fee: t.flat_fee,
                    amount,
                }],
            });
        }
        from = t.up_to.unwrap_or(from);
    }
    Err(Error::InvalidInput(
        "tiers must end with an open tier".into(),
    ))
}

/// Public entry to [`graduated`] over a book's tiers.
pub fn graduated_tiers(quantity: Decimal, tiers: &[Tier]) -> Result<Priced, Error> {
    graduated(quantity, unit_tiers(tiers))
}

/// Public entry to [`volume`] over a book's tiers.
pub fn volume_tiers(quantity: Decimal, tiers: &[Tier]) -> Result<Priced, Error> {
    volume(quantity, unit_tiers(tiers))
}

/// A graduated percentage over the cumulative amount of the period.
pub fn graduated_percentage(total_amount: Decimal, tiers: &[PercentTier]) -> Result<Priced, Error> {
    graduated(total_amount, percent_tiers(tiers))
}

/// The terms of a per-event percentage fee.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PercentageTerms {
    /// Percent of the amount, 0–100.
    pub percent: Decimal,
    /// Added per charged event.
    pub fixed_fee: Decimal,
    /// Least fee per charged event.
    pub min_fee: Option<Decimal>,
    /// Largest fee per charged event.
    pub max_fee: Option<Decimal>,
    /// Events free each period.
    pub free_events: Option<u64>,
    /// Amount free each period.
    pub free_amount: Option<Decimal>,
}

/// What a per-event percentage came to, with the counts a reader needs to check it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PercentageOutcome {
    /// The exact total of the per-event fees.
    #[serde(with = "dec::exact")]
    pub amount: Decimal,
    /// Σ of the events' amounts.
    #[serde(with = "dec::exact")]
    pub gross_amount: Decimal,
    /// The part of `gross_amount` the free allowance covered.
    #[serde(with = "dec::exact")]
    pub free_amount_used: Decimal,
    /// Events the free allowance covered (wholly or in part).
    pub free_events_used: u64,
    /// Events that paid a fee.
    pub charged_events: u64,
    /// Fees raised to `min_fee`.
    pub raised_to_min: u64,
    /// Fees capped at `max_fee`.
    pub capped_at_max: u64,
}

/// Per-event percentage fees over `amounts`, taken in the order given (the rater gives
/// them in event time order, ties by id). Non-positive amounts cost nothing and use no
/// allowance. The free allowance covers events while both limits (those that are set)
/// have room, so it ends as soon as either is reached; an event crossing `free_amount`
/// is charged on its part beyond it.
pub fn percentage(
    amounts: impl IntoIterator<Item = Decimal>,
    t: &PercentageTerms,
) -> Result<PercentageOutcome, Error> {
    let rate = t.percent / Decimal::ONE_HUNDRED;
    let has_allowance = t.free_events.is_some() || t.free_amount.is_some();
    let mut out = PercentageOutcome::default();
    for a in amounts {
        out.gross_amount = add(out.gross_amount, a)?;
        if a <= Decimal::ZERO {
            continue;
        }
        let mut base = a;
        let room_events = t.free_events.is_none_or(|n| out.free_events_used < n);
        let room_amount = t.free_amount.is_none_or(|f| out.free_amount_used < f);
        if has_allowance && room_events && room_amount {
            let covered = match t.free_amount {
                Some(f) => a.min(f - out.free_amount_used),
                None => a,
            };
            out.free_amount_used = add(out.free_amount_used, covered)?;
            out.free_events_used += 1;
            base = a - covered;
            if base.is_zero() {
                continue;
            }
        }
        let mut fee = add(mul(base, rate)?, t.fixed_fee)?;
        if let Some(lo) = t.min_fee
            && fee < lo
        {
            fee = lo;
            out.raised_to_min += 1;
        }
        if let Some(hi) = t.max_fee
            && fee > hi
        {
            fee = hi;
            out.capped_at_max += 1;
        }
        out.charged_events += 1;
        out.amount = add(out.amount, fee)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tier(up_to: Option<&str>, price: &str, flat: &str) -> TierSpec {
        TierSpec {
            up_to: up_to.map(d),
            unit_price: d(price),
            flat_fee: d(flat),
        }
    }

    fn ladder() -> Vec<TierSpec> {
        vec![
            tier(Some("1000"), "0", "0"),
            tier(Some("10000"), "0.002", "5"),
            tier(None, "0.001", "20"),
        ]
    }

    #[test]
    fn per_unit_is_quantity_times_price() {
        // 12 345 × 0.000000000125 = 0.000001543125 (12+ decimal places stay exact).
        assert_eq!(
            per_unit(d("12345"), d("0.000000000125")).unwrap().amount,
            d("0.000001543125")
        );
    }

    #[test]
    fn package_rounds_partial_blocks_up() {
        // 250 units in blocks of 100 at 1.50: ceil(2.5) = 3 blocks = 4.50.
        assert_eq!(
            package(d("250"), d("100"), d("1.5")).unwrap().amount,
            d("4.5")
        );
        // Exactly 200: 2 blocks = 3.00; 0 units: nothing.
        assert_eq!(
            package(d("200"), d("100"), d("1.5")).unwrap().amount,
            d("3")
        );
        assert_eq!(package(d("0"), d("100"), d("1.5")).unwrap().amount, d("0"));
    }

    #[test]
    fn graduated_prices_each_unit_in_its_tier() {
        // 12 000 units: tier 1 1 000 × 0 = 0; tier 2 9 000 × 0.002 = 18 + flat 5 = 23;
        // tier 3 2 000 × 0.001 = 2 + flat 20 = 22. Total 45.
        let p = graduated(d("12000"), ladder()).unwrap();
        assert_eq!(p.amount, d("45"));
        let amounts: Vec<_> = p.tiers.iter().map(|t| t.amount).collect();
        assert_eq!(amounts, vec![d("0"), d("23"), d("22")]);
        assert_eq!(p.tiers[2].from, d("10000"));
        assert_eq!(p.tiers[2].to, None);
        // 1 000 units stay in the first tier: the second tier's flat fee is not due.
        assert_eq!(graduated(d("1000"), ladder()).unwrap().amount, d("0"));
        // 1 001 units enter tier 2: 1 × 0.002 + 5 = 5.002.
        assert_eq!(graduated(d("1001"), ladder()).unwrap().amount, d("5.002"));
        assert!(graduated(d("0"), ladder()).unwrap().tiers.is_empty());
    }

    #[test]
    fn volume_prices_all_units_at_the_reached_tier() {
        // 12 000 units fall in tier 3: 12 000 × 0.001 + 20 = 32.
        assert_eq!(volume(d("12000"), ladder()).unwrap().amount, d("32"));
        // 10 000 units fall in tier 2 (bounds are inclusive): 10 000 × 0.002 + 5 = 25.
        assert_eq!(volume(d("10000"), ladder()).unwrap().amount, d("25"));
        assert_eq!(volume(d("0"), ladder()).unwrap().amount, d("0"));
    }

    #[test]
    fn graduated_percentage_charges_flat_fee_once_per_tier_entered() {
        let tiers = vec![
            PercentTier {
                up_to: Some(d("1000")),
                percent: d("3"),
                flat_fee: None,
            },
            PercentTier {
                up_to: None,
                percent: d("2"),
                flat_fee: Some(d("10")),
            },
        ];
        // 1 500 of amount: 1 000 × 3 % = 30; 500 × 2 % = 10 + flat 10 = 20. Total 50.
        assert_eq!(
            graduated_percentage(d("1500"), &tiers).unwrap().amount,
            d("50")
        );
    }

    #[test]
    fn percentage_with_min_max_and_free_allowance() {
        let t = PercentageTerms {
            percent: d("2.9"),
            fixed_fee: d("0.30"),
            min_fee: Some(d("0.50")),
            max_fee: Some(d("5")),
            free_events: Some(2),
            free_amount: Some(d("150")),
        };
        // Amounts 100, 100, 5, 1000, 0:
        // #1 100: free (events 1/2, amount 100/150).
        // #2 100: free covers 50 (amount 150/150, events 2/2); charged on 50:
        //    50 × 0.029 + 0.30 = 1.75.
        // #3 5: allowance over; 5 × 0.029 + 0.30 = 0.445 → raised to min 0.50.
        // #4 1000: 29 + 0.30 = 29.30 → capped at max 5.
        // #5 0: nothing. Total 1.75 + 0.50 + 5 = 7.25.
        let o = percentage(["100", "100", "5", "1000", "0"].map(d), &t).unwrap();
        assert_eq!(o.amount, d("7.25"));
        assert_eq!(o.gross_amount, d("1205"));
        assert_eq!(o.free_amount_used, d("150"));
        assert_eq!(o.free_events_used, 2);
        assert_eq!(o.charged_events, 3);
        assert_eq!((o.raised_to_min, o.capped_at_max), (1, 1));
    }

    #[test]
    fn percentage_free_events_end_the_allowance_first() {
        let t = PercentageTerms {
            percent: d("10"),
            free_events: Some(1),
            free_amount: Some(d("1000")),
            ..Default::default()
        };
        // #1 20 is free (1 event used, the 1 000 of amount far from reached); #2 30 pays
        // 3; #3 40 pays 4. Total 7.
        let o = percentage(["20", "30", "40"].map(d), &t).unwrap();
        assert_eq!(o.amount, d("7"));
        assert_eq!(o.free_amount_used, d("20"));
    }
}
