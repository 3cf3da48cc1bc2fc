//! Payout math: what a provider earns from its plans' invoices in a period, less the
//! marketplace's fee and refunds, and the check that consumers' invoices and providers'
//! gross revenue are the same money.

use crate::Error;
use crate::currency::{RoundingMode, minor_units, round};
use crate::dec::{self, DecimalString};
use crate::invoice::RatedInvoice;
use crate::model::PercentTier;
use crate::pricing::{TierUse, add, graduated_percentage, mul};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The marketplace's fee on a provider's gross revenue of a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum MarketplaceFee {
    /// A flat percentage of gross.
    Percentage {
        /// 0–100.
        #[serde(with = "dec")]
        #[schemars(with = "DecimalString")]
        percent: Decimal,
    },
    /// Graduated percentages over the period's gross (e.g. 20 % of the first 10 000,
    /// 10 % beyond), with optional flat fees per tier entered.
    Tiered {
        /// Tiers in increasing `up_to`; the last has `up_to: null`.
        tiers: Vec<PercentTier>,
    },
}

/// A provider's payout for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payout {
    /// The provider.
    pub provider: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Number of invoices counted.
    pub invoices: u64,
    /// Σ of the invoices' pre-tax totals (taxes are collected for the state, not earned).
    #[serde(with = "dec::exact")]
    pub gross: Decimal,
    /// The marketplace's fee, rounded once.
    #[serde(with = "dec::exact")]
    pub marketplace_fee: Decimal,
    /// The fee's tier breakdown (tiered fees only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fee_tiers: Vec<TierUse>,
    /// Refunds and credit notes of the period charged back to the provider.
    #[serde(with = "dec::exact")]
    pub refunds: Decimal,
    /// `gross − marketplace_fee − refunds`.
    #[serde(with = "dec::exact")]
    pub net_payable: Decimal,
}

/// The payout of `provider` from the invoices of its plans in a period.
pub fn payout(
    provider: &str,
    currency: &str,
    invoices: &[&RatedInvoice],
    fee: &MarketplaceFee,
    refunds: Decimal,
    rounding: RoundingMode,
) -> Result<Payout, Error> {
    let minor = minor_units(currency).ok_or_else(|| Error::UnknownCurrency(currency.into()))?;
    let mut gross = Decimal::ZERO;
    for inv in invoices {
        if inv.currency != currency {
            return Err(Error::CurrencyMismatch {
                expected: currency.into(),
                found: inv.currency.clone(),
            });
        }
        gross = add(gross, inv.pre_tax_total)?;
    }
    let (unrounded, fee_tiers) = match fee {
        MarketplaceFee::Percentage { percent } => {
            (mul(gross, *percent)? / Decimal::ONE_HUNDRED, Vec::new())
        }
        MarketplaceFee::Tiered { tiers } => {
            let p = graduated_percentage(gross, tiers)?;
            (p.amount, p.tiers)
        }
    };
    let marketplace_fee = round(unrounded, minor, rounding);
    let refunds = round(refunds, minor, rounding);
    Ok(Payout {
        provider: provider.into(),
        currency: currency.into(),
        invoices: invoices.len() as u64,
        gross,
        marketplace_fee,
        fee_tiers,
        refunds,
        net_payable: gross - marketplace_fee - refunds,
    })
}

/// The result of reconciling consumers' invoices with providers' payouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconciliation {
    /// Σ of the consumer invoices' pre-tax totals.
    #[serde(with = "dec::exact")]
    pub invoices_pre_tax: Decimal,
    /// Σ of the payouts' gross.
    #[serde(with = "dec::exact")]
    pub providers_gross: Decimal,
    /// `invoices_pre_tax − providers_gross`: 0 when every invoice is paid out once.
    #[serde(with = "dec::exact")]
    pub difference: Decimal,
}

impl Reconciliation {
    /// Whether the two sides are equal.
    pub fn balanced(&self) -> bool {
        self.difference.is_zero()
    }
}

/// Σ consumer invoices before tax against Σ provider gross: every invoice must be in
/// exactly one payout.
pub fn reconcile(invoices: &[RatedInvoice], payouts: &[Payout]) -> Result<Reconciliation, Error> {
    let invoices_pre_tax = invoices
        .iter()
        .map(|i| i.pre_tax_total)
        .try_fold(Decimal::ZERO, add)?;
    let providers_gross = payouts
        .iter()
        .map(|p| p.gross)
        .try_fold(Decimal::ZERO, add)?;
    Ok(Reconciliation {
        invoices_pre_tax,
        providers_gross,
        difference: invoices_pre_tax - providers_gross,
    })
}
