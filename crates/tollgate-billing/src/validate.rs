//! Price book parsing and validation: every problem at once, each with the JSON pointer
//! of the value it is about, so a term sheet editor can underline it.

use crate::currency::minor_units;
use crate::event::FieldRef;
use crate::model::{Aggregate, FORMAT_VERSION, PriceBook, PriceBookRef, PriceModel};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;

/// Prices, fees and quantities may carry this many decimal places at most: well beyond the
/// 12 a per-call rate needs, and small enough that a price times a quantity stays exact.
pub const MAX_SCALE: u32 = 20;

/// One problem with a price book: where (an RFC 6901 JSON pointer into the book, `""`
/// for the whole book) and what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationProblem {
    /// JSON pointer of the offending value, e.g. `/charges/0/price/tiers/1/up_to`.
    pub pointer: String,
    /// What is wrong, in lowercase words.
    pub message: String,
}

impl fmt::Display for ValidationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

impl PriceBook {
    /// Parses a price book from JSON (a term sheet's `pricing.inline` block as is) and
    /// validates it. A value that does not have the book's shape gives one problem at
    /// the first mismatch; a well-shaped book gives every semantic problem at once.
    pub fn from_json(value: &serde_json::Value) -> Result<PriceBook, Vec<ValidationProblem>> {
        let book: PriceBook = serde_path_to_error::deserialize(value).map_err(|e| {
            vec![ValidationProblem {
                pointer: pointer_of(e.path()),
                message: e.inner().to_string(),
            }]
        })?;
        book.validate()?;
        Ok(book)
    }

    /// Checks the book's values against each other; `Ok` or every problem found.
    pub fn validate(&self) -> Result<(), Vec<ValidationProblem>> {
        let mut p = Problems::default();
        check_book(self, &mut p);
        if p.0.is_empty() { Ok(()) } else { Err(p.0) }
    }

    /// SHA-256 (lowercase hex) of the book's canonical form: RFC 8785 JSON of
    /// `{"tollgate_prices": 1, "book": <book>}`, decimals as their shortest strings and
    /// defaults written out, so the same prices written differently hash the same.
    pub fn sha256(&self) -> String {
        #[derive(Serialize)]
        struct Canonical<'a> {
            tollgate_prices: u32,
            book: &'a PriceBook,
        }
        let bytes = serde_jcs::to_vec(&Canonical {
            tollgate_prices: FORMAT_VERSION,
            book: self,
        })
        .expect("a price book is plain JSON");
        hex::encode(Sha256::digest(&bytes))
    }

    /// How a term sheet cites this book.
    pub fn reference(&self) -> PriceBookRef {
        PriceBookRef {
            id: self.id.clone(),
            version: self.version.clone(),
            sha256: self.sha256(),
        }
    }

    /// The JSON Schema (draft 2020-12) of a price book, derived from the model.
    pub fn json_schema() -> serde_json::Value {
        let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let mut v = generator.into_root_schema_for::<PriceBook>().to_value();
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "$id".into(),
                "https://tollgate.dev/schemas/prices/v1.json".into(),
            );
            obj.insert("title".into(), "Tollgate price book".into());
        }
        v
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

#[derive(Default)]
struct Problems(Vec<ValidationProblem>);

impl Problems {
    fn add(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.0.push(ValidationProblem {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    /// A price, fee or quantity: at least 0 (or more than 0) and at most [`MAX_SCALE`]
    /// decimal places.
    fn amount(&mut self, at: &str, v: Decimal, positive: bool) {
        if positive && v <= Decimal::ZERO {
            self.add(at, "must be more than 0");
        } else if v < Decimal::ZERO {
            self.add(at, "must not be negative");
        }
        if v.normalize().scale() > MAX_SCALE {
            self.add(at, format!("has more than {MAX_SCALE} decimal places"));
        }
    }

    fn percent(&mut self, at: &str, v: Decimal) {
        if v < Decimal::ZERO || v > Decimal::ONE_HUNDRED {
            self.add(at, "must be a percentage from 0 to 100");
        }
        if v.normalize().scale() > MAX_SCALE {
            self.add(at, format!("has more than {MAX_SCALE} decimal places"));
        }
    }

    fn opt(&mut self, at: &str, v: Option<Decimal>) {
        if let Some(v) = v {
            self.amount(at, v, false);
        }
    }

    /// Tier bounds: strictly increasing, more than 0, all set but the last, which is open.
    fn bounds(&mut self, at: &str, bounds: &[Option<Decimal>]) {
        if bounds.is_empty() {
            self.add(at, "needs at least one tier");
            return;
        }
        let mut prev = Decimal::ZERO;
        for (i, b) in bounds.iter().enumerate() {
            let last = i + 1 == bounds.len();
            let here = format!("{at}/{i}/up_to");
            match (b, last) {
                (None, true) => {}
                (None, false) => self.add(here, "only the last tier may be open (null)"),
                (Some(_), true) => self.add(here, "the last tier must be open (null)"),
                (Some(v), false) => {
                    if *v <= prev {
                        self.add(&here, "must be more than the previous tier's up_to (and 0)");
                    }
                    self.amount(&here, *v, true);
                    prev = *v;
                }
            }
        }
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_book(b: &PriceBook, p: &mut Problems) {
    if !is_slug(&b.id) {
        p.add("/id", "must be 1–63 lowercase letters, digits or '-'");
    }
    if b.version.trim().is_empty() || b.version.len() > 63 {
        p.add("/version", "must be 1–63 characters");
    }
    if minor_units(&b.currency).is_none() {
        p.add(
            "/currency",
            format!("{:?} is not an active ISO 4217 code", b.currency),
        );
    }
    if jiff::tz::TimeZone::get(&b.billing_cycle.time_zone).is_err() {
        p.add(
            "/billing_cycle/time_zone",
            format!("{:?} is not an IANA time zone", b.billing_cycle.time_zone),
        );
    }
    if b.trial_days > 3660 {
        p.add("/trial_days", "must be at most 3660 days");
    }
    if b.grace_hours > 24 * 62 {
        p.add("/grace_hours", "must be at most 1488 hours (62 days)");
    }
    if let Some(base) = &b.base_fee {
        p.amount("/base_fee/amount", base.amount, false);
    }
    p.opt("/minimum_commitment", b.minimum_commitment);

    let mut meter_ids = BTreeSet::new();
    for (i, m) in b.meters.iter().enumerate() {
        let at = format!("/meters/{i}");
        if !is_slug(&m.id) {
            p.add(
                format!("{at}/id"),
                "must be 1–63 lowercase letters, digits or '-'",
            );
        }
        if !meter_ids.insert(m.id.as_str()) {
            p.add(
                format!("{at}/id"),
                format!("meter {:?} is defined twice", m.id),
            );
        }
        match (m.aggregate, &m.field) {
            (Aggregate::Count, Some(_)) => p.add(
                format!("{at}/field"),
                "a count meter counts events: remove field",
            ),
            (Aggregate::Count, None) => {}
            (_, None) => p.add(format!("{at}/field"), "this aggregate needs a field"),
            (agg, Some(f)) => match FieldRef::parse(f) {
                None => p.add(format!("{at}/field"), unknown_field(f)),
                Some(r) if agg != Aggregate::UniqueCount && !r.is_numeric_capable() => p.add(
                    format!("{at}/field"),
                    format!("{f:?} is not numeric: sum and max need a number"),
                ),
                Some(_) => {}
            },
        }
        for (j, method) in m.filter.methods.iter().enumerate() {
            if method.is_empty() || !method.bytes().all(|c| c.is_ascii_uppercase()) {
                p.add(
                    format!("{at}/filter/methods/{j}"),
                    "an HTTP method in capitals (GET, POST, …)",
                );
            }
        }
        for (j, op) in m.filter.operations.iter().enumerate() {
            if op.is_empty() {
                p.add(format!("{at}/filter/operations/{j}"), "must not be empty");
            }
        }
        for (k, v) in &m.filter.equals {
            let here = format!(
                "{at}/filter/equals/{}",
                k.replace('~', "~0").replace('/', "~1")
            );
            if FieldRef::parse(k).is_none() {
                p.add(&here, unknown_field(k));
            }
            let ok = match v {
                serde_json::Value::String(_) | serde_json::Value::Bool(_) => true,
                serde_json::Value::Number(n) => n.is_i64() || n.is_u64(),
                _ => false,
            };
            if !ok {
                p.add(&here, "must be a string, an integer or a boolean");
            }
        }
    }

    let mut charge_ids = BTreeSet::new();
    for (i, c) in b.charges.iter().enumerate() {
        let at = format!("/charges/{i}");
        if !is_slug(&c.id) {
            p.add(
                format!("{at}/id"),
                "must be 1–63 lowercase letters, digits or '-'",
            );
        }
        if !charge_ids.insert(c.id.as_str()) {
            p.add(
                format!("{at}/id"),
                format!("charge {:?} is defined twice", c.id),
            );
        }
        let meter = b.meters.iter().find(|m| m.id == c.meter);
        if meter.is_none() {
            p.add(
                format!("{at}/meter"),
                format!("no meter {:?} in this book", c.meter),
            );
        }
        p.opt(&format!("{at}/free_units"), c.free_units);
        let pr = format!("{at}/price");
        let percentage = matches!(
            c.price,
            PriceModel::Percentage { .. } | PriceModel::GraduatedPercentage { .. }
        );
        if percentage {
            if meter.is_some_and(|m| m.aggregate != Aggregate::Sum) {
                p.add(
                    format!("{at}/meter"),
                    "a percentage charge needs a sum meter over the amount field",
                );
            }
            if c.free_units.is_some() {
                p.add(
                    format!("{at}/free_units"),
                    "percentage models use free_events or free_amount instead",
                );
            }
        }
        match &c.price {
            PriceModel::PerUnit { unit_price } => {
                p.amount(&format!("{pr}/unit_price"), *unit_price, false)
            }
            PriceModel::Package {
                package_size,
                package_price,
            } => {
                p.amount(&format!("{pr}/package_size"), *package_size, true);
                p.amount(&format!("{pr}/package_price"), *package_price, false);
            }
            PriceModel::Graduated { tiers } | PriceModel::Volume { tiers } => {
                let bounds: Vec<_> = tiers.iter().map(|t| t.up_to).collect();
                p.bounds(&format!("{pr}/tiers"), &bounds);
                for (j, t) in tiers.iter().enumerate() {
                    p.amount(&format!("{pr}/tiers/{j}/unit_price"), t.unit_price, false);
                    p.opt(&format!("{pr}/tiers/{j}/flat_fee"), t.flat_fee);
                }
            }
            PriceModel::Percentage {
                percent,
                fixed_fee,
                min_fee,
                max_fee,
                free_events: _,
                free_amount,
            } => {
                p.percent(&format!("{pr}/percent"), *percent);
                p.opt(&format!("{pr}/fixed_fee"), *fixed_fee);
                p.opt(&format!("{pr}/min_fee"), *min_fee);
                p.opt(&format!("{pr}/max_fee"), *max_fee);
                p.opt(&format!("{pr}/free_amount"), *free_amount);
                if let (Some(lo), Some(hi)) = (min_fee, max_fee)
                    && lo > hi
                {
                    p.add(format!("{pr}/min_fee"), "must not be more than max_fee");
                }
            }
            PriceModel::GraduatedPercentage { tiers } => {
                let bounds: Vec<_> = tiers.iter().map(|t| t.up_to).collect();
                p.bounds(&format!("{pr}/tiers"), &bounds);
                for (j, t) in tiers.iter().enumerate() {
                    p.percent(&format!("{pr}/tiers/{j}/percent"), t.percent);
                    p.opt(&format!("{pr}/tiers/{j}/flat_fee"), t.flat_fee);
                }
            }
        }
    }
}

fn unknown_field(f: &str) -> String {
    format!(
        "{f:?} is not an event field: use request_bytes, response_bytes, latency_ms, status, \
         operation, method or fields.<name>"
    )
}
