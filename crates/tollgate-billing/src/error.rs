//! The crate's one error type. Expected outcomes (a provisional invoice, an SLA met) are
//! values, not errors; these are inputs the rater cannot rate.

use crate::validate::ValidationProblem;

/// Why rating, prorating or a payout could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A price book failed validation; every problem is listed with its JSON pointer.
    #[error("price book {id} is invalid: {}", problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidPriceBook {
        id: String,
        problems: Vec<ValidationProblem>,
    },
    /// An event was served under a term sheet whose price book was not given.
    #[error(
        "event {event} was served under term sheet {term_sheet}, whose price book is not given"
    )]
    UnknownTermSheet { event: String, term_sheet: String },
    /// Price books of one invoice (or payout) are in different currencies.
    #[error("price books in {expected} and {found} cannot share an invoice")]
    CurrencyMismatch { expected: String, found: String },
    /// A currency code is not an active ISO 4217 code.
    #[error("unknown currency {0}")]
    UnknownCurrency(String),
    /// A time zone name is not in the bundled tz database.
    #[error("unknown time zone {0}")]
    UnknownTimeZone(String),
    /// A period whose end is not after its start.
    #[error("empty period from {start} to {end}")]
    EmptyPeriod { start: String, end: String },
    /// An amount left the range of exact decimals (about 7.9 × 10^28).
    #[error("amount overflow in {0}")]
    Overflow(&'static str),
    /// A quote's input does not fit the price book; names the meter at fault.
    #[error("cannot quote meter {meter:?}: {problem}")]
    InvalidQuote { meter: String, problem: String },
    /// An input that is not meaningful, e.g. a negative credit note amount.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}
