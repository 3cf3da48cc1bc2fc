//! Inline pricing: the `pricing.inline` block of a sheet is a tollgate-billing
//! `PriceBook`, checked here by billing's own rules, with every problem given the field
//! path of the sheet (`pricing.inline.charges[0].price.tiers[1].up_to`) so the loader can
//! find its line in YAML, TOML or JSON.

use crate::error::Issue;
use crate::locate::FieldPath;
use crate::model::{QuotaPeriod, TermSheet};
use crate::validate::MAX_COUNT;
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::BTreeMap;
use tollgate_billing::{Anchor, Interval, PriceBook, ValidationProblem};

/// The field of the sheet that a problem at `pointer` (RFC 6901, into the book) is about.
pub(crate) fn inline_field(pointer: &str) -> String {
    FieldPath::parse("pricing.inline")
        .pointer(pointer)
        .to_string()
}

/// Checks an inline price block. Returns the book in its canonical form (decimals in
/// their shortest form, defaults written out: what `PriceBook::sha256` hashes and the
/// sheet's hash covers) when the block is a valid book, and the problems found.
pub(crate) fn check_inline(block: &Value) -> (Option<PriceBook>, Vec<Issue>) {
    let mut issues = Vec::new();
    // Numbers with a fraction get our own words first: canonical JSON would store them
    // as binary floating point, so "0.1" could be charged as 0.1000000000000000055….
    // Each is then handed to the book as its decimal text, so billing's checks see every
    // other problem (it stops at the first value of the wrong shape) and do not repeat
    // this one in their own words.
    let mut fractions = BTreeMap::new();
    find_fractions(String::new(), block, &mut fractions);
    let problems = match serde_json::from_value::<PriceBook>(with_texts(block, &fractions)) {
        Ok(book) => match book.validate() {
            Ok(()) => Vec::new(),
            Err(p) => p,
        },
        Err(_) => {
            let mut p = shape_problem(&with_texts(block, &fractions));
            // The value of the wrong shape is (or holds) a number we rewrote: the field
            // takes no decimal text (a count such as `trial_days`), so the book's words
            // on the number as written say it best, and ours would mislead.
            if let Some(at) = p.first().map(|p| p.pointer.clone()) {
                let under = |k: &String| *k == at || k.starts_with(&format!("{at}/"));
                if fractions.keys().any(under) {
                    fractions.retain(|k, _| !under(k));
                    p = shape_problem(&with_texts(block, &fractions));
                }
            }
            p
        }
    };
    for (pointer, text) in &fractions {
        issues.push(Issue {
            field: inline_field(pointer),
            message: format!(
                "write decimal amounts as strings (\"{text}\") so they stay exact: canonical \
                 JSON would keep a number with a fraction as binary floating point"
            ),
        });
    }
    for p in problems {
        let pointer = point_at_model(block, p.pointer.as_str(), &p.message);
        issues.push(Issue {
            field: inline_field(&pointer),
            message: p.message,
        });
    }
    if !issues.is_empty() {
        return (None, issues);
    }
    let Some(book) = serde_json::from_value::<PriceBook>(block.clone())
        .ok()
        .map(canonical)
    else {
        return (None, issues);
    };
    // What is left as a number in the canonical book is a count (`trial_days`,
    // `free_events`, a filter value): it must fit canonical JSON exactly.
    let mut big = Vec::new();
    find_big_integers(
        String::new(),
        &serde_json::to_value(&book).unwrap_or_default(),
        &mut big,
    );
    for pointer in big {
        issues.push(Issue {
            field: inline_field(&pointer),
            message: format!("must be at most {MAX_COUNT}"),
        });
    }
    (issues.is_empty().then_some(book), issues)
}

/// The book as its canonical JSON reads back: decimals in their shortest form, so two
/// sheets with the same hash give the very same book (and the same invoice text).
fn canonical(book: PriceBook) -> PriceBook {
    serde_json::to_value(&book)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or(book)
}

/// The one problem of a value that does not have the book's shape.
fn shape_problem(v: &Value) -> Vec<ValidationProblem> {
    PriceBook::from_json(v).err().unwrap_or_default()
}

/// An unknown pricing model is reported at the price (the tag of an internally tagged
/// enum leaves no path); its `model` field is the line to show.
fn point_at_model(block: &Value, pointer: &str, message: &str) -> String {
    let has_model = block
        .pointer(pointer)
        .and_then(Value::as_object)
        .is_some_and(|o| o.contains_key("model"));
    if has_model && message.starts_with("unknown variant") {
        format!("{pointer}/model")
    } else {
        pointer.to_owned()
    }
}

fn escape_token(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Every number with a fraction in `v`, by JSON pointer, with its decimal text.
fn find_fractions(at: String, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            out.insert(at, decimal_text(n));
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                find_fractions(format!("{at}/{i}"), x, out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                find_fractions(format!("{at}/{}", escape_token(k)), x, out);
            }
        }
        _ => {}
    }
}

/// Every integer of `v` above [`MAX_COUNT`], by JSON pointer.
fn find_big_integers(at: String, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Number(n) => {
            let big = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u > MAX_COUNT,
                (None, Some(i)) => i.unsigned_abs() > MAX_COUNT,
                _ => false,
            };
            if big {
                out.push(at);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                find_big_integers(format!("{at}/{i}"), x, out);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                find_big_integers(format!("{at}/{}", escape_token(k)), x, out);
            }
        }
        _ => {}
    }
}

/// The shortest decimal text of a JSON number (`1e-7` → `0.0000001`).
fn decimal_text(n: &serde_json::Number) -> String {
    let s = n.to_string();
    Decimal::from_str_exact(&s)
        .or_else(|_| Decimal::from_scientific(&s))
        .map(|d| d.normalize().to_string())
        .unwrap_or(s)
}

/// `v` with the numbers at the given pointers replaced by their text.
fn with_texts(v: &Value, texts: &BTreeMap<String, String>) -> Value {
    let mut v = v.clone();
    for (pointer, text) in texts {
        if let Some(x) = v.pointer_mut(pointer) {
            *x = Value::String(text.clone());
        }
    }
    v
}

/// A quota per `billing_period` counts the subscription's billing periods as the gateway
/// does: months from the subscription start, in `limits.time_zone`. An inline book bills
/// in its own cycle; unless the two are the same periods, "per billing period" would mean
/// one thing for the quota and another on the invoice.
pub(crate) fn check_quota_periods(sheet: &TermSheet, book: &PriceBook) -> Vec<Issue> {
    let zone = sheet.limits.time_zone.as_deref().unwrap_or("UTC");
    let c = &book.billing_cycle;
    if c.interval == Interval::Month && c.anchor == Anchor::Subscription && c.time_zone == zone {
        return Vec::new();
    }
    let interval = match c.interval {
        Interval::Month => "months",
        Interval::Quarter => "quarters",
        Interval::Year => "years",
    };
    let anchor = match c.anchor {
        Anchor::Calendar => "calendar",
        Anchor::Subscription => "subscription-anchored",
    };
    sheet
        .limits
        .quota
        .iter()
        .enumerate()
        .filter(|(_, q)| q.per == QuotaPeriod::BillingPeriod)
        .map(|(j, _)| Issue {
            field: format!("limits.quota[{j}].per"),
            message: format!(
                "a billing_period quota counts months from the subscription start in {zone}, \
                 but the inline price book bills in {anchor} {interval} in {}: use \
                 calendar_month, or bill with billing_cycle {{ interval: month, anchor: \
                 subscription, time_zone: {zone} }}",
                c.time_zone
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(block: Value) -> Vec<(String, String)> {
        let (book, issues) = check_inline(&block);
        assert_eq!(book.is_none(), !issues.is_empty());
        issues.into_iter().map(|i| (i.field, i.message)).collect()
    }

    fn book(extra: Value) -> Value {
        let mut b = json!({
            "id": "p", "version": "1", "currency": "EUR",
            "meters": [{ "id": "calls", "aggregate": "count" }],
            "charges": [{ "id": "c", "meter": "calls",
                "price": { "model": "per_unit", "unit_price": "0.01" } }]
        });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    }

    #[test]
    fn pointers_become_sheet_fields() {
        assert_eq!(
            inline_field("/charges/0/price/tiers/1/up_to"),
            "pricing.inline.charges[0].price.tiers[1].up_to"
        );
        assert_eq!(inline_field(""), "pricing.inline");
    }

    #[test]
    fn a_fraction_is_reported_once_and_the_rest_still_checked() {
        let got = fields(book(json!({
            "currency": "usd",
            "base_fee": { "amount": 49.9 },
            "minimum_commitment": -1.5
        })));
        assert_eq!(
            got,
            [
                (
                    "pricing.inline.base_fee.amount".into(),
                    "write decimal amounts as strings (\"49.9\") so they stay exact: canonical JSON would keep a number with a fraction as binary floating point".into()
                ),
                (
                    "pricing.inline.minimum_commitment".into(),
                    "write decimal amounts as strings (\"-1.5\") so they stay exact: canonical JSON would keep a number with a fraction as binary floating point".into()
                ),
                (
                    "pricing.inline.currency".into(),
                    "\"usd\" is not an active ISO 4217 code".into()
                ),
                (
                    "pricing.inline.minimum_commitment".into(),
                    "must not be negative".into()
                ),
            ]
        );
    }

    #[test]
    fn a_fraction_where_a_count_belongs_gets_the_books_words() {
        let got = fields(book(
            json!({ "trial_days": 1.5, "base_fee": { "amount": 0.5 } }),
        ));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "pricing.inline.base_fee.amount");
        assert_eq!(got[1].0, "pricing.inline.trial_days");
        assert!(got[1].1.contains("floating point `1.5`"), "{got:?}");
    }

    #[test]
    fn an_unknown_model_points_at_the_model() {
        let mut b = book(json!({}));
        b["charges"][0]["price"]["model"] = "flat".into();
        let got = fields(b);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "pricing.inline.charges[0].price.model");
        assert!(got[0].1.contains("unknown variant `flat`"), "{got:?}");
    }

    #[test]
    fn the_book_comes_back_canonical() {
        let (b, issues) = check_inline(&book(json!({ "base_fee": { "amount": "490.00" } })));
        assert_eq!(issues, []);
        let b = b.unwrap();
        assert_eq!(b.base_fee.as_ref().unwrap().amount.scale(), 0);
        assert_eq!(
            serde_json::to_value(&b).unwrap()["base_fee"]["amount"],
            "490"
        );
        assert_eq!(serde_json::to_value(&b).unwrap()["trial_days"], 0);
    }

    #[test]
    fn counts_must_fit_canonical_json() {
        let mut b = book(json!({}));
        b["charges"][0]["price"] = json!({ "model": "percentage", "percent": "1",
            "free_events": 9_007_199_254_740_993u64 });
        b["meters"][0] = json!({ "id": "calls", "aggregate": "sum", "field": "fields.amount" });
        // A big decimal is fine: it becomes a string.
        b["minimum_commitment"] = json!(9_007_199_254_740_993u64);
        let got = fields(b);
        assert_eq!(
            got,
            [(
                "pricing.inline.charges[0].price.free_events".into(),
                "must be at most 9007199254740991".into()
            )]
        );
    }
}
