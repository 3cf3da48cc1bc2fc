//! Rating scenarios worked by hand: the arithmetic of each is in its comments.

use crate::support::*;
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_billing::*;

fn flat_book(id: &str, amount: &str, timing: &str) -> PriceBook {
    book(json!({
        "id": id, "version": "1", "currency": "USD",
        "base_fee": { "amount": amount, "timing": timing }
    }))
}

fn per_call_book(version: &str, price: &str) -> PriceBook {
    book(json!({
        "id": "calls", "version": version, "currency": "USD",
        "meters": [{ "id": "calls", "aggregate": "count" }],
        "charges": [{ "id": "calls", "meter": "calls",
                      "price": { "model": "per_unit", "unit_price": price } }]
    }))
}

#[test]
fn events_are_rated_by_the_term_sheet_they_were_served_under() {
    // 300 calls under v1 at 0.01 = 3.00; 200 under v2 at 0.02 = 4.00. Two lines, each
    // citing its own book.
    let v1 = per_call_book("1", "0.01");
    let v2 = per_call_book("2", "0.02");
    let bs = books(&[("ts-v1", &v1), ("ts-v2", &v2)]);
    let mut events = calls(300, "ts-v1");
    let mut later = calls(200, "ts-v2");
    for (i, e) in later.iter_mut().enumerate() {
        e.id = format!("v2-{i:04}");
    }
    events.extend(later);
    let inv = rate_plain(&sub("ts-v1", "2025-01-01T00:00:00Z"), &bs, march(), &events);
    let lines: Vec<_> = inv
        .lines
        .iter()
        .map(|l| {
            (
                l.price_book.as_ref().unwrap().version.as_str(),
                l.amount.to_string(),
            )
        })
        .collect();
    assert_eq!(lines, vec![("1", "3.00".into()), ("2", "4.00".into())]);
    assert_eq!(
        inv.lines[0].price_book.as_ref().unwrap().sha256,
        v1.sha256()
    );
    assert_eq!(inv.total, d("7.00"));
    // An event under a term sheet nobody priced is an error, not a free call.
    let mut stray = calls(1, "ts-unknown");
    stray[0].id = "stray".into();
    let err = rate(&RatingInput {
        subscription: &sub("ts-v1", "2025-01-01T00:00:00Z"),
        books: &bs,
        period: march(),
        events: &stray,
        wallet_balance: Decimal::ZERO,
        coupons: &[],
        taxes: &[],
        now: ts("2030-01-01T00:00:00Z"),
    })
    .unwrap_err();
    assert!(matches!(err, Error::UnknownTermSheet { .. }), "{err}");
}

#[test]
fn event_range_cites_the_contributing_events() {
    let b = per_call_book("1", "0.01");
    let bs = books(&[("ts", &b)]);
    let mut events = vec![
        ev("b", "2025-03-02T00:00:00Z", "ts", "x", 200),
        ev("a", "2025-03-02T00:00:00Z", "ts", "x", 200),
        ev("c", "2025-03-01T00:00:00Z", "ts", "x", 200),
    ];
    // Another subscription's event and one of April are not counted.
    let mut other = ev("z", "2025-03-05T00:00:00Z", "ts", "x", 200);
    other.subscription = "sub-2".into();
    events.push(other);
    events.push(ev("y", "2025-04-01T00:00:00Z", "ts", "x", 200));
    let inv = rate_plain(&sub("ts", "2025-01-01T00:00:00Z"), &bs, march(), &events);
    let range = inv.lines[0].events.as_ref().unwrap();
    assert_eq!(range.count, 3);
    assert_eq!(range.first, ts("2025-03-01T00:00:00Z"));
    assert_eq!(range.last, ts("2025-03-02T00:00:00Z"));
    // Time order, ties by id: c, a, b.
    assert_eq!(range.ids_sha256, event_ids_sha256(["c", "a", "b"]));
    assert_eq!(inv.excluded.other_subscription, 1);
    assert_eq!(inv.excluded.after_period, 1);
}

#[test]
fn meters_aggregate_and_filter() {
    let b = book(json!({
        "id": "m", "version": "1", "currency": "USD",
        "meters": [
            { "id": "posts", "aggregate": "count", "filter": { "methods": ["POST"], "status": ["2xx", "3xx"] } },
            { "id": "bytes", "aggregate": "sum", "field": "response_bytes" },
            { "id": "peak", "aggregate": "max", "field": "latency_ms" },
            { "id": "users", "aggregate": "unique_count", "field": "fields.user",
              "filter": { "equals": { "fields.region": "eu" } } }
        ],
        "charges": [
            { "id": "posts", "meter": "posts", "price": { "model": "per_unit", "unit_price": "1" } },
            { "id": "bytes", "meter": "bytes", "free_units": "1000",
              "price": { "model": "package", "package_size": "1000", "package_price": "0.10" } },
            { "id": "peak", "meter": "peak", "price": { "model": "per_unit", "unit_price": "0.01" } },
            { "id": "users", "meter": "users", "price": { "model": "volume", "tiers": [
                { "up_to": "1", "unit_price": "5" },
                { "up_to": null, "unit_price": "3", "flat_fee": "1" } ] } }
        ]
    }));
    let bs = books(&[("ts", &b)]);
    let mut events = Vec::new();
    for (i, (method, status, bytes, latency, user, region)) in [
        ("POST", 201, 1500, 40, "u1", "eu"),
        ("POST", 302, 500, 90, "u2", "eu"),
        ("POST", 500, 700, 10, "u1", "eu"),
        ("GET", 200, 800, 300, "u3", "us"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = ev(&format!("e{i}"), "2025-03-10T00:00:00Z", "ts", "op", status);
        e.method = method.into();
        e.response_bytes = bytes;
        e.latency_ms = latency;
        e.fields.insert("user".into(), json!(user));
        e.fields.insert("region".into(), json!(region));
        events.push(e);
    }
    let inv = rate_plain(&sub("ts", "2025-01-01T00:00:00Z"), &bs, march(), &events);
    // posts: POST and 2xx/3xx → e0, e1: 2 × 1 = 2.00.
    // bytes: 1500 + 500 + 700 + 800 = 3500, 1000 free → 2500 → ceil(2.5) = 3 blocks ×
    //   0.10 = 0.30.
    // peak: max latency 300 × 0.01 = 3.00.
    // users: eu users u1, u2 → 2 distinct, volume tier 2: 2 × 3 + 1 = 7.00.
    assert_eq!(
        summary(&inv),
        vec![
            (LineKind::Usage, "posts".into(), "2.00".into()),
            (LineKind::Usage, "bytes".into(), "0.30".into()),
            (LineKind::Usage, "peak".into(), "3.00".into()),
            (LineKind::Usage, "users".into(), "7.00".into()),
        ]
    );
    assert_eq!(inv.lines[1].quantity, Some(d("3500")));
    assert_eq!(inv.lines[1].free_units, Some(d("1000")));
    assert_eq!(inv.lines[3].quantity, Some(d("2")));
}

#[test]
fn immediate_upgrade_credits_the_old_plan_and_charges_the_new() {
    // April has 30 days = 2 592 000 s. Upgrade from A (30.00 in advance) to B (60.00)
    // at April 21 00:00: 10 days = 864 000 s remain, 1/3 of the period.
    // Credit: −30 × 1/3 = −10.00; charge: 60 × 1/3 = 20.00; then May in advance on B:
    // 60.00. Total 70.00.
    let a = flat_book("a", "30", "in_advance");
    let b = flat_book("b", "60", "in_advance");
    let bs = books(&[("ts-a", &a), ("ts-b", &b)]);
    let mut s = sub("ts-a", "2025-01-01T00:00:00Z");
    s.changes.push(PlanChange {
        at: ts("2025-04-21T00:00:00Z"),
        term_sheet: "ts-b".into(),
        kind: ChangeKind::Upgrade,
    });
    let inv = rate_plain(&s, &bs, april(), &[]);
    assert_eq!(
        summary(&inv),
        vec![
            (LineKind::ProrationCredit, "base".into(), "-10.00".into()),
            (LineKind::ProrationCharge, "base".into(), "20.00".into()),
            (LineKind::Base, "base".into(), "60.00".into()),
        ]
    );
    let p = inv.lines[0].proration.unwrap();
    assert_eq!((p.seconds, p.period_seconds), (864_000, 2_592_000));
    assert_eq!(
        inv.lines[2].service_period,
        Some(Span::new(
            ts("2025-05-01T00:00:00Z"),
            ts("2025-06-01T00:00:00Z")
        ))
    );
    assert_eq!(inv.total, d("70.00"));
}

#[test]
fn downgrade_waits_for_the_period_end() {
    // B → A asked on April 10: nothing prorated in April; May is charged on A: 30.00.
    let a = flat_book("a", "30", "in_advance");
    let b = flat_book("b", "60", "in_advance");
    let bs = books(&[("ts-a", &a), ("ts-b", &b)]);
    let mut s = sub("ts-b", "2025-01-01T00:00:00Z");
    s.changes.push(PlanChange {
        at: ts("2025-04-10T00:00:00Z"),
        term_sheet: "ts-a".into(),
        kind: ChangeKind::Downgrade,
    });
    let inv = rate_plain(&s, &bs, april(), &[]);
    assert_eq!(
        summary(&inv),
        vec![(LineKind::Base, "base".into(), "30.00".into())]
    );
    assert_eq!(inv.lines[0].price_book.as_ref().unwrap().id, "a");
}

#[test]
fn arrears_upgrade_prorates_each_plan() {
    // In arrears: A 30.00 for 20 of 30 days = 20.00, B 60.00 for 10 days = 20.00.
    let a = flat_book("a", "30", "in_arrears");
    let b = flat_book("b", "60", "in_arrears");
    let bs = books(&[("ts-a", &a), ("ts-b", &b)]);
    let mut s = sub("ts-a", "2025-01-01T00:00:00Z");
    s.changes.push(PlanChange {
        at: ts("2025-04-21T00:00:00Z"),
        term_sheet: "ts-b".into(),
        kind: ChangeKind::Upgrade,
    });
    let inv = rate_plain(&s, &bs, april(), &[]);
    assert_eq!(
        summary(&inv),
        vec![
            (LineKind::Base, "base".into(), "20.00".into()),
            (LineKind::Base, "base".into(), "20.00".into()),
        ]
    );
}

#[test]
fn trial_then_prorated_first_period() {
    // 14-day trial from March 8: service starts March 22. In arrears, March is charged
    // for 10 of 31 days: 31.00 × 10/31 = 10.00. Calls during the trial are free.
    let b = book(json!({
        "id": "t", "version": "1", "currency": "USD", "trial_days": 14,
        "base_fee": { "amount": "31", "timing": "in_arrears" },
        "meters": [{ "id": "calls", "aggregate": "count" }],
        "charges": [{ "id": "calls", "meter": "calls", "price": { "model": "per_unit", "unit_price": "1" } }]
    }));
    let bs = books(&[("ts", &b)]);
    let events = vec![
        ev("in-trial", "2025-03-21T23:59:59Z", "ts", "x", 200),
        ev("paid", "2025-03-22T00:00:00Z", "ts", "x", 200),
    ];
    let inv = rate_plain(&sub("ts", "2025-03-08T00:00:00Z"), &bs, march(), &events);
    assert_eq!(
        summary(&inv),
        vec![
            (LineKind::Base, "base".into(), "10.00".into()),
            (LineKind::Usage, "calls".into(), "1.00".into()),
        ]
    );
    assert_eq!(inv.excluded.in_trial, 1);
}

#[test]
fn opening_invoice_charges_the_first_period_in_advance() {
    // Started April 21 on a 30.00 in-advance plan: April 21–30 is 1/3 of April: 10.00.
    let a = flat_book("a", "30", "in_advance");
    let bs = books(&[("ts-a", &a)]);
    let s = sub("ts-a", "2025-04-21T00:00:00Z");
    let inv = rate_opening(&s, &bs, Decimal::ZERO, &[], &[]).unwrap();
    assert_eq!(
        summary(&inv),
        vec![(LineKind::Base, "base".into(), "10.00".into())]
    );
    assert_eq!(inv.period, april());
    // April's own invoice then charges only May, in advance: 30.00.
    let inv = rate_plain(&s, &bs, april(), &[]);
    assert_eq!(
        summary(&inv),
        vec![(LineKind::Base, "base".into(), "30.00".into())]
    );
}

#[test]
fn cancellation_at_once_and_at_period_end() {
    let adv = flat_book("a", "30", "in_advance");
    let arr = flat_book("r", "30", "in_arrears");
    let bs = books(&[("ts-adv", &adv), ("ts-arr", &arr)]);
    // At once on April 11 (20 of 30 days unused) on the advance plan: credit
    // −30 × 20/30 = −20.00, and no May fee.
    let mut s = sub("ts-adv", "2025-01-01T00:00:00Z");
    s.cancellation = Some(Cancellation {
        at: ts("2025-04-11T00:00:00Z"),
        effective: Effective::Immediately,
    });
    let events = vec![ev("late-call", "2025-04-12T00:00:00Z", "ts-adv", "x", 200)];
    let inv = rate_plain(&s, &bs, april(), &events);
    assert_eq!(
        summary(&inv),
        vec![(LineKind::ProrationCredit, "base".into(), "-20.00".into())]
    );
    assert_eq!(inv.excluded.after_service_end, 1);
    // In arrears, the same cancellation charges the 10 days used: 10.00.
    s.term_sheet = "ts-arr".into();
    let inv = rate_plain(&s, &bs, april(), &[]);
    assert_eq!(
        summary(&inv),
        vec![(LineKind::Base, "base".into(), "10.00".into())]
    );
    // At period end on the advance plan: April was paid, May is not charged.
    s.term_sheet = "ts-adv".into();
    s.cancellation = Some(Cancellation {
        at: ts("2025-04-11T00:00:00Z"),
        effective: Effective::PeriodEnd,
    });
    let inv = rate_plain(&s, &bs, april(), &[]);
    assert!(inv.lines.is_empty());
    assert_eq!(inv.total, d("0.00"));
}

#[test]
fn shortfall_up_to_the_minimum_commitment() {
    // 1 234 calls × 0.01 = 12.34; commitment 100.00 → shortfall 87.66.
    let b = book(json!({
        "id": "c", "version": "1", "currency": "USD", "minimum_commitment": "100",
        "meters": [{ "id": "calls", "aggregate": "count" }],
        "charges": [{ "id": "calls", "meter": "calls", "price": { "model": "per_unit", "unit_price": "0.01" } }]
    }));
    let bs = books(&[("ts", &b)]);
    let inv = rate_plain(
        &sub("ts", "2025-01-01T00:00:00Z"),
        &bs,
        march(),
        &calls(1234, "ts"),
    );
    assert_eq!(
        summary(&inv),
        vec![
            (LineKind::Usage, "calls".into(), "12.34".into()),
            (LineKind::Shortfall, "".into(), "87.66".into()),
        ]
    );
    assert_eq!(inv.total, d("100.00"));
}

#[test]
fn late_usage_is_rated_on_its_own_line() {
    // A February call that missed February's invoice: its own line, flagged late, with
    // February as its service period.
    let b = per_call_book("1", "0.50");
    let bs = books(&[("ts", &b)]);
    let events = vec![
        ev("feb", "2025-02-27T10:00:00Z", "ts", "x", 200),
        ev("mar", "2025-03-02T10:00:00Z", "ts", "x", 200),
    ];
    let inv = rate_plain(&sub("ts", "2025-01-01T00:00:00Z"), &bs, march(), &events);
    assert_eq!(inv.lines.len(), 2);
    let late = inv.lines.iter().find(|l| l.late).unwrap();
    assert_eq!(
        late.service_period.unwrap().start,
        ts("2025-02-01T00:00:00Z")
    );
    assert_eq!(late.amount, d("0.50"));
}

#[test]
fn invoice_is_provisional_within_the_grace_window() {
    let b = book(json!({ "id": "g", "version": "1", "currency": "USD", "grace_hours": 48 }));
    let bs = books(&[("ts", &b)]);
    let s = sub("ts", "2025-01-01T00:00:00Z");
    let at = |now: &str| {
        rate(&RatingInput {
            subscription: &s,
            books: &bs,
            period: march(),
            events: &[],
            wallet_balance: Decimal::ZERO,
            coupons: &[],
            taxes: &[],
            now: ts(now),
        })
        .unwrap()
        .status
    };
    assert_eq!(at("2025-04-02T23:59:59Z"), InvoiceStatus::Provisional);
    assert_eq!(at("2025-04-03T00:00:00Z"), InvoiceStatus::Final);
}

#[test]
fn rounding_follows_the_currency_and_the_book() {
    // 7 calls × 0.3 = 2.1 JPY → 2 (half_up); KWD 7 × 0.0005 = 0.0035 → 0.004 (half_up) or
    // 0.004 (half_even: 3 is odd, so the half goes up to 4); 5 × 0.0005 = 0.0025 → 0.003
    // half_up, 0.002 half_even.
    for (currency, mode, price, n, expected) in [
        ("JPY", "half_up", "0.3", 7, "2"),
        ("JPY", "half_even", "0.5", 5, "2"),
        ("JPY", "up", "0.01", 1, "1"),
        ("KWD", "half_up", "0.0005", 7, "0.004"),
        ("KWD", "half_up", "0.0005", 5, "0.003"),
        ("KWD", "half_even", "0.0005", 5, "0.002"),
        ("USD", "down", "0.009", 1, "0.00"),
    ] {
        let b = book(json!({
            "id": "r", "version": "1", "currency": currency, "rounding": mode,
            "meters": [{ "id": "calls", "aggregate": "count" }],
            "charges": [{ "id": "calls", "meter": "calls", "price": { "model": "per_unit", "unit_price": price } }]
        }));
        let bs = books(&[("ts", &b)]);
        let inv = rate_plain(
            &sub("ts", "2025-01-01T00:00:00Z"),
            &bs,
            march(),
            &calls(n, "ts"),
        );
        assert_eq!(
            inv.lines[0].amount.to_string(),
            expected,
            "{currency} {mode} {price}×{n}"
        );
        assert_eq!(inv.total, inv.lines[0].amount);
    }
}

#[test]
fn coupons_taxes_and_wallet_on_named_lines() {
    // Base 49.00 (in arrears) and calls 1 600 × 0.01 = 16.00.
    // Coupon "calls-half": 50 % of calls = −8.00, for 1 period (none used yet).
    // Coupon "expired": 1 period, already used: not applied.
    // Coupon "fiver": 5.00 off the whole invoice, allocated pro rata:
    //   base 49/57 × 5, calls 8/57 × 5.
    // Tax "calls-tax" 10 % on calls only: (16 − 8 − 8/57 × 5) × 10 % = 0.7298… → 0.73.
    // Tax "vat" 20 % of the pre-tax total 49 + 16 − 8 − 5 = 52 → 10.40.
    // Total 52 + 0.73 + 10.40 = 63.13; wallet 100 pays all: amount due 0.00.
    let b = book(json!({
        "id": "w", "version": "1", "currency": "EUR",
        "base_fee": { "amount": "49", "timing": "in_arrears" },
        "meters": [{ "id": "calls", "aggregate": "count" }],
        "charges": [{ "id": "calls", "meter": "calls", "price": { "model": "per_unit", "unit_price": "0.01" } }]
    }));
    let bs = books(&[("ts", &b)]);
    let coupon = |id: &str, discount: Discount, applies_to: &[&str], used: u32| CouponGrant {
        coupon: Coupon {
            id: id.into(),
            discount,
            applies_to: applies_to.iter().map(|s| s.to_string()).collect(),
            periods: Some(1),
        },
        periods_applied: used,
    };
    let coupons = vec![
        coupon(
            "calls-half",
            Discount::Percent { percent: d("50") },
            &["calls"],
            0,
        ),
        coupon("expired", Discount::Percent { percent: d("90") }, &[], 1),
        coupon("fiver", Discount::Amount { amount: d("5") }, &[], 0),
    ];
    let taxes = vec![
        TaxRate {
            id: "vat".into(),
            jurisdiction: "FR".into(),
            name: "VAT 20 %".into(),
            percent: d("20"),
            applies_to: vec![],
        },
        TaxRate {
            id: "calls-tax".into(),
            jurisdiction: "FR-75".into(),
            name: "Call levy".into(),
            percent: d("10"),
            applies_to: vec!["calls".into()],
        },
    ];
    let events = calls(1600, "ts");
    let inv = rate(&RatingInput {
        subscription: &sub("ts", "2025-01-01T00:00:00Z"),
        books: &bs,
        period: march(),
        events: &events,
        wallet_balance: d("100"),
        coupons: &coupons,
        taxes: &taxes,
        now: ts("2030-01-01T00:00:00Z"),
    })
    .unwrap();
    assert_eq!(
        summary(&inv),
        vec![
            (LineKind::Base, "base".into(), "49.00".into()),
            (LineKind::Usage, "calls".into(), "16.00".into()),
            (LineKind::Discount, "calls-half".into(), "-8.00".into()),
            (LineKind::Discount, "fiver".into(), "-5.00".into()),
            (LineKind::Tax, "calls-tax".into(), "0.73".into()),
            (LineKind::Tax, "vat".into(), "10.40".into()),
            (LineKind::CreditConsumption, "".into(), "-63.13".into()),
        ]
    );
    assert_eq!(inv.pre_tax_total, d("52.00"));
    assert_eq!(inv.total, d("63.13"));
    assert_eq!(inv.amount_due, d("0.00"));
    assert_eq!(inv.wallet.balance_after, d("36.87"));
}

#[test]
fn quarterly_subscription_anchored_billing() {
    // A quarterly plan anchored on a January 31 start: the second quarter runs
    // April 30 → July 31, and a 90.00 in-arrears fee is charged whole.
    let b = book(json!({
        "id": "q", "version": "1", "currency": "USD",
        "billing_cycle": { "interval": "quarter", "anchor": "subscription" },
        "base_fee": { "amount": "90", "timing": "in_arrears" }
    }));
    let started = ts("2025-01-31T09:30:00Z");
    let p = billing_period(&b.billing_cycle, started, ts("2025-06-15T00:00:00Z")).unwrap();
    assert_eq!(
        p,
        Span::new(ts("2025-04-30T09:30:00Z"), ts("2025-07-31T09:30:00Z"))
    );
    let bs = books(&[("ts", &b)]);
    let inv = rate_plain(&sub("ts", "2025-01-31T09:30:00Z"), &bs, p, &[]);
    assert_eq!(
        summary(&inv),
        vec![(LineKind::Base, "base".into(), "90.00".into())]
    );
    let next = next_period(&b.billing_cycle, started, &p).unwrap();
    assert_eq!(next.start, p.end);
}
