//! Properties of the money rules, over generated quantities, tiers and events.

use crate::support::*;
use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;
use tollgate_billing::*;

/// Tiers with increasing bounds, prices of up to 12 decimal places and flat fees.
fn tiers() -> impl Strategy<Value = Vec<Tier>> {
    prop::collection::vec((1u32..5_000, 0u64..5_000_000_000_000, 0u32..1_000), 1..5).prop_map(
        |raw| {
            let mut bound = 0u64;
            let n = raw.len();
            raw.into_iter()
                .enumerate()
                .map(|(i, (step, price, flat))| {
                    bound += u64::from(step);
                    Tier {
                        up_to: (i + 1 < n).then(|| Decimal::from(bound)),
                        unit_price: Decimal::new(price as i64, 12),
                        flat_fee: Some(Decimal::new(i64::from(flat), 2)),
                    }
                })
                .collect()
        },
    )
}

fn amount() -> impl Strategy<Value = Decimal> {
    (0i64..10_000_000).prop_map(|c| Decimal::new(c, 2))
}

proptest! {
    #[test]
    fn graduated_is_monotone_and_the_sum_of_its_tiers(t in tiers(), q in 0u64..30_000, extra in 0u64..5_000) {
        let a = graduated_tiers(Decimal::from(q), &t).unwrap();
        let b = graduated_tiers(Decimal::from(q + extra), &t).unwrap();
        prop_assert!(a.amount <= b.amount);
        let sum: Decimal = a.tiers.iter().map(|u| u.amount).sum();
        prop_assert_eq!(sum, a.amount);
        let units: Decimal = a.tiers.iter().map(|u| u.units).sum();
        prop_assert_eq!(units, Decimal::from(q));
    }

    #[test]
    fn volume_never_exceeds_top_price_times_units_plus_flat(t in tiers(), q in 0u64..30_000) {
        let v = volume_tiers(Decimal::from(q), &t).unwrap();
        let top = t.iter().map(|x| x.unit_price).max().unwrap();
        let flat = t.iter().map(|x| x.flat_fee.unwrap_or_default()).max().unwrap();
        prop_assert!(v.amount <= top * Decimal::from(q) + flat);
    }

    #[test]
    fn package_is_ceil_of_billable_blocks(q in 0u64..400, free in 0u64..100, size in 1u64..50, cents in 0i64..10_000) {
        let price = Decimal::new(cents, 2);
        let b = book(json!({
            "id": "pk", "version": "1", "currency": "USD",
            "meters": [{ "id": "calls", "aggregate": "count" }],
            "charges": [{ "id": "calls", "meter": "calls", "free_units": free.to_string(),
                "price": { "model": "package", "package_size": size.to_string(), "package_price": price.to_string() } }]
        }));
        let events = calls(q as usize, "ts");
        let line = rate_usage_line(&b, "ts", "calls", march(), &events).unwrap();
        let billable = q.saturating_sub(free);
        let expected = Decimal::from(billable.div_ceil(size)) * price;
        prop_assert_eq!(line.map(|l| l.amount_unrounded).unwrap_or_default(), expected);
    }

    #[test]
    fn percentage_fees_stay_within_min_and_max(
        amounts in prop::collection::vec(amount(), 0..60),
        percent in 0i64..10_000,
        lo in 0i64..500,
        span in 0i64..5_000,
        free_events in prop::option::of(0u64..10),
        free_amount in prop::option::of(amount()),
    ) {
        let t = PercentageTerms {
            percent: Decimal::new(percent, 2),
            fixed_fee: Decimal::new(30, 2),
            min_fee: Some(Decimal::new(lo, 2)),
            max_fee: Some(Decimal::new(lo + span, 2)),
            free_events,
            free_amount,
        };
        let o = percentage(amounts.iter().copied(), &t).unwrap();
        let n = Decimal::from(o.charged_events);
        prop_assert!(o.amount >= n * t.min_fee.unwrap());
        prop_assert!(o.amount <= n * t.max_fee.unwrap());
        if let Some(f) = free_events {
            prop_assert!(o.free_events_used <= f);
        }
        if let Some(f) = free_amount {
            prop_assert!(o.free_amount_used <= f);
        }
    }

    #[test]
    fn proration_of_a_full_period_is_the_full_fee(start in 0i64..2_000_000_000, len in 1i64..40_000_000, cents in 0i64..100_000_000) {
        let fee = Decimal::new(cents, 2);
        let s = Timestamp::from_second(start).unwrap();
        let e = Timestamp::from_second(start + len).unwrap();
        let whole = Span::new(s, e);
        prop_assert_eq!(prorate(fee, &whole, &whole).unwrap(), fee);
        // Two halves prorate to the whole fee, up to the last of 28 digits.
        let mid = Timestamp::from_second(start + len / 2).unwrap();
        let parts = prorate(fee, &Span::new(s, mid), &whole).unwrap()
            + prorate(fee, &Span::new(mid, e), &whole).unwrap();
        prop_assert!((parts - fee).abs() < Decimal::new(1, 20));
    }
}

/// Events for the rating properties: calls and payments under two price book versions.
fn events() -> impl Strategy<Value = Vec<UsageEvent>> {
    prop::collection::vec(
        (0i64..31 * 86_400, 0u8..4, any::<bool>(), 0i64..100_000),
        0..150,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (offset, kind, v2, cents))| {
                let sheet = if v2 { "ts-v2" } else { "ts-v1" };
                let mut e = match kind {
                    0 => pay(
                        &format!("e{i:04}"),
                        "2025-03-01T00:00:00Z",
                        sheet,
                        &Decimal::new(cents, 2).to_string(),
                    ),
                    1 => ev(
                        &format!("e{i:04}"),
                        "2025-03-01T00:00:00Z",
                        sheet,
                        "getForecast",
                        503,
                    ),
                    _ => ev(
                        &format!("e{i:04}"),
                        "2025-03-01T00:00:00Z",
                        sheet,
                        "getForecast",
                        200,
                    ),
                };
                // Ties in time are frequent on purpose: order must come from ids then.
                e.time = Timestamp::from_second(
                    ts("2025-03-01T00:00:00Z").as_second() + offset / 3600 * 3600,
                )
                .unwrap();
                e
            })
            .collect()
    })
}

fn v2_book() -> PriceBook {
    let mut v = serde_json::to_value(pro_book()).unwrap();
    v["version"] = json!("2025-04");
    v["charges"][0]["price"]["tiers"][1]["unit_price"] = json!("0.004");
    book(v)
}

fn rate_all(events: &[UsageEvent], wallet: Decimal) -> RatedInvoice {
    let (v1, v2) = (pro_book(), v2_book());
    let bs = books(&[("ts-v1", &v1), ("ts-v2", &v2)]);
    let coupons = [CouponGrant {
        coupon: Coupon {
            id: "c".into(),
            discount: Discount::Percent { percent: d("12.5") },
            applies_to: vec!["payment-fees".into()],
            periods: None,
        },
        periods_applied: 0,
    }];
    let taxes = [TaxRate {
        id: "t".into(),
        jurisdiction: "DE".into(),
        name: "USt".into(),
        percent: d("19"),
        applies_to: vec![],
    }];
    rate(&RatingInput {
        subscription: &sub("ts-v1", "2025-01-01T00:00:00Z"),
        books: &bs,
        period: march(),
        events,
        wallet_balance: wallet,
        coupons: &coupons,
        taxes: &taxes,
        now: ts("2030-01-01T00:00:00Z"),
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn totals_are_sums_of_rounded_lines(evs in events(), wallet in amount()) {
        let inv = rate_all(&evs, wallet);
        let sum: Decimal = inv.lines.iter().map(|l| l.amount).sum();
        prop_assert_eq!(sum, inv.amount_due);
        prop_assert_eq!(inv.pre_tax_total + inv.tax, inv.total);
        for l in &inv.lines {
            prop_assert!(l.amount.scale() == 2, "{:?}", l);
            if l.kind != LineKind::CreditConsumption {
                prop_assert_eq!(round(l.amount_unrounded, 2, RoundingMode::HalfUp), l.amount);
            }
        }
    }

    #[test]
    fn rating_does_not_depend_on_event_order(evs in events(), seed in any::<u64>()) {
        let mut shuffled = evs.clone();
        // A deterministic shuffle (Fisher–Yates on a small LCG) from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(rate_all(&evs, Decimal::ZERO), rate_all(&shuffled, Decimal::ZERO));
    }

    #[test]
    fn usage_lines_are_reproducible(evs in events()) {
        let inv = rate_all(&evs, Decimal::ZERO);
        let (v1, v2) = (pro_book(), v2_book());
        for line in inv.lines.iter().filter(|l| l.kind == LineKind::Usage) {
            let sheet = line.term_sheet.as_deref().unwrap();
            let book = if sheet == "ts-v1" { &v1 } else { &v2 };
            // A consumer holding only this term sheet's events recomputes the line.
            let mine: Vec<UsageEvent> = evs.iter().filter(|e| e.term_sheet == sheet).cloned().collect();
            let again = rate_usage_line(book, sheet, line.charge.as_deref().unwrap(), march(), &mine)
                .unwrap()
                .unwrap();
            prop_assert_eq!(&again, line);
        }
    }
}

/// Tiers whose unit prices never increase and that have no flat fees: the shape of a
/// volume discount.
fn discount_tiers() -> impl Strategy<Value = Vec<Tier>> {
    prop::collection::vec((1u32..5_000, 0u64..1_000_000_000), 1..6).prop_map(|raw| {
        let mut prices: Vec<u64> = raw.iter().map(|(_, p)| *p).collect();
        prices.sort_unstable_by(|a, b| b.cmp(a));
        let n = raw.len();
        let mut bound = 0u64;
        raw.iter()
            .zip(prices)
            .enumerate()
            .map(|(i, ((step, _), price))| {
                bound += u64::from(*step);
                Tier {
                    up_to: (i + 1 < n).then(|| Decimal::from(bound)),
                    unit_price: Decimal::new(price as i64, 9),
                    flat_fee: None,
                }
            })
            .collect()
    })
}

proptest! {
    /// With non-increasing unit prices and no flat fees, pricing every unit at the tier
    /// the whole quantity reaches (volume) never costs more than pricing each unit in its
    /// own tier (graduated), which never costs more than every unit at the first price.
    #[test]
    fn volume_le_graduated_le_first_price(t in discount_tiers(), q in 0u64..40_000, frac in 0u32..1_000) {
        let q = Decimal::from(q) + Decimal::new(i64::from(frac), 3);
        let volume = volume_tiers(q, &t).unwrap().amount;
        let graduated = graduated_tiers(q, &t).unwrap().amount;
        prop_assert!(volume <= graduated, "volume {} > graduated {}", volume, graduated);
        prop_assert!(graduated <= q * t[0].unit_price, "graduated {} > {} × {}", graduated, q, t[0].unit_price);
    }
}

/// Usage of sum and count meters under every model that prices a total (not the
/// per-event `percentage`, whose fees are per transaction by definition).
fn totals_book() -> PriceBook {
    book(json!({
        "id": "split", "version": "1", "currency": "USD",
        "meters": [
            { "id": "volume", "aggregate": "sum", "field": "fields.amount",
              "filter": { "operations": ["createPayment"] } },
            { "id": "calls", "aggregate": "count",
              "filter": { "operations": ["getForecast"], "status": ["2xx"] } }
        ],
        "charges": [
            { "id": "volume-graduated", "meter": "volume", "free_units": "25",
              "price": { "model": "graduated", "tiers": [
                  { "up_to": "100", "unit_price": "0.1" },
                  { "up_to": "1000", "unit_price": "0.07", "flat_fee": "3" },
                  { "up_to": null, "unit_price": "0.05", "flat_fee": "9" } ] } },
            { "id": "volume-volume", "meter": "volume",
              "price": { "model": "volume", "tiers": [
                  { "up_to": "500", "unit_price": "0.02" },
                  { "up_to": null, "unit_price": "0.015", "flat_fee": "1" } ] } },
            { "id": "volume-package", "meter": "volume",
              "price": { "model": "package", "package_size": "250", "package_price": "1.99" } },
            { "id": "volume-per-unit", "meter": "volume",
              "price": { "model": "per_unit", "unit_price": "0.0033" } },
            { "id": "volume-percent", "meter": "volume",
              "price": { "model": "graduated_percentage", "tiers": [
                  { "up_to": "800", "percent": "2.5" },
                  { "up_to": null, "percent": "1.25", "flat_fee": "4" } ] } },
            { "id": "calls-graduated", "meter": "calls", "free_units": "3",
              "price": { "model": "graduated", "tiers": [
                  { "up_to": "10", "unit_price": "0.3" },
                  { "up_to": null, "unit_price": "0.1", "flat_fee": "0.5" } ] } },
            { "id": "calls-volume", "meter": "calls",
              "price": { "model": "volume", "tiers": [
                  { "up_to": "8", "unit_price": "0.2" },
                  { "up_to": null, "unit_price": "0.125" } ] } },
            { "id": "calls-package", "meter": "calls",
              "price": { "model": "package", "package_size": "4", "package_price": "0.75" } }
        ]
    }))
}

fn rate_totals(events: &[UsageEvent]) -> RatedInvoice {
    let b = totals_book();
    rate_plain(
        &sub("ts", "2025-01-01T00:00:00Z"),
        &books(&[("ts", &b)]),
        march(),
        events,
    )
}

fn at(offset: i64) -> Timestamp {
    Timestamp::from_second(ts("2025-03-01T00:00:00Z").as_second() + offset).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A sum meter's total does not depend on how the amount is split across events:
    /// one event of a + b costs what two events of a and b cost, at any times.
    #[test]
    fn splitting_a_sum_across_events_keeps_the_total(
        parts in prop::collection::vec((1i64..500_000, 0u32..=100, 0i64..31 * 86_400, 0i64..31 * 86_400), 1..12),
    ) {
        let mut whole = Vec::new();
        let mut split = Vec::new();
        for (i, (cents, pct, t1, t2)) in parts.iter().enumerate() {
            let a = Decimal::new(*cents, 2);
            // a = x + (a − x), x a share of a to the cent.
            let x = Decimal::new(cents * i64::from(*pct) / 100, 2);
            let mut e = pay(&format!("w{i:02}"), "2025-03-01T00:00:00Z", "ts", &a.to_string());
            e.time = at(*t1);
            whole.push(e);
            for (j, (amount, t)) in [(x, *t1), (a - x, *t2)].into_iter().enumerate() {
                let mut e = pay(&format!("s{i:02}-{j}"), "2025-03-01T00:00:00Z", "ts", &amount.to_string());
                e.time = at(t);
                split.push(e);
            }
        }
        let (one, two) = (rate_totals(&whole), rate_totals(&split));
        prop_assert_eq!(one.total, two.total);
        let amounts = |inv: &RatedInvoice| -> Vec<(Option<String>, Decimal)> {
            inv.lines.iter().map(|l| (l.charge.clone(), l.amount_unrounded)).collect()
        };
        prop_assert_eq!(amounts(&one), amounts(&two));
    }

    /// A count meter's total depends on the number of matching events only: the same
    /// calls all at one instant or spread over the month, interleaved with events the
    /// meter does not count (failures, other operations), cost the same.
    #[test]
    fn spreading_counted_events_keeps_the_total(
        n in 0usize..60,
        times in prop::collection::vec(0i64..31 * 86_400, 60),
        noise in prop::collection::vec((0i64..31 * 86_400, any::<bool>()), 0..20),
    ) {
        let burst: Vec<UsageEvent> = (0..n)
            .map(|i| ev(&format!("b{i:02}"), "2025-03-10T12:00:00Z", "ts", "getForecast", 200))
            .collect();
        let mut spread: Vec<UsageEvent> = (0..n)
            .map(|i| {
                let mut e = ev(&format!("s{i:02}"), "2025-03-01T00:00:00Z", "ts", "getForecast", 204);
                e.time = at(times[i]);
                e
            })
            .collect();
        for (i, (t, failed)) in noise.iter().enumerate() {
            let mut e = if *failed {
                ev(&format!("n{i:02}"), "2025-03-01T00:00:00Z", "ts", "getForecast", 502)
            } else {
                ev(&format!("n{i:02}"), "2025-03-01T00:00:00Z", "ts", "listCities", 200)
            };
            e.time = at(*t);
            spread.push(e);
        }
        let (a, b) = (rate_totals(&burst), rate_totals(&spread));
        prop_assert_eq!(a.total, b.total);
        prop_assert_eq!(
            a.lines.iter().map(|l| l.amount).collect::<Vec<_>>(),
            b.lines.iter().map(|l| l.amount).collect::<Vec<_>>()
        );
    }
}

/// Rounding modes and currencies of every minor unit the table has.
fn money_rules() -> impl Strategy<Value = (&'static str, u32, RoundingMode)> {
    use RoundingMode::*;
    (
        prop::sample::select(vec![("JPY", 0), ("USD", 2), ("KWD", 3), ("CLF", 4)]),
        prop::sample::select(vec![HalfUp, HalfDown, HalfEven, Up, Down, Ceiling, Floor]),
    )
        .prop_map(|((c, u), m)| (c, u, m))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Rounding happens at lines only: every line is its exact amount rounded once, with
    /// the book's mode, to the currency's minor units, and every total is a plain sum of
    /// rounded lines, in the currency's minor units, with no rounding of its own.
    #[test]
    fn rounding_happens_once_per_line_and_never_in_totals(
        evs in events(),
        wallet in amount(),
        (currency, minor, mode) in money_rules(),
        coupon_percent in 0i64..10_000,
        tax_percent in 0i64..3_000,
    ) {
        let mut v = serde_json::to_value(pro_book()).unwrap();
        v["currency"] = json!(currency);
        v["rounding"] = serde_json::to_value(mode).unwrap();
        v["minimum_commitment"] = json!("61.3333");
        let b1 = book(v.clone());
        v["version"] = json!("2025-04");
        v["charges"][0]["price"]["tiers"][1]["unit_price"] = json!("0.0041");
        let b2 = book(v);
        let bs = books(&[("ts-v1", &b1), ("ts-v2", &b2)]);
        let coupons = [CouponGrant {
            coupon: Coupon {
                id: "c".into(),
                discount: Discount::Percent { percent: Decimal::new(coupon_percent, 2) },
                applies_to: vec![],
                periods: None,
            },
            periods_applied: 0,
        }];
        let taxes = [TaxRate {
            id: "t".into(),
            jurisdiction: "XX".into(),
            name: "Tax".into(),
            percent: Decimal::new(tax_percent, 2),
            applies_to: vec![],
        }];
        let inv = rate(&RatingInput {
            subscription: &sub("ts-v1", "2025-01-01T00:00:00Z"),
            books: &bs,
            period: march(),
            events: &evs,
            wallet_balance: wallet,
            coupons: &coupons,
            taxes: &taxes,
            now: ts("2030-01-01T00:00:00Z"),
        })
        .unwrap();
        prop_assert_eq!(inv.rounding, mode);
        for l in &inv.lines {
            prop_assert_eq!(l.amount.scale(), minor, "{:?}", l);
            match l.kind {
                // Prepaid credit is taken in whole minor units: already exact.
                LineKind::CreditConsumption => prop_assert_eq!(l.amount, l.amount_unrounded),
                // A discount is never more than what it applies to, so its rounding may be
                // held back to that base; otherwise it is its exact amount rounded once.
                LineKind::Discount => prop_assert!(
                    l.amount == round(l.amount_unrounded, minor, mode)
                        || Some(-l.amount) == l.base_amount,
                    "{:?}", l
                ),
                _ => prop_assert_eq!(l.amount, round(l.amount_unrounded, minor, mode), "{:?}", l),
            }
        }
        let sum = |kinds: &[LineKind]| -> Decimal {
            inv.lines.iter().filter(|l| kinds.contains(&l.kind)).map(|l| l.amount).sum()
        };
        prop_assert_eq!(inv.subtotal, sum(&[
            LineKind::Base,
            LineKind::Usage,
            LineKind::ProrationCredit,
            LineKind::ProrationCharge,
            LineKind::Shortfall,
        ]));
        prop_assert_eq!(inv.discounts, sum(&[LineKind::Discount]));
        prop_assert_eq!(inv.tax, sum(&[LineKind::Tax]));
        prop_assert_eq!(inv.pre_tax_total, inv.subtotal + inv.discounts);
        prop_assert_eq!(inv.total, inv.pre_tax_total + inv.tax);
        prop_assert_eq!(inv.amount_due, inv.lines.iter().map(|l| l.amount).sum::<Decimal>());
        for total in [inv.subtotal, inv.discounts, inv.tax, inv.pre_tax_total, inv.total, inv.amount_due] {
            prop_assert_eq!(round(total, minor, mode), total);
        }
    }
}
