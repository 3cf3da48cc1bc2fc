//! Currencies and the one rounding rule: ISO 4217 minor units and the declared rounding
//! modes every invoice line is rounded with, exactly once.

use rust_decimal::{Decimal, RoundingStrategy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Active ISO 4217 codes with their minor units: the number of decimal places an amount
/// due in that currency carries. Codes with no minor unit in the standard ("N.A.": XAU,
/// XDR, XTS, XXX, …) are left out because nothing is ever invoiced in them; withdrawn
/// codes (BGN, HRK, ANG, CUC, ZWL, SLL, …) are left out so that a new price book cannot be
/// written in a currency nobody can pay.
///
/// Source: ISO 4217 List One ("Current currency & funds code list") as published by the
/// maintenance agency, SIX Group (`list-one.xml`, `Pblshd="2026-01-01"`, amendment 180),
/// checked on 2026-11-24. SIX's own site was not reachable from here, so the check went
/// through copies: the full 2024-06-25 `list-one.xml` as vendored in a public repository,
/// a published census of the 2026-01-01 file (178 codes: 139 with 2 minor units, 17 with
/// 0, 7 with 3, 2 with 4, 13 "N.A."; the 0, 3 and 4 sets listed code by code), and that
/// amendment 180 moved BGN to the historic list from 2026-01-01 (Bulgaria uses EUR).
/// The check removed BGN and added XAD (Arab Accounting Dinar, a fund code of the Arab
/// Monetary Fund, 2 minor units); every other entry matched.
///
/// Sorted by code, so lookup is a binary search.
#[rustfmt::skip]
pub const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BHD", 3), ("BIF", 0),
    ("BMD", 2), ("BND", 2), ("BOB", 2), ("BOV", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2),
    ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHE", 2), ("CHF", 2),
    ("CHW", 2), ("CLF", 4), ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2), ("CRC", 2),
    ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2),
    ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2),
    ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2),
    ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2),
    ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2),
    ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2),
    ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3),
    ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2),
    ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MXV", 2), ("MYR", 2),
    ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2),
    ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2),
    ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0), ("SAR", 2),
    ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2), ("SLE", 2),
    ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2), ("SZL", 2),
    ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2),
    ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2), ("USN", 2), ("UYI", 0),
    ("UYU", 2), ("UYW", 4), ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0),
    ("WST", 2), ("XAD", 2), ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0),
    ("YER", 2), ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

/// The minor units (decimal places) of an active ISO 4217 currency code, `None` for a
/// code that is not in [`ISO_4217`]. Codes are matched exactly: `usd` is not `USD`.
pub fn minor_units(code: &str) -> Option<u32> {
    ISO_4217
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| ISO_4217[i].1)
}

/// How an exact amount becomes an amount in minor units. Invoice lines are rounded once,
/// with the mode the price book declares (`half_up` unless it says otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// To the nearest minor unit; halves away from zero (1.005 → 1.01, −1.005 → −1.01).
    #[default]
    HalfUp,
    /// To the nearest minor unit; halves toward zero (1.005 → 1.00).
    HalfDown,
    /// To the nearest minor unit; halves to the even neighbour, "banker's rounding"
    /// (1.005 → 1.00, 1.015 → 1.02).
    HalfEven,
    /// Away from zero (1.001 → 1.01, −1.001 → −1.01).
    Up,
    /// Toward zero, truncation (1.009 → 1.00).
    Down,
    /// Toward positive infinity (1.001 → 1.01, −1.009 → −1.00).
    Ceiling,
    /// Toward negative infinity (1.009 → 1.00, −1.001 → −1.01).
    Floor,
}

impl RoundingMode {
    fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfDown => RoundingStrategy::MidpointTowardZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::Up => RoundingStrategy::AwayFromZero,
            RoundingMode::Down => RoundingStrategy::ToZero,
            RoundingMode::Ceiling => RoundingStrategy::ToPositiveInfinity,
            RoundingMode::Floor => RoundingStrategy::ToNegativeInfinity,
        }
    }
}

/// `amount` rounded to `minor_units` decimal places with `mode`, written with exactly that
/// many places (`1.5` in USD is `1.50`), so that an amount's text shows its currency.
pub fn round(amount: Decimal, minor_units: u32, mode: RoundingMode) -> Decimal {
    let mut r = amount.round_dp_with_strategy(minor_units, mode.strategy());
    r.rescale(minor_units);
    // `-0.00` would print with a sign; an amount of nothing is plain zero.
    if r.is_zero() {
        r.set_sign_positive(true);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for w in ISO_4217.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (c, u) in ISO_4217 {
            assert!(
                c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()),
                "{c}"
            );
            assert!(*u <= 4, "{c}");
        }
    }

    #[test]
    fn minor_units_of_known_currencies() {
        for (code, units) in [
            ("JPY", Some(0)),
            ("KRW", Some(0)),
            ("USD", Some(2)),
            ("EUR", Some(2)),
            ("KWD", Some(3)),
            ("BHD", Some(3)),
            ("TND", Some(3)),
            ("CLF", Some(4)),
            ("UYW", Some(4)),
            ("usd", None),
            ("HRK", None),
            ("XXX", None),
        ] {
            assert_eq!(minor_units(code), units, "{code}");
        }
    }

    /// Minor units of notable codes, pinned against ISO 4217 List One (2026-01-01): the
    /// currencies without a minor unit, all seven with three, both with four, and codes
    /// withdrawn or without minor units.
    #[test]
    fn pinned_iso_4217_minor_units() {
        for (code, units) in [
            ("JPY", Some(0)),
            ("KRW", Some(0)),
            ("ISK", Some(0)),
            ("CLP", Some(0)),
            ("VND", Some(0)),
            ("UGX", Some(0)),
            ("PYG", Some(0)),
            ("XOF", Some(0)),
            ("BHD", Some(3)),
            ("KWD", Some(3)),
            ("JOD", Some(3)),
            ("OMR", Some(3)),
            ("TND", Some(3)),
            ("LYD", Some(3)),
            ("IQD", Some(3)),
            ("CLF", Some(4)),
            ("UYW", Some(4)),
            ("USD", Some(2)),
            ("EUR", Some(2)),
            // Non-decimal in practice (1:5), 2 in the standard.
            ("MRU", Some(2)),
            ("MGA", Some(2)),
            ("XCG", Some(2)),
            ("XAD", Some(2)),
            // Withdrawn: BGN on 2026-01-01, ANG in 2025 (for XCG), HRK in 2023.
            ("BGN", None),
            ("ANG", None),
            ("HRK", None),
            // No minor unit ("N.A.").
            ("XAU", None),
            ("XDR", None),
        ] {
            assert_eq!(minor_units(code), units, "{code}");
        }
        // The census of the 2026-01-01 list: 139 codes with 2 places, 17 with 0, 7 with
        // 3, 2 with 4.
        let count = |u: u32| ISO_4217.iter().filter(|(_, x)| *x == u).count();
        assert_eq!((count(2), count(0), count(3), count(4)), (139, 17, 7, 2));
        assert_eq!(ISO_4217.len(), 165);
    }

    /// One table for every mode: (amount, minor units, mode, expected text).
    #[test]
    fn rounding_per_currency_and_mode() {
        use RoundingMode::*;
        let cases = [
            // USD, 2 places.
            ("1.005", 2, HalfUp, "1.01"),
            ("1.005", 2, HalfDown, "1.00"),
            ("1.005", 2, HalfEven, "1.00"),
            ("1.015", 2, HalfEven, "1.02"),
            ("1.001", 2, Up, "1.01"),
            ("1.009", 2, Down, "1.00"),
            ("-1.005", 2, HalfUp, "-1.01"),
            ("-1.001", 2, Ceiling, "-1.00"),
            ("-1.001", 2, Floor, "-1.01"),
            ("1.5", 2, HalfUp, "1.50"),
            ("-0.001", 2, HalfUp, "0.00"),
            // JPY, no minor unit.
            ("1234.5", 0, HalfUp, "1235"),
            ("1234.5", 0, HalfEven, "1234"),
            ("1233.5", 0, HalfEven, "1234"),
            ("1234.0001", 0, Up, "1235"),
            ("1234.9999", 0, Down, "1234"),
            // KWD, 3 places.
            ("0.0125", 3, HalfUp, "0.013"),
            ("0.0125", 3, HalfEven, "0.012"),
            ("7", 3, HalfUp, "7.000"),
            // CLF, 4 places.
            ("0.00005", 4, HalfUp, "0.0001"),
        ];
        for (amount, units, mode, expected) in cases {
            assert_eq!(
                round(d(amount), units, mode).to_string(),
                expected,
                "{amount} {units} {mode:?}"
            );
        }
    }
}
